// A full filesystem: PHP gets a clean "no space" error, the workers and the
// shared heap live on, and deleting files makes the space usable again.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();

// Writes 1 MiB files into /wordpress/fill/ until one fails; returns how many
// were written whole and the warning PHP gave for the one that failed.
const fill = `<?php
	@mkdir('/wordpress/fill');
	$chunk = str_repeat('x', 1 << 20);
	for ($n = 0; $n < 1000; $n++) {
		if (@file_put_contents("/wordpress/fill/$n", $chunk) !== strlen($chunk)) break;
	}
	@unlink("/wordpress/fill/$n");
	echo json_encode(['written' => $n, 'error' => error_get_last()['message'] ?? null]);`;
const empty = `<?php foreach (glob('/wordpress/fill/*') as $f) unlink($f); echo count(glob('/wordpress/fill/*'));`;

describe('a full shared memory', () => {
	test('fill until ENOSPC, delete, and both workers serve and write again', async () => {
		const { page, context, logs } = await openPlayground(env.browser, env.origin, '?storage=temp&memoryMaximumMb=96&workers=2&site=blank');
		const outcome = await page.evaluate(
			async ({ fill, empty }) => {
				const c = await window.playground;
				const first = JSON.parse((await c.run({ worker: 0, code: fill })).text);
				const left = (await c.run({ worker: 0, code: empty })).text;
				const other = await c.run({ worker: 1, code: '<?php echo str_repeat("y", 1 << 16) === str_repeat("y", 1 << 16) ? "alive" : "?";' });
				const again = JSON.parse((await c.run({ worker: 1, code: fill })).text);
				return { first, left, other: other.text, again, workers: await c.workers() };
			},
			{ fill, empty }
		);
		assert.ok(outcome.first.written >= 40, `only ${outcome.first.written} MiB fit in 96 MiB`);
		assert.match(outcome.first.error ?? '', /space/i, 'PHP was told the disk is full');
		assert.equal(outcome.left, '0');
		assert.equal(outcome.other, 'alive', logs.slice(-5).join('\n'));
		assert.ok(outcome.again.written >= outcome.first.written - 2, `after deleting, ${outcome.again.written} of ${outcome.first.written} fit again`);
		assert.deepEqual(outcome.workers.map((w) => w.crashed), [0, 0], JSON.stringify(outcome.workers));
		await context.close();
	});
});

describe('a full saved site', () => {
	test('fill until ENOSPC, delete, write again: after a reload exactly what was acknowledged is there', async () => {
		const context = await env.browser.newContext();
		const page = await context.newPage();
		const logs = [];
		page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
		const url = `${env.origin}/?memoryMaximumMb=96&workers=2&site=blank&site-slug=space-full-${Date.now()}`;
		await page.goto(url);
		const outcome = await page.evaluate(
			async ({ fill, empty }) => {
				const c = await window.playground;
				const first = JSON.parse((await c.run({ worker: 0, code: fill })).text);
				const left = (await c.run({ worker: 0, code: empty })).text;
				const kept = await c.run({
					worker: 1,
					code: `<?php for ($i = 0; $i < 5; $i++) file_put_contents("/wordpress/kept-$i.txt", "kept $i"); echo 'ok';`,
				});
				return { first, left, kept: kept.text, errors: kept.errors, workers: await c.workers() };
			},
			{ fill, empty }
		);
		assert.ok(outcome.first.written >= 40, `only ${outcome.first.written} MiB fit: ${logs.slice(-5).join('\n')}`);
		assert.match(outcome.first.error ?? '', /space/i);
		assert.equal(outcome.left, '0');
		assert.equal(outcome.kept, 'ok', `${outcome.errors}\n${logs.slice(-5).join('\n')}`);
		await page.reload();
		const reopened = await page.evaluate(async () => {
			const c = await window.playground;
			const r = await c.run({ code: `<?php echo json_encode(['kept' => array_map('basename', glob('/wordpress/kept-*.txt')), 'fill' => count(glob('/wordpress/fill/*'))]);` });
			return { restored: c.restored, notice: c.storageNotice ?? null, files: JSON.parse(r.text) };
		});
		assert.equal(reopened.restored, true);
		assert.equal(reopened.notice, null);
		assert.deepEqual(reopened.files, { kept: ['kept-0.txt', 'kept-1.txt', 'kept-2.txt', 'kept-3.txt', 'kept-4.txt'], fill: 0 });
		await context.close();
	});
});

describe("a full browser storage quota", () => {
	test('writes past the quota fail saying so, deleting makes room, and a reload finds exactly what was acknowledged', async () => {
		const context = await env.browser.newContext();
		const page = await context.newPage();
		const logs = [];
		page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
		// Chromium's own quota for this origin, made small (DevTools protocol).
		const cdp = await context.newCDPSession(page);
		await cdp.send('Storage.overrideQuotaForOrigin', { origin: env.origin, quotaSize: 40 * 2 ** 20 });
		await page.goto(`${env.origin}/?workers=2&site=blank&site-slug=quota-full-${Date.now()}`);
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			const acknowledged = [];
			let refused = null;
			for (let i = 0; i < 80 && !refused; i++) {
				await c
					.run({ worker: i % 2, code: `<?php file_put_contents('/wordpress/fill-${i}', str_repeat('x', 1 << 20)); echo 'ok';` })
					.then(
						(r) => r.text === 'ok' && acknowledged.push(`fill-${i}`),
						(e) => (refused = e.message)
					);
			}
			const emptied = await c.run({ code: `<?php foreach (glob('/wordpress/fill-*') as $f) unlink($f); echo 'ok';` }).then(
				(r) => r.text,
				(e) => e.message
			);
			const kept = await c
				.run({ worker: 1, code: `<?php for ($i = 0; $i < 5; $i++) file_put_contents("/wordpress/kept-$i.txt", str_repeat('k', 100000)); echo 'ok';` })
				.then(
					(r) => r.text,
					(e) => e.message
				);
			return { acknowledged, refused, emptied, kept };
		});
		assert.ok(outcome.acknowledged.length >= 5, `only ${outcome.acknowledged.length} MiB were saved under a 40 MiB quota`);
		assert.match(outcome.refused ?? 'never refused', /could not be saved: .*storage for this site is full/);
		assert.equal(outcome.emptied, 'ok', logs.join('\n'));
		assert.equal(outcome.kept, 'ok', logs.join('\n'));
		await page.reload();
		const reopened = await page.evaluate(async () => {
			const c = await window.playground;
			const r = await c.run({ code: `<?php echo json_encode(array_map('basename', array_merge(glob('/wordpress/fill-*'), glob('/wordpress/kept-*'))));` });
			return { restored: c.restored, notice: c.storageNotice ?? null, files: JSON.parse(r.text) };
		});
		assert.deepEqual(reopened, {
			restored: true,
			notice: null,
			files: ['kept-0.txt', 'kept-1.txt', 'kept-2.txt', 'kept-3.txt', 'kept-4.txt'],
		});
		await context.close();
	});
});
