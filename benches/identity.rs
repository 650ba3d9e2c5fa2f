//! The per-request cost of verifying a city identity token (EdDSA, the demo provider's
//! algorithm): the full check on a cache miss, and the cached path drivers hit on every
//! request after their first.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use qrpark::clock::SystemClock;
use qrpark::identity::city::{CityVerifier, JwksSource};
use qrpark::identity::demo_idp::DemoIdp;

fn verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let idp = DemoIdp::generate(Arc::new(SystemClock));
    let new_verifier = |capacity: usize| {
        runtime
            .block_on(CityVerifier::new(
                JwksSource::Static(idp.jwks()),
                DemoIdp::ISSUER.to_owned(),
                "qrpark".to_owned(),
                Arc::new(SystemClock),
            ))
            .expect("verifier")
            .with_cache_capacity(capacity)
    };
    let token = idp.issue("driver-1", &[], "qrpark", Duration::from_secs(3600));

    // A cache of one entry and tokens taken in turn: every verification misses.
    let uncached = new_verifier(1);
    let tokens: Vec<String> = (0..64)
        .map(|i| {
            idp.issue(
                &format!("driver-{i}"),
                &[],
                "qrpark",
                Duration::from_secs(3600),
            )
        })
        .collect();
    let mut next = 0;
    c.bench_function("city_token/verify_uncached", |b| {
        b.iter(|| {
            next = (next + 1) % tokens.len();
            runtime
                .block_on(uncached.verify(&tokens[next]))
                .expect("valid")
        })
    });
    let cached = new_verifier(100_000);
    runtime.block_on(cached.verify(&token)).expect("valid");
    c.bench_function("city_token/verify_cached", |b| {
        b.iter(|| runtime.block_on(cached.verify(&token)).expect("valid"))
    });
    assert!(uncached.signature_checks() > 1);
    assert_eq!(
        cached.signature_checks(),
        1,
        "the cached path checks no signature"
    );
}

criterion_group!(benches, verification);
criterion_main!(benches);
