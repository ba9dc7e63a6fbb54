// Opens the kept site's files in the origin private file system and hands
// their sync access handles to Rust (worker/src/storage.rs decides
// everything else). Sync handles exist only in dedicated workers.
export async function keepStorageIfAsked(bindings) {
	const path = bindings.kept_site_path();
	if (path === undefined) return;
	let dir = await navigator.storage.getDirectory();
	for (const name of path) dir = await dir.getDirectoryHandle(name, { create: true });
	const handles = [];
	for (const name of bindings.storage_file_names()) {
		const file = await dir.getFileHandle(name, { create: true });
		handles.push(await openWhenFree(file));
	}
	bindings.keep_storage(handles);
}

/** The page that had the site open before (a reload) lets go of the site
 *  at once, but its storage worker's handles close a moment later. */
async function openWhenFree(file) {
	for (let waited = 0; ; waited += 50) {
		try {
			return await file.createSyncAccessHandle();
		} catch (error) {
			if (error?.name !== 'NoModificationAllowedError' || waited >= 5000) throw error;
			await new Promise((resolve) => setTimeout(resolve, 50));
		}
	}
}

/** The storage worker's loop: Rust waits (up to 500 ms) for changes to
 *  store and stores them; between turns the event loop runs. A message,
 *  not setTimeout, schedules the next turn: nested timeouts are clamped to
 *  4 ms, during which nobody would be listening. */
export function storeForever(rust) {
	const channel = new MessageChannel();
	channel.port1.onmessage = () => {
		rust.storage_step(500);
		channel.port2.postMessage(null);
	};
	channel.port2.postMessage(null);
}
