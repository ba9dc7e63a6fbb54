// The runtime in Firefox (Debian's firefox-esr, driven by puppeteer-core
// over WebDriver BiDi: Playwright cannot drive a stock Firefox): isolation,
// WordPress on 2 workers sharing one SQLite file, a saved site reloaded, a
// Blueprint, outgoing HTTP, and the single-worker fallback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import puppeteer from 'puppeteer-core';
import { serve } from './harness.mjs';

const FIREFOX = process.env.FIREFOX ?? '/usr/bin/firefox-esr';
if (!existsSync(FIREFOX)) throw new Error(`${FIREFOX} is missing: run \`make setup\` (scripts/setup.sh installs firefox-esr)`);

const launch = (prefs = {}) =>
	puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX, headless: true, extraPrefsFirefox: prefs });

/** A page in a fresh browser context at `url`, once `window.playground` resolved. */
async function open(browser, url) {
	const context = await browser.createBrowserContext();
	const page = await context.newPage();
	const logs = [];
	page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
	await page.goto(url);
	await booted(page, logs);
	return { page, context, logs };
}

async function booted(page, logs) {
	await page.waitForFunction(() => window.playground !== undefined, { timeout: 120000 });
	const ok = await page.evaluate(() => window.playground.then(() => true, (e) => String(e?.message ?? e)));
	if (ok !== true) throw new Error(`playground did not boot: ${ok}\n${logs.join('\n')}`);
}

const run = (page, code, worker) =>
	page.evaluate(async (code, worker) => {
		const r = await (await window.playground).run({ code, worker });
		return r.errors ? `${r.text}\nerrors: ${r.errors}` : r.text;
	}, code, worker);

const WP = `<?php require '/wordpress/wp-load.php';`;

describe('Firefox', () => {
	let browser, site, remote;
	before(async () => {
		browser = await launch();
		site = await serve();
		// What PHP's outgoing HTTP talks to: another origin that allows CORS.
		remote = createServer((req, res) => {
			const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*' };
			if (req.method === 'OPTIONS') return res.writeHead(204, cors).end();
			res.writeHead(200, { ...cors, 'content-type': 'text/plain' }).end(`hello ${req.method} from the server`);
		});
		await new Promise((r) => remote.listen(0, '127.0.0.1', r));
	});
	after(async () => {
		await browser?.close();
		await site?.close();
		remote?.close();
	});

	test('isolated, 2 workers: a post inserted on worker 0 is read on worker 1 and served through the service worker', async () => {
		const { page, context, logs } = await open(browser, `${site.origin}/?workers=2`);
		try {
			const state = await page.evaluate(async () => {
				const c = await window.playground;
				return { isolation: c.isolation(), crossOriginIsolated, workers: (await c.workers()).length, build: c.phpBuild };
			});
			assert.deepEqual(
				{ mode: state.isolation.mode, isolated: state.crossOriginIsolated, workers: state.workers, build: state.build },
				{ mode: 'server-headers', isolated: true, workers: 2, build: 'jspi' }
			);
			const id = await run(page, `${WP} echo wp_insert_post(['post_title' => 'Written in Firefox', 'post_status' => 'publish']);`, 0);
			assert.match(id, /^\d+$/, id);
			assert.equal(await run(page, `${WP} echo get_the_title(${id});`, 1), 'Written in Firefox');
			const shown = await page.evaluate(async (id) => {
				const r = await fetch(`${(await window.playground).absoluteUrl}?p=${id}`);
				return { status: r.status, body: await r.text() };
			}, id);
			assert.equal(shown.status, 200);
			assert.match(shown.body, /Written in Firefox/);
		} catch (e) {
			e.message += `\n${logs.join('\n')}`;
			throw e;
		} finally {
			await context.close();
		}
	});

	test('a saved site is there after a reload', async () => {
		const url = `${site.origin}/?workers=2&site=blank&site-slug=firefox-${Date.now()}`;
		const { page, context, logs } = await open(browser, url);
		try {
			assert.equal(await run(page, `<?php file_put_contents('/wordpress/kept.txt', 'kept in OPFS'); echo 'ok';`, 1), 'ok');
			await page.reload();
			await booted(page, logs);
			const reopened = await page.evaluate(async () => {
				const c = await window.playground;
				const r = await c.run({ code: `<?php echo file_get_contents('/wordpress/kept.txt');` });
				return { restored: c.restored, notice: c.storageNotice ?? null, text: r.text };
			});
			assert.deepEqual(reopened, { restored: true, notice: null, text: 'kept in OPFS' });
		} finally {
			await context.close();
		}
	});

	test('a Blueprint in the URL fragment runs its steps', async () => {
		const blueprint = {
			steps: [
				{ step: 'setSiteOptions', options: { blogname: 'Firefox Blueprint' } },
				{ step: 'runPHP', code: `${WP} update_option('from_run_php', 'yes');` },
			],
		};
		const { page, context } = await open(browser, `${site.origin}/?workers=2#${JSON.stringify(blueprint)}`);
		try {
			assert.equal(await run(page, `${WP} echo get_option('blogname'), '|', get_option('from_run_php');`, 1), 'Firefox Blueprint|yes');
		} finally {
			await context.close();
		}
	});

	test("PHP's outgoing HTTP reaches a server that allows CORS", async () => {
		const { page, context } = await open(browser, `${site.origin}/?workers=2`);
		try {
			const base = `http://127.0.0.1:${remote.address().port}`;
			const got = await run(page, `${WP} $r = wp_remote_get('${base}/hello'); echo is_wp_error($r) ? $r->get_error_message() : wp_remote_retrieve_body($r);`, 1);
			assert.equal(got, 'hello GET from the server');
		} finally {
			await context.close();
		}
	});

	test('isolation impossible (no service worker, no headers): one worker on a private filesystem, announced', async () => {
		const bare = await serve({ isolationHeaders: false });
		const noWorkers = await launch({ 'dom.serviceWorkers.enabled': false });
		try {
			const { page } = await open(noWorkers, `${bare.origin}/?site=blank&workers=2`);
			const state = await page.evaluate(async () => {
				const c = await window.playground;
				const r = await c.run({ code: '<?php echo "php " . PHP_MAJOR_VERSION;' });
				const notice = document.getElementById('notice');
				return { isolation: c.isolation(), workers: (await c.workers()).length, php: r.text, notice: notice.hidden ? null : notice.textContent };
			});
			assert.equal(state.isolation.mode, 'single-worker');
			assert.equal(state.isolation.crossOriginIsolated, false);
			assert.equal(state.workers, 1);
			assert.equal(state.php, 'php 8');
			assert.match(state.notice ?? '', /Single-worker mode/);
		} finally {
			await noWorkers.close();
			await bare.close();
		}
	});
});
