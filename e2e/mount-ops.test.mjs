// Every node_ops / stream_ops path of the Emscripten mount, driven from PHP
// on the shared-fs document root, errors included. Each result is compared
// with what PHP reports for the same operation on php-wasm's private MEMFS
// (/tmp) in the same worker, so the mount behaves as PHP's own disk does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();
let page;
const openPage = async () => {
	page ??= (await openPlayground(env.browser, env.origin, '?site=blank&workers=2')).page;
	return page;
};

// Runs each case under $base and returns {case: result}; warnings are part
// of the result (error_get_last), so failures and their reasons compare too.
const SCRIPT = `<?php
$base = $argv_base;
@mkdir($base);
function attempt(callable $f) {
	error_clear_last();
	$value = @$f();
	$error = error_get_last()['message'] ?? null;
	// Keep the reason, drop the path and function name PHP puts before it.
	return [$value, $error === null ? null : trim(substr($error, strrpos($error, ':') + 1))];
}
$r = [];
$r['mknod file (fopen x)'] = attempt(fn() => fclose(fopen("$base/f", 'x')));
$r['mknod again: EEXIST'] = attempt(fn() => fopen("$base/f", 'x'));
$r['write'] = attempt(fn() => file_put_contents("$base/f", 'hello world'));
$r['read'] = attempt(fn() => file_get_contents("$base/f"));
$r['llseek SEEK_END + read'] = attempt(function () use ($base) { $h = fopen("$base/f", 'r'); fseek($h, -5, SEEK_END); $s = fread($h, 10); fclose($h); return $s; });
$r['append'] = attempt(function () use ($base) { file_put_contents("$base/f", '!', FILE_APPEND); return file_get_contents("$base/f"); });
$r['getattr size/type'] = attempt(function () use ($base) { clearstatcache(); $s = stat("$base/f"); return [$s['size'], $s['mode'] & 0170000]; });
$r['setattr truncate'] = attempt(function () use ($base) { $h = fopen("$base/f", 'r+'); ftruncate($h, 5); fclose($h); clearstatcache(); return [filesize("$base/f"), file_get_contents("$base/f")]; });
$r['setattr extend with zeros'] = attempt(function () use ($base) { $h = fopen("$base/f", 'r+'); ftruncate($h, 8); fclose($h); return bin2hex(file_get_contents("$base/f")); });
$r['setattr chmod'] = attempt(function () use ($base) { chmod("$base/f", 0640); clearstatcache(); return decoct(fileperms("$base/f") & 0777); });
$r['setattr times (touch)'] = attempt(function () use ($base) { touch("$base/f", 1600000000, 1600000001); clearstatcache(); return [filemtime("$base/f"), fileatime("$base/f")]; });
$r['mkdir'] = attempt(fn() => mkdir("$base/d"));
$r['mkdir again: EEXIST'] = attempt(fn() => mkdir("$base/d"));
$r['lookup missing: ENOENT'] = attempt(fn() => file_get_contents("$base/missing"));
$r['lookup through a file: ENOTDIR'] = attempt(fn() => file_get_contents("$base/f/x"));
$r['readdir'] = attempt(function () use ($base) { touch("$base/d/a"); touch("$base/d/b"); $n = scandir("$base/d"); return $n; });
$r['rmdir not empty: ENOTEMPTY'] = attempt(fn() => rmdir("$base/d"));
$r['rename within dir'] = attempt(function () use ($base) { rename("$base/d/a", "$base/d/c"); return scandir("$base/d"); });
$r['rename across dirs, replacing'] = attempt(function () use ($base) { file_put_contents("$base/g", 'g'); rename("$base/g", "$base/d/b"); return [file_get_contents("$base/d/b"), file_exists("$base/g")]; });
$r['rename dir into itself: EINVAL'] = attempt(fn() => rename("$base/d", "$base/d/sub"));
$r['unlink'] = attempt(function () use ($base) { unlink("$base/d/b"); return scandir("$base/d"); });
$r['unlink a directory'] = attempt(fn() => unlink("$base/d"));
$r['rmdir a file: ENOTDIR'] = attempt(fn() => rmdir("$base/f"));
$r['rmdir'] = attempt(function () use ($base) { unlink("$base/d/c"); return [rmdir("$base/d"), file_exists("$base/d")]; });
$r['symlink + readlink + follow'] = attempt(function () use ($base) { symlink("$base/f", "$base/l"); return [readlink("$base/l"), is_link("$base/l"), file_get_contents("$base/l")]; });
$r['symlink exists: EEXIST'] = attempt(fn() => symlink("$base/f", "$base/l"));
// Emscripten has no link syscall: PHP's link() fails on every mount alike.
$r['link (hard)'] = attempt(function () use ($base) { link("$base/f", "$base/h"); clearstatcache(); return [stat("$base/f")['nlink'], file_get_contents("$base/h")]; });
$r['unlink while open'] = attempt(function () use ($base) { file_put_contents("$base/u", 'open data'); $h = fopen("$base/u", 'r'); unlink("$base/u"); $s = fread($h, 100); fclose($h); return [$s, file_exists("$base/u")]; });
$r['statfs (disk_free_space)'] = attempt(fn() => disk_free_space($base) > 0);
$r['name too long: ENAMETOOLONG'] = attempt(fn() => file_put_contents("$base/" . str_repeat('n', 300), 'x'));
$r['mmap write-back (SplFileObject)'] = attempt(function () use ($base) { $o = new SplFileObject("$base/f", 'r+'); $o->fwrite('HELLO'); $o = null; return substr(file_get_contents("$base/f"), 0, 5); });
echo json_encode($r);
`;

