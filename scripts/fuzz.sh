#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a while and fails if any of them
# crashes (a panic, a failed check, a hang or a memory blow-up).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     # default 60
#
# Installs cargo-fuzz when missing. The machine has a stable toolchain only:
# RUSTC_BOOTSTRAP=1 lets it take the nightly flags cargo-fuzz passes.
# Inputs found worth keeping go to fuzz/corpus/<target> (not committed);
# the committed seeds in fuzz/seeds/<target> are read, never written.
# A crash leaves its input in fuzz/artifacts/<target>/ and is named at the
# end, with the command that replays it. See docs/fuzzing.md.
#
# Environment:
#   FUZZ_TARGETS    targets to run, space-separated (default: all four)
#   FUZZ_SANITIZER  none (default) or address; the code fuzzed is safe Rust,
#                   so AddressSanitizer mostly halves the speed
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
    exit 2
fi
read -r -a targets <<<"${FUZZ_TARGETS:-engine zone_parser config ecs}"
sanitizer="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Paths below are relative to fuzz/.
logs=target/fuzz-logs
mkdir -p "$logs"

start=$SECONDS
echo "fuzz.sh: building the fuzz targets (sanitizer: $sanitizer)"
if ! cargo fuzz build --sanitizer "$sanitizer" >"$logs/build.log" 2>&1; then
    cat "$logs/build.log" >&2
    exit 1
fi
echo "fuzz.sh: built in $((SECONDS - start))s"

# Reads one of libFuzzer's final statistics (-print_final_stats=1) from a log.
final_stat() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

failed=()
summary=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="$logs/$target.log"
    args=(
        -max_total_time="$seconds"
        -timeout=10
        -rss_limit_mb=2048
        -print_final_stats=1
        -artifact_prefix="artifacts/$target/"
    )
    if [ -f "dicts/$target.dict" ]; then
        args+=(-dict="dicts/$target.dict")
    fi
    echo "fuzz.sh: $target for ${seconds}s"
    marker="$logs/$target.started"
    touch "$marker"
    status=0
    cargo fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" "seeds/$target" \
        -- "${args[@]}" >"$log" 2>&1 || status=$?
    runs=$(final_stat number_of_executed_units "$log")
    speed=$(final_stat average_exec_per_sec "$log")
    new_artifacts=$(find "artifacts/$target" -type f -newer "$marker")
    if [ "$status" -ne 0 ] || [ -n "$new_artifacts" ]; then
        failed+=("$target")
        summary+=("$(printf '%-12s FAILED (exit %s), log: fuzz/%s' "$target" "$status" "$log")")
        echo "fuzz.sh: $target FAILED:"
        # The panic (or libFuzzer's error) first, then the input.
        grep -m 1 -A 4 -E "panicked at|ERROR: libFuzzer|==ERROR" "$log" || tail -n 30 "$log"
        for artifact in $new_artifacts; do
            echo "  fuzz/$artifact"
            echo "    replay: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $target $artifact)"
            echo "    bytes:  $(od -An -v -tx1 "$artifact" | tr -s ' \n' ' ' | cut -c1-600)"
        done
    else
        summary+=("$(printf '%-12s ok  %10s runs  %8s execs/s' "$target" "${runs:-?}" "${speed:-?}")")
    fi
done

echo
echo "fuzz.sh: ${seconds}s per target, $((SECONDS - start))s in all, build included"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
