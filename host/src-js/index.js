// The embedding entry point. Thin: loads the host's wasm and tells it where
// the runtime's other files (workers, service worker, php.wasm) live.
import init, { startPlaygroundWithAssets } from '@bindgen/host';

let loading;

/**
 * Boots a playground and resolves with its client.
 * Options: { workers, site, iframe, memoryMaximumMb, fsInitialMb }.
 */
export async function startPlayground(options = {}) {
	loading ??= init({ module_or_path: new URL('host_bg.wasm', import.meta.url) });
	await loading;
	return startPlaygroundWithAssets({ ...options, assetBase: new URL('../', import.meta.url).href });
}
