#!/usr/bin/env bash
# Idempotent setup for a fresh machine of this kind (Debian, root, rustup):
# installs what is missing and skips what is there. Used by `make serve`,
# `make test` and CI. Everything comes from crates.io, Debian, the npm
# registry and rustup's own toolchain channel.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

nightly=$(cat scripts/nightly-version)

# Rust: stable wasm target for host and service worker; the pinned nightly
# with rust-src for the worker's atomics (build-std) build.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
	say "adding wasm32-unknown-unknown (stable)"
	rustup target add wasm32-unknown-unknown
fi
if ! rustup toolchain list | grep -q "^${nightly}"; then
	say "installing ${nightly}"
	rustup toolchain install "${nightly}" --profile minimal --component rust-src --target wasm32-unknown-unknown
fi
if ! rustup +"${nightly}" component list --installed | grep -q '^rust-src'; then
	rustup component add rust-src --toolchain "${nightly}"
fi
if ! rustup +"${nightly}" target list --installed | grep -qx wasm32-unknown-unknown; then
	rustup target add wasm32-unknown-unknown --toolchain "${nightly}"
fi

# The wasm-bindgen CLI must be exactly the version of the crate in Cargo.lock.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "${bindgen_version}" ]; then
	say "installing wasm-bindgen-cli ${bindgen_version} (about 3 minutes)"
	cargo install wasm-bindgen-cli --version "${bindgen_version}"
fi
if ! command -v wasm-pack >/dev/null; then
	say "installing wasm-pack (about 2 minutes)"
	cargo install wasm-pack --version 0.15.1
fi

# pjdfstest (POSIX conformance suite run against the FUSE mount of shared-fs).
if ! command -v pjdfstest >/dev/null; then
	say "installing pjdfstest (about 1 minute)"
	cargo install pjdfstest --version 0.2.2
fi

# Debian: Chromium (Playwright drives it), Firefox ESR (puppeteer-core
# drives it over WebDriver BiDi) and WebKitGTK's driver with Xvfb (plain
# WebDriver; Safari's engine) for browser tests; FUSE for the POSIX suite.
missing=()
for pkg in chromium chromium-driver firefox-esr webkit2gtk-driver xvfb fuse3 libfuse3-dev pkg-config unzip; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Node: 20.11 or newer, for --test-timeout (Makefile). The e2e suite is run
# on Node 20; the Makefile lists its files so that Node 22+ (which does not
# search a folder given to --test) runs it too. The machine's Node is used.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 11) ? 0 : 1)'; then
	say "Node 20.11 or newer is needed; found $(node --version 2>/dev/null || true)"
	exit 1
fi

# npm packages, exactly as package-lock.json pins them.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	say "npm ci"
	npm ci --no-audit --no-fund --loglevel=error
fi
# The SQLite integration new sites get, pinned in package.json.
node scripts/fetch-sqlite-integration.mjs
say "ready"
