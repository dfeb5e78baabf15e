//! What one enforcement costs, per kind of query.
//!
//! Run with `cargo bench -p portcullis-enforcer-promql`. The `enforce_query` group measures
//! rewrites with the cache of rewritten queries turned off; `cached/dashboard` measures a
//! dashboard query answered from that cache. `parse_only` shows how much of a rewrite is
//! promql-parser's own parsing, which a rewrite runs twice (once on the query, once on the
//! printed result, where regex matchers are read as equalities so that no regex is compiled).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_api::TenantSet;
use portcullis_enforcer_promql::{EnforcerConfig, PromqlEnforcer};

const DASHBOARD: &str = r#"sum by (pod) (rate(http_requests_total{job="api",code=~"5.."}[5m])) / sum by (pod) (rate(http_requests_total{job="api"}[5m]))"#;

/// The dashboard query with its `=~` matcher turned into `=`: promql-parser compiles a regex for
/// every `=~` matcher on every parse, which is most of a rewrite's cost.
const DASHBOARD_NO_REGEX: &str = r#"sum by (pod) (rate(http_requests_total{job="api",code="500"}[5m])) / sum by (pod) (rate(http_requests_total{job="api"}[5m]))"#;

fn build_enforcer(cache_entries: usize) -> PromqlEnforcer {
    let mut config = EnforcerConfig::new("namespace");
    config.cache_entries = cache_entries;
    PromqlEnforcer::new(config).expect("a valid configuration")
}

fn queries(c: &mut Criterion) {
    let enforcer = build_enforcer(0);
    let one = TenantSet::single("acme").expect("a tenant");
    let three = TenantSet::new(["acme", "beta", "gamma.prod"]).expect("tenants");
    let chain_500 = vec!["up"; 500].join(" or ");

    let mut group = c.benchmark_group("enforce_query");
    let cases = [
        ("simple_selector", "up", &one),
        ("dashboard", DASHBOARD, &one),
        ("dashboard_3_tenants", DASHBOARD, &three),
        ("dashboard_no_regex", DASHBOARD_NO_REGEX, &one),
        ("or_chain_500", chain_500.as_str(), &one),
    ];
    for (name, query, allowed) in cases {
        group.bench_function(name, |b| {
            b.iter(|| enforcer.enforce_query(black_box(query), allowed))
        });
    }
    group.finish();

    let cached = build_enforcer(1000);
    c.bench_function("cached/dashboard", |b| {
        b.iter(|| cached.enforce_query(black_box(DASHBOARD), &one))
    });
    c.bench_function("parse_only/dashboard", |b| {
        b.iter(|| promql_parser::parser::parse(black_box(DASHBOARD)))
    });
    c.bench_function("enforce_selector/match", |b| {
        b.iter(|| enforcer.enforce_selector(black_box(Some(r#"up{job="api"}"#)), &one))
    });
}

fn long_chain(c: &mut Criterion) {
    let enforcer = build_enforcer(0);
    let one = TenantSet::single("acme").expect("a tenant");
    let chain_5000 = vec!["up"; 5000].join(" or ");

    let mut group = c.benchmark_group("enforce_query");
    group.sample_size(10);
    group.bench_function("or_chain_5000", |b| {
        b.iter(|| enforcer.enforce_query(black_box(&chain_5000), &one))
    });
    group.finish();
}

criterion_group!(benches, queries, long_chain);
criterion_main!(benches);
