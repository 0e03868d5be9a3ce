#!/usr/bin/env bash
# Runs Autobahn|Testsuite against Sockeye and checks the report.
#   server: wstest -m fuzzingclient tests examples/autobahn_server
#   server-tls: wstest -m fuzzingclient tests `sockeye serve --listen-tls` at wss://…/echo, with a
#     self-signed certificate made by openssl for the run (wstest does not verify it)
#   client: wstest -m fuzzingserver is driven by examples/autobahn_client
#   axum: wstest -m fuzzingclient tests examples/axum_echo (Sockeye's axum extractor behind
#     axum::serve) at ws://…/echo
#   server-fast, server-max: as server, with that permessage-deflate policy (server: balanced)
# Build first: cargo build --release -p sockeye --examples --features axum (server-tls: -p sockeye-cli)
set -euo pipefail

usage() {
  echo "usage: $0 server|server-tls|client|axum|server-fast|server-max [CASES] [--exclude CASES]   (CASES: comma-separated, e.g. '1.*,2.1')" >&2
  exit 2
}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mode=${1:-}
# server-fast, server-max: the server example with that permessage-deflate policy (server runs
# the default, balanced).
[[ $mode =~ ^(server|server-tls|client|axum|server-fast|server-max)$ ]] || usage
policy=
if [[ $mode == server-fast || $mode == server-max ]]; then
  policy=${mode#server-}
fi
shift
cases='*'
exclude=${SOCKEYE_AUTOBAHN_EXCLUDE:-}
while (($#)); do
  case $1 in
    --exclude) (($# >= 2)) || usage; exclude=$2; shift 2 ;;
    --exclude=*) exclude=${1#*=}; shift ;;
    -*) usage ;;
    *) cases=$1; shift ;;
  esac
done
# A whole run takes 11-13 minutes; this only bounds a hung peer.
limit=${SOCKEYE_AUTOBAHN_TIMEOUT:-1800}

if [[ $mode == server-tls ]]; then
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/sockeye
  [[ -x $bin ]] || { echo "missing $bin; run: cargo build --release -p sockeye-cli" >&2; exit 1; }
elif [[ $mode == axum ]]; then
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/examples/axum_echo
  [[ -x $bin ]] || { echo "missing $bin; run: cargo build --release -p sockeye --examples --features axum" >&2; exit 1; }
elif [[ -n $policy ]]; then
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/examples/autobahn_server
  [[ -x $bin ]] || { echo "missing $bin; run: cargo build --release -p sockeye --examples" >&2; exit 1; }
else
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/examples/autobahn_$mode
  [[ -x $bin ]] || { echo "missing $bin; run: cargo build --release -p sockeye --examples" >&2; exit 1; }
fi
"$here/install.sh"
wstest=$repo/interop/.cache/autobahn/bin/wstest

out=${SOCKEYE_AUTOBAHN_OUT:-$repo/interop/out/autobahn-$mode}
rm -rf "$out"
mkdir -p "$out"

# Everything runs in the background and is waited for with `wait`, which (unlike a foreground
# child) lets a trapped Ctrl-C or TERM through at once.
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: until 127.0.0.1:PORT accepts connections; fails early if PID has exited.
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "process $2 exited before listening on port $1" >&2; return 1; }
    sleep 0.1
  done
  echo "nothing listening on 127.0.0.1:$1 after 10 s" >&2
  return 1
}

# wstest waits forever when the selection is empty, so read the count it announces first.
check_planned() {
  local n=
  for _ in $(seq 300); do
    n=$(sed -n 's/.*will run \([0-9]*\) test cases.*/\1/p' "$out/wstest.log")
    [[ -n $n ]] && break
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $n && $n != 0 ]] || { echo "wstest selected no cases (or failed); see $out/wstest.log" >&2; exit 1; }
  echo "autobahn: wstest runs $n cases"
}

# spec FILE KEY=JSON...: writes the wstest spec with the case selection and outdir filled in.
spec() {
  python3 - "$out" "$cases" "$exclude" "$@" <<'PY'
import json, sys
outdir, cases, exclude, file, *extra = sys.argv[1:]
split = lambda s: [c.strip() for c in s.split(",") if c.strip()]
spec = {"outdir": outdir, "cases": split(cases), "exclude-cases": split(exclude)}
spec.update({k: json.loads(v) for k, v in (kv.split("=", 1) for kv in extra)})
json.dump(spec, open(file, "w"), indent=2)
PY
}

port=$(free_port)
echo "autobahn: $mode mode, cases '$cases', excluding '${exclude:-none}', reports in $out"
if [[ $mode != client ]]; then
  if [[ $mode == server || -n $policy ]]; then
    "$bin" "127.0.0.1:$port" ${policy:+"$policy"} >"$out/server.log" 2>&1 &
    url=ws://127.0.0.1:$port
  elif [[ $mode == axum ]]; then
    "$bin" "127.0.0.1:$port" >"$out/server.log" 2>&1 &
    url=ws://127.0.0.1:$port/echo
  else
    # A key made for this run only, in the report folder (removed by the next run).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
      -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
      -keyout "$out/server.key" -out "$out/server.pem" 2>/dev/null
    # /echo of sockeye serve: no keepalive pings to interleave with the cases' frames.
    "$bin" serve --listen-tls "127.0.0.1:$port" --tls-cert "$out/server.pem" \
      --tls-key "$out/server.key" --ping-interval 0 --log-level warn >"$out/server.log" 2>&1 &
    url=wss://127.0.0.1:$port/echo
  fi
  server=$!
  pids+=("$server")
  wait_port "$port" "$server"
  spec "$out/fuzzingclient.json" "servers=[{\"agent\": \"sockeye\", \"url\": \"$url\"}]"
  (cd "$out" && exec timeout "$limit" "$wstest" -m fuzzingclient -s fuzzingclient.json) \
    >"$out/wstest.log" 2>&1 &
  ws=$!
  pids+=("$ws")
  check_planned "$ws"
  echo "autobahn: wstest -m fuzzingclient running (log: $out/wstest.log)"
  wait "$ws" || { echo "wstest failed or timed out; see $out/wstest.log" >&2; exit 1; }
  # wstest stops at the first refused connection, so a crash would otherwise look like a short run.
  kill -0 "$server" 2>/dev/null || { echo "the server exited during the run; see $out/server.log" >&2; exit 1; }
else
  spec "$out/fuzzingserver.json" "url=\"ws://127.0.0.1:$port\""
  # --webport 0: no HTTP report browser; the reports are written to outdir anyway.
  (cd "$out" && exec "$wstest" -m fuzzingserver -s fuzzingserver.json --webport 0) >"$out/wstest.log" 2>&1 &
  ws=$!
  pids+=("$ws")
  wait_port "$port" "$ws"
  check_planned "$ws"
  echo "autobahn: autobahn_client running (log: $out/client.log)"
  timeout "$limit" "$bin" "ws://127.0.0.1:$port" >"$out/client.log" 2>&1 &
  client=$!
  pids+=("$client")
  wait "$client" || { echo "autobahn_client failed or timed out; see $out/client.log" >&2; exit 1; }
  # /updateReports makes wstest write the reports; give it a moment to finish.
  for _ in $(seq 50); do [[ -f $out/index.json ]] && break; sleep 0.1; done
fi

python3 "$here/check_report.py" "$out"
