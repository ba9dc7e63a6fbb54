// Local static server for dist/ with the headers the runtime needs:
// COOP same-origin + COEP credentialless (cross-origin isolation, so shared
// memory works) and correct MIME types (application/wasm for streaming
// compilation). Listens on 127.0.0.1:$PORT (default 8080).
//
//   node playground/serve.mjs [--dir dist] [--no-isolation-headers]
import { createServer } from 'node:http';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// The pinned @wp-playground/wordpress-builds release: the folder the build
// puts its static files in (build.mjs, host/src/versions.rs, the bench and e2e read it here).
export const WORDPRESS_BUILDS_RELEASE = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8'))
	.dependencies['@wp-playground/wordpress-builds'];

const MIME = {
	'.html': 'text/html; charset=utf-8',
	'.js': 'text/javascript; charset=utf-8',
	'.mjs': 'text/javascript; charset=utf-8',
	'.css': 'text/css; charset=utf-8',
	'.json': 'application/json',
	'.wasm': 'application/wasm',
	'.svg': 'image/svg+xml',
	'.png': 'image/png',
	'.ico': 'image/x-icon',
	'.zip': 'application/zip',
	'.txt': 'text/plain; charset=utf-8',
	'.map': 'application/json',
};

export function startServer({ dir, port = 8080, host = '127.0.0.1', isolationHeaders = true }) {
	const root = resolve(dir);
	const server = createServer((req, res) => {
		// A public static site: other origins may embed and load it.
		const headers = { 'Cache-Control': 'no-cache', 'Cross-Origin-Resource-Policy': 'cross-origin' };
		if (isolationHeaders) {
			headers['Cross-Origin-Opener-Policy'] = 'same-origin';
			headers['Cross-Origin-Embedder-Policy'] = 'credentialless';
		}
		let pathname;
		try {
			pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
		} catch {
			res.writeHead(400, headers).end('bad request');
			return;
		}
		let file = normalize(join(root, pathname));
		if (file !== root && !file.startsWith(root + sep)) {
			res.writeHead(403, headers).end('forbidden');
			return;
		}
		let stat;
		try {
			stat = statSync(file);
			if (stat.isDirectory()) {
				file = join(file, 'index.html');
				stat = statSync(file);
			}
		} catch {
			stat = undefined;
		}
		// Documents the service worker does not control (the block editor's
		// canvas iframe) ask the server for WordPress's static files under a
		// scope: serve them from the build's copy, as netlify.toml does.
		const scoped = /^\/scope:[^/]+\/((?:wp-admin|wp-includes|wp-content)\/.*)$/.exec(pathname);
		if (!stat && scoped) {
			try {
				const staticRoot = join(root, 'wordpress', WORDPRESS_BUILDS_RELEASE, 'wp-6.5');
				file = join(staticRoot, normalize(scoped[1]));
				stat = file.startsWith(staticRoot + sep) ? statSync(file) : undefined;
			} catch {
				stat = undefined;
			}
		}
		if (!stat?.isFile()) {
			res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('not found');
			return;
		}
		headers['Content-Type'] = MIME[extname(file)] ?? 'application/octet-stream';
		// The builds' static files are in a folder named after their release
		// (host/src/versions.rs WORDPRESS_BUILDS_RELEASE): never another content.
		if (pathname.startsWith(`/wordpress/${WORDPRESS_BUILDS_RELEASE}/`)) headers['Cache-Control'] = 'public, max-age=31536000, immutable';
		// A validator, so a returning visit revalidates (304) instead of
		// downloading again, and the browser reuses what it compiled from the
		// cached php.wasm (V8 keeps compiled code beside the HTTP cache entry).
		headers.ETag = `"${stat.size.toString(36)}-${Math.floor(stat.mtimeMs).toString(36)}"`;
		if (req.headers['if-none-match'] === headers.ETag) {
			res.writeHead(304, headers).end();
			return;
		}
		headers['Content-Length'] = stat.size;
		// The service worker may control the whole origin.
		if (file.endsWith(`${sep}sw.js`)) headers['Service-Worker-Allowed'] = '/';
		res.writeHead(200, headers);
		if (req.method === 'HEAD') res.end();
		else createReadStream(file).pipe(res);
	});
	return new Promise((resolvePromise, reject) => {
		server.once('error', reject);
		server.listen(port, host, () => resolvePromise(server));
	});
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
	const args = process.argv.slice(2);
	const dirFlag = args.indexOf('--dir');
	const dir = dirFlag >= 0 ? args[dirFlag + 1] : join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
	const port = Number(process.env.PORT ?? 8080);
	const server = await startServer({ dir, port, isolationHeaders: !args.includes('--no-isolation-headers') });
	const { port: actual } = server.address();
	console.log(`Playground: http://127.0.0.1:${actual}/  (serving ${resolve(dir)}; Ctrl-C to stop)`);
}
