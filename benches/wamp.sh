#!/usr/bin/env bash
# benches/wamp.sh: WAMP router throughput of `sockeye serve`'s /wamp (and of Crossbar.io with
# --crossbar) under wamp-load (benches/wamp): pub/sub fan-out (1 publisher -> N subscribers on
# one topic) and routed RPC (100 callers in closed loop -> 1 callee, and -> several callees on
# a shared `roundrobin` registration), each on wamp.2.json and wamp.2.msgpack. Writes
# results/YYYY-MM-DD-wamp.md (and .jsonl, one JSON object per run).
#
# The server is pinned to --server-cpus (default core 0), the load generator to --client-cpus
# (default core 1). wamp-load reads the server's CPU seconds from /proc/PID/stat at the start
# and the end of each measurement, so every run also reports server CPU seconds per million
# events or calls, which other load on the machine disturbs far less than events per second.
#
# Usage: benches/wamp.sh [options]
#   --baseline BIN       also run this sockeye binary (an earlier revision) as target
#                        "baseline", interleaved, and report sockeye / baseline
#   --crossbar           also run Crossbar.io (venv benches/.crossbar/venv; `pip install
#                        crossbar` into it if it is missing; config benches/crossbar/config.json)
#   --cores              also run sockeye serve on both cores (--cores-cpus) against one core
#   --cores-cpus LIST    taskset CPU list of the multi-core server (default 0,1)
#   --rounds N           rounds; targets are interleaved within a round (default 3)
#   --duration S         seconds measured per run (default 5)
#   --warmup S           seconds of load before measuring (default 2)
#   --subscribers N      pub/sub subscribers (default 1000)
#   --callers N          RPC callers (default 100)
#   --callees N          callees of the roundrobin variant (default 4)
#   --serializers LIST   default "json msgpack"
#   --server-cpus LIST   taskset CPU list of the server (default 0)
#   --client-cpus LIST   taskset CPU list of the load generator (default 1)
#   --quick              1 round of 2 s after 1 s of warm-up
#   --jobs N             cargo build jobs (default 1)
#   --sockeye-rev REV    build sockeye from `git archive REV` (e.g. HEAD) instead of the working
#                        tree, which may hold others' uncommitted changes
#   --no-build           use the binaries already built
#   --out FILE           the report (default results/YYYY-MM-DD-wamp.md)
#
# The main workspace builds into $CARGO_TARGET_DIR (default target/), this folder's workspace
# into $BENCHES_TARGET_DIR (default benches/target). Needs Linux (/proc, taskset) and python3.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

CROSSBAR=0
BASELINE=""
CORES=0
CORES_CPUS=0,1
ROUNDS=3
DURATION=5
WARMUP=2
SUBSCRIBERS=1000
CALLERS=100
CALLEES=4
SERIALIZERS="json msgpack"
SERVER_CPUS=0
CLIENT_CPUS=1
JOBS=1
BUILD=1
OUT=""
REV=""

while [ $# -gt 0 ]; do
    case "$1" in
        --crossbar) CROSSBAR=1 ;;
        --baseline) BASELINE=$2; shift ;;
        --cores) CORES=1 ;;
        --cores-cpus) CORES_CPUS=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --subscribers) SUBSCRIBERS=$2; shift ;;
        --callers) CALLERS=$2; shift ;;
        --callees) CALLEES=$2; shift ;;
        --serializers) SERIALIZERS=$2; shift ;;
        --server-cpus) SERVER_CPUS=$2; shift ;;
        --client-cpus) CLIENT_CPUS=$2; shift ;;
        --quick) ROUNDS=1; DURATION=2; WARMUP=1 ;;
        --jobs) JOBS=$2; shift ;;
        --sockeye-rev) REV=$2; shift ;;
        --no-build) BUILD=0 ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "wamp.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

MAIN_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH_TARGET=${BENCHES_TARGET_DIR:-$HERE/target}
SOCKEYE=$MAIN_TARGET/release/sockeye
LOAD=$BENCH_TARGET/release/wamp-load
VENV=$HERE/.crossbar/venv

