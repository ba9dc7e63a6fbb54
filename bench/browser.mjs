// Browser figures of the benchmark (see bench/run.mjs): each function
// measures one figure in Chromium against a baseline taken in the same run,
// and returns {figure, value, baseline, unit, ratio, goal, met, method}.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { chromium } from 'playwright-core';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, WORDPRESS_BUILDS_RELEASE } from '../playground/serve.mjs';
import { CHROMIUM_ARGS, distDir, startBrowser } from '../e2e/harness.mjs';
import { bootSiteWithSqliteIntegration, NEW_SQLITE_ZIP, OLD_SQLITE_ZIP, sqliteIntegrationFiles } from '../e2e/fixtures/sqlite-integration.mjs';

const here = dirname(fileURLToPath(import.meta.url));
// Playground's engine, the peer of the WordPress figures: built by
// `node playground/build.mjs --bench-peer`, served from the same origin as
// ours (same isolation headers, same browser) through a link that lives
// only while the benchmark runs.
const peerBundle = join(here, '..', 'target', 'bench-peer');
const peerInDist = join(distDir, 'bench-peer');

const figure = (name, value, baseline, unit, goal, met, method) => ({
	figure: name,
	value: round(value),
	baseline: baseline === null ? null : round(baseline),
	unit,
	ratio: baseline ? round(value / baseline) : null,
	goal,
	met,
	method,
});
const round = (x) => Math.round(x * 1000) / 1000;

export async function withBrowser(fn) {
	if (!existsSync(join(peerBundle, 'peer.html'))) throw new Error('no peer bundle: run `node playground/build.mjs --bench-peer`');
	rmSync(peerInDist, { force: true });
	symlinkSync(peerBundle, peerInDist);
	// performance.measureUserAgentSpecificMemory() answers at once.
	const browser = await startBrowser(['--enable-blink-features=ForceEagerMeasureMemory']);
	const server = await startServer({ dir: distDir, port: 0 });
	const origin = `http://127.0.0.1:${server.address().port}`;
	try {
		return await fn(browser, origin);
	} finally {
		await browser.close();
		await new Promise((r) => server.close(r));
		rmSync(peerInDist, { force: true });
	}
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs in every document of a bench page before its own scripts. */
function pageSetup() {
	// The block editor loads more resources than the default buffer (250) holds.
	performance.setResourceTimingBufferSize(100000);
	if (window.top !== window) return;
	// One measuring method for ours and the peer; `get(url)` resolves to {status, bodyLength}.
	const ok = (url, reply) => {
		if (reply.status !== 200) throw new Error(`${url}: HTTP ${reply.status}`);
		return reply;
	};
	window.bench = {
		async p50(get, url, { warmup, runs }) {
			for (let i = 0; i < warmup; i++) ok(url, await get(url));
			const samples = [];
			for (let i = 0; i < runs; i++) {
				const start = performance.now();
				ok(url, await get(url));
				samples.push(performance.now() - start);
			}
			return samples.sort((a, b) => a - b)[Math.floor(runs / 2)];
		},
		// Counts only 200s: a full queue's fast 503s must not look like speed.
		async rate(get, url, { clients, ms }) {
			const each = (f) => Promise.all(Array.from({ length: clients }, f));
			await each(() => get(url)); // warm up
			let done = 0;
			const start = performance.now();
			const end = start + ms;
			await each(async () => {
				while (performance.now() < end) if ((await get(url)).status === 200) done++;
			});
			return (done * 1000) / (performance.now() - start);
		},
	};
	// bench/peer/peer.html defines the same two for the peer.
	if (location.pathname.includes('/bench-peer/')) return;
	window.benchSite = async () => {
		const client = await window.playground;
		const get = async (url) => {
			const r = await fetch(url);
			return { status: r.status, bodyLength: (await r.arrayBuffer()).byteLength };
		};
		// Extra workers start after the first page: a measurement that began
		// before they are up would time their start, not the pool's speed.
		const allWorkersUp = async () => {
			const deadline = performance.now() + 120000;
			for (;;) {
				const workers = await client.workers();
				const failed = workers.filter((w) => w.state === 'failed' || w.state === 'gone');
				if (failed.length) throw new Error(`worker(s) ${failed.map((w) => w.index).join(', ')} did not start`);
				if (!workers.some((w) => w.state === 'booting')) return;
				if (performance.now() > deadline) throw new Error('a worker was still booting after 120 s');
				await new Promise((r) => setTimeout(r, 100));
			}
		};
		return { url: client.absoluteUrl, get, allWorkersUp };
	};
	// The first front page a person sees: the site iframe's document, which
	// the playground navigates once it is ready (its timing, not our polling).
	window.firstPage = new Promise((r) => addEventListener('DOMContentLoaded', r, { once: true })).then(async () => {
		const client = await window.playground;
		const readyAt = performance.now();
		const frame = document.getElementById('site');
		const loaded = () =>
			frame.contentWindow?.location.href.startsWith(client.absoluteUrl) && frame.contentDocument?.readyState === 'complete';
		while (!loaded()) await new Promise((r) => setTimeout(r, 20));
		const [nav] = frame.contentWindow.performance.getEntriesByType('navigation');
		const at = frame.contentWindow.performance.timeOrigin + nav.responseEnd - performance.timeOrigin;
		return { at, readyAt, status: nav.responseStatus, bodyLength: nav.decodedBodySize };
	});
}

async function open(browser, origin, path) {
	const context = await browser.newContext();
	await context.addInitScript(pageSetup);
	const page = await context.newPage();
	await page.goto(`${origin}/${path}`);
	return { page, context };
}

/** As `open`, in a browser of its own on a new profile on disk, as a
 *  person's browser is: a new incognito context keeps OPFS in memory, where
 *  writes measured 10 times slower than on disk (37 MiB: 540 vs 50 ms),
 *  which is not what a saved site costs its user. Nothing is cached. */
async function openOnDisk(origin, path) {
	const { context, close } = await browserOnDisk();
	const page = await context.newPage();
	await page.goto(`${origin}/${path}`);
	return { page, context: { close } };
}

/** A browser of its own on a new profile on disk; `close` deletes it. */
async function browserOnDisk() {
	const profile = mkdtempSync(join(tmpdir(), 'php-pool-bench-'));
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
		args: CHROMIUM_ARGS,
		headless: true,
	});
	await context.addInitScript(pageSetup);
	const close = async () => {
		await context.close();
		rmSync(profile, { recursive: true, force: true });
	};
	return { context, close };
}

