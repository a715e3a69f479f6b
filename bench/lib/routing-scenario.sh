# shellcheck shell=bash disable=SC2034 # variables read by bench/run and bench/cpu
# What every routing-method scenario (bench/scenarios/3*.sh) shares:
# steerdns alone, the 10-static zone, queries for *.tm.example.com names,
# ECS on every query. Each scenario adds its TITLE, its service and probe.
SERVERS="steerdns"
ZONE_ARGS="--names 10000 --aaaa-every 1"
QUERY_ARGS="--mix svc=100 --services 10000"
LOAD_ARGS="-E 8:00011800c63364"                    # option 8 = ECS: IPv4, /24, scope 0, 198.51.100
PROBE_DIG_ARGS="+subnet=198.51.100.0/24"
