// The SQLite integration 3.0.2 (issue 24): a saved site made with 2.1.11
// is upgraded in place and keeps its data, and concurrent writers on the
// new driver (its own metadata tables included) lose nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openPlayground, useBrowserAndServer } from './harness.mjs';
import { bootSiteWithSqliteIntegration, OLD_SQLITE_ZIP, sqliteIntegrationFiles } from './fixtures/sqlite-integration.mjs';

const env = useBrowserAndServer();

const wp = (page, code, worker) =>
	page.evaluate(
		async ([code, worker]) => {
			const out = await (await window.playground).run({ code: `<?php require_once '/wordpress/wp-load.php'; ${code}`, worker });
			return out.errors ? `${out.text}\n${out.errors}` : out.text;
		},
		[code, worker]
	);

// PRAGMA is SQLite's, not MySQL's: asked of SQLite itself.
const INTEGRITY = `(new PDO('sqlite:/wordpress/wp-content/database/.ht.sqlite'))->query('PRAGMA integrity_check')->fetchColumn()`;

const OLD_DRIVER_TABLES = `$db = new PDO('sqlite:/wordpress/wp-content/database/.ht.sqlite');
	$tables = $db->query("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('_mysql_data_types_cache', '_wp_sqlite_global_variables') ORDER BY name")->fetchAll(PDO::FETCH_COLUMN);`;

test('a saved site made with SQLite integration 2.1.11 is upgraded in place and keeps its data', async () => {
	const context = await env.browser.newContext();
	const logs = [];
	const watch = (page) => page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
	try {
		// The site as today's releases made it: a WordPress build with the
		// 2.1.11 integration in mu-plugins and its db.php drop-in.
		const maker = await context.newPage();
		watch(maker);
		await maker.goto(`${env.origin}/?workers=1&storage=temp`);
		await maker.evaluate(() => window.playground);
		await maker.evaluate(bootSiteWithSqliteIntegration, {
			files: sqliteIntegrationFiles(OLD_SQLITE_ZIP),
			options: { workers: 1, siteSlug: 'made-with-2-1-11' },
		});
		const made = await maker.evaluate(
			async (code) => (await window.siteWithDriver.run({ code })).text,
			`<?php require '/wordpress/wp-load.php';
			$id = wp_insert_post(['post_title' => 'Written by 2.1.11', 'post_status' => 'publish']);
			${OLD_DRIVER_TABLES}
			echo $id > 0 ? 'post' : 'no post', '|', implode(',', $tables);`
		);
		assert.equal(made, 'post|_mysql_data_types_cache', 'made by the old driver, which keeps no global-variables table');
		await maker.close();

		// Reopened with a damaged integration zip: no upgrade, a clear error
		// in the console, and the site as it was.
		const damaged = async (route) => route.fulfill({ status: 200, contentType: 'application/zip', body: 'PK not a zip' });
		await context.route(/\/wordpress\/sqlite-database-integration\.zip$/, damaged);
		const kept = await context.newPage();
		watch(kept);
		await kept.goto(`${env.origin}/?site-slug=made-with-2-1-11&workers=1`);
		assert.equal(await kept.evaluate(async () => (await window.playground).restored), true);
		assert.ok(logs.some((l) => l.includes('the SQLite integration could not be upgraded')), logs.join('\n'));
		assert.equal(
			await wp(kept, `${OLD_DRIVER_TABLES} echo defined('SQLITE_DRIVER_VERSION') ? SQLITE_DRIVER_VERSION : 'old', '|', implode(',', $tables), '|', $wpdb->get_var("SELECT post_title FROM $wpdb->posts WHERE post_title = 'Written by 2.1.11'");`),
			'old|_mysql_data_types_cache|Written by 2.1.11'
		);
		await kept.close();
		await context.unroute(/\/wordpress\/sqlite-database-integration\.zip$/, damaged);
		logs.length = 0;

		// Reopened: upgraded, converted at boot, data kept, and writable.
		const reopened = await context.newPage();
		watch(reopened);
		await reopened.goto(`${env.origin}/?site-slug=made-with-2-1-11&workers=2`);
		const client = await reopened.evaluate(async () => {
			const c = await window.playground;
			return { restored: c.restored, notice: c.storageNotice ?? null };
		});
		assert.deepEqual(client, { restored: true, notice: null });
		assert.ok(logs.some((l) => l.includes('upgraded from 2.1.11 to 3.0.2')), logs.join('\n'));
		assert.equal(
			await wp(reopened, `${OLD_DRIVER_TABLES} echo SQLITE_DRIVER_VERSION, '|', implode(',', $tables);`, 1),
			'3.0.2|_mysql_data_types_cache,_wp_sqlite_global_variables',
			'the new driver converted the database (its global-variables table is there)'
		);
		const titles = `echo implode(',', $wpdb->get_col("SELECT post_title FROM $wpdb->posts WHERE post_title LIKE 'Written by %' ORDER BY ID"));`;
		assert.equal(await wp(reopened, titles, 0), 'Written by 2.1.11');
		assert.equal(
			await wp(reopened, `wp_insert_post(['post_title' => 'Written by 3.0.2', 'post_status' => 'publish']);
				echo implode(',', $wpdb->get_col("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_NAME = '$wpdb->posts' AND COLUMN_NAME IN ('ID', 'post_title') ORDER BY ORDINAL_POSITION"));`, 1),
			'ID,post_title'
		);
		const front = await reopened.evaluate(async () => (await fetch((await window.playground).absoluteUrl)).status);
		assert.equal(front, 200);

		// Reloaded: no second upgrade, both posts, an intact database.
		logs.length = 0;
		await reopened.reload();
		assert.equal(await reopened.evaluate(async () => (await window.playground).restored), true);
		assert.ok(!logs.some((l) => l.includes('upgraded from')), logs.join('\n'));
		assert.equal(await wp(reopened, titles), 'Written by 2.1.11,Written by 3.0.2');
		assert.equal(await wp(reopened, `echo ${INTEGRITY};`), 'ok');
	} catch (e) {
		e.message += `\n${logs.join('\n')}`;
		throw e;
	} finally {
		await context.close();
	}
});

