#!/usr/bin/env bash
# Runs every check of the project: formatting, lints and all tests.
#
# Works on a fresh Debian machine with a Rust toolchain: the DNS tools the
# integration tests drive (nsd, dig, kdig) are installed with apt-get when
# one of them is missing, as root or through sudo.
#
# The Debian nsd package would start an nsd service on port 53; the install
# below keeps it from starting (policy-rc.d), and the tests start their own
# nsd on free high loopback ports anyway.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Runs a command as root: directly, or through sudo when available.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "test.sh: need root or sudo to run: $*" >&2
        return 1
    fi
}

# True when a program is on PATH or in an sbin folder (nsd lives in
# /usr/sbin, which a non-root PATH may lack).
have() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

install_dns_tools() {
    local missing=()
    # Tool, then the Debian package that brings it. The failover lab
    # (tests/failover.rs) needs iproute2, busybox (its HTTP payload) and
    # the four recursive resolvers.
    local tool package
    while read -r tool package; do
        have "$tool" || missing+=("$package")
    done <<'EOF'
nsd nsd
dig dnsutils
kdig knot-dnsutils
ip iproute2
busybox busybox
unbound unbound
kresd knot-resolver
pdns_recursor pdns-recursor
named bind9
EOF
    if [ "${#missing[@]}" -eq 0 ]; then
        return
    fi
    echo "test.sh: installing DNS tools (missing: ${missing[*]})"
    # invoke-rc.d and deb-systemd-invoke ask policy-rc.d before starting a
    # service; exit code 101 means "not allowed". Only add one if none exists.
    local policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\\nexit 101\\n' > $policy && chmod 755 $policy"
        trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
    if [ "$(trap -p EXIT)" ]; then
        as_root rm -f "$policy"
        trap - EXIT
    fi
}

install_dns_tools

echo "test.sh: cargo fmt"
cargo fmt --all -- --check
echo "test.sh: cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "test.sh: cargo test"
cargo test --all-targets
echo "test.sh: cargo test --doc"
cargo test --doc
# A smoke run of every fuzz target (libFuzzer via cargo-fuzz, which it
# installs when missing); longer runs: docs/fuzzing.md.
echo "test.sh: fuzz smoke run"
scripts/fuzz.sh 15
