// The SQLite integration new sites get (README: Versions): the zip inside
// the npm package package.json's `sqliteIntegration` pins, checked against
// the pinned integrity and plugin version, into node_modules/.sqlite-integration/.
// The package itself is not installed: its dependencies (php-wasm for Node)
// are not needed. Skips when the pinned zip is already there.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pin = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).sqliteIntegration;
export const zipPath = join(root, 'node_modules', '.sqlite-integration', 'sqlite-database-integration.zip');
const stampPath = `${zipPath}.integrity`;

function fetchPinned() {
	const scratch = mkdtempSync(join(tmpdir(), 'sqlite-integration-'));
	try {
		const [packed] = JSON.parse(
			execFileSync('npm', ['pack', pin.package, '--json', '--pack-destination', scratch, '--loglevel=error'], { encoding: 'utf8' })
		);
		const tarball = join(scratch, packed.filename);
		const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
		if (integrity !== pin.integrity) {
			throw new Error(`${pin.package}: integrity ${integrity}, pinned ${pin.integrity}`);
		}
		execFileSync('tar', ['-xzf', tarball, '-C', scratch, `package/${pin.file}`]);
		const zip = join(scratch, 'package', pin.file);
		const header = execFileSync('unzip', ['-p', zip, '*/load.php'], { encoding: 'utf8' });
		const version = /^\s*\*\s*Version:\s*(\S+)/m.exec(header)?.[1];
		if (version !== pin.version) throw new Error(`${pin.package} holds SQLite integration ${version}, pinned ${pin.version}`);
		mkdirSync(dirname(zipPath), { recursive: true });
		renameSync(zip, zipPath);
		writeFileSync(stampPath, pin.integrity);
	} finally {
		rmSync(scratch, { recursive: true, force: true });
	}
}

if (!existsSync(zipPath) || !existsSync(stampPath) || readFileSync(stampPath, 'utf8') !== pin.integrity) {
	console.log(`[setup] SQLite integration ${pin.version} from ${pin.package}`);
	fetchPinned();
}
