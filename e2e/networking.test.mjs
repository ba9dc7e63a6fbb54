// PHP's outgoing HTTP through the worker's fetch(): WordPress's
// wp_remote_get/post and file_get_contents/fopen of http URLs, against a
// local server on another loopback port that allows any origin (CORS).
// Failures are clean PHP errors, never a dead worker; `?networking=no`
// gives the old clear error and sends nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { openPlayground, useBrowserAndServer } from './harness.mjs';

const env = useBrowserAndServer();
let remote; // the server PHP talks to
const hits = [];

before(async () => {
	remote = createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const cors = {
				'access-control-allow-origin': '*',
				'access-control-allow-headers': '*',
				'access-control-allow-methods': '*',
				// content-encoding: to see that PHP is not told of it (the browser decoded the body).
				'access-control-expose-headers': 'x-custom, content-encoding',
			};
			if (req.method === 'OPTIONS') return res.writeHead(204, cors).end();
			hits.push(`${req.method} ${req.url}`);
			const path = new URL(req.url, 'http://x').pathname;
			if (path === '/hello') {
				return res.writeHead(200, { ...cors, 'content-type': 'text/plain', 'x-custom': 'custom value' }).end('hello from the server');
			}
			if (path === '/teapot') return res.writeHead(418, { ...cors, 'content-type': 'text/plain' }).end('short and stout');
			if (path === '/missing') return res.writeHead(404, cors).end('no such thing');
			if (path === '/redirect') return res.writeHead(302, { ...cors, location: '/hello' }).end();
			if (path === '/gzip') {
				return res.writeHead(200, { ...cors, 'content-encoding': 'gzip' }).end(gzipSync('unzipped by the browser'));
			}
			if (path === '/slow') return setTimeout(() => res.writeHead(200, cors).end('late'), 3000);
			if (path === '/echo') {
				const body = Buffer.concat(chunks);
				return res.writeHead(200, { ...cors, 'content-type': 'application/json' }).end(
					JSON.stringify({
						method: req.method,
						query: new URL(req.url, 'http://x').search,
						contentType: req.headers['content-type'] ?? null,
						test: req.headers['x-test'] ?? null,
						body: body.toString('latin1'),
					})
				);
			}
			res.writeHead(500, cors).end('unknown path');
		});
	});
	await new Promise((r) => remote.listen(0, '127.0.0.1', r));
});
after(() => new Promise((r) => remote?.close(r)));

const base = () => `http://127.0.0.1:${remote.address().port}`;

/** Runs PHP on `worker` and returns its JSON output, failing with PHP's errors. */
async function runJson(page, code, worker = 0) {
	const r = await page.evaluate(async ([code, worker]) => (await window.playground).run({ code, worker }), [code, worker]);
	try {
		return JSON.parse(r.text);
	} catch {
		throw new Error(`PHP printed ${JSON.stringify(r.text)}; errors: ${r.errors}`);
	}
}

const WP = `<?php require '/wordpress/wp-load.php';`;
// Collects PHP's warnings: a failed open reports the reason, then PHP's own
// "Failed to open stream" line.
const WARNINGS = `$warnings = []; set_error_handler(function ($n, $m) use (&$warnings) { $warnings[] = $m; return true; });`;

