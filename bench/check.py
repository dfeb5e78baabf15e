#!/usr/bin/env python3
"""Checks, before any load, that every benchmarked system serves the request mix correctly.

For each system, every distinct request of its requests file (bench/requests.py) is sent once:
  - every answer must be 200 with a Prometheus JSON success;
  - with the real Prometheus (--mode prometheus): every series in the answer must carry
    `label="tenant"` where it carries the label at all, some answer must hold a series of the
    tenant, and the data must equal what the upstream itself answers to the
    already-enforced request of the `direct` system (same line of its requests file);
  - with the fast upstream (--mode fast): a 200 is enough (the fast upstream answers 400 to a query
    that names no tenant label).
A control request checks that the data is not trivially single-tenant: the upstream, asked for
`up` without enforcement, must return more than one tenant.

The bearer token, when a system needs one, comes from the environment (BENCH_AUTH_TOKEN) and is
never printed.

Usage: check.py --manifest systems.json --mode prometheus|fast --label namespace --tenant acme
                --out check.json
manifest: [{"name", "url", "requests", "auth": bool}], one of them named "direct".
"""
import argparse
import json
import os
import sys
import urllib.error
import urllib.request

TIMEOUT = 10


def send(base, line, token):
    method, target, body = (line.split("\t") + ["", ""])[:3]
    headers = {}
    data = None
    if token:
        headers["Authorization"] = "Bearer " + token
    if body:
        data = body.encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(base + target, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def tenants_in(data, label):
    """Every value of `label` found on a series in a Prometheus `data` field."""
    found = set()
    if isinstance(data, dict) and "result" in data:
        for item in data["result"] or []:
            metric = item.get("metric", {})
            if label in metric:
                found.add(metric[label])
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, dict) and label in item:
                found.add(item[label])
    return found


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f if line.strip()]
    # Distinct requests, in first-seen order.
    return list(dict.fromkeys(lines))


def check_system(system, direct, args, token):
    lines = read_lines(system["requests"])
    reference = read_lines(direct["requests"])
    if len(lines) != len(reference):
        return f"{len(lines)} request shapes, the direct file has {len(reference)}"
    tenant_seen = False
    for line, ref_line in zip(lines, reference):
        shape = line.split("\t")[1].split("?")[0]
        status, body = send(system["url"], line, token if system["auth"] else "")
        if status != 200:
            return f"{shape}: HTTP {status}"
        try:
            answer = json.loads(body)
        except ValueError:
            return f"{shape}: not JSON"
        if answer.get("status") != "success":
            return f"{shape}: status {answer.get('status')!r}"
        if args.mode != "prometheus":
            continue
        seen = tenants_in(answer.get("data"), args.label)
        if seen - {args.tenant}:
            return f"{shape}: answer holds tenants {sorted(seen)}"
        tenant_seen = tenant_seen or args.tenant in seen
        if system["name"] != "direct":
            ref_status, ref_body = send(direct["url"], ref_line, "")
            if ref_status != 200 or json.loads(ref_body).get("data") != answer.get("data"):
                return f"{shape}: data differs from the upstream's answer to the enforced query"
    if args.mode == "prometheus" and not tenant_seen:
        return f"no answer held a series of tenant {args.tenant}"
    return None


def control(direct, label):
    """The upstream holds several tenants: `up` without enforcement sees more than one."""
    status, body = send(direct["url"], "GET\t/api/v1/query?query=up\t", "")
    if status != 200:
        return f"control query: HTTP {status}"
    seen = tenants_in(json.loads(body).get("data"), label)
    if len(seen) < 2:
        return f"control query: the upstream holds only tenants {sorted(seen)}"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--mode", choices=["prometheus", "fast"], required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    token = os.environ.get("BENCH_AUTH_TOKEN", "")
    with open(args.manifest, encoding="utf-8") as f:
        systems = json.load(f)
    direct = next(s for s in systems if s["name"] == "direct")

    results = {}
    if args.mode == "prometheus":
        problem = control(direct, args.label)
        if problem:
            print(f"check [{args.mode}] control: FAILED: {problem}", file=sys.stderr)
            sys.exit(1)
    for system in systems:
        try:
            problem = check_system(system, direct, args, token)
        except (OSError, ValueError) as err:
            problem = f"{type(err).__name__}: {err}"
        results[system["name"]] = problem
        verdict = "ok" if problem is None else f"FAILED: {problem}"
        what = "200, tenant acme only, same data as the upstream" if args.mode == "prometheus" \
            else "200 for every request shape"
        print(f"check [{args.mode}] {system['name']}: {verdict if problem else 'ok: ' + what}",
              file=sys.stderr)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
