// The isolation ladder in Chromium: served with the headers, served without
// them (the service worker adds them after one reload), and with isolation
// impossible (no service worker: one worker on a private filesystem).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlaygroundIn, serve, startBrowser } from './harness.mjs';

let browser;
before(async () => {
	browser = await startBrowser();
});
after(async () => {
	await browser?.close();
});

async function bootAndProbe(server, contextOptions) {
	const navigations = [];
	const { page, context } = await openPlaygroundIn(browser, server.origin, '?site=blank&workers=2', contextOptions);
	page.on('framenavigated', (f) => f === page.mainFrame() && navigations.push(f.url()));
	const probe = await page.evaluate(async () => {
		const client = await window.playground;
		const row = await client.run({ code: '<?php echo "php " . PHP_MAJOR_VERSION;' });
		return {
			isolation: client.isolation(),
			crossOriginIsolated: window.crossOriginIsolated,
			workers: (await client.workers()).length,
			php: row.text,
			notice: document.getElementById('notice').hidden ? null : document.getElementById('notice').textContent,
		};
	});
	await context.close();
	return probe;
}

describe('isolation ladder', () => {
	test('served with COOP/COEP: isolated by the server, all workers', async () => {
		const server = await serve();
		try {
			const probe = await bootAndProbe(server);
			assert.equal(probe.isolation.mode, 'server-headers');
			assert.equal(probe.crossOriginIsolated, true);
			assert.equal(probe.workers, 2);
			assert.equal(probe.notice, null);
		} finally {
			await server.close();
		}
	});

	test('served without headers: the service worker isolates the page after one reload', async () => {
		const server = await serve({ isolationHeaders: false });
		try {
			const probe = await bootAndProbe(server);
			assert.equal(probe.isolation.mode, 'service-worker-headers');
			assert.equal(probe.crossOriginIsolated, true);
			assert.equal(probe.workers, 2);
			assert.equal(probe.php, 'php 8');
		} finally {
			await server.close();
		}
	});

	test('isolation impossible: one worker on a private filesystem, announced', async () => {
		const server = await serve({ isolationHeaders: false });
		try {
			const probe = await bootAndProbe(server, { serviceWorkers: 'block' });
			assert.equal(probe.isolation.mode, 'single-worker');
			assert.equal(probe.isolation.crossOriginIsolated, false);
			assert.match(probe.isolation.reason, /service worker/);
			assert.equal(probe.crossOriginIsolated, false);
			assert.equal(probe.workers, 1);
			assert.equal(probe.php, 'php 8');
			assert.match(probe.notice, /Single-worker mode/);
		} finally {
			await server.close();
		}
	});
});
