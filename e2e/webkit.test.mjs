// The runtime in WebKit, Safari's engine (Debian's WebKitGTK MiniBrowser
// under Xvfb, driven over W3C WebDriver by WebKitWebDriver): isolation from
// our own server (COEP credentialless, which WebKit lacks), 2 workers on the
// asyncify build it picks by itself, one SQLite file shared between them,
// WordPress's front page, a temporary site with a notice where the browser
// gives no storage, and a forced JSPI build that fails fast.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { serve } from './harness.mjs';

const DRIVER = process.env.WEBKIT_DRIVER ?? '/usr/bin/WebKitWebDriver';
if (!existsSync(DRIVER) || !existsSync('/usr/bin/Xvfb')) {
	throw new Error(`${DRIVER} or Xvfb is missing: run \`make setup\` (scripts/setup.sh installs webkit2gtk-driver and xvfb)`);
}
// The browser the driver starts: WebKitGTK's MiniBrowser, wherever the
// architecture's library folder is.
const MINIBROWSER =
	process.env.WEBKIT_MINIBROWSER ??
	execFileSync('dpkg', ['-L', 'libwebkit2gtk-4.1-0'], { encoding: 'utf8' })
		.split('\n')
		.find((path) => path.endsWith('/MiniBrowser'));

const freePort = () =>
	new Promise((resolve, reject) => {
		const probe = createServer().once('error', reject);
		probe.listen(0, '127.0.0.1', () => {
			const { port } = probe.address();
			probe.close(() => resolve(port));
		});
	});

/** Xvfb on a display it picks (-displayfd), and WebKitWebDriver on a free port. */
async function startDriver() {
	const xvfb = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], {
		stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
	});
	const display = await new Promise((resolve, reject) => {
		let text = '';
		xvfb.stdio[3].on('data', (chunk) => {
			text += chunk;
			if (text.includes('\n')) resolve(`:${text.trim()}`);
		});
		xvfb.once('exit', (code) => reject(new Error(`Xvfb exited (${code}) before it named its display`)));
	});
	const port = await freePort();
	// The GTK port hides SharedArrayBuffer unless asked (Safari shows it to
	// isolated pages).
	const env = { ...process.env, DISPLAY: display, JSC_useSharedArrayBuffer: 'true' };
	const driver = spawn(DRIVER, [`--port=${port}`], { env, stdio: 'ignore' });
	const url = `http://127.0.0.1:${port}`;
	for (let tries = 0; ; tries++) {
		try {
			if ((await fetch(`${url}/status`)).ok) break;
		} catch (e) {
			if (tries > 200) throw new Error(`WebKitWebDriver did not answer on ${url}: ${e.message}`);
		}
		await new Promise((r) => setTimeout(r, 50));
	}
	return {
		url,
		stop() {
			driver.kill();
			xvfb.kill();
		},
	};
}

/** A W3C WebDriver session: one MiniBrowser with a fresh profile. */
async function newSession(driverUrl) {
	const call = async (method, path, body) => {
		const response = await fetch(`${driverUrl}${path}`, {
			method,
			headers: { 'content-type': 'application/json' },
			body: body && JSON.stringify(body),
		});
		const { value } = await response.json();
		if (value?.error) throw new Error(`WebDriver ${path}: ${value.error}: ${value.message}`);
		return value;
	};
	const capabilities = { alwaysMatch: { 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } } };
	const { sessionId } = await call('POST', '/session', { capabilities });
	const at = `/session/${sessionId}`;
	await call('POST', `${at}/timeouts`, { script: 120000 });
	return {
		goto: (url) => call('POST', `${at}/url`, { url }),
		/** Runs `body` (a function's source, called with `args`) in the page. */
		run: (body, ...args) => call('POST', `${at}/execute/sync`, { script: `return (${body})(...arguments)`, args }),
		/** As `run`, for an async function: its promise's value. */
		runAsync: (body, ...args) =>
			call('POST', `${at}/execute/async`, {
				script: `const done = arguments[arguments.length - 1];
					Promise.resolve((${body})(...Array.prototype.slice.call(arguments, 0, -1))).then(
						(value) => done({ value }), (e) => done({ error: String(e?.message ?? e) }));`,
				args,
			}).then((r) => {
				if ('error' in r) throw new Error(r.error);
				return r.value;
			}),
		close: () => call('DELETE', at),
	};
}

