// The process manager with real workers: a bounded queue answers 503, a
// runaway request answers 504 and its worker is replaced, and the site keeps
// serving.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();

async function writeScript(page, name, code) {
	await page.evaluate(
		async ([name, code]) => {
			const client = await window.playground;
			await client.writeFile(`${client.documentRoot}/${name}`, code);
		},
		[name, code]
	);
}

describe('one worker, a queue of two', () => {
	test('8 simultaneous slow requests: some 200, the rest 503 with Retry-After, none hangs', async () => {
		const { page, context } = await openPlayground(env.browser, env.origin, '?site=blank&workers=1&maxQueue=2');
		// Long enough that all 8 arrive while the first runs, even on a loaded machine.
		await writeScript(page, 'slow.php', '<?php usleep(2000000); echo "done";');
		const results = await page.evaluate(async () => {
			const client = await window.playground;
			const started = performance.now();
			const responses = await Promise.all(
				Array.from({ length: 8 }, () =>
					fetch(client.absoluteUrl + 'slow.php').then(async (r) => ({
						status: r.status,
						retryAfter: r.headers.get('retry-after'),
						body: await r.text(),
					}))
				)
			);
			return { responses, ms: performance.now() - started };
		});
		const ok = results.responses.filter((r) => r.status === 200);
		const busy = results.responses.filter((r) => r.status === 503);
		assert.equal(ok.length + busy.length, 8, JSON.stringify(results.responses));
		assert.ok(ok.length >= 1 && ok.length <= 3, `1 running + 2 queued at most: ${ok.length} succeeded`);
		assert.ok(busy.length >= 5, `${busy.length} rejected`);
		assert.ok(ok.every((r) => r.body === 'done'));
		assert.ok(busy.every((r) => r.retryAfter === '1'));
		await context.close();
	});
});

describe('request timeout', () => {
	test('an endless loop gets 504, its worker is replaced, and the next request succeeds', async () => {
		const { page, context } = await openPlayground(env.browser, env.origin, '?site=blank&workers=1&requestTimeoutMs=3000');
		await writeScript(page, 'loop.php', '<?php while (true) {}');
		await writeScript(page, 'ok.php', '<?php echo "still serving";');
		const outcome = await page.evaluate(async () => {
			const client = await window.playground;
			const looped = await fetch(client.absoluteUrl + 'loop.php');
			const next = await fetch(client.absoluteUrl + 'ok.php');
			return {
				loopStatus: looped.status,
				nextStatus: next.status,
				nextBody: await next.text(),
				workers: await client.workers(),
			};
		});
		assert.equal(outcome.loopStatus, 504);
		assert.equal(outcome.nextStatus, 200);
		assert.equal(outcome.nextBody, 'still serving');
		assert.equal(outcome.workers[0].timedOut, 1);
		assert.equal(outcome.workers[0].restarts, 1);
		// Files written before the timeout are still there on the shared FS.
		const kept = await page.evaluate(async () => {
			const client = await window.playground;
			return client.readFileAsText(client.documentRoot + '/ok.php');
		});
		assert.equal(kept, '<?php echo "still serving";');
		await context.close();
	});
});

describe('a crashing PHP runtime', () => {
	test('its worker is replaced; a request in flight elsewhere and the shared files are unaffected', async () => {
		const { page, context } = await openPlayground(env.browser, env.origin, '?site=blank&workers=2');
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			await c.writeFile(c.documentRoot + '/kept.txt', 'still here');
			const slow = c.run({ worker: 1, code: '<?php usleep(1500000); echo "slow done";' });
			// php.wasm traps when PHP opens a socket with no network behind it.
			const crash = await c.run({ worker: 0, code: "<?php curl_exec(curl_init('http://127.0.0.1:9/'));" }).then(
				() => 'resolved',
				(e) => e.message
			);
			const slowText = (await slow).text;
			for (let i = 0; i < 100 && (await c.workers())[0].state !== 'idle'; i++) await new Promise((r) => setTimeout(r, 50));
			const again = await c.run({ worker: 0, code: '<?php echo file_get_contents("/wordpress/kept.txt");' });
			return { crash, slowText, again: again.text, worker0: (await c.workers())[0] };
		});
		assert.match(outcome.crash, /unreachable|crash/i);
		assert.equal(outcome.slowText, 'slow done');
		assert.equal(outcome.again, 'still here');
		assert.equal(outcome.worker0.crashed, 1);
		assert.equal(outcome.worker0.restarts, 1);
		await context.close();
	});
});