async function hardwareConcurrency(browser) {
	const page = await browser.newPage();
	const n = await page.evaluate(() => navigator.hardwareConcurrency);
	await page.close();
	return n;
}

/** 4. The PHP filesystem script on the shared-fs mount vs php-wasm's MEMFS, same worker. */
export async function phpFilesystem(browser, origin) {
	const { page, context } = await open(browser, origin, '?site=blank&workers=1');
	const script = readFileSync(join(here, 'php-fs-ops.php'), 'utf8');
	const runs = await page.evaluate(async (script) => {
		const c = await window.playground;
		const run = async (base) =>
			JSON.parse((await c.run({ worker: 0, code: script.replace('<?php', `<?php $argv_base = '${base}';`) })).text);
		// Interleaved so drift hits both sides alike.
		const out = { memfs: [], shared: [] };
		for (let i = 0; i < 3; i++) {
			out.memfs.push(await run(`/tmp/bench${i}`));
			out.shared.push(await run(`/wordpress/bench${i}`));
		}
		return out;
	}, script);
	await context.close();
	return Object.keys(runs.memfs[0]).map((op) => {
		const shared = median(runs.shared.map((r) => r[op]));
		const memfs = median(runs.memfs.map((r) => r[op]));
		return figure(`php fs: ${op}`, shared, memfs, 'us/op', '<= 1.0', shared / memfs <= 1.0,
			'bench/php-fs-ops.php in one worker on /wordpress (shared-fs) vs /tmp (MEMFS); median of 3 interleaved runs of 5 rounds');
	});
}

/** Requests per second of `path` with `workers` workers and `clients` concurrent clients for `ms`. */
async function throughput(browser, origin, { site, workers, setup, path, clients, ms }) {
	const { page, context } = await open(browser, origin, `?site=${site}&workers=${workers}`);
	const rate = await page.evaluate(
		async ([setup, path, clients, ms]) => {
			const c = await window.playground;
			if (setup) await c.writeFile(setup.path, setup.code);
			const { url, get } = await window.benchSite();
			return window.bench.rate(get, url + path, { clients, ms });
		},
		[setup, path, clients, ms]
	);
	await context.close();
	return rate;
}

/** 5. Throughput of a CPU-bound PHP route with N workers (N = cores) vs 1 worker. */
export async function scaling(browser, origin, { quick }) {
	const cores = await hardwareConcurrency(browser);
	const ms = quick ? 4000 : 10000;
	const cpu = {
		site: 'blank',
		setup: { path: '/wordpress/cpu.php', code: '<?php $x = 0; for ($i = 0; $i < 2000000; $i++) { $x += $i % 7; } echo $x;' },
		path: 'cpu.php',
		clients: 2 * cores,
		ms,
	};
	const one = await throughput(browser, origin, { ...cpu, workers: 1 });
	const many = await throughput(browser, origin, { ...cpu, workers: cores });
	return [
		figure(`throughput cpu-bound PHP route, ${cores} workers vs 1`, many, one, 'req/s', `>= ${0.9 * cores} (0.9 x N)`,
			many / one >= 0.9 * cores,
			`${2 * cores} concurrent fetch loops through the service worker for ${ms / 1000} s, N = navigator.hardwareConcurrency = ${cores}`),
	];
}

/** 6. A trivial PHP request through the service worker vs client.run of the
 *  same script, with a same-run control (a constant the service worker answers
 *  at once) and where the time goes between hops (protocol/src/trace.rs). */
export async function serviceWorkerOverhead(browser, origin) {
	const { page, context } = await open(browser, origin, '?site=blank&workers=1');
	const m = await page.evaluate(async () => {
		const c = await window.playground;
		const code = '<?php echo "ok";';
		await c.writeFile(c.documentRoot + '/trivial.php', code);
		const med = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
		const time = async (f) => {
			for (let i = 0; i < 20; i++) await f();
			const samples = [];
			for (let i = 0; i < 200; i++) {
				const t = performance.now();
				await f();
				samples.push(performance.now() - t);
			}
			return med(samples);
		};
		const viaSw = () => fetch(c.absoluteUrl + 'trivial.php').then((r) => r.text());
		const viaRun = () => c.run({ code });
		const control = () => fetch('/.php-pool/sw-control').then((r) => r.text());
		// Interleaved rounds share the drift.
		const sums = { sw: 0, run: 0, control: 0 };
		for (let round = 0; round < 2; round++) {
			sums.sw += await time(viaSw);
			sums.run += await time(viaRun);
			sums.control += await time(control);
		}
		// Traced requests: each hop stamps the shared clock.
		const clock = () => performance.timeOrigin + performance.now();
		const traced = async (url, hops, stamps) => {
			const start = clock();
			const r = await fetch(url, { headers: { 'x-php-pool-trace': '1' } });
			const headers = clock();
			await r.text();
			const end = clock();
			const t = Object.fromEntries((r.headers.get('x-php-pool-trace') ?? '').split(',').map((p) => p.split('=')).map(([k, v]) => [k, Number(v)]));
			const points = [['fetch', start], ...stamps.map((s) => [s, t[s]]), ['headers', headers], ['body', end]];
			for (let j = 1; j < points.length; j++) (hops[`${points[j - 1][0]}->${points[j][0]}`] ??= []).push(points[j][1] - points[j - 1][1]);
		};
		// Interleaved, each after 20 untimed.
		const hops = {};
		const controlHops = {};
		for (let i = 0; i < 220; i++) {
			await traced(c.absoluteUrl + 'trivial.php', i < 20 ? {} : hops, ['sw', 'manager', 'worker', 'php', 'sw-out']);
			await traced('/.php-pool/sw-control', i < 20 ? {} : controlHops, ['sw', 'sw-out']);
		}
		const split = (hops) => Object.entries(hops).map(([k, xs]) => `${k} ${med(xs).toFixed(2)}`).join(', ');
		return { sw: sums.sw / 2, run: sums.run / 2, control: sums.control / 2, breakdown: split(hops), controlBreakdown: split(controlHops) };
	});
	await context.close();
	const method = 'median latency of 200 sequential requests after 20 warm-up, in 2 interleaved rounds; one worker';
	return [
		figure('trivial PHP request: service worker vs client.run', m.sw, m.run, 'ms', '<= 1.5', m.sw / m.run <= 1.5,
			`${method}; median ms per hop of 200 traced requests (clock shared by the service worker, the process manager and the worker): ${m.breakdown}`),
		figure('control: a constant from the service worker vs client.run', m.control, m.run, 'ms', 'report', true,
			`${method}; the service worker answers /.php-pool/sw-control at once with a Response built as for PHP's: the floor any request through it pays; median ms per hop of 200 traced requests, interleaved with the ones above: ${m.controlBreakdown}`),
		figure('trivial PHP request: our hops (service worker - control) vs client.run', m.sw - m.control, m.run, 'ms', 'report', true,
			`${method}; what the process manager and worker hops add to the control`),
	];
}


