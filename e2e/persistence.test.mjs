// Saved sites (issue 13): a site outlives reloads and a killed browser,
// a damaged store opens at its last whole state with a notice, and one tab
// owns a site.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { serve, startBrowser, useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();

const DB = '/wordpress/wp-content/database/.ht.sqlite';

async function boot(page, url) {
	const logs = [];
	page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
	await page.goto(url);
	await page.waitForFunction(() => window.playground !== undefined, null, { timeout: 60000 });
	const outcome = await page.evaluate(() =>
		window.playground.then(
			(c) => ({ ok: true, notice: c.storageNotice ?? null, restored: c.restored, slug: c.siteSlug }),
			(e) => ({ ok: false, error: String(e?.message ?? e) })
		)
	);
	return { ...outcome, logs };
}

const php = (page, code, worker) =>
	page.evaluate(async ([code, worker]) => (await (await window.playground).run({ code, worker })).text, [code, worker]);

test('writes from several workers are there after a reload; a temp site is not saved', async () => {
	const context = await env.browser.newContext();
	const page = await context.newPage();
	const first = await boot(page, `${env.origin}/?workers=2&site-slug=reload-test`);
	assert.ok(first.ok, first.error);
	assert.equal(first.restored, false);
	for (const w of [0, 1]) {
		const out = await php(page, `<?php file_put_contents('/wordpress/from-${w}.txt', 'worker ${w}'); $db = new PDO('sqlite:${DB}'); $db->exec("INSERT INTO wp_options(option_name, option_value) VALUES ('saved_by_${w}', 'yes')"); echo 'done';`, w);
		assert.equal(out, 'done');
	}
	// The site's files are not downloaded again for a site that reopens
	// (requests made for them, by the page or a worker).
	const siteDownloads = [];
	context.on('request', (r) => /\/(site-images|wordpress)\/[^/]+\.zip$/.test(r.url()) && siteDownloads.push(r.url()));
	await page.reload();
	const second = await boot(page, `${env.origin}/?workers=2&site-slug=reload-test`);
	assert.ok(second.ok, second.error);
	assert.equal(second.restored, true);
	assert.equal(second.notice, null);
	assert.deepEqual(siteDownloads.filter((url) => !url.endsWith('/sqlite-database-integration.zip')), []);
	const back = await php(page, `<?php echo file_get_contents('/wordpress/from-0.txt'), '|', file_get_contents('/wordpress/from-1.txt'), '|'; $db = new PDO('sqlite:${DB}'); echo implode(',', $db->query("SELECT option_name FROM wp_options WHERE option_name LIKE 'saved_by_%' ORDER BY 1")->fetchAll(PDO::FETCH_COLUMN)), '|', $db->query('PRAGMA integrity_check')->fetchColumn();`);
	assert.equal(back, 'worker 0|worker 1|saved_by_0,saved_by_1|ok');
	// Changes made after reopening are saved too.
	assert.equal(await php(page, `<?php file_put_contents('/wordpress/after-reopen.txt', 'second session'); echo 'ok';`, 1), 'ok');
	await page.reload();
	assert.ok((await boot(page, `${env.origin}/?workers=2&site-slug=reload-test`)).ok);
	assert.equal(await php(page, `<?php echo file_get_contents('/wordpress/after-reopen.txt');`), 'second session');
	// Without a slug, the page reopens the site it opened last.
	await page.goto('about:blank');
	const third = await boot(page, `${env.origin}/?workers=1`);
	assert.equal(third.slug, 'reload-test');
	assert.equal(await php(page, `<?php echo file_get_contents('/wordpress/from-1.txt');`), 'worker 1');
	// storage=temp: nothing saved, nothing reopened.
	await page.goto('about:blank');
	const temp = await boot(page, `${env.origin}/?workers=1&storage=temp`);
	assert.ok(temp.ok, temp.error);
	assert.equal(await php(page, `<?php echo file_exists('/wordpress/from-1.txt') ? 'there' : 'absent';`), 'absent');
	await context.close();
});

