# Entry points. README's two commands are `make serve` and `make test`;
# CI (.ci/run) runs `make test`. Every target first runs the idempotent setup.
.PHONY: setup build serve test test-native test-posix test-e2e bench

setup:
	./scripts/setup.sh

# The one build: cargo (worker with atomics, host, service worker),
# wasm-bindgen, esbuild, assembled into dist/.
build: setup
	node playground/build.mjs

serve: build
	node playground/serve.mjs

test-native: setup
	cargo test --workspace --release

# pjdfstest against a FUSE mount of shared-fs (needs root and /dev/fuse).
test-posix: setup
	bash shared-fs/tests/pjdfstest.sh

# target/dist-faults/ (the worker with test-only fault injection) for
# e2e/worker-death.test.mjs; rebuilds only the worker, in its own cache.
# The files are listed, not the folder: Node 21+ runs a folder argument as
# one module and fails. --test-timeout bounds each file (Node applies it per
# file); each test has its own 300 s limit that names it (e2e/harness.mjs).
test-e2e: build
	node playground/build.mjs --fault-injection
	node --test --test-concurrency=1 --test-timeout=900000 e2e/*.test.mjs

test: test-native test-posix test-e2e

# Every speed figure against its baseline (README: Benchmarks); the
# WordPress figures' peer, Playground's own engine, is bundled first. Its
# packages are bench/peer/'s own, installed only here (not by setup), and
# only when bench/peer/node_modules is missing or older than its lock.
bench: build
	if [ ! -d bench/peer/node_modules ] || [ bench/peer/package-lock.json -nt bench/peer/node_modules/.package-lock.json ]; then \
		npm ci --prefix bench/peer --no-audit --no-fund --loglevel=error; \
	fi
	node playground/build.mjs --bench-peer
	node bench/run.mjs
