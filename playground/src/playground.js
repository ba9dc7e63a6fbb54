// The playground page: boots the runtime from the URL's options and exposes
// the client as `window.playground` (a promise), the same client an
// embedding page gets from startPlayground(). The page's options live in
// its URL, so every setting change is a navigation to a new URL (a reboot).
import { startPlayground, listSavedSites, renameSavedSite, deleteSavedSite, slugForImport } from './host/index.js';
import { serveEmbedder } from './embed-api.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// As written: the runtime says what is wrong with a value that is no number.
const numberParam = (name) => params.get(name) ?? undefined;
const iframe = $('site');
const address = $('address');
const started = performance.now();

// An imported zip waits here across the reboot (too big for the URL).
const IMPORT_FILE = 'php-pool-import.zip';

/** Navigates to this page with `changes` applied to its query (undefined deletes). */
function reboot(changes) {
	const next = new URLSearchParams(location.search);
	for (const [key, value] of Object.entries(changes)) {
		if (value === undefined) next.delete(key);
		else next.set(key, value);
	}
	const url = `${location.pathname}?${next}${location.hash}`;
	// The same URL with a fragment would only scroll: reload instead.
	if (url === location.pathname + location.search + location.hash) location.reload();
	else location.assign(url);
}

async function takeImport() {
	try {
		const dir = await navigator.storage.getDirectory();
		const file = await (await dir.getFileHandle(IMPORT_FILE)).getFile();
		const bytes = new Uint8Array(await file.arrayBuffer());
		await dir.removeEntry(IMPORT_FILE);
		return bytes;
	} catch {
		return undefined; // already taken (a reload): a saved site has it by now
	}
}

const options = {
	workers: numberParam('workers') ?? 2,
	site: params.get('site') ?? 'wordpress',
	memoryMaximumMb: numberParam('memoryMaximumMb'),
	maxQueue: numberParam('maxQueue'),
	queueTimeoutMs: numberParam('queueTimeoutMs'),
	maxRequests: numberParam('maxRequests'),
	requestTimeoutMs: numberParam('requestTimeoutMs'),
	phpBuild: params.get('phpBuild') ?? undefined,
	storage: params.get('storage') ?? undefined,
	siteSlug: params.get('site-slug') ?? undefined,
	networking: params.get('networking') ?? undefined,
	php: params.get('php') ?? undefined,
	wp: params.get('wp') ?? undefined,
	// As Playground: ?blueprint-url=, or the Blueprint (JSON or base64 JSON) in the fragment.
	blueprintUrl: params.get('blueprint-url') ?? undefined,
	blueprint: location.hash.length > 1 ? location.hash.slice(1) : undefined,
	iframe,
	onProgress: ({ stage, done, total }) => {
		$('progress').value = done / total;
		$('status').textContent = `Booting… ${stage} (${done}/${total})`;
	},
	// The site stopped for good (a worker died inside the shared heap's
	// allocator): a saved one reopens from its saved copy, once a minute at most.
	onSiteStopped: ({ reason, saved }) => {
		$('status').textContent = reason;
		const last = Number(sessionStorage.getItem('php-pool:reopened') ?? 0);
		if (saved && Date.now() - last > 60000) {
			sessionStorage.setItem('php-pool:reopened', String(Date.now()));
			location.reload();
		}
	},
};
window.playground = params.has('import')
	? takeImport().then((zip) => startPlayground({ ...options, site: zip ?? options.site }))
	: startPlayground(options);

serveEmbedder(window.playground);

// --- Settings: shown from the URL, applied by a reboot. ---
const settings = $('settings');
settings.workers.value = params.get('workers') ?? 2;
settings.php.value = params.get('php') ?? '';
settings.wp.value = params.get('wp') ?? '';
settings.storage.value = params.get('storage') === 'temp' ? 'temp' : 'browser';
settings.networking.checked = params.get('networking') !== 'no';
settings.addEventListener('submit', (event) => {
	event.preventDefault();
	reboot({
		workers: settings.workers.value || undefined,
		php: settings.php.value || undefined,
		wp: settings.wp.value.trim() || undefined,
		storage: settings.storage.value === 'temp' ? 'temp' : undefined,
		networking: settings.networking.checked ? undefined : 'no',
		import: undefined,
	});
});