describe('networking on (WordPress)', () => {
	let page, context;
	before(async () => {
		({ page, context } = await openPlayground(env.browser, env.origin, '?site=wordpress&workers=2'));
	});
	after(() => context?.close());

	test('wp_remote_get: status, headers, body', async () => {
		const out = await runJson(
			page,
			`${WP} $r = wp_remote_get('${base()}/hello');
			echo json_encode(is_wp_error($r) ? $r->get_error_message() : [wp_remote_retrieve_response_code($r),
				wp_remote_retrieve_response_message($r), wp_remote_retrieve_header($r, 'x-custom'),
				wp_remote_retrieve_header($r, 'content-type'), wp_remote_retrieve_body($r)]);`
		);
		assert.deepEqual(out, [200, 'OK', 'custom value', 'text/plain', 'hello from the server']);
	});

	test('wp_remote_post: a form body, and a JSON body with a custom header; GET data goes in the query', async () => {
		const out = await runJson(
			page,
			`${WP} $form = wp_remote_post('${base()}/echo', ['body' => ['a' => '1', 'b' => 'two words']]);
			$json = wp_remote_post('${base()}/echo', ['body' => '{"x":[1,2]}', 'headers' => ['Content-Type' => 'application/json', 'X-Test' => 'yes']]);
			$get = wp_remote_get('${base()}/echo', ['body' => ['q' => 'v']]);
			echo json_encode(array_map(fn($r) => is_wp_error($r) ? $r->get_error_message() : json_decode(wp_remote_retrieve_body($r), true), [$form, $json, $get]));`
		);
		assert.equal(out[0].method, 'POST');
		assert.equal(out[0].body, 'a=1&b=two+words');
		assert.match(out[0].contentType, /^application\/x-www-form-urlencoded/);
		assert.deepEqual([out[1].body, out[1].contentType, out[1].test], ['{"x":[1,2]}', 'application/json', 'yes']);
		assert.deepEqual([out[2].method, out[2].query, out[2].body], ['GET', '?q=v', '']);
	});

	test('an error status and a compressed body come through as the server sent them', async () => {
		const out = await runJson(
			page,
			`${WP} $t = wp_remote_get('${base()}/teapot'); $g = wp_remote_get('${base()}/gzip');
			echo json_encode([wp_remote_retrieve_response_code($t), wp_remote_retrieve_body($t),
				wp_remote_retrieve_response_code($g), wp_remote_retrieve_body($g), wp_remote_retrieve_header($g, 'content-encoding')]);`
		);
		assert.deepEqual(out, [418, 'short and stout', 200, 'unzipped by the browser', '']);
	});

	test('redirects are followed; with redirection 0 the request fails clearly', async () => {
		const out = await runJson(
			page,
			`${WP} $r = wp_remote_get('${base()}/redirect'); $off = wp_remote_get('${base()}/redirect', ['redirection' => 0]);
			echo json_encode([wp_remote_retrieve_response_code($r), wp_remote_retrieve_body($r),
				is_wp_error($off) ? $off->get_error_message() : wp_remote_retrieve_response_code($off)]);`
		);
		assert.deepEqual(out.slice(0, 2), [200, 'hello from the server']);
		assert.match(out[2], /does not follow redirects/);
	});

	test('an unreachable host is a WP_Error; the same worker then serves the next request', async () => {
		const out = await runJson(
			page,
			`${WP} $r = wp_remote_get('http://127.0.0.1:1/nothing-listens-here');
			echo json_encode([is_wp_error($r), is_wp_error($r) ? $r->get_error_code() : null, is_wp_error($r) ? $r->get_error_message() : null]);`
		);
		assert.deepEqual(out.slice(0, 2), [true, 'http_request_failed']);
		assert.match(out[2], /cannot reach http:\/\/127\.0\.0\.1:1\//);
		const next = await runJson(page, `${WP} echo json_encode(wp_remote_retrieve_body(wp_remote_get('${base()}/hello')));`);
		assert.equal(next, 'hello from the server');
		const workers = await page.evaluate(async () => (await window.playground).workers());
		assert.deepEqual(workers.map((w) => [w.crashed, w.restarts]), workers.map(() => [0, 0]));
	});

	test('a server slower than the timeout is a WP_Error naming the timeout', async () => {
		const out = await runJson(
			page,
			`${WP} $r = wp_remote_get('${base()}/slow', ['timeout' => 1]);
			echo json_encode(is_wp_error($r) ? $r->get_error_message() : wp_remote_retrieve_body($r));`
		);
		assert.match(out, /no answer from http:\/\/127\.0\.0\.1:\d+\/slow within 1 s/);
	});

	test('file_get_contents and fopen of http URLs', async () => {
		const out = await runJson(
			page,
			`<?php ${WARNINGS}
			$plain = file_get_contents('${base()}/hello');
			$post = file_get_contents('${base()}/echo', false, stream_context_create(['http' => [
				'method' => 'POST', 'header' => "Content-Type: text/plain\\r\\nX-Test: ctx", 'content' => "raw\\0body"]]));
			$teapot = file_get_contents('${base()}/teapot', false, stream_context_create(['http' => ['ignore_errors' => true]]));
			$missing = file_get_contents('${base()}/missing');
			$warning = implode(' | ', $warnings);
			$f = fopen('${base()}/hello', 'r');
			$meta = stream_get_meta_data($f)['wrapper_data']->headers;
			$first = fread($f, 5);
			fclose($f);
			echo json_encode([$plain, json_decode($post, true), $teapot, $missing, $warning, $meta[0], $first]);`
		);
		assert.equal(out[0], 'hello from the server');
		assert.deepEqual([out[1].method, out[1].contentType, out[1].test, out[1].body], ['POST', 'text/plain', 'ctx', 'raw\0body']);
		assert.equal(out[2], 'short and stout');
		assert.equal(out[3], false);
		assert.match(out[4], /answered HTTP\/1\.1 404/);
		assert.equal(out[5], 'HTTP/1.1 200 OK');
		assert.equal(out[6], 'hello');
	});
});

describe('networking on (asyncify build, blank site)', () => {
	let page, context;
	before(async () => {
		({ page, context } = await openPlayground(env.browser, env.origin, '?site=blank&workers=1&phpBuild=asyncify'));
	});
	after(() => context?.close());

	test('PHP code waits for fetch(); a stream, which cannot under asyncify, fails clearly without a trap', async () => {
		const out = await runJson(
			page,
			`<?php ${WARNINGS} $sent = PhpPool\\Http::send('GET', '${base()}/hello', [], '');
			$unreachable = PhpPool\\Http::send('GET', 'http://127.0.0.1:1/', [], '');
			$streamed = file_get_contents('${base()}/hello');
			echo json_encode([$sent['status'], $sent['body'], $unreachable['error'] ?? null, $streamed, implode(' | ', $warnings)]);`
		);
		assert.deepEqual(out.slice(0, 2), [200, 'hello from the server']);
		assert.match(out[2], /cannot reach/);
		assert.equal(out[3], false);
		assert.match(out[4], /asyncify build of PHP/);
		const workers = await page.evaluate(async () => (await window.playground).workers());
		assert.deepEqual(workers.map((w) => [w.crashed, w.restarts]), [[0, 0]]);
	});
});

describe('networking off (?networking=no)', () => {
	let page, context;
	before(async () => {
		({ page, context } = await openPlayground(env.browser, env.origin, '?site=wordpress&workers=1&networking=no'));
	});
	after(() => context?.close());

	test('wp_remote_get and file_get_contents fail with the clear error and nothing is sent', async () => {
		const before = hits.length;
		const out = await runJson(
			page,
			`${WP} ${WARNINGS} $r = wp_remote_get('${base()}/hello?off');
			$f = file_get_contents('${base()}/hello?off');
			echo json_encode([is_wp_error($r) ? $r->get_error_message() : 'sent', $f, implode(' | ', $warnings)]);`
		);
		assert.match(out[0], /PHP has no outgoing network/);
		assert.equal(out[1], false);
		assert.match(out[2], /PHP has no outgoing network/);
		assert.equal(hits.length, before, `the server saw ${hits.slice(before)}`);
	});
});
