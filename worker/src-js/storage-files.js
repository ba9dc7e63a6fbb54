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
		handles.push(await file.createSyncAccessHandle());
	}
	bindings.keep_storage(handles);
}

/** The storage worker's loop: Rust waits (up to 50 ms) for changes to
 *  store and stores them; between turns the event loop runs. */
export function storeForever(rust) {
	const turn = () => {
		rust.storage_step(50);
		setTimeout(turn, 0);
	};
	turn();
}
