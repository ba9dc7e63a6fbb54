// Emscripten filesystem type whose every operation goes to shared-fs (the
// Rust exports in ../src/fs_calls.rs). Nodes are never put in Emscripten's
// name cache, so a lookup always asks shared-fs and no worker sees a stale
// view of what another worker changed.
//
// This file only adapts: what an operation means (locks, flock, directory
// listings, path walks, seeks) is decided in Rust (../src/mount/), tested
// natively; here Emscripten's arguments go in and the answers come back,
// with php.wasm's ABI numbers from Rust (`adapter_abi`, ../src/errno_abi.rs).

/** A view of `memory` that reaches `end`, remade once the memory grew. */
function bytesOf(memory) {
	let bytes = new Uint8Array(memory.buffer);
	return (end) => (end > bytes.length ? (bytes = new Uint8Array(memory.buffer)) : bytes);
}

export function createSharedFs(FS, calls, memory, phpHeap) {
	const abi = JSON.parse(calls.adapter_abi());
	const field = Object.fromEntries(calls.attr_fields().map((name, i) => [name, i]));
	// Made once: the buffer's address never changes, and a view made before
	// the memory grew still covers it.
	const attrs = new Float64Array(memory.buffer, calls.attr_buffer(), calls.attr_fields().length);
	const sharedBytes = bytesOf(memory);
	// [address, length] of the staging area (the same goes for this view).
	const stagingArea = new Float64Array(memory.buffer, calls.staging_buffer(), 2);
	const staging = (length) => (length > stagingArea[1] ? calls.fs_staging(length) : stagingArea[0]);

	// Rust throws php.wasm's errno number; anything else is a real bug.
	function call(fn, ...args) {
		try {
			return fn(...args);
		} catch (e) {
			throw typeof e === 'number' ? new FS.ErrnoError(e) : e;
		}
	}

	function makeNode(parent, name) {
		// Not FS.createNode: that would add the node to FS.nameTable.
		const node = new FS.FSNode(parent, name, attrs[field.mode], 0);
		node.sharedIno = attrs[field.ino];
		node.node_ops = nodeOps;
		node.stream_ops = streamOps;
		return node;
	}

	function toStat(node) {
		node.mode = attrs[field.mode];
		return {
			dev: 0x5f5,
			ino: attrs[field.ino],
			mode: attrs[field.mode],
			nlink: attrs[field.nlink],
			uid: attrs[field.uid],
			gid: attrs[field.gid],
			rdev: 0,
			size: attrs[field.size],
			atime: new Date(attrs[field.atime]),
			mtime: new Date(attrs[field.mtime]),
			ctime: new Date(attrs[field.ctime]),
			blksize: attrs[field.blksize],
			blocks: attrs[field.blocks],
		};
	}

	const time = (t) => (t == null ? NaN : t instanceof Date ? t.getTime() : Number(t));

	const nodeOps = {
		getattr(node) {
			call(calls.fs_getattr, node.sharedIno);
			return toStat(node);
		},
		setattr(node, attr) {
			const at = time(attr.atime ?? attr.timestamp);
			const mt = time(attr.mtime ?? attr.timestamp);
			call(calls.fs_setattr, node.sharedIno, attr.mode ?? NaN, attr.size ?? NaN, at, mt);
			node.mode = attrs[field.mode];
		},
		lookup(parent, name) {
			call(calls.fs_lookup, parent.sharedIno, name);
			return makeNode(parent, name);
		},
		mknod(parent, name, mode) {
			call(calls.fs_mknod, parent.sharedIno, name, mode);
			return makeNode(parent, name);
		},
		rename(oldNode, newDir, newName) {
			call(calls.fs_rename, oldNode.parent.sharedIno, oldNode.name, newDir.sharedIno, newName);
			oldNode.name = newName;
		},
		unlink: (parent, name) => call(calls.fs_unlink, parent.sharedIno, name),
		rmdir: (parent, name) => call(calls.fs_rmdir, parent.sharedIno, name),
		readdir: (node) => call(calls.fs_readdir, node.sharedIno).split('/'),
		symlink(parent, name, target) {
			call(calls.fs_symlink, parent.sharedIno, name, target);
			return makeNode(parent, name);
		},
		readlink: (node) => call(calls.fs_readlink, node.sharedIno),
		statfs() {
			const [bsize, blocks, bfree, files, ffree, namelen] = call(calls.fs_statfs);
			return { bsize, frsize: bsize, blocks, bfree, bavail: bfree, files, ffree, namelen };
		},
	};

	/** Rust decides where the bytes land (an O_APPEND description: at the
	 *  end, atomically); FS.write then adds what was written to the position. */
	function writeThrough(stream, buffer, offset, length, position, flags) {
		const source = buffer.byteOffset + offset;
		const into = staging(length + 8);
		const skew = (source - into) & 7;
		sharedBytes(into + skew + length).set(buffer.subarray(offset, offset + length), into + skew);
		const [written, at] = call(calls.fs_write_staged, stream.node.sharedIno, position, length, skew, flags);
		if (at !== position) stream.position = at;
		return written;
	}

	const streamOps = {
		open: (stream) => call(calls.fs_open, stream.node.sharedIno),
		dup: (stream) => call(calls.fs_open, stream.node.sharedIno),
		close: (stream) => call(calls.fs_close, stream.node.sharedIno, stream.fd),
		read(stream, buffer, offset, length, position) {
			// Rust picks the copy: straight from the blocks or through staging (fs_calls.rs `fs_read`).
			const copy = (from, n, at) => buffer.set(sharedBytes(from + n).subarray(from, from + n), at);
			return call(calls.fs_read, stream.node.sharedIno, position, length, buffer.byteOffset + offset, offset, copy);
		},
		write(stream, buffer, offset, length, position) {
			return writeThrough(stream, buffer, offset, length, position, stream.flags);
		},
		// Like MEMFS: the mapping is a private copy in PHP's heap (PHP maps
		// files to read them whole); msync writes a shared mapping back.
		mmap(stream, length, position) {
			const size = Math.ceil(length / 65536) * 65536;
			const ptr = phpHeap.memalign(65536, size);
			if (!ptr) throw new FS.ErrnoError(abi.ENOMEM);
			const heap = new Uint8Array(phpHeap.memory.buffer);
			const n = streamOps.read(stream, heap, ptr, length, position);
			heap.fill(0, ptr + n, ptr + size);
			return { ptr, allocated: true };
		},
		msync(stream, buffer, offset, length) {
			writeThrough(stream, buffer, 0, length, offset, 0); // a mapping writes where it maps
			return 0;
		},
		llseek: (stream, offset, whence) => call(calls.fs_llseek, stream.node.sharedIno, offset, whence, stream.position),
	};

	/** Resolves paths under the mount in one call to shared-fs instead of
	 *  one per component (Rust's `fs_walk` says which paths it walks and
	 *  what the answer is; the rest is left to Emscripten's own walk). Also
	 *  makes open with O_CREAT safe against another worker creating the file
	 *  first. */
	function acceleratePaths(mountPoint) {
		const root = FS.lookupPath(mountPoint).node;
		const prefix = mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`;
		const original = FS.lookupPath;
		const walk = (path, opts) => {
			const rest = path.slice(prefix.length);
			const found = call(calls.fs_walk, root.sharedIno, rest, !!opts.parent, !!opts.follow, !!opts.noent_okay);
			// [n, ino, mode, ...]: n components, a node for each or for none.
			const n = found[0];
			if (!n) return null;
			const names = rest.split('/').filter((p) => p);
			names.length = n;
			const resolved = prefix + names.join('/');
			if (found.length === 1) return { path: resolved };
			let node = root;
			for (let i = 0; i < n; i++) {
				node = new FS.FSNode(node, names[i], found[2 + 2 * i], 0);
				node.sharedIno = found[1 + 2 * i];
				node.node_ops = nodeOps;
				node.stream_ops = streamOps;
			}
			return { path: resolved, node };
		};
		FS.lookupPath = function (path, opts = {}) {
			const fast = typeof path === 'string' && path.startsWith(prefix) ? walk(path, opts) : null;
			return fast ?? original.call(this, path, opts);
		};
		// Emscripten's open looks the path up, then creates: another worker
		// can create the file in between. Rust says when to just try again.
		const originalOpen = FS.open;
		FS.open = function (path, flags, mode) {
			try {
				return originalOpen.call(this, path, flags, mode);
			} catch (e) {
				const ours = typeof path === 'string' && path.startsWith(prefix) && typeof flags === 'number';
				if (ours && e instanceof FS.ErrnoError && calls.open_lost_create_race(flags, e.errno)) {
					return originalOpen.call(this, path, flags, mode);
				}
				throw e;
			}
		};
	}

	return {
		acceleratePaths,
		type: {
			// opts.root: the shared-fs path shown at the mount point.
			mount(mount) {
				call(calls.fs_resolve, mount.opts.root ?? '/');
				return makeNode(null, '/');
			},
		},
	};
}

// php.wasm's syscalls that shared-fs must see:
// - fcntl(F_GETLK / F_SETLK / F_SETLKW) goes to shared-fs's byte-range locks
//   (php-wasm's web build answers them with a no-op, which is what corrupts
//   SQLite under concurrency): ../src/mount/fcntl.rs;
// - flock() arrives from the PHP polyfill (../src/mount/flock-polyfill.php,
//   sorted by ../src/php_messages.rs): ../src/mount/flock.rs;
// - getdents on a shared-fs directory lists its snapshot in one call:
//   ../src/mount/getdents.rs.


// The hooks call Rust (`calls`) only from syscalls, which PHP makes once the
// filesystem is attached; `wrapImports` runs before that.
export function createSyscallHooks(calls, sharedMemory) {
	let FS;
	let memory; // php.wasm's own memory: where its syscalls' arguments live
	let abi;
	const adapterAbi = () => (abi ??= JSON.parse(calls.adapter_abi()));
	const sharedBytes = bytesOf(sharedMemory);
	let flockBuffer;

	/** PHP's flock() on stream `resourceId` (inode `ino` per its fstat). */
	function flock(uri, ino, resourceId, operation) {
		let node;
		try {
			node = FS.lookupPath(uri, { follow: true }).node;
		} catch {
			// Not a path we know: not a shared-fs file.
		}
		return calls.php_flock(node?.sharedIno !== undefined, ino, resourceId, operation);
	}

	/** An fcntl lock command: the caller's `struct flock` goes to Rust, and
	 *  comes back as Rust left it (F_GETLK fills it in). */
	function lock(stream, cmd, varargs) {
		flockBuffer ??= calls.fcntl_flock_buffer();
		const size = adapterAbi().flockSize;
		const at = new DataView(memory.buffer).getUint32(varargs, true); // the one argument: a pointer
		const shared = sharedBytes(flockBuffer + size);
		shared.set(new Uint8Array(memory.buffer, at, size), flockBuffer);
		const result = calls.fs_fcntl_lock(stream.node?.sharedIno ?? NaN, cmd, stream.position);
		new Uint8Array(memory.buffer, at, size).set(shared.subarray(flockBuffer, flockBuffer + size));
		return result;
	}

	/** php.wasm's fcntl for the other commands (JSPI build: its own cannot
	 *  be called from JS): Rust says what to do (mount/fcntl.rs). */
	function fcntlWithoutLocks(fd, cmd, varargs) {
		const stream = FS?.getStream(fd);
		if (!stream) return -adapterAbi().EBADF;
		const argument = new DataView(memory.buffer).getInt32(varargs, true);
		const [kind, value] = calls.fcntl_other_command(cmd, argument);
		if (kind === 1) {
			let lowest = value;
			while (FS.streams[lowest]) lowest++;
			return FS.dupStream(stream, lowest).fd;
		}
		if (kind === 2) return stream.flags;
		if (kind === 3) stream.flags |= value;
		return kind === 3 ? 0 : value;
	}

	/** getdents64 on a shared-fs directory stream: Rust writes the records
	 *  and says where the stream is now. */
	function listDirectory(stream, dirp, count) {
		let found;
		try {
			found = calls.fs_getdents(stream.fd, stream.node.sharedIno, stream.position, count);
		} catch (e) {
			if (typeof e === 'number') return -e;
			throw e;
		}
		const [bytes, position, from] = found;
		new Uint8Array(memory.buffer, dirp, bytes).set(sharedBytes(from + bytes).subarray(from, from + bytes));
		stream.position = position;
		return bytes;
	}

	return {
		setFS(fs) {
			FS = fs;
		},
		/** The flock() polyfill's call (worker/src/php_messages.rs). */
		flock,
		/** A request ended: every stream it opened is gone with it, so are
		 *  this worker's flocks. */
		requestEnded() {
			calls.fs_request_ended();
		},
		setMemory(m) {
			memory = m;
		},
		/** Replaces php.wasm's fcntl and getdents imports before instantiation. */
		wrapImports(imports) {
			const getdents = imports.env.__syscall_getdents64;
			const getdentsHook = function (fd, dirp, count) {
				const stream = FS?.getStream(fd);
				if (stream?.node?.sharedIno === undefined) return getdents.call(this, fd, dirp, count);
				return listDirectory(stream, dirp, count);
			};
			getdentsHook.sig = getdents.sig;
			imports.env.__syscall_getdents64 = getdentsHook;
			// The JSPI build hands fcntl over as a WebAssembly.Suspending, which
			// JS cannot call: there a plain function (ours never suspends)
			// answers the other commands as php.wasm's own does.
			const original = imports.env.__syscall_fcntl64;
			const otherCommands = typeof original === 'function' ? original : fcntlWithoutLocks;
			const fcntl = function (fd, cmd, varargs) {
				const stream = FS?.getStream(fd);
				if (stream && adapterAbi().lockCommands.includes(cmd)) return lock(stream, cmd, varargs);
				return otherCommands.call(this, fd, cmd, varargs);
			};
			fcntl.sig = original.sig ?? 'iiip';
			imports.env.__syscall_fcntl64 = fcntl;
		},
	};
}