const panelToggle = $('panel-toggle');
function showPanel(open) {
	panelToggle.setAttribute('aria-expanded', String(open));
	$('panel').hidden = !open;
	if (open) renderSites();
}
panelToggle.addEventListener('click', () => showPanel(panelToggle.getAttribute('aria-expanded') !== 'true'));

// --- Saved sites: usable even when the boot failed (e.g. a site open in another tab). ---
const openSite = (slug) => reboot({ 'site-slug': slug, storage: undefined, import: undefined });
let currentSlug; // known once booted

function button(text, onClick, { disabled = false, className = '', label } = {}) {
	const b = document.createElement('button');
	b.type = 'button';
	b.textContent = text;
	b.disabled = disabled;
	b.className = className;
	if (label) b.setAttribute('aria-label', label);
	b.addEventListener('click', onClick);
	return b;
}

const megabytes = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;

async function siteAction(action) {
	$('sites-error').textContent = '';
	try {
		await action();
	} catch (error) {
		$('sites-error').textContent = String(error?.message ?? error);
	}
	await renderSites();
}

async function renderSites() {
	let sites;
	try {
		sites = await listSavedSites();
	} catch (error) {
		$('sites-error').textContent = `Saved sites are not available: ${error?.message ?? error}`;
		return;
	}
	const items = sites.map(({ slug, bytes, open }) => {
		const li = document.createElement('li');
		li.dataset.slug = slug;
		const name = document.createElement('span');
		name.className = 'name';
		name.textContent = slug;
		const meta = document.createElement('span');
		meta.className = 'meta';
		const here = slug === currentSlug;
		meta.textContent = `${megabytes(bytes)}${here ? ' · this tab' : open ? ' · open in another tab' : ''}`;
		if (here) li.setAttribute('aria-current', 'true');
		li.append(
			name,
			button('Open', () => openSite(slug), { disabled: open, label: `Open ${slug}` }),
			button('Rename', () => {
				const to = prompt(`New name for "${slug}"`, slug)?.trim();
				if (to && to !== slug) siteAction(() => renameSavedSite(slug, to));
			}, { disabled: open, label: `Rename ${slug}` }),
			button('Delete', () => {
				if (confirm(`Delete the saved site "${slug}" and all its files?`)) siteAction(() => deleteSavedSite(slug));
			}, { disabled: open, className: 'danger', label: `Delete ${slug}` }),
			meta
		);
		return li;
	});
	if (items.length === 0) {
		const li = document.createElement('li');
		li.textContent = 'No saved sites yet.';
		items.push(li);
	}
	$('sites').replaceChildren(...items);
}

$('new-site').addEventListener('submit', (event) => {
	event.preventDefault();
	const slug = event.target.slug.value.trim();
	if (slug) openSite(slug); // the runtime refuses a bad name when it boots
});

// --- Import: the zip becomes a new site (saved, unless storage is temp). ---
$('import').addEventListener('change', async (event) => {
	const file = event.target.files[0];
	if (!file) return;
	$('site-error').textContent = '';
	try {
		const dir = await navigator.storage.getDirectory();
		const writable = await (await dir.getFileHandle(IMPORT_FILE, { create: true })).createWritable();
		await writable.write(file);
		await writable.close();
		if (params.get('storage') === 'temp') {
			reboot({ import: '1' });
			return;
		}
		// A new name from the file's; an existing site would ignore the zip.
		reboot({ 'site-slug': await slugForImport(file.name), import: '1' });
	} catch (error) {
		$('site-error').textContent = `Import failed: ${error?.message ?? error}`;
	}
});

