// PHP on shared-fs across real workers: what one worker changes, the next
// request on another sees; locks exclude across workers; SQLite stays
// correct under concurrent writers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();

// The default build (JSPI in this Chromium) with 2 and 4 workers, and the
// asyncify fallback with 2: both must keep our fcntl, flock and getdents hooks.
for (const [workers, build] of [[2, 'jspi'], [4, 'jspi'], [2, 'asyncify']]) {
	describe(`${workers} workers (${build})`, () => {
		let page, context;
		before(async () => {
			({ page, context } = await openPlayground(env.browser, env.origin, `?site=blank&workers=${workers}&phpBuild=${build}`));
		});

		test(`runs on the ${build} build`, async () => {
			assert.equal(await page.evaluate(async () => (await window.playground).phpBuild), build);
		});
		after(() => context?.close());

		const run = (code, worker) =>
			page.evaluate(async ([code, worker]) => (await window.playground).run({ code, worker }), [code, worker]);
		const last = workers - 1;

		test('create, rewrite, rename and delete are seen by the next request on another worker', async () => {
			const dir = `/wordpress/vis${workers}`;
			await run(`<?php mkdir('${dir}'); file_put_contents('${dir}/a.txt', 'one');`, 0);
			let seen = await run(`<?php clearstatcache(); echo json_encode([file_exists('${dir}/a.txt'), is_file('${dir}/a.txt'), scandir('${dir}'), file_get_contents('${dir}/a.txt')]);`, last);
			assert.deepEqual(JSON.parse(seen.text), [true, true, ['.', '..', 'a.txt'], 'one']);

			await run(`<?php file_put_contents('${dir}/a.txt', 'two!'); touch('${dir}/a.txt', 1700000000);`, last);
			seen = await run(`<?php echo json_encode([file_get_contents('${dir}/a.txt'), filemtime('${dir}/a.txt')]);`, 0);
			assert.deepEqual(JSON.parse(seen.text), ['two!', 1700000000]);

			await run(`<?php rename('${dir}/a.txt', '${dir}/b.txt');`, 0);
			seen = await run(`<?php echo json_encode([file_exists('${dir}/a.txt'), file_get_contents('${dir}/b.txt'), scandir('${dir}')]);`, last);
			assert.deepEqual(JSON.parse(seen.text), [false, 'two!', ['.', '..', 'b.txt']]);

			await run(`<?php unlink('${dir}/b.txt');`, last);
			seen = await run(`<?php echo json_encode([file_exists('${dir}/b.txt'), is_file('${dir}/b.txt'), scandir('${dir}')]);`, 0);
			assert.deepEqual(JSON.parse(seen.text), [false, false, ['.', '..']]);
		});

		test('a PHP file rewritten by one worker runs in its new form on another (same size, same second)', async () => {
			const file = `/wordpress/version${workers}.php`;
			for (const worker of [0, last]) {
				await run(`<?php file_put_contents('${file}', '<?php return "A";'); echo include '${file}';`, worker);
			}
			await run(`<?php file_put_contents('${file}', '<?php return "B";');`, 0);
			const b = await run(`<?php echo include '${file}';`, last);
			assert.equal(b.text, 'B');
		});

		test('flock(LOCK_EX) on one worker makes LOCK_EX|LOCK_NB fail on another until released', async () => {
			const file = `/wordpress/flock${workers}`;
			const outcome = await page.evaluate(
				async ([file, last]) => {
					const c = await window.playground;
					const holder = c.run({
						worker: 0,
						code: `<?php $f = fopen('${file}', 'c'); flock($f, LOCK_EX); file_put_contents('${file}.held', '1'); usleep(1500000); flock($f, LOCK_UN); echo 'released';`,
					});
					// Wait until the holder has the lock.
					for (let i = 0; i < 100; i++) {
						if (await c.fileExists(`${file}.held`)) break;
						await new Promise((r) => setTimeout(r, 20));
					}
					const whileHeld = await c.run({
						worker: last,
						code: `<?php $f = fopen('${file}', 'c'); var_dump(flock($f, LOCK_EX | LOCK_NB, $wb), $wb);`,
					});
					const released = await holder;
					const afterRelease = await c.run({
						worker: last,
						code: `<?php $f = fopen('${file}', 'c'); var_dump(flock($f, LOCK_EX | LOCK_NB));`,
					});
					return [whileHeld.text, released.text, afterRelease.text];
				},
				[file, last]
			);
			assert.deepEqual(outcome, ['bool(false)\nbool(true)\n', 'released', 'bool(true)\n']);
		});

		test('concurrent SQLite inserts from every worker: every row once, integrity ok', async () => {
			const db = `/wordpress/concurrent${workers}.sqlite`;
			await run(
				`<?php $db = new PDO('sqlite:${db}'); $db->exec('CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT, n INTEGER)');`,
				0
			);
			await page.evaluate(
				async ([db]) => {
					const c = await window.playground;
					await c.writeFile(
						c.documentRoot + '/insert.php',
						`<?php
						$db = new PDO('sqlite:${db}', null, null, [PDO::ATTR_TIMEOUT => 30, PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
						$db->exec('PRAGMA busy_timeout = 30000');
						$db->beginTransaction();
						$stmt = $db->prepare('INSERT INTO t (who, n) VALUES (?, ?)');
						for ($i = 0; $i < 5; $i++) { $stmt->execute([$_GET['who'], $i]); }
						$db->commit();
						echo 'ok';`
					);
				},
				[db]
			);
			const requests = 40;
			const responses = await page.evaluate(async (requests) => {
				const c = await window.playground;
				return Promise.all(
					Array.from({ length: requests }, (_, i) =>
						fetch(`${c.absoluteUrl}insert.php?who=r${i}`).then(async (r) => `${r.status} ${await r.text()}`)
					)
				);
			}, requests);
			assert.deepEqual(responses, Array(requests).fill('200 ok'));
			const check = await run(
				`<?php $db = new PDO('sqlite:${db}');
				echo json_encode([
					(int) $db->query('SELECT COUNT(*) FROM t')->fetchColumn(),
					(int) $db->query('SELECT COUNT(DISTINCT who || "-" || n) FROM t')->fetchColumn(),
					$db->query('PRAGMA integrity_check')->fetchColumn(),
					$db->query('PRAGMA journal_mode')->fetchColumn(),
				]);`,
				last
			);
			assert.deepEqual(JSON.parse(check.text), [requests * 5, requests * 5, 'ok', 'delete']);
			const served = await page.evaluate(async () => (await window.playground).workers().filter((w) => w.completed > 0).length);
			assert.ok(served > 1, `requests were spread over ${served} workers`);
		});
	});
}