for tool in taskset python3; do
    command -v "$tool" > /dev/null || { echo "wamp.sh: $tool is missing" >&2; exit 1; }
done

SRC=$ROOT
if [ -n "$REV" ]; then
    REV=$(cd "$ROOT" && git rev-parse --short "$REV")
    # One fixed folder: cargo's dep-info records absolute paths, so a folder per revision would
    # have it check the previous revision's files and call a stale binary fresh.
    SRC=$MAIN_TARGET/wamp-src
fi
if [ "$BUILD" = 1 ]; then
    echo "== building sockeye serve (main workspace${REV:+ at $REV}) and wamp-load (benches workspace)" >&2
    if [ -n "$REV" ] && [ "$(cat "$SRC/.rev" 2>/dev/null)" != "$REV" ]; then
        rm -rf "$SRC" "$SRC.tmp"
        mkdir -p "$SRC.tmp"
        (cd "$ROOT" && git archive "$REV") | tar -x -C "$SRC.tmp"
        # git archive dates every file at the commit; date them now so cargo rebuilds.
        find "$SRC.tmp" -type f -exec touch {} +
        echo "$REV" > "$SRC.tmp/.rev"
        mv "$SRC.tmp" "$SRC"
    fi
    (cd "$SRC" && CARGO_TARGET_DIR=$MAIN_TARGET cargo build --release -j "$JOBS" -p sockeye-cli)
    (cd "$HERE" && CARGO_TARGET_DIR=$BENCH_TARGET cargo build --release -j "$JOBS" -p sockeye-bench-wamp)
fi
[ -x "$SOCKEYE" ] || { echo "wamp.sh: $SOCKEYE is missing (drop --no-build)" >&2; exit 1; }
[ -x "$LOAD" ] || { echo "wamp.sh: $LOAD is missing (drop --no-build)" >&2; exit 1; }

CROSSBAR_NOTE=""
if [ "$CROSSBAR" = 1 ] && [ ! -x "$VENV/bin/crossbar" ]; then
    echo "== installing Crossbar.io into $VENV" >&2
    mkdir -p "$(dirname "$VENV")"
    if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q crossbar; } \
        > "$HERE/.crossbar/pip.log" 2>&1; then
        CROSSBAR_NOTE="Crossbar could not be installed: $(tail -n 3 "$HERE/.crossbar/pip.log" | tr '\n' ' ')"
        echo "wamp.sh: $CROSSBAR_NOTE" >&2
        CROSSBAR=0
    fi
fi

WANT_FDS=$((SUBSCRIBERS + CALLERS + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$WANT_FDS" ]; then
    ulimit -n "$WANT_FDS" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi

DATE=$(date +%Y-%m-%d)
OUT=${OUT:-$HERE/results/$DATE-wamp.md}
RAW=${OUT%.md}.jsonl
mkdir -p "$(dirname "$OUT")"
: > "$RAW"
WORK=$(mktemp -d)
SERVER_PID=""
SERVER_PIDS=""
URL=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# CPU seconds (utime + stime) of one process, from /proc/PID/stat, whose times are in clock
# ticks of 1/CLK_TCK s (USER_HZ: 100 on most kernels, but not all).
CLK_TCK=$(getconf CLK_TCK)
cpu_seconds() {
    awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo null
}

# A free TCP port on loopback (Crossbar takes its port from the config file).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server TARGET: sets SERVER_PID (the process we started), SERVER_PIDS (every process
# whose CPU counts: for Crossbar the node controller and its router worker) and URL.
start_server() {
    case "$1" in
        sockeye|sockeye-2cores|baseline)
            local cpus=$SERVER_CPUS bin=$SOCKEYE
            [ "$1" = sockeye-2cores ] && cpus=$CORES_CPUS
            [ "$1" = baseline ] && bin=$BASELINE
            rm -f "$WORK/server.out"
            # tokio's multi-thread runtime starts one worker per CPU in the affinity mask.
            taskset -c "$cpus" "$bin" serve --listen 127.0.0.1:0 --log-level warn \
                > "$WORK/server.out" 2> "$WORK/server.err" &
            SERVER_PID=$!
            SERVER_PIDS=$SERVER_PID
            for _ in $(seq 100); do
                local addr
                addr=$(awk '/^LISTENING/ {print $2; exit}' "$WORK/server.out" 2>/dev/null || true)
                if [ -n "$addr" ]; then URL="ws://$addr/wamp"; return 0; fi
                kill -0 "$SERVER_PID" 2>/dev/null || break
                sleep 0.1
            done
            echo "wamp.sh: sockeye serve did not start: $(cat "$WORK/server.err")" >&2
            return 1
            ;;
        crossbar)
            local port cbdir=$WORK/cbdir
            port=$(free_port)
            rm -rf "$cbdir"
            mkdir -p "$cbdir"
            sed "s/\"port\": 18090/\"port\": $port/" "$HERE/crossbar/config.json" > "$cbdir/config.json"
            taskset -c "$SERVER_CPUS" "$VENV/bin/crossbar" start --cbdir "$cbdir" --loglevel warn \
                > "$WORK/server.out" 2> "$WORK/server.err" &
            SERVER_PID=$!
            URL="ws://127.0.0.1:$port/"
            for _ in $(seq 600); do
                if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2> /dev/null; then
                    # The controller forks the router worker; both count.
                    SERVER_PIDS=$(echo "$SERVER_PID" $(pgrep -P "$SERVER_PID" || true) | tr ' ' ',')
                    return 0
                fi
                kill -0 "$SERVER_PID" 2>/dev/null || break
                sleep 0.1
            done
            echo "wamp.sh: crossbar did not start: $(tail -n 5 "$WORK/server.out" "$WORK/server.err")" >&2
            return 1
            ;;
    esac
}

