// The one build entry point (README, CI and e2e all run it):
//   node playground/build.mjs [--debug]
//   (tests: --fault-injection, after it, builds target/dist-faults/; see buildFaultInjection)
// 1. cargo: `worker` as a shared-memory (atomics) module on the pinned
//    nightly; `service-worker` as a normal wasm module; wasm-pack for `host`
//    (the embedding API, with its TypeScript types);
// 2. wasm-bindgen (--target web) for the first two;
// 3. esbuild: bundles the JS glue and php-wasm;
// 4. assembles everything into dist/ (what netlify publishes).
import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, linkSync, mkdirSync, rmSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WORDPRESS_BUILDS_RELEASE } from './serve.mjs';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const bindgenOut = join(root, 'target', 'bindgen');
const wasmTarget = 'wasm32-unknown-unknown';
const nightly = readFileSync(join(root, 'scripts', 'nightly-version'), 'utf8').trim();

// Every worker's Rust stack has protocol::WORKER_STACK_BYTES: the first
// worker's is the module's static one (the linker's default is 1 MiB), the
// others' wasm-bindgen allocates at start.
const WORKER_STACK_BYTES = Number(
	/pub const WORKER_STACK_BYTES: u32 = (\d+) \* 1024;/.exec(readFileSync(join(root, 'protocol', 'src', 'lib.rs'), 'utf8'))[1]
) * 1024;

// The worker module imports its memory (the host creates one shared memory
// for all workers) and exports what wasm-bindgen's thread support needs.
const ATOMICS_RUSTFLAGS = [
	'-C target-feature=+atomics,+bulk-memory,+mutable-globals',
	'-C link-arg=--shared-memory',
	'-C link-arg=--import-memory',
	`-C link-arg=--max-memory=${4 * 1024 * 1024 * 1024}`,
	'-C link-arg=--export=__wasm_init_tls',
	'-C link-arg=--export=__tls_size',
	'-C link-arg=--export=__tls_align',
	'-C link-arg=--export=__tls_base',
	'-C link-arg=--export=__heap_base',
	`-C link-arg=-zstack-size=${WORKER_STACK_BYTES}`,
].join(' ');

function run(cmd, args, env = {}) {
	console.log(`$ ${cmd} ${args.join(' ')}`);
	execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
}

function cargoWasm() {
	run(
		'cargo',
		[`+${nightly}`, 'build', '--release', '--target', wasmTarget, '-p', 'worker', '-Z', 'build-std=panic_abort,std'],
		{ RUSTFLAGS: ATOMICS_RUSTFLAGS, CARGO_TARGET_DIR: join(root, 'target', 'atomics') }
	);
	run('cargo', ['build', '--release', '--target', wasmTarget, '-p', 'service-worker']);
	// The host is the embedding API: wasm-pack packages it with its .d.ts.
	rmSync(join(bindgenOut, 'host'), { recursive: true, force: true });
	run('wasm-pack', ['build', 'host', '--release', '--target', 'web', '--mode', 'no-install', '--out-dir', join(bindgenOut, 'host')]);
}

function bindgen(crate, wasmFile) {
	const out = join(bindgenOut, crate);
	rmSync(out, { recursive: true, force: true });
	run('wasm-bindgen', ['--target', 'web', '--out-dir', out, wasmFile]);
	return out;
}

// Resolves `@bindgen/<crate>` to wasm-bindgen's output.
const resolvePlugin = {
	name: 'runtime-paths',
	setup(build) {
		build.onResolve({ filter: /^@bindgen\// }, (args) => {
			const crate = args.path.slice('@bindgen/'.length);
			return { path: join(bindgenOut, crate, `${crate.replaceAll('-', '_')}.js`) };
		});
	},
};

async function bundle(entry, outfile, extra = {}) {
	await esbuild.build({
		entryPoints: [resolve(root, entry)],
		outfile: join(dist, outfile),
		bundle: true,
		format: 'esm',
		platform: 'browser',
		target: 'es2022',
		logLevel: 'warning',
		plugins: [resolvePlugin],
		external: [...builtinModules, ...builtinModules.map((m) => `node:${m}`)],
		...extra,
	});
}

