//! Structured logs (tracing) and Prometheus metrics.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global log subscriber once; `RUST_LOG` refines the default `info` level.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// A handle on the process's metrics registry, rendered by `/metrics`.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

/// Latency buckets in seconds, from a cached scan page to a slow settlement.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Series not updated for this long are dropped from the registry (and from `/metrics`), so
/// label sets that stop occurring do not hold memory for the life of the process.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// How often histograms are drained into their buckets when nobody scrapes `/metrics`.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

impl Metrics {
    /// The process-wide registry. The `metrics` facade has one global recorder per process,
    /// so every app in a process (several in the test suite) shares it.
    pub fn global() -> Self {
        static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
        let handle = HANDLE.get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .expect("latency buckets are not empty")
                .idle_timeout(
                    MetricKindMask::COUNTER | MetricKindMask::HISTOGRAM,
                    Some(IDLE_TIMEOUT),
                )
                .build_recorder();
            let handle = recorder.handle();
            // Samples wait in the recorder until drained: without a scrape they would pile up.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the metrics upkeep thread");
            }
            // Another recorder may already be installed (a host program); then ours only
            // renders what is recorded through it, which is nothing, and we say so.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            handle
        });
        Self {
            handle: handle.clone(),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

/// Counts every request by method, route template and status, and times it.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    // The route template, not the raw path: ids in paths would explode the label space.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The `method` label: the methods qrpark serves by name, every other method as `other`, so
/// that a client sending invented methods cannot grow the label set.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::method_label;

    #[test]
    fn methods_map_to_a_fixed_set() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        for other in [
            "TRACE",
            "CONNECT",
            "PROPFIND",
            "X-SECRET-TOKEN-abc123",
            "get",
        ] {
            let method = Method::from_bytes(other.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{other}");
        }
    }
}
