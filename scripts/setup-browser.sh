#!/usr/bin/env bash
# Makes the headless-browser interop tests runnable (idempotent): Debian's Chromium at
# /usr/bin/chromium (installed with apt only when missing) and the Node packages of
# interop/node (playwright-core drives that Chromium; it downloads no browser of its own).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-node.sh >&2
if [[ ! -x /usr/bin/chromium ]]; then
  echo "installing chromium" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >&2
fi
/usr/bin/chromium --version >&2
