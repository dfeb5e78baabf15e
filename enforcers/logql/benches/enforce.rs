//! What one enforcement costs, per kind of query.
//!
//! Run with `cargo bench -p portcullis-enforcer-logql`. The queries are the kinds Grafana sends
//! to Loki: a log query from Explore, the log-volume histogram of the same stream, an error-rate
//! ratio from a dashboard panel, and the stream selector of a label-values request.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_api::TenantSet;
use portcullis_enforcer_logql::{EnforcerConfig, LogqlEnforcer};

const EXPLORE: &str = r#"{app="checkout", env=~"prod|staging"} |= "error" != "healthcheck" | json | level="error" | line_format "{{.ts}} {{.msg}}""#;

const LOG_VOLUME: &str = r#"sum by (level) (count_over_time({app="checkout", env=~"prod|staging"} |= "error" | drop __error__, __error_details__ [1m]))"#;

const ERROR_RATIO: &str = r#"sum by (route) (rate({app="checkout"} | logfmt | status >= 500 [5m])) / sum by (route) (rate({app="checkout"} | logfmt [5m]))"#;

fn enforcer() -> LogqlEnforcer {
    LogqlEnforcer::new(EnforcerConfig::new("namespace")).expect("a valid configuration")
}

fn queries(c: &mut Criterion) {
    let enforcer = enforcer();
    let one = TenantSet::single("acme").expect("a tenant");
    let three = TenantSet::new(["acme", "beta", "gamma.prod"]).expect("tenants");
    let chain_500 = vec![r#"count_over_time({app="a"}[1m])"#; 500].join(" or ");

    let mut group = c.benchmark_group("enforce_query");
    let cases = [
        ("explore", EXPLORE, &one),
        ("log_volume", LOG_VOLUME, &one),
        ("error_ratio", ERROR_RATIO, &one),
        ("error_ratio_3_tenants", ERROR_RATIO, &three),
        ("or_chain_500", chain_500.as_str(), &one),
    ];
    for (name, query, allowed) in cases {
        group.bench_function(name, |b| {
            b.iter(|| enforcer.enforce_query(black_box(query), allowed))
        });
    }
    group.finish();

    c.bench_function("enforce_selector/label_values", |b| {
        b.iter(|| enforcer.enforce_selector(black_box(Some(r#"{app="checkout"}"#)), &one))
    });
}

criterion_group!(benches, queries);
criterion_main!(benches);
