// Entry of one PHP worker (a module Web Worker). It only wires things up:
// attaches the Rust worker module to the shared memory, starts php-wasm from
// the compiled module the host sent, mounts shared-fs at the document root,
// and runs jobs: Rust plans them, php-wasm runs PHP, Rust writes the reply.

import { loadPHPRuntime, PHP, __private__dont__use, setPhpIniEntries } from '@php-wasm/universal';
import * as jspiLoader from '@php-wasm/web-8-3/jspi/php_8_3.js';
import * as asyncifyLoader from '@php-wasm/web-8-3/asyncify/php_8_3.js';
import * as bindings from '@bindgen/worker';
import { createSharedFs, createSyscallHooks, FLOCK_POLYFILL } from './shared-fs-mount.js';

// Safe-point word values (shared-fs's owner.rs).
const OUTSIDE = 0;
const INSIDE = 1;
const KILLED = 3;

let php;
let syscalls;
let rust; // `bindings` with every call wrapped in the safe-point handshake
// One job at a time: a php-wasm runtime serves one request at a time.
let previousJob = Promise.resolve();

/** Marks this worker as inside module code for the duration of each call
 *  (worker/src/safe_point.rs); once the host has stopped it, waits until
 *  it is terminated. */
function guard(memory, address) {
	const words = new Int32Array(memory.buffer);
	const index = address >> 2;
	const enter = () => {
		// Anything but OUTSIDE means the host is stopping us: sleep until it does.
		while (Atomics.compareExchange(words, index, OUTSIDE, INSIDE) !== OUTSIDE) {
			Atomics.wait(words, index, Atomics.load(words, index));
		}
	};
	const leave = () => {
		// KILL_PENDING: the host asked while we were inside; now we are out for good.
		if (Atomics.compareExchange(words, index, INSIDE, OUTSIDE) !== INSIDE) Atomics.store(words, index, KILLED);
	};
	const wrapped = {};
	for (const [name, value] of Object.entries(bindings)) {
		wrapped[name] =
			typeof value !== 'function'
				? value
				: (...args) => {
						enter();
						try {
							return value(...args);
						} finally {
							leave();
						}
					};
	}
	return wrapped;
}