test('a second tab on the same site is refused clearly; the first keeps working', async () => {
	const context = await env.browser.newContext();
	const a = await context.newPage();
	assert.ok((await boot(a, `${env.origin}/?workers=1&site-slug=two-tabs`)).ok);
	const b = await context.newPage();
	const second = await boot(b, `${env.origin}/?workers=1&site-slug=two-tabs`);
	assert.equal(second.ok, false);
	assert.match(second.error, /"two-tabs" is open in another tab/);
	assert.equal(await php(a, `<?php file_put_contents('/wordpress/a.txt', 'still mine'); echo file_get_contents('/wordpress/a.txt');`), 'still mine');
	// Once the first tab is gone, the second may open it, with its files.
	await a.close();
	const third = await boot(b, `${env.origin}/?workers=1&site-slug=two-tabs`);
	assert.ok(third.ok, third.error);
	assert.equal(await php(b, `<?php echo file_get_contents('/wordpress/a.txt');`), 'still mine');
	await context.close();
});

/** SHA-256 of each of a saved site's stored files, read from a page that
 *  does not hold the site (retried while the closed page's storage worker
 *  still holds them, as `damage` does). */
async function storedDigests(page, slug) {
	for (let waited = 0; ; waited += 100) {
		try {
			return await page.evaluate(async (slug) => {
				let dir = await navigator.storage.getDirectory();
				for (const name of ['php-pool', 'sites', slug]) dir = await dir.getDirectoryHandle(name);
				const out = {};
				for await (const [name, handle] of dir.entries()) {
					if (handle.kind !== 'file') continue;
					const digest = await crypto.subtle.digest('SHA-256', await (await handle.getFile()).arrayBuffer());
					out[name] = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
				}
				return out;
			}, slug);
		} catch (e) {
			if (!/NoModificationAllowedError/.test(e.message) || waited > 10000) throw e;
			await new Promise((r) => setTimeout(r, 100));
		}
	}
}

test('reopening a saved site stores nothing: a boot changes no file of it', async () => {
	const context = await env.browser.newContext();
	const page = await context.newPage();
	// The site opens in a blank playground page, with no page of its own:
	// only its boot runs (no iframe, no front page, whose own writes count).
	const open = async () => {
		await page.goto(`${env.origin}/?site=blank&workers=1&storage=temp`);
		await page.evaluate(() => window.playground.then(() => true));
		return page.evaluate(async () => {
			const { startPlayground } = await import('/host/index.js');
			window.site = await startPlayground({ siteSlug: 'quiet-reopen', workers: 2 });
			return window.site.restored;
		});
	};
	assert.equal(await open(), false);
	// A write's reply waits for its save, and so for the new site's image.
	const wrote = await page.evaluate(async () => (await window.site.run({ code: `<?php file_put_contents('/wordpress/marker.txt', 'x'); echo 'ok';` })).text);
	assert.equal(wrote, 'ok');
	const digests = [];
	for (let visit = 0; visit < 2; visit++) {
		await page.goto(`${env.origin}/404.html`);
		digests.push(await storedDigests(page, 'quiet-reopen'));
		assert.equal(await open(), true);
	}
	await page.goto(`${env.origin}/404.html`);
	digests.push(await storedDigests(page, 'quiet-reopen'));
	assert.ok(Object.keys(digests[0]).length > 0, 'the site has stored files');
	assert.deepEqual(digests[1], digests[0], 'the first reopen stored nothing');
	assert.deepEqual(digests[2], digests[0], 'the second reopen stored nothing');
	await context.close();
});