/** Where a front page's CPU goes in the thread that runs PHP: a V8 CPU
 *  profile (Chrome tracing) of `N` sequential front pages, ours and the
 *  peer's, each after warm-up. Shares, not times: the profiler slows
 *  every thread about alike (a traced front page takes 1.5-2 times as long). */
export async function requestProfile(browser, origin) {
	const N = 30;
	const sides = { ours: { path: '?workers=1' }, peer: { path: 'bench-peer/peer.html' } };
	for (const side of Object.values(sides)) {
		const { page, context } = await open(browser, origin, side.path);
		await page.evaluate(async () => {
			const { url, get } = await window.benchSite();
			for (let i = 0; i < 15; i++) await get(url);
		});
		await browser.startTracing(page, { categories: ['__metadata', 'disabled-by-default-v8.cpu_profiler'] });
		await page.evaluate(async (N) => {
			const { url, get } = await window.benchSite();
			for (let i = 0; i < N; i++) await get(url);
		}, N);
		side.split = cpuByCode(JSON.parse((await browser.stopTracing()).toString()).traceEvents);
		await context.close();
	}
	// Each side's functions are named from the php.wasm it ran (its file name is in the profile).
	for (const [side, dir] of [[sides.ours, join(distDir, 'worker')], [sides.peer, peerBundle]]) {
		const file = readdirSync(dir, { recursive: true }).find((f) => f.split('/').pop() === side.split.phpFile);
		side.names = file ? exportedFunctionNames(readFileSync(join(dir, file))) : new Map();
	}
	const top = ({ split, names }) =>
		Object.entries(split.phpFunctions)
			.sort((a, b) => b[1] - a[1])
			.slice(0, 5)
			.map(([index, ms]) => `${names.get(Number(index)) ?? `function ${index}`} ${((100 * ms) / split.busy).toFixed(1)} %`)
			.join(', ');
	const how = (side) =>
		`CPU profile of the thread that runs PHP over ${N} sequential front pages after 15 (1 worker; the peer in its own worker): ${(side.split.busy / N).toFixed(1)} ms busy per page under the profiler; php.wasm's hottest functions: ${top(side)}`;
	const ours = sides.ours.split;
	const peer = sides.peer.split;
	return [
		figure('front page: php.wasm share of the PHP thread, ours', ours.php, ours.busy, 'ms', 'report', true, how(sides.ours)),
		figure('front page: php.wasm share of the PHP thread, peer', peer.php, peer.busy, 'ms', 'report', true, how(sides.peer)),
		figure('front page: the worker module and its JS share of the PHP thread, ours', ours.ownCode, ours.busy, 'ms', 'report', true,
			`${how(sides.ours)}; the worker module (shared-fs and the mount's rules, Rust) ${(ours.workerWasm / N).toFixed(2)} ms and the worker's JS bundle (the mount adapter, the job glue and php-wasm's JS API) ${(ours.js / N).toFixed(2)} ms per page; V8's own (JS-wasm transitions, GC, built-ins) ${(ours.v8 / N).toFixed(2)} ms`),
	];
}

/** Busy ms by kind of code in the profiled thread that ran the most
 *  php.wasm: php.wasm (and per function index), other wasm (our worker
 *  module), JS, and V8's own (no script). */
function cpuByCode(events) {
	const profiles = new Map();
	for (const e of events) {
		if (e.name !== 'Profile' && e.name !== 'ProfileChunk') continue;
		const key = `${e.pid}:${e.tid}:${e.id}`;
		if (!profiles.has(key)) profiles.set(key, { nodes: new Map(), samples: [], deltas: [] });
		const p = profiles.get(key);
		const data = e.args?.data ?? {};
		for (const node of data.cpuProfile?.nodes ?? []) p.nodes.set(node.id, node.callFrame);
		p.samples.push(...(data.cpuProfile?.samples ?? []));
		p.deltas.push(...(data.timeDeltas ?? []));
	}
	const splits = [...profiles.values()].map(({ nodes, samples, deltas }) => {
		const split = { busy: 0, php: 0, workerWasm: 0, js: 0, v8: 0, ownCode: 0, phpFunctions: {}, phpFile: null };
		samples.forEach((id, i) => {
			const frame = nodes.get(id);
			const ms = (deltas[i + 1] ?? 0) / 1000;
			if (!frame || frame.functionName === '(idle)') return;
			split.busy += ms;
			const file = (frame.url ?? '').split('/').pop();
			const wasm = /^wasm:|\.wasm$/.test(frame.url ?? '');
			if (wasm && /^php[-_]/.test(file)) {
				split.php += ms;
				split.phpFile = file;
				const index = /wasm-function\[(\d+)\]/.exec(frame.functionName)?.[1];
				if (index) split.phpFunctions[index] = (split.phpFunctions[index] ?? 0) + ms;
			} else if (wasm) split.workerWasm += ms;
			else if (frame.url) split.js += ms;
			else split.v8 += ms;
		});
		split.ownCode = split.workerWasm + split.js;
		return split;
	});
	const busiest = splits.sort((a, b) => b.php - a.php)[0];
	if (!busiest?.php) throw new Error('requestProfile: the trace holds no CPU profile of php.wasm');
	return busiest;
}

