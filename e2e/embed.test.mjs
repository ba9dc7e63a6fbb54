// A page on another local origin embeds the playground in an iframe and
// drives it with the postMessage API.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, startBrowser } from './harness.mjs';
import { startServer } from '../playground/serve.mjs';

let browser, playground, embedder;
before(async () => {
	browser = await startBrowser();
	playground = await serve();
	embedder = await startServer({ dir: join(dirname(fileURLToPath(import.meta.url)), 'fixtures'), port: 0 });
});
after(async () => {
	await browser?.close();
	await playground?.close();
	await new Promise((r) => embedder?.close(r));
});

test('an embedding page on another origin drives the playground', async () => {
	const page = await browser.newPage();
	// localhost and 127.0.0.1 are different origins.
	const embedderOrigin = `http://localhost:${embedder.address().port}`;
	const target = `${playground.origin}/?site=blank&workers=2`;
	await page.goto(`${embedderOrigin}/embedder.html?playground=${encodeURIComponent(target)}`);
	const absoluteUrl = await page.evaluate(() => window.ready);
	assert.match(absoluteUrl, /^http:\/\/127\.0\.0\.1:\d+\/scope:[^/]+\/$/);
	const result = await page.evaluate(async () => {
		await window.call('writeFile', '/wordpress/from-embedder.php', '<?php echo "hello " . $_GET["who"];');
		const run = await window.call('run', { code: '<?php echo file_get_contents("/wordpress/from-embedder.php");' });
		const response = await window.call('request', { url: '/from-embedder.php?who=embedder' });
		const refused = await window.call('eval', 'x').then(
			() => 'resolved',
			(e) => e.message
		);
		// A method the client has but an embedder may not call.
		const freeRefused = await window.call('free').then(
			() => 'resolved',
			(e) => e.message
		);
		return { run: run.text, response: response.text, status: response.httpStatusCode, refused, freeRefused, isolation: await window.call('isolation') };
	});
	assert.equal(result.run, '<?php echo "hello " . $_GET["who"];');
	assert.equal(result.status, 200);
	assert.equal(result.response, 'hello embedder');
	assert.match(result.refused, /unknown method eval/);
	assert.match(result.freeRefused, /unknown method free/);
	// Both servers send COOP/COEP and the iframe allows cross-origin-isolated,
	// so the playground is isolated by its own server's headers from the first
	// load; any other mode means embedding lost isolation (or needed a reload).
	assert.equal(result.isolation.mode, 'server-headers', `isolation: ${JSON.stringify(result.isolation)}`);
	assert.equal(result.isolation.crossOriginIsolated, true);
	await page.close();
});
