//! Quotes per second on beijing-on-street.json for a 2-hour, a 1-day and a 30-day session.
//! Run with `cargo bench --bench pricing`; figures go to docs/BENCHMARKS.md.

use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qrpark::domain::tariff::{Tariff, price};

const BEIJING: &str = include_str!("../fixtures/tariffs/beijing-on-street.json");

fn quotes(c: &mut Criterion) {
    let tariff = Tariff::from_json_str(BEIJING).expect("fixture validates");
    let tz = chrono_tz::Asia::Shanghai;
    // Tue 2026-09-29 10:00 +08:00: the 2-hour session stays in the day rule and crosses the
    // first-hour step change; the longer ones cross day/night boundaries every day.
    let start: DateTime<Utc> = "2026-09-29T02:00:00Z".parse().expect("instant");
    let mut group = c.benchmark_group("pricing");
    group.throughput(Throughput::Elements(1));
    for (name, length) in [
        ("quote_2h", Duration::hours(2)),
        ("quote_1d", Duration::days(1)),
        ("quote_30d", Duration::days(30)),
    ] {
        let end = start + length;
        group.bench_function(name, |b| {
            b.iter(|| price(black_box(&tariff), tz, black_box(start), black_box(end)))
        });
    }
    group.finish();
}

criterion_group!(benches, quotes);
criterion_main!(benches);
