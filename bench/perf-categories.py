#!/usr/bin/env python3
"""Sorts the samples of `perf script` output (call graphs) into a few categories of proxy work.

Each sample counts once, for the first category (in the order below) that any frame of its stack
matches, so kernel socket work is counted before the user code that asked for it.

Usage: perf script -i perf.data > perf.txt; perf-categories.py perf.txt
"""
import collections
import re
import sys

CATEGORIES = [
    ("kernel: connect/close (new TCP connections)",
     r"^(__sys_connect|__x64_sys_connect|syscall\.Connect|inet_stream_connect|__x64_sys_close|syscall\.Close)"),
    ("kernel: socket writes (incl. loopback delivery to the reader)",
     r"^(__GI___writev|__libc_sendmsg|__send\b|do_writev|__sys_sendto|tcp_sendmsg|syscall\.write)"),
    ("kernel: socket reads",
     r"^(__libc_recv|__GI___readv|__GI___libc_read|tcp_recvmsg|sock_read_iter|__sys_recvfrom|syscall\.read)"),
    ("kernel: writes to stderr (log lines)", r"^(vfs_write|ksys_write|__GI___libc_write)"),
    ("kernel: epoll, futex, scheduling",
     r"^(epoll_wait|do_epoll_wait|futex_wait|__futex_abstimed_wait|schedule|sched_yield|runtime\.futex|runtime\.netpoll)"),
    ("log events (tracing fmt)", r"(on_event|Event::dispatch|tracing_core::event)"),
    ("spans (tracing: new_span, record, close, formatted fields)",
     r"(^new_span|^on_new_span|^on_record|^record\b|tracing_subscriber|tracing_core|^try_close|^on_close|format_fields|tracing::span)"),
    ("PromQL enforcement (parse, cache, print)",
     r"(portcullis_enforcer_promql|promql_parser|Gateway::enforce|moka|promql/parser|injectproxy\.enforce)"),
    ("Go garbage collector", r"^runtime\.(gcBgMarkWorker|gcDrain|scanobject|scanObject|markroot|gcStart|bgsweep)"),
    # Metric updates themselves, not the promhttp handler wrappers that sit above everything.
    ("metrics", r"(portcullis::metrics|prometheus_client|client_golang/prometheus\.)"),
    ("parameters, tenants, authorization, outgoing request",
     r"(portcullis::params|form_urlencoded|portcullis::tenancy|portcullis_authorizer|SubjectHasher|Gateway::authorize|Gateway::outgoing|forwardable|portcullis::authn|net/url)"),
    ("allocation", r"^(malloc|_int_malloc|_int_free|cfree|realloc|malloc_consolidate|runtime\.mallocgc)"),
    ("HTTP stack (hyper, axum, net/http)", r"(hyper|httparse|^http::|axum|tower|net/http)"),
    ("async runtime", r"(tokio::|^runtime\.)"),
]


def samples(path):
    stack = []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if stack:
                    yield stack
                stack = []
            elif line.startswith(("\t", " ")):
                parts = line.strip().split(None, 1)
                if len(parts) == 2:
                    stack.append(parts[1].rsplit(" (", 1)[0])
    if stack:
        yield stack


def main():
    compiled = [(name, re.compile(rx)) for name, rx in CATEGORIES]
    counts = collections.Counter()
    total = 0
    for stack in samples(sys.argv[1]):
        total += 1
        for name, rx in compiled:
            if any(rx.search(frame) for frame in stack):
                counts[name] += 1
                break
        else:
            counts["other"] += 1
    print(f"{total} samples")
    for name, count in counts.most_common():
        print(f"{100 * count / max(total, 1):5.1f}%  {name}")


if __name__ == "__main__":
    main()
