#!/usr/bin/env bash
# Compares sockeye's echo server with other Rust WebSocket servers, in one invocation:
# builds everything, pins each server and the load generator to different cores, runs the
# contenders interleaved in a rotated order over several rounds, and writes a markdown report
# of medians and ratios to benches/results/YYYY-MM-DD.md (raw JSON lines beside it).
#
#   benches/compare.sh [--quick] [options]
#
#   --quick              1 and 100 connections x 20 B and 16 KiB, 2 s runs, 1000 idle connections
#   --rounds N           rounds (default 3); each cell reports the median over rounds
#   --duration S         measured seconds per run (full: 5, quick: 2)
#   --warmup S           warm-up seconds per run (full: 1, quick: 0.5)
#   --connections "..."  connection counts (full: "1 10 100 1000")
#   --sizes "..."        message sizes in bytes (full: "20 1024 16384 1048576")
#   --idle N             idle connections for the memory measurement (full: 10000, quick: 1000)
#   --scenarios "..."    any of: binary text deflate idle tls firehose broadcast (default: the
#                        first four and broadcast)
#   --subscribers "..."  broadcast: subscriber counts (full: "1000 10000", quick: "1000"), each
#                        with 20 B and 1 KiB text messages from one publisher on /chat
#   --tls                only the TLS cells: --scenarios tls (binary echo over wss:// against ws://,
#                        for the contenders that take --tls-cert: sockeye, tungstenite)
#                        http2: 100 WebSockets on one HTTP/2 connection against 100 HTTP/1.1
#                        connections to `sockeye serve`, both driven by Sockeye's own client
#                        (`sockeye bench --library [--http2]`); axum: the same axum app with
#                        Sockeye's extractor and with axum's own WebSocket (tokio-tungstenite)
#   --contenders "..."   subset of: sockeye tungstenite fastwebsockets tokio-websockets yawc,
#                        serve (`sockeye serve` with its default config, logging at warn),
#                        sockeye-base (needs --base-bin) and serve-base (needs --serve-base-bin)
#   --base-bin PATH      the sockeye peer server built from another revision, run as the
#                        contender sockeye-base: an A/B of a change in the same interleaved run
#   --serve-base-bin PATH  the `sockeye` binary of another revision, run as the contender
#                        serve-base: an A/B of `sockeye serve` itself
#   --multi-thread       run the servers on tokio's multi-thread runtime
#   --server-cpus LIST   taskset CPU list of the servers (default 0)
#   --client-cpus LIST   taskset CPU list of the load generator (default 1)
#   --jobs N             cargo build jobs (default 1: builds share the machine)
#   --no-build           use the binaries already built
#   --report-only        run nothing: rebuild the report --out from its raw results (.jsonl)
#   --out FILE           the markdown report (default benches/results/YYYY-MM-DD.md)
#
# The main workspace builds into $CARGO_TARGET_DIR (default target/), this folder's workspace
# into $BENCHES_TARGET_DIR (default benches/target). Needs Linux (/proc, taskset) and python3.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

# The command line as given, for the report: a run can be repeated from it.
COMMAND="benches/compare.sh"
for arg in "$@"; do
    case "$arg" in
        *[!A-Za-z0-9_./:=-]*|"") COMMAND="$COMMAND '$arg'" ;;
        *) COMMAND="$COMMAND $arg" ;;
    esac
done

QUICK=0
ROUNDS=3
DURATION=""
WARMUP=""
CONNECTIONS=""
SIZES=""
IDLE=""
SCENARIOS="binary text deflate idle broadcast"
SUBSCRIBERS=""
CONTENDERS="sockeye tungstenite fastwebsockets tokio-websockets yawc"
MULTI_THREAD=0
SERVER_CPUS=0
CLIENT_CPUS=1
JOBS=1
BUILD=1
OUT=""
BASE_BIN=""
SERVE_BASE_BIN=""
REPORT_ONLY=0

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --connections) CONNECTIONS=$2; shift ;;
        --sizes) SIZES=$2; shift ;;
        --idle) IDLE=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --subscribers) SUBSCRIBERS=$2; shift ;;
        --tls) SCENARIOS=tls ;;
        --contenders) CONTENDERS=$2; shift ;;
        --base-bin) BASE_BIN=$2; shift ;;
        --serve-base-bin) SERVE_BASE_BIN=$2; shift ;;
        --multi-thread) MULTI_THREAD=1 ;;
        --server-cpus) SERVER_CPUS=$2; shift ;;
        --client-cpus) CLIENT_CPUS=$2; shift ;;
        --jobs) JOBS=$2; shift ;;
        --no-build) BUILD=0 ;;
        --report-only) REPORT_ONLY=1; BUILD=0 ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    : "${DURATION:=2}" "${WARMUP:=0.5}" "${CONNECTIONS:=1 100}" "${SIZES:=20 16384}" "${IDLE:=1000}"
    : "${SUBSCRIBERS:=1000}"
