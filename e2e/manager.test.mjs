// The process manager runs in a worker of its own: a request from the
// service worker reaches PHP without the page's main thread, which may be
// busy with the site's own scripts (the block editor's long tasks), also
// after the browser stopped the idle service worker and started it again.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

/** In the page: a worker of the page fetches `hello.php` through the
 *  service worker for 3 s while the page's main thread spins for 1.5 s of
 *  it; the fetches answered during the spin, and those that failed. */
async function fetchWhileTheMainThreadSpins() {
	const c = await window.playground;
	const url = `${c.absoluteUrl}hello.php`;
	const source = `onmessage = async (e) => {
		const answers = [];
		const end = Date.now() + e.data.ms;
		while (Date.now() < end) {
			try {
				const r = await fetch(e.data.url);
				answers.push({ at: Date.now(), ok: r.status === 200 && (await r.text()) === 'hello' });
			} catch (error) {
				answers.push({ at: Date.now(), ok: false, error: String(error) });
			}
		}
		postMessage(answers);
	};`;
	const worker = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
	const answers = new Promise((resolve) => (worker.onmessage = (e) => resolve(e.data)));
	worker.postMessage({ url, ms: 3000 });
	await new Promise((r) => setTimeout(r, 500));
	const spinStart = Date.now();
	while (Date.now() - spinStart < 1500) {
		// The main thread does nothing else meanwhile.
	}
	const spinEnd = Date.now();
	const all = await answers;
	worker.terminate();
	return {
		duringSpin: all.filter((a) => a.ok && a.at > spinStart && a.at < spinEnd).length,
		failed: all.filter((a) => !a.ok),
		total: all.length,
	};
}

describe('the process manager, off the main thread', () => {
	const env = useBrowserAndServer();
	let page, context;
	before(async () => {
		({ page, context } = await openPlayground(env.browser, env.origin, '?workers=2&site=blank&storage=temp'));
		await page.evaluate(async () => (await window.playground).writeFile('/wordpress/hello.php', '<?php echo "hello";'));
	});

	test('the site is served while the page\'s main thread is busy', async () => {
		const seen = await page.evaluate(fetchWhileTheMainThreadSpins);
		assert.deepEqual(seen.failed, [], JSON.stringify(seen));
		// Dispatched on the main thread, none would be answered during the spin.
		assert.ok(seen.duringSpin >= 3, JSON.stringify(seen));
	});

	test('after the browser stops the idle service worker, requests go on, again without the main thread', async () => {
		const cdp = await context.newCDPSession(page);
		await cdp.send('ServiceWorker.enable');
		await cdp.send('ServiceWorker.stopAllWorkers');
		// The first request starts it again; it has lost its port, so it goes
		// through the page, which claims the scope again for the next ones.
		const first = await page.evaluate(async () => {
			const r = await fetch(`${(await window.playground).absoluteUrl}hello.php`);
			return { status: r.status, text: await r.text() };
		});
		assert.deepEqual(first, { status: 200, text: 'hello' });
		const seen = await page.evaluate(fetchWhileTheMainThreadSpins);
		assert.deepEqual(seen.failed, [], JSON.stringify(seen));
		assert.ok(seen.duringSpin >= 3, JSON.stringify(seen));
	});
});
