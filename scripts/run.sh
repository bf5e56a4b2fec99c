#!/usr/bin/env bash
# Runs Drawmesh: installs what is missing, builds the web client (release) and starts the server,
# which prints the URL to open. Flags after `--` go to the server (see --help), e.g.
#   scripts/run.sh -- --port 8080 --bind 0.0.0.0
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
source scripts/env.sh
[ "${1:-}" = "--" ] && shift
echo "[run] building the web client (trunk build --release)"
trunk build --release --skip-version-check
echo "[run] building and starting the server"
exec cargo run --release -p server --bin drawmesh-server -- --dist dist "$@"
