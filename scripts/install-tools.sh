#!/usr/bin/env bash
# Installs everything Drawmesh needs to build, run and test, on a fresh Debian machine with rustup.
# Idempotent: each step checks first, so a warm machine skips the ~17 minutes of cargo installs.
# Tools land in ~/.cargo/bin and .tools/ (wasm-opt from npm); `source scripts/env.sh` puts them on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen pinned in Cargo.toml / Cargo.lock
BINARYEN_VERSION=132.0.0       # Debian's binaryen (wasm-opt 108) silently breaks release builds

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v turnserver >/dev/null || need_apt+=(coturn)   # TURN relay for the e2e test of relayed peers
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)   # the load balancer of the multi-process e2e
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian's wasm-opt 108 must never be picked up (see above).
if command -v wasm-opt >/dev/null && wasm-opt --version 2>/dev/null | grep -q 'version 108'; then
  log "warning: Debian's binaryen (wasm-opt 108) is installed; .tools/ wasm-opt is put first on PATH"
fi

if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
  log "cargo install trunk $TRUNK_VERSION (about 12 minutes, once)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 5 minutes, once)"
  # No --locked: its lockfile pins a crate the registry lacks.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
if [ ! -x "$root/.tools/node_modules/.bin/wasm-opt" ]; then
  log "npm install binaryen@$BINARYEN_VERSION into .tools/"
  npm install --silent --no-audit --no-fund --prefix "$root/.tools" "binaryen@$BINARYEN_VERSION"
fi
if [ ! -d "$root/e2e/node_modules/playwright-core" ] && [ -f "$root/e2e/package.json" ]; then
  log "npm ci in e2e/ (playwright-core; drives Debian's chromium, downloads no browser)"
  (cd "$root/e2e" && npm ci --silent --no-audit --no-fund)
fi
log "tools ready"
