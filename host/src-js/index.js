// The embedding entry point. Thin: loads the host's wasm, tells it where
// the runtime's other files (workers, service worker, php.wasm) live, and
// hands it Playground's Blueprint engine when a Blueprint is given.
import init, {
	startPlaygroundWithEngine,
	listSavedSites as listSites,
	renameSavedSite as renameSite,
	deleteSavedSite as deleteSite,
	slugForImport as slugFor,
} from '@bindgen/host';

let loading;
// Every export runs on the wasm, so each loads it first (once).
const ready = () => (loading ??= init({ module_or_path: new URL('host_bg.wasm', import.meta.url) }));

/**
 * Boots a playground and resolves with its client.
 * Options: StartOptions in index.d.ts (host/src/client.rs).
 */
export async function startPlayground(options = {}) {
	await ready();
	// @wp-playground/blueprints is large: a separate file, loaded only if Rust asks.
	const loadEngine = () => import('./blueprints.js');
	return startPlaygroundWithEngine({ ...options, assetBase: new URL('../', import.meta.url).href }, loadEngine);
}

/** The sites saved in this browser (host/src/saved_sites.rs). */
export async function listSavedSites() {
	await ready();
	return listSites();
}

export async function renameSavedSite(from, to) {
	await ready();
	return renameSite(from, to);
}

export async function deleteSavedSite(slug) {
	await ready();
	return deleteSite(slug);
}

/** A free name for a site imported from the file `fileName`. */
export async function slugForImport(fileName) {
	await ready();
	return slugFor(fileName);
}
