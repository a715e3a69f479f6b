# shellcheck shell=bash disable=SC2034 # variables read by bench/run
# Scenario: multivalue (three endpoints, all answered, rotated), ECS on every query. steerdns alone: the
# measure is its CPU per query against its own static answers (10-static) in
# the same run; the routing issue asks for at most 1.1x.
TITLE="Routing method: multivalue (three endpoints, all answered, rotated) (*.tm.example.com), ECS 198.51.100.0/24 on every query"
SERVERS="steerdns"
ZONE_ARGS="--names 10000 --aaaa-every 1"
QUERY_ARGS="--mix svc=100 --services 10000"
LOAD_ARGS="-E 8:00011800c63364"                    # option 8 = ECS: IPv4, /24, scope 0, 198.51.100
PROBE_DIG_ARGS="+subnet=198.51.100.0/24"
CONFIG_EXTRA_steerdns='
[[service]]
name = "*.tm.example.com."
routing = "multivalue"
endpoints = [
  { name = "a", addresses = ["192.0.2.1"] },
  { name = "b", addresses = ["192.0.2.2"] },
  { name = "c", addresses = ["192.0.2.3"] },
]'
PROBE_steerdns="svc0.tm.example.com. 192.0.2.1 192.0.2.2 192.0.2.3"
