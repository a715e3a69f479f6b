# shellcheck shell=bash
# Shared helpers for bench/run and bench/scale: installing tools, building,
# priorities, keeping measurements clear of other load, and one load step.
# Sourced; expects BENCH (the bench folder) and ROOT (the repository).

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root or sudo to run: $*"; fi
}

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

# Installs the Debian packages for the commands named, when missing:
# install_missing cmd:package ... Services the packages would start (nsd,
# knot, gdnsd on port 53) are kept from starting with a policy-rc.d, as
# scripts/test.sh does.
install_missing() {
    local pkgs=() pair
    for pair in "$@"; do
        have "${pair%%:*}" || pkgs+=("${pair#*:}")
    done
    [ "${#pkgs[@]}" -eq 0 ] && return 0
    log "installing: ${pkgs[*]}"
    local policy=/usr/sbin/policy-rc.d added=
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\\nexit 101\\n' > $policy && chmod 755 $policy"
        added=1
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    [ -n "$added" ] && as_root rm -f "$policy"
    return 0
}
export PATH="$PATH:/usr/sbin:/sbin"

# The release build; with PGO=1 the profile-guided build of
# scripts/build-pgo (about 7 minutes). STEERDNS_BIN=FILE measures that
# binary instead (say, an older commit's, for a before/after comparison, or
# target/pgo/steerdns built before); the reports then name it.
build_steerdns() {
    if [ -n "${STEERDNS_BIN:-}" ]; then
        log "steerdns: $STEERDNS_BIN (not built)"
        # What the reports call the build (version_steerdns).
        [ "$STEERDNS_BIN" -ef "$ROOT/target/pgo/steerdns" ] && STEERDNS_BUILD=${STEERDNS_BUILD:-$PGO_BUILD}
        return
    fi
    if [ "${PGO:-0}" = 1 ]; then
        log "building steerdns with profile-guided optimisation (scripts/build-pgo)"
        STEERDNS_BIN=$("$ROOT/scripts/build-pgo" | tail -1) || die "scripts/build-pgo failed"
        STEERDNS_BUILD=$PGO_BUILD
        return
    fi
    build_release STEERDNS_BIN
}
PGO_BUILD="profile-guided build (scripts/build-pgo)"

# Builds the worktree with `cargo build --release` and sets the variable
# named VAR to the binary.
build_release() { # VAR
    log "building steerdns (release)"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    printf -v "$1" '%s' "$ROOT/target/release/steerdns"
}

build_loadgen() {
    log "building dnsload (bench/loadgen)"
    (cd "$BENCH/loadgen" && cargo build --release --quiet) || die "building bench/loadgen failed"
    DNSLOAD="$BENCH/loadgen/target/release/dnsload"
}

# Scheduling of the server and the load generator: PRIO=rt (default) runs
# both SCHED_FIFO so that other work on the machine (builds) cannot delay
# them; PRIO=none leaves them in the normal class.
prio_prefix() {
    case "${PRIO:-rt}" in
    rt) echo "chrt -f 10" ;;
    none | "") echo "" ;;
    *) die "PRIO must be rt or none" ;;
    esac
}

# ---- other load on the machine -------------------------------------------------

# Prints "pid pgid ticks" for every process (one awk for all of /proc).
proc_ticks() {
    # cat, not awk on the glob: a process that exits meanwhile must not end
    # the listing early; cat then exits 1, which must not end the script
    # (pipefail) on a machine where processes come and go.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '{
        line = $0; p = 0
        # fields after the last ")" (the command name may hold spaces)
        for (i = length(line); i > 0; i--) if (substr(line, i, 1) == ")") { p = i; break }
        rest = substr(line, p + 2); n = split(rest, f, " ")
        split(substr(line, 1, p), h, " ")
        name = substr(line, index(line, "(") + 1, p - index(line, "(") - 1)
        if (name ~ /^ksoftirqd/) next  # network work for the benchmark itself
        print h[1], f[3], f[12] + f[13]
    }'
}

