#!/usr/bin/env python3
"""Writes RESULTS.md (and a PNG when matplotlib is there) from bench/run's
scratch folder: results.tsv, steps.tsv, scenarios.tsv, machine.txt,
gen.tsv, commands.tsv."""

import argparse
import csv
import math
import os


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def read_pairs(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "\t" in line:
                    a, b = line.rstrip("\n").split("\t", 1)
                    out.append((a, b))
    return out


def num(v):
    try:
        x = float(v)
        return None if math.isnan(x) else x
    except (TypeError, ValueError):
        return None


# metric key, column title, higher is better, format
METRICS = [
    ("max_qps", "max QPS (≥ {target} % answered)", True, "{:,.0f}"),
    ("closed_loop_qps", "saturated QPS (closed loop)", True, "{:,.0f}"),
    ("cpu_us_per_query", "CPU µs/query @ {fixed} QPS", False, "{:.2f}"),
    ("p50_us", "p50 latency µs @ {fixed} QPS", False, "{:.1f}"),
    ("p99_us", "p99 latency µs @ {fixed} QPS", False, "{:.1f}"),
]


SHORT = {
    "max_qps": "max QPS",
    "closed_loop_qps": "saturated QPS",
    "cpu_us_per_query": "CPU per query",
    "p50_us": "p50",
    "p99_us": "p99",
}


def ratio_text(v, best, higher):
    if v is None or best is None or best == 0:
        return "–"
    r = v / best
    return f"{r:.2f}"


def scenario_section(scen, title, rows, steps, machine):
    target = machine.get("target", "99.9")
    fixed = machine.get("fixed", "")
    out = [f"## {scen}: {title}", ""]
    ok = [r for r in rows if r["status"] == "ok"]
    other = [r for r in rows if r["status"] != "ok"]
    if not ok:
        out.append("No server measured in this scenario.")
    else:
        heads = ["server"]
        for key, title_t, higher, _ in METRICS:
            heads.append(title_t.format(target=target, fixed=fixed))
            heads.append("ratio")
        out.append("| " + " | ".join(heads) + " |")
        out.append("|" + "---|" * len(heads))
        best = {}
        for key, _, higher, _ in METRICS:
            vals = [num(r[key]) for r in ok if num(r[key]) is not None and num(r[key]) > 0]
            best[key] = (max(vals) if higher else min(vals)) if vals else None
        for r in ok:
            cells = [r["server"]]
            for key, _, higher, fmt in METRICS:
                v = num(r[key])
                cells.append(fmt.format(v) if v is not None else "–")
                cells.append(ratio_text(v, best[key], higher))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
        out.append("Ratios are against the best server in the column (1.00 = best; "
                   "above 1 for QPS never happens, above 1 for CPU and latency is worse).")
        # steerdns against the best of the others.
        sd = next((r for r in ok if r["server"] == "steerdns"), None)
        peers = [r for r in ok if r["server"] != "steerdns"]
        if sd and peers:
            parts = []
            for key, title_t, higher, fmt in METRICS:
                vals = [(num(p[key]), p["server"]) for p in peers if num(p[key])]
                v = num(sd[key])
                if not vals or v is None:
                    continue
                bv, bn = max(vals) if higher else min(vals)
                name = SHORT[key]
                parts.append(f"{name} {v / bv:.2f}× {bn}'s")
            out.append("")
            out.append("**steerdns against the best peer:** " + "; ".join(parts) + ".")
        notes = []
        for r in ok:
            extra = []
            if r.get("noisy_steps") not in ("", "0", None):
                extra.append(f"{r['noisy_steps']} step(s) still delayed by other tasks after retries (see the step table)")
            if num(r.get("fixed_answered_pct")) is not None and num(r["fixed_answered_pct"]) < float(target):
                extra.append(f"only {r['fixed_answered_pct']} % answered at the fixed load")
            if num(r.get("drops_at_fixed")):
                extra.append(f"{r['drops_at_fixed']} datagrams dropped (receive buffer full) at the fixed load")
            at_max = [s for s in steps if s["scenario"] == r["scenario"] and s["server"] == r["server"]
                      and s["phase"].startswith("search") and s["offered_qps"] == r["max_qps"]]
            if at_max and (num(at_max[-1]["loadgen_cpu"]) or 0) >= 0.9:
                extra.append(f"at its max rate dnsload used {at_max[-1]['loadgen_cpu']} of its core "
                             f"(server {at_max[-1]['server_cpu']}): the generator was near its limit too")
            if r.get("note"):
                extra.append(r["note"])
            if extra:
                notes.append(f"- {r['server']}: " + "; ".join(extra))
        if notes:
            out.append("")
            out.extend(notes)
    for r in other:
        out.append("")
        label = "**pending**" if r["status"] == "pending" else "**failed**"
        out.append(f"- {r['server']}: {label}: {r.get('note', '')}")
    # Load generator check.
    cal = [r for r in ok if r.get("dnsperf_qps")]
    if cal:
        out += ["", "### Load generator check", "",
                "The same server, closed loop (a fixed number of queries outstanding), "
                "driven by dnsload and by dnsperf (`-c 4 -q 500`, no rate limit); "
                "CPU is the share of its one core each generator used.", "",
                "| server | dnsload answered/s | dnsload CPU | dnsperf answered/s | dnsperf CPU | server CPU under dnsperf | who saturated (dnsperf run) |",
                "|---|---|---|---|---|---|---|"]
        for r in cal:
            dp_cpu, _, dp_srv = (r["dnsperf_cpu"] or "").partition("/")
            c, sv = num(dp_cpu), num(dp_srv)
            who = "–"
            if c is not None and sv is not None:
                who = ("dnsperf" if c >= 0.9 and sv < 0.9 else
                       "server" if sv >= 0.9 and c < 0.9 else
                       "both" if c >= 0.9 else "neither")
            out.append(f"| {r['server']} | {num(r['closed_loop_qps']) or 0:,.0f} | "
                       f"{r['dnsload_cpu_closed_loop']} | {num(r['dnsperf_qps']) or 0:,.0f} | {dp_cpu} | {dp_srv or '–'} | {who} |")
    # Raw steps.
    srows = [s for s in steps if s["scenario"] == scen]
    if srows:
        out += ["", "<details><summary>Every load step</summary>", "",
                "| server | phase | offered | answered/s | answered % | p50 µs | p99 µs | server CPU | generator CPU | other processes' CPU | delayed % | drops |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in srows:
            out.append("| " + " | ".join([s["server"], s["phase"], s["offered_qps"] if s["offered_qps"] != "0" else "closed loop",
                                          s["answered_qps"], s["answered_pct"], s["p50_us"], s["p99_us"],
                                          s["server_cpu"], s["loadgen_cpu"], s["foreign"], s.get("delayed_pct", ""), s["rcvbuf_drops"]]) + " |")
        out += ["", "</details>"]
    out.append("")
    return out


def plot(path, scenarios, results, machine):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    scen_ok = [(s, t) for s, t in scenarios if any(r["scenario"] == s and r["status"] == "ok" for r in results)]
    if not scen_ok:
        return False
    fig, axes = plt.subplots(len(scen_ok), len(METRICS), figsize=(4 * len(METRICS), 3.2 * len(scen_ok)), squeeze=False)
    for i, (scen, _) in enumerate(scen_ok):
        rows = [r for r in results if r["scenario"] == scen and r["status"] == "ok"]
        names = [r["server"] for r in rows]
        for j, (key, title_t, higher, _) in enumerate(METRICS):
            ax = axes[i][j]
            vals = [num(r[key]) or 0 for r in rows]
            colors = ["#d62728" if n == "steerdns" else "#7f7f7f" for n in names]
            ax.bar(names, vals, color=colors)
            ax.set_title(f"{scen}\n" + title_t.format(target=machine.get("target", "99.9"), fixed=machine.get("fixed", "")), fontsize=9)
            ax.tick_params(axis="x", labelsize=8)
            ax.set_ylabel("higher is better" if higher else "lower is better", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--plot")
    p.add_argument("--raw", action="append", default=[],
                   help="a raw data file (relative to the report) the tables come from")
    a = p.parse_args()
    w = a.work
    results = read_tsv(os.path.join(w, "results.tsv"))
    steps = read_tsv(os.path.join(w, "steps.tsv"))
    scenarios = read_pairs(os.path.join(w, "scenarios.tsv"))
    gens = dict(read_pairs(os.path.join(w, "gen.tsv")))
    commands = read_pairs(os.path.join(w, "commands.tsv"))
    m = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(w, "machine.txt")) if "=" in line)
    settings = dict(kv.split("=", 1) for kv in m.get("settings", "").split() if "=" in kv)
    m["target"] = settings.get("TARGET_PCT", "99.9")
    m["fixed"] = f"{int(settings.get('FIXED_QPS', '0')):,}"

    L = ["# steerdns benchmark results", "",
         f"Run on {m['date']} with `{m['invocation'].strip()}` ({m.get('duration', '?')}). "
         "How it measures, and how to run it: [README.md](README.md).", "",
         "| machine | |", "|---|---|",
         f"| CPU | {m['cpu']}, {m['cores']} cores{' (' + m['hypervisor'] + ' guest)' if m.get('hypervisor') else ''} |",
         f"| memory | {m['memory']} |",
         f"| OS, kernel | {m['os']}, Linux {m['kernel']} |",
         f"| steerdns | {m['version_steerdns']}, commit {m['steerdns_commit']}, {m['rustc']} |",
         f"| NSD | {m['version_nsd']} |",
         f"| Knot DNS | {m['version_knot']} |",
         f"| gdnsd | {m['version_gdnsd']} |",
         f"| dnsperf | {m['version_dnsperf']} |",
         f"| settings | `{m['settings']}` |", ""]
    L += ["Each server runs alone on core " + settings.get("SERVER_CPU", "0") + " with one worker "
          "(steerdns `workers = 1`, NSD `server-count: 1`, Knot `udp-workers: 1`, gdnsd `udp_threads = 1`); "
          "the load generator runs on core " + settings.get("LOADGEN_CPU", "1") + ". "
          "**max QPS**: the highest offered rate (bisection) at which at least "
          f"{m['target']} % of queries were answered within {int(settings.get('TIMEOUT_MS', '1000')) / 1000:g} s"
          f"{' (a failing rate is tried twice)' if settings.get('QUICK') != '1' else ''}. "
          "**saturated QPS**: answers per second with 128 queries always outstanding (closed loop), "
          "the server's core at 100 %. "
          f"**CPU µs/query**: the server's utime + stime (/proc/PID/stat) during {m['fixed']} QPS offered, "
          "divided by the queries answered. **p50/p99**: response time at that load, "
          "from the send to the kernel's arrival stamp on the reply."
          + ("" if not a.raw else " Raw rows: " + ", ".join(f"[{r}]({r})" for r in a.raw)
             + " (one row per server and scenario; every load step)."), ""]
    if plot(a.plot, scenarios, results, m) if a.plot else False:
        rel = os.path.relpath(a.plot, os.path.dirname(os.path.abspath(a.out)))
        L += [f"![results]({rel})", ""]
    # How undisturbed the run was.
    if steps:
        other = [num(s["foreign"]) or 0 for s in steps]
        delayed = [num(s.get("delayed_pct")) or 0 for s in steps]
        over = sum(1 for d in delayed if d > float(settings.get("DELAY_MAX", "1.0")))
        L += ["**Conditions:** other processes used on average "
              f"{sum(other) / len(other):.2f} cores (max {max(other):.2f}) during the {len(steps)} load steps; "
              f"{over} step(s) had the server or generator kept waiting for its CPU more than "
              f"{settings.get('DELAY_MAX', '1.0')} % of the time "
              "(the closed-loop steps, with the server at 100 %, are the ones a busy neighbour delays most). "
              "A quiet machine gives steadier numbers: max QPS and p99 move most with disturbance.", ""]
    for scen, title in scenarios:
        L += scenario_section(scen, title, [r for r in results if r["scenario"] == scen], steps, m)
    L += ["## Exact commands", "", "```sh", m["invocation"].strip(), "```", "",
          "Zones and queries (per scenario):", "", "```sh"]
    for scen, cmd in gens.items():
        L.append(f"# {scen}")
        L.append(cmd)
    L += ["```", "", "Servers (`$WORK` is the run's scratch folder; configs are written by bench/lib/servers.sh):",
          "", "```sh"]
    seen = set()
    for server, cmd in commands:
        if cmd not in seen:
            seen.add(cmd)
            L.append(cmd)
    gen_prio = "chrt -f 10 " if settings.get("PRIO", "rt") == "rt" else ""
    cpu = settings.get("LOADGEN_CPU", "1")
    L += ["```", "", "Load (per step; `-Q 0` = closed loop with `-w 128` outstanding):", "", "```sh",
          f"{gen_prio}taskset -c {cpu} bench/loadgen/target/release/dnsload -s 127.0.0.1:PORT -d QUERIES -l SECONDS -Q RATE -w 128 -t {settings.get('TIMEOUT_MS', '1000')} [scenario flags, e.g. -E 8:00011800c63364]",
          f"{gen_prio}taskset -c {cpu} dnsperf -s 127.0.0.1 -p PORT -d QUERIES -l SECONDS -c 4 -q 500 -t 1   # load generator check",
          "```", ""]
    # Sections other scripts own (bench/scale, bench/profile) stay.
    kept = []
    if os.path.exists(a.out):
        keep = False
        for line in open(a.out):
            if line.startswith("## "):
                keep = line.startswith(("## Scale", "## Profile", "## Notes", "## Reload", "## CPU per query", "## Scaling"))
            if keep:
                kept.append(line.rstrip("\n"))
    with open(a.out, "w") as f:
        f.write("\n".join(L + kept) + "\n")


if __name__ == "__main__":
    main()
