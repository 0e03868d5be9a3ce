#!/usr/bin/env bash
# Runs every test Sockeye has, on a fresh Debian machine or a developer's:
#   1. formatting and lints (cargo fmt, clippy -D warnings)
#   2. the Python venv with the interop peers (scripts/setup-python.sh)
#   3. Node `ws` and Debian's Chromium (scripts/setup-node.sh, scripts/setup-browser.sh),
#      autobahn-js for the WAMP interop tests (scripts/setup-wamp-js.sh)
#   4. each feature of sockeye and sockeye-proto alone (cargo hack clippy), then cargo test for the
#      whole workspace, with the real-peer tests required
#   5. a smoke pass of every fuzz target (fuzz/run.sh --smoke)
#   6. headless Chromium against the release `sockeye serve` and examples/axum_echo, over HTTP/1.1
#      and HTTP/2 (node --test interop/browser)
#   7. Autobahn|Testsuite, two runs at a time: every case (compression included) for our
#      server and our client; `sockeye serve` over wss:// and the axum extractor
#      (examples/axum_echo) without the compression cases 12.* and 13.*, which the plain server
#      run already covers through the same code
# SOCKEYE_AUTOBAHN_EXCLUDE='12.*,13.*' skips the slow compression cases everywhere while iterating.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
passed=0
failed=0
stage() {
  local name=$1 start=$SECONDS
  shift
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "=== done in $((SECONDS - start)) s: $name"
  else
    failed=$((failed + 1))
    echo "=== FAILED after $((SECONDS - start)) s: $name"
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
# The NATS server (JetStream) that joins `sockeye serve` nodes in the cluster tests
# (crates/sockeye-cluster/tests/nats.rs, crates/sockeye-cli/tests/cluster.rs).
[[ -x /usr/sbin/nats-server ]] || command -v nats-server >/dev/null || need+=(nats-server)
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

stage "cargo fmt" cargo fmt --all -- --check
stage "cargo clippy" cargo clippy --workspace --all-targets --all-features -- -D warnings
stage "packaging: cargo package, doc, install, a crate on the packaged sockeye" bash scripts/check-package.sh
PY=$(scripts/setup-python.sh)
export SOCKEYE_PYTHON=$PY SOCKEYE_REQUIRE_INTEROP=1
stage "setup Node peers" bash scripts/setup-node.sh
stage "setup autobahn-js (WAMP peers)" bash scripts/setup-wamp-js.sh
stage "setup Chromium" bash scripts/setup-browser.sh
# Each feature of sockeye and sockeye-proto alone, and none, is clippy-clean (cargo-hack, installed
# once), and a sockeye without features still speaks ws:// and refuses RSV1 (tests/without_deflate.rs).
feature_matrix() {
  cargo hack --version >/dev/null 2>&1 || cargo install cargo-hack --locked
  cargo hack clippy -p sockeye -p sockeye-proto --each-feature --no-dev-deps -- -D warnings &&
    cargo test -p sockeye --no-default-features --test without_deflate
}
stage "feature matrix (cargo hack --each-feature)" feature_matrix
# Not --all-features: that adds rustls-aws-lc (aws-lc-sys, minutes of C in release) for tests that
# ring already runs; the feature matrix above checks aws-lc, and clippy checks all features.
# The `ci` profile (Cargo.toml) is release without LTO: the tests push real traffic, and thin LTO
# of every test binary took 22 of the build's minutes. Browsers and Autobahn meet the release
# build users get (below, and the packaging stage's cargo install).
stage "cargo test" cargo test --workspace --profile ci --features sockeye/hyper,sockeye/axum
stage "build sockeye (release)" cargo build --release -p sockeye-cli
stage "build examples (Autobahn drivers, axum_echo)" cargo build --release -p sockeye --examples --features axum
# Every fuzz target over its committed corpus, then 5 s of fuzzing each (a debug build without
# ASan: about 2 minutes to build, 1.5 to run). The long runs are fuzz/run.sh SECONDS.
fuzz_smoke() {
  cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
  bash fuzz/run.sh --smoke
}
stage "fuzz smoke (fuzz/run.sh --smoke)" fuzz_smoke
stage "Chromium -> sockeye serve and the axum example (node --test)" node --test interop/browser/*.test.mjs

# wstest is single-threaded Python and keeps one core busy, so two runs share the machine's two
# cores; each run's output goes to its own log, printed when it ends.
declare -A autobahn_pid
autobahn_start() {
  local mode=$1
  shift
  mkdir -p interop/out
  bash interop/autobahn/run.sh "$mode" "$@" >"interop/out/autobahn-$mode.log" 2>&1 &
  autobahn_pid[$mode]=$!
}
autobahn_wait() {
  local rc=0
  wait "${autobahn_pid[$1]}" || rc=$?
  cat "interop/out/autobahn-$1.log"
  return $rc
}
stage "install Autobahn" bash interop/autobahn/install.sh
no_compression=${SOCKEYE_AUTOBAHN_EXCLUDE:-12.*,13.*}
autobahn_start server
autobahn_start client
stage "Autobahn fuzzingclient -> sockeye server" autobahn_wait server
stage "Autobahn fuzzingserver <- sockeye client" autobahn_wait client
autobahn_start server-tls --exclude "$no_compression"
autobahn_start axum --exclude "$no_compression"
stage "Autobahn fuzzingclient -> sockeye serve over wss:// (no 12.*, 13.*)" autobahn_wait server-tls
stage "Autobahn fuzzingclient -> axum extractor over HTTP/1.1 (no 12.*, 13.*)" autobahn_wait axum
# The compression cases again under the two other permessage-deflate policies.
compression_cases=${SOCKEYE_AUTOBAHN_POLICY_CASES:-12.*,13.*}
autobahn_start server-fast "$compression_cases"
autobahn_start server-max "$compression_cases"
stage "Autobahn fuzzingclient -> sockeye server, compression policy fast (12.*, 13.*)" autobahn_wait server-fast
stage "Autobahn fuzzingclient -> sockeye server, compression policy max (12.*, 13.*)" autobahn_wait server-max

echo
for mode in server client server-tls axum server-fast server-max; do
  [[ -f interop/out/autobahn-$mode/summary.md ]] && { echo "Autobahn, $mode:"; cat "interop/out/autobahn-$mode/summary.md"; echo; }
done
echo "test stages: $passed passed, $failed failed, in $SECONDS s"
((failed == 0))
