// Opens the kept site's files in the origin private file system and hands
// their sync access handles to Rust (worker/src/storage.rs decides
// everything else). Sync handles exist only in dedicated workers.
export async function keepStorageIfAsked(bindings) {
	const path = bindings.kept_site_path();
	if (path === undefined) return;
	await holdForLife(bindings.kept_site_lock(), bindings.storage_lock_wait_ms());
	let dir = await navigator.storage.getDirectory();
	for (const name of path) dir = await dir.getDirectoryHandle(name, { create: true });
	const handles = [];
	for (const name of bindings.storage_file_names()) {
		const file = await dir.getFileHandle(name, { create: true });
		handles.push(await openWhenFree(file, bindings));
	}
	bindings.keep_storage(handles);
}

/** Takes lock `name` (waiting up to `ms` for its holder: a previous
 *  page's storage worker still running) and keeps it while this worker lives. */
async function holdForLife(name, ms) {
	if (!navigator.locks) return;
	await new Promise((granted, refused) => {
		navigator.locks
			.request(name, { signal: AbortSignal.timeout(ms) }, () => {
				granted();
				return new Promise(() => {});
			})
			.catch(() => refused(new Error(`the site's files are still held by a previous page's storage worker after ${ms} ms`)));
	});
}

/** Rust says whether and when to try again (a reload's previous storage
 *  worker may still hold the file for a moment). */
async function openWhenFree(file, bindings) {
	for (let waited = 0; ; ) {
		try {
			return await file.createSyncAccessHandle();
		} catch (error) {
			const wait = bindings.storage_open_retry_ms(String(error?.name), waited);
			if (wait === undefined) throw error;
			await new Promise((resolve) => setTimeout(resolve, wait));
			waited += wait;
		}
	}
}

/** The storage worker's loop: Rust waits (a turn) for changes to store
 *  and stores them (worker/src/storage.rs `storage_step`); between turns
 *  the event loop runs. A message,
 *  not setTimeout, schedules the next turn: nested timeouts are clamped to
 *  4 ms, during which nobody would be listening. */
export function storeForever(rust) {
	const channel = new MessageChannel();
	channel.port1.onmessage = () => {
		rust.storage_step();
		channel.port2.postMessage(null);
	};
	channel.port2.postMessage(null);
}
