// A trap in any call into the worker module is that runtime's death, and the
// site survives it: the request gets a clear answer, the worker is replaced,
// and its replacement's release_all frees its locks and repairs the
// operation it was in. Faults are injected with the test-only build
// target/dist-faults/ (`node playground/build.mjs --fault-injection`, which
// `make test-e2e` runs; worker/src/fault.rs), armed from PHP through
// post_message_to_js. The default dist/ has none of it (last test).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distDir, openPlayground, useBrowserAndServer } from './harness.mjs';

const faultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'target', 'dist-faults');
if (!existsSync(join(faultsDir, 'worker', 'worker_bg.wasm'))) {
	throw new Error(`${faultsDir} is not built: run \`node playground/build.mjs --fault-injection\` (make test-e2e does)`);
}

const env = useBrowserAndServer({ dir: faultsDir });

// A long request timeout: nothing below may wait for one.
const QUERY = '?site=blank&workers=2&requestTimeoutMs=120000';

/** PHP that arms `fault` (worker-entry.js `injectFault`) and then writes. */
function trapInWrite(file, fault = {}) {
	return `<?php
post_message_to_js('${JSON.stringify({ 'fault-injection': { panic: 'write', step: 3, ...fault } })}');
file_put_contents('${file}', str_repeat('x', 10000));
echo 'not reached';`;
}

/** Waits in the page until worker `index` is idle again after a restart. */
const waitForRestart = async (c, index, restarts) => {
	for (let i = 0; i < 400; i++) {
		const w = (await c.workers())[index];
		if (w.restarts >= restarts && w.state === 'idle') return w;
		await new Promise((r) => setTimeout(r, 25));
	}
	throw new Error(`worker ${index} was not replaced: ${JSON.stringify(await c.workers())}`);
};

describe('a worker that traps holding an inode write lock (shared-fs write, after its "copied" step)', () => {
	test('client.run: an error, the worker is replaced, the other worker writes the file at once, check() is clean', async () => {
		const { page, context, logs } = await openPlayground(env.browser, env.origin, QUERY);
		const outcome = await page.evaluate(
			async ([trapCode, waitSource]) => {
				const waitForRestart = eval(waitSource);
				const c = await window.playground;
				const file = c.documentRoot + '/victim.txt';
				await c.writeFile(file, 'before');
				const crash = await c.run({ worker: 0, code: trapCode }).then(
					(r) => `resolved: ${JSON.stringify(r)}`,
					(e) => e.message
				);
				const afterCrash = performance.now();
				// The file's inode lock was held by the dead worker: worker 1
				// gets it as soon as worker 0's replacement has run release_all.
				const w1 = await c.run({
					worker: 1,
					code: `<?php file_put_contents('${file}', 'written by worker 1'); echo file_get_contents('${file}');`,
				});
				const w1Ms = performance.now() - afterCrash;
				const worker0 = await waitForRestart(c, 0, 1);
				const check = await c.run({
					worker: 1,
					code: `<?php echo post_message_to_js(json_encode(['fault-injection' => ['check' => true]]));`,
				});
				const again = await c.run({ worker: 0, code: `<?php echo file_get_contents('${file}');` });
				return { crash, w1: w1.text, w1Ms, worker0, worker1: (await c.workers())[1], check: check.text, again: again.text };
			},
			[trapInWrite('/wordpress/victim.txt'), waitForRestart.toString()]
		);
		assert.match(outcome.crash, /crashed/i, outcome.crash);
		assert.equal(outcome.w1, 'written by worker 1');
		// It got the lock once worker 0's replacement ran release_all, not by
		// outwaiting anything: its request did not time out (2 min here).
		assert.equal(outcome.worker1.timedOut, 0, `worker 1 waited ${Math.round(outcome.w1Ms)} ms`);
		assert.equal(outcome.worker0.crashed, 1);
		assert.equal(outcome.worker0.restarts, 1);
		assert.equal(outcome.worker1.restarts, 0);
		assert.equal(outcome.check, 'ok');
		assert.equal(outcome.again, 'written by worker 1');
		// The module trapped under PHP, inside a call the guard wrapped: its
		// `finally` still ran, so the safe-point word was back to OUTSIDE (0).
		assert.ok(
			logs.some((l) => /worker 0 died \(safe-point word 0\).*(unreachable|RuntimeError)/s.test(l)),
			logs.join('\n')
		);
		await context.close();
	});

	test('an HTTP request gets 502, the site keeps serving the same file', async () => {
		const { page, context } = await openPlayground(env.browser, env.origin, QUERY);
		const outcome = await page.evaluate(async (trapCode) => {
			const c = await window.playground;
			await c.writeFile(c.documentRoot + '/trap.php', trapCode);
			await c.writeFile(c.documentRoot + '/read.php', `<?php file_put_contents(__DIR__ . '/victim.txt', 'after'); echo file_get_contents(__DIR__ . '/victim.txt');`);
			const trapped = await fetch(c.absoluteUrl + 'trap.php');
			const body = await trapped.text();
			const next = await fetch(c.absoluteUrl + 'read.php');
			return { status: trapped.status, body, nextStatus: next.status, next: await next.text(), workers: await c.workers() };
		}, trapInWrite('/wordpress/victim.txt'));
		assert.equal(outcome.status, 502);
		assert.match(outcome.body, /crashed/);
		assert.equal(outcome.nextStatus, 200);
		assert.equal(outcome.next, 'after');
		assert.equal(outcome.workers.reduce((n, w) => n + w.crashed, 0), 1);
		await context.close();
	});

	test('a worker whose safe-point word stays INSIDE after the trap is still terminated and replaced', async () => {
		// As a module whose own safe-point handshake (not the JS guard) could
		// not leave before trapping: the host must not wait for OUTSIDE.
		const { page, context, logs } = await openPlayground(env.browser, env.origin, QUERY);
		const outcome = await page.evaluate(
			async ([trapCode, waitSource]) => {
				const waitForRestart = eval(waitSource);
				const c = await window.playground;
				const crash = await c.run({ worker: 0, code: trapCode }).then(
					() => 'resolved',
					(e) => e.message
				);
				const worker0 = await waitForRestart(c, 0, 1);
				const again = await c.run({ worker: 0, code: `<?php echo file_get_contents('/wordpress/victim.txt');` });
				return { crash, worker0, again: again.text };
			},
			[trapInWrite('/wordpress/victim.txt', { staysInside: true }), waitForRestart.toString()]
		);
		assert.match(outcome.crash, /crashed/i);
		assert.equal(outcome.worker0.restarts, 1);
		// The write trapped after growing the size and copying, before linking
		// its blocks: the repair gave the blocks back, so the size stays and
		// the range reads as zeros (shared-fs journal.rs).
		assert.equal(outcome.again, '\0'.repeat(10000));
		assert.ok(logs.some((l) => /worker 0 died \(safe-point word 1\)/.test(l)), logs.join('\n'));
		await context.close();
	});
});

