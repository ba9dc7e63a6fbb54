// Blueprints run by Playground's own engine (@wp-playground/blueprints)
// against our client: one Blueprint per step family, each checked by its
// effect. Resources come from this origin (a fixture route added to the dist
// server), from a second server with CORS headers, inline, or from the VFS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { crc32 } from 'node:zlib';
import { openPlayground, serve, startBrowser } from './harness.mjs';

/** A zip (stored, no compression) of `{path: text}`. */
function zip(files) {
	const locals = [];
	const centrals = [];
	let offset = 0;
	for (const [name, text] of Object.entries(files)) {
		const nameBytes = Buffer.from(name);
		const data = Buffer.from(text);
		const crc = crc32(data);
		const local = Buffer.alloc(30);
		local.writeUInt32LE(0x04034b50, 0);
		local.writeUInt16LE(20, 4);
		local.writeUInt16LE(0x21, 12); // 1980-01-01
		local.writeUInt32LE(crc, 14);
		local.writeUInt32LE(data.length, 18);
		local.writeUInt32LE(data.length, 22);
		local.writeUInt16LE(nameBytes.length, 26);
		const central = Buffer.alloc(46);
		central.writeUInt32LE(0x02014b50, 0);
		central.writeUInt16LE(20, 4);
		central.writeUInt16LE(20, 6);
		central.writeUInt16LE(0x21, 14);
		central.writeUInt32LE(crc, 16);
		central.writeUInt32LE(data.length, 20);
		central.writeUInt32LE(data.length, 24);
		central.writeUInt16LE(nameBytes.length, 28);
		central.writeUInt32LE(offset, 42);
		locals.push(local, nameBytes, data);
		centrals.push(central, nameBytes);
		offset += 30 + nameBytes.length + data.length;
	}
	const directory = Buffer.concat(centrals);
	const end = Buffer.alloc(22);
	end.writeUInt32LE(0x06054b50, 0);
	end.writeUInt16LE(Object.keys(files).length, 8);
	end.writeUInt16LE(Object.keys(files).length, 10);
	end.writeUInt32LE(directory.length, 12);
	end.writeUInt32LE(offset, 16);
	return Buffer.concat([...locals, directory, end]);
}

const plugin = (slug, name) => ({
	[`${slug}/${slug}.php`]: `<?php\n/**\n * Plugin Name: ${name}\n */\nfunction ${slug.replaceAll('-', '_')}_here() { return 'here'; }\n`,
});
const FIXTURES = {
	'/fixtures/files.zip': zip({ 'top.txt': 'top', 'inner/deep.txt': 'deep' }),
	'/fixtures/cors-theme.zip': zip({
		'e2e-theme/style.css': '/*\nTheme Name: E2E Theme\n*/\n',
		'e2e-theme/index.php': '<?php echo "e2e theme";\n',
	}),
	'/fixtures/vfs-plugin.zip': zip(plugin('vfs-plugin', 'VFS Plugin')),
};

