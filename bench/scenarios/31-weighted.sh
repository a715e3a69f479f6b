# shellcheck shell=bash disable=SC2034 # variables read by bench/run
# Scenario: weighted, sticky per /24 (three endpoints), ECS on every query. steerdns alone: the
# measure is its CPU per query against its own static answers (10-static) in
# the same run; the routing issue asks for at most 1.1x.
TITLE="Routing method: weighted, sticky per /24 (three endpoints) (*.tm.example.com), ECS 198.51.100.0/24 on every query"
# shellcheck source=../lib/routing-scenario.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/routing-scenario.sh"
CONFIG_EXTRA_steerdns='
[[service]]
name = "*.tm.example.com."
routing = "weighted"
endpoints = [
  { name = "a", addresses = ["192.0.2.1", "2001:db8::1"], weight = 3 },
  { name = "b", addresses = ["192.0.2.2", "2001:db8::2"], weight = 2 },
  { name = "c", addresses = ["192.0.2.3", "2001:db8::3"], weight = 1 },
]'
PROBE_steerdns="svc0.tm.example.com. 192.0.2.1"
