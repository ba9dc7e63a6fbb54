// The embedding API on a live playground: file calls, stats, and clear
// errors for bad calls.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

describe('client API', () => {
	const env = useBrowserAndServer();
	let page;
	before(async () => {
		({ page } = await openPlayground(env.browser, env.origin, '?site=blank&workers=2'));
	});

	test('mkdir, writeFile, listFiles, fileExists, readFileAsBuffer, unlink', async () => {
		const result = await page.evaluate(async () => {
			const c = await window.playground;
			const dir = c.documentRoot + '/api/a/b';
			await c.mkdir(dir);
			await c.writeFile(dir + '/one.txt', new Uint8Array([1, 2, 3]));
			await c.writeFile(dir + '/two.txt', 'two');
			const listed = (await c.listFiles(dir)).sort();
			const exists = await c.fileExists(dir + '/one.txt');
			const bytes = Array.from(await c.readFileAsBuffer(dir + '/one.txt'));
			await c.unlink(dir + '/one.txt');
			return { listed, exists, bytes, after: await c.fileExists(dir + '/one.txt'), left: await c.listFiles(dir) };
		});
		assert.deepEqual(result, {
			listed: ['one.txt', 'two.txt'],
			exists: true,
			bytes: [1, 2, 3],
			after: false,
			left: ['two.txt'],
		});
	});

	test('onMessage: post_message_to_js reaches the page from every worker, and PHP gets the first truthy answer', async () => {
		const result = await page.evaluate(async () => {
			const c = await window.playground;
			const seen = [];
			const throwing = c.onMessage((data) => {
				seen.push(`throwing:${data}`);
				if (data === 'boom') throw new Error('listener failed');
			});
			const silent = c.onMessage((data) => {
				seen.push(`silent:${data}`);
				return undefined;
			});
			const answering = c.onMessage(async (data) => {
				await new Promise((r) => setTimeout(r, 20));
				return data === 'json' ? { n: 1 } : `answer to ${data}`;
			});
			const say = async (data, worker) =>
				(await c.run({ code: `<?php echo json_encode(post_message_to_js(${JSON.stringify(data)}));`, worker })).text;
			const out = {
				worker0: await say('hi 0', 0),
				worker1: await say('hi 1', 1),
				boom: await say('boom', 0),
				json: await say('json', 1),
			};
			// A page request (not run) goes the same way.
			await c.writeFile(c.documentRoot + '/msg.php', '<?php echo post_message_to_js("from a request");');
			out.request = (await c.request({ url: '/msg.php' })).text;
			await throwing();
			await silent();
			await answering();
			out.removed = await say('nobody listens', 0);
			out.seen = seen;
			return out;
		});
		assert.deepEqual(result, {
			worker0: '"answer to hi 0"',
			worker1: '"answer to hi 1"',
			boom: '"answer to boom"',
			json: '"{\\"n\\":1}"',
			request: 'answer to from a request',
			removed: '""',
			seen: [
				'throwing:hi 0', 'silent:hi 0',
				'throwing:hi 1', 'silent:hi 1',
				'throwing:boom', 'silent:boom',
				'throwing:json', 'silent:json',
				'throwing:from a request', 'silent:from a request',
			],
		});
	});

	test('stats report the shared filesystem and it grows with stored bytes', async () => {
		const { before, after } = await page.evaluate(async () => {
			const c = await window.playground;
			const before = await c.stats();
			await c.writeFile(c.documentRoot + '/big.bin', new Uint8Array(8 << 20).fill(7));
			return { before, after: await c.stats() };
		});
		assert.ok(after.used >= before.used + (8 << 20), JSON.stringify({ before, after }));
		assert.ok(after.highWater >= after.used);
		assert.ok(after.capacity >= after.used);
		assert.ok(after.memoryBytes >= after.capacity);
	});

	test('bad calls reject with clear errors', async () => {
		const errors = await page.evaluate(async () => {
			const c = await window.playground;
			const message = (p) => p.then(() => 'resolved', (e) => String(e.message));
			return {
				worker: await message(c.run({ code: '<?php echo 1;', worker: 7 })),
				relative: await message(c.readFileAsText('relative/path')),
				unlinkDir: await message(c.unlink(c.documentRoot)),
				longName: await message(c.writeFile(c.documentRoot + '/' + 'x'.repeat(300), 'x')),
				noCode: await message(c.run({})),
			};
		});
		assert.match(errors.worker, /no worker 7/);
		assert.match(errors.relative, /must be absolute/);
		assert.match(errors.unlinkDir, /EISDIR|EPERM/);
		assert.match(errors.longName, /ENAMETOOLONG/);
		assert.match(errors.noCode, /needs `code`/);
	});
});