test('the mount answers every operation as php-wasm MEMFS does', async () => {
	const results = await (await openPage()).evaluate(async (script) => {
		const c = await window.playground;
		const run = async (base, worker) =>
			JSON.parse((await c.run({ worker, code: script.replace('<?php', `<?php $argv_base = '${base}';`) })).text);
		return { shared: await run('/wordpress/ops', 0), memfs: await run('/tmp/ops', 0) };
	}, SCRIPT);
	const normalize = (value) => JSON.parse(JSON.stringify(value).replaceAll('/wordpress/ops', 'BASE').replaceAll('/tmp/ops', 'BASE'));
	const shared = normalize(results.shared);
	const memfs = normalize(results.memfs);
	// MEMFS has no name length limit; shared-fs keeps Linux's 255 bytes.
	const linuxOnly = new Set(['name too long: ENAMETOOLONG']);
	for (const name of Object.keys(memfs).filter((n) => !linuxOnly.has(n))) {
		assert.deepEqual(shared[name], memfs[name], `${name}: shared-fs ${JSON.stringify(shared[name])} vs MEMFS ${JSON.stringify(memfs[name])}`);
	}
	assert.deepEqual(shared['name too long: ENAMETOOLONG'], [false, 'Filename too long']);
	// Spot checks that the cases did what they claim on the shared mount.
	assert.equal(shared['read'][0], 'hello world');
	assert.match(shared['mknod again: EEXIST'][1], /exists/i);
	assert.match(shared['rmdir not empty: ENOTEMPTY'][1], /not empty/i);
	assert.deepEqual(shared['unlink while open'][0], ['open data', false]);
});

test('what one worker did through the mount, another sees', async () => {
	const seen = await (await openPage()).evaluate(async () => {
		const c = await window.playground;
		return (await c.run({ worker: 1, code: `<?php clearstatcache(); echo json_encode([substr(file_get_contents('/wordpress/ops/f'), 0, 5), readlink('/wordpress/ops/l'), decoct(fileperms('/wordpress/ops/f') & 0777)]);` })).text;
	});
	assert.deepEqual(JSON.parse(seen), ['HELLO', '/wordpress/ops/f', '640'], seen);
});
