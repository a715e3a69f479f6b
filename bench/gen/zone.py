#!/usr/bin/env python3
"""Generates a benchmark zone and a matching dnsperf query file.

The zone is plain RFC 1035 master format that steerdns, NSD, Knot and gdnsd
all load unchanged:

  - SOA and NS at the apex, glue-free in-zone name servers;
  - NAMES hosts `h<i>` with one A record each, and an AAAA record on every
    AAAA_EVERY-th host (1 = all of them);
  - a wildcard `*.wild` with an A and an AAAA record;
  - `--extra FILE` appends records verbatim (a scenario's own records).

The query file (dnsperf format: `name type` per line) follows a fixed mix,
drawn with a fixed seed so every run asks the same questions in the same
order:

  A on an existing host, AAAA on a host with AAAA, A under the wildcard,
  NXDOMAIN (a name that does not exist), and `--service` names (a scenario's
  traffic-manager names), by the weights given with --mix.

Usage:
  zone.py --origin example.com. --names 10000 --zone out.zone \
          --queries out.queries --count 100000 [--mix a=60,aaaa=20,wild=10,nx=10]
"""

import argparse
import random
import sys


def parse_mix(text):
    mix = {}
    for part in text.split(","):
        if not part:
            continue
        key, _, weight = part.partition("=")
        if key not in ("a", "aaaa", "wild", "nx", "svc"):
            sys.exit(f"zone.py: unknown query kind {key!r} in --mix")
        mix[key] = int(weight)
    if sum(mix.values()) <= 0:
        sys.exit("zone.py: --mix has no positive weight")
    return mix


def host_v4(i):
    # 10.0.0.0/8 gives room for 16 million distinct hosts.
    i += 1
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def host_v6(i):
    return f"2001:db8::{(i >> 16) & 0xffff:x}:{i & 0xffff:x}"


def write_zone(out, origin, names, aaaa_every, extra):
    w = out.write
    w(f"$ORIGIN {origin}\n$TTL 3600\n")
    w("@ IN SOA ns1 hostmaster 2026010101 7200 900 1209600 300\n")
    w("@ IN NS ns1\n@ IN NS ns2\n")
    w("ns1 IN A 192.0.2.53\nns2 IN A 198.51.100.53\n")
    w("*.wild IN A 192.0.2.80\n*.wild IN AAAA 2001:db8::80\n")
    # Buffered in chunks: a million lines in well under a second or two.
    chunk = []
    for i in range(names):
        chunk.append(f"h{i} IN A {host_v4(i)}\n")
        if aaaa_every and i % aaaa_every == 0:
            chunk.append(f"h{i} IN AAAA {host_v6(i)}\n")
        if len(chunk) >= 8192:
            w("".join(chunk))
            chunk.clear()
    w("".join(chunk))
    if extra:
        with open(extra) as f:
            w(f.read())


def write_queries(out, origin, names, aaaa_every, count, mix, services, seed):
    rng = random.Random(seed)
    kinds = [k for k in mix if mix[k] > 0]
    if "svc" in kinds and services <= 0:
        sys.exit("zone.py: --mix has svc but --services is 0")
    weights = [mix[k] for k in kinds]
    aaaa_hosts = (names + aaaa_every - 1) // aaaa_every if aaaa_every else 0
    if "aaaa" in kinds and aaaa_hosts == 0:
        sys.exit("zone.py: --mix has aaaa but the zone has no AAAA")
    lines = []
    for kind in rng.choices(kinds, weights, k=count):
        if kind == "a":
            lines.append(f"h{rng.randrange(names)}.{origin} A\n")
        elif kind == "aaaa":
            lines.append(f"h{rng.randrange(aaaa_hosts) * aaaa_every}.{origin} AAAA\n")
        elif kind == "wild":
            lines.append(f"w{rng.randrange(1 << 30)}.wild.{origin} A\n")
        elif kind == "nx":
            lines.append(f"nx{rng.randrange(1 << 30)}.{origin} A\n")
        else:
            lines.append(f"svc{rng.randrange(services)}.tm.{origin} A\n")
    out.write("".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--origin", default="example.com.")
    p.add_argument("--names", type=int, default=10000)
    p.add_argument("--aaaa-every", type=int, default=1, help="0 = no AAAA records")
    p.add_argument("--extra", help="records appended to the zone verbatim")
    p.add_argument("--zone", required=True)
    p.add_argument("--queries")
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--mix", default="a=60,aaaa=20,wild=10,nx=10")
    p.add_argument("--services", type=int, default=0, help="svc<i>.tm names to ask for")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    origin = a.origin if a.origin.endswith(".") else a.origin + "."
    with open(a.zone, "w") as f:
        write_zone(f, origin, a.names, a.aaaa_every, a.extra)
    if a.queries:
        with open(a.queries, "w") as f:
            write_queries(
                f, origin, a.names, a.aaaa_every, a.count,
                parse_mix(a.mix), a.services, a.seed,
            )


if __name__ == "__main__":
    main()
