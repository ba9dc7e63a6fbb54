// Bad input (issue 21, item 5): each gets a clear error worded for a
// person, and loses nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();

/** Opens the page with `query` and returns the boot error it shows (or
 *  throws when it boots or shows nothing within `ms`). */
async function bootError(query, { ms = 60000, initScript } = {}) {
	const context = await env.browser.newContext();
	try {
		if (initScript) await context.addInitScript(initScript);
		const page = await context.newPage();
		const started = Date.now();
		await page.goto(`${env.origin}/${query}`);
		await page.waitForFunction(() => window.playground !== undefined, null, { timeout: ms });
		const booted = await Promise.race([
			page.evaluate(() => window.playground.then(() => true, () => false)),
			new Promise((resolve) => setTimeout(() => resolve('still booting'), ms)),
		]);
		await page.waitForTimeout(100); // the page's own handler writes the status
		const text = await page.textContent('#status');
		assert.ok(booted === false && (await page.$('#status.error')), `expected a boot error for ${query}, got ${booted}: ${text}`);
		return { text, ms: Date.now() - started };
	} finally {
		await context.close();
	}
}

/** Entry names of a zip, from its central directory. */
function zipNames(bytes) {
	const view = Buffer.from(bytes);
	const names = [];
	for (let i = 0; i + 46 <= view.length; i++) {
		if (view.readUInt32LE(i) !== 0x02014b50) continue;
		const nameLength = view.readUInt16LE(i + 28);
		names.push(view.subarray(i + 46, i + 46 + nameLength).toString('latin1'));
		i += 45 + nameLength;
	}
	return names;
}

describe('bad options and Blueprints fail fast with a clear error', () => {
	test('?blueprint-url= that answers 404 or is not JSON names the URL and the problem', async () => {
		const missing = await bootError('?workers=1&storage=temp&blueprint-url=/no-such-blueprint.json');
		assert.match(missing.text, /\/no-such-blueprint\.json/);
		assert.match(missing.text, /HTTP 404/);
		// A page that is not a Blueprint (this HTML page itself).
		const html = await bootError('?workers=1&storage=temp&blueprint-url=/index.html');
		assert.match(html.text, /\/index\.html/);
		assert.match(html.text, /not JSON/);
		for (const { text } of [missing, html]) assert.doesNotMatch(text, /JsValue|Error\(/);
	});

	test('a landingPage outside the site is refused before the boot', async () => {
		const { page, context } = await openPlayground(env.browser, env.origin, '?site=blank&workers=1&storage=temp');
		try {
			const messages = await page.evaluate(async () => {
				const { startPlayground } = await import('/host/index.js');
				const results = {};
				for (const landingPage of ['../../index.html', '/wp-admin/%2e%2e/%2E%2E/index.html', 'https://example.com/', '//example.com/x']) {
					const iframe = document.createElement('iframe');
					document.body.append(iframe);
					results[landingPage] = await startPlayground({ iframe, site: 'blank', workers: 1, storage: 'temp', blueprint: { landingPage, steps: [] } }).then(
						() => `booted; iframe at ${iframe.src}`,
						(e) => e.message
					);
				}
				return results;
			});
			for (const [landingPage, message] of Object.entries(messages)) {
				assert.match(message, /landingPage/, `${landingPage}: ${message}`);
				assert.ok(message.includes(landingPage), `${landingPage}: ${message}`);
			}
		} finally {
			await context.close();
		}
	});

	test('phpBuild=jspi in a browser without JSPI fails at once, naming phpBuild=asyncify', async () => {
		const { text, ms } = await bootError('?workers=1&storage=temp&phpBuild=jspi', {
			ms: 20000,
			initScript: () => {
				delete WebAssembly.Suspending;
				delete WebAssembly.promising;
			},
		});
		assert.match(text, /JSPI/);
		assert.match(text, /phpBuild=asyncify/);
		assert.ok(ms < 10000, `took ${ms} ms`);
	});

	test('a numeric option that is not a number is named as written', async () => {
		const { text } = await bootError('?workers=abc&storage=temp');
		assert.doesNotMatch(text, /JsValue|NaN/);
		assert.match(text, /workers/);
		assert.match(text, /"abc"/);
	});
});

describe('a booted site', () => {
	let page, context, logs;
	before(async () => {
		({ page, context, logs } = await openPlayground(env.browser, env.origin, '?workers=1&storage=temp'));
	});
	after(() => context?.close());

	test('a worker that does not exist is named as a person would', async () => {
		const message = await page.evaluate(async () => {
			const c = await window.playground;
			return c.run({ code: '<?php echo 1;', worker: 1 }).then(() => 'ran', (e) => e.message);
		});
		assert.match(message, /there is no worker 1: this site has 1 worker \(0\)/);
	});

	test("the static fallback never serves a file outside WordPress's static root", async () => {
		const results = await page.evaluate(async () => {
			const c = await window.playground;
			const out = {};
			for (const path of [
				'wp-includes/..%2f..%2f..%2findex.html',
				'wp-includes/%2e%2e%2f%2e%2e%2f%2e%2e%2findex.html',
				'wp-includes/%2E%2E%2F%2E%2E%2F%2E%2E%2Fhost%2Findex.js',
				// (`%2e%2e/` alone is a `..` segment to the browser's URL parser,
				// which resolves it before any request is made.)
				'wp-includes/%2E.%2f.%2E%2F%2e%2e%2Findex.html',
				'wp-includes/..%5c..%5c..%5cindex.html',
			]) {
				const r = await fetch(c.absoluteUrl + path);
				const text = await r.text();
				out[path] = { status: r.status, playgroundPage: text.includes('id="status"') || text.includes('startPlayground') };
			}
			// What is inside the root is still served.
			const inside = await fetch(c.absoluteUrl + 'wp-includes/js/jquery/jquery.min.js');
			out.inside = { status: inside.status };
			return out;
		});
		assert.equal(results.inside.status, 200);
		for (const [path, { status, playgroundPage }] of Object.entries(results)) {
			if (path === 'inside') continue;
			assert.equal(playgroundPage, false, `${path} served a file outside the root (HTTP ${status})`);
			assert.equal(status, 404, path);
		}
	});

	test('file names that are not UTF-8 lose no other file: listing, export', async () => {
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			await c.mkdir('/wordpress/odd');
			await c.writeFile('/wordpress/odd/plain.txt', 'plain');
			const made = await c.run({ code: '<?php var_dump(file_put_contents("/wordpress/odd/\\xff\\xfe.txt", "x")); echo implode(",", array_map("bin2hex", scandir("/wordpress/odd")));' });
			const listed = await c.listFiles('/wordpress/odd').catch((e) => `listFiles failed: ${e.message}`);
			const zip = await c.exportSite().then((z) => Array.from(z), (e) => `exportSite failed: ${e.message}`);
			const after = await c.run({ code: '<?php echo file_get_contents("/wordpress/odd/plain.txt");' });
			return { made: made.text, listed, zip, after: after.text };
		});
		assert.match(outcome.made, /int\(1\)/, outcome.made);
		assert.ok(Array.isArray(outcome.listed), String(outcome.listed));
		assert.ok(outcome.listed.includes('plain.txt'), JSON.stringify(outcome.listed));
		assert.ok(Array.isArray(outcome.zip), String(outcome.zip));
		const names = zipNames(Uint8Array.from(outcome.zip));
		assert.ok(names.includes('odd/plain.txt'), names.filter((n) => n.startsWith('odd')).join(', '));
		assert.ok(names.includes('index.php'));
		assert.equal(outcome.after, 'plain');
	});
});

