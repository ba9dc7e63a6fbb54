// The playground driven from an embedding page (any origin) by postMessage,
// mirroring the client:
//   parent -> iframe: {type: 'playground:call', id, method, args}
//   iframe -> parent: {type: 'playground:result', id, result} | {..., error}
// and {type: 'playground:ready', absoluteUrl} once booted. Only the parent
// window may call.
const METHODS = new Set([
	'run',
	'request',
	'defineConstant',
	'writeFile',
	'readFileAsText',
	'readFileAsBuffer',
	'mkdir',
	'mkdirTree',
	'unlink',
	'mv',
	'cp',
	'rmdir',
	'listFiles',
	'isDir',
	'fileExists',
	'chdir',
	'exportSite',
	'workers',
	'stats',
	'isolation',
]);

export function serveEmbedder(clientPromise) {
	if (window.parent === window) return;
	window.addEventListener('message', async (event) => {
		const message = event.data;
		if (event.source !== window.parent || message?.type !== 'playground:call') return;
		const reply = (body) => event.source.postMessage({ type: 'playground:result', id: message.id, ...body }, event.origin);
		if (!METHODS.has(message.method)) {
			reply({ error: `unknown method ${message.method}` });
			return;
		}
		try {
			const client = await clientPromise;
			reply({ result: await client[message.method](...(message.args ?? [])) });
		} catch (error) {
			reply({ error: String(error?.message ?? error) });
		}
	});
	clientPromise.then(
		(client) => window.parent.postMessage({ type: 'playground:ready', absoluteUrl: client.absoluteUrl }, '*'),
		(error) => window.parent.postMessage({ type: 'playground:error', error: String(error?.message ?? error) }, '*')
	);
}