describe('old PHP runtimes are swapped for fresh ones (maxRequests)', () => {
	// This script's OPcache hit count grows by one with each request a
	// runtime serves it, and starts again in a fresh runtime.
	const info = `<?php
		$f = fopen('/tmp/lock', 'c');
		echo json_encode([
			'hits' => opcache_get_status(true)['scripts'][__FILE__]['hits'] ?? -1,
			'locked' => flock($f, LOCK_EX),
			'shared' => @file_get_contents('/wordpress/from-1.txt'),
		]);`;

	test('every request is served, each worker swaps its runtime, and files, locks and mounts carry over', async () => {
		const { page, context } = await openPlayground(env.browser, env.origin, '?site=blank&workers=2&maxRequests=3');
		await writeScript(page, 'info.php', info);
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			// Old enough for OPcache to cache it at once (it skips files younger than 2 s).
			await c.run({ code: `<?php touch('/wordpress/info.php', time() - 60);` });
			const statuses = [];
			const hits = [[], []];
			for (let i = 0; i < 10; i++) {
				const on = i % 2;
				if (i === 4) await c.run({ worker: 1, code: `<?php file_put_contents('/wordpress/from-1.txt', 'from 1');` });
				const r = await c.request({ url: '/info.php', worker: on });
				statuses.push(r.httpStatusCode);
				const seen = JSON.parse(r.text);
				hits[on].push(seen.hits);
				if (!seen.locked) throw new Error(`flock failed on worker ${on} at request ${i}`);
				if (i > 4 && seen.shared !== 'from 1') throw new Error(`worker ${on} does not see worker 1's file: ${r.text}`);
			}
			const fresh = hits.map((h) => h.filter((n, i) => i > 0 && n !== h[i - 1] + 1).length);
			return { statuses, hits, fresh, workers: await c.workers() };
		});
		assert.deepEqual(outcome.statuses, Array(10).fill(200));
		for (const w of [0, 1]) {
			const worker = outcome.workers[w];
			assert.ok(worker.recycled >= 1, `worker ${w}: ${JSON.stringify(worker)}`);
			assert.equal(worker.crashed, 0);
			assert.equal(worker.restarts, 0);
			assert.ok(outcome.fresh[w] >= 1, `worker ${w}'s OPcache hits never started again: ${outcome.hits[w]}`);
		}
		await context.close();
	});

	test('WordPress pages through the service worker while runtimes are swapped: all 200', async () => {
		const { page, context } = await openPlayground(env.browser, env.origin, '?workers=2&maxRequests=2');
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			const pages = await Promise.all(
				Array.from({ length: 12 }, (_, i) =>
					fetch(c.absoluteUrl + (i % 3 ? '' : '?s=hello')).then(async (r) => ({ status: r.status, body: await r.text() }))
				)
			);
			return {
				statuses: pages.map((p) => p.status),
				titled: pages.filter((p) => p.body.includes('My WordPress Website')).length,
				recycled: (await c.workers()).reduce((n, w) => n + w.recycled, 0),
			};
		});
		assert.deepEqual(outcome.statuses, Array(12).fill(200));
		assert.equal(outcome.titled, 12);
		assert.ok(outcome.recycled >= 2, `${outcome.recycled} runtimes swapped`);
		await context.close();
	});
});