/** php.wasm carries no name section; its exports name its hot functions. */
function exportedFunctionNames(bytes) {
	const names = new Map();
	let at = 8;
	const leb = () => {
		let value = 0;
		for (let shift = 0; ; shift += 7) {
			const byte = bytes[at++];
			value += (byte & 127) * 2 ** shift;
			if (byte < 128) return value;
		}
	};
	while (at < bytes.length) {
		const section = bytes[at++];
		const end = leb() + at;
		if (section === 7) {
			for (let n = leb(); n > 0; n--) {
				const length = leb();
				const name = bytes.subarray(at, at + length).toString();
				at += length;
				const kind = bytes[at++];
				const index = leb();
				if (kind === 0 && !names.has(index)) names.set(index, name);
			}
		}
		at = end;
	}
	return names;
}

const PEER = "peer = Playground's engine (@php-wasm/web + @wp-playground/wordpress 3.1.55, bench/peer/) booting the same zips in a module worker as Playground's web worker does (PHP 8.3, SAPI cli, OPcache's file cache); the page posts it the URL";

/** The peer's engine as its PHP reports it (bench/peer/peer-worker.js). */
const describePeer = (p) =>
	`SAPI ${p.sapi}, PHP ${p.phpVersion}, OPcache ${p.opcacheOn ? p.opcache : 'OFF'} (${p.cachedScripts} scripts cached), ${p.asyncMode}`;

/** One side of the WordPress comparison, opened cold at `path`: navigation
 *  to first front page, then front-page p50 (if `latency`), then req/s (if
 *  `ms`). `onDisk`: in a browser of its own on a profile on disk (the cold
 *  boots), else in a new context of the shared browser. */
async function measureWordPress(browser, origin, path, { latency, clients, ms, onDisk }) {
	const { page, context } = onDisk ? await openOnDisk(origin, path) : await open(browser, origin, path);
	const m = await page.evaluate(
		async ({ latency, clients, ms }) => {
			const first = await window.firstPage;
			const { url, get, allWorkersUp } = await window.benchSite();
			// The peer runs one worker, up at ready.
			if (latency || ms) await allWorkersUp?.();
			const p50 = latency ? await window.bench.p50(get, url, { warmup: 5, runs: 30 }) : null;
			const rate = ms ? await window.bench.rate(get, url, { clients, ms }) : null;
			// The peer says how its engine ran, after the measured requests
			// (not after a boot alone: OPcache skips files younger than 2 s,
			// opcache.file_update_protection, and WordPress was just unzipped).
			const peer = window.peerStatus && (p50 || rate) ? await window.peerStatus() : null;
			return { boot: first.at, afterReady: first.at - first.readyAt, status: first.status, bodyLength: first.bodyLength, p50, rate, peer };
		},
		{ latency, clients, ms }
	);
	m.onDisk = Boolean(onDisk);
	await context.close();
	if (m.status !== 200 || m.bodyLength < 10000) throw new Error(`${path}: first front page HTTP ${m.status}, ${m.bodyLength} bytes`);
	// Without OPcache (e.g. under php-wasm's own SAPI "wasm") the peer is not
	// Playground's speed and every ratio against it is wrong: stop the run.
	if (m.peer && (!m.peer.opcacheOn || m.peer.opcache !== m.peer.variant)) {
		throw new Error(`${path}: the peer's OPcache is not on as its ${m.peer.variant} variant should be (${describePeer(m.peer)}; PHP says ${JSON.stringify(m.peer.php)}): see bench/peer/peer-worker.js`);
	}
	return m;
}

/** 9. WordPress's front page against the peer, in the same browser: rounds
 *  of peer / peer's control / ours 1 worker / ours N workers, every other
 *  round reversed so drift hits all sides alike; then three rounds of cold
 *  boots alone, as one boot varies by up to 1 s here (the peer's took 1.5
 *  or 2.5 s), each in a browser of its own on a new profile on disk, as a
 *  person's browser is (a new context keeps OPFS in memory, where a saved
 *  site's first image took 10 times as long to write). The control, the
 *  peer's engine with OPcache in memory, checks the peer itself: on this
 *  machine Playground's file cache (OPcache loads every script from its .bin
 *  file on each request) measured 1.03-1.35x of it, and OPcache off 2.1-2.3x
 *  (60 sequential front pages per variant, two rounds), so a peer more than
 *  1.6x its control is misconfigured and the run fails (bench/run.mjs). Our
 *  p50 is also given against the control, the faster baseline. */