// php-wasm's two builds of each PHP version (protocol::PhpBuild names them).
const PHP_BUILDS = ['jspi', 'asyncify'];

// The PHP versions: one `@php-wasm/web-X-Y` dependency each in package.json
// (host/src/versions.rs holds the same list; its test compares them).
function phpVersions() {
	const { dependencies } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
	return Object.keys(dependencies)
		.map((name) => /^@php-wasm\/web-(\d+)-(\d+)$/.exec(name))
		.filter(Boolean)
		.map(([, major, minor]) => ({ version: `${major}.${minor}`, dir: join(root, 'node_modules', '@php-wasm', `web-${major}-${minor}`) }));
}

// Per version and build, beside the worker entry: php.wasm, which the page
// compiles, and the loader, a bundle the worker imports once it knows which
// it runs. Names: host/src/versions.rs `php_files`. Nothing else of the
// package (its intl extension) is used.
async function bundlePhpRuntimes(debug) {
	for (const { version, dir } of phpVersions()) {
		for (const build of PHP_BUILDS) {
			const loader = join(dir, build, `php_${version.replace('.', '_')}.js`);
			const stem = `php-${version}-${build}`;
			const wasm = readFileSync(loader, 'utf8').match(/from '\.\/([\w/.]+\.wasm)'/)[1];
			const digest = placeFile(join(dir, build, wasm), join(dist, 'worker', `${stem}.wasm`));
			// The loader names its binary; the worker hands it the module the
			// page compiled, so the bundle keeps only that name.
			const binaryName = {
				name: 'php-binary-name',
				setup(b) {
					b.onResolve({ filter: /\.wasm$/ }, () => ({ path: stem, namespace: 'php-binary' }));
					b.onLoad({ filter: /.*/, namespace: 'php-binary' }, () => ({ contents: `export default '${stem}.wasm';` }));
				},
			};
			// The binary's build id names its compiled scripts' folder
			// (worker/src/compiled_cache.rs): another build's are never read.
			const banner = { js: `export const phpBinaryId = '${stem}-${digest.slice(0, 16)}';` };
			await bundle(loader, `worker/${stem}.js`, { minify: !debug, plugins: [binaryName], banner });
		}
	}
}

// Files by content: a file whose bytes are already in dist/ becomes a hard
// link to it (the WordPress builds share most static files), so dist/ holds
// each content once.
const placed = new Map();
function placeFile(from, to) {
	const bytes = readFileSync(from);
	const digest = createHash('sha1').update(bytes).digest('hex');
	mkdirSync(dirname(to), { recursive: true });
	const twin = placed.get(digest);
	if (twin) {
		linkSync(twin, to);
	} else {
		writeFileSync(to, bytes);
		placed.set(digest, to);
	}
	return digest;
}

function placeTree(from, to) {
	for (const entry of readdirSync(from, { withFileTypes: true })) {
		if (entry.isDirectory()) placeTree(join(from, entry.name), join(to, entry.name));
		else if (entry.isFile()) placeFile(join(from, entry.name), join(to, entry.name));
	}
}