describe('a worker that traps holding the shared heap allocator lock', () => {
	test('the site stops at once with a clear error for every request, instead of hanging', async () => {
		// A temporary site: nothing to reopen it from (a saved one reopens, below).
		const { page, context } = await openPlayground(env.browser, env.origin, `${QUERY}&storage=temp`);
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			await c.writeFile(c.documentRoot + '/ok.php', '<?php echo "ok";');
			// Worker 1 busy meanwhile: its request is answered too.
			const slow = c.run({ worker: 1, code: '<?php usleep(1500000); echo "slow";' }).then(
				(r) => `resolved: ${r.text}`,
				(e) => e.message
			);
			const started = performance.now();
			const crash = await c
				.run({
					worker: 0,
					code: `<?php post_message_to_js(json_encode(['fault-injection' => ['allocator' => true]])); echo file_get_contents('/wordpress/ok.php');`,
				})
				.then(
					(r) => `resolved: ${JSON.stringify(r)}`,
					(e) => e.message
				);
			const http = await fetch(c.absoluteUrl + 'ok.php');
			const later = await c.run({ code: '<?php echo 1;' }).then(
				() => 'resolved',
				(e) => e.message
			);
			return {
				crash,
				slow: await slow,
				httpStatus: http.status,
				httpBody: await http.text(),
				later,
				ms: performance.now() - started,
				states: (await c.workers()).map((w) => w.state),
			};
		});
		assert.match(outcome.crash, /crashed inside the shared memory allocator/, outcome.crash);
		assert.match(outcome.slow, /The site stopped/, outcome.slow);
		assert.equal(outcome.httpStatus, 500);
		assert.match(outcome.httpBody, /The site stopped/);
		assert.match(outcome.later, /The site stopped/);
		// A hang would leave these unanswered until the test's own limit.
		assert.deepEqual(outcome.states, ['failed', 'failed']);
		await context.close();
	});
});

describe('the allocator trap on a saved site', () => {
	test('the page reopens the site from its saved copy, every acknowledged change intact', async () => {
		const { page, context } = await openPlayground(env.browser, env.origin, '?site=blank&workers=2&site-slug=allocator-trap');
		const crash = await page.evaluate(async () => {
			const c = await window.playground;
			await c.writeFile(c.documentRoot + '/kept.php', '<?php echo "kept";');
			await c.run({ worker: 1, code: "<?php file_put_contents('/wordpress/by-php.txt', 'acknowledged'); echo 'ok';" });
			return c
				.run({ worker: 0, code: `<?php post_message_to_js(json_encode(['fault-injection' => ['allocator' => true]]));` })
				.then(
					() => 'resolved',
					(e) => e.message
				);
		});
		assert.match(crash, /Every change whose response arrived is saved/, crash);
		// The page reloads itself (playground.js onSiteStopped) and reopens the site.
		await page.waitForFunction(() => window.playground !== undefined && performance.getEntriesByType('navigation')[0]?.type === 'reload', null, { timeout: 60000 });
		const after = await page.evaluate(async () => {
			const c = await window.playground;
			const r = await c.run({ code: "<?php echo file_get_contents('/wordpress/by-php.txt');" });
			const http = await c.request({ url: '/kept.php' });
			return { restored: c.restored, text: r.text, http: http.text };
		});
		assert.deepEqual(after, { restored: true, text: 'acknowledged', http: 'kept' });
		await context.close();
	});
});

