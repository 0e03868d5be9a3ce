#!/usr/bin/env bash
# Builds the fuzz targets once, runs them one after another, and prints what each did.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   every target (or those named), 60 s each
#   fuzz/run.sh --smoke [TARGET...]                 5 s each, a debug build without ASan: for CI
#   fuzz/run.sh --cmin [TARGET...]                  minimise corpus/<target> with `cargo fuzz cmin`
#
# Each run reads corpus/<target> and seeds/<target>, writes new inputs to corpus/<target> and
# crashes, timeouts and OOMs to artifacts/<target>/, and its output to logs/<target>.log. One
# libFuzzer process at a time (no -jobs, no -fork). The table at the end gives, per target, the
# executions, executions per second, the coverage of libFuzzer's last stats line (cov: edges,
# ft: features), the corpus size, and the artifacts this run wrote. The exit status is 1 if any
# target wrote an artifact.
#
# Environment: CARGO_TARGET_DIR (default fuzz/target) and CARGO_BUILD_JOBS. cargo-fuzz needs
# nightly flags: RUSTC_BOOTSTRAP=1 is set here.
set -euo pipefail

cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
host=$(rustc -vV | sed -n 's/^host: //p')
profile=(-O)
bin_dir=release

# The field after `name:` in libFuzzer's last stats line (`#1234 DONE cov: 1 ft: 2 corp: 3/4b
# lim: 5 exec/s: 6 rss: 7Mb`).
stat() { sed -n "s/.* $2: \([^ ]*\).*/\1/p" <<<"$1"; }
count() { find "artifacts/$1" -maxdepth 1 -type f -name "$2-*" | wc -l; }
kib() { find "$1" -type f -printf '%s\n' | awk '{ n += $1 } END { printf "%d", (n + 1023) / 1024 }'; }

seconds=60
mode=run
targets=()
for arg in "$@"; do
    case $arg in
        # A debug build (overflow checks, debug assertions) without ASan builds in about a third
        # of the time; the long runs keep ASan.
        --smoke) seconds=5 profile=(--dev --sanitizer none) bin_dir=debug ;;
        --cmin) mode=cmin ;;
        -h | --help)
            sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*) echo "unknown option $arg" >&2; exit 2 ;;
        *[!0-9]*) targets+=("$arg") ;;
        *) seconds=$arg ;;
    esac
done
all=$(cargo fuzz list)
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets <<<"$all"
fi
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$all" || { echo "no fuzz target $t (cargo fuzz list)" >&2; exit 2; }
done

mkdir -p logs
if [ "$mode" = cmin ]; then
    for t in "${targets[@]}"; do
        [ -d "corpus/$t" ] || continue
        before=$(find "corpus/$t" -type f | wc -l)
        cargo fuzz cmin --target-dir "$target_dir" "$t" "corpus/$t" -- -rss_limit_mb=2048 -timeout=10 \
            >"logs/$t.cmin.log" 2>&1 || { echo "$t: cmin failed, see logs/$t.cmin.log" >&2; exit 1; }
        echo "$t: $before -> $(find "corpus/$t" -type f | wc -l) inputs, $(kib "corpus/$t") KiB"
    done
    exit 0
fi

echo "building every target (cargo fuzz build, target dir $target_dir)" >&2
bin=$target_dir/$host/$bin_dir
cargo fuzz build "${profile[@]}" --target-dir "$target_dir" >logs/build.log 2>&1 || {
    tail -n 30 logs/build.log >&2
    exit 1
}

rows=()
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
    before=$(find "artifacts/$t" -maxdepth 1 -type f | wc -l)
    crashes0=$(count "$t" crash) timeouts0=$(count "$t" timeout) ooms0=$(count "$t" oom)
    echo "fuzzing $t for $seconds s" >&2
    start=$(date +%s)
    set +e
    "$bin/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" "corpus/$t" "seeds/$t" >"logs/$t.log" 2>&1
    status=$?
    set -e
    elapsed=$(($(date +%s) - start))
    last=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log")
    execs=${execs:-$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")}
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log")
    rate=${rate:-$(( ${execs:-0} / (elapsed > 0 ? elapsed : 1) ))}
    corpus="$(find "corpus/$t" -type f | wc -l) ($(kib "corpus/$t") KiB)"
    crashes=$(($(count "$t" crash) - crashes0))
    timeouts=$(($(count "$t" timeout) - timeouts0))
    ooms=$(($(count "$t" oom) - ooms0))
    new=$(($(find "artifacts/$t" -maxdepth 1 -type f | wc -l) - before))
    if [ "$new" -gt 0 ] || [ "$status" -ne 0 ]; then
        failed=1
        echo "  $t: exit status $status, $new new artifact(s) in artifacts/$t/; see logs/$t.log" >&2
    fi
    rows+=("| \`$t\` | ${execs:-?} | ${rate:-?} | $(stat "$last" cov) | $(stat "$last" ft) | $corpus | $crashes | $timeouts | $ooms |")
done

echo
echo "| target | executions | exec/s | cov | ft | corpus (files) | crashes | timeouts | OOMs |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
exit "$failed"
