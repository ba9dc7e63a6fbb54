// Playground's own engine as the benchmark's peer (bench/browser.mjs):
// @wp-playground/wordpress boots the same WordPress and SQLite zips as our
// playground on @php-wasm/web, with Playground's defaults (JSPI where the
// browser has it, its php.ini with OPcache's file cache). The page posts
// {id, url}; the reply is {id, status, bodyLength} or {id, error}.
import { loadWebRuntime } from '@php-wasm/web';
import { bootWordPressAndRequestHandler } from '@wp-playground/wordpress';

// The bundle lives in dist/bench-peer/, next to the build's dist/wordpress/.
const zip = (name) =>
	fetch(new URL(`../wordpress/${name}`, import.meta.url))
		.then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(`${name}: HTTP ${r.status}`))))
		.then((bytes) => new File([bytes], name));

const siteUrl = new URL('site/', import.meta.url).href;

// Like Playground's website: the zips download while PHP starts.
const booted = bootWordPressAndRequestHandler({
	siteUrl,
	createPhpRuntime: () => loadWebRuntime('8.3'),
	wordPressZip: zip('wp-6.5.zip'),
	sqliteIntegrationPluginZip: zip('sqlite-database-integration.zip'),
	wordpressInstallMode: 'install-from-existing-files-if-needed',
});

booted.then(
	() => self.postMessage({ ready: true, siteUrl }),
	(error) => self.postMessage({ ready: false, error: String(error?.stack ?? error) })
);

self.onmessage = async ({ data: { id, url } }) => {
	try {
		const response = await (await booted).request({ url });
		self.postMessage({ id, status: response.httpStatusCode, bodyLength: response.bytes.byteLength });
	} catch (error) {
		self.postMessage({ id, error: String(error?.message ?? error) });
	}
};