export async function wordpressVsPeer(browser, origin, { quick }) {
	const n = await hardwareConcurrency(browser);
	const clients = 4;
	const ms = quick ? 4000 : 10000;
	const sides = {
		peer: { path: 'bench-peer/peer.html', latency: true },
		// Only its p50 is compared, so no req/s and no boot-only rounds.
		peerMem: { path: 'bench-peer/peer.html?opcache=memory', latency: true, ms: 0, bootRounds: false },
		one: { path: '?workers=1', latency: true },
		// Its p50 first, as one worker's: req/s then compares pools, not a
		// pool still starting (its p50's pages all go to worker 0, the
		// lowest idle; the others first serve in req/s's warm-up round).
		many: { path: `?workers=${n}`, latency: true },
		// Boots only: more workers than cores must not slow the start either.
		...Object.fromEntries(
			[4, 8].filter((w) => w !== n).map((w) => [`workers${w}`, { path: `?workers=${w}`, bootsOnly: true }])
		),
	};
	const runs = Object.fromEntries(Object.keys(sides).map((side) => [side, []]));
	const rounds = quick ? 1 : 3;
	const bootRounds = quick ? 2 : 3;
	const bootOnly = { latency: false, ms: 0, onDisk: true };
	for (let round = 0; round < rounds + bootRounds; round++) {
		const order = round % 2 ? Object.keys(sides).reverse() : Object.keys(sides);
		for (const side of order) {
			if (round >= rounds && sides[side].bootRounds === false) continue;
			if (round < rounds && sides[side].bootsOnly) continue;
			const how = round < rounds ? { clients, ms, ...sides[side] } : bootOnly;
			runs[side].push(await measureWordPress(browser, origin, sides[side].path, how));
		}
	}
	// Boots only from the rounds on disk; p50 and req/s from the others.
	const bootKeys = ['boot', 'afterReady'];
	const med = (side, key) => median(runs[side].filter((m) => m.onDisk === bootKeys.includes(key)).map((m) => m[key]).filter((x) => x !== null));
	const of = `median of ${rounds} interleaved round(s) (boots: ${bootRounds}, each in a browser of its own on a new profile on disk); first front page ours ${runs.one[0].bodyLength} B, peer ${runs.peer[0].bodyLength} B`;
	return [
		figure('WordPress front page p50: ours 1 worker vs peer', med('one', 'p50'), med('peer', 'p50'), 'ms', '<= 0.7',
			med('one', 'p50') / med('peer', 'p50') <= 0.7,
			`p50 of 30 sequential front-page requests after 5 warm-up, timed in the page; ours through the service worker; ${PEER}; ${of}`),
		figure(`WordPress front page p50: ours ${n} workers vs 1`, med('many', 'p50'), med('one', 'p50'), 'ms', 'report', true,
			`as above: one person browsing gains nothing from more workers, and must lose nothing; ${of}`),
		figure(`WordPress req/s, ${clients} clients: ours ${n} workers vs peer`, med('many', 'rate'), med('peer', 'rate'), 'req/s',
			`>= ${1.1 * n} (1.1 x N)`, med('many', 'rate') / med('peer', 'rate') >= 1.1 * n,
			`${clients} concurrent front-page loops for ${ms / 1000} s, N = navigator.hardwareConcurrency = ${n}; ${PEER}; ${of}`),
		figure(`WordPress req/s, ${clients} clients: ours ${n} workers vs 1`, med('many', 'rate'), med('one', 'rate'), 'req/s',
			`>= ${0.9 * n} (0.9 x N)`, med('many', 'rate') / med('one', 'rate') >= 0.9 * n,
			`${clients} concurrent front-page loops through the service worker for ${ms / 1000} s, each side after its p50's 35 front pages and once every worker is up; ${of}`),
		figure(`WordPress cold boot to first front page: ours ${n} workers vs peer`, med('many', 'boot'), med('peer', 'boot'), 'ms',
			'<= 0.5', med('many', 'boot') / med('peer', 'boot') <= 0.5,
			`navigation start to the first front page's response: ours, the site iframe's document (a saved site, the default); the peer, its first request after boot; ${PEER}; ${of}`),
		figure('WordPress cold boot to first front page: ours 1 worker vs peer', med('one', 'boot'), med('peer', 'boot'), 'ms', '<= 0.5',
			med('one', 'boot') / med('peer', 'boot') <= 0.5, 'as above, one worker'),
		figure('WordPress first front page after ready: ours 1 worker vs peer', med('one', 'afterReady'), med('peer', 'afterReady'), 'ms', '<= 1.0',
			med('one', 'afterReady') <= med('peer', 'afterReady'),
			`from the client resolving (ours: window.playground; the peer: its boot's promise) to the first front page's response; ${of}`),
		figure(`WordPress cold boot: ours ${n} workers vs 1`, med('many', 'boot'), med('one', 'boot'), 'ms', '<= 1.05',
			med('many', 'boot') / med('one', 'boot') <= 1.05, `the cold boots above; extra workers start after the first page; ${of}`),
		...Object.keys(sides)
			.filter((side) => sides[side].bootsOnly)
			.map((side) =>
				figure(`WordPress cold boot: ours ${side.slice('workers'.length)} workers vs 1`, med(side, 'boot'), med('one', 'boot'), 'ms',
					'<= 1.05', med(side, 'boot') / med('one', 'boot') <= 1.05, `as above (${sides[side].path}), in the same boot rounds`)
			),
		figure("WordPress front page p50: ours 1 worker vs the peer's engine with OPcache in memory", med('one', 'p50'), med('peerMem', 'p50'), 'ms', 'report',
			true, `the stricter baseline: Playground's engine faster than Playground runs it (its file cache off); ${of}`),
		// Required: bench/run.mjs fails the run when the peer is not met.
		{
			...figure("peer check: front page p50, Playground's OPcache file cache vs in memory", med('peer', 'p50'), med('peerMem', 'p50'),
				'ms', '<= 1.6', med('peer', 'p50') / med('peerMem', 'p50') <= 1.6,
				`the peer's p50 as above against the same engine booted with opcache.file_cache_only=0 (peer.html?opcache=memory), measured alike in the same rounds; ${of}`),
			required: true,
		},
		// What each variant's PHP said after its first measured round.
		...['peer', 'peerMem'].map((side) => {
			const p = runs[side][0].peer;
			return figure(`peer engine (${p.variant}): ${describePeer(p)}`, p.cachedScripts, null, 'scripts', 'report', true,
				`opcache_get_status(false) and php_sapi_name() run in the peer's primary PHP after its measured requests (file cache: the .bin files under opcache.file_cache); the async mode is the one loadWebRuntime chose (JSPI where WebAssembly.Suspending exists); JSPI in this browser: ${p.jspiInBrowser}`);
		}),
	];
}

// Where the service worker fetches the static files a site's filesystem
// lacks (host/src/versions.rs WpBuild::assets, under the build's origin).
const BUILD_STATIC_FILES = `/wordpress/${WORDPRESS_BUILDS_RELEASE}/wp-6.5/`;

/** Resolves once no page request has awaited its response headers for
 *  `quietMs`. Playwright's 'networkidle' never comes in the editor: it never
 *  reads the bodies of its OPTIONS requests (it wants their Allow header). */
function networkQuiet(context) {
	const waiting = new Set();
	let changedAt = Date.now();
	context.on('request', (r) => {
		if (r.serviceWorker()) return;
		waiting.add(r);
		changedAt = Date.now();
	});
	const done = (r) => waiting.delete(r) && (changedAt = Date.now());
	context.on('response', (response) => done(response.request()));
	context.on('requestfailed', done);
	return async ({ quietMs = 500, timeout = 120000 } = {}) => {
		const deadline = Date.now() + timeout;
		while (waiting.size || Date.now() - changedAt < quietMs) {
			if (Date.now() > deadline) throw new Error(`network busy: ${[...waiting].map((r) => r.url()).join(', ')}`);
			await new Promise((r) => setTimeout(r, 50));
		}
	};
}

/** Loads the block editor `loads` times after one warm-up load, logged in as
 *  admin, in the playground's site iframe with `workers` workers. */
