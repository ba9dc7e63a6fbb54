// Playground's own engine as the benchmark's peer (bench/browser.mjs),
// booted as Playground's web worker boots it (@wp-playground/remote 3.1.55,
// playground-worker-endpoint.ts createRequestHandler + the Blueprints v1
// endpoint's boot, with the website's defaults): PHP 8.3 (Playground's
// RecommendedPHPVersion), SAPI "cli" (under php-wasm's own "wasm" OPcache
// refuses to start and the peer is 1.74x slower than real Playground),
// @php-wasm/universal's php.ini (OPcache's file cache) plus the worker's
// CA entries, networking on as by default, WP_DEBUG constants, install from
// the extracted files if needed, and secondary PHP instances seeing the
// primary's files. Not reproduced: the website's own mu-plugins and fetch
// transport for wp_remote_*, which live in @wp-playground/remote's sources only.
//
// peer-worker.js?opcache=memory is the control: the same engine with
// OPcache in memory (opcache.file_cache_only=0). ?opcache=off, OPcache off
// (what the peer was before it ran as "cli"), is for checking the check.
//
// The page posts {id, url}; the reply is {id, status, bodyLength} or
// {id, error}. It posts {id, op: 'status'} for {id, peer: {sapi, opcache,
// asyncMode, ...}} (PHP's own view, run in the booted engine).
import { certificateToPEM, generateCertificate, loadWebRuntime } from '@php-wasm/web';
import { __private__dont__use, isPathToSharedFS, proxyFileSystem, sandboxedSpawnHandlerFactory } from '@php-wasm/universal';
import { randomString, sendmailSpawnHandler } from '@php-wasm/util';
import { bootRequestHandler, bootWordPress } from '@wp-playground/wordpress';

const phpVersion = '8.3';
const asked = new URLSearchParams(self.location.search).get('opcache');
const variant = asked === 'memory' || asked === 'off' ? asked : 'file-cache';

// The bundle lives in dist/bench-peer/, next to the build's dist/wordpress/.
const zip = (name) =>
	fetch(new URL(`../wordpress/${name}`, import.meta.url))
		.then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(`${name}: HTTP ${r.status}`))))
		.then((bytes) => new File([bytes], name));

const siteUrl = new URL('site/', import.meta.url).href;

async function boot() {
	// Like Playground's website: the zips download while PHP starts.
	const wordPressZip = zip('wp-6.5.zip');
	const sqliteIntegrationPluginZip = zip('sqlite-database-integration.zip');
	// Networking is on by default: the worker makes a CA for PHP's TLS over
	// fetch() before it loads PHP (part of Playground's boot time).
	const CAroot = await generateCertificate({
		subject: { commonName: 'WordPressPlaygroundCA', organizationName: 'WordPressPlaygroundCA', countryName: 'US' },
		basicConstraints: { ca: true },
	});
	const phpIniEntries = {
		'openssl.cafile': '/internal/shared/ca-bundle.crt',
		'curl.cainfo': '/internal/shared/ca-bundle.crt',
		...(variant === 'memory' && { 'opcache.file_cache_only': '0' }),
		...(variant === 'off' && { 'opcache.enable': '0', 'opcache.enable_cli': '0' }),
	};
	const handler = await bootRequestHandler({
		siteUrl,
		phpVersion,
		sapiName: 'cli',
		createPhpRuntime: () => loadWebRuntime(phpVersion, { extensions: [], tcpOverFetch: { CAroot } }),
		spawnHandler: sandboxedSpawnHandlerFactory,
		phpIniEntries,
		createFiles: { '/internal/shared/ca-bundle.crt': certificateToPEM(CAroot.certificate) },
		// Up to 2 PHP instances (the default); a second one, spawned for
		// concurrent requests (the req/s figure), must see the primary's
		// files, or its requests fail ("/wordpress/index.php does not exist").
		onPHPInstanceCreated: async (php, { isPrimary }) => {
			php.setCommandSpawnHandler('sendmail', sendmailSpawnHandler(php));
			if (isPrimary) return;
			const shared = ['/tmp', handler.documentRoot, '/internal/shared', '/internal/symlinks'];
			await proxyFileSystem(await handler.getPrimaryPhp(), php, shared.filter((p) => !isPathToSharedFS(php, p)));
		},
	});
	const salts = ['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'];
	await bootWordPress(handler, {
		siteUrl,
		phpVersion,
		constants: {
			WP_DEBUG: true,
			WP_DEBUG_LOG: true,
			WP_DEBUG_DISPLAY: false,
			...Object.fromEntries(salts.map((k) => [k, randomString(40)])),
		},
		wordpressInstallMode: 'install-from-existing-files-if-needed',
		wordPressZip,
		sqliteIntegrationPluginZip,
	});
	return handler;
}
const booted = boot();

booted.then(
	() => self.postMessage({ ready: true, siteUrl, variant }),
	(error) => self.postMessage({ ready: false, error: String(error?.stack ?? error) })
);

// OPcache as PHP sees it. In file-cache-only mode (Playground's default)
// opcache_get_status() says opcache_enabled=false and has no statistics,
// since nothing is in shared memory: there the cached scripts are the
// .bin files in opcache.file_cache. Under a SAPI OPcache does not know,
// opcache_get_status() is false.
const STATUS_PHP = `<?php
$s = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
$dir = ini_get('opcache.file_cache');
$files = 0;
if ($dir && is_dir($dir)) {
	foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS)) as $f) {
		if (substr($f->getFilename(), -4) === '.bin') $files++;
	}
}
echo json_encode([
	'sapi' => php_sapi_name(),
	'phpVersion' => PHP_VERSION,
	'started' => is_array($s),
	'inMemory' => is_array($s) && $s['opcache_enabled'] && empty($s['file_cache_only']),
	'fileCacheOnly' => is_array($s) && !empty($s['file_cache_only']),
	'memoryScripts' => is_array($s) ? ($s['opcache_statistics']['num_cached_scripts'] ?? 0) : 0,
	'fileCacheScripts' => $files,
]);`;

async function status() {
	// The primary PHP instance: the one that served the sequential requests.
	const php = await (await booted).getPrimaryPhp();
	const opcache = JSON.parse((await php.run({ code: STATUS_PHP })).text);
	// loadWebRuntime loads the JSPI build where WebAssembly.Suspending
	// exists (wasm-feature-detect's jspi()), else asyncify, and records its
	// choice on the runtime.
	const runtime = php[__private__dont__use];
	const mode = !opcache.started ? 'off' : opcache.fileCacheOnly ? 'file-cache' : opcache.inMemory ? 'memory' : 'off';
	const cachedScripts = mode === 'file-cache' ? opcache.fileCacheScripts : opcache.memoryScripts;
	return {
		variant,
		sapi: opcache.sapi,
		phpVersion: opcache.phpVersion,
		asyncMode: runtime?.phpWasmAsyncMode ?? 'unknown',
		jspiInBrowser: 'Suspending' in WebAssembly,
		opcache: mode,
		cachedScripts,
		// On = it started and scripts are cached where its mode keeps them.
		opcacheOn: mode !== 'off' && cachedScripts > 0,
		php: opcache,
	};
}

self.onmessage = async ({ data: { id, url, op } }) => {
	try {
		if (op === 'status') return self.postMessage({ id, peer: await status() });
		const response = await (await booted).request({ url });
		self.postMessage({ id, status: response.httpStatusCode, bodyLength: response.bytes.byteLength });
	} catch (error) {
		self.postMessage({ id, error: String(error?.message ?? error) });
	}
};