describe('large files', () => {
	test('a 96 MiB file written by one worker has the same hash when read by another', async () => {
		const { page, context } = await openPlayground(env.browser, env.origin, '?site=blank&workers=2');
		const run = (code, worker) =>
			page.evaluate(async ([code, worker]) => (await window.playground).run({ code, worker }), [code, worker]);
		const written = await run(
			`<?php $f = fopen('/wordpress/big.bin', 'w'); $h = hash_init('sha256');
			for ($i = 0; $i < 96; $i++) { $chunk = str_repeat(chr($i) . md5((string) $i), intdiv(1048576, 33)) . str_repeat('x', 1048576 % 33); fwrite($f, $chunk); hash_update($h, $chunk); }
			fclose($f); echo hash_final($h), ' ', filesize('/wordpress/big.bin');`,
			0
		);
		const read = await run(`<?php echo hash_file('sha256', '/wordpress/big.bin'), ' ', filesize('/wordpress/big.bin');`, 1);
		assert.equal(written.errors, '');
		assert.equal(read.text, written.text);
		assert.match(read.text, / 100663296$/);
		await context.close();
	});
});

describe('appends from 4 workers at once', () => {
	let page, context;
	before(async () => {
		({ page, context } = await openPlayground(env.browser, env.origin, '?site=blank&workers=4'));
	});
	after(() => context?.close());

	test('every line of FILE_APPEND and fopen("a") writers lands whole', async () => {
		const log = '/wordpress/shared.log';
		const lines = await page.evaluate(async (log) => {
			const c = await window.playground;
			const writer = (w) => `<?php
				$h = fopen('${log}', 'a');
				for ($i = 0; $i < 300; $i++) {
					file_put_contents('${log}', sprintf("worker %d put %03d\\n", ${w}, $i), FILE_APPEND);
					fwrite($h, sprintf("worker %d fwrite %03d\\n", ${w}, $i));
				}
				fclose($h);`;
			await Promise.all([0, 1, 2, 3].map((worker) => c.run({ worker, code: writer(worker) })));
			return new TextDecoder().decode(await c.readFileAsBuffer(log)).split('\n').filter((l) => l);
		}, log);
		assert.equal(lines.length, 2400);
		assert.equal(new Set(lines).size, 2400, 'no line twice');
		assert.ok(lines.every((l) => /^worker [0-3] (put|fwrite) \d{3}$/.test(l)), 'no line torn');
	});
});