# CPU seconds of every server process so far.
server_cpu_total() {
    local total=0 pid
    for pid in ${SERVER_PIDS//,/ }; do
        total=$(python3 -c "print(round($total + $(cpu_seconds "$pid" | sed 's/null/0/'), 2))")
    done
    echo "$total"
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    # Crossbar's controller stops its worker on SIGTERM; give it time.
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# run TARGET ROUND SERIALIZER SCENARIO
run() {
    local target=$1 round=$2 ser=$3 scenario=$4
    local args=(--serializer "$ser" --warmup "$WARMUP" --duration "$DURATION"
        --server-pid "$SERVER_PIDS" --label "$target")
    case "$scenario" in
        pubsub) args+=(--scenario pubsub --subscribers "$SUBSCRIBERS") ;;
        rpc) args+=(--scenario rpc --callers "$CALLERS" --callees 1) ;;
        rpc-roundrobin) args+=(--scenario rpc --callers "$CALLERS" --callees "$CALLEES") ;;
    esac
    local line
    if ! line=$(taskset -c "$CLIENT_CPUS" "$LOAD" "$URL" "${args[@]}" 2> "$WORK/load.err"); then
        echo "wamp.sh: $target $ser $scenario failed: $(tail -n 1 "$WORK/load.err")" >&2
    fi
    line=$(tail -n 1 <<<"$line")
    [ -n "$line" ] || line='{"error":"wamp-load printed nothing"}'
    echo "{\"target\":\"$target\",\"round\":$round,\"cell\":\"$scenario\",\"result\":$line}" >> "$RAW"
    echo "   round $round: $(tail -n 1 "$WORK/load.err")" >&2
}

TARGETS="sockeye"
[ -n "$BASELINE" ] && TARGETS="$TARGETS baseline"
[ "$CROSSBAR" = 1 ] && TARGETS="$TARGETS crossbar"
[ "$CORES" = 1 ] && TARGETS="$TARGETS sockeye-2cores"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)

