// OPcache and PHP's realpath cache are on in every worker and never stale
// across workers: after any worker, the client API or an unpacked plugin
// changes a PHP file, the next request on every worker runs the new code. Each test first makes sure the
// old code really sits in every worker's OPcache, so it would fail if the
// cache were served stale.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();
const OLD = 1700000000; // an mtime long past: OPcache caches such files at once

for (const build of ['jspi', 'asyncify']) {
	describe(`OPcache across 2 workers (${build})`, () => {
		let page, context;
		before(async () => {
			({ page, context } = await openPlayground(env.browser, env.origin, `?site=blank&workers=2&phpBuild=${build}`));
		});
		after(() => context?.close());

		const run = (code, worker) =>
			page.evaluate(async ([code, worker]) => (await window.playground).run({ code, worker }), [code, worker]);
		const workers = [0, 1];

		/** Writes `file` with `body` and an old mtime, then runs it on every
		 *  worker and checks it is cached there. */
		async function cacheEverywhere(file, body) {
			await run(`<?php file_put_contents('${file}', '<?php return "${body}";'); touch('${file}', ${OLD});`, 0);
			for (const worker of workers) {
				const r = await run(`<?php echo json_encode([include '${file}', opcache_is_script_cached('${file}')]);`, worker);
				assert.deepEqual(JSON.parse(r.text), [body, true], `worker ${worker}: ${r.errors}`);
			}
		}

		async function seenEverywhere(file) {
			const out = [];
			for (const worker of workers) out.push((await run(`<?php echo @include '${file}';`, worker)).text);
			return out;
		}

		test('OPcache is enabled in memory in every worker', async () => {
			assert.equal(await page.evaluate(async () => (await window.playground).phpBuild), build);
			for (const worker of workers) {
				const r = await run(
					`<?php $s = opcache_get_status(false); echo json_encode([$s['opcache_enabled'], ini_get('opcache.file_cache_only'), ini_get('opcache.validate_timestamps')]);`,
					worker
				);
				assert.deepEqual(JSON.parse(r.text), [true, '0', '1'], r.errors);
			}
		});

		test('a rewrite in the same second at the same size runs new everywhere', async () => {
			const file = `/wordpress/same-${build}.php`;
			await cacheEverywhere(file, 'A');
			await run(`<?php file_put_contents('${file}', '<?php return "B";'); file_put_contents('${file}', '<?php return "C";');`, 1);
			assert.deepEqual(await seenEverywhere(file), ['C', 'C']);
		});

		test('a rewrite whose mtime is set back to the cached one runs new everywhere', async () => {
			const file = `/wordpress/backdated-${build}.php`;
			await cacheEverywhere(file, 'A');
			await run(`<?php file_put_contents('${file}', '<?php return "B";'); touch('${file}', ${OLD});`, 1);
			assert.deepEqual(await seenEverywhere(file), ['B', 'B']);
		});

		test('write to a temp file, then rename over the script', async () => {
			const file = `/wordpress/renamed-${build}.php`;
			await cacheEverywhere(file, 'A');
			await run(`<?php file_put_contents('${file}.tmp', '<?php return "B";'); rename('${file}.tmp', '${file}');`, 1);
			assert.deepEqual(await seenEverywhere(file), ['B', 'B']);
		});

		test('an older file of the same size and mtime renamed over the script', async () => {
			const file = `/wordpress/swapped-${build}.php`;
			await cacheEverywhere(file, 'A');
			await run(`<?php file_put_contents('${file}.old', '<?php return "B";'); touch('${file}.old', ${OLD}); rename('${file}.old', '${file}');`, 1);
			assert.deepEqual(await seenEverywhere(file), ['B', 'B']);
		});

		test('a deleted script fails to include everywhere', async () => {
			const file = `/wordpress/deleted-${build}.php`;
			await cacheEverywhere(file, 'A');
			await run(`<?php unlink('${file}');`, 1);
			for (const worker of workers) {
				const r = await run(`<?php var_dump(@include '${file}');`, worker);
				assert.equal(r.text, 'bool(false)\n', `worker ${worker}`);
			}
		});

		test('realpath() of a file another worker deleted is false everywhere', async () => {
			const file = `/wordpress/gone-${build}.txt`;
			await run(`<?php file_put_contents('${file}', 'x');`, 0);
			for (const worker of workers) assert.equal((await run(`<?php echo realpath('${file}');`, worker)).text, file);
			await run(`<?php unlink('${file}');`, 1);
			for (const worker of workers) {
				assert.equal((await run(`<?php var_dump(realpath('${file}'));`, worker)).text, 'bool(false)\n', `worker ${worker}`);
			}
		});

		test('a symlink another worker pointed elsewhere includes the new target everywhere', async () => {
			const dir = `/wordpress/linked-${build}`;
			await run(
				`<?php mkdir('${dir}'); file_put_contents('${dir}/a.php', '<?php return "A";'); file_put_contents('${dir}/b.php', '<?php return "B";');
				touch('${dir}/a.php', ${OLD}); touch('${dir}/b.php', ${OLD}); symlink('${dir}/a.php', '${dir}/current.php');`,
				0
			);
			assert.deepEqual(await seenEverywhere(`${dir}/current.php`), ['A', 'A']);
			await run(`<?php unlink('${dir}/current.php'); symlink('${dir}/b.php', '${dir}/current.php');`, 1);
			assert.deepEqual(await seenEverywhere(`${dir}/current.php`), ['B', 'B']);
		});

		/** The shared cache entry OPcache keeps for `file` (worker/src/compiled_cache.rs). */
		const entryOf = async (file) =>
			JSON.parse((await run(`<?php echo json_encode(glob(ini_get('opcache.file_cache') . '/*${file}.bin'));`, 0)).text);

		test('compiled scripts live in a folder of this php.wasm build on the shared filesystem', async () => {
			for (const worker of workers) {
				const r = await run(`<?php echo ini_get('opcache.file_cache');`, worker);
				assert.match(r.text, new RegExp(`^/internal/opcache/php-8\\.3-${build}-[0-9a-f]{16}$`), r.errors);
			}
		});

		test('a script one worker compiled is loaded by the other, not compiled again', async () => {
			const file = `/wordpress/shared-${build}.php`;
			// (A job that moves the epoch publishes no compiled code: the include comes next.)
			await run(`<?php file_put_contents('${file}', '<?php return "A";'); touch('${file}', ${OLD});`, 0);
			await run(`<?php include '${file}';`, 0);
			const [entry] = await entryOf(file);
			assert.ok(entry, 'worker 0 left its compiled script on the shared filesystem');
			const compiledA = (await run(`<?php echo base64_encode(file_get_contents('${entry}'));`, 0)).text;
			// B under the same mtime: the change moves the epoch, the next job
			// clears the shared cache, and worker 0 compiles B.
			await run(`<?php file_put_contents('${file}', '<?php return "B";'); touch('${file}', ${OLD});`, 0);
			assert.equal((await run(`<?php echo include '${file}';`, 0)).text, 'B');
			// Put A's compiled code back where B's is: a worker that loads
			// from the shared cache instead of compiling runs A.
			assert.deepEqual(await entryOf(file), [entry]);
			await run(`<?php file_put_contents('${entry}', base64_decode('${compiledA}'));`, 0);
			assert.equal((await run(`<?php echo include '${file}';`, 1)).text, 'A', 'worker 1 ran what worker 0 compiled');
		});

		for (const [damage, how] of [
			['cut short (a worker died writing it)', `$b = substr($b, 0, intdiv(strlen($b), 2));`],
			['with a flipped byte', `$i = intdiv(strlen($b), 2); $b[$i] = chr(ord($b[$i]) ^ 0xff);`],
			['of another PHP build (wrong system id)', `$b = substr_replace($b, str_repeat('0', 32), 8, 32);`],
		]) {
			test(`a shared compiled script ${damage} is rejected and compiled again`, async () => {
				const file = `/wordpress/damaged-${build}-${damage.length}.php`;
				await run(`<?php file_put_contents('${file}', '<?php return "whole";'); touch('${file}', ${OLD});`, 0);
				await run(`<?php include '${file}';`, 0);
				const [entry] = await entryOf(file);
				assert.ok(entry);
				const size = Number((await run(`<?php echo filesize('${entry}');`, 0)).text);
				await run(`<?php $b = file_get_contents('${entry}'); ${how} file_put_contents('${entry}', $b);`, 0);
				const r = await run(`<?php echo json_encode([include '${file}', opcache_is_script_cached('${file}')]);`, 1);
				assert.deepEqual(JSON.parse(r.text), ['whole', true], r.errors);
				// The damaged entry went; worker 1 left a whole one in its place.
				assert.equal(Number((await run(`<?php clearstatcache(); echo filesize('${entry}');`, 0)).text), size);
			});
		}

		test('client.writeFile replaces the script everywhere', async () => {
			const file = `/wordpress/client-${build}.php`;
			await cacheEverywhere(file, 'A');
			await page.evaluate(async (file) => (await window.playground).writeFile(file, '<?php return "B";'), file);
			assert.deepEqual(await seenEverywhere(file), ['B', 'B']);
		});
	});
}

