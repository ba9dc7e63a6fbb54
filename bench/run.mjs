// Every speed figure, each against a baseline measured in the same run:
//   node bench/run.mjs [--quick] [--only wordpressVsPeer,...]   (make bench builds first)
// Prints a table and writes bench/results/latest.json. Figures 1-3 come from
// shared-fs's native benchmark (shared-fs/examples/bench.rs), 4-10 from
// Chromium (bench/browser.mjs); the WordPress ones (9, 10) have Playground's
// own engine as their peer, built by `node playground/build.mjs --bench-peer`.
// Absolute times drift on these machines; read the ratios. The run fails
// (exit 1) when the peer is misconfigured: its OPcache off, or its front
// page more than 1.6x slower than the same engine with OPcache in memory
// (Playground's file cache measures 1.03-1.35x of it here; OPcache off, 2.1-2.3x).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
	editorScaling,
	memoryAfterBoot,
	burstAfterReady,
	persistence,
	phpFilesystem,
	requestProfile,
	returningVisit,
	scaling,
	serviceWorkerOverhead,
	soak,
	sqliteDriver,
	withBrowser,
	wordpressVsPeer,
} from './browser.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const results = join(root, 'bench', 'results');
mkdirSync(results, { recursive: true });

function native() {
	const out = join(results, 'native.json');
	const args = ['run', '--release', '-q', '-p', 'shared-fs', '--example', 'bench', '--', '--json', out];
	if (quick) args.push('--quick');
	execFileSync('cargo', args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
	const round = (x) => (typeof x === 'number' ? Math.round(x * 1000) / 1000 : x);
	return JSON.parse(readFileSync(out, 'utf8')).map((r) => ({
		...r,
		value: round(r.value),
		baseline: round(r.baseline),
		ratio: round(r.ratio),
	}));
}

function table(rows) {
	const cells = rows.map((r) => [
		r.figure,
		`${r.value} ${r.unit}`,
		r.baseline === null ? '' : `${r.baseline} ${r.unit}`,
		r.ratio === null ? '' : String(r.ratio),
		r.goal,
		r.goal === 'report' ? '' : r.met ? 'yes' : 'NO',
	]);
	const head = ['figure', 'value', 'baseline', 'ratio', 'goal', 'met'];
	const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
	const line = (c) => c.map((x, i) => x.padEnd(widths[i])).join(' | ');
	return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...cells.map(line)].join('\n');
}

// `--only wordpressVsPeer,soak`: those browser figures alone (no native ones).
const browserFigures = {
	phpFilesystem,
	scaling,
	serviceWorkerOverhead,
	requestProfile,
	wordpressVsPeer,
	burstAfterReady,
	sqliteDriver,
	editorScaling,
	memoryAfterBoot,
	persistence,
	returningVisit,
	soak,
};
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? process.argv[onlyArg + 1]?.split(',') ?? [] : null;
for (const name of only ?? []) if (!browserFigures[name]) throw new Error(`--only: no figure set ${name}; there are ${Object.keys(browserFigures).join(', ')}`);

const started = Date.now();
const rows = only ? [] : [...native()];
rows.push(
	...(await withBrowser(async (browser, origin) => {
		const out = [];
		for (const [name, measure] of Object.entries(browserFigures)) {
			if (!only || only.includes(name)) out.push(...(await measure(browser, origin, { quick })));
		}
		return out;
	}))
);
const machine = `${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown cpu'}`;
console.log(table(rows));
console.log(`\nmachine: ${machine}; ${Math.round((Date.now() - started) / 1000)} s`);
// A partial run (--only) leaves the full run's file as it was.
const file = join(results, only ? 'partial.json' : 'latest.json');
writeFileSync(file, JSON.stringify({ machine, date: new Date().toISOString(), quick, figures: rows }, null, 2));
console.log(`written: ${file}`);
// A required figure checks a baseline itself (the peer against its control,
// bench/browser.mjs): when it is not met the ratios against it are wrong.
const invalid = rows.filter((r) => r.required && !r.met);
if (invalid.length) {
	for (const r of invalid) console.error(`FAILED: ${r.figure}: ${r.value} vs ${r.baseline} ${r.unit}, ratio ${r.ratio}, goal ${r.goal}`);
	console.error('the peer is not a fair baseline (bench/peer/peer-worker.js): the figures above are not valid');
	process.exitCode = 1;
}