for round in $(seq "$ROUNDS"); do
    # Interleaved: every target sees the same stretch of machine load within a round.
    for target in $TARGETS; do
        echo "== round $round/$ROUNDS: $target" >&2
        if ! start_server "$target"; then
            echo "{\"target\":\"$target\",\"round\":$round,\"cell\":\"start\",\"result\":{\"error\":\"server did not start\"}}" >> "$RAW"
            continue
        fi
        threads=$(awk '/^Threads:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo "?")
        for ser in $SERIALIZERS; do
            for scenario in pubsub rpc rpc-roundrobin; do
                run "$target" "$round" "$ser" "$scenario"
            done
        done
        total=$(server_cpu_total)
        stop_server
        echo "{\"target\":\"$target\",\"round\":$round,\"cell\":\"server\",\"result\":{\"server_cpu_s_total\":$total,\"threads_at_start\":\"$threads\"}}" >> "$RAW"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

if [ -n "$REV" ]; then
    SOCKEYE_COMMIT=$REV
    DIRTY=0
else
    SOCKEYE_COMMIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
    # cargo built the working tree: say whether it differed from the commit.
    DIRTY=$(cd "$ROOT" && git status --short -- crates Cargo.toml Cargo.lock 2>/dev/null | wc -l)
fi
BUILT=$(date -u -r "$SOCKEYE" +%H:%M:%SZ)
CROSSBAR_VERSION=""
[ "$CROSSBAR" = 1 ] && CROSSBAR_VERSION=$("$VENV/bin/pip" show crossbar 2>/dev/null | awk '/^Version:/ {print $2}')

python3 - "$RAW" "$OUT" <<EOF
import json, statistics, sys
raw, out = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(raw) if l.strip()]
meta = dict(started="$STARTED", load_before="$LOAD_BEFORE", load_after="$LOAD_AFTER",
            rounds=$ROUNDS, duration=$DURATION, warmup=$WARMUP, subscribers=$SUBSCRIBERS,
            callers=$CALLERS, callees=$CALLEES, server_cpus="$SERVER_CPUS",
            client_cpus="$CLIENT_CPUS", cores_cpus="$CORES_CPUS", commit="$SOCKEYE_COMMIT",
            crossbar="$CROSSBAR_VERSION", dirty=$DIRTY, built="$BUILT", rev="$REV", note="""$CROSSBAR_NOTE""",
            nproc="$(nproc)", cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)")

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, digits=0):
    if x is None:
        return "-"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"

cells = {}
for r in rows:
    if r["cell"] in ("pubsub", "rpc", "rpc-roundrobin"):
        key = (r["target"], r["cell"], r["result"].get("serializer", "?"))
        cells.setdefault(key, []).append(r["result"])

targets = []
for r in rows:
    if r["target"] not in targets:
        targets.append(r["target"])

L = []
L.append(f"# WAMP router throughput, {meta['started'][:10]}")
L.append("")
L.append(f"benches/wamp.sh, sockeye serve built (at {meta['built']}) from " +
         (f"git archive {meta['rev']}" if meta['rev'] else f"the working tree at {meta['commit']}") +
         (f" ({meta['dirty']} files under crates/ modified or new, uncommitted, at the time of the run)" if meta['dirty'] else "") +
         (f", Crossbar.io {meta['crossbar']} (CPython)" if meta['crossbar'] else "") + ".")
L.append(f"{meta['nproc']} cores ({meta['cpu']}); server on CPU {meta['server_cpus']}, wamp-load on CPU {meta['client_cpus']}"
         + (f"; sockeye-2cores: server on CPUs {meta['cores_cpus']} (2 tokio workers), wamp-load still on CPU {meta['client_cpus']}" if "sockeye-2cores" in targets else "") + ".")
L.append(f"{meta['rounds']} round(s), targets interleaved in each; {meta['warmup']} s warm-up, {meta['duration']} s measured per run.")
L.append(f"Load average (1, 5, 15 min) before: {meta['load_before']}, after: {meta['load_after']} (other builds shared the machine).")
if meta["note"]:
    L.append("")
    L.append(meta["note"])
L.append("")
L.append("Medians over rounds (min-max in brackets). CPU/M: server CPU seconds per million events or calls; "
         "util: server (client) CPU seconds per second of wall clock; waiting: seconds per second its threads were runnable but waited for a CPU "
         "(/proc/PID/task/*/schedstat; absent in older runs), i.e. lost to other processes on the machine. "
         "A client util near 1, or a client that waited much more than the server, means the load generator was the limit.")
L.append("")