async function boot({ memory, memoryDescriptor, workerModule, phpModule, config, archives }) {
	// Without cross-origin isolation the host cannot send a shared memory:
	// this (single) worker makes its own, private filesystem.
	memory ??= new WebAssembly.Memory(memoryDescriptor);
	bindings.initSync({ module: workerModule, memory });
	bindings.configure(config);
	if (!bindings.serves_php()) {
		// The file server: the shared filesystem without PHP.
		bindings.attach([]);
		rust = guard(memory, bindings.safe_point_address());
		return;
	}
	// The hooks run only once the filesystem is attached, through `rust`.
	const calls = new Proxy({}, { get: (_, name) => rust[name] });
	syscalls = createSyscallHooks(calls, bindings.worker_index(), memory);
	const phpHeap = {};
	const phpLoader = { jspi: jspiLoader, asyncify: asyncifyLoader }[bindings.php_build()];
	const runtimeId = await loadPHPRuntime(phpLoader, {
		instantiateWasm(imports, receiveInstance) {
			syscalls.wrapImports(imports);
			WebAssembly.instantiate(phpModule, imports).then((instance) => {
				phpHeap.memory = imports.env.memory ?? instance.exports.memory;
				phpHeap.memalign = instance.exports.emscripten_builtin_memalign;
				syscalls.setMemory(phpHeap.memory);
				receiveInstance(instance, phpModule);
			});
			return {};
		},
	});
	php = new PHP(runtimeId);
	// OPcache runs only under SAPIs it knows; php-wasm's own name ("wasm")
	// is not one. PHP's built-in web server is what this runtime is to PHP
	// code (unlike "cli", which WordPress and plugins take for a shell).
	await php.setSapiName('cli-server');
	syscalls.setFS(php[__private__dont__use].FS);
	await setPhpIniEntries(php, {
		// OPcache in this worker's memory, never stale across workers: every
		// include checks the file's mtime on the shared FS, and a file
		// changed within the last 2 s is not cached, so any later write
		// changes the mtime it was cached under. What a timestamp cannot
		// show (a rename or an mtime set into the past) moves shared-fs's
		// mtime-reuse epoch, and the job then resets OPcache first (README).
		// The realpath cache is flushed whenever a name was removed or
		// replaced anywhere (shared-fs's names epoch), the only way a cached
		// resolution can go stale.
		'opcache.enable': '1',
		'opcache.file_cache_only': '0',
		'opcache.file_cache': '',
		'opcache.validate_timestamps': '1',
		'opcache.revalidate_freq': '0',
		'opcache.file_update_protection': '2',
		'opcache.memory_consumption': '64',
		'opcache.max_accelerated_files': '4000',
		realpath_cache_size: '4096K',
		// php.wasm's flock() is a no-op stub; FLOCK_POLYFILL replaces it.
		disable_functions: 'flock',
	});
	php.mkdir('/internal/shared/preload');
	php.writeFile('/internal/shared/preload/shared-fs-flock.php', FLOCK_POLYFILL);
	php.onMessage((data) => syscalls.onPhpMessage(data));
	// The PHP runtime started while the first worker may still be installing
	// the site; attaching waits for it.
	bindings.attach(archives ?? []);
	rust = guard(memory, bindings.safe_point_address());
	// The scope's URL is the site's URL (WordPress reads these constants
	// before its stored options).
	const siteUrl = rust.site_url();
	if (siteUrl) {
		php.defineConstant('WP_HOME', siteUrl);
		php.defineConstant('WP_SITEURL', siteUrl);
	}
	const documentRoot = rust.document_root_path();
	php.mkdir(documentRoot);
	await php.mount(documentRoot, (_php, FS, mountPoint) => {
		const sharedFs = createSharedFs(FS, rust, syscalls, memory, phpHeap);
		FS.mount(sharedFs.type, { root: documentRoot }, mountPoint);
		sharedFs.acceleratePaths(mountPoint);
		return () => FS.unmount(mountPoint);
	});
}

/** A trap or abort inside php.wasm, as opposed to a PHP error. */
function isRuntimeDeath(error) {
	return error instanceof WebAssembly.RuntimeError || /^Aborted\(/.test(String(error?.message ?? ''));
}

async function runJob(job, port) {
	const plan = rust.start_job(job);
	let reply = plan.reply;
	let crash;
	if (plan.php && !php) {
		// The file server cannot run it: back to the host, reply port and all.
		self.postMessage(rust.needs_php_event(plan.id), [port]);
		return;
	}
	if (plan.php) {
		let response;
		try {
			// Cache resets Rust asked for; they take effect as the next run starts.
			if (plan.prelude) await php.run({ code: plan.prelude });
			response = await php.run(plan.php);
		} catch (error) {
			response = error;
			if (isRuntimeDeath(error)) crash = error;
		}
		reply = rust.finish_job(plan.kind, response, plan.requestUri);
	}
	syscalls?.requestEnded(); // none in the file server
	port.postMessage(reply);
	if (crash) {
		// This runtime is unusable: the host stops and replaces this worker.
		self.postMessage(rust.crashed_event(String(crash?.stack ?? crash)));
		previousJob = new Promise(() => {});
	} else if (plan.id !== null) {
		self.postMessage(rust.job_done_event(plan.id));
	}
}

self.onmessage = (event) => {
	const message = event.data;
	if (message.type === 'boot') {
		boot(message).then(
			() => self.postMessage(rust.ready_event()),
			(error) => {
				const text = String(error?.stack ?? error);
				// Before the Rust module is up, report in plain text.
				self.postMessage(rust ? rust.boot_failed_event(text) : text);
			}
		);
	} else if (message.type === 'job') {
		previousJob = previousJob.then(() => runJob(message.job, message.port)).catch((error) => {
			console.error('worker job failed', error);
		});
	}
};