else
    : "${DURATION:=5}" "${WARMUP:=1}" "${CONNECTIONS:=1 10 100 1000}"
    : "${SIZES:=20 1024 16384 1048576}" "${IDLE:=10000}" "${SUBSCRIBERS:=1000 10000}"
fi

MAIN_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PEERS_TARGET=${BENCHES_TARGET_DIR:-$HERE/target}
SOCKEYE=$MAIN_TARGET/release/sockeye
PEERS=$PEERS_TARGET/release

for tool in taskset python3; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is needed" >&2; exit 1; }
done

if [ "$BUILD" = 1 ]; then
    echo "== building the load generator (sockeye-cli) and the peer servers" >&2
    (cd "$ROOT" && CARGO_TARGET_DIR=$MAIN_TARGET cargo build --release -j "$JOBS" -p sockeye-cli)
    (cd "$HERE" && CARGO_TARGET_DIR=$PEERS_TARGET cargo build --release -j "$JOBS")
fi
[ -x "$SOCKEYE" ] || [ "$REPORT_ONLY" = 1 ] ||
    { echo "compare.sh: $SOCKEYE is missing (drop --no-build)" >&2; exit 1; }

# Idle connections and subscribers need a descriptor each, in the server and in the load
# generator.
MOST=$IDLE
for n in $SUBSCRIBERS; do [ "$n" -gt "$MOST" ] && MOST=$n; done
WANT_FDS=$((MOST + 4096))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$WANT_FDS" ]; then
    ulimit -n "$WANT_FDS" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE + 64)) ]; then
    echo "compare.sh: ulimit -n is $(ulimit -n), below --idle $IDLE; lowering --idle" >&2
    IDLE=$(( $(ulimit -n) - 64 ))
fi

DATE=$(date +%Y-%m-%d)
OUT=${OUT:-$HERE/results/$DATE.md}
RAW=${OUT%.md}.jsonl
mkdir -p "$(dirname "$OUT")"
if [ "$REPORT_ONLY" = 1 ]; then
    [ -s "$RAW" ] || { echo "compare.sh: --report-only needs $RAW" >&2; exit 1; }
else
    : > "$RAW"
fi
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# wss:// cells: a throwaway CA and a server certificate for 127.0.0.1, made now in $WORK and
# removed with it (never committed).
case " $SCENARIOS " in
    *" tls "*|*" firehose "*)
        command -v openssl >/dev/null || { echo "compare.sh: openssl is needed for tls" >&2; exit 1; }
        (
            cd "$WORK"
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
                -subj "/CN=compare.sh throwaway CA" -keyout ca.key -out ca.pem
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                -subj "/CN=127.0.0.1" -keyout key.pem -out server.csr
            printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
                "keyUsage=digitalSignature" "extendedKeyUsage=serverAuth" > server.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                -extfile server.ext -out cert.pem
        ) 2> "$WORK/openssl.err" || { cat "$WORK/openssl.err" >&2; exit 1; }
        ;;
esac
TLS_FLAGS="--tls-cert $WORK/cert.pem --tls-key $WORK/key.pem"

