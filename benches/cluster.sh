#!/usr/bin/env bash
# benches/cluster.sh: what joining `sockeye serve` nodes over NATS costs (issue #15). Three
# server layouts, each started fresh for each round, in an order that turns every round:
#
#   solo   one node without --cluster (chat rooms in process, nothing on NATS)
#   one    nats-server -js and one node with --cluster: every chat message goes through its
#          room's JetStream log, as on a cluster, but no delivery crosses between nodes
#   three  nats-server -js and three nodes (a, b, c) with --cluster
#
# and in each the cells (`sockeye bench`, and `wamp-load` of benches/wamp for RPC):
#
#   broadcast-N   1 publisher on node a, N subscribers of /chat (--subscribers, default 100
#                 and 1000) on a (solo, one) or dealt over a, b, c (three); 20 B text; the
#                 publisher sends the next message once every subscriber has the last one.
#                 Deliveries per second and CPU per delivery: the nodes' and nats-server's,
#                 each from utime + stime in /proc/PID/stat over the measured seconds.
#   latency-same  1 publisher and 1 subscriber, both on node a: each delivery's latency from
#                 its publishing (one message in flight, one clock)
#   latency-cross (three) the same with the subscriber on node b
#   rpc-local-C   (three) wamp-load, C callers (--callers, default 1 and 100) and 1 callee
#                 of one procedure, all on node a's /wamp (json): calls/s, CALL -> RESULT p50/p99
#   rpc-cross-C   (three) the same with the callee on node b
#
# The servers (nats-server and every node, --workers 1) run on --server-cpus (default CPU 0),
# the load generator on --client-cpus (default CPU 1): three nodes share the one core that a
# single node has, so deliveries per second compares a cluster's overhead, not its capacity,
# and CPU per delivery is the figure to compare. Prints a markdown table of medians over the
# rounds and medians of per-round ratios; the runs go to --raw (one JSON object per run).
#
# Usage: benches/cluster.sh [options]
#   --rounds N           rounds (default 5; about 70 s each)
#   --duration S         seconds measured per run (default 3)
#   --warmup S           seconds of load before measuring (default 1)
#   --subscribers LIST   broadcast subscribers (default "100 1000")
#   --size B             broadcast payload bytes (default 20)
#   --callers LIST       RPC callers (default "1 100")
#   --layouts LIST       default "solo one three"
#   --server-cpus LIST   taskset CPU list of nats-server and the nodes (default 0)
#   --client-cpus LIST   taskset CPU list of the load generators (default 1)
#   --quick              1 round of 2 s after 1 s of warm-up
#   --jobs N             cargo build jobs (default 1)
#   --no-build           use the binaries already built
#   --raw FILE           the runs (default results/YYYY-MM-DD-cluster.jsonl)
#
# Binaries: $CARGO_TARGET_DIR/release/sockeye (default target/) and
# $BENCHES_TARGET_DIR/release/wamp-load (default benches/target); nats-server from $NATS_SERVER
# or PATH (2.9 or later). Needs Linux (/proc, taskset) and python3.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

ROUNDS=5
DURATION=3
WARMUP=1
SUBSCRIBERS="100 1000"
SIZE=20
CALLERS="1 100"
LAYOUTS="solo one three"
SERVER_CPUS=0
CLIENT_CPUS=1
JOBS=1
BUILD=1
RAW=""

while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --subscribers) SUBSCRIBERS=$2; shift ;;
        --size) SIZE=$2; shift ;;
        --callers) CALLERS=$2; shift ;;
        --layouts) LAYOUTS=$2; shift ;;
        --server-cpus) SERVER_CPUS=$2; shift ;;
        --client-cpus) CLIENT_CPUS=$2; shift ;;
        --quick) ROUNDS=1; DURATION=2; WARMUP=1 ;;
        --jobs) JOBS=$2; shift ;;
        --no-build) BUILD=0 ;;
        --raw) RAW=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

