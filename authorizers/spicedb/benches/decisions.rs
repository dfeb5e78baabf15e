//! Decisions per second against a real SpiceDB (see `testing::SpiceDb`), with the answer in the
//! decision cache (hits) and with the cache off, so that every decision asks SpiceDB (misses).
//!
//! Run: `cargo bench -p portcullis-authorizer-spicedb --bench decisions`. Criterion's `thrpt`
//! line is decisions/s. The harness runs SpiceDB with a 20ms revision quantization window, which
//! leaves SpiceDB's own caches less to reuse than its default 5s would.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_api::{
    Authorizer, AuthzRequest, Identity, IdentitySource, Subject, TenantRequest, TenantSet, Verdict,
};
use portcullis_authorizer_spicedb::testing::SpiceDb;

/// Decisions in flight at once in the `concurrent` cases.
const CONCURRENCY: usize = 32;

async fn decide(authorizer: &dyn Authorizer, tenants: &TenantRequest) {
    let identity = Identity::new(Subject::new("alice-token"), IdentitySource::Bearer);
    let request = AuthzRequest::new(&identity, tenants, "read", "/api/v1/query");
    let decision = authorizer
        .authorize(&request)
        .await
        .expect("SpiceDB answers");
    assert!(matches!(decision.verdict, Verdict::Allow(_)));
}

async fn decide_concurrently(authorizer: &dyn Authorizer, tenants: &TenantRequest) {
    let all = (0..CONCURRENCY).map(|_| decide(authorizer, tenants));
    futures_util::future::join_all(all).await;
}

fn decisions(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let spicedb = runtime.block_on(SpiceDb::start_with_example());
    let cached = spicedb.authorizer(|config| config.lookup = true);
    let uncached = spicedb.authorizer(|config| {
        config.lookup = true;
        config.cache.max_entries = 0;
    });
    let one = TenantRequest::Named(TenantSet::single("acme").expect("a tenant"));
    let two = TenantRequest::Named(TenantSet::new(["acme", "globex"]).expect("tenants"));
    let unspecified = TenantRequest::Unspecified;

    let mut group = c.benchmark_group("decisions");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.throughput(Throughput::Elements(1));
    let cases: [(&str, &dyn Authorizer, &TenantRequest); 6] = [
        ("hit/check", &cached, &one),
        ("hit/bulk2", &cached, &two),
        ("hit/lookup", &cached, &unspecified),
        ("miss/check", &uncached, &one),
        ("miss/bulk2", &uncached, &two),
        ("miss/lookup", &uncached, &unspecified),
    ];
    for (name, authorizer, tenants) in cases {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| decide(authorizer, tenants));
        });
    }

    group.throughput(Throughput::Elements(CONCURRENCY as u64));
    group.bench_function("hit/check/concurrent", |b| {
        b.to_async(&runtime)
            .iter(|| decide_concurrently(&cached, &one));
    });
    group.bench_function("miss/check/concurrent", |b| {
        b.to_async(&runtime)
            .iter(|| decide_concurrently(&uncached, &one));
    });
    group.finish();

    drop((cached, uncached));
    drop(spicedb);
}

criterion_group!(benches, decisions);
criterion_main!(benches);
