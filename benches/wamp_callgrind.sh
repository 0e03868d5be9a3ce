#!/usr/bin/env bash
# benches/wamp_callgrind.sh BIN [SERIALIZER] [SESSIONS] [WARMUP] [DURATION]: user-space
# instructions per delivered EVENT (SCENARIO=pubsub, the default) or per CALL (SCENARIO=rpc) of
# `BIN serve`'s /wamp, counted by callgrind, which machine load does not move. The server runs
# under valgrind on CPU 1, benches/wamp's wamp-load on CPU 0; the counters are zeroed when the
# warm-up ends and dumped when the measured window ends, so start-up is not counted (the two
# windows line up within a few tenths of a second, a few per cent at 15 s).
#
# Build wamp-load first: (cd benches && cargo build --release -p sockeye-bench-wamp).
set -euo pipefail
BIN=$1
SER=${2:-json}
SESSIONS=${3:-100}
WARMUP=${4:-6}
DURATION=${5:-15}
SCENARIO=${SCENARIO:-pubsub}
HERE=$(cd "$(dirname "$0")" && pwd)
LOAD=${BENCHES_TARGET_DIR:-$HERE/target}/release/wamp-load
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" \
    "$BIN" serve --listen 127.0.0.1:0 --log-level warn > "$W/out" 2> "$W/err" &
VALGRIND=$!
for _ in $(seq 300); do
    ADDR=$(awk '/^LISTENING/ {print $2; exit}' "$W/out" 2>/dev/null || true)
    [ -n "$ADDR" ] && break
    sleep 0.2
done
[ -n "$ADDR" ] || { echo "wamp_callgrind.sh: the server did not start: $(cat "$W/err")" >&2; exit 1; }
taskset -c 0 "$LOAD" --scenario "$SCENARIO" --serializer "$SER" --subscribers "$SESSIONS" \
    --callers "$SESSIONS" --warmup "$WARMUP" --duration "$DURATION" "ws://$ADDR/wamp" \
    > "$W/load.json" 2> "$W/load.err" &
LOADGEN=$!
sleep "$WARMUP"
callgrind_control -z "$VALGRIND" > /dev/null
sleep "$DURATION"
callgrind_control -d "$VALGRIND" > /dev/null
wait "$LOADGEN" || true
kill "$VALGRIND"
wait "$VALGRIND" 2>/dev/null || true
python3 - "$W" "$BIN" "$SCENARIO" "$SER" <<'PY'
import glob, json, sys
work, binary, scenario, ser = sys.argv[1:]
dump = sorted(glob.glob(f"{work}/cg.out.*"))[0]
ir = next(int(l.split()[1]) for l in open(dump) if l.startswith("summary:"))
run = json.loads(open(f"{work}/load.json").read().strip().splitlines()[-1])
n = run.get("events") or run.get("calls")
print(json.dumps({"bin": binary, "scenario": scenario, "serializer": ser,
                  "instructions": ir, "count": n, "instructions_per": round(ir / n)}))
PY