// Every WordPress build and the SQLite integration (the archives the first
// worker unpacks), and each build's static files, which its archive leaves
// out. Names: host/src/versions.rs `WpBuild`.
function copyWordPress() {
	const builds = join(root, 'node_modules', '@wp-playground', 'wordpress-builds');
	const out = join(dist, 'wordpress');
	// The static files go in a folder named after their release, which
	// servers let browsers keep (host/src/versions.rs WORDPRESS_BUILDS_RELEASE).
	const release = JSON.parse(readFileSync(join(builds, 'package.json'), 'utf8')).version;
	if (release !== WORDPRESS_BUILDS_RELEASE) {
		throw new Error(`node_modules has @wp-playground/wordpress-builds ${release}, package.json pins ${WORDPRESS_BUILDS_RELEASE}: run npm ci`);
	}
	for (const zip of readdirSync(join(builds, 'src', 'wordpress')).filter((f) => /^wp-.+\.zip$/.test(f))) {
		placeFile(join(builds, 'src', 'wordpress', zip), join(out, zip));
		const key = zip.slice(0, -'.zip'.length);
		placeTree(join(builds, 'public', key), join(out, release, key));
	}
	// Not the builds' own SQLite integration (2.1.11) but the pinned one
	// (scripts/fetch-sqlite-integration.mjs, run by setup).
	placeFile(join(root, 'node_modules', '.sqlite-integration', 'sqlite-database-integration.zip'), join(out, 'sqlite-database-integration.zip'));
}

async function main() {
	const debug = process.argv.includes('--debug');
	cargoWasm();
	const release = (dir) => join(root, 'target', dir, wasmTarget, 'release');
	const workerOut = bindgen('worker', join(release('atomics'), 'worker.wasm'));
	const hostOut = join(bindgenOut, 'host');
	const swOut = bindgen('service-worker', join(release('.'), 'service_worker.wasm'));

	rmSync(dist, { recursive: true, force: true });
	mkdirSync(join(dist, 'worker'), { recursive: true });
	mkdirSync(join(dist, 'host'), { recursive: true });
	await bundle('worker/src-js/worker-entry.js', 'worker/worker-entry.js', {
		minify: !debug,
		define: { FAULT_INJECTION: 'false' }, // drops the test-only hooks (buildFaultInjection)
	});
	await bundle('service-worker/src-js/sw.js', 'sw.js', { minify: !debug });
	// The Blueprint engine is its own file, imported only when a Blueprint is given.
	await bundle('host/src-js/index.js', 'host/index.js', {
		minify: !debug,
		external: ['./blueprints.js', ...builtinModules, ...builtinModules.map((m) => `node:${m}`)],
	});
	await bundle('host/src-js/blueprints.js', 'host/blueprints.js', { minify: !debug });
	await bundle('host/src-js/manager-worker.js', 'host/manager-worker.js', { minify: !debug });
	cpSync(join(workerOut, 'worker_bg.wasm'), join(dist, 'worker', 'worker_bg.wasm'));
	cpSync(join(hostOut, 'host_bg.wasm'), join(dist, 'host', 'host_bg.wasm'));
	cpSync(join(hostOut, 'host.d.ts'), join(dist, 'host', 'host.d.ts'));
	cpSync(join(root, 'host', 'src-js', 'index.d.ts'), join(dist, 'host', 'index.d.ts'));
	cpSync(join(swOut, 'service_worker_bg.wasm'), join(dist, 'service_worker_bg.wasm'));
	await bundlePhpRuntimes(debug);
	copyWordPress();
	cpSync(join(root, 'playground', 'src'), dist, { recursive: true });
	if (!process.argv.includes('--no-site-images')) await buildSiteImages();
	console.log(`built ${dist}`);
}

// 5. Site images (host/src/versions.rs `site_image`): a new default site
// opens ready. Per php-wasm build, the default WordPress on the default PHP
// boots once in Chromium from the zips, serves its first pages (WordPress's
// first-run work and the compiling happen here, not on a user's first
// page), and is exported with the scripts it compiled
// (`client.exportSiteImage`). Without Chromium (a deploy's build machine)
// they are left out and sites install from the zips.
const IMAGE_PAGES = ['', '?p=1', '?page_id=2', '?s=hello', 'wp-login.php', '?feed=rss2'];