test("a new site's first save cut short before its header opens as a new site, not as damage", async () => {
	const context = await env.browser.newContext();
	const page = await context.newPage();
	await page.goto(`${env.origin}/404.html`);
	// What a tab closed while the first image was being written leaves: its
	// payload's start, and the header (written last) still zeros.
	await page.evaluate(async () => {
		let dir = await navigator.storage.getDirectory();
		for (const name of ['php-pool', 'sites', 'cut-first-image']) dir = await dir.getDirectoryHandle(name, { create: true });
		const writable = await (await dir.getFileHandle('a.log', { create: true })).createWritable();
		const bytes = new Uint8Array(100000);
		for (let i = 32; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
		await writable.write(bytes);
		await writable.close();
	});
	// The page took the files for a saved site and skipped its download:
	// the storage worker fetches the zips when the site does not reopen.
	const siteDownloads = [];
	context.on('request', (r) => /\/(site-images|wordpress)\/[^/]+\.zip$/.test(r.url()) && siteDownloads.push(r.url().replace(/^.*\//, '')));
	const opened = await boot(page, `${env.origin}/?workers=2&site-slug=cut-first-image`);
	assert.ok(opened.ok, opened.error);
	assert.equal(opened.restored, false);
	assert.equal(opened.notice, null);
	assert.ok(siteDownloads.some((name) => /^wp-[\d.]+\.zip$/.test(name)), siteDownloads.join(', '));
	assert.equal(await php(page, `<?php require '/wordpress/wp-load.php'; echo is_blog_installed() ? 'installed' : 'no';`), 'installed');
	assert.equal(await php(page, `<?php file_put_contents('/wordpress/kept.txt', 'kept'); echo 'ok';`), 'ok');
	await page.reload();
	const again = await boot(page, `${env.origin}/?workers=2&site-slug=cut-first-image`);
	assert.ok(again.ok && again.restored, again.error);
	assert.equal(await php(page, `<?php echo file_get_contents('/wordpress/kept.txt');`), 'kept');
	await context.close();
});

/** Flips bytes in (or cuts) a saved site's log file from a page of the
 *  origin that does not hold the site (once the closed page's storage
 *  worker has let go of the file, a moment after the page went). */
async function damage(page, slug, file, how) {
	for (let waited = 0; ; waited += 100) {
		try {
			return await damageOnce(page, slug, file, how);
		} catch (e) {
			if (!/NoModificationAllowedError/.test(e.message) || waited > 10000) throw e;
			await new Promise((r) => setTimeout(r, 100));
		}
	}
}

async function damageOnce(page, slug, file, how) {
	return page.evaluate(
		async ([slug, file, how]) => {
			let dir = await navigator.storage.getDirectory();
			for (const name of ['php-pool', 'sites', slug]) dir = await dir.getDirectoryHandle(name);
			const handle = await dir.getFileHandle(file).catch((e) => (how.ifPresent && e.name === 'NotFoundError' ? null : Promise.reject(e)));
			if (!handle) return 0;
			const bytes = new Uint8Array(await (await handle.getFile()).arrayBuffer());
			const writable = await handle.createWritable();
			if (how.cutLast) {
				await writable.write(bytes.slice(0, bytes.length - how.cutLast));
			} else {
				const at = Math.floor(bytes.length * how.flipAt);
				bytes[at] ^= 0xff;
				await writable.write(bytes);
			}
			await writable.close();
			return bytes.length;
		},
		[slug, file, how]
	);
}

test('a save cut short opens at the last whole save with a notice; a damaged only image refuses loudly', async () => {
	const context = await env.browser.newContext();
	const page = await context.newPage();
	const slug = 'torn';
	// A blank site: WordPress would go on writing (its cron, spawned by the
	// first page) after the batch this test means to cut.
	assert.ok((await boot(page, `${env.origin}/?workers=1&site=blank&site-slug=${slug}`)).ok);
	assert.equal(await php(page, `<?php file_put_contents('/wordpress/kept.txt', 'first'); echo 'ok';`), 'ok');
	assert.equal(await php(page, `<?php file_put_contents('/wordpress/lost.txt', str_repeat('x', 5000)); echo 'ok';`), 'ok');
	await page.goto(`${env.origin}/404.html`);
	await damage(page, slug, 'a.log', { cutLast: 100 });
	const reopened = await boot(page, `${env.origin}/?workers=1&site-slug=${slug}`);
	assert.ok(reopened.ok, reopened.error);
	assert.match(reopened.notice ?? '', /last whole save/);
	// The batch holding lost.txt's bytes was cut: at most its creation (an
	// earlier, whole batch) survives.
	assert.equal(await php(page, `<?php echo file_get_contents('/wordpress/kept.txt'), '|', strlen((string) @file_get_contents('/wordpress/lost.txt'));`), 'first|0');
	// Flipped bytes inside a WordPress site's image (about 17 MB, so 30 % of
	// the file is inside it), with no older state to fall back on.
	const flipped = 'flipped';
	assert.ok((await boot(page, `${env.origin}/?workers=1&site-slug=${flipped}`)).ok);
	assert.equal(await php(page, `<?php file_put_contents('/wordpress/saved.txt', 'x'); echo 'ok';`), 'ok');
	await page.goto(`${env.origin}/404.html`);
	// Both log files: the first page's compiled scripts (the shared OPcache
	// cache) may have outgrown the image and moved the newest image to b.log.
	await damage(page, flipped, 'a.log', { flipAt: 0.3 });
	await damage(page, flipped, 'b.log', { flipAt: 0.3, ifPresent: true });
	const refused = await boot(page, `${env.origin}/?workers=1&site-slug=${flipped}`);
	assert.equal(refused.ok, false);
	assert.match(refused.error, /cannot be opened.*image is damaged/s);
	await context.close();
});

function freePort() {
	return new Promise((resolve) => {
		const s = createServer().listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

/** SIGKILL to the browser and every process it started (its own process
 *  group), as when the machine loses it: none outlives it to write into
 *  the profile. */
function killBrowser(child) {
	try {
		process.kill(-child.pid, 'SIGKILL');
	} catch {
		child.kill('SIGKILL');
	}
}

/** Chromium with a profile on disk, driven over CDP, so it can be killed
 *  like a crashing browser (SIGKILL) and started again on the same profile. */
async function launchOnProfile(profile) {
	const port = await freePort();
	const child = spawn(process.env.CHROMIUM ?? '/usr/bin/chromium', [
		'--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync',
		'--disable-background-networking', '--disable-component-update',
		`--user-data-dir=${profile}`, `--remote-debugging-port=${port}`, 'about:blank',
	], { stdio: 'ignore', detached: true });
	for (let i = 0; ; i++) {
		try {
			const browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
			return { child, browser, context: browser.contexts()[0] };
		} catch (e) {
			if (i > 100) throw e;
			await new Promise((r) => setTimeout(r, 100));
		}
	}
}

test('the browser killed while 4 workers write: every acknowledged write is there, SQLite intact', async () => {
	const profile = mkdtempSync(join(tmpdir(), 'php-pool-profile-'));
	const server = await serve();
	try {
		const first = await launchOnProfile(profile);
		const page = await first.context.newPage();
		const opened = await boot(page, `${server.origin}/?workers=4&site-slug=crash`);
		assert.ok(opened.ok, opened.error);
		await php(page, `<?php $db = new PDO('sqlite:${DB}'); $db->exec('CREATE TABLE IF NOT EXISTS crash_rows (worker INT, n INT, PRIMARY KEY (worker, n))'); echo 'ok';`);
		// Each worker inserts rows and writes files, one request at a time,
		// noting each acknowledged request in the page.
		await page.evaluate((db) => {
			window.acked = [0, 0, 0, 0];
			window.writerErrors = [];
			const c = window.playground;
			for (const w of [0, 1, 2, 3]) {
				(async () => {
					const client = await c;
					for (let n = 1; ; n++) {
						const r = await client.run({ worker: w, code: `<?php $db = new PDO('sqlite:${db}'); $db->exec('PRAGMA busy_timeout = 10000'); $db->exec('INSERT INTO crash_rows VALUES (${w}, ' . ${n} . ')'); file_put_contents('/wordpress/crash-${w}-' . ${n} . '.txt', str_repeat('${w}', 3000)); echo 'ok';` });
						if (r.text !== 'ok') throw new Error(r.text + r.errors);
						window.acked[w] = n;
					}
				})().catch((e) => window.writerErrors.push(`worker ${w}: ${e?.message ?? e}`));
			}
		}, DB);
		// The kill comes once every worker has had several writes
		// acknowledged (an event, not a time window: on a loaded machine the
		// workers get their turns later), or as soon as a writer fails.
		await page.waitForFunction(() => window.writerErrors.length > 0 || window.acked.every((n) => n >= 5), null, { timeout: 90000 });
		const { acked, writerErrors } = await page.evaluate(() => ({ acked: [...window.acked], writerErrors: [...window.writerErrors] }));
		killBrowser(first.child);
		await new Promise((r) => first.child.once('exit', r));
		assert.deepEqual(writerErrors, [], 'no write failed before the kill');
		assert.ok(acked.every((n) => n >= 5), `every worker wrote something: ${acked}`);

		const second = await launchOnProfile(profile);
		try {
			const again = await second.context.newPage();
			const reopened = await boot(again, `${server.origin}/?workers=2&site-slug=crash`);
			assert.ok(reopened.ok, `${reopened.error}\n${reopened.logs.join('\n')}`);
			assert.equal(reopened.restored, true);
			const report = JSON.parse(await php(again, `<?php $db = new PDO('sqlite:${DB}'); $out = ['integrity' => $db->query('PRAGMA integrity_check')->fetchColumn()]; foreach ([0, 1, 2, 3] as $w) { $out['rows'][$w] = (int) $db->query("SELECT COUNT(*) FROM crash_rows WHERE worker = $w")->fetchColumn(); $out['max'][$w] = (int) $db->query("SELECT MAX(n) FROM crash_rows WHERE worker = $w")->fetchColumn(); $f = 0; for ($n = 1; $n <= ${Math.max(...acked)}; $n++) { if (is_file("/wordpress/crash-$w-$n.txt") && filesize("/wordpress/crash-$w-$n.txt") === 3000) $f = $n; else break; } $out['files'][$w] = $f; } echo json_encode($out);`));
			assert.equal(report.integrity, 'ok');
			for (const w of [0, 1, 2, 3]) {
				assert.ok(report.max[w] >= acked[w], `worker ${w}: rows up to ${acked[w]} were acknowledged, ${report.max[w]} stored`);
				assert.equal(report.rows[w], report.max[w], `worker ${w}: rows 1..${report.max[w]} all there`);
				assert.ok(report.files[w] >= acked[w], `worker ${w}: files up to ${acked[w]} acknowledged, ${report.files[w]} whole`);
			}
		} finally {
			killBrowser(second.child);
			await new Promise((r) => (second.child.exitCode !== null ? r() : second.child.once('exit', r)));
		}
	} finally {
		await server.close();
		rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
	}
});

test('a page on another origin that embeds the playground cannot reach a site saved first-party', async () => {
	const { startServer } = await import('../playground/serve.mjs');
	const { dirname } = await import('node:path');
	const { fileURLToPath } = await import('node:url');
	const embedder = await startServer({ dir: join(dirname(fileURLToPath(import.meta.url)), 'fixtures'), port: 0 });
	const context = await env.browser.newContext();
	try {
		const page = await context.newPage();
		assert.ok((await boot(page, `${env.origin}/?workers=1&site-slug=private-site`)).ok);
		assert.equal(await php(page, `<?php file_put_contents('/wordpress/private.txt', 'secret'); echo 'ok';`), 'ok');
		await page.goto('about:blank');
		// localhost and 127.0.0.1 are different sites: the iframe is third-party.
		const target = `${env.origin}/?workers=1&site-slug=private-site`;
		await page.goto(`http://localhost:${embedder.address().port}/embedder.html?playground=${encodeURIComponent(target)}`);
		await page.evaluate(() => window.ready);
		const seen = await page.evaluate(async () => ({
			exists: await window.call('fileExists', '/wordpress/private.txt'),
			text: (await window.call('run', { code: "<?php echo @file_get_contents('/wordpress/private.txt') ?: 'nothing';" })).text,
		}));
		// (Chromium here denies a third-party iframe its storage outright, so
		// the embedded site is a temporary one; with partitioned storage it
		// would be a different, empty one. Either way: not the saved site.)
		assert.deepEqual(seen, { exists: false, text: 'nothing' });
		// The first-party site is still there, whole.
		await page.goto('about:blank');
		assert.ok((await boot(page, `${env.origin}/?workers=1&site-slug=private-site`)).ok);
		assert.equal(await php(page, `<?php echo file_get_contents('/wordpress/private.txt');`), 'secret');
	} finally {
		await context.close();
		await new Promise((r) => embedder.close(r));
	}
});

test('without isolation the single worker saves the site itself', async () => {
	// No service worker (so no injected headers) and a server that sends
	// none: the page runs its one worker without a shared memory.
	const server = await serve({ isolationHeaders: false });
	const context = await env.browser.newContext({ serviceWorkers: 'block' });
	try {
		const page = await context.newPage();
		const first = await boot(page, `${server.origin}/?workers=2&site-slug=single`);
		assert.ok(first.ok, first.error);
		assert.equal(await page.evaluate(async () => (await window.playground).isolation().mode), 'single-worker');
		assert.equal(await php(page, `<?php file_put_contents('/wordpress/single.txt', 'kept alone'); $db = new PDO('sqlite:${DB}'); $db->exec("INSERT INTO wp_options(option_name, option_value) VALUES ('single_worker', 'yes')"); echo 'ok';`), 'ok');
		await page.goto('about:blank');
		const again = await boot(page, `${server.origin}/?workers=2&site-slug=single`);
		assert.ok(again.ok, again.error);
		assert.equal(again.restored, true);
		assert.equal(await php(page, `<?php echo file_get_contents('/wordpress/single.txt'), '|'; $db = new PDO('sqlite:${DB}'); echo $db->query("SELECT option_value FROM wp_options WHERE option_name = 'single_worker'")->fetchColumn();`), 'kept alone|yes');
	} finally {
		await context.close();
		await server.close();
	}
});