# CPU (in cores) used between two proc_ticks snapshots by processes outside
# process group EXCLUDE_PGID: foreign load. Usage: foreign_cores BEFORE AFTER SECS PGID
foreign_cores() {
    # (tick-sampled: rough over a second or two, hence the cap at the
    # number of cores)
    awk -v secs="$3" -v pg="$4" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" '
        FNR == NR { before[$1] = $3; next }
        $2 != pg { d = $3 - ($1 in before ? before[$1] : 0); if (d > 0) sum += d }
        END { c = sum / hz / secs; if (c > n) c = n; printf "%.3f\n", c }' "$1" "$2"
}

# Waits until other processes use less than QUIET_MAX cores (default 0.10)
# over one second, for at most QUIET_WAIT seconds (default 20). Returns
# non-zero when the machine never became quiet.
# All waits together stop at QUIET_BUDGET seconds (default 120), kept in
# the file QUIET_SPENT_FILE when set (bench/run measures in subshells).
wait_quiet() { # EXCLUDE_PGID
    local spent=0 start=$SECONDS
    [ -n "${QUIET_SPENT_FILE:-}" ] && [ -f "$QUIET_SPENT_FILE" ] && spent=$(cat "$QUIET_SPENT_FILE")
    local left=$((${QUIET_BUDGET:-120} - spent))
    ((left > ${QUIET_WAIT:-20})) && left=${QUIET_WAIT:-20}
    ((left < 1)) && left=1
    local deadline=$((SECONDS + left)) a b f said='' rc=0
    a=$(mktemp) b=$(mktemp)
    while :; do
        proc_ticks >"$a"; sleep 1; proc_ticks >"$b"
        f=$(foreign_cores "$a" "$b" 1 "${1:-0}")
        if awk -v f="$f" -v m="${QUIET_MAX:-0.10}" 'BEGIN { exit !(f < m) }'; then
            break
        fi
        if ((SECONDS >= deadline)); then
            log "machine still busy (other processes: $f cores); measuring anyway"
            rc=1
            break
        fi
        [ -z "$said" ] && log "waiting for other load to settle ($f cores busy)" && said=1
    done
    rm -f "$a" "$b"
    # The first second of looking is not waiting.
    [ -n "${QUIET_SPENT_FILE:-}" ] && echo $((spent + SECONDS - start - 1 > spent ? spent + SECONDS - start - 1 : spent)) >"$QUIET_SPENT_FILE"
    return "$rc"
}

# ---- one load step --------------------------------------------------------------

UDP_ERRS() { awk '/^Udp:/ { if (!h) { h = 1; for (i = 1; i <= NF; i++) n[$i] = i } else print $n["RcvbufErrors"] }' /proc/net/snmp; }