async function buildSiteImages() {
	const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
	const images = join(dist, 'site-images');
	rmSync(images, { recursive: true, force: true });
	if (!existsSync(executablePath)) {
		console.warn(`no ${executablePath}: no site images (new sites install from the zips)`);
		return;
	}
	const { chromium } = await import('playwright-core');
	const { startServer } = await import('./serve.mjs');
	const { CHROMIUM_ARGS } = await import('../e2e/harness.mjs');
	const server = await startServer({ dir: dist, port: 0 });
	const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
	try {
		for (const build of PHP_BUILDS) {
			const context = await browser.newContext();
			const page = await context.newPage();
			await page.goto(`http://127.0.0.1:${server.address().port}/?workers=1&storage=temp&phpBuild=${build}`);
			const base64 = await page.evaluate(async (pages) => {
				const client = await window.playground;
				const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
				// The first page's cron request comes in on its own: wait
				// until the worker has been idle a while.
				const idle = async () => {
					for (let idleTurns = 0; idleTurns < 10; ) {
						await sleep(100);
						idleTurns = (await client.workers()).every((w) => w.state === 'idle') ? idleTurns + 1 : 0;
					}
				};
				for (const path of pages) await (await fetch(client.absoluteUrl + path)).arrayBuffer();
				await idle();
				// OPcache compiles no script younger than 2 s
				// (opcache.file_update_protection): once the scripts the boot
				// wrote (the auto-login mu-plugin) are older, the front page
				// again compiles them too.
				await sleep(2100);
				await (await fetch(client.absoluteUrl)).arrayBuffer();
				await idle();
				const image = await client.exportSiteImage();
				const url = await new Promise((r) => {
					const reader = new FileReader();
					reader.onload = () => r(reader.result);
					reader.readAsDataURL(new Blob([image]));
				});
				return url.slice(url.indexOf(',') + 1);
			}, IMAGE_PAGES);
			await context.close();
			const bytes = Buffer.from(base64, 'base64');
			mkdirSync(images, { recursive: true });
			writeFileSync(join(images, `wp-6.5-php-8.3-${build}.zip`), bytes);
			console.log(`site image (${build}): ${(bytes.length / 1048576).toFixed(1)} MiB`);
		}
	} finally {
		await browser.close();
		await new Promise((r) => server.close(r));
	}
}

// Bench only (`--bench-peer`, run by `make bench`; the default build skips
// it): Playground's own engine, the benchmark's peer (bench/peer/), bundled
// into target/bench-peer/. Its @php-wasm/* and @wp-playground/* packages
// (3.1.55) are bench/peer/'s own (bench/peer/package.json, installed by
// `make bench` into bench/peer/node_modules), so the root `npm ci` of build
// and tests does not fetch php-wasm for every PHP version; esbuild still
// comes from the root node_modules. Each import of them resolves to one
// copy in bench/peer/node_modules, whatever dir imports it (never the
// runtime's own 3.1.54 at the root), because php-wasm keeps its loaded
// runtimes in module state.
async function bundleBenchPeer() {
	const out = join(root, 'target', 'bench-peer');
	const peer = join(root, 'bench', 'peer');
	const modules = join(peer, 'node_modules');
	let version;
	try {
		version = JSON.parse(readFileSync(join(modules, '@php-wasm', 'web', 'package.json'), 'utf8')).version;
	} catch {
		throw new Error(`${modules} lacks @php-wasm/web: run \`npm ci --prefix bench/peer\` (make bench does)`);
	}
	const holders = [peer, ...['@php-wasm', '@wp-playground'].flatMap((s) => readdirSync(join(modules, s)).map((n) => join(modules, s, n)))];
	const versionIn = (dir, name) => {
		try {
			return JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
		} catch {
			return undefined;
		}
	};
	const oneCopy = {
		name: 'one-copy-of-each-peer-package',
		setup(build) {
			build.onResolve({ filter: /^@(php-wasm|wp-playground)\/[^/]+/ }, (args) => {
				if (args.pluginData === 'resolved') return undefined;
				const name = args.path.split('/').slice(0, 2).join('/');
				const holder = holders.find((dir) => versionIn(dir, name) === version);
				return holder && build.resolve(args.path, { kind: args.kind, resolveDir: holder, pluginData: 'resolved' });
			});
			// Vite's `?url` imports (php-wasm's extension .so files): a file URL.
			build.onResolve({ filter: /\?url$/ }, (args) => ({ path: join(args.resolveDir, args.path.slice(0, -'?url'.length)) }));
		},
	};
	rmSync(out, { recursive: true, force: true });
	await esbuild.build({
		entryPoints: [join(root, 'bench', 'peer', 'peer-worker.js')],
		outdir: out,
		bundle: true,
		splitting: true,
		format: 'esm',
		platform: 'browser',
		target: 'es2022',
		logLevel: 'warning',
		loader: { '.wasm': 'file', '.so': 'file', '.dat': 'file' },
		external: [...builtinModules, ...builtinModules.map((m) => `node:${m}`)],
		plugins: [oneCopy],
	});
	cpSync(join(root, 'bench', 'peer', 'peer.html'), join(out, 'peer.html'));
	console.log(`built ${out}`);
}