/** Polls `check` (a page function) until it returns something truthy. */
async function until(session, check, what, ms = 120000) {
	const deadline = Date.now() + ms;
	for (;;) {
		// The page reloads itself once to become isolated; a script that
		// spans the reload fails, so the next poll asks again.
		const value = await session.runAsync(check).catch(() => undefined);
		if (value) return value;
		if (Date.now() > deadline) throw new Error(`WebKit: still waiting after ${ms} ms for ${what}`);
		await new Promise((r) => setTimeout(r, 100));
	}
}

/** Opens the playground and waits for its boot to settle (isolated first). */
async function open(session, url) {
	await session.goto(url);
	await until(session, () => self.crossOriginIsolated && window.playground !== undefined, 'an isolated page with window.playground');
	// The client, kept for the synchronous checks of `until`.
	const outcome = await session.runAsync(() =>
		window.playground.then((c) => ((window.client = c), 'booted'), (e) => `boot failed: ${e?.message ?? e}`)
	);
	assert.equal(outcome, 'booted');
}

const WP = `<?php require '/wordpress/wp-load.php';`;

describe('WebKit', () => {
	let driver, site;
	before(async () => {
		driver = await startDriver();
		site = await serve();
	});
	after(async () => {
		driver?.stop();
		await site?.close();
	});

	test('isolated by the service worker with require-corp; asyncify chosen; a temporary site that says why', async () => {
		const session = await newSession(driver.url);
		try {
			await open(session, `${site.origin}/?workers=2`);
			const { notice, ...state } = await session.runAsync(async () => {
				const c = window.client;
				return {
					mode: c.isolation().mode,
					isolated: self.crossOriginIsolated,
					workers: (await c.workers()).length,
					build: c.phpBuild,
					notice: c.storageNotice,
					restored: c.restored,
				};
			});
			assert.deepEqual(state, { mode: 'service-worker-headers', isolated: true, workers: 2, build: 'asyncify', restored: false });
			// WebKitGTK under automation gives the page no navigator.storage.
			assert.match(notice ?? '(none)', /not saved: this browser has no origin private file system/);
		} finally {
			await session.close();
		}
	});

	test('2 workers: a post inserted on worker 0 is read on worker 1 and served through the service worker', async () => {
		const session = await newSession(driver.url);
		try {
			await open(session, `${site.origin}/?workers=2`);
			// Worker 1 starts after the first page; WebKit fails that start
			// once, with no reason given, and the pool starts it again.
			await until(session, async () => (await window.client.workers())[1].state === 'idle', 'worker 1 ready');
			const shown = await session.runAsync(async (WP) => {
				const c = window.client;
				const run = async (code, worker) => {
					const r = await c.run({ code, worker });
					return r.errors ? `${r.text}\nerrors: ${r.errors}` : r.text;
				};
				const id = await run(`${WP} echo wp_insert_post(['post_title' => 'Written in WebKit', 'post_status' => 'publish']);`, 0);
				const title = await run(`${WP} echo get_the_title(${Number(id)});`, 1);
				const response = await fetch(`${c.absoluteUrl}?p=${Number(id)}`);
				return { id, title, status: response.status, body: await response.text() };
			}, WP);
			assert.match(shown.id, /^\d+$/, shown.id);
			assert.equal(shown.title, 'Written in WebKit');
			assert.equal(shown.status, 200);
			assert.match(shown.body, /Written in WebKit/);
		} finally {
			await session.close();
		}
	});

	test('a forced JSPI build fails within 10 s and says why', async () => {
		const session = await newSession(driver.url);
		try {
			const started = Date.now();
			await session.goto(`${site.origin}/?phpBuild=jspi`);
			await until(session, () => window.playground !== undefined, 'window.playground', 10000);
			const outcome = await session.runAsync(() => window.playground.then(() => 'it booted', (e) => String(e?.message ?? e)));
			const waited = Date.now() - started;
			assert.match(outcome, /phpBuild=jspi cannot run here: this browser lacks JSPI/);
			assert.ok(waited < 10000, `the refusal came ${waited} ms after navigating`);
		} finally {
			await session.close();
		}
	});
});