describe('OPcache with WordPress on 2 workers', () => {
	let page, context;
	before(async () => {
		({ page, context } = await openPlayground(env.browser, env.origin, '?workers=2'));
	});
	after(() => context?.close());

	const pluginZip = (version) => `
		$zip = new ZipArchive();
		$zip->open('/tmp/hello-${version}.zip', ZipArchive::CREATE | ZipArchive::OVERWRITE);
		$zip->addFromString('hello-pool/hello-pool.php', '<?php
/* Plugin Name: Hello Pool */
add_action("wp_footer", function () { echo "<p id=hello-pool>hello ${version}</p>"; });');
		$zip->close();`;
	const unzip = (version) =>
		`<?php require '/wordpress/wp-load.php'; require_once ABSPATH . 'wp-admin/includes/file.php';
		WP_Filesystem(); ${pluginZip(version)}
		$r = unzip_file('/tmp/hello-${version}.zip', WP_PLUGIN_DIR);
		echo is_wp_error($r) ? $r->get_error_message() : 'unzipped';`;

	/** The plugin's footer line, as each worker renders it. */
	async function footers() {
		return page.evaluate(async () => {
			const c = await window.playground;
			const out = [];
			for (const worker of [0, 1]) {
				const r = await c.run({
					worker,
					code: `<?php require '/wordpress/wp-load.php'; ob_start(); do_action('wp_footer'); $html = ob_get_clean();
					preg_match('/<p id=hello-pool>(.*?)<\\/p>/', $html, $m); echo $m[1] ?? 'none';`,
				});
				out.push(r.text);
			}
			return out;
		});
	}

	test('a plugin zip unpacked then activated runs on every worker, and so does its update', async () => {
		assert.deepEqual(await footers(), ['none', 'none']);
		const unpacked = await page.evaluate(async (code) => (await window.playground).run({ worker: 0, code }), unzip('1'));
		assert.equal(unpacked.text, 'unzipped', unpacked.errors);
		const activated = await page.evaluate(
			async () =>
				(await window.playground).run({
					worker: 1,
					code: `<?php require '/wordpress/wp-load.php'; require_once ABSPATH . 'wp-admin/includes/plugin.php';
					$r = activate_plugin('hello-pool/hello-pool.php'); echo is_wp_error($r) ? $r->get_error_message() : 'active';`,
				}),
		);
		assert.equal(activated.text, 'active', activated.errors);
		assert.deepEqual(await footers(), ['hello 1', 'hello 1']);
		// Files younger than 2 s are not cached: let it age, so the update
		// below must replace a cached script on both workers.
		await new Promise((r) => setTimeout(r, 2100));
		assert.deepEqual(await footers(), ['hello 1', 'hello 1']);
		for (const worker of [0, 1]) {
			const cached = await page.evaluate(
				async (worker) =>
					(await window.playground).run({
						worker,
						code: `<?php var_dump(opcache_is_script_cached('/wordpress/wp-content/plugins/hello-pool/hello-pool.php'));`,
					}),
				worker
			);
			assert.equal(cached.text, 'bool(true)\n', `worker ${worker}`);
		}
		const updated = await page.evaluate(async (code) => (await window.playground).run({ worker: 1, code }), unzip('2'));
		assert.equal(updated.text, 'unzipped', updated.errors);
		assert.deepEqual(await footers(), ['hello 2', 'hello 2']);
	});
});
