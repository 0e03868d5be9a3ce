#!/usr/bin/env bash
# Makes the Node interop peers runnable (idempotent): node and npm (from apt, only when
# missing), then `npm ci` in interop/node whenever package-lock.json changed since the last
# install. Prints nothing on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if ((${#need[@]})); then
  echo "installing ${need[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if ((major < 20)); then
  echo "warning: Node $(node --version) is older than the 20 that playwright-core needs" >&2
fi

dir=interop/node
stamp=$dir/node_modules/.sockeye-lock.sha256
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "npm ci in $dir" >&2
  (cd "$dir" && npm ci --no-audit --no-fund >&2)
  echo "$want" >"$stamp"
fi
