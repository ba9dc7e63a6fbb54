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

		test('a PHP file rewritten by one worker runs in its new form on another (same size, same mtime)', async () => {
			const file = `/wordpress/version${workers}.php`;
			// An mtime long past: OPcache does not cache files younger than 2 s
			// (opcache.file_update_protection), and the new code gets the same
			// mtime and size, so only the runtime can tell the versions apart.
			const old = 1700000000;
			await run(`<?php file_put_contents('${file}', '<?php return "A";'); touch('${file}', ${old});`, 0);
			for (const worker of [0, last]) {
				const r = await run(`<?php $a = include '${file}'; echo json_encode([$a, isset(opcache_get_status(true)['scripts']['${file}'])]);`, worker);
				assert.deepEqual(JSON.parse(r.text), ['A', true], `worker ${worker} has "A" in its OPcache ${r.errors}`);
			}
			await run(`<?php file_put_contents('${file}', '<?php return "B";'); touch('${file}', ${old});`, 0);
			for (const worker of [last, 0]) {
				assert.equal((await run(`<?php echo include '${file}';`, worker)).text, 'B', `worker ${worker} runs the new code`);
			}
		});

		test('flock(LOCK_EX) on one worker makes LOCK_EX|LOCK_NB fail on another until released', async () => {
			const file = `/wordpress/flock${workers}`;
			const outcome = await page.evaluate(
				async ([file, last]) => {
					const c = await window.playground;
					// The holder keeps the lock until told (no time window), at most 120 s.
					const holder = c.run({
						worker: 0,
						code: `<?php $f = fopen('${file}', 'c'); flock($f, LOCK_EX); file_put_contents('${file}.held', '1');
						for ($t = time(); !file_exists('${file}.release') && time() - $t < 120; clearstatcache()) usleep(10000);
						flock($f, LOCK_UN); echo file_exists('${file}.release') ? 'released' : 'never told to release';`,
					});
					const wait = 60000;
					for (const deadline = Date.now() + wait; !(await c.fileExists(`${file}.held`)); ) {
						if (Date.now() > deadline) throw new Error(`worker 0 did not take the lock within ${wait} ms (${file}.held never appeared)`);
						await new Promise((r) => setTimeout(r, 20));
					}
					const whileHeld = await c.run({
						worker: last,
						code: `<?php $f = fopen('${file}', 'c'); var_dump(flock($f, LOCK_EX | LOCK_NB, $wb), $wb);`,
					});
					await c.writeFile(`${file}.release`, '1');
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
			const served = await page.evaluate(async () => (await (await window.playground).workers()).filter((w) => w.completed > 0).length);
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
