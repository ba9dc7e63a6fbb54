// Static files go to the file server (a worker without PHP), so they never
// wait behind PHP requests; what the site holds at a path still wins over
// WordPress's build copy, and a path that needs PHP still reaches PHP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();

describe('static files with one PHP worker', () => {
	let page, context;
	before(async () => {
		({ page, context } = await openPlayground(env.browser, env.origin, '?workers=1'));
	});
	after(() => context?.close());

	test('are served while the only PHP worker is busy', async () => {
		// No time windows: slow.php holds the only PHP worker until the test
		// fetches release.txt as a static file (that read moves its atime
		// past the one slow.php set: relatime), so the static files below are
		// fetched while PHP is provably busy, whatever the machine's load.
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			const url = (path) => c.absoluteUrl + path;
			const WAIT = 60000;
			await c.writeFile('/wordpress/started.txt', 'no');
			await c.writeFile(
				'/wordpress/slow.php',
				`<?php
				$release = __DIR__ . '/release.txt';
				file_put_contents($release, 'release');
				$old = time() - 10;
				touch($release, time(), $old);
				file_put_contents(__DIR__ . '/started.txt', 'yes');
				$until = time() + 120;
				do { usleep(20000); clearstatcache(); } while (fileatime($release) === $old && time() < $until);
				echo fileatime($release) === $old ? 'never released' : 'slow done';`
			);
			await c.writeFile('/wordpress/site.css', 'body { color: teal }');
			let slowEnded = false;
			const slow = fetch(url('slow.php')).then(async (r) => {
				const text = await r.text();
				slowEnded = true;
				return text;
			});
			const deadline = Date.now() + WAIT;
			for (;;) {
				const r = await fetch(url('started.txt'), { signal: AbortSignal.timeout(WAIT) }).catch((e) => e);
				if (r instanceof Response && (await r.text()) === 'yes') break;
				if (Date.now() > deadline) {
					throw new Error(`slow.php did not start, or started.txt was not served while it ran, within ${WAIT} ms (last: ${r instanceof Response ? `HTTP ${r.status}` : r})`);
				}
				await new Promise((r) => setTimeout(r, 50));
			}
			const served = async (path) => {
				const r = await fetch(url(path), { signal: AbortSignal.timeout(WAIT) }).catch((e) => {
					throw new Error(`${path} was not served within ${WAIT} ms while slow.php held the only PHP worker: ${e}`);
				});
				return [r.status, (await r.text()).length, slowEnded];
			};
			const own = await served('site.css');
			const build = await served('wp-includes/css/dashicons.min.css');
			await served('release.txt');
			return { own, build, slow: await slow };
		});
		assert.equal(outcome.slow, 'slow done', 'reading release.txt as a static file should have ended slow.php');
		for (const [status, length, slowEnded] of [outcome.own, outcome.build]) {
			assert.equal(status, 200);
			assert.ok(length > 0);
			assert.equal(slowEnded, false, 'served only after the PHP request ended');
		}
		assert.equal(outcome.own[1], 'body { color: teal }'.length);
	});

	test('a file the site wrote at a build asset path wins over the build copy', async () => {
		const body = await page.evaluate(async () => {
			const c = await window.playground;
			await c.writeFile('/wordpress/wp-includes/css/dashicons.min.css', '/* the site changed this */');
			return (await fetch(c.absoluteUrl + 'wp-includes/css/dashicons.min.css')).text();
		});
		assert.equal(body, '/* the site changed this */');
	});

	test('a static-looking path that is a directory with index.php reaches PHP', async () => {
		const text = await page.evaluate(async () => {
			const c = await window.playground;
			await c.mkdir('/wordpress/odd.css');
			await c.writeFile('/wordpress/odd.css/index.php', '<?php echo "php answered " . PHP_SAPI;');
			return (await fetch(c.absoluteUrl + 'odd.css')).text();
		});
		assert.equal(text, 'php answered cli-server');
	});

	test("a build's static file is asked of the server once, then kept by the browser, not by the page", async () => {
		const asked = [];
		const log = (req) => req.url.includes('/about.min.css') && asked.push(req.url);
		env.server.server.on('request', log);
		try {
			const replies = await page.evaluate(async () => {
				const url = (await window.playground).absoluteUrl + 'wp-admin/css/about.min.css?ver=6.5.5';
				const out = [];
				for (let i = 0; i < 2; i++) {
					const r = await fetch(url);
					out.push([r.status, (await r.text()).length, r.headers.get('cache-control')]);
				}
				return out;
			});
			assert.deepEqual(replies[1], replies[0]);
			assert.equal(replies[0][0], 200);
			assert.ok(replies[0][1] > 1000, `about.min.css has ${replies[0][1]} bytes`);
			// The page must come back to the service worker each time: the site
			// may write its own file at that path.
			assert.equal(replies[0][2], 'no-cache');
			// Its URL names the build's release (host/src/versions.rs), so the
			// second load never reaches the server, not even to revalidate.
			assert.equal(asked.length, 1, `the server was asked ${asked.length} times: ${asked.join(', ')}`);
			assert.match(asked[0], /^\/wordpress\/\d+\.\d+\.\d+\/wp-6\.5\/wp-admin\/css\/about\.min\.css$/);
		} finally {
			env.server.server.off('request', log);
		}
	});

	test('a missing static file is a 404', async () => {
		const status = await page.evaluate(async () => (await fetch((await window.playground).absoluteUrl + 'no/such/file.js')).status);
		assert.equal(status, 404);
	});
});