# contender name -> binary and flags
server_cmd() {
    case "$1" in
        sockeye) echo "$PEERS/sockeye" ;;
        sockeye-deflate) echo "$PEERS/sockeye --deflate" ;;
        sockeye-base) echo "${BASE_BIN:?--base-bin is needed for sockeye-base}" ;;
        sockeye-base-deflate) echo "${BASE_BIN:?--base-bin is needed for sockeye-base} --deflate" ;;
        sockeye-tls) echo "$PEERS/sockeye $TLS_FLAGS" ;;
        # The address start_server appends follows --listen.
        serve|serve-h1|serve-h2) echo "$SOCKEYE serve --log-level warn --listen" ;;
        serve-base) echo "${SERVE_BASE_BIN:?--serve-base-bin is needed for serve-base} serve --log-level warn --listen" ;;
        axum-sockeye) echo "$PEERS/axum_sockeye" ;;
        axum-tungstenite) echo "$PEERS/axum_tungstenite" ;;
        sockeye-uring) echo "$PEERS/sockeye_uring" ;;
        tungstenite) echo "$PEERS/tungstenite" ;;
        tungstenite-tls) echo "$PEERS/tungstenite $TLS_FLAGS" ;;
        fastwebsockets) echo "$PEERS/fastwebsockets" ;;
        tokio-websockets) echo "$PEERS/tokio_websockets" ;;
        yawc) echo "$PEERS/yawc" ;;
        yawc-deflate) echo "$PEERS/yawc --deflate" ;;
        *) echo "compare.sh: unknown contender $1" >&2; exit 2 ;;
    esac
}

start_server() {
    local cmd
    cmd=$(server_cmd "$1")
    case "$1" in
        serve*) ;;  # sockeye serve runs tokio's multi-thread runtime already
        *) [ "$MULTI_THREAD" = 1 ] && cmd="$cmd --multi-thread" ;;
    esac
    # A fresh file: reading the previous server's LISTENING line would send the run to a
    # closed port.
    rm -f "$WORK/server.out"
    # shellcheck disable=SC2086 # cmd is a binary and its flags
    taskset -c "$SERVER_CPUS" $cmd 127.0.0.1:0 > "$WORK/server.out" 2> "$WORK/server.err" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        ADDR=$(awk '/^LISTENING/ {print $2; exit}' "$WORK/server.out" 2>/dev/null || true)
        [ -n "$ADDR" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "compare.sh: $1 did not start: $(cat "$WORK/server.err")" >&2
    return 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# run SCENARIO CONTENDER ROUND [CONNECTIONS SIZE]
run() {
    local scenario=$1 contender=$2 round=$3 conns=${4:-0} size=${5:-0}
    local args=(--label "$contender") scheme=ws path=/echo
    case "$contender" in *-tls) scheme=wss; args+=(--ca "$WORK/ca.pem") ;; esac
    case "$scenario" in
        binary|tls|axum) args+=(--mode echo --binary -c "$conns" -s "$size" -d "$DURATION" -w "$WARMUP") ;;
        http2) args+=(--mode echo --binary -c "$conns" -s "$size" -d "$DURATION" -w "$WARMUP" --library)
            [ "$contender" = serve-h2 ] && args+=(--http2) ;;
        firehose)
            path="/firehose?size=$size"
            args+=(--mode firehose -c "$conns" -s "$size" -d "$DURATION" -w "$WARMUP") ;;
        text) args+=(--mode echo -c "$conns" -s "$size" -d "$DURATION" -w "$WARMUP") ;;
        deflate) args+=(--mode echo --deflate -c "$conns" -s "$size" -d "$DURATION" -w "$WARMUP") ;;
        idle) args+=(--mode idle -c "$IDLE" -d 2 -w 0 --connect-concurrency 128) ;;
        broadcast)
            path=/chat
            args+=(--mode broadcast -c "$conns" -s "$size" -d "$DURATION" -w "$WARMUP"
                --connect-concurrency 128) ;;
    esac
    local line
    if ! start_server "$contender"; then
        line="{\"error\":\"server did not start\"}"
    else
        args+=(--server-pid "$SERVER_PID")
        if line=$(taskset -c "$CLIENT_CPUS" "$SOCKEYE" bench "$scheme://$ADDR$path" "${args[@]}" \
            2> "$WORK/bench.err"); then
            :
        else
            line=$(tail -n 1 <<<"$line")
            [ -n "$line" ] || line="{\"error\":\"bench failed\"}"
            echo "compare.sh: $scenario $contender $conns x $size failed: $(tail -n 1 "$WORK/bench.err")" >&2
        fi
        stop_server
    fi
    line=$(tail -n 1 <<<"$line")
    echo "{\"scenario\":\"$scenario\",\"contender\":\"$contender\",\"round\":$round,\"cell_connections\":$conns,\"cell_size\":$size,\"result\":$line}" >> "$RAW"
    tail -n 1 "$WORK/bench.err" >&2 || true
}

