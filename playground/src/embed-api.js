// The playground driven from an embedding page (any origin) by postMessage,
// mirroring the client:
//   parent -> iframe: {type: 'playground:call', id, method, args}
//   iframe -> parent: {type: 'playground:result', id, result} | {..., error}
// and {type: 'playground:ready', absoluteUrl} once booted. Only the parent
// window may call, and only the client's `embeddableMethods`.
export function serveEmbedder(clientPromise) {
	if (window.parent === window) return;
	window.addEventListener('message', async (event) => {
		const message = event.data;
		if (event.source !== window.parent || message?.type !== 'playground:call') return;
		const reply = (body) => event.source.postMessage({ type: 'playground:result', id: message.id, ...body }, event.origin);
		try {
			const client = await clientPromise;
			if (!client.embeddableMethods.includes(message.method)) {
				reply({ error: `unknown method ${message.method}` });
				return;
			}
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