// A copy of a tree made of hard links (dist/ is hundreds of MB).
function linkTree(from, to) {
	mkdirSync(to, { recursive: true });
	for (const entry of readdirSync(from, { withFileTypes: true })) {
		if (entry.isDirectory()) linkTree(join(from, entry.name), join(to, entry.name));
		else linkSync(join(from, entry.name), join(to, entry.name));
	}
}

// Tests only (`--fault-injection`, run by `make test-e2e`; never published):
// target/dist-faults/, a copy of dist/ (build that first) whose worker module has
// the `fault-injection` feature (worker/src/fault.rs: traps on demand) and
// whose worker entry keeps its fault hooks (FAULT_INJECTION = true). Only the
// worker is rebuilt, in its own cargo target dir so that both builds stay
// cached; e2e/worker-death.test.mjs serves it.
async function buildFaultInjection() {
	const out = join(root, 'target', 'dist-faults'); // target/: ignored by git, never published
	if (!existsSync(join(dist, 'worker', 'worker_bg.wasm'))) {
		throw new Error(`${dist} is not built: run \`node playground/build.mjs\` first`);
	}
	const targetDir = join(root, 'target', 'atomics-faults');
	run(
		'cargo',
		[`+${nightly}`, 'build', '--release', '--target', wasmTarget, '-p', 'worker', '--features', 'fault-injection', '-Z', 'build-std=panic_abort,std'],
		{ RUSTFLAGS: ATOMICS_RUSTFLAGS, CARGO_TARGET_DIR: targetDir }
	);
	const workerOut = join(root, 'target', 'bindgen-faults', 'worker');
	rmSync(workerOut, { recursive: true, force: true });
	run('wasm-bindgen', ['--target', 'web', '--out-dir', workerOut, join(targetDir, wasmTarget, 'release', 'worker.wasm')]);
	rmSync(out, { recursive: true, force: true });
	linkTree(dist, out);
	// Links to dist/'s files: the two rewritten below must be new files.
	rmSync(join(out, 'worker', 'worker-entry.js'));
	rmSync(join(out, 'worker', 'worker_bg.wasm'));
	const faultyWorker = {
		name: 'fault-injection-worker',
		setup(build) {
			build.onResolve({ filter: /^@bindgen\/worker$/ }, () => ({ path: join(workerOut, 'worker.js') }));
		},
	};
	await bundle('worker/src-js/worker-entry.js', '', {
		outfile: join(out, 'worker', 'worker-entry.js'),
		plugins: [faultyWorker, resolvePlugin],
		define: { FAULT_INJECTION: 'true' },
	});
	cpSync(join(workerOut, 'worker_bg.wasm'), join(out, 'worker', 'worker_bg.wasm'));
	console.log(`built ${out}`);
}

const entry = process.argv.includes('--bench-peer')
	? bundleBenchPeer
	: process.argv.includes('--fault-injection')
		? buildFaultInjection
		: main;
entry().catch((e) => {
	console.error(e);
	process.exit(1);
});
