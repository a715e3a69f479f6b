# shellcheck shell=bash disable=SC2034 # variables read by bench/run
# Scenario: priority (two endpoints), ECS on every query. steerdns alone: the
# measure is its CPU per query against its own static answers (10-static) in
# the same run; the routing issue asks for at most 1.1x.
TITLE="Routing method: priority (two endpoints) (*.tm.example.com), ECS 198.51.100.0/24 on every query"
# shellcheck source=../lib/routing-scenario.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/routing-scenario.sh"
CONFIG_EXTRA_steerdns='
[[service]]
name = "*.tm.example.com."
routing = "priority"
endpoints = [
  { name = "a", addresses = ["192.0.2.1", "2001:db8::1"], priority = 1 },
  { name = "b", addresses = ["192.0.2.2", "2001:db8::2"], priority = 2 },
]'
PROBE_steerdns="svc0.tm.example.com. 192.0.2.1"