MAIN_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH_TARGET=${BENCHES_TARGET_DIR:-$HERE/target}
SOCKEYE=$MAIN_TARGET/release/sockeye
LOAD=$BENCH_TARGET/release/wamp-load
NATS=${NATS_SERVER:-nats-server}

for tool in taskset python3 "$NATS"; do
    command -v "$tool" > /dev/null || { echo "cluster.sh: $tool is missing" >&2; exit 1; }
done
if [ "$BUILD" = 1 ]; then
    echo "== building sockeye (main workspace) and wamp-load (benches workspace)" >&2
    (cd "$ROOT" && CARGO_TARGET_DIR=$MAIN_TARGET cargo build --release -j "$JOBS" -p sockeye-cli)
    (cd "$HERE" && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --release -j "$JOBS" -p sockeye-bench-wamp)
fi
[ -x "$SOCKEYE" ] || { echo "cluster.sh: $SOCKEYE is missing (drop --no-build)" >&2; exit 1; }
[ -x "$LOAD" ] || { echo "cluster.sh: $LOAD is missing (drop --no-build)" >&2; exit 1; }

MAX_SUBS=$(printf '%s\n' $SUBSCRIBERS | sort -n | tail -n 1)
WANT_FDS=$((MAX_SUBS * 2 + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$WANT_FDS" ]; then
    ulimit -n "$WANT_FDS" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi

RAW=${RAW:-$HERE/results/$(date +%Y-%m-%d)-cluster.jsonl}
mkdir -p "$(dirname "$RAW")"
: > "$RAW"
WORK=$(mktemp -d)
# Every process this script started, stopped by its own pid.
STARTED_PIDS=()
cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${STARTED_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL: until it answers 200 (a clustered node's /healthz says 503 until it has
# loaded the retained events from NATS).
wait_http() {
    python3 - "$1" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}

NATS_PID=""
NATS_URL=""
start_nats() {
    local port store=$WORK/jetstream
    port=$(free_port)
    rm -rf "$store"
    taskset -c "$SERVER_CPUS" "$NATS" -js -a 127.0.0.1 -p "$port" -sd "$store" \
        > "$WORK/nats.log" 2>&1 &
    NATS_PID=$!
    STARTED_PIDS+=("$NATS_PID")
    NATS_URL=nats://127.0.0.1:$port
    for _ in $(seq 200); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2> /dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "cluster.sh: nats-server did not start: $(tail -n 5 "$WORK/nats.log")" >&2
    return 1
}

# start_node NAME ID: appends to NODE_PIDS and ADDRS (host:port).
NODE_PIDS=""
ADDRS=()
start_node() {
    local name=$1 id=$2 cluster=()
    [ -n "$NATS_URL" ] && cluster=(--cluster "$NATS_URL" --node-name "$name" --node-id "$id")
    rm -f "$WORK/$name.out"
    taskset -c "$SERVER_CPUS" "$SOCKEYE" serve --listen 127.0.0.1:0 --workers 1 \
        --log-level warn "${cluster[@]}" > "$WORK/$name.out" 2> "$WORK/$name.err" &
    local pid=$!
    STARTED_PIDS+=("$pid")
    NODE_PIDS=${NODE_PIDS:+$NODE_PIDS,}$pid
    local addr=""
    for _ in $(seq 100); do
        addr=$(awk '/^LISTENING/ {print $2; exit}' "$WORK/$name.out" 2>/dev/null || true)
        [ -n "$addr" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$addr" ] || ! wait_http "http://$addr/healthz"; then
        echo "cluster.sh: node $name did not start: $(tail -n 5 "$WORK/$name.err")" >&2
        return 1
    fi
    ADDRS+=("$addr")
}

start_layout() {
    NATS_PID=""
    NATS_URL=""
    NODE_PIDS=""
    ADDRS=()
    case "$1" in
        solo) start_node a 1 ;;
        one) start_nats && start_node a 1 ;;
        three) start_nats && start_node a 1 && start_node b 2 && start_node c 3 ;;
    esac
}

stop_layout() {
    local pid
    for pid in ${NODE_PIDS//,/ } $NATS_PID; do kill "$pid" 2>/dev/null || true; done
    for pid in ${NODE_PIDS//,/ } $NATS_PID; do wait "$pid" 2>/dev/null || true; done
    STARTED_PIDS=()
}

# record LAYOUT ROUND CELL LINE
record() {
    local line
    line=$(tail -n 1 <<<"$4")
    [ -n "$line" ] || line='{"error":"the load generator printed nothing"}'
    echo "{\"layout\":\"$1\",\"round\":$2,\"cell\":\"$3\",\"result\":$line}" >> "$RAW"
}

# bench LAYOUT ROUND CELL ARGS...: `sockeye bench` from node a's /chat.
bench() {
    local layout=$1 round=$2 cell=$3 line
    shift 3
    local backplane=()
    [ -n "$NATS_PID" ] && backplane=(--backplane-pid "$NATS_PID")
    if ! line=$(taskset -c "$CLIENT_CPUS" "$SOCKEYE" bench "ws://${ADDRS[0]}/chat" \
        --mode broadcast -s "$SIZE" -w "$WARMUP" -d "$DURATION" --server-pid "$NODE_PIDS" \
        "${backplane[@]}" --label "$layout" "$@" 2> "$WORK/bench.err"); then
        echo "cluster.sh: $layout $cell failed: $(tail -n 1 "$WORK/bench.err")" >&2
    fi
    record "$layout" "$round" "$cell" "$line"
    echo "   $cell: $(tail -n 1 "$WORK/bench.err")" >&2
}

# rpc LAYOUT ROUND CELL CALLERS [CALLEE_ADDR]: wamp-load, callers on node a.
rpc() {
    local layout=$1 round=$2 cell=$3 callers=$4 callee=${5:-} line
    local args=(--scenario rpc --serializer json --callers "$callers" --callees 1
        --warmup "$WARMUP" --duration "$DURATION" --server-pid "$NODE_PIDS" --label "$layout")
    [ -n "$NATS_PID" ] && args+=(--backplane-pid "$NATS_PID")
    [ -n "$callee" ] && args+=(--callee-url "ws://$callee/wamp")
    if ! line=$(taskset -c "$CLIENT_CPUS" "$LOAD" "ws://${ADDRS[0]}/wamp" "${args[@]}" \
        2> "$WORK/load.err"); then
        echo "cluster.sh: $layout $cell failed: $(tail -n 1 "$WORK/load.err")" >&2
    fi
    record "$layout" "$round" "$cell" "$line"
    echo "   $cell: $(tail -n 1 "$WORK/load.err")" >&2
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r -a LAYOUT_LIST <<<"$LAYOUTS"
N_LAYOUTS=${#LAYOUT_LIST[@]}

for round in $(seq "$ROUNDS"); do
    # Interleaved, and each round starts with the next layout, so that none always runs
    # first (or last) in a round.
    for k in $(seq 0 $((N_LAYOUTS - 1))); do
        layout=${LAYOUT_LIST[$(((round - 1 + k) % N_LAYOUTS))]}
        echo "== round $round/$ROUNDS: $layout" >&2
        if ! start_layout "$layout"; then
            record "$layout" "$round" start '{"error":"the servers did not start"}'
            stop_layout
            continue
        fi
        spread=ws://${ADDRS[0]}/chat
        [ "$layout" = three ] && spread=ws://${ADDRS[0]}/chat,ws://${ADDRS[1]}/chat,ws://${ADDRS[2]}/chat
        for n in $SUBSCRIBERS; do
            bench "$layout" "$round" "broadcast-$n" -c "$n" --subscribe-at "$spread"
        done
        bench "$layout" "$round" latency-same -c 1 --subscribe-at "ws://${ADDRS[0]}/chat"
        if [ "$layout" = three ]; then
            bench "$layout" "$round" latency-cross -c 1 --subscribe-at "ws://${ADDRS[1]}/chat"
            for c in $CALLERS; do
                rpc "$layout" "$round" "rpc-local-$c" "$c"
                rpc "$layout" "$round" "rpc-cross-$c" "$c" "${ADDRS[1]}"
            done
        fi
        stop_layout
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$RAW" <<EOF
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
meta = dict(started="$STARTED", load_before="$LOAD_BEFORE", load_after="$LOAD_AFTER",
            rounds=$ROUNDS, duration=$DURATION, warmup=$WARMUP, size=$SIZE,
            commit="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)",
            nats="$("$NATS" --version 2>/dev/null | head -n 1)", clk_tck="$(getconf CLK_TCK)",
            nproc="$(nproc)", cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)",
            server_cpus="$SERVER_CPUS", client_cpus="$CLIENT_CPUS")

runs = {}
for r in rows:
    runs.setdefault((r["cell"], r["layout"]), {})[r["round"]] = r["result"]

def ok(res):
    return res is not None and "error" not in res and res.get("first_error") is None

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, d=0):
    return "-" if x is None else f"{x:,.{d}f}"

def spread(xs, d=0):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    s = fmt(statistics.median(xs), d)
    return s + (f" [{fmt(min(xs), d)}-{fmt(max(xs), d)}]" if len(xs) > 1 else "")

def field(cell, layout, key):
    return {k: v.get(key) for k, v in runs.get((cell, layout), {}).items() if ok(v)}

def total_cpu(res):
    # CPU per delivery of the nodes plus nats-server's, in µs (s per million).
    s, b = res.get("server_cpu_s_per_M"), res.get("backplane_cpu_s_per_M")
    return None if s is None else s + (b or 0)

# In the order they ran.
cells = list(dict.fromkeys(r["cell"] for r in rows if r["cell"] != "start"))
layouts = [l for l in ("solo", "one", "three") if any(l == x for _, x in runs)]
L = []
L.append(f"cluster.sh at {meta['commit']}, {meta['started']}; {meta['nats']}; {meta['nproc']} cores ({meta['cpu']}), "
         f"servers on CPU {meta['server_cpus']}, load generator on CPU {meta['client_cpus']}; CLK_TCK {meta['clk_tck']}; "
         f"{meta['rounds']} round(s) of {meta['warmup']} s warm-up + {meta['duration']} s; "
         f"load average before {meta['load_before']}, after {meta['load_after']}.")
L.append("")
L.append("Broadcast: medians over rounds [min-max]. CPU/delivery in µs: the nodes' (sockeye) and nats-server's, utime + stime over the measured seconds divided by the deliveries.")
L.append("")
L.append("| cell | layout | deliveries/s | sockeye CPU µs/delivery | nats CPU µs/delivery | publish→last delivery p50 / p99 µs | delivery p50 / p99 µs, local | remote | stalls |")
L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for cell in cells:
    if not (cell.startswith("broadcast") or cell.startswith("latency")):
        continue
    for layout in layouts:
        rs = [v for v in runs.get((cell, layout), {}).values() if ok(v)]
        bad = len(runs.get((cell, layout), {})) - len(rs)
        if not rs and not bad:
            continue
        g = lambda k: [r.get(k) for r in rs]
        lat = lambda p: f"{fmt(med(g(p + '_p50_us')))} / {fmt(med(g(p + '_p99_us')))}"
        L.append(f"| {cell} | {layout} | {spread(g('msgs_per_s'))} | {spread(g('server_cpu_s_per_M'), 2)} | "
                 f"{spread(g('backplane_cpu_s_per_M'), 2)} | {fmt(med(g('p50_us')))} / {fmt(med(g('p99_us')))} | "
                 f"{lat('local_delivery')} | {lat('remote_delivery')} | {sum(r.get('stalls', 0) for r in rs)}"
                 + (f", {bad} failed run(s)" if bad else "") + " |")
L.append("")
L.append("RPC (wamp-load, json, 1 callee): medians over rounds [min-max]; CPU µs per call of the three nodes and of nats-server.")
L.append("")
L.append("| cell | calls/s | p50 / p99 µs | sockeye CPU µs/call | nats CPU µs/call |")
L.append("| --- | --- | --- | --- | --- |")
for cell in cells:
    if not cell.startswith("rpc"):
        continue
    rs = [v for v in runs.get((cell, "three"), {}).values() if ok(v)]
    if not rs:
        L.append(f"| {cell} | failed | | | |")
        continue
    g = lambda k: [r.get(k) for r in rs]
    L.append(f"| {cell} | {spread(g('calls_per_s'))} | {fmt(med(g('p50_us')))} / {fmt(med(g('p99_us')))} | "
             f"{spread(g('server_cpu_s_per_million'), 2)} | {spread(g('backplane_cpu_s_per_million'), 2)} |")

# Ratios within a round: both sides saw the same stretch of machine load.
def ratio(num, den):
    xs = [num[k] / den[k] for k in num if k in den and num[k] and den[k]]
    if not xs:
        return "-"
    s = f"{statistics.median(xs):.2f}x"
    return s + (f" [{min(xs):.2f}-{max(xs):.2f}]" if len(xs) > 1 else "")

def per_round(cell, layout, f):
    return {k: f(v) for k, v in runs.get((cell, layout), {}).items() if ok(v)}

L.append("")
L.append("Medians of per-round ratios [min-max]:")
L.append("")
L.append("| comparison | deliveries/s | CPU per delivery (sockeye + nats) |")
L.append("| --- | --- | --- |")
for cell in cells:
    if not cell.startswith("broadcast"):
        continue
    for a, b in (("three", "one"), ("one", "solo"), ("three", "solo")):
        if (cell, a) in runs and (cell, b) in runs:
            thr = ratio(per_round(cell, a, lambda r: r.get("msgs_per_s")), per_round(cell, b, lambda r: r.get("msgs_per_s")))
            cpu = ratio(per_round(cell, a, total_cpu), per_round(cell, b, total_cpu))
            L.append(f"| {cell}: {a} / {b} | {thr} | {cpu} |")
L.append("")
L.append("| comparison | p50 | p99 | rate |")
L.append("| --- | --- | --- | --- |")
# lat_row(name, (cell, layout) and latency key prefix of the numerator, the same of the
# denominator, the rate's key or None).
def lat_row(name, num, npre, den, dpre, rk):
    q = lambda c, pre, p: per_round(*c, lambda r: r.get(pre + p))
    p50 = ratio(q(num, npre, "p50_us"), q(den, dpre, "p50_us"))
    p99 = ratio(q(num, npre, "p99_us"), q(den, dpre, "p99_us"))
    rate = ratio(q(num, "", rk), q(den, "", rk)) if rk else ""
    L.append(f"| {name} | {p50} | {p99} | {rate} |")
if ("latency-cross", "three") in runs:
    lat_row("1 subscriber, cross-node / same-node (three)", ("latency-cross", "three"), "",
            ("latency-same", "three"), "", "msgs_per_s")
for a, b in (("one", "solo"), ("three", "one")):
    if ("latency-same", a) in runs and ("latency-same", b) in runs:
        lat_row(f"1 subscriber, same node, {a} / {b}", ("latency-same", a), "",
                ("latency-same", b), "", "msgs_per_s")
for cell in cells:
    if cell.startswith("broadcast") and (cell, "three") in runs:
        lat_row(f"{cell} (three): remote / local deliveries of the same runs", (cell, "three"),
                "remote_delivery_", (cell, "three"), "local_delivery_", None)
for cell in cells:
    if cell.startswith("rpc-cross"):
        local = cell.replace("cross", "local")
        lat_row(f"{cell} / {local}", (cell, "three"), "", (local, "three"), "", "calls_per_s")
print("\n".join(L))
EOF
echo "cluster.sh: runs in $RAW" >&2
