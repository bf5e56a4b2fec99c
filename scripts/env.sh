# Sourced by the other scripts: puts the project's tools first on PATH.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$_root/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