# Rotates a list by N places.
rotate() {
    local n=$1; shift
    local items=("$@") count=$#
    for ((i = 0; i < count; i++)); do echo "${items[$(((i + n) % count))]}"; done
}

contenders_for() {
    case "$1" in
        deflate)
            for c in $CONTENDERS; do
                case "$c" in sockeye|sockeye-base|yawc) echo "$c-deflate" ;; esac
            done ;;
        idle) for c in $CONTENDERS; do echo "$c"; done ;;
        broadcast)
            for c in $CONTENDERS; do
                case "$c" in sockeye|tungstenite) echo "$c" ;; esac
            done ;;
        tls)
            for c in $CONTENDERS; do
                case "$c" in sockeye|tungstenite) echo "$c"; echo "$c-tls" ;; esac
            done ;;
        firehose)
            for c in $CONTENDERS; do
                case "$c" in sockeye) echo "$c"; echo "$c-tls" ;; esac
            done ;;
        http2) echo serve-h2; echo serve-h1 ;;
        axum) echo axum-sockeye; echo axum-tungstenite ;;
        *) for c in $CONTENDERS; do echo "$c"; done ;;
    esac
}

START_UPTIME=$(uptime)
START_TIME=$(date -u +%H:%M:%SZ)
if [ "$REPORT_ONLY" = 1 ]; then
    START_UPTIME="(not known: report rebuilt from the raw results)" START_TIME="?"
fi
RUN_ROUNDS=$ROUNDS
[ "$REPORT_ONLY" = 1 ] && RUN_ROUNDS=0
echo "== $START_UPTIME" >&2
cell=0
for round in $(seq "$RUN_ROUNDS"); do
    echo "== round $round of $ROUNDS" >&2
    for scenario in $SCENARIOS; do
        mapfile -t list < <(contenders_for "$scenario")
        [ "${#list[@]}" -gt 0 ] || continue
        if [ "$scenario" = idle ]; then
            for contender in $(rotate "$round" "${list[@]}"); do
                run idle "$contender" "$round"
            done
            continue
        fi
        conn_list=$CONNECTIONS size_list=$SIZES
        if [ "$scenario" = broadcast ]; then conn_list=$SUBSCRIBERS size_list="20 1024"; fi
        for conns in $conn_list; do
            for size in $size_list; do
                cell=$((cell + 1))
                for contender in $(rotate $((round + cell)) "${list[@]}"); do
                    run "$scenario" "$contender" "$round" "$conns" "$size"
                done
            done
        done
    done
done
END_UPTIME=$(uptime)
[ "$REPORT_ONLY" = 1 ] && END_UPTIME="(not known)"
echo "== $END_UPTIME" >&2

python3 - "$RAW" "$OUT" <<PYEOF
import json, statistics, subprocess, sys, re, os

raw, out = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(raw) if l.strip()]

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd="$ROOT").stdout.strip()
    except Exception:
        return ""

def lock_versions():
    try:
        text = open("$HERE/Cargo.lock").read()
    except OSError:
        return {}
    found = {}
    for name, version in re.findall(r'name = "([^"]+)"\nversion = "([^"]+)"', text):
        found[name] = version
    return found

versions = lock_versions()
contender_crate = {
    "tungstenite": "tokio-tungstenite", "fastwebsockets": "fastwebsockets",
    "tokio-websockets": "tokio-websockets", "yawc": "yawc", "yawc-deflate": "yawc",
}
cpu_model = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
rev = sh("git rev-parse --short HEAD")
dirty = sh("git status --porcelain -- crates/sockeye crates/sockeye-proto")
loads = [float(r["result"]["loadavg"].split()[0]) for r in rows if r["result"].get("loadavg")]

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