async function editorLoads(browser, origin, workers, loads) {
	const { page, context } = await open(browser, origin, `?workers=${workers}`);
	const siteUrl = await page.evaluate(async () => (await window.firstPage) && (await window.benchSite()).url);
	const frame = await (await page.$('#site')).contentFrame();
	await frame.goto(`${siteUrl}wp-login.php`);
	await frame.fill('#user_login', 'admin');
	await frame.fill('#user_pass', 'password');
	await Promise.all([frame.waitForURL(/wp-admin/, { timeout: 60000 }), frame.click('#wp-submit')]);
	// The service worker's fetches from the build are the static misses.
	const missed = new Set();
	context.on('request', (r) => {
		const path = new URL(r.url()).pathname;
		if (r.serviceWorker() && path.startsWith(BUILD_STATIC_FILES)) missed.add(path.slice(BUILD_STATIC_FILES.length));
	});
	const quiet = networkQuiet(context);
	const out = [];
	for (let i = 0; i <= loads; i++) {
		missed.clear();
		await frame.goto(`${siteUrl}wp-admin/post-new.php`, { waitUntil: 'commit' });
		const saveDraftShown = await frame.waitForFunction(
			() => [...document.querySelectorAll('button')].some((b) => b.textContent.trim() === 'Save draft') && performance.now(),
			null,
			{ polling: 'raf', timeout: 120000 }
		);
		await quiet();
		const m = await frame.evaluate(
			([saveDraftAt, siteUrl, missed]) => {
				const sitePath = new URL(siteUrl).pathname;
				const resources = performance.getEntriesByType('resource');
				const misses = resources
					.filter((e) => missed.includes(new URL(e.name).pathname.slice(sitePath.length)))
					.map((e) => [e.startTime, e.responseEnd])
					.sort((a, b) => a[0] - b[0]);
				let inFlight = 0;
				let until = 0;
				for (const [start, end] of misses) {
					inFlight += Math.max(0, end - Math.max(start, until));
					until = Math.max(until, end);
				}
				const ready = Math.max(saveDraftAt, ...resources.map((e) => e.responseEnd));
				return { ready, misses: misses.length, inFlight, requests: resources.length };
			},
			[await saveDraftShown.jsonValue(), siteUrl, [...missed]]
		);
		if (i > 0) out.push(m);
	}
	await context.close();
	return out;
}

/** 10. The block editor with N workers vs 1, and what static files the shared FS lacks cost it. */
export async function editorScaling(browser, origin, { quick }) {
	const n = await hardwareConcurrency(browser);
	const loads = quick ? 1 : 2;
	const runs = new Map([[1, []], [n, []]]);
	for (const workers of quick ? [1, n] : [1, n, n, 1]) runs.get(workers).push(...(await editorLoads(browser, origin, workers, loads)));
	const ready = (w) => median(runs.get(w).map((m) => m.ready));
	const how = `logged in as admin, wp-admin/post-new.php in the site iframe after one warm-up load: navigation start until "Save draft" shows and every request is answered (the later of that button and the last resource response; then 500 ms quiet); median of ${runs.get(n).length} load(s)`;
	return [
		figure(`wp-admin block editor ready: ${n} workers vs 1`, ready(n), ready(1), 'ms', '<= 0.7', ready(n) / ready(1) <= 0.7, how),
		...[1, n].map((w) => {
			const m = runs.get(w);
			const misses = median(m.map((x) => x.misses));
			const requests = median(m.map((x) => x.requests));
			return figure(`wp-admin editor: time with a static miss in flight, ${w} worker(s)`,
				median(m.map((x) => x.inFlight)), ready(w), 'ms', 'report', true,
				`static files the shared FS lacks (${misses} of the editor's ${requests} requests: a PHP worker answers 404 + x-site-static-miss, then the service worker fetches them from the build): wall time while at least one is in flight, over the editor-ready time`);
		}),
	];
}

/** 7 and 8. Memory after WordPress boot with 1, 2 and 4 workers; shared memory vs stored bytes. */
export async function memoryAfterBoot(browser, origin) {
	const out = [];
	const ready = {};
	for (const workers of [1, 2, 4]) {
		const { page, context } = await open(browser, origin, `?workers=${workers}`);
		const m = await page.evaluate(async () => {
			const c = await window.playground;
			const readyAt = performance.now();
			await window.firstPage;
			const stored = JSON.parse(
				(
					await c.run({
						code: `<?php $n = 0; foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator('/wordpress', FilesystemIterator::SKIP_DOTS)) as $f) { if ($f->isFile()) $n += $f->getSize(); } echo $n;`,
					})
				).text
			);
			const stats = await c.stats();
			const memory = await performance.measureUserAgentSpecificMemory();
			return { readyAt, stored, stats, page: memory.bytes };
		});
		ready[workers] = m.readyAt;
		out.push(figure(`browser memory after WordPress boot, ${workers} worker(s)`, m.page / 2 ** 20, null, 'MiB',
			workers === 4 ? '<= 1024 MiB' : 'report', workers !== 4 || m.page <= 2 ** 30,
			'performance.measureUserAgentSpecificMemory() (page, workers, shared memory) once the first front page has loaded'));
		if (workers === 1) {
			const s = m.stats;
			out.push(figure('shared memory size vs stored file bytes', s.memoryBytes, m.stored, 'bytes', '<= 1.25',
				s.memoryBytes / m.stored <= 1.25,
				'WebAssembly.Memory size (filesystem, worker heaps, stacks) over the sum of file sizes under /wordpress after boot'));
			out.push(figure('  of which filesystem space: obtained vs stored file bytes', s.capacity, m.stored, 'bytes', 'report', true,
				`blocks in use ${s.used} B, high-water ${s.highWater} B, ${s.inodes} inodes`));
			out.push(figure('  of which shared Rust heap: high-water vs stored file bytes', s.heapPeak, m.stored, 'bytes', 'report', true,
				`held now ${s.heapBytes} B (inodes, directories, names, worker stacks); the rest of the memory is the module's static data and main stack`));
		}
		await context.close();
	}
	out.push(figure('one more worker ready (mean of the 2nd to 4th)', (ready[4] - ready[1]) / 3, null, 'ms', 'report', true,
		'(all-ready time with 4 workers - with 1) / 3'));
	return out;
}

/** 11. Saved sites (issue 13): opening a saved WordPress site, what saving
 *  adds to a request that saves a post (against the same request on a
 *  temporary site, same run), and the stored bytes per file byte. */
