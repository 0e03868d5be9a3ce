#!/usr/bin/env bash
# Runs every test Sockeye has, on a fresh Debian machine or a developer's:
#   1. formatting and lints (cargo fmt, clippy -D warnings)
#   2. the Python venv with the interop peers (scripts/setup-python.sh)
#   3. Node `ws` and Debian's Chromium (scripts/setup-node.sh, scripts/setup-browser.sh),
#      autobahn-js for the WAMP interop tests (scripts/setup-wamp-js.sh)
#   4. cargo test for the whole workspace, with the real-peer tests required
#   5. headless Chromium against the release `sockeye serve` (node --test interop/browser)
#   6. Autobahn|Testsuite, every case (compression included), our server (plain, and
#      `sockeye serve` over wss://) and our client
# SOCKEYE_AUTOBAHN_EXCLUDE='12.*,13.*' skips the slow compression cases while iterating.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
passed=0
failed=0
stage() {
  local name=$1
  shift
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "=== FAILED: $name"
  fi
}

# Tools a bare machine may lack: pip and venv for the peers, a C compiler for wheels built from
# source.
need=()
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v cc >/dev/null || need+=(gcc)
# The HTTP proxy the client's proxy tests tunnel through (each test runs its own, on loopback).
command -v tinyproxy >/dev/null || need+=(tinyproxy)
# The SOCKS5 proxy of the same tests (crates/sockeye/tests/proxy.rs).
command -v microsocks >/dev/null || need+=(microsocks)
# The reverse proxy `sockeye serve` is tested behind (crates/sockeye-cli/tests/reverse_proxy.rs
# runs its own, on loopback, with its own configuration); openssl makes interop/browser/wss.test.mjs's
# certificates.
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || need+=(nginx)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

stage "cargo fmt" cargo fmt --all -- --check
stage "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
PY=$(scripts/setup-python.sh)
export SOCKEYE_PYTHON=$PY SOCKEYE_REQUIRE_INTEROP=1
stage "setup Node peers" bash scripts/setup-node.sh
stage "setup autobahn-js (WAMP peers)" bash scripts/setup-wamp-js.sh
stage "setup Chromium" bash scripts/setup-browser.sh
stage "cargo test" cargo test --workspace --release
stage "build sockeye (release)" cargo build --release -p sockeye-cli
stage "Chromium -> sockeye serve (node --test)" node --test interop/browser/*.test.mjs
stage "build Autobahn drivers" cargo build --release -p sockeye --examples
stage "Autobahn fuzzingclient -> sockeye server" bash interop/autobahn/run.sh server
stage "Autobahn fuzzingclient -> sockeye serve over wss://" bash interop/autobahn/run.sh server-tls
stage "Autobahn fuzzingserver <- sockeye client" bash interop/autobahn/run.sh client

echo
for mode in server server-tls client; do
  [[ -f interop/out/autobahn-$mode/summary.md ]] && { echo "Autobahn, $mode:"; cat "interop/out/autobahn-$mode/summary.md"; echo; }
done
echo "test stages: $passed passed, $failed failed"
((failed == 0))
