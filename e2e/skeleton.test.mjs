// The walking skeleton's real path, end to end in Chromium: two php-wasm
// workers on one shared filesystem, and a PHP file served through the
// service worker.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

describe('two workers on one shared filesystem', () => {
	const env = useBrowserAndServer();
	let page;
	before(async () => {
		({ page } = await openPlayground(env.browser, env.origin, '?workers=2&site=blank'));
	});

	const run = (code, worker) =>
		page.evaluate(async ([code, worker]) => (await window.playground).run({ code, worker }), [code, worker]);

	test('boots the requested number of workers, the second once it is needed', async () => {
		const after = await page.evaluate(async () => {
			const c = await window.playground;
			// Worker 1 starts after the first page, or at once when a job
			// waits for it, as this one does if the page has not loaded yet.
			await c.run({ worker: 1, code: '<?php echo 1;' });
			return (await c.workers()).map((w) => w.state);
		});
		// (Either may be serving the page's own first request.)
		assert.equal(after.length, 2);
		assert.ok(after.every((state) => state === 'idle' || state === 'busy'), JSON.stringify(after));
	});

	test('a SQLite row inserted on worker 0 is read back on worker 1', async () => {
		const insert = await run(
			`<?php
			$db = new PDO('sqlite:' . $_SERVER['DOCUMENT_ROOT'] . '/skeleton.sqlite');
			$db->exec('CREATE TABLE IF NOT EXISTS posts (id INTEGER PRIMARY KEY, title TEXT)');
			$db->prepare('INSERT INTO posts (title) VALUES (?)')->execute(['written by worker 0']);
			echo $db->lastInsertId();`,
			0
		);
		assert.equal(insert.worker, 0);
		assert.equal(insert.errors, '');
		assert.match(insert.text, /^\d+$/);
		const read = await run(
			`<?php
			$db = new PDO('sqlite:' . $_SERVER['DOCUMENT_ROOT'] . '/skeleton.sqlite');
			echo $db->query('SELECT title FROM posts WHERE id = ${insert.text}')->fetchColumn();`,
			1
		);
		assert.equal(read.worker, 1);
		assert.equal(read.text, 'written by worker 0');
	});

	test('a file written through worker 1 is read through worker 0', async () => {
		const content = `hello ${Math.random()}`;
		const write = await run(`<?php echo file_put_contents('/wordpress/note.txt', '${content}');`, 1);
		assert.equal(write.text, String(content.length));
		const read = await run(`<?php echo file_get_contents('/wordpress/note.txt');`, 0);
		assert.equal(read.text, content);
	});

	test('client.writeFile and readFileAsText go through the shared filesystem', async () => {
		const text = await page.evaluate(async () => {
			const client = await window.playground;
			await client.writeFile(client.documentRoot + '/from-client.txt', 'from the client');
			return client.readFileAsText(client.documentRoot + '/from-client.txt');
		});
		assert.equal(text, 'from the client');
		const seenByPhp = await run(`<?php echo file_get_contents('/wordpress/from-client.txt');`, 1);
		assert.equal(seenByPhp.text, 'from the client');
	});

	test('a bad path is rejected with a clear error', async () => {
		const message = await page.evaluate(async () => {
			const client = await window.playground;
			return client.readFileAsText(client.documentRoot + '/missing.txt').then(
				() => 'resolved',
				(e) => `${e.code}: ${e.message}`
			);
		});
		assert.match(message, /^ENOENT: .*missing\.txt/);
	});

	test('a PHP file is served through the service worker with its body and header', async () => {
		await page.evaluate(async () => {
			const client = await window.playground;
			await client.writeFile(
				client.documentRoot + '/hello.php',
				`<?php header('X-Served-By: php-worker'); echo 'Hello ' . ($_GET['name'] ?? 'nobody');`
			);
		});
		const response = await page.evaluate(async () => {
			const client = await window.playground;
			const r = await fetch(client.absoluteUrl + 'hello.php?name=skeleton');
			return { status: r.status, header: r.headers.get('x-served-by'), body: await r.text() };
		});
		assert.deepEqual(response, { status: 200, header: 'php-worker', body: 'Hello skeleton' });
	});

	test('the iframe shows the site through the service worker', async () => {
		await page.evaluate(async () => {
			const client = await window.playground;
			await client.writeFile(client.documentRoot + '/index.php', '<?php echo "<h1>Site index</h1>";');
			document.getElementById('site').src = client.absoluteUrl;
		});
		const frame = page.frameLocator('#site');
		await frame.locator('h1').waitFor({ timeout: 10000 });
		assert.equal(await frame.locator('h1').textContent(), 'Site index');
	});
});
