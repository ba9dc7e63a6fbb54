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
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			await c.writeFile('/wordpress/slow.php', '<?php usleep(1500000); echo "slow done";');
			await c.writeFile('/wordpress/site.css', 'body { color: teal }');
			const started = performance.now();
			const slow = fetch(c.absoluteUrl + 'slow.php').then(async (r) => [await r.text(), performance.now() - started]);
			await new Promise((r) => setTimeout(r, 200)); // the worker is inside slow.php now
			const timed = async (path) => {
				const r = await fetch(c.absoluteUrl + path);
				return [r.status, (await r.text()).length, performance.now() - started];
			};
			const own = await timed('site.css');
			const build = await timed('wp-includes/css/dashicons.min.css');
			return { own, build, slow: await slow };
		});
		assert.equal(outcome.slow[0], 'slow done');
		for (const [status, length, at] of [outcome.own, outcome.build]) {
			assert.equal(status, 200);
			assert.ok(length > 0);
			assert.ok(at < outcome.slow[1], `served at ${at} ms, before the PHP request ended at ${outcome.slow[1]} ms`);
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

	test('a missing static file is a 404', async () => {
		const status = await page.evaluate(async () => (await fetch((await window.playground).absoluteUrl + 'no/such/file.js')).status);
		assert.equal(status, 404);
	});
});