describe('Blueprints', () => {
	let browser, site, cors, closedUrl;
	before(async () => {
		browser = await startBrowser();
		site = await serve();
		// Fixtures on the playground's own origin, beside dist/.
		const distHandler = site.server.listeners('request')[0];
		site.server.removeAllListeners('request');
		site.server.on('request', (req, res) => {
			const body = FIXTURES[new URL(req.url, 'http://x').pathname];
			if (!body) return distHandler(req, res);
			const type = req.url.endsWith('.json') ? 'application/json' : 'application/zip';
			res.writeHead(200, { 'Content-Type': type, 'Cross-Origin-Resource-Policy': 'cross-origin' }).end(body);
		});
		// Another origin that allows CORS.
		cors = createServer((req, res) => {
			const body = FIXTURES[new URL(req.url, 'http://x').pathname];
			res.writeHead(body ? 200 : 404, { 'Access-Control-Allow-Origin': '*', 'Content-Type': 'application/zip' }).end(body ?? '');
		});
		await new Promise((r) => cors.listen(0, '127.0.0.1', r));
		// A port nothing listens on: the network is not reachable there.
		const closed = createServer();
		await new Promise((r) => closed.listen(0, '127.0.0.1', r));
		closedUrl = `http://127.0.0.1:${closed.address().port}/plugin.zip`;
		await new Promise((r) => closed.close(r));
	});
	after(async () => {
		await browser?.close();
		await site?.close();
		await new Promise((r) => cors?.close(r));
	});

	const corsUrl = (path) => `http://127.0.0.1:${cors.address().port}${path}`;

	/** Runs PHP with WordPress loaded on `worker` and returns its output. */
	const wp = (page, code, worker) =>
		page.evaluate(
			async ({ code, worker }) => {
				const c = await window.playground;
				const r = await c.run({ code: `<?php require '/wordpress/wp-load.php'; ${code}`, worker });
				return r.text;
			},
			{ code, worker }
		);

	test("the client's UniversalPHP surface: run options, chdir, file calls, events", async () => {
		const { page, context } = await openPlayground(browser, site.origin, '?site=blank&workers=2&storage=temp');
		try {
			const r = await page.evaluate(async () => {
				const c = await window.playground;
				const root = c.documentRoot;
				const events = [];
				const listener = (e) => events.push(e.type);
				c.addEventListener('request.end', listener);
				await c.mkdirTree(root + '/u/a/b');
				await c.writeFile('/tmp/script.php', '<?php echo getenv("GREETING"), " ", file_get_contents("php://input"), " ", getcwd();');
				const script = await c.run({ scriptPath: '/tmp/script.php', env: { GREETING: 'hi' }, body: 'body' });
				await c.writeFile(root + '/u/a/f.txt', 'f');
				await c.cp(root + '/u/a', root + '/u/copy');
				await c.mv(root + '/u/copy/f.txt', root + '/u/copy/g.txt');
				const notEmpty = await c.rmdir(root + '/u/a', { recursive: false }).then(() => 'removed', (e) => e.code);
				c.removeEventListener('request.end', listener);
				c.chdir(root + '/u');
				// Every worker starts in the directory chdir named (and sees /tmp).
				const cwds = [];
				for (const worker of [0, 1]) {
					cwds.push((await c.run({ code: '<?php echo getcwd(), "|", file_exists("/tmp/script.php") ? "tmp" : "no tmp";', worker })).text);
				}
				const failed = await c.run({ code: '<?php throw new Exception("boom");' }).then(
					() => 'resolved',
					(e) => [e.message.split('\n')[0], e.response.exitCode, /boom/.test(e.response.errors)]
				);
				const json = (await c.run({ code: '<?php echo json_encode(["a" => 1]);' })).json;
				return {
					script: script.text,
					isDir: [await c.isDir(root + '/u/a/b'), await c.isDir(root + '/u/a/f.txt'), await c.isDir(root + '/nope')],
					copied: (await c.listFiles(root + '/u/copy', { prependPath: true })).sort(),
					notEmpty,
					removed: await c.rmdir(root + '/u/a').then(() => c.fileExists(root + '/u/a')),
					cwds,
					failed,
					json,
					events,
				};
			});
			assert.deepEqual(r, {
				script: 'hi body /wordpress',
				isDir: [true, false, false],
				copied: ['/wordpress/u/copy/b', '/wordpress/u/copy/g.txt'],
				notEmpty: 'ENOTEMPTY',
				removed: false,
				cwds: ['/wordpress/u|tmp', '/wordpress/u|tmp'],
				failed: ['PHP.run() failed with exit code 255.', 255, true],
				json: { a: 1 },
				events: ['request.end'],
			});
		} finally {
			await context.close();
		}
	});

	test('in the URL fragment (JSON): login, setSiteOptions, updateUserMeta, runPHP, defineWpConfigConsts, landingPage', async () => {
		const blueprint = {
			landingPage: '/wp-admin/',
			preferredVersions: { php: '8.3', wp: 'latest' },
			steps: [
				{ step: 'login', username: 'admin', password: 'password' },
				{ step: 'setSiteOptions', options: { blogname: 'Blueprint Site', blogdescription: 'Set by a step' } },
				{ step: 'updateUserMeta', userId: 1, meta: { first_name: 'Ada' } },
				{ step: 'runPHP', code: "<?php require '/wordpress/wp-load.php'; update_option('from_run_php', 'yes');" },
				{ step: 'defineWpConfigConsts', consts: { E2E_CONSTANT: 'defined everywhere' } },
			],
		};
		const { page, context, logs } = await openPlayground(browser, site.origin, `?workers=2#${JSON.stringify(blueprint)}`);
		try {
			assert.equal(await wp(page, "echo get_option('blogname'), '|', get_option('blogdescription');"), 'Blueprint Site|Set by a step');
			assert.equal(await wp(page, "echo get_user_meta(1, 'first_name', true);"), 'Ada');
			assert.equal(await wp(page, "echo get_option('from_run_php');"), 'yes');
			for (const worker of [0, 1]) {
				assert.equal(await wp(page, 'echo E2E_CONSTANT;', worker), 'defined everywhere', `worker ${worker}`);
			}
			// The iframe opened at the landing page, logged in: the dashboard, not the login form.
			const src = await page.locator('#site').getAttribute('src');
			assert.match(src, /\/scope:[^/]+\/wp-admin\/$/);
			const frame = page.frameLocator('#site');
			await frame.locator('#dashboard-widgets').waitFor({ timeout: 60000 });
			const admin = await page.evaluate(async () => {
				const r = await fetch((await window.playground).absoluteUrl + 'wp-admin/');
				return { url: r.url, body: await r.text() };
			});
			assert.doesNotMatch(admin.url, /wp-login\.php/);
			assert.match(admin.body, /<title>Dashboard/);
		} catch (e) {
			e.message += `\n${logs.join('\n')}`;
			throw e;
		} finally {
			await context.close();
		}
	});

	test('in the URL fragment (base64): files, unzip from this origin, request', async () => {
		const blueprint = {
			steps: [
				{ step: 'mkdir', path: '/wordpress/bp' },
				{ step: 'writeFile', path: '/wordpress/bp/one.txt', data: 'one' },
				{ step: 'writeFiles', writeToPath: '/wordpress/bp/tree', filesTree: { resource: 'literal:directory', name: 'tree', files: { 'x.txt': 'X', sub: { 'y.txt': 'Y' } } } },
				{ step: 'cp', fromPath: '/wordpress/bp/one.txt', toPath: '/wordpress/bp/two.txt' },
				{ step: 'mv', fromPath: '/wordpress/bp/two.txt', toPath: '/wordpress/bp/three.txt' },
				{ step: 'rm', path: '/wordpress/bp/one.txt' },
				{ step: 'mkdir', path: '/wordpress/bp/gone/deeper' },
				{ step: 'rmdir', path: '/wordpress/bp/gone' },
				{ step: 'unzip', zipFile: { resource: 'url', url: `${site.origin}/fixtures/files.zip` }, extractToPath: '/wordpress/bp/unzipped' },
				{ step: 'writeFile', path: '/wordpress/mark.php', data: "<?php file_put_contents(__DIR__ . '/marked.txt', $_SERVER['REQUEST_METHOD']);" },
				// Playground's engine (3.1.54) drops `request` steps with a warning;
				// it must not fail the Blueprint. client.request() is checked below.
				{ step: 'request', request: { method: 'POST', url: '/mark.php' } },
			],
		};
		const fragment = Buffer.from(JSON.stringify(blueprint)).toString('base64');
		const { page, context, logs } = await openPlayground(browser, site.origin, `?workers=2#${fragment}`);
		try {
			const files = await page.evaluate(async () => {
				const c = await window.playground;
				const read = (p) => c.readFileAsText('/wordpress/bp/' + p).catch((e) => e.code ?? String(e));
				return {
					listed: (await c.listFiles('/wordpress/bp')).sort(),
					three: await read('three.txt'),
					x: await read('tree/x.txt'),
					y: await read('tree/sub/y.txt'),
					top: await read('unzipped/top.txt'),
					deep: await read('unzipped/inner/deep.txt'),
					markedByStep: await c.fileExists('/wordpress/marked.txt'),
					status: (await c.request({ method: 'POST', url: '/mark.php' })).httpStatusCode,
					marked: await c.readFileAsText('/wordpress/marked.txt'),
				};
			});
			assert.deepEqual(files, {
				listed: ['three.txt', 'tree', 'unzipped'],
				three: 'one',
				x: 'X',
				y: 'Y',
				top: 'top',
				deep: 'deep',
				markedByStep: false,
				status: 200,
				marked: 'POST',
			});
		} catch (e) {
			e.message += `\n${logs.join('\n')}`;
			throw e;
		} finally {
			await context.close();
		}
	});

	test('startPlayground({blueprint}): plugins and themes from a literal zip, a CORS URL and the VFS, activated', async () => {
		const { page, context, logs } = await openPlayground(browser, site.origin, '?site=blank&workers=1');
		try {
			const pluginZip = [...zip(plugin('literal-plugin', 'Literal Plugin'))];
			const result = await page.evaluate(
				async ({ pluginZip, themeUrl, vfsUrl }) => {
					const { startPlayground } = await import('/host/index.js');
					const client = await startPlayground({
						workers: 2,
						storage: 'temp', // beside the page's own site
						blueprint: {
							steps: [
								{ step: 'installPlugin', pluginData: { resource: 'literal', name: 'literal-plugin.zip', contents: new Uint8Array(pluginZip) } },
								{ step: 'writeFile', path: '/tmp/vfs-plugin.zip', data: { resource: 'url', url: vfsUrl } },
								{ step: 'installPlugin', pluginData: { resource: 'vfs', path: '/tmp/vfs-plugin.zip' }, options: { activate: false } },
								{ step: 'activatePlugin', pluginPath: 'vfs-plugin/vfs-plugin.php' },
								{ step: 'installTheme', themeData: { resource: 'url', url: themeUrl }, options: { activate: false } },
								{ step: 'activateTheme', themeFolderName: 'e2e-theme' },
							],
						},
					});
					const r = await client.run({
						code: `<?php require '/wordpress/wp-load.php';
						echo json_encode([get_option('active_plugins'), get_stylesheet(), function_exists('vfs_plugin_here')]);`,
					});
					return r.json;
				},
				{ pluginZip, themeUrl: corsUrl('/fixtures/cors-theme.zip'), vfsUrl: `${site.origin}/fixtures/vfs-plugin.zip` }
			);
			const [plugins, theme, loaded] = result;
			assert.deepEqual([...plugins].sort(), ['literal-plugin/literal-plugin.php', 'vfs-plugin/vfs-plugin.php']);
			assert.equal(theme, 'e2e-theme');
			assert.equal(loaded, true);
		} catch (e) {
			e.message += `\n${logs.join('\n')}`;
			throw e;
		} finally {
			await context.close();
		}
	});

	// The engine's runSql cuts SQL into statements with the SQLite
	// integration's WP_MySQL_Lexer: quoted semicolons, escaped quotes and
	// every kind of comment stay inside their statements.
	test('runSql: statements, quoted semicolons, escapes and comments', async () => {
		const sql = [
			'-- a comment; not a statement',
			"UPDATE wp_options SET option_value = 'From SQL; with a semicolon' WHERE option_name = 'blogdescription';",
			'/* a block comment; also not one */',
			"UPDATE wp_options SET option_value = 'It''s \\'quoted\\'' WHERE option_name = 'blogname';",
			'# a hash comment; not one either',
			// (The engine drops a last statement without a semicolon.)
			'-- a line comment; then the last statement',
			"UPDATE wp_options SET option_value = 'tail' WHERE option_name = 'admin_email';",
		].join('\n');
		const blueprint = { steps: [{ step: 'runSql', sql: { resource: 'literal', name: 'q.sql', contents: sql } }] };
		const { page, context, logs } = await openPlayground(browser, site.origin, `?workers=2#${JSON.stringify(blueprint)}`);
		try {
			assert.equal(
				await wp(page, "echo get_option('blogdescription'), '|', get_option('blogname'), '|', get_option('admin_email');"),
				"From SQL; with a semicolon|It's 'quoted'|tail"
			);
		} catch (e) {
			e.message += `\n${logs.join('\n')}`;
			throw e;
		} finally {
			await context.close();
		}
	});

	test('?blueprint-url= on this origin: resetData', async () => {
		FIXTURES['/fixtures/blueprint.json'] = JSON.stringify({ steps: [{ step: 'resetData' }] });
		const { page, context, logs } = await openPlayground(browser, site.origin, `?workers=2&blueprint-url=${encodeURIComponent('/fixtures/blueprint.json')}`);
		try {
			assert.equal(await wp(page, "echo count(get_posts(['post_type' => 'any', 'post_status' => 'any'])), '|', get_comments(['count' => true]);"), '0|0');
		} catch (e) {
			e.message += `\n${logs.join('\n')}`;
			throw e;
		} finally {
			await context.close();
		}
	});

	test('a step that needs an unreachable network fails naming the step and the URL; a WordPress version it cannot provide is named', async () => {
		const { page, context } = await openPlayground(browser, site.origin, '?site=blank&workers=1');
		try {
			const messages = await page.evaluate(async (url) => {
				const { startPlayground } = await import('/host/index.js');
				const fail = (blueprint) => startPlayground({ workers: 1, storage: 'temp', blueprint }).then(() => 'booted', (e) => e.message);
				return {
					offline: await fail({ steps: [{ step: 'login' }, { step: 'installPlugin', pluginData: { resource: 'url', url } }] }),
					wp: await fail({ preferredVersions: { php: '8.3', wp: '5.9' }, steps: [] }),
					invalid: await fail('not a blueprint'),
				};
			}, closedUrl);
			assert.match(messages.offline, /^Blueprint step #2 \(installPlugin\) failed: /);
			assert.ok(messages.offline.includes(closedUrl), messages.offline);
			assert.match(messages.wp, /WordPress 5\.9 is not available/);
			assert.match(messages.invalid, /neither JSON nor base64-encoded JSON/);
		} finally {
			await context.close();
		}
	});
});
