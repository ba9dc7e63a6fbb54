// Shared e2e set-up: serves the built dist/ (the folder netlify publishes)
// on a free loopback port and drives Debian's Chromium with playwright-core.
import { chromium } from 'playwright-core';
import { after, afterEach, before, beforeEach } from 'node:test';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../playground/serve.mjs';

// Every test that imports this file (all of e2e/) gets a time limit that
// names it. Node's --test-timeout (Makefile) only bounds a whole file, on
// Node 20 and 22 alike, and reports the file's name, not the test's.
export const TEST_TIMEOUT_MS = Number(process.env.E2E_TEST_TIMEOUT_MS || 300000);
const watchdogs = new Map();
// Only under `node --test` (which sets NODE_TEST_CONTEXT in each file's
// process): the build and the bench import this file for its browser set-up.
const underTestRunner = Boolean(process.env.NODE_TEST_CONTEXT);
if (underTestRunner) beforeEach((t) => {
	const name = `${basename(process.argv[1] ?? '?')}: "${t.fullName ?? t.name}"`;
	const timer = setTimeout(() => {
		// The test's own promise cannot be rejected from here: say which
		// test hung and end the file (Playwright closes its browsers on exit).
		process.stderr.write(`\ne2e TIMEOUT: test ${name} still running after ${TEST_TIMEOUT_MS} ms (E2E_TEST_TIMEOUT_MS)\n`);
		process.exit(1);
	}, TEST_TIMEOUT_MS);
	timer.unref();
	watchdogs.set(t, timer);
});
if (underTestRunner) afterEach((t) => {
	clearTimeout(watchdogs.get(t));
	watchdogs.delete(t);
});

export const distDir = process.env.E2E_DIST ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

export const CHROMIUM_ARGS = [
	'--no-sandbox',
	'--disable-gpu',
	'--disable-quic',
	'--disable-background-networking',
	'--disable-component-update',
	'--disable-sync',
	'--no-first-run',
	// Hermetic: a name other than the local servers' fails at once. The
	// site's pages load images from other hosts (the admin bar's avatar)
	// and a page's load event waited on this machine's DNS, which now and
	// then took longer than a test's 30 s wait.
	'--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
];

export async function startBrowser(extraArgs = []) {
	return chromium.launch({
		executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
		args: [...CHROMIUM_ARGS, ...extraArgs],
		headless: true,
	});
}

export async function serve(options = {}) {
	const server = await startServer({ dir: distDir, port: 0, ...options });
	const { port } = server.address();
	return { server, origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

/** Opens the playground and waits until `window.playground` resolves. */
export async function openPlayground(browser, origin, query = '') {
	const context = await browser.newContext();
	const page = await context.newPage();
	const logs = [];
	page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
	page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
	await page.goto(`${origin}/${query}`);
	try {
		await page.evaluate(() => window.playground.then(() => true));
	} catch (e) {
		throw new Error(`playground did not boot: ${e.message}\n${logs.join('\n')}`);
	}
	return { context, page, logs };
}

/** Opens the playground in a fresh context with context options (e.g.
 *  `serviceWorkers: 'block'`), riding out the one reload the isolation
 *  ladder may do. */
export async function openPlaygroundIn(browser, origin, query, contextOptions) {
	const context = await browser.newContext(contextOptions);
	const page = await context.newPage();
	const logs = [];
	page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
	page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
	await page.goto(`${origin}/${query}`);
	for (let attempt = 0; ; attempt++) {
		try {
			await page.waitForLoadState('load');
			await page.waitForFunction(() => window.playground !== undefined, null, { timeout: 30000 });
			await page.evaluate(() => window.playground.then(() => true));
			return { context, page, logs };
		} catch (e) {
			const navigated = /context was destroyed|navigation/i.test(e.message);
			if (!navigated || attempt >= 3) throw new Error(`playground did not boot: ${e.message}\n${logs.join('\n')}`);
		}
	}
}

/** One browser and one server for a test file: registers the hooks and
 *  returns an object whose `browser`, `server` and `origin` are set once
 *  they run. */
export function useBrowserAndServer(serverOptions = {}) {
	const env = {};
	before(async () => {
		env.browser = await startBrowser();
		env.server = await serve(serverOptions);
		env.origin = env.server.origin;
	});
	after(async () => {
		await env.browser?.close();
		await env.server?.close();
	});
	return env;
}
