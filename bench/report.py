#!/usr/bin/env python3
"""Writes the Markdown results of bench/run.sh from its raw measurements.

Inputs: raw.jsonl (one wrk run a line: round, upstream, system, conns, the wrk summary of mix.lua,
and the CPU ticks of the system's process and of SpiceDB during the run) and meta.json (machine,
versions, configuration, peak RSS per process, checks, systems not measured, microbenchmarks).

Every figure is the median over rounds; "added" latency is the system's median minus the direct
upstream's median at the same connection count; ratios are Portcullis over the peer.

Usage: report.py raw.jsonl meta.json > results.md
"""
import json
import statistics
import sys
from collections import defaultdict

LABELS = {
    "direct": "upstream, direct (floor)",
    "portcullis-allowlist": "Portcullis, allowlist",
    "portcullis-spicedb": "Portcullis, SpiceDB (cached)",
    "portcullis-spicedb-nocache": "Portcullis, SpiceDB (cache off)",
    "prom-label-proxy": "prom-label-proxy",
    "prom-authzed-proxy": "prom-authzed-proxy",
}
WHAT = {
    "direct": "the upstream itself; the mix is sent already enforced, as a proxy forwards it",
    "portcullis-allowlist": "Bearer token, `?tenant=acme`; allowlist authorizer; PromQL enforcer",
    "portcullis-spicedb": "Bearer token, `?tenant=acme`; SpiceDB authorizer, decision cache on "
    "(defaults: 10s allow TTL)",
    "portcullis-spicedb-nocache": "as above with `cache.max_entries = 0`: one SpiceDB "
    "CheckPermission per request, as prom-authzed-proxy does",
    "prom-label-proxy": "`?tenant=acme` (`-query-param tenant`), `-enable-label-apis`; "
    "enforcement only, no authentication or authorization",
    "prom-authzed-proxy": "Bearer token, `?tenant=acme`; one SpiceDB CheckPermission per request, "
    "then prom-label-proxy's enforcement",
}
PORTCULLIS = ["portcullis-allowlist", "portcullis-spicedb", "portcullis-spicedb-nocache"]
PEERS = ["prom-label-proxy", "prom-authzed-proxy"]
UPSTREAM_TITLES = {
    "fast": "fast static upstream (proxy overhead)",
    "prometheus": "real Prometheus with the quickstart's demo data",
}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=2, suffix=""):
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}{suffix}"
        return f"{value:.{digits}f}{suffix}"
    return f"{value:,}{suffix}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def summarize(raw, clk_tck):
    """(upstream, system, conns) → medians and totals over rounds."""
    runs = defaultdict(list)
    for run in raw:
        runs[(run["upstream"], run["system"], run["conns"])].append(run)
    table = {}
    for key, group in runs.items():
        rps, p50, p99, cpu, sdb, opens = [], [], [], [], [], []
        non2xx = errors = requests = 0
        first_bad = ""
        for run in group:
            w = run["wrk"]
            seconds = w["duration_us"] / 1e6
            rps.append(w["requests"] / seconds if seconds else None)
            p50.append(w["p50_us"] / 1000)
            p99.append(w["p99_us"] / 1000)
            if w["requests"]:
                cpu.append(run["cpu_ticks"] / clk_tck / w["requests"] * 10_000)
                if run.get("tcp_opens_per_1k") is not None:
                    opens.append(run["tcp_opens_per_1k"])
                if run.get("spicedb_ticks") is not None:
                    sdb.append(run["spicedb_ticks"] / clk_tck / w["requests"] * 10_000)
            non2xx += w["non2xx"]
            errors += w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]
            requests += w["requests"]
            first_bad = first_bad or w["first_bad"]
        table[key] = {
            "rps": median(rps), "p50": median(p50), "p99": median(p99), "cpu": median(cpu),
            "spicedb_cpu": median(sdb), "opens": median(opens), "non2xx": non2xx, "errors": errors,
            "requests": requests, "rounds": len(group), "first_bad": first_bad,
        }
    return table


