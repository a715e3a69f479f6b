# shellcheck shell=bash disable=SC2034 # variables read by bench/run
# Scenario: traffic-manager answers computed per query, with an EDNS Client
# Subnet option on every query. steerdns answers *.tm with the address the
# query arrived on (routing = "self", ECS echoed); gdnsd's closest
# equivalent is a DYNA record of its reflect plugin (answers with the ECS
# address, the client's otherwise). NSD and Knot have no such answers.
TITLE="Traffic-manager answers: *.tm.example.com per query (steerdns routing = \"self\"; gdnsd DYNA reflect!best), ECS 198.51.100.0/24 on every query"
SERVERS="steerdns gdnsd"
ZONE_ARGS="--names 10000 --aaaa-every 1"
QUERY_ARGS="--mix svc=100 --services 10000"
LOAD_ARGS="-E 8:00011800c63364"                    # option 8 = ECS: IPv4, /24, scope 0, 198.51.100
PROBE_DIG_ARGS="+subnet=198.51.100.0/24"
# Per server: text appended to its config, records appended to its zone, and
# "NAME ADDRESS": the answer that proves it does this scenario (else pending).
CONFIG_EXTRA_steerdns='
[[service]]
name = "*.tm.example.com."
routing = "self"
ttl = 30'
PROBE_steerdns="svc0.tm.example.com. 127.0.0.1"
ZONE_EXTRA_gdnsd='*.tm 30 DYNA reflect!best'
PROBE_gdnsd="svc0.tm.example.com. 198.51.100.0"
