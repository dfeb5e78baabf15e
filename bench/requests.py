#!/usr/bin/env python3
"""Turns bench/mix.txt into the requests one system is loaded with, one a line for mix.lua.

Output lines are tab-separated: METHOD, TARGET (path and URL-encoded query), BODY (URL-encoded
form, empty for GET). Each mix line is repeated `weight` times, and the lines are interleaved so
that any stretch of the file holds the whole mix.

Tenant styles:
  --tenant-param NAME   the tenant is the URL parameter NAME (Portcullis, prom-label-proxy,
                        prom-authzed-proxy); the proxy enforces the query itself.
  --enforce-with BIN    no tenant is sent: the upstream is called directly, so every query and
                        match[] is rewritten beforehand with `BIN enforce promql`, as an enforcing
                        proxy would forward it, and series and label requests without match[] get
                        `match[]={label="tenant"}`.

Usage: requests.py --mix bench/mix.txt --end UNIX_SECONDS --tenant acme --label namespace
                   (--tenant-param tenant | --enforce-with target/release/portcullis) > requests.tsv
"""
import argparse
import re
import subprocess
import sys
from urllib.parse import urlencode

QUERY_PATHS = ("/api/v1/query", "/api/v1/query_range", "/api/v1/query_exemplars")


def read_mix(path):
    """Yields (weight, method, path, [(key, value)]) for each line of the mix file."""
    with open(path, encoding="utf-8") as mix:
        for number, line in enumerate(mix, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) < 3:
                sys.exit(f"{path}:{number}: want weight, method, path and parameters")
            weight, method, target = int(fields[0]), fields[1], fields[2]
            params = []
            for field in fields[3:]:
                key, sep, value = field.partition("=")
                if not sep:
                    sys.exit(f"{path}:{number}: parameter without '=': {field!r}")
                params.append((key, value))
            yield weight, method, target, params


def expand_time(value, end):
    """$END and $END-N become Unix seconds."""
    match = re.fullmatch(r"\$END(?:-(\d+))?", value)
    if not match:
        return value
    return str(end - int(match.group(1) or 0))


def enforce(binary, label, tenant, query):
    """The query as an enforcing proxy forwards it, from the Portcullis CLI."""
    done = subprocess.run(
        [binary, "enforce", "promql", "--label", label, "--value", tenant, query],
        check=True, capture_output=True, text=True,
    )
    return done.stdout.strip()


def build(args):
    shapes = []
    for weight, method, path, params in read_mix(args.mix):
        params = [(k, expand_time(v, args.end)) for k, v in params]
        url_params = []
        if args.enforce_with:
            enforced = []
            for key, value in params:
                if key in ("query", "match[]"):
                    value = enforce(args.enforce_with, args.label, args.tenant, value)
                enforced.append((key, value))
            params = enforced
            if path not in QUERY_PATHS and not any(k == "match[]" for k, _ in params):
                params.append(("match[]", f'{{{args.label}="{args.tenant}"}}'))
        else:
            url_params.append((args.tenant_param, args.tenant))
        if method == "POST":
            target = path + ("?" + urlencode(url_params) if url_params else "")
            body = urlencode(params)
        else:
            target = path + "?" + urlencode(url_params + params)
            body = ""
        shapes.append((weight, f"{method}\t{target}\t{body}"))
    # Interleave: round r takes every shape whose weight is above r.
    lines = []
    for round_ in range(max(w for w, _ in shapes)):
        lines.extend(line for weight, line in shapes if weight > round_)
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", required=True)
    parser.add_argument("--end", type=int, required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--label", required=True)
    style = parser.add_mutually_exclusive_group(required=True)
    style.add_argument("--tenant-param")
    style.add_argument("--enforce-with")
    args = parser.parse_args()
    sys.stdout.write("\n".join(build(args)) + "\n")


if __name__ == "__main__":
    main()
