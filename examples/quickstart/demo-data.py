#!/usr/bin/env python3
"""Writes OpenMetrics demo data for three tenants, for `promtool tsdb create-blocks-from openmetrics`.

Every series carries a `namespace` label naming its tenant (acme, globex, initech). Values are
deterministic, so tests can assert exact answers:
  http_requests_total{namespace, job="api", pod, code}: counter, +1/+2/+3 per minute per tenant
  up{namespace, job="api", pod}: 1
  build_info{namespace, version}: 1

Usage: demo-data.py --end UNIX_SECONDS [--minutes N] > data.om
"""
import argparse
import sys

TENANTS = {"acme": 1, "globex": 2, "initech": 3}
PODS = ["api-0", "api-1"]
CODES = ["200", "500"]


def series(end, minutes):
    start = end - (minutes - 1) * 60
    times = [start + 60 * i for i in range(minutes)]
    yield "# TYPE http_requests counter"
    for ns, rate in TENANTS.items():
        for pod in PODS:
            for code in CODES:
                labels = f'namespace="{ns}",job="api",pod="{pod}",code="{code}"'
                for i, t in enumerate(times):
                    yield f"http_requests_total{{{labels}}} {rate * i} {t}"
    yield "# TYPE up gauge"
    for ns in TENANTS:
        for pod in PODS:
            for t in times:
                yield f'up{{namespace="{ns}",job="api",pod="{pod}"}} 1 {t}'
    yield "# TYPE build_info gauge"
    for ns in TENANTS:
        for t in times:
            yield f'build_info{{namespace="{ns}",version="1.{TENANTS[ns]}"}} 1 {t}'
    yield "# EOF"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end", type=int, required=True, help="timestamp of the last sample")
    parser.add_argument("--minutes", type=int, default=120, help="samples per series, 1/min")
    args = parser.parse_args()
    sys.stdout.write("\n".join(series(args.end, args.minutes)) + "\n")


if __name__ == "__main__":
    main()
