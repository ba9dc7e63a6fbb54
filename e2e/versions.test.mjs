// PHP and WordPress versions (`?php=`, `?wp=`, startPlayground's `php` and
// `wp`): each PHP version boots WordPress and serves its front page from
// that PHP; each bundled WordPress build boots; a wordpress.org-style zip
// at a URL is installed; a version the runtime lacks is named. Smoke tests
// on one worker and temporary sites; the other e2e files use the default.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { distDir, openPlayground, useBrowserAndServer } from './harness.mjs';
import { WORDPRESS_BUILDS_RELEASE } from '../playground/serve.mjs';

const env = useBrowserAndServer();

/** The client's versions, and the front page (through the service worker)
 *  with a comment naming the PHP that rendered it. */
async function frontPage(page) {
	return page.evaluate(async () => {
		const client = await window.playground;
		await client.writeFile(
			'/wordpress/wp-content/mu-plugins/php-version.php',
			"<?php add_action('wp_footer', function () { echo '<!-- php ' . PHP_VERSION . ' -->'; });"
		);
		const response = await fetch(client.absoluteUrl);
		return {
			phpVersion: client.phpVersion,
			wpVersion: client.wpVersion,
			phpBuild: client.phpBuild,
			status: response.status,
			text: await response.text(),
		};
	});
}

const generator = (text) => /<meta name="generator" content="WordPress ([^"]+)"/.exec(text)?.[1];

describe('PHP versions', () => {
	const runs = [
		...['7.4', '8.0', '8.1', '8.2', '8.3', '8.4', '8.5'].map((php) => ({ php, build: 'jspi' })),
		{ php: '7.4', build: 'asyncify' },
	];
	for (const { php, build } of runs) {
		test(`PHP ${php} (${build}) boots WordPress and renders its front page`, async () => {
			const { context, page, logs } = await openPlayground(
				env.browser,
				env.origin,
				`?php=${php}&phpBuild=${build}&workers=1&storage=temp`
			);
			try {
				const got = await frontPage(page);
				assert.equal(got.status, 200, got.text.slice(0, 500));
				assert.equal(got.phpVersion, php);
				assert.equal(got.phpBuild, build);
				const rendered = /<!-- php (\d+\.\d+)\.\d+ -->/.exec(got.text)?.[1];
				assert.equal(rendered, php, `PHP_VERSION on the front page\n${logs.join('\n')}`);
				assert.equal(generator(got.text), '6.5.5');
				assert.equal(got.wpVersion, '6.5.5');
				assert.doesNotMatch(got.text, /<b>(Fatal error|Parse error|Warning|Deprecated)<\/b>/);
			} finally {
				await context.close();
			}
		});
	}
});

