// The playground page: boots the runtime from the URL's options and exposes
// the client as `window.playground` (a promise), the same client an
// embedding page gets from startPlayground().
import { startPlayground } from './host/index.js';
import { serveEmbedder } from './embed-api.js';

const params = new URLSearchParams(location.search);
const numberParam = (name) => (params.has(name) ? Number(params.get(name)) : undefined);
const status = document.getElementById('status');
const progress = document.getElementById('progress');
const started = performance.now();

window.playground = startPlayground({
	workers: numberParam('workers') ?? 2,
	site: params.get('site') ?? 'wordpress',
	memoryMaximumMb: numberParam('memoryMaximumMb'),
	maxQueue: numberParam('maxQueue'),
	queueTimeoutMs: numberParam('queueTimeoutMs'),
	requestTimeoutMs: numberParam('requestTimeoutMs'),
	phpBuild: params.get('phpBuild') ?? undefined,
	iframe: document.getElementById('site'),
	onProgress: ({ stage, done, total }) => {
		progress.value = done / total;
		status.textContent = `Booting… ${stage} (${done}/${total})`;
	},
});

serveEmbedder(window.playground);

window.playground.then(
	(client) => {
		status.textContent = `Ready in ${Math.round(performance.now() - started)} ms — ${client.absoluteUrl}`;
		const isolation = client.isolation();
		if (!isolation.crossOriginIsolated) {
			const notice = document.getElementById('notice');
			notice.textContent = `Single-worker mode: ${isolation.reason}. Files live in this worker only.`;
			notice.hidden = false;
		}
		const panel = document.getElementById('workers');
		const render = () => {
			panel.replaceChildren(
				...client.workers().map((w) => {
					const span = document.createElement('span');
					span.className = w.state;
					span.textContent = `#${w.index} ${w.state} (${w.completed})`;
					return span;
				})
			);
		};
		progress.hidden = true;
		render();
		setInterval(render, 500);
	},
	(error) => {
		status.textContent = `Boot failed: ${error?.message ?? error}`;
		status.classList.add('error');
	}
);
