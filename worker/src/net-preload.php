<?php
// PHP's outgoing HTTP, preloaded before every script. The worker answers
// with fetch(); what a request may carry, redirects, timeouts and errors are
// decided in worker/src/net.rs, so this file only packs and unpacks.
namespace PhpPool;

// Why streams cannot wait for fetch() in this worker; empty when they can
// (worker/src/net.rs `preload_php`).
const STREAM_REFUSAL = '';

final class Http
{
	/**
	 * One request. `$headers` are "Name: value" lines (one string may hold
	 * several); `$options` (null = unset): query, follow, max_redirects,
	 * timeout (seconds), blocking, max_bytes, fail_on_status, mode.
	 * Returns ['status', 'head' => [status line, header lines...], 'body',
	 * 'url'] or ['error' => message].
	 */
	public static function send(string $method, string $url, array $headers, string $body, array $options = []): array
	{
		$fields = ['method=' . \rawurlencode($method), 'url=' . \rawurlencode($url), 'body=' . \rawurlencode($body)];
		foreach ($headers as $line) {
			$fields[] = 'header=' . \rawurlencode((string) $line);
		}
		foreach ($options as $name => $value) {
			if ($value !== null) {
				$fields[] = $name . '=' . \rawurlencode(\is_bool($value) ? ($value ? '1' : '0') : (string) $value);
			}
		}
		$reply = \post_message_to_js('php-pool-net?' . \implode('&', $fields));
		$answer = \is_string($reply) ? \unserialize($reply, ['allowed_classes' => false]) : false;
		return \is_array($answer) ? $answer : ['error' => "no answer from the worker for $url"];
	}
}

/** The http:// and https:// stream wrapper (file_get_contents, fopen): the
 *  whole response is read at open. */
final class HttpStream
{
	/** @var resource|null */
	public $context;
	/** The status line, then the header lines (stream_get_meta_data's wrapper_data). */
	public array $headers = [];
	public string $url = '';
	private string $body = '';
	private int $position = 0;

	public function stream_open(string $path, string $mode, int $options, ?string &$opened_path): bool
	{
		if (STREAM_REFUSAL !== '') {
			\trigger_error(STREAM_REFUSAL, \E_USER_WARNING);
			return false;
		}
		$http = \is_resource($this->context) ? (\stream_context_get_options($this->context)['http'] ?? []) : [];
		$header = $http['header'] ?? [];
		$answer = Http::send($http['method'] ?? 'GET', $path, \is_array($header) ? $header : [(string) $header], (string) ($http['content'] ?? ''), [
			'follow' => $http['follow_location'] ?? null,
			'max_redirects' => $http['max_redirects'] ?? null,
			'timeout' => $http['timeout'] ?? \ini_get('default_socket_timeout'),
			'fail_on_status' => !($http['ignore_errors'] ?? false),
			'mode' => $mode,
		]);
		if (isset($answer['error'])) {
			// PHP's own warning after this one only says the open failed.
			\trigger_error($answer['error'], \E_USER_WARNING);
			return false;
		}
		[$this->headers, $this->body, $this->url] = [$answer['head'], $answer['body'], $answer['url']];
		return true;
	}

	// No union return types: this file runs on PHP 7.4 too.
	/** @return string|false */
	public function stream_read(int $count)
	{
		$chunk = (string) \substr($this->body, $this->position, $count);
		$this->position += \strlen($chunk);
		return $chunk;
	}

	public function stream_eof(): bool
	{
		return $this->position >= \strlen($this->body);
	}

	public function stream_stat(): array
	{
		return ['size' => \strlen($this->body)];
	}

	/** @return array|false */
	public function url_stat(string $path, int $flags)
	{
		return false;
	}
}

foreach (['http', 'https'] as $scheme) {
	if (\in_array($scheme, \stream_get_wrappers(), true)) {
		\stream_wrapper_unregister($scheme);
	}
	\stream_wrapper_register($scheme, HttpStream::class, \STREAM_IS_URL);
}
