#!/usr/bin/env bash
# Runs every check of the project: formatting, lints and all tests.
#
# Works on a fresh Debian machine with a Rust toolchain: what the build
# and the tests need that Debian ships (C and C++ compilers for ring and
# libFuzzer, the DNS servers, tools and resolvers the integration tests
# drive) is installed with apt-get when missing, as root or through sudo;
# rustfmt and clippy are added with rustup when missing.
#
# No test skips itself here: under CI (`.ci/run` exports CI=1) a test that
# cannot run (not root, no network namespaces, a program missing) fails,
# and elsewhere it fails too unless STEERDNS_ALLOW_SKIP=1 is set.
#
# The Debian nsd and gdnsd packages would start a service on port 53; the
# install below keeps them from starting (policy-rc.d), and the tests start
# their own servers on free high loopback ports anyway.
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
    # Tool, then the Debian package that brings it. ring (TLS for the
    # HTTPS probes) compiles C, libFuzzer C++; the failover lab
    # (tests/failover.rs) needs iproute2, busybox (its HTTP payload) and
    # the four recursive resolvers; the cluster lab (tests/cluster.rs)
    # needs iproute2 (ip rule with port matches); tests/ecs_unbound.rs needs unbound
    # built with its subnetcache (ECS) module, as Debian's is;
    # tests/admin.rs renders the status page in headless Chromium;
    # tests/geo_gdnsd.rs compares geographic routing with gdnsd's geoip
    # plugin (Debian's gdnsd is built with it).
    local tool package
    while read -r tool package; do
        have "$tool" || missing+=("$package")
    done <<'EOF'
cc gcc
c++ g++
nsd nsd
dig dnsutils
kdig knot-dnsutils
ip iproute2
busybox busybox
unbound unbound
kresd knot-resolver
pdns_recursor pdns-recursor
named bind9
chromium chromium
gdnsd gdnsd
systemd-analyze systemd
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

# A toolchain installed with rustup's minimal profile lacks these two; a
# Debian-packaged one has them as the packages rustfmt and rust-clippy.
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        echo "test.sh: installing $component"
        if command -v rustup >/dev/null 2>&1; then
            rustup component add "$component"
        else
            as_root apt-get update
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
                --no-install-recommends "${component/clippy/rust-clippy}"
        fi
    fi
done

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
