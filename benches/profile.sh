#!/usr/bin/env bash
# Counts the instructions each echo server executes per message, with valgrind's callgrind:
# a count that does not move with other load on the machine (kernel time is not included),
# and names sockeye's hot spots.
#
#   benches/profile.sh [--size BYTES] [--binary] [--deflate] [--connections N] [--seconds S]
#                      [--contenders "..."] [--top N] [--serve-base-bin PATH]
#
# Contenders: the peers of compare.sh, and `serve` (`sockeye serve`, logging at warn), `serve-1`
# (the same with --workers 1: one thread, tokio's current-thread scheduler) and
# `serve-base` (the `sockeye` binary of another revision, --serve-base-bin) for an A/B of the
# server users run.
#
# --deflate: permessage-deflate (client_no_context_takeover, level 6), for the contenders that
# have it (sockeye, yawc): the server and `sockeye bench` both get --deflate.
#
# Uses the binaries compare.sh builds (run it, or build both workspaces, first). For each
# contender: the server runs under callgrind on CPU 0, `sockeye bench` drives it from CPU 1
# for S seconds; a second run that only connects gives the baseline (start-up, handshakes),
# which is subtracted. Profiles stay in benches/target/profile/ for callgrind_annotate or
# kcachegrind.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SIZE=20
BINARY=""
DEFLATE=""
CONNS=10
SECONDS_=8
CONTENDERS="sockeye tungstenite fastwebsockets tokio-websockets yawc"
TOP=25
SERVE_BASE_BIN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --size) SIZE=$2; shift ;;
        --binary) BINARY=--binary ;;
        --deflate) DEFLATE=--deflate ;;
        --connections) CONNS=$2; shift ;;
        --seconds) SECONDS_=$2; shift ;;
        --contenders) CONTENDERS=$2; shift ;;
        --top) TOP=$2; shift ;;
        --serve-base-bin) SERVE_BASE_BIN=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "profile.sh: needs valgrind" >&2; exit 1; }
SOCKEYE=${CARGO_TARGET_DIR:-$ROOT/target}/release/sockeye
PEERS=${BENCHES_TARGET_DIR:-$HERE/target}/release
OUTDIR=${BENCHES_TARGET_DIR:-$HERE/target}/profile
mkdir -p "$OUTDIR"

# The server command; the listening address follows it.
cmd_of() {
    case "$1" in
        tokio-websockets) echo "$PEERS/tokio_websockets $DEFLATE" ;;
        serve) echo "$SOCKEYE serve --log-level warn --listen" ;;
        serve-1) echo "$SOCKEYE serve --workers 1 --log-level warn --listen" ;;
        serve-base) echo "${SERVE_BASE_BIN:?--serve-base-bin is needed for serve-base} serve --log-level warn --listen" ;;
        *) echo "$PEERS/$1 $DEFLATE" ;;
    esac
}

# measure NAME CONTENDER MODE: prints "instructions messages"
measure() {
    local name=$1 contender=$2 mode=$3 out=$OUTDIR/$1.callgrind
    # shellcheck disable=SC2086 # DEFLATE is one flag or nothing
    # Valgrind counts every iteration of `rep stosb`/`rep movsb` as an instruction, so glibc's
    # ERMS memset/memcpy for large buffers would count a byte as an instruction; these
    # tunables make glibc use its vector loops, which callgrind counts like the hardware runs.
    GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=2147483647:glibc.cpu.x86_rep_stosb_threshold=2147483647 \
    taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" \
        $(cmd_of "$contender") 127.0.0.1:0 > "$OUTDIR/$name.stdout" 2> "$OUTDIR/$name.valgrind" &
    local pid=$! addr=""
    for _ in $(seq 200); do
        addr=$(awk '/^LISTENING/ {print $2; exit}' "$OUTDIR/$name.stdout" 2>/dev/null || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    local json
    if [ "$mode" = baseline ]; then
        json=$(taskset -c 1 "$SOCKEYE" bench "ws://$addr/echo" --mode idle -c "$CONNS" -d 0.5 2>/dev/null)
    else
        # shellcheck disable=SC2086
        json=$(taskset -c 1 "$SOCKEYE" bench "ws://$addr/echo" -c "$CONNS" -s "$SIZE" $BINARY $DEFLATE \
            -d "$SECONDS_" -w 0 2>/dev/null)
    fi
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    local ir
    ir=$(awk '/^summary:/ {print $2}' "$out")
    local msgs
    msgs=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("messages", 0))' "$json")
    echo "$ir $msgs"
}

echo "| contender | instructions per message | messages | total instructions |"
echo "|---|---:|---:|---:|"
for c in $CONTENDERS; do
    read -r base _ < <(measure "$c-baseline" "$c" baseline)
    read -r ir msgs < <(measure "$c-${SIZE}${BINARY:+-binary}${DEFLATE:+-deflate}" "$c" run)
    python3 -c 'import sys; c,ir,b,m=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4]); print(f"| {c} | {(ir-b)/m:,.0f} | {m:,} | {ir:,} |")' \
        "$c" "$ir" "$base" "$msgs"
done

if [[ " $CONTENDERS " == *" sockeye "* ]]; then
    echo
    echo "sockeye, top $TOP functions by instructions (self), $CONNS connections x $SIZE B${BINARY:+ binary}:"
    callgrind_annotate --threshold=99 "$OUTDIR/sockeye-${SIZE}${BINARY:+-binary}${DEFLATE:+-deflate}.callgrind" 2>/dev/null \
        | sed -n '/^Ir/,$p' | head -n $((TOP + 3)) || true
    echo
    echo "inclusive:"
    callgrind_annotate --inclusive=yes --threshold=99 \
        "$OUTDIR/sockeye-${SIZE}${BINARY:+-binary}${DEFLATE:+-deflate}.callgrind" 2>/dev/null \
        | sed -n '/^Ir/,$p' | head -n $((TOP + 3)) || true
fi
