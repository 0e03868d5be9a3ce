#!/usr/bin/env bash
# benches/chat_callgrind.sh SERVE_BIN BENCH_BIN [SUBSCRIBERS] [WARMUP] [DURATION] [OUT]:
# user-space instructions `SERVE_BIN serve` executes per message delivered on /chat, counted
# by callgrind, which machine load does not move. The server (--no-compression --workers 1)
# runs under valgrind on CPU 1; `BENCH_BIN bench --mode broadcast` (one publisher,
# SUBSCRIBERS subscribers, 20 B text) on CPU 0, with --progress. The counters are zeroed at
# the bench's first progress line (1 s into the measured window) and dumped at its
# (DURATION-1)-th, and the deliveries are the difference of the two lines' counts, so the
# instructions and the deliveries cover the same seconds (both ends late by the same
# callgrind_control delay). Prints one JSON object; the profile stays in OUT (default: a
# fresh temporary folder).
# SERVE_FLAGS (default --no-compression) and BENCH_FLAGS (default none) change the two sides:
# SERVE_FLAGS= BENCH_FLAGS=--deflate measures `sockeye serve` as it ships, permessage-deflate on.
set -euo pipefail
SERVE_FLAGS=${SERVE_FLAGS---no-compression}
BENCH_FLAGS=${BENCH_FLAGS-}
SERVE=$1
BENCH=$2
SUBS=${3:-100}
WARMUP=${4:-5}
DURATION=${5:-20}
OUT=${6:-$(mktemp -d)}
mkdir -p "$OUT"

# Valgrind counts every iteration of `rep movsb`/`rep stosb` as an instruction; these tunables
# make glibc use its vector loops instead (as benches/profile.sh does).
GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=2147483647:glibc.cpu.x86_rep_stosb_threshold=2147483647 \
taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" \
    "$SERVE" serve $SERVE_FLAGS --workers 1 --log-level warn --listen 127.0.0.1:0 \
    > "$OUT/serve.out" 2> "$OUT/serve.err" &
VALGRIND=$!
trap 'kill "$VALGRIND" 2>/dev/null || true' EXIT
ADDR=""
for _ in $(seq 300); do
    ADDR=$(awk '/^LISTENING/ {print $2; exit}' "$OUT/serve.out" 2>/dev/null || true)
    [ -n "$ADDR" ] && break
    sleep 0.2
done
[ -n "$ADDR" ] || { echo "chat_callgrind.sh: the server did not start: $(cat "$OUT/serve.err")" >&2; exit 1; }

taskset -c 0 "$BENCH" bench "ws://$ADDR/chat" --mode broadcast -c "$SUBS" -s 20 $BENCH_FLAGS \
    -w "$WARMUP" -d "$DURATION" --progress > "$OUT/bench.json" 2> "$OUT/bench.err" &
BENCHPID=$!

# Zero at the first progress line, dump at line DURATION-1.
python3 - "$OUT" "$VALGRIND" "$DURATION" "$BENCHPID" > "$OUT/window.json" <<'PY'
import json, os, re, subprocess, sys, time
out, vg, duration, bench = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
line = re.compile(r"^\s*(\d+)/\d+ s\s+(\d+) messages")
done = {}
while len(done) < 2:
    text = open(f"{out}/bench.err", errors="replace").read()
    ticks = [m for m in (line.match(p) for p in re.split(r"[\r\n]", text)) if m]
    for k, cmd in ((1, "-z"), (duration - 1, "-d")):
        if k not in done and len(ticks) >= k:
            t0 = time.time()
            subprocess.run(["callgrind_control", cmd, vg], check=True, stdout=subprocess.DEVNULL)
            done[k] = {"line": k, "messages": int(ticks[k - 1].group(2)),
                       "callgrind_control_s": round(time.time() - t0, 3)}
    try:
        os.kill(bench, 0)
    except ProcessLookupError:
        break
    time.sleep(0.01)
print(json.dumps(done))
PY
wait "$BENCHPID" || true
kill "$VALGRIND"
wait "$VALGRIND" 2>/dev/null || true
trap - EXIT

python3 - "$OUT" "$SERVE" "$SUBS" <<'PY'
import glob, json, sys
out, serve, subs = sys.argv[1], sys.argv[2], int(sys.argv[3])
window = json.load(open(f"{out}/window.json"))
dumps = sorted(glob.glob(f"{out}/cg.out.*"))
ir = next(int(l.split()[1]) for l in open(dumps[0]) if l.startswith("summary:"))
first, last = window["1"], window[str(max(int(k) for k in window))]
delivered = last["messages"] - first["messages"]
run = json.loads(open(f"{out}/bench.json").read().strip().splitlines()[-1])
print(json.dumps({
    "serve": serve, "subscribers": subs, "instructions": ir, "deliveries": delivered,
    "publishes": round(delivered / subs, 1),
    "ir_per_delivery": round(ir / delivered),
    "ir_per_publish": round(ir * subs / delivered),
    "window": window, "bench_messages": run.get("messages"), "bench_published": run.get("published"),
    "bench_stalls": run.get("stalls"), "bench_failed": run.get("failed"), "dump": dumps[0],
}))
PY