def cell_line(target, cell, ser, rs):
    thr_key = "events_per_s" if cell == "pubsub" else "calls_per_s"
    thr = [r.get(thr_key) for r in rs if "error" not in r]
    errs = [r["error"] for r in rs if "error" in r]
    cpu = med([r.get("server_cpu_s_per_million") for r in rs])
    su = med([r.get("server_cpu_util") for r in rs])
    cu = med([r.get("client_cpu_util") for r in rs])
    sw = med([r.get("server_runq_wait_util") for r in rs])
    cw = med([r.get("client_runq_wait_util") for r in rs])
    rng = f" [{fmt(min(thr))}-{fmt(max(thr))}]" if len(thr) > 1 else ""
    lat = "-"
    if cell != "pubsub":
        lat = f"{fmt(med([r.get('p50_us') for r in rs]))} / {fmt(med([r.get('p99_us') for r in rs]))}"
    extra = ""
    if cell == "pubsub":
        stalls = sum(r.get("stalls", 0) for r in rs if "error" not in r)
        extra = f"stalls {stalls}"
    if errs:
        extra += f" errors: {len(errs)} ({errs[0]})"
    return f"| {target} | {cell} | {ser} | {fmt(med(thr))}{rng} | {fmt(cpu, 2)} | {fmt(su, 2)} ({fmt(cu, 2)}) | {fmt(sw, 2)} ({fmt(cw, 2)}) | {lat} | {extra.strip()} |", med(thr), cpu

L.append("| target | scenario | serializer | events/s or calls/s | CPU/M (s) | util server (client) | waiting server (client) | p50 / p99 (us) | notes |")
L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
summary = {}
for cell in ("pubsub", "rpc", "rpc-roundrobin"):
    for ser in ("wamp.2.json", "wamp.2.msgpack"):
        for target in targets:
            rs = cells.get((target, cell, ser))
            if not rs:
                continue
            line, thr, cpu = cell_line(target, cell, ser, rs)
            summary[(target, cell, ser)] = (thr, cpu)
            L.append(line)
L.append("")
L.append(f"pubsub: 1 publisher -> {meta['subscribers']} subscribers on one topic, PUBLISH with acknowledge, at most 8 publications in flight "
         "(in flight until every subscriber got its EVENT). rpc: {c} callers, one CALL in flight each, 1 callee; "
         "rpc-roundrobin: the same callers, {n} callees on one 'invoke: roundrobin' registration.".format(c=meta['callers'], n=meta['callees']))

def ratio_table(a, b, title, digits=1):
    if a not in targets or b not in targets:
        return
    L.append("")
    L.append(f"## {title}")
    L.append("")
    L.append(f"| scenario | serializer | throughput {a} / {b} | CPU per million {b} / {a} |")
    L.append("| --- | --- | --- | --- |")
    for cell in ("pubsub", "rpc", "rpc-roundrobin"):
        for ser in ("wamp.2.json", "wamp.2.msgpack"):
            x, y = summary.get((a, cell, ser)), summary.get((b, cell, ser))
            if not x or not y:
                continue
            t = f"{x[0] / y[0]:.{digits}f}x" if x[0] and y[0] else "-"
            c = f"{y[1] / x[1]:.{digits}f}x" if x[1] and y[1] else "-"
            L.append(f"| {cell} | {ser} | {t} | {c} |")

ratio_table("sockeye", "crossbar", "sockeye / Crossbar")
ratio_table("sockeye", "baseline", "sockeye / baseline (an earlier revision)", digits=3)
ratio_table("sockeye-2cores", "sockeye", "sockeye on 2 cores / on 1 core")

servers = [r for r in rows if r["cell"] == "server"]
if servers:
    L.append("")
    L.append("Server processes: " + "; ".join(
        f"{r['target']} round {r['round']}: {r['result']['server_cpu_s_total']} CPU s in total, {r['result']['threads_at_start']} threads at start"
        for r in servers) + ".")
L.append("")
L.append(f"Raw runs: {raw.rsplit('/', 1)[-1]} (one JSON object per run).")
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L))
EOF
echo "wamp.sh: wrote $OUT and $RAW" >&2
