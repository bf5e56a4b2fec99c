#!/usr/bin/env bash
# Runs every test Drawmesh has, installing what is missing first (see scripts/install-tools.sh):
#   1. formatting and lints (cargo fmt --check, cargo clippy on host and wasm)
#   2. native tests: the shared crate (protocol, drawing) and the server over real HTTP + SSE
#   3. the wasm client's tests in headless Chromium (wasm-bindgen-test + chromedriver)
#   4. end to end: the release client built by trunk, served by the real server, driven in
#      several headless Chromium browsers (e2e/, playwright-core on Debian's chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
source scripts/env.sh

step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p client --all-targets --target wasm32-unknown-unknown -- -D warnings

step "native tests (shared, server)"
cargo test --workspace --exclude client

step "the server's HTTP + SSE suites again, on the Redis hub (a redis-server per test)"
DRAWMESH_TEST_HUB=redis cargo test -p server --test signaling --test refusals --test turn --test streams

step "wasm client tests in headless Chromium"
cargo test -p client --target wasm32-unknown-unknown

step "end-to-end tests in headless Chromium"
trunk build --release --skip-version-check
cargo build -p server --bin drawmesh-server
(cd e2e && DRAWMESH_SERVER_BIN="$PWD/../target/debug/drawmesh-server" DRAWMESH_DIST="$PWD/../dist" npm test)
