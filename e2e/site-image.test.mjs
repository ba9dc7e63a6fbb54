// A new default site opens from the image the build made (host/src/versions.rs
// `site_image`, playground/build.mjs): WordPress with its first run done and
// the scripts compiled for it, so its first page compiles nothing. Another
// WordPress, or an image that cannot be fetched, installs from the zips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();

/** Boots a second site with `options` from a blank playground page, with
 *  no page of its own (no iframe): nothing has run its PHP before the test
 *  looks. */
async function bootQuiet(options, { route } = {}) {
	const context = await env.browser.newContext();
	if (route) await context.route(route.match, route.handle);
	const page = await context.newPage();
	await page.goto(`${env.origin}/?site=blank&workers=1&storage=temp`);
	await page.evaluate(() => window.playground.then(() => true));
	const started = await page.evaluate(() => Math.floor(Date.now() / 1000));
	await page.evaluate(async (options) => {
		const { startPlayground } = await import('/host/index.js');
		window.quiet = startPlayground({ ...options, storage: 'temp' });
		await window.quiet;
	}, options);
	return { context, page, started };
}

/** The shared compiled-script entries: how many, and how many were written
 *  before `since` (Unix seconds). */
const COMPILED = `<?php $all = 0; $old = 0;
	foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator(ini_get('opcache.file_cache'), FilesystemIterator::SKIP_DOTS)) as $f) {
		$all++; if ($f->getMTime() < SINCE) $old++;
	}
	echo json_encode([$all, $old]);`;

const compiled = (page, since) =>
	page.evaluate(async (code) => JSON.parse((await (await window.quiet).run({ code })).text), COMPILED.replace('SINCE', since));

const frontPage = (page) =>
	page.evaluate(async () => {
		const client = await window.quiet;
		const r = await fetch(client.absoluteUrl);
		return { status: r.status, html: await r.text() };
	});

test('a new default site starts with its compiled scripts, and its first page compiles none', async () => {
	const { context, page, started } = await bootQuiet({ workers: 1 });
	const [entries, fromBuild] = await compiled(page, started);
	assert.ok(entries > 300, `${entries} compiled scripts in the image`);
	assert.equal(fromBuild, entries, 'every one was compiled at build time');
	const first = await frontPage(page);
	assert.equal(first.status, 200);
	assert.match(first.html, /<\/html>/);
	// The front page compiled nothing older than this boot: the image holds
	// every script it runs, the auto-login mu-plugin too (a boot leaves it
	// as the image has it).
	const recompiled = await page.evaluate(
		async (code) => JSON.parse((await (await window.quiet).run({ code })).text),
		`<?php $out = [];
		foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator(ini_get('opcache.file_cache'), FilesystemIterator::SKIP_DOTS)) as $f) {
			$script = preg_replace('~^.*?/[0-9a-f]{32}~', '', substr($f->getPathname(), 0, -4));
			if ($f->getMTime() >= ${started} && @filemtime($script) < ${started}) $out[] = $script;
		}
		echo json_encode($out);`
	);
	assert.deepEqual(recompiled, []);
	await context.close();
});

// Its database's first connection, made by the boot (host/src/boot.rs
// `FirstUse::Connect`), compiles WordPress's loading scripts; the front
// page compiles the rest.
test('another WordPress installs from its zip and compiles on first use', async () => {
	const { context, page, started } = await bootQuiet({ workers: 1, wp: '6.4' });
	const [atBoot, oldAtBoot] = await compiled(page, started);
	assert.ok(atBoot > 100 && oldAtBoot === 0, `${atBoot} compiled by the boot, ${oldAtBoot} earlier`);
	assert.equal((await frontPage(page)).status, 200);
	const [entries, old] = await compiled(page, started);
	assert.ok(entries > atBoot && old === 0, `${entries} compiled now (${atBoot} by the boot), ${old} earlier`);
	await context.close();
});

test('an image that cannot be fetched falls back to the zips', async () => {
	let asked = 0;
	const route = {
		match: /\/site-images\//,
		handle: (r) => {
			asked++;
			return r.fulfill({ status: 404, body: 'gone' });
		},
	};
	const { context, page, started } = await bootQuiet({ workers: 1 }, { route });
	// (The blank page's own boot asked for none: a blank site has no image.)
	assert.equal(asked, 1, 'the image was asked for');
	const [entries, old] = await compiled(page, started);
	assert.ok(entries > 0 && old === 0, `installed from the zips: ${entries} compiled by this boot, ${old} from a build`);
	assert.equal((await frontPage(page)).status, 200);
	await context.close();
});

test('a damaged image falls back to the zips, and the site says so', async () => {
	const route = {
		match: /\/site-images\//,
		handle: async (r) => {
			const body = await (await r.fetch()).body();
			// Bytes flipped in the middle: inside some file's compressed data.
			for (let i = 0; i < 64; i++) body[(body.length >> 1) + i] ^= 0xff;
			return r.fulfill({ status: 200, contentType: 'application/zip', body });
		},
	};
	const { context, page, started } = await bootQuiet({ workers: 1 }, { route });
	const notice = await page.evaluate(async () => (await window.quiet).storageNotice);
	assert.match(notice ?? '', /prebuilt site image is damaged.*installed from the WordPress zips/s);
	// Installed from the zips, and its first connection made by the boot.
	const [entries, old] = await compiled(page, started);
	assert.ok(entries > 100 && old === 0, `installed from the zips: ${entries} compiled by this boot, ${old} from a build`);
	const first = await frontPage(page);
	assert.equal(first.status, 200);
	assert.match(first.html, /<\/html>/);
	await context.close();
});
