// Emscripten filesystem type whose every operation goes to shared-fs (the
// Rust exports in ../src/fs_calls.rs). Nodes are never put in Emscripten's
// name cache, so a lookup always asks shared-fs and no worker sees a stale
// view of what another worker changed.

export function createSharedFs(FS, calls, locks) {
	const field = Object.fromEntries(calls.attr_fields().map((name, i) => [name, i]));

	// Rust throws php.wasm's errno number; anything else is a real bug.
	function call(fn, ...args) {
		try {
			return fn(...args);
		} catch (e) {
			throw typeof e === 'number' ? new FS.ErrnoError(e) : e;
		}
	}

	function makeNode(parent, name, attr) {
		// Not FS.createNode: that would add the node to FS.nameTable.
		const node = new FS.FSNode(parent, name, attr[field.mode], 0);
		node.sharedIno = attr[field.ino];
		node.node_ops = nodeOps;
		node.stream_ops = streamOps;
		return node;
	}

	function toStat(node, a) {
		node.mode = a[field.mode];
		return {
			dev: 0x5f5,
			ino: a[field.ino],
			mode: a[field.mode],
			nlink: a[field.nlink],
			uid: a[field.uid],
			gid: a[field.gid],
			rdev: 0,
			size: a[field.size],
			atime: new Date(a[field.atime]),
			mtime: new Date(a[field.mtime]),
			ctime: new Date(a[field.ctime]),
			blksize: a[field.blksize],
			blocks: a[field.blocks],
		};
	}

	const time = (t) => (t == null ? NaN : t instanceof Date ? t.getTime() : Number(t));

	const nodeOps = {
		getattr: (node) => toStat(node, call(calls.fs_getattr, node.sharedIno)),
		setattr(node, attr) {
			const a = call(
				calls.fs_setattr,
				node.sharedIno,
				attr.mode ?? NaN,
				attr.size ?? NaN,
				time(attr.atime ?? attr.timestamp),
				time(attr.mtime ?? attr.timestamp)
			);
			node.mode = a[field.mode];
		},
		lookup: (parent, name) => makeNode(parent, name, call(calls.fs_lookup, parent.sharedIno, name)),
		mknod: (parent, name, mode) => makeNode(parent, name, call(calls.fs_mknod, parent.sharedIno, name, mode)),
		rename(oldNode, newDir, newName) {
			call(calls.fs_rename, oldNode.parent.sharedIno, oldNode.name, newDir.sharedIno, newName);
			oldNode.name = newName;
		},
		unlink: (parent, name) => call(calls.fs_unlink, parent.sharedIno, name),
		rmdir: (parent, name) => call(calls.fs_rmdir, parent.sharedIno, name),
		readdir: (node) => call(calls.fs_readdir, node.sharedIno),
		symlink: (parent, name, target) =>
			makeNode(parent, name, call(calls.fs_symlink, parent.sharedIno, name, target)),
		readlink: (node) => call(calls.fs_readlink, node.sharedIno),
		link: (node, newDir, newName) => call(calls.fs_link, node.sharedIno, newDir.sharedIno, newName),
		statfs() {
			const [bsize, blocks, bfree, files, ffree, namelen] = call(calls.fs_statfs);
			return { bsize, frsize: bsize, blocks, bfree, bavail: bfree, files, ffree, namelen };
		},
	};

	const streamOps = {
		// An open descriptor pins the inode, so an unlinked file stays readable.
		open: (stream) => call(calls.fs_open, stream.node.sharedIno),
		dup: (stream) => call(calls.fs_open, stream.node.sharedIno),
		close(stream) {
			// POSIX: closing any descriptor of a file drops this process's range locks on it.
			call(calls.fs_close_release, stream.node.sharedIno);
			locks.streamClosing(stream);
			call(calls.fs_release, stream.node.sharedIno);
		},
		read(stream, buffer, offset, length, position) {
			const data = call(calls.fs_read, stream.node.sharedIno, position, length);
			buffer.set(data, offset);
			return data.length;
		},
		write(stream, buffer, offset, length, position) {
			return call(calls.fs_write, stream.node.sharedIno, position, buffer.subarray(offset, offset + length));
		},
		llseek(stream, offset, whence) {
			let position = offset;
			if (whence === 1) position += stream.position;
			else if (whence === 2) position += call(calls.fs_getattr, stream.node.sharedIno)[field.size];
			if (position < 0) throw new FS.ErrnoError(28); // EINVAL
			return position;
		},
	};

	return {
		// opts.root: the shared-fs path shown at the mount point.
		mount(mount) {
			const root = makeNode(null, '/', call(calls.fs_resolve, mount.opts.root ?? '/'));
			return root;
		},
	};
}

// fcntl(F_GETLK / F_SETLK / F_SETLKW) on shared-fs files goes to shared-fs's
// byte-range locks (php-wasm's web build answers them with a no-op, which is
// what corrupts SQLite under concurrency). Other files keep Emscripten's
// behaviour.
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

export function createLockCalls(calls, worker) {
	let FS;
	let memory;
	const sizeField = calls.attr_fields().indexOf('size');
	// flock descriptions this worker holds: ino -> Set of description ids.
	const flocks = new Map();
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
		else if (whence === 2) start += calls.fs_getattr(ino)[sizeField];
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
		/** Replaces php.wasm's fcntl import before instantiation. */
		wrapImports(imports) {
			const original = imports.env.__syscall_fcntl64;
			const fcntl = function (fd, cmd, varargs) {
				if ((cmd === F_GETLK || cmd === F_SETLK || cmd === F_SETLKW) && FS) {
					const stream = FS.getStream(fd);
					if (stream?.node?.sharedIno !== undefined) return rangeLock(stream, cmd, varargs);
				}
				return original.call(this, fd, cmd, varargs);
			};
			fcntl.sig = original.sig;
			imports.env.__syscall_fcntl64 = fcntl;
		},
	};
}