# Runs one load step against 127.0.0.1:PORT with the load generator on
# LOADGEN_CPU and records key=value lines in STEP_OUT: the generator's
# output plus server_cpu (cores), server_ticks (server_user_ticks of them
# in user space), server_switches (context switches), foreign (cores),
# rcvbuf_drops. Extra generator arguments follow. Usage:
#   run_step PORT SECONDS QPS(0 = closed loop) [generator args...]
run_step() {
    local port=$1 secs=$2 qps=$3; shift 3
    local pa pb s0 s1 su0 su1 c0 c1 u0 u1 w0 w1 t0 t1 prio
    prio=$(prio_prefix)
    pa=$(mktemp) pb=$(mktemp)
    proc_ticks >"$pa"; s0=$(server_ticks); su0=$(server_user_ticks); c0=$(server_switches); u0=$(UDP_ERRS); w0=$(server_wait_ns); t0=$(date +%s.%N)
    if [ "${LOADGEN:-dnsload}" = dnsperf ]; then
        local rate=()
        [ "$qps" -gt 0 ] && rate=(-Q "$qps")
        # shellcheck disable=SC2086 # $prio is empty or a command prefix
        $prio taskset -c "$LOADGEN_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$QUERY_FILE" \
            -l "$secs" -c 4 -q 1000 -t 1 "${rate[@]}" "$@" \
            >"$STEP_OUT.raw" 2>&1 || true
        awk -v qps="$qps" '
            /Queries sent:/ { sent = $3 }
            /Queries completed:/ { done = $3 }
            /Queries per second:/ { aq = $4 }
            /Run time \(s\):/ { secs = $4 }
            /Average Latency/ { avg = $4 * 1e6 }
            END { printf "seconds=%s\nsent=%d\nanswered=%d\nanswered_qps=%.0f\nanswered_pct=%.4f\noffered_qps=%s\np50_us=nan\np99_us=nan\navg_us=%.1f\n",
                  secs, sent, done, aq, sent ? 100 * done / sent : 0, qps, avg }' "$STEP_OUT.raw" >"$STEP_OUT"
    else
        # shellcheck disable=SC2086
        $prio taskset -c "$LOADGEN_CPU" "$DNSLOAD" -s "127.0.0.1:$port" -d "$QUERY_FILE" \
            -l "$secs" -Q "$qps" -w "${WINDOW:-128}" -t "${TIMEOUT_MS:-1000}" "$@" >"$STEP_OUT" 2>"$STEP_OUT.err" ||
            die "dnsload failed: $(cat "$STEP_OUT.err")"
    fi
    t1=$(date +%s.%N); s1=$(server_ticks); su1=$(server_user_ticks); c1=$(server_switches); u1=$(UDP_ERRS); w1=$(server_wait_ns); proc_ticks >"$pb"
    local wall hz
    hz=$(getconf CLK_TCK)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    {
        echo "server_ticks=$((s1 - s0))"
        echo "server_user_ticks=$((su1 - su0))"
        echo "server_switches=$((c1 - c0))"
        # per second of sending (the step also holds start-up and the wait
        # for the last answers, when the server has nothing to do)
        awk -v t=$((s1 - s0)) -v hz="$hz" -v w="$(sv seconds)" 'BEGIN { printf "server_cpu=%.3f\n", t / hz / w }'
        echo "foreign=$(foreign_cores "$pa" "$pb" "$wall" "$SERVER_PID")"
        echo "rcvbuf_drops=$((u1 - u0))"
        # Share of the step the server and the generator were kept waiting
        # for their CPU by other tasks (run-queue time, /proc/.../schedstat).
        awk -v s=$((w1 - w0)) -v g="$(sv loadgen_wait_ms)" -v w="$wall" \
            'BEGIN { printf "server_wait_ms=%.3f\ndelayed_pct=%.3f\n", s / 1e6, 100 * (s / 1e9 + g / 1e3) / w }'
    } >>"$STEP_OUT"
    rm -f "$pa" "$pb"
}

# Reads key from the last step's output.
sv() { awk -F= -v k="$1" '$1 == k { print $2; exit }' "$STEP_OUT"; }

# run_step, repeated (after waiting for quiet) while other tasks kept the
# server or the generator waiting for their CPU more than DELAY_MAX % of
# the step (default 1.0), up to RETRIES more times (default 1). CPU that
# other processes take while ours sleep does not count: it delays nothing.
# Sets STEP_NOISY=1 when the last try was still disturbed.
clean_step() {
    local try=0
    STEP_NOISY=0
    while :; do
        run_step "$@"
        if awk -v d="$(sv delayed_pct)" -v m="${DELAY_MAX:-1.0}" 'BEGIN { exit !(d > m) }'; then
            if ((try < ${RETRIES:-1})); then
                try=$((try + 1))
                log "  step delayed by other tasks ($(sv delayed_pct) % of the time); again once they settle"
                # Still busy after the wait: keep this result, flagged.
                if wait_quiet "$SERVER_PID"; then continue; fi
            fi
            STEP_NOISY=1
        fi
        return 0
    done
}