def results_table(table, upstream, systems, conns_list):
    out = [
        "| conns | system | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
        "| CPU s / 10k req | SpiceDB CPU s / 10k req | new TCP conns / 1k req (steady state) | non-2xx / requests |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for conns in conns_list:
        floor = table.get((upstream, "direct", conns))
        for system in systems:
            row = table.get((upstream, system, conns))
            if row is None:
                continue
            added50 = added99 = None
            if floor and system != "direct":
                added50 = row["p50"] - floor["p50"]
                added99 = row["p99"] - floor["p99"]
            bad = f"{row['non2xx']:,} / {row['requests']:,}"
            if row["errors"]:
                bad += f" (+{row['errors']:,} socket errors)"
            if row["first_bad"]:
                bad += f" (first: HTTP {row['first_bad']})"
            out.append(
                f"| {conns} | {LABELS.get(system, system)} | {fmt(row['rps'], 0)} "
                f"| {fmt(row['p50'])} | {fmt(row['p99'])} | {fmt(added50)} | {fmt(added99)} "
                f"| {fmt(row['cpu'], 3)} | {fmt(row['spicedb_cpu'], 3)} | {fmt(row['opens'], 1)} "
                f"| {bad} |"
            )
    return out


def ratio_table(table, upstream, systems, conns_list, rss):
    present_pc = [s for s in PORTCULLIS if s in systems]
    present_peers = [s for s in PEERS if s in systems]
    if not present_pc or not present_peers:
        return []
    out = [
        "| conns | Portcullis | peer | req/s × | added p99 × | CPU / req × | peak RSS × |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for conns in conns_list:
        floor = table.get((upstream, "direct", conns))
        for pc in present_pc:
            for peer in present_peers:
                a = table.get((upstream, pc, conns))
                b = table.get((upstream, peer, conns))
                if not a or not b:
                    continue
                added_a = a["p99"] - floor["p99"] if floor else None
                added_b = b["p99"] - floor["p99"] if floor else None
                rss_a = rss.get(upstream, {}).get(pc, {}).get("hwm_kb")
                rss_b = rss.get(upstream, {}).get(peer, {}).get("hwm_kb")
                # A p99 below the direct run's (queueing on the load CPU) has no meaningful ratio.
                added_ratio = None
                if added_a is not None and added_b and added_b > 0:
                    added_ratio = ratio(added_a, added_b) if added_a > 0 else "≤ 0"
                out.append(
                    f"| {conns} | {LABELS[pc]} | {LABELS[peer]} | {fmt(ratio(a['rps'], b['rps']))} "
                    f"| {fmt(added_ratio)} | {fmt(ratio(a['cpu'], b['cpu']))} "
                    f"| {fmt(ratio(rss_a, rss_b))} |"
                )
    return out


def rss_table(rss, systems, upstreams):
    out = ["| system | " + " | ".join(f"{u}: peak RSS MB" for u in upstreams) + " |",
           "|---|" + "---:|" * len(upstreams)]
    for system in systems:
        cells = []
        for upstream in upstreams:
            kb = rss.get(upstream, {}).get(system, {}).get("hwm_kb")
            cells.append(fmt(kb / 1024, 1) if kb else "–")
        out.append(f"| {LABELS.get(system, system)} | " + " | ".join(cells) + " |")
    return out


def targets(table, rss, meta):
    lines = []
    conns = 64
    upstream = "fast"
    plp = table.get((upstream, "prom-label-proxy", conns))
    floor = table.get((upstream, "direct", conns))
    for pc in ("portcullis-spicedb", "portcullis-allowlist"):
        row = table.get((upstream, pc, conns))
        if not row or not plp:
            continue
        tput = ratio(row["rps"], plp["rps"])
        verdict = "met" if tput is not None and tput >= 2 else "missed"
        lines.append(
            f"- {LABELS[pc]} vs prom-label-proxy, fast upstream, 64 connections: throughput "
            f"{fmt(row['rps'], 0)} vs {fmt(plp['rps'], 0)} req/s = **{fmt(tput)}×** "
            f"(target ≥ 2×: {verdict})."
        )
        if floor:
            a = row["p99"] - floor["p99"]
            b = plp["p99"] - floor["p99"]
            if a <= 0:
                lines.append(
                    f"- {LABELS[pc]} vs prom-label-proxy, same point: added p99 **≤ 0** (its p99 "
                    f"{fmt(row['p99'])} ms is below the direct run's {fmt(floor['p99'])} ms) vs "
                    f"{fmt(b)} ms (target ≤ 0.5×: met)."
                )
            else:
                r = a / b if b > 0 else None
                verdict = "met" if r is not None and r <= 0.5 else "missed"
                lines.append(
                    f"- {LABELS[pc]} vs prom-label-proxy, same point: added p99 {fmt(a)} ms vs "
                    f"{fmt(b)} ms = **{fmt(r)}×** (target ≤ 0.5×: {verdict})."
                )
    for pc in PORTCULLIS:
        peaks = [rss.get(u, {}).get(pc, {}).get("hwm_kb") for u in rss]
        peaks = [p for p in peaks if p]
        if not peaks:
            continue
        mb = max(peaks) / 1024
        verdict = "met" if mb <= 30 else "missed"
        lines.append(
            f"- {LABELS[pc]}: peak RSS over the run (up to {max(meta['config']['connections'])} "
            f"connections), **{mb:.1f} MB** "
            f"(target ≤ 30 MB: {verdict})."
        )
    return lines


def main():
    raw_path, meta_path = sys.argv[1], sys.argv[2]
    with open(raw_path, encoding="utf-8") as f:
        raw = [json.loads(line) for line in f if line.strip()]
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    clk_tck = meta["clk_tck"]
    table = summarize(raw, clk_tck)
    config = meta["config"]
    conns_list = config["connections"]
    upstreams = config["upstreams"]
    measured = [s for s in config["systems"] if any(k[1] == s for k in table)]
    rss = meta.get("rss", {})

    out = ["# Portcullis against prom-label-proxy and prom-authzed-proxy", ""]
    out.append(
        f"Run {meta['date']} on `{meta['host']}` with `{meta['command']}`: {config['rounds']} "
        f"rounds of {config['duration_s']} s per system and connection count, systems interleaved "
        f"within each round (order rotated every round), medians over rounds. "
        f"Load: `wrk` with [`mix.lua`](../mix.lua) cycling through [`mix.txt`](../mix.txt) "
        f"(instant and range queries of several sizes, series, label values; GET and POST). "
        f"{config['pinning']}"
    )
    out.append("")
    for note in meta.get("notes", []):
        out.append(f"> {note}")
        out.append("")

    out += ["## Targets (evaluated, not asserted)", ""]
    out += targets(table, rss, meta) or ["- not evaluable: a needed system was not measured."]
    out.append("")

    for upstream in upstreams:
        out += [f"## Upstream: {UPSTREAM_TITLES.get(upstream, upstream)}", ""]
        out += results_table(table, upstream, measured, conns_list)
        out.append("")
        ratios = ratio_table(table, upstream, measured, conns_list, rss)
        if ratios:
            out += [f"Portcullis over each peer ({upstream} upstream): above 1 is better for req/s, "
                    "below 1 is better for the others.", ""]
            out += ratios
            out.append("")

    out += ["## Peak memory", "",
            "VmHWM of each process at the end of the run: its peak over all rounds and connection "
            f"counts (up to {max(conns_list)}); one process per system and upstream. For the "
            "floor: the upstream itself.", ""]
    out += rss_table(rss, measured, upstreams)
    out.append("")

    out += ["## Systems", "", "| system | request and setup |", "|---|---|"]
    for system in config["systems"]:
        out.append(f"| {LABELS.get(system, system)} | {WHAT.get(system, '')} |")
    out.append("")
    unavailable = meta.get("unavailable", {})
    if unavailable:
        out += ["Not measured:", ""]
        for system, reason in unavailable.items():
            out.append(f"- **{LABELS.get(system, system)}**: {reason}")
        out.append("")

    out += ["## Checks before load", ""]
    for upstream, results in meta.get("checks", {}).items():
        for system, problem in results.items():
            verdict = "ok" if problem is None else f"FAILED ({problem}): not loaded"
            out.append(f"- {upstream}, {LABELS.get(system, system)}: {verdict}")
    out.append("")
    out.append(
        "With Prometheus each system answered every request shape of the mix with 200, only "
        "tenant acme's series, and the same data the upstream gives for the enforced query; "
        "the upstream asked for `up` without enforcement returns several tenants. The fast "
        "upstream answers 400 to any query or match[] that does not name the tenant label, so "
        "non-2xx counts above would show a system forwarding unenforced requests."
    )
    out.append("")

    criterion = meta.get("criterion")
    out += ["## Microbenchmarks (`cargo bench`)", ""]
    if criterion:
        out += ["| bench | case | median time | throughput |", "|---|---|---:|---:|"]
        for row in criterion:
            out.append(f"| {row['bench']} | `{row['id']}` | {row['time']} | {row['thrpt']} |")
        out.append("")
        out.append(f"Run with `{meta.get('criterion_args', '')}`.")
    else:
        out.append("Not run this time (`BENCH_CRITERION=1` runs them; see bench/README.md).")
    out.append("")

    out += ["## Machine and versions", "", "| | |", "|---|---|"]
    for key, value in meta["machine"].items():
        out.append(f"| {key} | {value} |")
    for key, value in meta["versions"].items():
        out.append(f"| {key} | {value} |")
    out.append("")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
