#!/usr/bin/env bash
# Makes the autobahn-js WAMP peers runnable (idempotent): node and npm (from apt, only when
# missing), then `npm ci` in interop/wamp-js whenever its package-lock.json changed since the
# last install. Prints nothing on stdout; progress goes to stderr.
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

dir=interop/wamp-js
stamp=$dir/node_modules/.sockeye-lock.sha256
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "npm ci in $dir" >&2
  (cd "$dir" && npm ci --no-audit --no-fund >&2)
  echo "$want" >"$stamp"
fi
(cd "$dir" && node -e 'require("autobahn")')