/** 16 front pages requested at once as soon as the site is ready, timed
 *  from navigation start: ours on N workers vs the peer, 2 rounds each,
 *  interleaved. */
export async function burstAfterReady(browser, origin) {
	const n = await hardwareConcurrency(browser);
	const sides = { peer: 'bench-peer/peer.html', ours: `?workers=${n}` };
	const runs = { peer: [], ours: [] };
	for (let round = 0; round < 2; round++) {
		for (const side of round % 2 ? ['ours', 'peer'] : ['peer', 'ours']) {
			const { page, context } = await open(browser, origin, sides[side]);
			runs[side].push(
				await page.evaluate(async () => {
					const { url, get } = await window.benchSite();
					await Promise.all(Array.from({ length: 16 }, () => get(url)));
					return performance.now();
				})
			);
			await context.close();
		}
	}
	const [ours, peer] = [median(runs.ours), median(runs.peer)];
	return [
		figure(`WordPress 16 concurrent front pages from navigation: ours ${n} workers vs peer`, ours, peer, 'ms', '<= 0.5', ours / peer <= 0.5,
			`navigation start to the last of 16 front pages requested together once the client is ready (ours: through the service worker, beside the site iframe's own first page); ${PEER}; median of 2 interleaved rounds`),
	];
}

/** The SQLite integration new sites get (3.0.2) against the one they got
 *  before (2.1.11), on the same site (WordPress 6.5's build zip, 1 worker,
 *  a temporary site) made the same way, alternating. After the boot's
 *  first connection (which converts 2.1.11's database for 3.0.2, as the
 *  boot does for a site from a zip), the first front page and the p50. */
export async function sqliteDriver(browser, origin, { quick }) {
	const drivers = { old: sqliteIntegrationFiles(OLD_SQLITE_ZIP), new: sqliteIntegrationFiles(NEW_SQLITE_ZIP) };
	const runs = { old: [], new: [] };
	for (let round = 0; round < (quick ? 2 : 4); round++) {
		for (const driver of round % 2 ? ['new', 'old'] : ['old', 'new']) {
			const { page, context } = await open(browser, origin, '?workers=1&storage=temp');
			await page.evaluate(() => window.playground);
			await page.evaluate(bootSiteWithSqliteIntegration, { files: drivers[driver], options: { workers: 1, storage: 'temp' } });
			runs[driver].push(
				await page.evaluate(async () => {
					const client = window.siteWithDriver;
					const connected = await client.run({ code: `<?php require '/wordpress/wp-load.php'; echo $wpdb->get_var("SELECT COUNT(*) FROM $wpdb->posts") > 0 ? 'ok' : $wpdb->last_error;` });
					if (connected.text !== 'ok') throw new Error(`no database: ${connected.text} ${connected.errors}`);
					const get = async (url) => {
						const r = await client.request({ url });
						return { status: r.httpStatusCode, bodyLength: r.bytes.byteLength };
					};
					const start = performance.now();
					const first = await get(client.absoluteUrl);
					if (first.status !== 200 || first.bodyLength < 10000) throw new Error(`first front page: HTTP ${first.status}, ${first.bodyLength} bytes`);
					const firstPage = performance.now() - start;
					return { firstPage, p50: await window.bench.p50(get, client.absoluteUrl, { warmup: 5, runs: 30 }) };
				})
			);
			await context.close();
		}
	}
	const med = (driver, key) => median(runs[driver].map((r) => r[key]));
	const how = `WordPress 6.5's build zip, 1 worker, client.request (no service worker); median of ${runs.new.length} interleaved rounds`;
	return [
		figure('WordPress front page p50: SQLite integration 3.0.2 vs 2.1.11', med('new', 'p50'), med('old', 'p50'), 'ms', '<= 1.05',
			med('new', 'p50') / med('old', 'p50') <= 1.05, `p50 of 30 sequential front pages after 5 warm-up; ${how}`),
		figure('WordPress first front page after the first connection: SQLite integration 3.0.2 vs 2.1.11', med('new', 'firstPage'), med('old', 'firstPage'), 'ms', 'report',
			true, `the first front page after the boot's first database connection, both drivers' scripts compiled on it (a new site's image brings 3.0.2's compiled); ${how}`),
	];
}

/** A returning visit: the same saved site opened again in the same browser
 *  profile (its files from OPFS with their compiled scripts, php.wasm
 *  revalidated from the HTTP cache), against its first, new-site visit. */
export async function returningVisit(browser, origin) {
	const { context, close } = await browserOnDisk();
	const page = await context.newPage();
	const visit = async (slug) => {
		await page.goto(`${origin}/?workers=1&site-slug=${slug}`);
		await page.waitForFunction(() => window.firstPage !== undefined);
		return page.evaluate(async () => ({ ...(await window.firstPage), restored: (await window.playground).restored }));
	};
	const first = [];
	const again = [];
	try {
		for (const slug of ['bench-return-a', 'bench-return-b']) {
			const fresh = await visit(slug);
			const back = await visit(slug);
			if (fresh.restored || !back.restored) throw new Error(`returning visit: restored ${fresh.restored}, then ${back.restored}`);
			first.push(fresh.at);
			again.push(back.at);
		}
	} finally {
		await close();
	}
	return [
		figure('returning visit to a saved site: boot to first front page vs its first visit', median(again), median(first), 'ms', '<= 0.3',
			median(again) / median(first) <= 0.3,
			'navigation start to the site iframe\'s first response, 1 worker, a profile on disk; the second visit opens the site saved by the first (its compiled scripts with it) and revalidates php.wasm (ETag); median of 2 sites'),
	];
}

