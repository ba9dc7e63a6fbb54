// Entry of one PHP worker (a module Web Worker). It only wires things up:
// attaches the Rust worker module to the shared memory, starts php-wasm from
// the compiled module the host sent, mounts shared-fs at the document root,
// and runs jobs: Rust plans them, php-wasm runs PHP, Rust writes the reply.

import { loadPHPRuntime, PHP, __private__dont__use, setPhpIniEntries } from '@php-wasm/universal';
import * as bindings from '@bindgen/worker';
import { createSharedFs, createSyscallHooks } from './shared-fs-mount.js';
import { keepStorageIfAsked, storeForever } from './storage-files.js';

// Safe-point word values, from shared-fs (its owner.rs holds the handshake;
// the worker's half is here because it must bracket wasm-bindgen's glue too,
// which allocates in the shared heap before the Rust function runs).
// Read once the module is up (`guard`).
let OUTSIDE, INSIDE, KILLED;

let php;
let syscalls;
// php.wasm's memory (the mount reads and writes PHP's buffers through it).
const phpHeap = {};
// Makes a fresh php-wasm runtime from the compiled module (boot, recycle).
let startRuntime;
let rust; // `bindings` with every call wrapped in the safe-point handshake
// One job at a time: a php-wasm runtime serves one request at a time.
let previousJob = Promise.resolve();
// This worker's words in the shared memory, read without calling into the
// module: its safe-point word and the allocator lock (worker/src/fault.rs).
let words;
let safePointIndex;
let allocatorIndex;
// Set once this runtime is dead: a call into the worker module was cut
// short (a trap: with panic = "abort" every Rust panic is one) or php.wasm
// trapped. The module's state can no longer be trusted, so nothing calls
// into it again; the worker only reports its death (`die`) and waits to be
// terminated. The replacement's `attach` runs shared-fs's `release_all` for
// this index, which frees its locks and repairs the operation it was in.
let dead = null;
// Fault-injection builds only (target/dist-faults/, `injectFault`).
let faultStaysInside = false;
let faultHidesAllocator = false;

/** Whether `error` thrown by a call into the worker module means the call
 *  was cut short. The module's own errors cross as values it returned (an
 *  errno number or a string, thrown by wasm-bindgen's glue after the call
 *  returned); an Error object is a trap (`WebAssembly.RuntimeError`), stack
 *  exhaustion, or a JS exception thrown through its frames, none of which
 *  let Rust finish what it was doing. */
function cutShort(error) {
	return error instanceof Error;
}

/** Marks this worker as inside module code for the duration of each call
 *  (shared-fs's owner.rs); once the host has stopped it, waits until it is
 *  terminated. Once dead, refuses every call. */
function guard(memory, address) {
	[OUTSIDE, INSIDE, , KILLED] = bindings.safe_point_states();
	words = new Int32Array(memory.buffer);
	safePointIndex = address >> 2;
	const index = safePointIndex;
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
						if (dead) throw dead;
						enter();
						try {
							return value(...args);
						} catch (error) {
							if (cutShort(error)) dead ??= error;
							throw error;
						} finally {
							// Runs on a trap too: a trap is a JS exception here.
							leave();
						}
					};
	}
	return wrapped;
}

/** Ends this runtime: reports to the host in plain JS (never through the
 *  module, whose state cannot be trusted) and runs no further job. The host
 *  answers the job in flight (502), terminates this worker and starts a new
 *  one. If the allocator lock's word names this worker, it died holding the
 *  shared heap's allocator lock, which nothing can repair
 *  (worker/src/fault.rs), so the host stops the site. */
function die(error) {
	dead ??= error;
	previousJob = new Promise(() => {});
	if (FAULT_INJECTION && faultStaysInside) Atomics.store(words, safePointIndex, INSIDE);
	// Raw words: the host decides what they mean (protocol::heap_lock).
	const safePoint = words ? Atomics.load(words, safePointIndex) : null;
	const hidden = FAULT_INJECTION && faultHidesAllocator;
	const allocatorWord = words && allocatorIndex && !hidden ? Atomics.load(words, allocatorIndex) >>> 0 : 0;
	self.postMessage({ died: String(error?.stack ?? error), allocatorWord, safePoint });
}

