<?php
// The filesystem operations a PHP site does most, timed under one directory.
// Run twice in the same worker: on the shared-fs mount and on php-wasm's
// private MEMFS (/tmp), so the ratio cancels the machine's noise.
// Prints JSON: {operation: microseconds per operation}.

$base = $argv_base ?? '/tmp/bench';
$rounds = $argv_rounds ?? 5;

function setup(string $base): void {
	@mkdir($base, 0777, true);
	@mkdir("$base/small");
	@mkdir("$base/dir");
	@mkdir("$base/inc");
	for ($i = 0; $i < 100; $i++) {
		file_put_contents("$base/small/$i.txt", str_repeat('x', 100));
		file_put_contents("$base/inc/$i.php", "<?php \$GLOBALS['included'][] = $i;");
	}
	for ($i = 0; $i < 1000; $i++) {
		file_put_contents("$base/dir/entry-$i", '');
	}
	file_put_contents("$base/big.bin", str_repeat(md5('1 MiB'), 1048576 / 32));
}

/** Median over $rounds of the time per call of $op, in microseconds. */
function measure(int $rounds, int $calls, callable $op): float {
	$times = [];
	for ($r = 0; $r < $rounds; $r++) {
		$start = hrtime(true);
		for ($i = 0; $i < $calls; $i++) {
			$op($i);
		}
		$times[] = (hrtime(true) - $start) / $calls / 1000;
	}
	sort($times);
	return $times[intdiv(count($times), 2)];
}

setup($base);
clearstatcache();
$result = [
	'stat' => measure($rounds, 1000, fn($i) => stat("$base/small/" . ($i % 100) . '.txt')),
	'fopen+fread 100 B+fclose' => measure($rounds, 1000, function ($i) use ($base) {
		$f = fopen("$base/small/" . ($i % 100) . '.txt', 'r');
		fread($f, 100);
		fclose($f);
	}),
	'file_get_contents 1 MiB' => measure($rounds, 50, fn() => file_get_contents("$base/big.bin")),
	'scandir 1000 entries' => measure($rounds, 20, fn() => scandir("$base/dir")),
	'include 100 files' => measure($rounds, 5, function () use ($base) {
		for ($i = 0; $i < 100; $i++) {
			include "$base/inc/$i.php";
		}
	}),
	'write+unlink 100 B' => measure($rounds, 500, function ($i) use ($base) {
		file_put_contents("$base/tmp-$i", str_repeat('y', 100));
		unlink("$base/tmp-$i");
	}),
];
echo json_encode($result);