def cell_values(scenario, contender, conns, size, key):
    return [r["result"].get(key) for r in rows
            if r["scenario"] == scenario and r["contender"] == contender
            and r["cell_connections"] == conns and r["cell_size"] == size
            and "error" not in r["result"] and r["result"].get("failed_connections", 0) == 0]

def fmt(v, digits):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"

def size_name(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10} KiB"
    return f"{n} B"

lines = []
w = lines.append
w(f"# Sockeye against other Rust WebSocket servers, $DATE")
w("")
w(f"- Command: \`$COMMAND\` ({'$ROUNDS'} rounds; {'$DURATION'} s measured after {'$WARMUP'} s warm-up per run)")
w(f"- Machine: nproc = {os.cpu_count()} ({cpu_model}), Linux {sh('uname -r')}; servers pinned with "
  f"\`taskset -c $SERVER_CPUS\`, the load generator (\`sockeye bench\`) with \`taskset -c $CLIENT_CPUS\`; "
  f"{'multi-thread' if '$MULTI_THREAD' == '1' else 'current_thread'} tokio runtimes")
w(f"- Load average: \`$START_UPTIME\` at the start ($START_TIME), \`$END_UPTIME\` at the end; "
  + (f"1-minute load during the runs: min {min(loads):.2f}, median {statistics.median(loads):.2f}, max {max(loads):.2f}" if loads else ""))
w(f"- sockeye: git {rev}{' with uncommitted changes in crates/sockeye*' if dirty else ''}; peers: "
  + ", ".join(f"{c} {versions.get(c, '?')}" for c in ["tokio-tungstenite", "fastwebsockets", "tokio-websockets", "yawc"])
  + "; all built with \`lto = \"fat\"\`, \`codegen-units = 1\` (benches/Cargo.toml)")
w("- Each cell is the median over rounds; contenders run interleaved, in an order rotated every cell and round. "
  "Ratios are sockeye ÷ peer: above 1 means sockeye sends more messages per second, or spends more CPU per message.")
w("- Server CPU s per million messages is utime+stime of the server process (/proc/PID/stat) over the measured seconds, "
  "divided by the messages echoed: the figure least disturbed by other load on the machine. "
  "A † marks cells where the load generator itself was busy more than 90% of the time (client-bound).")
w("")

def table(scenario, title, key, digits, contenders, note=""):
    cells = sorted({(r["cell_connections"], r["cell_size"]) for r in rows if r["scenario"] == scenario})
    if not cells:
        return
    base = contenders[0]
    peers = contenders[1:]
    w(f"### {title}")
    w("")
    if note:
        w(note)
        w("")
    head = ["connections", "size"] + contenders + [f"{base} ÷ {p}" for p in peers]
    w("| " + " | ".join(head) + " |")
    w("|" + "|".join(["---:"] * len(head)) + "|")
    for conns, size in cells:
        values = {c: med(cell_values(scenario, c, conns, size, key)) for c in contenders}
        util = {c: med(cell_values(scenario, c, conns, size, "client_cpu_util")) for c in contenders}
        row = [str(conns), size_name(size)]
        for c in contenders:
            mark = " †" if util[c] is not None and util[c] > 0.9 else ""
            row.append(fmt(values[c], digits) + mark)
        for p in peers:
            a, b = values[base], values[p]
            row.append(f"{a / b:.2f}" if a is not None and b not in (None, 0) else "n/a")
        w("| " + " | ".join(row) + " |")
    w("")

scenario_titles = {
    "binary": "echo, binary messages",
    "text": "echo, text messages (the server validates UTF-8)",
    "deflate": "echo, text messages with permessage-deflate (client_no_context_takeover, level 6)",
    "broadcast": "broadcast: one publisher, N subscribers on /chat (\"connections\" = subscribers; "
                 "messages = deliveries; latency = publish to the last subscriber's delivery)",
    "http2": "WebSocket over HTTP/2 (RFC 8441): N sockets as streams of one h2c connection (serve-h2) "
             "against N HTTP/1.1 connections (serve-h1), binary echo to \`sockeye serve\`, both driven by "
             "Sockeye's client (\`sockeye bench --library [--http2]\`)",
    "axum": "the same axum app (hyper-util's server, a route that echoes), with Sockeye's extractor "
            "(axum-sockeye) and with axum's own WebSocket on tokio-tungstenite (axum-tungstenite), binary echo",
}
for scenario in ["binary", "text", "deflate", "broadcast", "http2", "axum"]:
    present = [r["contender"] for r in rows if r["scenario"] == scenario]
    if not present:
        continue
    order = []
    for c in present:
        if c not in order:
            order.append(c)
    order.sort(key=lambda c: (not c.startswith(("sockeye", "axum-sockeye", "serve-h2")), c))
    w(f"## {scenario_titles[scenario]}")
    w("")
    table(scenario, "Messages per second (higher is better)", "msgs_per_s", 0, order)
    table(scenario, "Server CPU seconds per million messages (lower is better)", "server_cpu_s_per_M", 2, order)
    table(scenario, "p99 round-trip latency, µs (lower is better)", "p99_us", 0, order)

