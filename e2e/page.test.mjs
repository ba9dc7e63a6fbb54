// The playground page as a person uses it (issue 14 item 5, issue 13 item 1):
// the address bar follows the site and navigates, the buttons, settings that
// reboot with new options, saved sites, export and import. Saves screenshots
// of the page booting, ready, in wp-admin and with its panel into
// e2e/screenshots/ (ignored by git).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();
const shots = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
const shot = (page, name) => page.screenshot({ path: join(shots, `${name}.png`) });

let context, page, frame, downloads;
const logs = [];

/** Waits for the page (after a navigation) to boot; its client's facts, or the boot error. */
async function booted() {
	await page.waitForLoadState('load');
	await page.waitForFunction(() => window.playground !== undefined, null, { timeout: 30000 });
	return page.evaluate(() =>
		window.playground.then(
			async (c) => ({ slug: c.siteSlug ?? null, workers: (await c.workers()).length, base: c.absoluteUrl }),
			(e) => ({ error: String(e?.message ?? e) })
		)
	);
}

/** Navigates by doing `action` (a click that reboots the page), then waits for the boot. */
async function rebootBy(action, urlMatches) {
	await Promise.all([page.waitForURL(urlMatches, { timeout: 30000 }), action()]);
	const facts = await booted();
	assert.ok(!facts.error, `${facts.error}\n${logs.join('\n')}`);
	return facts;
}

const addressBar = () => page.inputValue('#address');
/** The iframe's location as a path under the site's base URL. */
const framePath = (base) => page.evaluate((base) => document.getElementById('site').contentWindow.location.href.slice(base.length - 1), base);

async function waitForBar(predicate, what) {
	try {
		await page.waitForFunction(predicate, null, { timeout: 30000 });
	} catch {
		assert.fail(`address bar never showed ${what}; it shows ${await addressBar()}`);
	}
}

async function openPanel() {
	if ((await page.getAttribute('#panel-toggle', 'aria-expanded')) !== 'true') await page.click('#panel-toggle');
}

const listedSites = () => page.$$eval('#sites li[data-slug]', (lis) => lis.map((li) => li.dataset.slug));

