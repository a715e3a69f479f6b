# shellcheck shell=bash
# Per-server configuration and process control for the benchmarks.
# Sourced by bench/run and bench/scale after lib/common.sh; needs
# STEERDNS_BIN and SERVER_CPU.
#
# Each server NAME has:
#   config_NAME DIR PORT ZONEFILE EXTRA_CONFIG   writes its config into DIR
#   cmd_NAME DIR                                 prints its command line
#   version_NAME                                 prints its version
# The zone apex is $ORIGIN (default example.com.); ZONEFILE is copied (or
# hard-linked) into DIR. EXTRA_CONFIG is text appended to the config (a
# scenario's per-server snippet; may be empty).

ORIGIN=${ORIGIN:-example.com.}
MAX_UDP_PAYLOAD=1232

SERVERS_KNOWN="steerdns nsd knot gdnsd"

# Places the zone file where a server expects it, without copying a large
# file when a hard link will do.
place_zone() { # SRC DST
    ln -f "$1" "$2" 2>/dev/null || cp "$1" "$2"
}

# ---- steerdns ---------------------------------------------------------------
config_steerdns() { # DIR PORT ZONEFILE EXTRA
    place_zone "$3" "$1/zone"
    cat >"$1/steerdns.toml" <<EOF
[server]
listen = ["127.0.0.1:$2"]
workers = ${WORKERS:-1}
max-udp-payload = $MAX_UDP_PAYLOAD
${SERVER_EXTRA:-}

[[zone]]
origin = "$ORIGIN"
file = "zone"
$4
EOF
}
cmd_steerdns() { echo "$STEERDNS_BIN serve --config $1/steerdns.toml"; }
version_steerdns() { echo "$("$STEERDNS_BIN" --version 2>&1 | head -1)${STEERDNS_BUILD:+, $STEERDNS_BUILD}"; }
# The plain `cargo build --release` binary (STEERDNS_RELEASE_BIN), with the
# same config: bench/cpu measures it beside a profile-guided STEERDNS_BIN
# (scripts/build-pgo), so the two builds meet in the same rounds.
config_steerdns_release() { config_steerdns "$@"; }
cmd_steerdns_release() { echo "$STEERDNS_RELEASE_BIN serve --config $1/steerdns.toml"; }
version_steerdns_release() { "$STEERDNS_RELEASE_BIN" --version 2>&1 | head -1; }

# ---- NSD --------------------------------------------------------------------
# One server process (server-count: 1); response rate limiting off, since
# every query comes from one address; no database (zone kept in memory only).
config_nsd() { # DIR PORT ZONEFILE EXTRA
    place_zone "$3" "$1/zone"
    cat >"$1/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$2
    port: $2
    username: ""
    chroot: ""
    zonesdir: "$1"
    database: ""
    pidfile: "$1/nsd.pid"
    xfrdfile: "$1/xfrd.state"
    xfrdir: "$1"
    zonelistfile: "$1/zone.list"
    verbosity: 0
    server-count: ${WORKERS:-1}
    ipv4-edns-size: $MAX_UDP_PAYLOAD
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    do-ip6: no
remote-control:
    control-enable: no
zone:
    name: "$ORIGIN"
    zonefile: "zone"
$4
EOF
}
cmd_nsd() { echo "nsd -d -c $1/nsd.conf"; }
version_nsd() { nsd -v 2>&1 | head -1; }

# ---- Knot DNS ---------------------------------------------------------------
# One UDP and one TCP worker, one background worker; zone loaded whole from
# the file, no journal and no zone file flushes.
config_knot() { # DIR PORT ZONEFILE EXTRA
    place_zone "$3" "$1/zone"
    mkdir -p "$1/db"
    cat >"$1/knot.conf" <<EOF
server:
    rundir: "$1"
    pidfile: "$1/knot.pid"
    listen: 127.0.0.1@$2
    udp-workers: ${WORKERS:-1}
    tcp-workers: 1
    background-workers: 1
    udp-max-payload: $MAX_UDP_PAYLOAD
control:
    listen: "$1/knot.sock"
database:
    storage: "$1/db"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "$1"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: "$ORIGIN"
    file: "zone"
$4
EOF
}
cmd_knot() { echo "knotd -c $1/knot.conf"; }
version_knot() { knotd -V 2>&1 | head -1; }

# ---- gdnsd ------------------------------------------------------------------
# One UDP and one TCP thread. The zone file sits in zones/ under the zone's
# own name, as gdnsd requires. udp_rcvbuf is gdnsd's largest receive buffer
# (1 MiB, which the kernel doubles; net.core.rmem_max caps it): with the
# kernel's default of about 200 KiB, gdnsd lost queries in short pauses at
# rates its core handled half busy, where steerdns holds 4 MiB.
config_gdnsd() { # DIR PORT ZONEFILE EXTRA
    mkdir -p "$1/zones" "$1/run" "$1/state"
    place_zone "$3" "$1/zones/${ORIGIN%.}"
    cat >"$1/config" <<EOF
options => {
    listen => [ 127.0.0.1 ]
    dns_port => $2
    udp_threads => ${WORKERS:-1}
    tcp_threads => 1
    max_edns_response => $MAX_UDP_PAYLOAD
    udp_rcvbuf => 1048576
    run_dir => "$1/run"
    state_dir => "$1/state"
}
$4
EOF
}
cmd_gdnsd() { echo "gdnsd -c $1 start"; }
version_gdnsd() { gdnsd 2>&1 | grep -m1 -i version || echo gdnsd; }

