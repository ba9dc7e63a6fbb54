// The process manager's entry, a module Web Worker the page starts: the
// host's Rust module runs the pool here (host/src/manager.rs), off the
// page's main thread. Messages that come while it loads wait for it.
import init, { runManager } from '@bindgen/host';

const early = [];
self.onmessage = (event) => early.push(event);
init({ module_or_path: new URL('host_bg.wasm', import.meta.url) }).then(() => runManager(early));