describe('the playground page', () => {
	let base;

	before(async () => {
		mkdirSync(shots, { recursive: true });
		downloads = mkdtempSync(join(tmpdir(), 'page-test-'));
		context = await env.browser.newContext({ viewport: { width: 1200, height: 750 }, acceptDownloads: true });
		page = await context.newPage();
		page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
		page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
	});
	after(async () => {
		await context?.close();
		rmSync(downloads, { recursive: true, force: true });
	});


	test('boots with progress, then the address bar shows the site\'s path', async () => {
		// php.wasm held back a moment, so the screenshot catches the boot.
		await page.route(/php-(jspi|asyncify)\.wasm$/, async (route) => {
			await new Promise((r) => setTimeout(r, 1500));
			await route.continue();
		});
		await page.goto(`${env.origin}/?workers=1&site-slug=page-a`);
		await page.waitForFunction(() => /\(\d+\/\d+\)/.test(document.getElementById('status').textContent), null, { timeout: 30000 });
		assert.equal(await page.isVisible('#boot'), true);
		assert.equal(await page.isDisabled('#address'), true, 'no navigation before the site exists');
		await shot(page, 'booting');
		const facts = await booted();
		assert.ok(!facts.error, facts.error);
		await page.unroute(/php-(jspi|asyncify)\.wasm$/);
		base = facts.base;
		assert.equal(facts.slug, 'page-a');
		frame = await (await page.$('#site')).contentFrame();
		await frame.locator('text=My WordPress Website').first().waitFor({ timeout: 30000 });
		await waitForBar(() => document.getElementById('address').value === '/', '/');
		assert.equal(await page.isVisible('#boot'), false);
		assert.match(await page.textContent('#site-info'), /page-a/);
		await page.waitForFunction(() => /inodes/.test(document.getElementById('fs').textContent), null, { timeout: 10000 });
		assert.match(await page.textContent('#workers'), /#0/);
		await shot(page, 'ready');
	});

	test('typing a path and Enter navigates; the bar follows redirects and logins', async () => {
		await page.fill('#address', '/wp-admin/');
		await page.press('#address', 'Enter');
		// Not logged in: WordPress redirects to its login page, and the bar says so.
		await frame.waitForURL(/wp-login\.php/, { timeout: 30000 });
		await waitForBar(() => document.getElementById('address').value.startsWith('/wp-login.php?redirect_to='), 'the login page');
		assert.equal(await addressBar(), await framePath(base));
		await frame.fill('#user_login', 'admin');
		await frame.fill('#user_pass', 'password');
		await Promise.all([frame.waitForURL(/\/wp-admin\/$/, { timeout: 30000 }), frame.click('#wp-submit')]);
		await waitForBar(() => document.getElementById('address').value === '/wp-admin/', '/wp-admin/');
		await frame.locator('#wpadminbar').waitFor({ timeout: 30000 });
		await shot(page, 'wp-admin');

		await page.fill('#address', '/wp-admin/options-general.php');
		await page.press('#address', 'Enter');
		await frame.waitForURL(/\/wp-admin\/options-general\.php$/, { timeout: 30000 });
		await frame.locator('#blogname').waitFor({ timeout: 30000 });
		await waitForBar(() => document.getElementById('address').value === '/wp-admin/options-general.php', 'the settings page');
	});

	test('home, a link inside the site, reload and wp-admin buttons', async () => {
		await page.click('#home');
		await frame.waitForURL((url) => url.href === base, { timeout: 30000 });
		await waitForBar(() => document.getElementById('address').value === '/', '/');

		// A link the site itself follows: the bar updates to where it went.
		await Promise.all([frame.waitForNavigation({ timeout: 30000 }), frame.locator('a', { hasText: 'Sample Page' }).first().click()]);
		const samplePath = await framePath(base);
		assert.notEqual(samplePath, '/');
		await waitForBar(() => document.getElementById('address').value !== '/', 'the sample page');
		assert.equal(await addressBar(), samplePath);

		// The site moving itself (no click, no focus change on the page): the bar follows.
		await page.focus('#home');
		await Promise.all([frame.waitForURL(/\?p=1$/, { timeout: 30000 }), frame.evaluate(() => location.assign('?p=1'))]);
		await waitForBar(() => document.getElementById('address').value === '/?p=1', '/?p=1');
		await Promise.all([frame.waitForURL((url) => url.href.endsWith(samplePath.slice(1)), { timeout: 30000 }), frame.evaluate(() => history.back())]);
		await waitForBar(() => document.getElementById('address').value !== '/?p=1', 'the page before');
		assert.equal(await addressBar(), samplePath);

		// Reload: a fresh document at the same path.
		await frame.evaluate(() => (window.beforeReload = true));
		await page.click('#reload');
		await page.waitForFunction(() => {
			const w = document.getElementById('site').contentWindow;
			return w.beforeReload === undefined && w.document.readyState === 'complete';
		}, null, { timeout: 30000 });
		assert.equal(await framePath(base), samplePath);
		assert.equal(await addressBar(), samplePath);

		await page.click('#admin');
		await frame.waitForURL(/\/wp-admin\/$/, { timeout: 30000 });
		await waitForBar(() => document.getElementById('address').value === '/wp-admin/', '/wp-admin/');
	});

	test('settings reboot the page with the new options', async () => {
		await openPanel();
		assert.equal(await page.inputValue('#settings [name=workers]'), '1');
		const phpVersions = await page.$$eval('#settings [name=php] option', (os) => os.map((o) => o.value));
		assert.deepEqual(phpVersions, ['', '8.5', '8.4', '8.3', '8.2', '8.1', '8.0', '7.4']);
		await page.fill('#settings [name=workers]', '2');
		await page.selectOption('#settings [name=storage]', 'temp');
		await page.selectOption('#settings [name=php]', '8.3');
		await page.uncheck('#settings [name=networking]');
		const facts = await rebootBy(() => page.click('#settings button[type=submit]'), /workers=2/);
		const query = new URL(page.url()).searchParams;
		assert.equal(query.get('storage'), 'temp');
		assert.equal(query.get('php'), '8.3');
		assert.equal(query.get('networking'), 'no');
		assert.equal(facts.workers, 2);
		assert.equal(facts.slug, null, 'a temporary site has no name');
		assert.match(await page.textContent('#site-info'), /Temporary/);
		const php = await page.evaluate(async () => {
			const c = await window.playground;
			const code = `<?php require '/wordpress/wp-load.php'; $r = wp_remote_get('http://127.0.0.1:9/');
				echo PHP_MAJOR_VERSION, '.', PHP_MINOR_VERSION, '|', is_wp_error($r) ? $r->get_error_message() : 'reached';`;
			return (await c.run({ code })).text;
		});
		assert.match(php, /^8\.3\|.*no outgoing network/);
		// The form shows what the page runs with.
		await openPanel();
		assert.equal(await page.inputValue('#settings [name=workers]'), '2');
		assert.equal(await page.inputValue('#settings [name=storage]'), 'temp');
		assert.equal(await page.isChecked('#settings [name=networking]'), false);
		await page.waitForFunction(() => document.querySelectorAll('#workers span').length === 2);

		// Back to a saved site, networking on.
		await page.selectOption('#settings [name=storage]', 'browser');
		await page.check('#settings [name=networking]');
		await rebootBy(() => page.click('#settings button[type=submit]'), (url) => !url.search.includes('storage=') && !url.search.includes('networking='));
	});

	test('saved sites: create and delete show in the list', async () => {
		await openPanel();
		await page.fill('#new-site [name=slug]', 'page-b');
		const facts = await rebootBy(() => page.click('#new-site button[type=submit]'), /site-slug=page-b/);
		assert.equal(facts.slug, 'page-b');
		await openPanel();
		await page.waitForFunction(() => document.querySelectorAll('#sites li[data-slug]').length === 2);
		assert.deepEqual(await listedSites(), ['page-a', 'page-b']);
		assert.equal(await page.getAttribute('#sites li[data-slug=page-b]', 'aria-current'), 'true');
		assert.equal(await page.isDisabled('#sites li[data-slug=page-b] button:text("Delete")'), true, 'the open site cannot be deleted');
		await (await (await page.$('#site')).contentFrame()).locator('text=My WordPress Website').first().waitFor({ timeout: 30000 });
		await shot(page, 'sites');

		page.once('dialog', (d) => d.accept());
		await page.click('#sites li[data-slug=page-a] button:text("Delete")');
		await page.waitForFunction(() => !document.querySelector('#sites li[data-slug=page-a]') || document.getElementById('sites-error').textContent);
		assert.equal(await page.textContent('#sites-error'), '');
		assert.deepEqual(await listedSites(), ['page-b']);
	});

	test('export downloads a zip; importing it opens it as a new saved site', async () => {
		await page.evaluate(async () => (await window.playground).writeFile('/wordpress/marker.txt', 'exported from page-b'));
		await openPanel();
		const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60000 }), page.click('#export')]);
		assert.equal(download.suggestedFilename(), 'page-b.zip');
		const zipPath = join(downloads, 'page-b.zip');
		await download.saveAs(zipPath);

		const facts = await rebootBy(() => page.setInputFiles('#import', zipPath), /site-slug=page-b-2/);
		assert.equal(facts.slug, 'page-b-2', 'page-b exists, so the import gets a new name');
		assert.equal(
			await page.evaluate(async () => (await window.playground).readFileAsText('/wordpress/marker.txt')),
			'exported from page-b'
		);
		assert.equal(await page.evaluate(() => new URLSearchParams(location.search).has('import')), false, 'a reload must not import again');
	});

	test('saved sites: rename shows in the list; a refused name is explained', async () => {
		await openPanel();
		await page.waitForSelector('#sites li[data-slug=page-b]');
		page.once('dialog', (d) => d.accept('page-c'));
		await page.click('#sites li[data-slug=page-b] button:text("Rename")');
		await page.waitForFunction(() => document.querySelector('#sites li[data-slug=page-c]') || document.getElementById('sites-error').textContent);
		assert.equal(await page.textContent('#sites-error'), '');
		assert.deepEqual(await listedSites(), ['page-b-2', 'page-c']);

		page.once('dialog', (d) => d.accept('no spaces'));
		await page.click('#sites li[data-slug=page-c] button:text("Rename")');
		await page.waitForFunction(() => document.getElementById('sites-error').textContent !== '');
		assert.match(await page.textContent('#sites-error'), /site name/);
		assert.deepEqual(await listedSites(), ['page-b-2', 'page-c']);
	});
});
