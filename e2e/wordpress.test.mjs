// WordPress on N workers through the service worker, as a person uses it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();

describe('WordPress with 2 workers', () => {
	let page, context, siteUrl;
	before(async () => {
		({ page, context } = await openPlayground(env.browser, env.origin, '?workers=2'));
		siteUrl = await page.evaluate(async () => (await window.playground).absoluteUrl);
	});
	after(() => context?.close());

	test('the front page shows in the iframe', async () => {
		const frame = page.frameLocator('#site');
		await frame.locator('text=My WordPress Website').first().waitFor({ timeout: 30000 });
		assert.match(await frame.locator('title').textContent(), /My WordPress Website/);
		// The site fills the page below the status bar.
		const box = await page.locator('#site').boundingBox();
		const viewport = page.viewportSize();
		assert.ok(box.height > viewport.height * 0.8, `iframe is ${box.height}px of ${viewport.height}px`);
	});

	test('a post inserted on worker 0 is shown at its URL through the service worker', async () => {
		const inserted = await page.evaluate(async () => {
			const c = await window.playground;
			return c.run({
				worker: 0,
				code: `<?php require '/wordpress/wp-load.php';
				$id = wp_insert_post(['post_title' => 'Posted from worker 0', 'post_content' => 'Shared filesystem works.', 'post_status' => 'publish']);
				echo get_permalink($id);`,
			});
		});
		assert.equal(inserted.errors, '');
		assert.ok(inserted.text.startsWith(siteUrl), inserted.text);
		const shown = await page.evaluate(async (url) => {
			const r = await fetch(url);
			return { status: r.status, body: await r.text() };
		}, inserted.text);
		assert.equal(shown.status, 200);
		assert.match(shown.body, /Posted from worker 0/);
		assert.match(shown.body, /Shared filesystem works\./);
	});

	test('wp-admin login through the iframe, then the post editor loads', async () => {
		const frame = page.frame({ url: /scope:/ }) ?? page.frames()[1];
		await frame.goto(siteUrl + 'wp-login.php');
		await frame.fill('#user_login', 'admin');
		await frame.fill('#user_pass', 'password');
		await Promise.all([frame.waitForURL(/wp-admin/, { timeout: 30000 }), frame.click('#wp-submit')]);
		assert.match(await frame.title(), /Dashboard/);
		await frame.goto(siteUrl + 'wp-admin/post-new.php', { timeout: 60000 });
		assert.match(await frame.title(), /Add New Post/);
		// The block editor app is up once its toolbar renders.
		await frame.locator('button:has-text("Save draft")').first().waitFor({ timeout: 60000 });
	});

	test('8 concurrent page loads are served by more than one worker', async () => {
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			const before = (await c.workers()).map((w) => w.completed);
			const statuses = await Promise.all(
				Array.from({ length: 8 }, () => fetch(c.absoluteUrl + '?p=1&nocache=' + Math.random()).then((r) => r.status))
			);
			const after = (await c.workers()).map((w) => w.completed);
			return { statuses, served: after.map((n, i) => n - before[i]) };
		});
		assert.deepEqual(outcome.statuses, Array(8).fill(200));
		assert.ok(outcome.served.filter((n) => n > 0).length > 1, JSON.stringify(outcome.served));
	});

	test('export then import gives back the same posts', async () => {
		const titles = `<?php require '/wordpress/wp-load.php';
			echo json_encode(array_map(fn($p) => $p->post_title, get_posts(['numberposts' => -1, 'orderby' => 'ID', 'order' => 'ASC'])));`;
		const before = JSON.parse((await page.evaluate(async (code) => (await window.playground).run({ code }), titles)).text);
		assert.ok(before.includes('Posted from worker 0'), JSON.stringify(before));
		const zip = await page.evaluate(async () => Array.from(await (await window.playground).exportSite()));
		assert.ok(zip.length > 1_000_000, `export is ${zip.length} bytes`);

		const restored = await context.newPage();
		await restored.goto(`${env.origin}/?site=blank&workers=1`);
		const after = await restored.evaluate(
			async ([zip, code]) => {
				// Boot a second playground from the exported zip.
				const { startPlayground } = await import('./host/index.js');
				const client = await startPlayground({ site: new Uint8Array(zip), workers: 2 });
				return (await client.run({ code })).text;
			},
			[zip, titles]
		);
		assert.deepEqual(JSON.parse(after), before);
		await restored.close();
	});
});

describe('scopes', () => {
	test('two scopes in one origin cannot see each other\'s files', async () => {
		const context = await env.browser.newContext();
		const open = async () => {
			const page = await context.newPage();
			await page.goto(`${env.origin}/?site=blank&workers=1`);
			await page.evaluate(() => window.playground);
			return page;
		};
		const [a, b] = [await open(), await open()];
		const aUrl = await a.evaluate(async () => {
			const c = await window.playground;
			await c.writeFile(c.documentRoot + '/secret.php', '<?php echo "scope A";');
			return c.absoluteUrl;
		});
		const seenFromB = await b.evaluate(async (aUrl) => {
			const c = await window.playground;
			const inB = await c.fileExists(c.documentRoot + '/secret.php');
			const viaB = await fetch(c.absoluteUrl + 'secret.php').then((r) => r.status);
			const viaA = await fetch(aUrl + 'secret.php').then(async (r) => `${r.status} ${await r.text()}`);
			return { inB, viaB, viaA, differentScope: c.absoluteUrl !== aUrl };
		}, aUrl);
		assert.equal(seenFromB.differentScope, true);
		assert.equal(seenFromB.inB, false);
		assert.equal(seenFromB.viaB, 404);
		// A's scope is served by A's page: B's page reaches it only through the
		// service worker, which asks A, and gets A's file, never B's.
		assert.equal(seenFromB.viaA, '200 scope A');
		await context.close();
	});
});
