// Entry of one PHP worker (a module Web Worker). It only wires things up:
// attaches the Rust worker module to the shared memory, starts php-wasm from
// the compiled module the host sent, mounts shared-fs at the document root,
// and hands every job to Rust (`handle_job`).

import { loadPHPRuntime, PHP } from '@php-wasm/universal';
import * as phpLoader from '@php-wasm/web-8-3/asyncify/php_8_3.js';
import * as rust from '@bindgen/worker';
import { createSharedFs } from './shared-fs-mount.js';

let php;
let rustReady = false;
// One job at a time: a php-wasm runtime serves one request at a time.
let previousJob = Promise.resolve();

async function boot({ memory, workerModule, phpModule, config }) {
	rust.initSync({ module: workerModule, memory });
	rustReady = true;
	rust.attach(config);
	const runtimeId = await loadPHPRuntime(phpLoader, {
		instantiateWasm(imports, receiveInstance) {
			WebAssembly.instantiate(phpModule, imports).then((instance) => receiveInstance(instance, phpModule));
			return {};
		},
	});
	php = new PHP(runtimeId);
	const documentRoot = rust.document_root_path();
	php.mkdir(documentRoot);
	await php.mount(documentRoot, (_php, FS, mountPoint) => {
		FS.mount(createSharedFs(FS, rust), { root: documentRoot }, mountPoint);
		return () => FS.unmount(mountPoint);
	});
}

self.onmessage = (event) => {
	const message = event.data;
	if (message.type === 'boot') {
		boot(message).then(
			() => self.postMessage(rust.ready_event()),
			(error) => {
				const message = String(error?.stack ?? error);
				// Before the Rust module is up, report in plain text.
				self.postMessage(rustReady ? rust.boot_failed_event(message) : message);
			}
		);
	} else if (message.type === 'job') {
		previousJob = previousJob.then(() => rust.handle_job(message.job, php, message.port)).catch((error) => {
			console.error('worker job failed', error);
		});
	}
};
