# shellcheck shell=bash disable=SC2034 # variables read by bench/run
# Scenario: 10-static with the UDP workers' query counters off
# ([server] count-queries = false). Paired with 10-static in bench/cpu, it
# shows what the per-worker metrics counters cost per query.
# shellcheck source=10-static.sh
. "$(dirname "${BASH_SOURCE[0]}")/10-static.sh"
TITLE="$TITLE, query counters off"
SERVERS="steerdns"
CALIBRATE_DNSPERF=0
SERVER_EXTRA="count-queries = false"
