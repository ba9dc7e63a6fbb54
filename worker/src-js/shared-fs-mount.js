// Emscripten filesystem type whose every operation goes to shared-fs (the
// Rust exports in ../src/fs_calls.rs). Nodes are never put in Emscripten's
// name cache, so a lookup always asks shared-fs and no worker sees a stale
// view of what another worker changed.

export function createSharedFs(FS, calls) {
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
		close: (stream) => call(calls.fs_release, stream.node.sharedIno),
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
