// Emscripten filesystem type whose every operation goes to shared-fs (the
// Rust exports in ../src/fs_calls.rs). Nodes are never put in Emscripten's
// name cache, so a lookup always asks shared-fs and no worker sees a stale
// view of what another worker changed.

export function createSharedFs(FS, calls, syscalls, memory, phpHeap) {
	const field = Object.fromEntries(calls.attr_fields().map((name, i) => [name, i]));
	// Made once: the buffer's address never changes, and a view made before
	// the memory grew still covers it.
	const attrs = new Float64Array(memory.buffer, calls.attr_buffer(), calls.attr_fields().length);
	let shared = new Uint8Array(memory.buffer);
	const sharedBytes = (end) => (end > shared.length ? (shared = new Uint8Array(memory.buffer)) : shared);

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
			// Inside getdents: the directory's own snapshot answers, as on Linux.
			const listed = syscalls.listedEntry(parent, name);
			if (listed) {
				const node = new FS.FSNode(parent, name, listed[1], 0);
				node.sharedIno = listed[0];
				node.node_ops = nodeOps;
				node.stream_ops = streamOps;
				return node;
			}
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
		readdir(node) {
			const names = call(calls.fs_readdir, node.sharedIno).split('/');
			syscalls.listed(node, names, () => calls.fs_last_readdir());
			return names;
		},
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
		const staging = calls.fs_staging(length + 8);
		const skew = (source - staging) & 7;
		sharedBytes(staging + skew + length).set(buffer.subarray(offset, offset + length), staging + skew);
		const [written, at] = call(calls.fs_write_staged, stream.node.sharedIno, position, length, skew, flags);
		if (at !== position) stream.position = at;
		return written;
	}

	const streamOps = {
		// An open descriptor pins the inode, so an unlinked file stays readable.
		open: (stream) => call(calls.fs_open, stream.node.sharedIno),
		dup: (stream) => call(calls.fs_open, stream.node.sharedIno),
		close(stream) {
			// POSIX: closing any descriptor of a file drops this process's range locks on it.
			call(calls.fs_close_release, stream.node.sharedIno);
			syscalls.streamClosing(stream);
			call(calls.fs_release, stream.node.sharedIno);
		},
		read(stream, buffer, offset, length, position) {
			const into = buffer.byteOffset + offset;
			const staging = calls.fs_staging(length + 8);
			const skew = (into - staging) & 7; // same address mod 8: V8's fast copy
			const n = call(calls.fs_read_staged, stream.node.sharedIno, position, length, skew);
			const from = staging + skew;
			buffer.set(sharedBytes(from + n).subarray(from, from + n), offset);
			return n;
		},
		write(stream, buffer, offset, length, position) {
			return writeThrough(stream, buffer, offset, length, position, stream.flags);
		},
		// Like MEMFS: the mapping is a private copy in PHP's heap (PHP maps
		// files to read them whole); msync writes a shared mapping back.
		mmap(stream, length, position) {
			const size = Math.ceil(length / 65536) * 65536;
			const ptr = phpHeap.memalign(65536, size);
			if (!ptr) throw new FS.ErrnoError(48); // ENOMEM
			const heap = new Uint8Array(phpHeap.memory.buffer);
			const n = streamOps.read(stream, heap, ptr, length, position);
			heap.fill(0, ptr + n, ptr + size);
			return { ptr, allocated: true };
		},
		msync(stream, buffer, offset, length) {
			writeThrough(stream, buffer, 0, length, offset, 0); // a mapping writes where it maps
			return 0;
		},
		llseek(stream, offset, whence) {
			let position = offset;
			if (whence === 1) position += stream.position;
			else if (whence === 2) {
				call(calls.fs_getattr, stream.node.sharedIno);
				position += attrs[field.size];
			}
			if (position < 0) throw new FS.ErrnoError(28); // EINVAL
			return position;
		},
	};

	/** Resolves paths under the mount in one call to shared-fs instead of
	 *  one per component; anything unusual (`.`, `..`, a symlink, the mount
	 *  point itself) is left to Emscripten's own walk. Also makes open with
	 *  O_CREAT safe against another worker creating the file first. */
	function acceleratePaths(mountPoint) {
		const root = FS.lookupPath(mountPoint).node;
		const prefix = mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`;
		const original = FS.lookupPath;
		const walk = (path, opts) => {
			let parts = path.slice(prefix.length).split('/').filter((p) => p);
			if (parts.includes('.') || parts.includes('..')) return null;
			if (opts.parent) parts = parts.slice(0, -1);
			if (!parts.length) return null;
			const found = call(calls.fs_walk, root.sharedIno, parts.join('/'), !!opts.follow);
			const status = found[0];
			if (status === WALK_SYMLINK) return null;
			let node = root;
			const count = status === WALK_MISSING_LAST ? (found.length - 1) / 2 : status;
			for (let i = 0; i < count; i++) {
				node = new FS.FSNode(node, parts[i], found[2 + 2 * i], 0);
				node.sharedIno = found[1 + 2 * i];
				node.node_ops = nodeOps;
				node.stream_ops = streamOps;
			}
			if (status === WALK_MISSING_LAST) {
				if (opts.noent_okay) return { path: prefix + parts.join('/') };
				throw new FS.ErrnoError(44); // ENOENT
			}
			return { path: prefix + parts.join('/'), node };
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

// fs_walk's statuses (worker/src/fs_calls.rs).
const WALK_SYMLINK = -1;
const WALK_MISSING_LAST = -2;

// php.wasm's syscalls that shared-fs must see:
// - fcntl(F_GETLK / F_SETLK / F_SETLKW) on shared-fs files goes to
//   shared-fs's byte-range locks (php-wasm's web build answers them with a
//   no-op, which is what corrupts SQLite under concurrency); other files keep
//   Emscripten's behaviour;
// - flock() arrives from the PHP polyfill below;
// - getdents answers each entry's type from the directory's own listing
//   instead of one lookup per entry.
const F_DUPFD = 0;
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const F_DUPFD_CLOEXEC = 1030;
const EBADF = 8;
const F_GETLK = 12;
const F_SETLK = 13;
const F_SETLKW = 14;
const F_UNLCK = 2;
const EINVAL = 28;
const EWOULDBLOCK = 6;
const LOCK_UN = 8;

/** Replaces php.wasm's flock(), a no-op stub compiled into the binary: php.ini
 *  disables the built-in (PHP 8 then allows redefining it) and this preload
 *  file asks the worker over post_message_to_js. */
export const FLOCK_POLYFILL = `<?php
function flock($stream, int $operation, &$would_block = null): bool {
	$would_block = false;
	$meta = stream_get_meta_data($stream);
	$stat = fstat($stream);
	$reply = post_message_to_js(json_encode(['shared-fs-flock' => [
		$meta['uri'] ?? '', $stat ? $stat['ino'] : -1, (int) $stream, $operation,
	]]));
	if ($reply === 'EWOULDBLOCK') {
		$would_block = true;
	}
	return $reply === 'ok';
}
`;

export function createSyscallHooks(calls, worker, sharedMemory) {
	let FS;
	let memory;
	const sizeField = () => calls.attr_fields().indexOf('size');
	const attrs = () => new Float64Array(sharedMemory.buffer, calls.attr_buffer(), calls.attr_fields().length);
	// flock descriptions this worker holds: ino -> Set of description ids.
	const flocks = new Map();
	// The directory stream a getdents call is listing, while it runs.
	let listing = null;
	let request = 0;

	function flock(uri, ino, resourceId, operation) {
		let node;
		try {
			node = FS.lookupPath(uri, { follow: true }).node;
		} catch {
			return 'ok'; // not a path we know: keep php.wasm's old behaviour
		}
		if (node.sharedIno === undefined) return 'ok'; // a private file: nobody else can see it
		// A PHP stream is one open file description. Ids must differ across
		// workers and requests (resource ids restart per request):
		// worker (8 bits) | request (25 bits) | resource (20 bits) < 2^53.
		const description = (worker * 2 ** 25 + (request % 2 ** 25)) * 2 ** 20 + (resourceId % 2 ** 20);
		try {
			calls.fs_flock(ino, description, operation);
		} catch (e) {
			if (e === EWOULDBLOCK) return 'EWOULDBLOCK';
			if (typeof e === 'number') return 'error';
			throw e;
		}
		const held = flocks.get(ino) ?? new Set();
		if (operation & LOCK_UN) held.delete(description);
		else held.add(description);
		if (held.size) flocks.set(ino, held);
		else flocks.delete(ino);
		return 'ok';
	}

	function unlockAll(ino) {
		for (const description of flocks.get(ino) ?? []) calls.fs_flock(ino, description, LOCK_UN);
		flocks.delete(ino);
	}

	function rangeLock(stream, cmd, varargs) {
		const view = new DataView(memory.buffer);
		// struct flock (musl, wasm32): short l_type, l_whence; off_t l_start @8, l_len @16; pid_t l_pid @24
		const lock = view.getUint32(varargs, true);
		const type = view.getInt16(lock, true);
		const whence = view.getInt16(lock + 2, true);
		let start = Number(view.getBigInt64(lock + 8, true));
		let len = Number(view.getBigInt64(lock + 16, true));
		const ino = stream.node.sharedIno;
		if (whence === 1) start += stream.position;
		else if (whence === 2) {
			calls.fs_getattr(ino);
			start += attrs()[sizeField()];
		}
		else if (whence !== 0) return -EINVAL;
		if (len < 0) {
			start += len;
			len = -len;
		}
		if (start < 0) return -EINVAL;
		try {
			if (cmd === F_GETLK) {
				const [conflictType, conflictStart, conflictLen, owner] = calls.fs_getlk(ino, start, len, type);
				view.setInt16(lock, conflictType, true);
				if (conflictType !== F_UNLCK) {
					view.setInt16(lock + 2, 0, true);
					view.setBigInt64(lock + 8, BigInt(conflictStart), true);
					view.setBigInt64(lock + 16, BigInt(conflictLen), true);
					view.setInt32(lock + 24, owner + 1, true); // workers as pids, never 0
				}
			} else {
				calls.fs_setlk(ino, start, len, type, cmd === F_SETLKW);
			}
			return 0;
		} catch (e) {
			if (typeof e === 'number') return -e;
			throw e;
		}
	}

	/** php.wasm's fcntl for everything but shared-fs locks: descriptor
	 *  duplication and flags; locks on private files always succeed. */
	function fcntlWithoutLocks(fd, cmd, varargs) {
		const stream = FS?.getStream(fd);
		if (!stream) return -EBADF;
		const view = new DataView(memory.buffer);
		switch (cmd) {
			case F_DUPFD:
			case F_DUPFD_CLOEXEC: {
				let lowest = view.getInt32(varargs, true);
				if (lowest < 0) return -EINVAL;
				while (FS.streams[lowest]) lowest++;
				return FS.dupStream(stream, lowest).fd;
			}
			case F_GETFD:
			case F_SETFD:
			case F_SETLK:
			case F_SETLKW:
				return 0;
			case F_GETFL:
				return stream.flags;
			case F_SETFL:
				stream.flags |= view.getInt32(varargs, true);
				return 0;
			case F_GETLK:
				view.setInt16(view.getUint32(varargs, true), F_UNLCK, true);
				return 0;
			default:
				return -EINVAL;
		}
	}

	return {
		setFS(fs) {
			FS = fs;
		},
		/** php.onMessage listener: answers the flock() polyfill, ignores the rest. */
		onPhpMessage(data) {
			let message;
			try {
				message = JSON.parse(data);
			} catch {
				return undefined;
			}
			const args = message?.['shared-fs-flock'];
			return args ? flock(...args) : undefined;
		},
		/** When the last of this worker's descriptors of a file closes, its
		 *  flocks on that file go (a closed PHP stream cannot be told apart
		 *  from others of the same file, so this waits for the last one). */
		streamClosing(stream) {
			const ino = stream.node.sharedIno;
			if (!flocks.has(ino)) return;
			const stillOpen = FS.streams.some((s) => s && s !== stream && s.node?.sharedIno === ino);
			if (!stillOpen) unlockAll(ino);
		},
		/** A request ended: every stream it opened is gone with it. */
		requestEnded() {
			for (const ino of [...flocks.keys()]) unlockAll(ino);
			request++;
		},
		setMemory(m) {
			memory = m;
		},
		/** A directory listing made during getdents, for `listedEntry`. */
		listed(node, names, entries) {
			if (listing?.node.sharedIno !== node.sharedIno) return;
			const numbers = entries();
			listing.sharedEntries = new Map(names.map((name, i) => [name, [numbers[2 * i], numbers[2 * i + 1]]]));
		},
		/** `[ino, mode]` of `name` from the listing getdents is walking, if any. */
		listedEntry(parent, name) {
			if (listing?.node.sharedIno !== parent.sharedIno) return undefined;
			return listing.sharedEntries?.get(name);
		},
		/** Replaces php.wasm's fcntl and getdents imports before instantiation. */
		wrapImports(imports) {
			const getdents = imports.env.__syscall_getdents64;
			const listDirectory = function (fd, dirp, count) {
				const stream = FS?.getStream(fd);
				if (stream?.node?.sharedIno === undefined) return getdents.call(this, fd, dirp, count);
				listing = stream;
				try {
					return getdents.call(this, fd, dirp, count);
				} finally {
					listing = null;
				}
			};
			listDirectory.sig = getdents.sig;
			imports.env.__syscall_getdents64 = listDirectory;
			// The JSPI build hands fcntl over as a WebAssembly.Suspending, which
			// JS cannot call: there a plain function (ours never suspends)
			// answers the other commands as php.wasm's own does.
			const original = imports.env.__syscall_fcntl64;
			const otherCommands = typeof original === 'function' ? original : fcntlWithoutLocks;
			const fcntl = function (fd, cmd, varargs) {
				if ((cmd === F_GETLK || cmd === F_SETLK || cmd === F_SETLKW) && FS) {
					const stream = FS.getStream(fd);
					if (stream?.node?.sharedIno !== undefined) return rangeLock(stream, cmd, varargs);
				}
				return otherCommands.call(this, fd, cmd, varargs);
			};
			fcntl.sig = original.sig ?? 'iiip';
			imports.env.__syscall_fcntl64 = fcntl;
		},
	};
}