/** A zip of stored (uncompressed) entries `[nameBytes, contents]`; names
 *  that are UTF-8 carry the zip's UTF-8 flag, others are bytes. */
function storedZip(entries) {
	const locals = [];
	const centrals = [];
	let offset = 0;
	for (const [name, text] of entries) {
		const data = Buffer.from(text);
		const flag = Buffer.from(name.toString('utf8')).equals(name) ? 0x0800 : 0;
		const crc = crc32(data);
		const common = Buffer.alloc(26);
		common.writeUInt16LE(20, 0); // version needed
		common.writeUInt16LE(flag, 2);
		common.writeUInt16LE(0, 4); // stored
		common.writeUInt32LE(0, 6); // time, date
		common.writeUInt32LE(crc, 10);
		common.writeUInt32LE(data.length, 14);
		common.writeUInt32LE(data.length, 18);
		common.writeUInt16LE(name.length, 22);
		common.writeUInt16LE(0, 24); // extra
		const local = Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), common, name, data]);
		const central = Buffer.concat([Buffer.from([0x50, 0x4b, 0x01, 0x02, 20, 3]), common, Buffer.alloc(14), name]);
		central.writeUInt32LE(offset, 42);
		locals.push(local);
		centrals.push(central);
		offset += local.length;
	}
	const directory = Buffer.concat(centrals);
	const end = Buffer.alloc(22);
	end.writeUInt32LE(0x06054b50, 0);
	end.writeUInt16LE(entries.length, 8);
	end.writeUInt16LE(entries.length, 10);
	end.writeUInt32LE(directory.length, 12);
	end.writeUInt32LE(offset, 16);
	return Buffer.concat([...locals, directory, end]);
}