describe('concurrent writers on the new driver, 4 workers', () => {
	let page, context, logs;
	before(async () => {
		({ page, context, logs } = await openPlayground(env.browser, env.origin, '?workers=4&storage=temp'));
	});
	after(() => context?.close());

	const onEvery = (workers, code) =>
		page.evaluate(
			async ([workers, code]) => {
				const c = await window.playground;
				const runs = workers.map((worker) =>
					c.run({ worker, code: `<?php require_once '/wordpress/wp-load.php'; ${code}` }).then((o) => o.text + o.errors)
				);
				return Promise.all(runs);
			},
			[workers, code]
		);

	test('4 workers insert posts at once: every post once, integrity ok', async () => {
		const outs = await onEvery([0, 1, 2, 3], `$ids = [];
			for ($i = 0; $i < 10; $i++) { $ids[] = wp_insert_post(['post_title' => "concurrent " . uniqid('', true), 'post_status' => 'publish']); }
			echo count(array_filter($ids, fn($id) => is_int($id) && $id > 0));`);
		assert.deepEqual(outs, ['10', '10', '10', '10'], logs.join('\n'));
		assert.equal(
			await wp(page, `echo $wpdb->get_var("SELECT COUNT(*) FROM $wpdb->posts WHERE post_title LIKE 'concurrent %'"), '|', $wpdb->get_var("SELECT COUNT(DISTINCT post_title) FROM $wpdb->posts WHERE post_title LIKE 'concurrent %'"), '|', ${INTEGRITY};`),
			'40|40|ok'
		);
	});

	test('REST creates through the service worker at once: every one 201 and stored', async () => {
		// Requests act as the admin (no cookie or nonce to juggle).
		await page.evaluate(async () =>
			(await window.playground).writeFile(
				'/wordpress/wp-content/mu-plugins/rest-as-admin.php',
				"<?php add_filter('determine_current_user', fn($id) => $id ?: 1, 30);"
			)
		);
		const statuses = await page.evaluate(async () => {
			const c = await window.playground;
			const create = (i) =>
				fetch(`${c.absoluteUrl}?rest_route=/wp/v2/posts`, {
					method: 'POST',
					headers: { 'content-type': 'application/json' },
					body: JSON.stringify({ title: `rest ${i}`, status: 'publish' }),
				}).then((r) => r.status);
			return Promise.all(Array.from({ length: 12 }, (_, i) => create(i)));
		});
		assert.deepEqual(statuses, Array(12).fill(201));
		assert.equal(await wp(page, `echo $wpdb->get_var("SELECT COUNT(DISTINCT post_title) FROM $wpdb->posts WHERE post_title LIKE 'rest %' AND post_status = 'publish'");`), '12');
	});

	test('a JOINed UPDATE from two workers at once loses no increment', async () => {
		assert.equal(
			await wp(page, `for ($i = 0; $i < 5; $i++) { $id = wp_insert_post(['post_title' => "bump $i", 'post_status' => 'publish', 'menu_order' => 0]); add_post_meta($id, 'bump', 1); } echo 'ok';`),
			'ok'
		);
		const outs = await onEvery([0, 1], `$changed = [];
			for ($i = 0; $i < 10; $i++) {
				$changed[] = $wpdb->query("UPDATE $wpdb->posts p JOIN $wpdb->postmeta m ON m.post_id = p.ID SET p.menu_order = p.menu_order + 1 WHERE m.meta_key = 'bump'");
			}
			echo implode(',', $changed), $wpdb->last_error;`);
		assert.deepEqual(outs, Array(2).fill(Array(10).fill(5).join(',')));
		assert.equal(
			await wp(page, `echo implode(',', $wpdb->get_col("SELECT p.menu_order FROM $wpdb->posts p JOIN $wpdb->postmeta m ON m.post_id = p.ID WHERE m.meta_key = 'bump' ORDER BY p.ID"));`),
			'20,20,20,20,20'
		);
	});

	test('DDL on one worker while another reads the schema: every read whole, nothing lost', async () => {
		assert.equal(await wp(page, `$wpdb->query("CREATE TABLE {$wpdb->prefix}probe_ddl (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))"); echo $wpdb->last_error ?: 'ok';`), 'ok');
		const [altered, read] = await page.evaluate(async () => {
			const c = await window.playground;
			const prelude = `<?php require_once '/wordpress/wp-load.php'; $t = $wpdb->prefix . 'probe_ddl';`;
			const alter = c.run({
				worker: 0,
				code: `${prelude} for ($k = 1; $k <= 8; $k++) { $wpdb->query("ALTER TABLE $t ADD COLUMN c$k INT NOT NULL DEFAULT $k"); $wpdb->insert($t, ['v' => "row $k"]); if ($wpdb->last_error) { echo $wpdb->last_error; break; } } echo 'altered';`,
			});
			// Each read: SHOW COLUMNS and information_schema agree with the
			// table itself, and the columns are id, v, c1..ck for some k.
			const reads = c.run({
				worker: 1,
				code: `${prelude} $bad = [];
					for ($i = 0; $i < 40; $i++) {
						$shown = $wpdb->get_col("SHOW COLUMNS FROM $t");
						$schema = $wpdb->get_col("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_NAME = '$t' ORDER BY ORDINAL_POSITION");
						$row = $wpdb->get_row("SELECT * FROM $t ORDER BY id DESC LIMIT 1", ARRAY_A);
						$expected = array_merge(['id', 'v'], array_map(fn($k) => "c$k", range(1, max(1, count($shown) - 2))));
						if (count($shown) === 2) { $expected = ['id', 'v']; }
						if ($wpdb->last_error || $shown !== $expected) { $bad[] = $wpdb->last_error ?: implode(',', $shown); }
						if ($row !== null && array_slice(array_keys($row), 0, 2) !== ['id', 'v']) { $bad[] = 'row ' . implode(',', array_keys($row)); }
						if (count($schema) < 2 || array_slice($schema, 0, 2) !== ['id', 'v']) { $bad[] = 'schema ' . implode(',', $schema); }
					}
					echo $bad ? implode(' / ', array_unique($bad)) : 'whole';`,
			});
			return [(await alter).text + (await alter).errors, (await reads).text + (await reads).errors];
		});
		assert.equal(altered, 'altered');
		assert.equal(read, 'whole');
		assert.equal(
			await wp(page, `$t = $wpdb->prefix . 'probe_ddl'; echo implode(',', $wpdb->get_col("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_NAME = '$t' ORDER BY ORDINAL_POSITION")), '|', $wpdb->get_var("SELECT COUNT(*) FROM $t"), '|', $wpdb->get_var("SELECT SUM(c8) FROM $t"), '|', ${INTEGRITY};`),
			'id,v,c1,c2,c3,c4,c5,c6,c7,c8|8|64|ok'
		);
	});
});