export async function persistence(browser, origin) {
	const savePost = async (runs) => {
		const c = await window.playground;
		await c.writeFile('/wordpress/bench-save.php', `<?php require __DIR__ . '/wp-load.php'; echo wp_insert_post(['post_title' => 'bench', 'post_content' => str_repeat('saved ', 400), 'post_status' => 'publish']);`);
		const times = [];
		for (let i = 0; i < runs + 3; i++) {
			const t = performance.now();
			const r = await c.request({ url: '/bench-save.php' });
			if (r.httpStatusCode !== 200 || !(Number(r.text) > 0)) throw new Error(`save-post: ${r.httpStatusCode} ${r.text.slice(0, 200)}`);
			if (i >= 3) times.push(performance.now() - t);
		}
		return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
	};
	// A profile on disk: an incognito context keeps OPFS in memory, where a
	// flush costs nothing.
	const profile = mkdtempSync(join(tmpdir(), 'php-pool-bench-'));
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
		args: CHROMIUM_ARGS,
		headless: true,
	});
	const page = await context.newPage();
	const boot = async (query) => {
		await page.goto(`${origin}/${query}`);
		await page.waitForFunction(() => window.playground !== undefined);
		return page.evaluate(async () => {
			const c = await window.playground;
			return { restored: c.restored, openMs: c.storageOpenMs };
		});
	};
	await boot('?workers=1&site-slug=bench-saved');
	const saved = await page.evaluate(savePost, 20);
	const sizes = await page.evaluate(async () => {
		const c = await window.playground;
		const files = Number((await c.run({ code: `<?php $n = 0; foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator('/wordpress', FilesystemIterator::SKIP_DOTS)) as $f) { if ($f->isFile()) $n += $f->getSize(); } echo $n;` })).text);
		let dir = await navigator.storage.getDirectory();
		for (const name of ['php-pool', 'sites', c.siteSlug]) dir = await dir.getDirectoryHandle(name);
		let stored = 0;
		for await (const handle of dir.values()) stored += (await handle.getFile()).size;
		return { files, stored };
	});
	const opens = [];
	for (let i = 0; i < 3; i++) {
		const o = await boot('?workers=1&site-slug=bench-saved');
		if (!o.restored) throw new Error('the saved site did not reopen');
		opens.push(o.openMs);
	}
	await boot('?workers=1&storage=temp');
	const temp = await page.evaluate(savePost, 20);
	await context.close();
	rmSync(profile, { recursive: true, force: true });
	const openMs = opens.sort((a, b) => a - b)[1];
	return [
		figure('saved WordPress site: open (storage -> shared FS)', openMs, null, 'ms', '<= 300', openMs <= 300,
			'median of 3 reloads: the storage worker reading the site\'s log into the shared filesystem (client.storageOpenMs)'),
		figure('request saving a post: saved site vs temporary site (p50)', saved, temp, 'ms', '<= +5 ms', saved - temp <= 5,
			'wp_insert_post through client.request, 20 runs after 3 warm-ups each, on a Chromium profile on disk (OPFS flushes are real); the difference is what saving adds'),
		figure('stored bytes vs file bytes', sizes.stored, sizes.files, 'bytes', '<= 1.3', sizes.stored / sizes.files <= 1.3,
			'the saved site\'s OPFS files after boot and 23 saved posts, over the sum of file sizes under /wordpress'),
	];
}

/** A long session: 2 workers on a saved site; each round 4 clients fetch 8
 *  kinds of front-end URL through the service worker while one client
 *  writes 20 posts. Every response must be a 200 and every acknowledged
 *  post must be there at the end; page memory at the end against after the
 *  first 500 requests. */
export async function soak(browser, origin, { quick }) {
	const total = quick ? 1000 : 5000;
	const { page, context } = await open(browser, origin, `?workers=2&site-slug=bench-soak-${Date.now()}`);
	const rounds = [];
	let served = 0;
	let memoryAt500 = null;
	try {
		await page.evaluate(() => window.firstPage);
		while (served < total) {
			const round = await page.evaluate(async () => {
				const c = await window.playground;
				const kinds = ['', '?p=1', '?s=hello', '?page_id=2', '?cat=1', '?feed=rss2', 'wp-json/wp/v2/posts', '?author=1'];
				const errors = [];
				const reader = async (client) => {
					for (let i = 0; i < 40; i++) {
						const url = c.absoluteUrl + kinds[(client + i) % kinds.length];
						const r = await fetch(url);
						const body = await r.text();
						if (r.status !== 200) errors.push(`${r.status} ${url}: ${body.slice(0, 200)}`);
					}
				};
				let written = 0;
				const writer = async () => {
					for (let i = 0; i < 20; i++) {
						const r = await c.run({
							code: `<?php require '/wordpress/wp-load.php'; echo wp_insert_post(['post_title' => 'soak', 'post_status' => 'publish'], true) instanceof WP_Error ? 'failed' : 'ok';`,
						});
						if (r.text === 'ok') written++;
						else errors.push(`write: ${r.text} ${r.errors}`);
					}
				};
				await Promise.all([0, 1, 2, 3].map(reader).concat(writer()));
				return { requests: 180, written, errors };
			});
			served += round.requests;
			rounds.push(round);
			if (memoryAt500 === null && served >= 500) memoryAt500 = await page.evaluate(async () => (await performance.measureUserAgentSpecificMemory()).bytes);
		}
		const end = await page.evaluate(async () => {
			const c = await window.playground;
			const posts = await c.run({ code: `<?php require '/wordpress/wp-load.php'; echo count(get_posts(['title' => 'soak', 'numberposts' => -1, 'post_status' => 'publish', 'fields' => 'ids']));` });
			return { memory: (await performance.measureUserAgentSpecificMemory()).bytes, posts: Number(posts.text), workers: await c.workers() };
		});
		const errors = rounds.flatMap((r) => r.errors);
		const written = rounds.reduce((n, r) => n + r.written, 0);
		const recycled = end.workers.reduce((n, w) => n + w.recycled, 0);
		const crashed = end.workers.reduce((n, w) => n + w.crashed, 0);
		if (errors.length) console.error(`soak errors (${errors.length}):\n${errors.slice(0, 5).join('\n')}`);
		return [
			figure(`soak: ${served} requests with ${written} writes on 2 workers, errors`, errors.length + crashed, null, 'errors', '0',
				errors.length + crashed === 0 && end.posts === written,
				`non-200 responses, failed writes and crashed workers; ${end.posts} of ${written} acknowledged posts found at the end; ${recycled} PHP runtimes swapped (maxRequests 400)`),
			figure('soak: page memory at the end vs after the first 500 requests', end.memory / 2 ** 20, memoryAt500 / 2 ** 20, 'MiB', '<= 1.10',
				end.memory / memoryAt500 <= 1.1,
				`performance.measureUserAgentSpecificMemory() (page, workers, shared memory); PHP heaps at the end: ${end.workers.map((w) => Math.round(w.phpHeapBytes / 2 ** 20)).join(', ')} MiB`),
		];
	} finally {
		await context.close();
	}
}
