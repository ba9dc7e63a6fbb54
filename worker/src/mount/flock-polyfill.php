<?php
// Replaces php.wasm's flock(), a no-op stub compiled into the binary:
// php.ini disables the built-in (PHP 8 then allows redefining it) and this
// preload file asks the worker (worker/src/php_messages.rs). PHP 7.4 cannot
// redefine a built-in: there it keeps the stub (worker/src/php_ini.rs).
if (PHP_VERSION_ID >= 80000) {
function flock($stream, int $operation, &$would_block = null): bool {
	$would_block = false;
	$meta = stream_get_meta_data($stream);
	$stat = fstat($stream);
	// The path last: it is the rest of the message, spaces and all.
	$reply = post_message_to_js(sprintf('php-pool-flock?%d %d %d %s',
		$stat ? $stat['ino'] : -1, (int) $stream, $operation, $meta['uri'] ?? ''));
	if ($reply === 'EWOULDBLOCK') {
		$would_block = true;
	}
	return $reply === 'ok';
}
}
