// Service worker entry. Thin: Rust (../src/lib.rs) decides what to do with
// each request; this file only registers the event listeners, which must
// happen synchronously at start-up.
import init, * as rust from '@bindgen/service-worker';

const ready = init({ module_or_path: new URL('service_worker_bg.wasm', import.meta.url) });

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('message', (event) => {
	event.waitUntil(ready.then(() => rust.on_page_message(event.data, event.source?.id)));
});

self.addEventListener('fetch', (event) => {
	if (new URL(event.request.url).origin !== self.location.origin) return;
	event.respondWith(ready.then(() => rust.handle_fetch(event.request)));
});