def tls_tables(scenario, title, note):
    present = [r["contender"] for r in rows if r["scenario"] == scenario]
    libs = []
    for c in present:
        lib = c[:-4] if c.endswith("-tls") else c
        if lib not in libs:
            libs.append(lib)
    if not libs:
        return
    libs.sort(key=lambda c: (not c.startswith("sockeye"), c))
    cells = sorted({(r["cell_connections"], r["cell_size"]) for r in rows if r["scenario"] == scenario})
    w(f"## {title}")
    w("")
    w(note)
    w("")
    for key, what, digits in [("msgs_per_s", "Messages per second (higher is better)", 0),
                              ("server_cpu_s_per_M", "Server CPU seconds per million messages (lower is better)", 2)]:
        w(f"### {what}")
        w("")
        head = ["connections", "size"]
        for lib in libs:
            head += [f"{lib} ws", f"{lib} wss", f"{lib} wss ÷ ws"]
        if len(libs) > 1:
            head += [f"{libs[0]} ÷ {p}, wss" for p in libs[1:]]
        w("| " + " | ".join(head) + " |")
        w("|" + "|".join(["---:"] * len(head)) + "|")
        for conns, size in cells:
            row = [str(conns), size_name(size)]
            tls_values = {}
            for lib in libs:
                plain = med(cell_values(scenario, lib, conns, size, key))
                tls = med(cell_values(scenario, lib + "-tls", conns, size, key))
                tls_values[lib] = tls
                marks = []
                for c in (lib, lib + "-tls"):
                    util = med(cell_values(scenario, c, conns, size, "client_cpu_util"))
                    marks.append(" †" if util is not None and util > 0.9 else "")
                row += [fmt(plain, digits) + marks[0], fmt(tls, digits) + marks[1],
                        f"{tls / plain:.2f}" if tls is not None and plain not in (None, 0) else "n/a"]
            for p in libs[1:]:
                a, b = tls_values[libs[0]], tls_values[p]
                row.append(f"{a / b:.2f}" if a is not None and b not in (None, 0) else "n/a")
            w("| " + " | ".join(row) + " |")
        w("")

tls_tables("tls", "echo over TLS (wss://) against plain ws://, binary messages",
           "Each library's echo server plain and with \`--tls-cert\`/\`--tls-key\` (rustls 0.23, ring provider, "
           "the same configuration for every peer; a throwaway EC P-256 certificate made by openssl for the run); "
           "the load generator speaks TLS through rustls too, on its own core. "
           "\"wss ÷ ws\" is the TLS overhead: below 1 for messages per second, above 1 for CPU per message.")
tls_tables("firehose", "firehose: the server pushes binary messages (/firehose?size=N of the sockeye peer)",
           "Messages are counted as the load generator reads them; ws and wss as in the TLS tables.")