describe('WordPress versions', () => {
	const builds = [
		{ wp: '6.2', release: '6.2.6' },
		{ wp: '6.3', release: '6.3.5' },
		{ wp: '6.4', release: '6.4.5' },
		{ wp: 'beta', release: '6.6-RC3' },
		{ wp: 'nightly', release: '6.7-alpha-58716' },
	];
	for (const { wp, release } of builds) {
		test(`wp=${wp} boots WordPress ${release}`, async () => {
			const { context, page } = await openPlayground(env.browser, env.origin, `?wp=${wp}&workers=1&storage=temp`);
			try {
				const got = await frontPage(page);
				assert.equal(got.status, 200, got.text.slice(0, 500));
				assert.equal(generator(got.text), release);
				assert.equal(got.wpVersion, release);
				const loaded = await page.evaluate(async () => {
					const client = await window.playground;
					return (await client.run({ code: "<?php require 'wp-load.php'; echo $GLOBALS['wp_version'];" })).text;
				});
				assert.equal(loaded, release);
			} finally {
				await context.close();
			}
		});
	}

	test('a saved site reopens with its WordPress and that build\'s static files', async () => {
		// A fresh context: its saved sites go with it.
		const { context, page } = await openPlayground(env.browser, env.origin, '?wp=6.3&workers=1&site-slug=versions-6-3');
		const css = 'wp-includes/css/dist/block-library/style.min.css';
		try {
			assert.equal(await page.evaluate(async () => (await window.playground).wpVersion), '6.3.5');
			await page.goto(`${env.origin}/?workers=1&site-slug=versions-6-3`);
			const got = await page.evaluate(async (css) => {
				const client = await window.playground;
				const response = await fetch(client.absoluteUrl + css);
				return { restored: client.restored, wpVersion: client.wpVersion, status: response.status, text: await response.text() };
			}, css);
			assert.equal(got.restored, true);
			assert.equal(got.wpVersion, '6.3.5');
			assert.equal(got.status, 200);
			const of = (key) => readFileSync(join(distDir, 'wordpress', WORDPRESS_BUILDS_RELEASE, key, css), 'utf8');
			assert.notEqual(of('wp-6.3'), of('wp-6.5'), 'the two builds differ in this file');
			assert.equal(got.text, of('wp-6.3'));
		} finally {
			await context.close();
		}
	});

	test('wp=<URL of a wordpress.org-style zip> installs it', async () => {
		const { context, page, logs } = await openPlayground(env.browser, env.origin, '?wp=6.4&workers=1&storage=temp');
		try {
			const got = await page.evaluate(async () => {
				// wordpress.org's layout, made from the 6.4 build: everything in
				// `wordpress/`, no wp-config.php, no database, no SQLite drop-in.
				const built = await window.playground;
				for (const path of ['wp-config.php', 'wp-content/db.php']) await built.unlink(`/wordpress/${path}`);
				for (const path of ['wp-content/database', 'wp-content/mu-plugins']) await built.rmdir(`/wordpress/${path}`);
				const names = await built.listFiles('/wordpress');
				await built.mkdir('/wordpress/wordpress');
				for (const name of names) await built.mv(`/wordpress/${name}`, `/wordpress/wordpress/${name}`);
				const zip = await built.exportSite();
				const url = URL.createObjectURL(new Blob([zip], { type: 'application/zip' }));
				const { startPlayground } = await import('/host/index.js');
				const client = await startPlayground({ wp: url, workers: 1, storage: 'temp' });
				const response = await fetch(client.absoluteUrl);
				const title = await client.run({ code: "<?php require 'wp-load.php'; echo get_option('blogname'), ' ', get_userdata(1)->user_login;" });
				return { wpVersion: client.wpVersion, status: response.status, text: await response.text(), title: title.text };
			});
			assert.equal(got.status, 200, `${got.text.slice(0, 500)}\n${logs.join('\n')}`);
			assert.equal(got.wpVersion, '6.4.5');
			assert.equal(generator(got.text), '6.4.5');
			assert.equal(got.title, 'My WordPress Website admin');
		} finally {
			await context.close();
		}
	});
});

test('a version the runtime lacks, or a zip that cannot be fetched, is named', async () => {
	const { context, page } = await openPlayground(env.browser, env.origin, '?site=blank&workers=1&storage=temp');
	try {
		const messages = await page.evaluate(async () => {
			const { startPlayground } = await import('/host/index.js');
			const fail = (options) => startPlayground({ workers: 1, storage: 'temp', ...options }).then(() => 'booted', (e) => e.message);
			return {
				php: await fail({ php: '5.6' }),
				wp: await fail({ wp: '6.1' }),
				zip: await fail({ wp: '/no-such-wordpress.zip' }),
				blueprint: await fail({ blueprint: { preferredVersions: { php: '8.3', wp: '5.9' } } }),
			};
		});
		assert.match(messages.php, /^PHP 5\.6 is not available: this runtime provides PHP 8\.5, 8\.4, 8\.3, 8\.2, 8\.1, 8\.0, 7\.4/);
		assert.match(messages.wp, /^WordPress 6\.1 is not available: .*6\.5, 6\.4, 6\.3, 6\.2, beta \(6\.6-RC3\), nightly .*URL of a WordPress zip/);
		assert.match(messages.zip, /cannot fetch \/no-such-wordpress\.zip: HTTP 404/);
		assert.match(messages.blueprint, /WordPress 5\.9 is not available.*preferredVersions\.wp/);
	} finally {
		await context.close();
	}
});
