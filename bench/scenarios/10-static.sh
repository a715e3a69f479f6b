# shellcheck shell=bash disable=SC2034 # variables read by bench/run
# Scenario: a static zone, answered from memory by every server.
# A scenario file sets the variables below; bench/run sources it.
TITLE="Static zone: 10,000 names with A and AAAA, a wildcard; queries 60% A, 20% AAAA, 10% wildcard, 10% NXDOMAIN"
SERVERS="steerdns nsd knot gdnsd"
ZONE_ARGS="--names 10000 --aaaa-every 1"          # bench/gen/zone.py, zone part
QUERY_ARGS="--mix a=60,aaaa=20,wild=10,nx=10"      # bench/gen/zone.py, query part
LOAD_ARGS=""                                       # extra dnsload/dnsperf flags (-e, -E code:hex)
CALIBRATE_DNSPERF=1                                # also measure dnsperf's own ceiling here