# Writes NAME's config into SDIR for the scenario sourced last: ZONE plus the
# scenario's ZONE_EXTRA_<name> records, and its CONFIG_EXTRA_<name> text.
configure_for_scenario() { # NAME SDIR PORT ZONE
    local name=$1 sdir=$2 port=$3 zone=$4 extra_zone extra_conf
    # Both steerdns builds take steerdns's extras.
    local base=${name%_release}
    extra_zone=$(eval "echo \"\${ZONE_EXTRA_$base:-}\"")
    extra_conf=$(eval "echo \"\${CONFIG_EXTRA_$base:-}\"")
    if [ -n "$extra_zone" ]; then
        { cat "$zone"; printf '%s\n' "$extra_zone"; } >"$sdir/scenario.zone"
        zone=$sdir/scenario.zone
    fi
    "config_$name" "$sdir" "$port" "$zone" "$extra_conf"
}

# ---- process control ----------------------------------------------------------

# Starts server NAME from DIR, pinned to $SERVER_CPU, in its own session
# (so the whole process tree can be stopped by its group id). Sets SERVER_PID.
start_server() { # NAME DIR
    local cmd
    cmd="$(prio_prefix) taskset -c $SERVER_CPU $("cmd_$1" "$2")"
    echo "$cmd" >"$2/command"
    # shellcheck disable=SC2086 # the command line is split on purpose
    setsid $cmd >"$2/server.log" 2>&1 </dev/null &
    SERVER_PID=$!
}

# True once the server answers h0.$ORIGIN A over UDP.
answers() { # PORT
    local out
    out=$(dig +short +tries=1 +time=1 -p "$1" @127.0.0.1 "h0.$ORIGIN" A 2>/dev/null) || return 1
    [ -n "$out" ] && [[ "$out" != *";;"* ]]
}

# Waits up to TIMEOUT seconds (default 120) for the server to answer; fails
# early when it exits.
wait_answering() { # PORT [TIMEOUT]
    local deadline=$((SECONDS + ${2:-120}))
    while ((SECONDS < deadline)); do
        answers "$1" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# Stops the server's whole process group: SIGTERM, then SIGKILL after 5 s.
stop_server() {
    [ -n "${SERVER_PID:-}" ] || return 0
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    local _
    for _ in $(seq 50); do
        kill -0 -- "-$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# The process ids of the server's tree (NSD forks helpers; steerdns, Knot
# and gdnsd are one process with threads, which /proc/PID/stat sums).
server_pids() {
    local pgid=$SERVER_PID p
    for p in /proc/[0-9]*; do
        [ -r "$p/stat" ] || continue
        # field 5 of /proc/PID/stat is the process group id; the command
        # name (field 2) may hold spaces, so cut after its closing paren.
        local rest
        rest=$(sed 's/^.*) //' "$p/stat" 2>/dev/null) || continue
        set -- $rest
        [ "${3:-}" = "$pgid" ] && echo "${p#/proc/}"
    done
}

# CPU time (utime + stime, in clock ticks) of the server's process tree;
# utime only when $what is "user" (see server_user_ticks).
server_ticks() {
    local total=0 pid rest
    for pid in $(server_pids); do
        rest=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        set -- $rest
        # after the command name: state ppid pgrp session tty tpgid flags
        # minflt cminflt majflt cmajflt utime(12) stime(13)
        if [ "${what:-}" = user ]; then total=$((total + ${12})); else total=$((total + ${12} + ${13})); fi
    done
    echo "$total"
}
server_user_ticks() { what=user server_ticks; }

# Nanoseconds the server's threads spent runnable but waiting for a CPU
# (second field of /proc/PID/task/TID/schedstat): what other tasks cost it.
server_wait_ns() {
    local pid
    for pid in $(server_pids); do
        cat /proc/"$pid"/task/*/schedstat 2>/dev/null
    done | awk '{ s += $2 } END { printf "%d\n", s }'
}

# Context switches (voluntary and involuntary) of the server's threads so
# far. At a fixed offered rate most are a worker going to sleep on an
# empty socket, each one a later wake-up: kernel time that grows with how
# often the worker runs dry, not with the work per query.
server_switches() {
    local pid
    for pid in $(server_pids); do
        cat /proc/"$pid"/task/*/status 2>/dev/null || true
    done | awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}

# Resident set size (kB) of the server's process tree, summed.
server_rss_kb() {
    local total=0 pid kb
    for pid in $(server_pids); do
        kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}