async function boot({ memory, memoryDescriptor, stackBytes, workerModule, phpModule, config, archives }) {
	// Without cross-origin isolation the host cannot send a shared memory:
	// this (single) worker makes its own, private filesystem.
	memory ??= new WebAssembly.Memory(memoryDescriptor);
	bindings.initSync({ module: workerModule, memory, thread_stack_size: stackBytes });
	bindings.configure(config);
	if (!bindings.serves_php()) {
		// The file server or the storage worker: the shared filesystem without PHP.
		await keepStorageIfAsked(bindings);
		await attachSite(archives ?? []);
		rust = guard(memory, bindings.safe_point_address());
		allocatorIndex = bindings.allocator_lock_address() >> 2;
		return;
	}
	// The hooks run only once the filesystem is attached, through `rust`.
	const calls = new Proxy({}, { get: (_, name) => rust[name] });
	syscalls = createSyscallHooks(calls, memory);
	// Only the chosen PHP version's loader is fetched (a bundle beside this file).
	const phpLoader = await import(new URL(bindings.php_loader(), import.meta.url).href);
	bindings.php_binary_loaded(phpLoader.phpBinaryId ?? '');
	startRuntime = () =>
		loadPHPRuntime(phpLoader, {
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
	php = new PHP(await startRuntime());
	// OPcache runs only under SAPIs it knows; php-wasm's own name ("wasm")
	// is not one. PHP's built-in web server is what this runtime is to PHP
	// code (unlike "cli", which WordPress and plugins take for a shell).
	await php.setSapiName('cli-server');
	syscalls.setFS(php[__private__dont__use].FS);
	await setPhpIniEntries(php, bindings.php_ini_entries()); // worker/src/php_ini.rs
	php.mkdir('/internal/shared/preload');
	php.writeFile('/internal/shared/preload/shared-fs-flock.php', bindings.flock_preload_php());
	php.writeFile('/internal/shared/preload/php-pool-net.php', bindings.net_preload_php());
	php.onMessage((data) => {
		const route = rust.route_php_message(data); // worker/src/php_messages.rs
		if (route.net) return outgoingHttp(route.net);
		if (route.flock) return syscalls.flock(...route.flock);
		if (route.fault) return injectFault(data);
		return route.page ? toPage(data) : route.reply;
	});
	// The PHP runtime started while the first worker may still be installing
	// the site; attaching waits for it.
	await keepStorageIfAsked(bindings); // the single worker without isolation
	await attachSite(archives ?? []);
	rust = guard(memory, bindings.safe_point_address());
	allocatorIndex = bindings.allocator_lock_address() >> 2;
	// The scope's URL is the site's URL (WordPress reads these constants
	// before its stored options).
	const siteUrl = rust.site_url();
	if (siteUrl) {
		php.defineConstant('WP_HOME', siteUrl);
		php.defineConstant('WP_SITEURL', siteUrl);
	}
	// The document root and /tmp (worker/src/jobs.rs `shared_paths`).
	for (const path of rust.shared_paths()) {
		php.mkdir(path);
		await php.mount(path, (_php, FS, mountPoint) => {
			const sharedFs = createSharedFs(FS, rust, memory, phpHeap);
			FS.mount(sharedFs.type, { root: path }, mountPoint);
			sharedFs.acceleratePaths(mountPoint);
			return () => FS.unmount(mountPoint);
		});
	}
}

/** Attaches to the shared filesystem (formatting it, for the first worker).
 *  If Rust names archives to fetch (a saved site that did not reopen, a
 *  damaged site image), fetches them and attaches with those. */
async function attachSite(archives) {
	for (;;) {
		try {
			return bindings.attach(archives);
		} catch (error) {
			const urls = bindings.archives_to_fetch();
			if (!urls) throw error;
			archives = await fetchAll(urls);
		}
	}
}

function fetchAll(urls) {
	return Promise.all(
		urls.map(async (url) => {
			const response = await fetch(url);
			if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
			return new Uint8Array(await response.arrayBuffer());
		})
	);
}

/** PHP's outgoing HTTP (worker/src/net.rs): Rust reads PHP's request and
 *  writes PHP's answer; only fetch() happens here. Never rejects (php-wasm
 *  would hand PHP a null), unless the module died. */
function outgoingHttp(plan) {
	if (!plan.url) return plan.reply; // answered without the network
	const sent = fetch(plan.url, plan.init);
	if (plan.reply) {
		// PHP does not wait for this one.
		sent.catch(() => {});
		return plan.reply;
	}
	return sent
		.then(async (r) => {
			const body = new Uint8Array(await r.arrayBuffer());
			return rust.net_response(r.status, r.statusText, [...r.headers].flat(), body, r.url, r.type);
		})
		.catch((error) => rust.net_failure(String(error?.name ?? 'Error'), String(error?.message ?? error)));
}

/** php.onMessage's last resort: the page's `onMessage` listeners answer
 *  (host/src/pool.rs `answer_php_message`) on a port of this message's own,
 *  so the answer never queues behind the job PHP is running. */
function toPage(data) {
	const { port1, port2 } = new MessageChannel();
	return new Promise((resolve, reject) => {
		port1.onmessage = (event) => {
			port1.close();
			try {
				resolve(rust.php_message_answer(new Uint8Array(event.data)));
			} catch (error) {
				reject(error);
			}
		};
		self.postMessage(rust.php_message_event(data), [port2]);
	});
}

/** Swaps this worker's PHP runtime for a fresh one between jobs, keeping
 *  its files and mounts (php-wasm's hot swap); the host decided it is due
 *  (host/src/scheduler.rs `recycle_due`) and waits for `Ready`. */
async function recycleRuntime() {
	await php.hotSwapPHPRuntime(await startRuntime());
	syscalls.setFS(php[__private__dont__use].FS);
	self.postMessage(rust.ready_event());
}

async function runJob(job, port) {
	if (dead) return; // the host answers for a dead worker
	try {
		const plan = rust.start_job(job);
		if (plan.recycle) return await recycleRuntime();
		let reply = plan.reply;
		let phpCrash;
		if (plan.handBack) {
			// The file server cannot run it: back to the host, reply port and all.
			self.postMessage(plan.handBack, [port]);
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
				// Not into the module once a call into it was cut short (`dead`).
				if (!dead && rust.is_runtime_death(error)) phpCrash = error; // worker/src/jobs.rs
			}
			// A call into the module (the mount's) was cut short under PHP:
			// no reply from it.
			if (dead) throw dead;
			reply = rust.finish_job(response);
		}
		// Its changes are stored before anyone hears of them.
		reply = rust.store_before_reply(reply);
		syscalls?.requestEnded(); // none in the file server
		// The host hears that this worker is free before the client hears
		// the reply, so the client's next request finds the pool as it is.
		if (!phpCrash && plan.id !== null) {
			self.postMessage(rust.job_done_event(plan.id, phpHeap.memory?.buffer.byteLength ?? 0));
		}
		port.postMessage(reply);
		// php.wasm trapped (the module is intact: it wrote the reply).
		if (phpCrash) die(phpCrash);
	} catch (error) {
		// Any exception from a call into the module ends this runtime.
		die(error);
	}
}

/** Fault-injection builds only (the default build drops this with
 *  FAULT_INJECTION = false): PHP arms a fault with
 *  `post_message_to_js(json_encode(['fault-injection' => [...]]))`:
 *  `['panic' => 'write', 'step' => 3]` panics (traps) after that step of
 *  that shared-fs operation, holding its inode locks (shared-fs Op::steps);
 *  `['allocator' => true]` traps now inside the allocator, holding its lock;
 *  `['helper' => 'storage' | 'files']` makes the storage worker trap in
 *  its next save, or the file server in its next job;
 *  `['check' => true]` answers shared-fs's structural check ("ok" or the
 *  fault). When the worker then dies, `'staysInside' => true` leaves its
 *  safe-point word INSIDE (as a module whose own handshake could not leave
 *  before it trapped), and `'hidesAllocator' => true` does not tell the host
 *  it held the allocator lock (to show what happens without that). */
function injectFault(data) {
	if (!FAULT_INJECTION) return undefined;
	const fault = JSON.parse(data)['fault-injection'];
	faultStaysInside = !!fault.staysInside;
	faultHidesAllocator = !!fault.hidesAllocator;
	if (fault.panic) rust.fault_panic_at(fault.panic, fault.step);
	if (fault.allocator) rust.fault_trap_in_allocator();
	if (fault.helper) rust.fault_helper(fault.helper);
	if (fault.check) return rust.fault_check_fs();
	return 'armed';
}

// Messages are `[bytes, ...attachments]` (protocol::ToWorker): the first is
// always Boot, every later one a Job; Rust decodes the bytes.
let booted = false;
self.onmessage = (event) => {
	const [bytes, ...attached] = event.data;
	if (!booted) {
		booted = true;
		const [memory, memoryDescriptor, stackBytes, workerModule, phpModule, ...archives] = attached;
		boot({ config: bytes, memory, memoryDescriptor, stackBytes, workerModule, phpModule, archives }).then(
			() => {
				const opened = rust.storage_opened_event();
				if (opened) self.postMessage(opened);
				self.postMessage(rust.ready_event());
				if (rust.is_storage_worker()) storeForever(rust);
			},
			(error) => {
				// In plain text: the module may not be up, or may be dead.
				self.postMessage(String(error?.stack ?? error));
			}
		);
	} else {
		const [port] = attached;
		previousJob = previousJob.then(() => runJob(bytes, port)).catch((error) => {
			console.error('worker job failed', error);
		});
	}
};