idle = [r for r in rows if r["scenario"] == "idle"]
if idle:
    w("## Idle connections")
    w("")
    n = max(r["result"].get("connections", 0) for r in idle)
    w(f"{n} connections opened after the handshake and held for 2 s; server RSS (VmRSS) growth divided by open connections.")
    w("")
    w("| contender | RSS per connection, KiB | RSS held, MiB | open | failed | handshakes per s |")
    w("|---|---:|---:|---:|---:|---:|")
    order = []
    for r in idle:
        if r["contender"] not in order:
            order.append(r["contender"])
    order.sort(key=lambda c: (not c.startswith("sockeye"), c))
    for c in order:
        rs = [r["result"] for r in idle if r["contender"] == c and "error" not in r["result"]
              and r["result"].get("open") and not r["result"].get("failed")]
        per = med([r.get("server_rss_per_conn_kb") for r in rs])
        held = med([r.get("server_rss_held_kb") for r in rs])
        w(f"| {c} | {fmt(per, 2)} | {fmt(held / 1024 if held else None, 1)} | "
          f"{fmt(med([r.get('open') for r in rs]), 0)} | {fmt(med([r.get('failed') for r in rs]), 0)} | "
          f"{fmt(med([r.get('connects_per_s') for r in rs]), 0)} |")
    w("")

# Per-round pairs: the contenders of one cell and round ran seconds apart, so a ratio taken
# within a round cancels most of the machine's slow and fast phases, which a ratio of medians
# over rounds keeps. "Best peer" is, per round, the lowest CPU per message (the highest
# messages per second) among the other libraries that ran the cell, tokio-tungstenite aside.
def paired(scenario, ours, peers):
    cells = sorted({(r["cell_connections"], r["cell_size"]) for r in rows if r["scenario"] == scenario})
    lines_out = []
    for conns, size in cells:
        by_round = {}
        for r in rows:
            if (r["scenario"] == scenario and (r["cell_connections"], r["cell_size"]) == (conns, size)
                    and "error" not in r["result"] and r["result"].get("failed_connections", 0) == 0):
                by_round.setdefault(r["round"], {})[r["contender"]] = r["result"]
        cpu, thr = [], []
        for got in by_round.values():
            others = [got[p] for p in peers if p in got]
            if ours not in got or not others:
                continue
            cpu.append(got[ours]["server_cpu_s_per_M"] / min(o["server_cpu_s_per_M"] for o in others))
            thr.append(got[ours]["msgs_per_s"] / max(o["msgs_per_s"] for o in others))
        if cpu:
            lines_out.append(
                f"| {conns} | {size_name(size)} | {statistics.median(cpu):.2f} | {min(cpu):.2f}–{max(cpu):.2f} | "
                f"{sum(v > 1 for v in cpu)} of {len(cpu)} | {statistics.median(thr):.2f} | "
                f"{min(thr):.2f}–{max(thr):.2f} | {sum(v < 1 for v in thr)} of {len(thr)} |")
    if not lines_out:
        return
    against = f"the best of {', '.join(peers)}" if len(peers) > 1 else peers[0]
    w(f"## {ours} ÷ {against}, per round: {scenario_titles[scenario]}")
    w("")
    if len(peers) > 1:
        w("The best of several noisy runs is lower than a typical one, so against equal servers "
          "these ratios sit above 1 (CPU) and below 1 (messages/s): read them as the view most favourable to the peers.")
        w("")
    w("| connections | size | CPU per message, median | min–max | rounds above 1 | messages/s, median | min–max | rounds below 1 |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in lines_out:
        w(line)
    w("")

present = {r["contender"] for r in rows}
for scenario, ours, peers in [("binary", "sockeye", ["fastwebsockets", "tokio-websockets", "yawc"]),
                              ("text", "sockeye", ["fastwebsockets", "tokio-websockets", "yawc"]),
                              ("deflate", "sockeye-deflate", ["yawc-deflate"])]:
    peers = [p for p in peers if p in present]
    if ours in present and peers:
        paired(scenario, ours, peers)

errors = [r for r in rows if "error" in r["result"] or r["result"].get("failed_connections", 0)
          or r["result"].get("failed", 0)]
if errors:
    w("## Failed runs")
    w("")
    for r in errors:
        res = r["result"]
        w(f"- {r['scenario']} {r['contender']} round {r['round']}, {r['cell_connections']} x {size_name(r['cell_size'])}: "
          f"{res.get('error') or res.get('first_error') or 'failed connections'}")
    w("")
raw_name = os.path.relpath(raw, '$ROOT')
if raw_name.startswith('..'):
    raw_name = os.path.basename(raw)  # beside the report
w(f"Raw results, one JSON object per run: \`{raw_name}\`.")
open(out, "w").write("\n".join(lines) + "\n")
print(out)
PYEOF
echo "== wrote $OUT" >&2