// --- Once booted. ---
window.playground.then(
	async (client) => {
		currentSlug = client.siteSlug;
		if (params.has('import')) {
			// Taken: a reload must not look for it again.
			const url = new URL(location.href);
			url.searchParams.delete('import');
			history.replaceState(null, '', url);
		}
		$('status').textContent = `Ready in ${Math.round(performance.now() - started)} ms`;
		$('boot').hidden = true;
		$('site-info').textContent = currentSlug ? `Site “${currentSlug}” (saved in this browser)` : 'Temporary site (not saved)';
		const isolation = client.isolation();
		if (!isolation.crossOriginIsolated) {
			$('notice').textContent = `Single-worker mode: ${isolation.reason}. Files live in this worker only.`;
			$('notice').hidden = false;
		}
		if (client.storageNotice) {
			$('storage-notice').textContent = client.storageNotice;
			$('storage-notice').hidden = false;
		}
		if (!params.has('workers')) settings.workers.value = (await client.workers()).length;
		wireNavigation(client.absoluteUrl);
		wireExport(client);
		renderStatus(client);
		if (!$('panel').hidden) renderSites();
	},
	(error) => {
		$('status').textContent = `Boot failed: ${error?.message ?? error}`;
		$('status').classList.add('error');
		$('progress').hidden = true;
		showPanel(true); // another site or other settings may boot
	}
);

// --- Address bar: follows the (same-origin) iframe; Enter navigates. ---
function wireNavigation(base) {
	const go = (path) => {
		editing = false;
		iframe.src = new URL(path.replace(/^\/+/, ''), base).href;
	};
	// While the person types, the bar is theirs.
	let editing = false;
	const sync = () => {
		if (editing) return;
		let href;
		try {
			href = iframe.contentWindow.location.href;
		} catch {
			return; // another origin: keep the last path
		}
		if (href === 'about:blank') return;
		const path = href.startsWith(base) ? `/${href.slice(base.length)}` : href;
		if (address.value !== path) address.value = path;
	};
	address.addEventListener('input', () => (editing = true));
	address.addEventListener('blur', () => {
		editing = false;
		sync();
	});
	address.addEventListener('keydown', (event) => {
		if (event.key === 'Escape') {
			editing = false;
			sync();
		}
	});
	$('address-form').addEventListener('submit', (event) => {
		event.preventDefault();
		go(address.value.trim());
	});
	$('home').addEventListener('click', () => go('/'));
	$('admin').addEventListener('click', () => go('/wp-admin/'));
	$('reload').addEventListener('click', () => iframe.contentWindow.location.reload());
	iframe.addEventListener('load', sync);
	// pushState inside the site (the block editor) fires no load event.
	setInterval(sync, 500);
	for (const id of ['home', 'admin', 'reload', 'address']) $(id).disabled = false;
	sync();
}

function wireExport(client) {
	const exportButton = $('export');
	exportButton.disabled = false;
	exportButton.addEventListener('click', async () => {
		exportButton.disabled = true;
		$('site-error').textContent = '';
		try {
			const zip = await client.exportSite();
			const link = document.createElement('a');
			link.href = URL.createObjectURL(new Blob([zip], { type: 'application/zip' }));
			link.download = `${client.siteSlug ?? 'playground'}.zip`;
			link.click();
			setTimeout(() => URL.revokeObjectURL(link.href), 60000);
		} catch (error) {
			$('site-error').textContent = `Export failed: ${error?.message ?? error}`;
		} finally {
			exportButton.disabled = false;
		}
	});
}

// --- Status bar: workers every 0.5 s, the filesystem every 2 s (a job on a worker). ---
function renderStatus(client) {
	const renderWorkers = async () => {
		if (document.hidden) return;
		const workers = await client.workers().catch(() => []);
		$('workers').replaceChildren(
			...workers.map((w) => {
				const span = document.createElement('span');
				span.className = w.state;
				span.textContent = `#${w.index} ${w.state} (${w.completed})`;
				return span;
			})
		);
	};
	const renderFs = async () => {
		if (document.hidden) return;
		try {
			const s = await client.stats();
			$('fs').textContent = `FS ${megabytes(s.used)} of ${megabytes(s.capacity)} (peak ${megabytes(s.highWater)}), ${s.inodes} inodes, memory ${megabytes(s.memoryBytes)}`;
		} catch (error) {
			$('fs').textContent = `FS stats failed: ${error?.message ?? error}`;
		}
	};
	renderWorkers();
	// Not at once: a job now would make the site's first page wait, and
	// the pool then starts every other worker during it (Pool::defer).
	setTimeout(renderFs, 2000);
	setInterval(renderWorkers, 500);
	setInterval(renderFs, 2000);
}