// PHP cannot make such a name in php-wasm: Emscripten's file layer decodes
// every path as UTF-8, so bad bytes are U+FFFD before they reach the
// filesystem. Such names come in archives: kept, and exported as bytes.
test('a file name that is not UTF-8, from an imported zip, exports byte for byte', async () => {
	const zip = storedZip([
		[Buffer.from('plain.txt'), 'plain'],
		[Buffer.from([0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74]), 'odd'],
	]);
	const { page, context, logs } = await openPlayground(env.browser, env.origin, '?workers=1&site=blank&storage=temp');
	try {
		const exported = await page.evaluate(async (bytes) => {
			const { startPlayground } = await import('/host/index.js');
			const site = await startPlayground({ site: new Uint8Array(bytes), storage: 'temp', workers: 1 });
			const plain = (await site.run({ code: '<?php echo file_get_contents("/wordpress/plain.txt");' })).text;
			return { plain, zip: Array.from(await site.exportSite()) };
		}, Array.from(zip));
		assert.equal(exported.plain, 'plain');
		// zipNames reads names as latin1: one character per byte.
		const names = zipNames(Uint8Array.from(exported.zip));
		assert.deepEqual(names.sort(), ['plain.txt', '\u00ff\u00fe.txt']);
	} catch (e) {
		e.message += `\n${logs.join('\n')}`;
		throw e;
	} finally {
		await context.close();
	}
});

test('a saved site with a file name that is not UTF-8 reopens with every other file', async () => {
	const slug = `odd-names-${Date.now()}`;
	const { page, context, logs } = await openPlayground(env.browser, env.origin, `?workers=1&site=blank&site-slug=${slug}`);
	try {
		await page.evaluate(async () => {
			const c = await window.playground;
			await c.writeFile('/wordpress/before.txt', 'before');
			await c.run({ code: '<?php file_put_contents("/wordpress/\\xff\\xfe.txt", "x");' });
			await c.writeFile('/wordpress/after.txt', 'after');
		});
		await page.reload();
		const back = await page.evaluate(async () => {
			const c = await window.playground;
			const read = (path) => c.readFileAsText(path).catch((e) => `missing: ${e.message}`);
			return {
				restored: c.restored,
				before: await read('/wordpress/before.txt'),
				after: await read('/wordpress/after.txt'),
				odd: (await c.run({ code: '<?php echo @file_get_contents("/wordpress/\\xff\\xfe.txt");' })).text,
			};
		});
		assert.deepEqual(back, { restored: true, before: 'before', after: 'after', odd: 'x' });
	} catch (e) {
		e.message += `\n${logs.join('\n')}`;
		throw e;
	} finally {
		await context.close();
	}
});

test('a 200 MiB request body gets 413 and a PHP response past memory gets 507; the site goes on', async () => {
	const { page, context, logs } = await openPlayground(env.browser, env.origin, '?workers=1&storage=temp&site=blank');
	try {
		const outcome = await page.evaluate(async () => {
			const c = await window.playground;
			await c.writeFile('/wordpress/len.php', '<?php echo strlen(file_get_contents("php://input"));');
			await c.writeFile('/wordpress/big.php', '<?php ini_set("memory_limit", "-1"); $s = str_repeat("x", 1 << 20); for ($i = 0; $i < 300; $i++) echo $s;');
			await c.writeFile('/wordpress/kept.txt', 'kept');
			const answer = async (path, init) => {
				const r = await fetch(c.absoluteUrl + path, init);
				return { status: r.status, text: (await r.text()).slice(0, 300) };
			};
			return {
				// Blobs: Playwright copies a bytes body into its own protocol
				// messages, and fails on one this large.
				post: await answer('len.php', { method: 'POST', body: new Blob([new Uint8Array(200 << 20)]) }),
				small: await answer('len.php', { method: 'POST', body: new Blob([new Uint8Array(1 << 20)]) }),
				echo: await answer('big.php'),
				after: await answer('kept.txt'),
				// The client refuses what the service worker would, before copying it.
				viaClient: await c.request({ url: '/len.php', method: 'POST', body: new Uint8Array((64 << 20) + 1) }).then(
					(r) => `answered ${r.httpStatusCode}`,
					(e) => String(e.message ?? e)
				),
			};
		});
		assert.equal(outcome.post.status, 413, JSON.stringify(outcome.post));
		assert.match(outcome.post.text, /200 MiB.*at most 64 MiB/);
		assert.deepEqual(outcome.small, { status: 200, text: String(1 << 20) });
		// What PHP echoes past the memory: the worker is replaced, with why.
		assert.equal(outcome.echo.status, 507, JSON.stringify(outcome.echo));
		assert.match(outcome.echo.text, /memory is full/);
		assert.deepEqual(outcome.after, { status: 200, text: 'kept' });
		assert.match(outcome.viaClient, /65 MiB.*at most 64 MiB/);
	} catch (e) {
		e.message += `\n${logs.slice(-20).join('\n')}`;
		throw e;
	} finally {
		await context.close();
	}
});
