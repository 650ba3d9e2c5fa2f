//! QR rendering throughput: `cargo bench --bench render`.
//!
//! Building a matrix (mask selection) dominates; drawing from a cached matrix is cheap,
//! and a sheet of 1,000 stickers is measured from cached matrices and from scratch.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qrpark::render::{QrMatrix, SheetEntry, qr_sheet_pdf};

/// A 203-character signed space URL, like those printed on stickers.
fn space_url(space: u32) -> String {
    let signature: String = format!("{space:08}")
        .chars()
        .cycle()
        .zip(
            "Zk9x3Qm7rT2vLp8sWcN4yHbJ6uEaD1oKgR5iFzXnM0tVqPwYlBhC3jGeUdS"
                .chars()
                .cycle(),
        )
        .map(|(d, c)| if d == '0' { c } else { d })
        .take(92)
        .collect();
    format!(
        "https://park.example.cn/q/eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzIjoiQVpyU2I4eFFkM0s5bTJiV2MxYTREZyIsInYiOjF9.{signature}"
    )
}

fn codes(c: &mut Criterion) {
    let url = space_url(1);
    assert_eq!(url.len(), 203);
    let matrix = QrMatrix::build(&url).expect("URL fits");

    let mut group = c.benchmark_group("qr");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build_203_chars", |b| {
        b.iter(|| QrMatrix::build(black_box(&url)))
    });
    group.bench_function("png_8px_from_matrix", |b| {
        b.iter(|| black_box(&matrix).png(8))
    });
    group.bench_function("svg_from_matrix", |b| b.iter(|| black_box(&matrix).svg()));
    group.finish();
}

fn sheet(c: &mut Criterion) {
    let urls: Vec<String> = (0..1000).map(space_url).collect();
    let space_codes: Vec<String> = (0..1000).map(|i| format!("A-{i:04}")).collect();
    let matrices: Vec<QrMatrix> = urls
        .iter()
        .map(|u| QrMatrix::build(u).expect("URL fits"))
        .collect();

    let mut group = c.benchmark_group("sheet_1000");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("from_cached_matrices", |b| {
        b.iter(|| {
            let entries: Vec<SheetEntry<'_>> = (0..1000)
                .map(|i| SheetEntry {
                    lot_name: "Harbour Street Garage",
                    space_code: &space_codes[i],
                    url: &urls[i],
                    matrix: &matrices[i],
                })
                .collect();
            qr_sheet_pdf("Harbour Street", &entries).expect("sheet renders")
        })
    });
    group.bench_function("build_many_and_sheet", |b| {
        b.iter(|| {
            let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
            let built: Vec<QrMatrix> = QrMatrix::build_many(&refs)
                .into_iter()
                .map(|m| m.expect("URL fits"))
                .collect();
            let entries: Vec<SheetEntry<'_>> = (0..1000)
                .map(|i| SheetEntry {
                    lot_name: "Harbour Street Garage",
                    space_code: &space_codes[i],
                    url: &urls[i],
                    matrix: &built[i],
                })
                .collect();
            qr_sheet_pdf("Harbour Street", &entries).expect("sheet renders")
        })
    });
    group.finish();
}

criterion_group!(benches, codes, sheet);
criterion_main!(benches);