describe('helper workers die and come back', () => {
	test('the storage worker dies mid-batch: its replacement stores the waiting change, and a reload finds it', async () => {
		const slug = `storage-death-${Date.now()}`;
		const { page, context, logs } = await openPlayground(env.browser, env.origin, `?site=blank&workers=2&site-slug=${slug}`);
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			const waited = await c.run({
				worker: 0,
				code: `<?php post_message_to_js(json_encode(['fault-injection' => ['helper' => 'storage']]));
					file_put_contents('/wordpress/during.txt', 'stored by the replacement'); echo 'ok';`,
			});
			const after = await c.run({ worker: 1, code: "<?php file_put_contents('/wordpress/after.txt', 'stored after'); echo 'ok';" });
			return { waited: waited.text, waitedErrors: waited.errors, after: after.text };
		});
		assert.equal(outcome.waited, 'ok', `${outcome.waitedErrors}\n${logs.join('\n')}`);
		assert.equal(outcome.after, 'ok');
		// The storage worker (index 3: after 2 PHP workers and the file server) trapped.
		assert.ok(logs.some((l) => /worker 3: Uncaught RuntimeError: unreachable/.test(l)), `the storage worker did not die:\n${logs.join('\n')}`);
		await page.reload();
		const reopened = await page.evaluate(async () => {
			const c = await window.playground;
			const r = await c.run({ code: "<?php echo file_get_contents('/wordpress/during.txt'), ' / ', file_get_contents('/wordpress/after.txt');" });
			return { restored: c.restored, notice: c.storageNotice ?? null, text: r.text };
		});
		assert.deepEqual(reopened, { restored: true, notice: null, text: 'stored by the replacement / stored after' });
		await context.close();
	});

	test('the file server dies: its request gets 502 saying so, and static files are served again', async () => {
		const { page, context, logs } = await openPlayground(env.browser, env.origin, QUERY);
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			await c.writeFile(c.documentRoot + '/style.css', 'body { color: teal }');
			await c.run({ code: `<?php post_message_to_js(json_encode(['fault-injection' => ['helper' => 'files']]));` });
			const lost = await fetch(c.absoluteUrl + 'style.css');
			const lostText = await lost.text();
			const next = await fetch(c.absoluteUrl + 'style.css');
			return { lost: lost.status, lostText, next: next.status, nextText: await next.text(), workers: await c.workers() };
		});
		assert.equal(outcome.lost, 502);
		assert.match(outcome.lostText, /file server crashed/);
		assert.equal(outcome.next, 200);
		assert.equal(outcome.nextText, 'body { color: teal }');
		assert.ok(logs.some((l) => /worker 2 died/.test(l)), logs.join('\n'));
		assert.deepEqual(outcome.workers.map((w) => w.crashed), [0, 0], 'no PHP worker was harmed');
		await context.close();
	});
});

describe('the same trap without telling the host it held the allocator lock (what happened before)', () => {
	test('the whole site hangs: the replacement never boots, the other worker times out and is never replaced', async () => {
		const { page, context } = await openPlayground(env.browser, env.origin, '?site=blank&workers=2&requestTimeoutMs=2000');
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			// Worker 1 up first (extra workers start on demand).
			await c.run({ worker: 1, code: '<?php echo 1;' });
			const crash = await c
				.run({ worker: 0, code: `<?php post_message_to_js('{"fault-injection":{"allocator":true,"hidesAllocator":true}}');` })
				.then(
					() => 'resolved',
					(e) => e.message
				);
			// Its next allocation (decoding the job) spins on the dead worker's lock.
			const other = await c.run({ worker: 1, code: '<?php echo 1;' }).then(
				() => 'resolved',
				(e) => e.message
			);
			await new Promise((r) => setTimeout(r, 3000));
			return { crash, other, workers: await c.workers() };
		});
		assert.match(outcome.crash, /crashed/);
		assert.match(outcome.other, /request timeout/);
		// Worker 0's replacement spins in `attach`; worker 1 spins inside module
		// code, so the host can never bring it to a safe point to replace it.
		assert.deepEqual(
			outcome.workers.map((w) => [w.state, w.restarts]),
			[
				['booting', 1],
				['booting', 1],
			]
		);
		await context.close();
	});
});

test('the default build ships no fault injection', () => {
	const entry = readFileSync(join(distDir, 'worker', 'worker-entry.js'), 'utf8');
	const wasm = readFileSync(join(distDir, 'worker', 'worker_bg.wasm')).toString('latin1');
	for (const name of ['fault-injection', 'fault_panic_at', 'fault_trap_in_allocator', 'fault_check_fs']) {
		assert.ok(!entry.includes(name), `dist/worker/worker-entry.js contains ${name}`);
		assert.ok(!wasm.includes(name), `dist/worker/worker_bg.wasm contains ${name}`);
	}
	const faulty = readFileSync(join(faultsDir, 'worker', 'worker-entry.js'), 'utf8');
	assert.ok(faulty.includes('fault_panic_at'), 'the fault-injection build has its hooks');
});
