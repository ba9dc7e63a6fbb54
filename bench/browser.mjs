// Browser figures of the benchmark (see bench/run.mjs): each function
// measures one figure in Chromium against a baseline taken in the same run,
// and returns {figure, value, baseline, unit, ratio, goal, met, method}.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../playground/serve.mjs';
import { startBrowser } from '../e2e/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));

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
	// performance.measureUserAgentSpecificMemory() answers at once.
	const browser = await startBrowser(['--enable-blink-features=ForceEagerMeasureMemory']);
	const server = await startServer({ dir: join(here, '..', 'dist'), port: 0 });
	const origin = `http://127.0.0.1:${server.address().port}`;
	try {
		return await fn(browser, origin);
	} finally {
		await browser.close();
		await new Promise((r) => server.close(r));
	}
}

async function open(browser, origin, query) {
	const context = await browser.newContext();
	const page = await context.newPage();
	await page.goto(`${origin}/${query}`);
	await page.evaluate(() => window.playground);
	return { page, context };
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
	const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
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
			const url = c.absoluteUrl + path;
			await Promise.all(Array.from({ length: clients }, () => fetch(url).then((r) => r.text()))); // warm up
			let done = 0;
			const end = performance.now() + ms;
			const start = performance.now();
			await Promise.all(
				Array.from({ length: clients }, async () => {
					while (performance.now() < end) {
						const r = await fetch(url);
						await r.text();
						if (r.status === 200) done++;
					}
				})
			);
			return (done * 1000) / (performance.now() - start);
		},
		[setup, path, clients, ms]
	);
	await context.close();
	return rate;
}

/** 5. Throughput with N workers (N = cores) vs 1 worker: a CPU-bound PHP route, and WordPress's front page. */
export async function scaling(browser, origin, { quick }) {
	const cores = await (async () => {
		const page = await browser.newPage();
		const n = await page.evaluate(() => navigator.hardwareConcurrency);
		await page.close();
		return n;
	})();
	const ms = quick ? 4000 : 10000;
	const cpu = {
		site: 'blank',
		setup: { path: '/wordpress/cpu.php', code: '<?php $x = 0; for ($i = 0; $i < 2000000; $i++) { $x += $i % 7; } echo $x;' },
		path: 'cpu.php',
		clients: 2 * cores,
		ms,
	};
	const wp = { site: 'wordpress', path: '', clients: 2 * cores, ms };
	const out = [];
	for (const [name, spec] of [['cpu-bound PHP route', cpu], ['WordPress front page', wp]]) {
		const one = await throughput(browser, origin, { ...spec, workers: 1 });
		const many = await throughput(browser, origin, { ...spec, workers: cores });
		out.push(
			figure(`throughput ${name}, ${cores} workers vs 1`, many, one, 'req/s', `>= ${0.9 * cores} (0.9 x N)`,
				many / one >= 0.9 * cores,
				`${2 * cores} concurrent fetch loops through the service worker for ${ms / 1000} s, N = navigator.hardwareConcurrency = ${cores}`)
		);
	}
	return out;
}

/** 6. A trivial PHP request through the service worker vs client.run of the same script. */
export async function serviceWorkerOverhead(browser, origin) {
	const { page, context } = await open(browser, origin, '?site=blank&workers=1');
	const [sw, run] = await page.evaluate(async () => {
		const c = await window.playground;
		const code = '<?php echo "ok";';
		await c.writeFile(c.documentRoot + '/trivial.php', code);
		const time = async (f) => {
			for (let i = 0; i < 20; i++) await f();
			const samples = [];
			for (let i = 0; i < 200; i++) {
				const t = performance.now();
				await f();
				samples.push(performance.now() - t);
			}
			return samples.sort((a, b) => a - b)[100];
		};
		const viaSw = () => fetch(c.absoluteUrl + 'trivial.php').then((r) => r.text());
		const viaRun = () => c.run({ code });
		// Interleave halves to share the drift.
		const a1 = await time(viaSw), b1 = await time(viaRun), a2 = await time(viaSw), b2 = await time(viaRun);
		return [(a1 + a2) / 2, (b1 + b2) / 2];
	});
	await context.close();
	return [figure('trivial PHP request: service worker vs client.run', sw, run, 'ms', '<= 1.1', sw / run <= 1.1,
		'median latency of 200 sequential requests, twice each, interleaved; one worker')];
}

/** 7 and 8. WordPress cold boot with 1, 2 and 4 workers; memory after boot; shared memory vs stored bytes. */
export async function bootAndMemory(browser, origin) {
	const out = [];
	const ready = {};
	for (const workers of [1, 2, 4]) {
		const context = await browser.newContext();
		const page = await context.newPage();
		await page.goto(`${origin}/?workers=${workers}`);
		const m = await page.evaluate(async () => {
			const c = await window.playground;
			const readyAt = performance.now();
			const r = await fetch(c.absoluteUrl);
			await r.text();
			const firstPage = performance.now();
			const stored = JSON.parse(
				(
					await c.run({
						code: `<?php $n = 0; foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator('/wordpress', FilesystemIterator::SKIP_DOTS)) as $f) { if ($f->isFile()) $n += $f->getSize(); } echo $n;`,
					})
				).text
			);
			const stats = await c.stats();
			const memory = await performance.measureUserAgentSpecificMemory();
			return { readyAt, firstPage, stored, memoryBytes: stats.memoryBytes, used: stats.used, page: memory.bytes };
		});
		ready[workers] = m.readyAt;
		out.push(figure(`WordPress cold boot to first page, ${workers} worker(s)`, m.firstPage, null, 'ms', 'report', true,
			'navigation start to the first front-page response through the service worker'));
		out.push(figure(`browser memory after WordPress boot, ${workers} worker(s)`, m.page / 2 ** 20, null, 'MiB',
			workers === 4 ? '<= 1024 MiB' : 'report', workers !== 4 || m.page <= 2 ** 30,
			'performance.measureUserAgentSpecificMemory() (page, workers, shared memory)'));
		if (workers === 1) {
			out.push(figure('shared memory size vs stored file bytes', m.memoryBytes, m.stored, 'bytes', '<= 1.25',
				m.memoryBytes / m.stored <= 1.25,
				'WebAssembly.Memory size (filesystem, worker heaps, stacks) over the sum of file sizes under /wordpress after boot'));
		}
		await context.close();
	}
	out.push(figure('one more worker ready (mean of the 2nd to 4th)', (ready[4] - ready[1]) / 3, null, 'ms', 'report', true,
		'(all-ready time with 4 workers - with 1) / 3'));
	return out;
}
