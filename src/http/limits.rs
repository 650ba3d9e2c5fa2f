//! Rate limits and the request deadline (docs/operations.md, "Limits and deadlines").
//!
//! Public and driver routes are limited per client address, and every city identity per
//! subject, by the generic cell rate algorithm: each key keeps one instant (its theoretical
//! arrival time), a request is refused when that instant is more than a burst ahead of now.
//! Over the limit the answer is 429 `rate_limited` with `Retry-After`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorCode};
use crate::AppState;
use crate::config::{Config, TrustedProxies};

/// Most keys one limiter remembers. Keys whose bucket has refilled are forgotten first; a
/// limiter still full after that starts over (logged), so memory stays bounded whatever
/// number of addresses or identities is thrown at it.
pub const MAX_KEYS: usize = 100_000;

/// A rate limit per key: `rate` requests per second in bursts of up to `2 * rate`.
pub struct RateLimiter<K> {
    /// Time between two requests at the sustained rate.
    interval: Duration,
    /// How far ahead of now a key's theoretical arrival time may run.
    tolerance: Duration,
    arrivals: Mutex<HashMap<K, Instant>>,
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter of `per_second` requests per second, bursts of twice that; `None` for 0.
    pub fn new(per_second: u32) -> Option<Self> {
        let interval = Duration::from_secs(1).checked_div(per_second)?;
        let burst = per_second.saturating_mul(2);
        Some(Self {
            interval,
            tolerance: interval * (burst - 1),
            arrivals: Mutex::new(HashMap::new()),
            max_keys: MAX_KEYS,
        })
    }

    /// Counts one request of `key` at `now`; over the limit, how long until it may retry.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        let arrival = arrivals.get(key).copied().unwrap_or(now).max(now);
        let ahead = arrival - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        if arrivals.len() >= self.max_keys && !arrivals.contains_key(key) {
            // A key whose arrival time has passed has a full bucket: forgetting it changes
            // nothing.
            arrivals.retain(|_, at| *at > now);
            if arrivals.len() >= self.max_keys {
                tracing::warn!(
                    keys = arrivals.len(),
                    "rate limiter full of busy keys; starting over"
                );
                arrivals.clear();
            }
        }
        arrivals.insert(key.clone(), arrival + self.interval);
        Ok(())
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[cfg(test)]
    fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }
}

/// The limits of one process, built from the configuration.
pub struct Limits {
    per_address: Option<RateLimiter<IpAddr>>,
    per_identity: Option<RateLimiter<String>>,
    trusted_proxies: TrustedProxies,
    /// How long an ordinary request may take.
    pub request_timeout: Duration,
}

impl Limits {
    /// The limits `config` asks for.
    pub fn from_config(config: &Config) -> Self {
        Self {
            per_address: RateLimiter::new(config.rate_limit_per_address),
            per_identity: RateLimiter::new(config.rate_limit_per_identity),
            trusted_proxies: config.trusted_proxies.clone(),
            request_timeout: Duration::from_secs(config.request_timeout_secs),
        }
    }

    /// Counts a request of the city identity `subject`; 429 over its limit.
    pub fn check_identity(&self, subject: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_identity else {
            return Ok(());
        };
        limiter
            .check(&subject.to_owned(), Instant::now())
            .map_err(|wait| {
                // Debug, not info: a flood must not turn into a flood of log lines.
                tracing::debug!("a city identity is over its rate limit");
                rate_limited("this city identity sends too many requests", wait)
            })
    }

    /// The client's address: the peer's, or from `X-Forwarded-For` when the peer is a
    /// trusted proxy.
    fn client_address(&self, request: &Request) -> Option<IpAddr> {
        let ConnectInfo(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>()?;
        let hops: Vec<&str> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        Some(
            self.trusted_proxies
                .client_address(peer.ip(), hops.into_iter()),
        )
    }
}

/// The key an address is limited under: an IPv6 client usually holds a whole /64, so the
/// /64 is one key.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Routes limited per client address: everything but the operator API (authenticated by a
/// key, and used by operators' own systems in bulk), the auditors' API, and the health and
/// metrics probes.
fn limited_by_address(path: &str) -> bool {
    !(path.starts_with("/v1/operator/")
        || path.starts_with("/v1/audit/")
        || path == "/healthz"
        || path == "/metrics")
}

/// 429 over the per-address limit.
pub async fn limit_by_address(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limits = &state.limits;
    if let Some(limiter) = &limits.per_address
        && limited_by_address(request.uri().path())
        && let Some(client) = limits.client_address(&request)
        && let Err(wait) = limiter.check(&address_key(client), Instant::now())
    {
        tracing::debug!(%client, "a client address is over its rate limit");
        return rate_limited("this address sends too many requests", wait).into_response();
    }
    next.run(request).await
}

/// Adds to the OpenAPI document the answers the limits give: 429 `rate_limited` (with
/// `Retry-After`) on every operation limited by address or by city identity, and 503
/// `unavailable` on every operation (the database out of reach, or the deadline passed).
pub struct LimitsDoc;

impl utoipa::Modify for LimitsDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder, Type};

        let problem = |description: &str| {
            ResponseBuilder::new().description(description).content(
                super::error::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
        };
        let retry_after = HeaderBuilder::new()
            .schema(Some(
                utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer),
            ))
            .description(Some("Whole seconds to wait before trying again"))
            .build();
        let limited =
            problem("`rate_limited`: over the rate limit of the client address or city identity")
                .header("Retry-After", retry_after)
                .build();
        let unavailable = problem(
            "`unavailable`: the database does not answer, or the request ran past its deadline",
        )
        .build();
        for (path, operation) in super::openapi::operations_mut(openapi) {
            let by_identity = serde_json::to_string(&operation.security)
                .is_ok_and(|security| security.contains("city_identity"));
            let responses = &mut operation.responses.responses;
            if limited_by_address(path) || by_identity {
                responses
                    .entry("429".to_owned())
                    .or_insert_with(|| limited.clone().into());
            }
            responses
                .entry("503".to_owned())
                .or_insert_with(|| unavailable.clone().into());
        }
    }
}

/// Paths whose answers stream for as long as they need: the audit export.
const STREAMING: &[&str] = &["/v1/audit/sessions"];

/// 503 `unavailable` for an ordinary request that runs past its deadline.
pub async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if STREAMING.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let timeout = state.limits.request_timeout;
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?timeout, "a request ran past its deadline");
            ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "the request took longer than {} s; try again shortly",
                    timeout.as_secs()
                ),
            )
            .into_response()
        }
    }
}

/// 429 `rate_limited` with `Retry-After` in whole seconds (at least 1).
fn rate_limited(detail: &str, wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(ErrorCode::RateLimited, detail)
        .with_header(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{RateLimiter, address_key, limited_by_address};

    #[test]
    fn allows_a_burst_of_twice_the_rate_then_the_rate() {
        let limiter = RateLimiter::<u8>::new(10).unwrap();
        let start = Instant::now();
        for i in 0..20 {
            assert!(limiter.check(&1, start).is_ok(), "request {i} of the burst");
        }
        let wait = limiter.check(&1, start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // Another key has its own bucket.
        assert!(limiter.check(&2, start).is_ok());
        // One interval later, one more request (and only one) gets through.
        let later = start + Duration::from_millis(100);
        assert!(limiter.check(&1, later).is_ok());
        assert!(limiter.check(&1, later).is_err());
        // At the sustained rate, it never refuses.
        let mut at = later;
        for _ in 0..100 {
            at += Duration::from_millis(100);
            assert!(limiter.check(&1, at).is_ok());
        }
    }

    #[test]
    fn zero_turns_the_limit_off() {
        assert!(RateLimiter::<u8>::new(0).is_none());
    }

    #[test]
    fn stays_bounded_under_a_spray_of_keys() {
        let limiter = RateLimiter::<u32>::new(1).unwrap().with_max_keys(100);
        let now = Instant::now();
        for key in 0..10_000 {
            assert!(limiter.check(&key, now).is_ok());
            assert!(limiter.len() <= 100);
        }
        // Keys whose bucket refilled are forgotten before anything else.
        let later = now + Duration::from_secs(5);
        assert!(limiter.check(&1_000_000, later).is_ok());
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn limits_an_ipv6_client_by_its_slash_64() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = address_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let v4 = "192.0.2.1".parse().unwrap();
        assert_eq!(address_key(v4), v4);
    }

    #[test]
    fn the_openapi_document_lists_the_answers_of_the_limits() {
        let doc = serde_json::to_value(crate::http::openapi()).unwrap();
        let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
        let limited = responses("/v1/sessions", "post");
        assert_eq!(
            limited["429"]["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        assert!(limited["429"]["headers"]["Retry-After"].is_object());
        // By address (public) and by identity (auditors), but not the operator API.
        assert!(responses("/.well-known/jwks.json", "get")["429"].is_object());
        assert!(responses("/v1/audit/sessions", "get")["429"].is_object());
        let operator = responses("/v1/operator/lots", "get");
        assert!(operator["200"].is_object() && operator["429"].is_null());
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(
                    operation["responses"]["503"].is_object(),
                    "{method} {path} lacks its 503"
                );
                operations += 1;
            }
        }
        assert!(operations > 20, "{operations}");
    }

    #[test]
    fn operator_audit_and_probes_are_not_limited_by_address() {
        for path in [
            "/v1/operator/lots",
            "/v1/audit/sessions",
            "/healthz",
            "/metrics",
        ] {
            assert!(!limited_by_address(path), "{path}");
        }
        for path in [
            "/v1/sessions",
            "/q/abc",
            "/v1/scan",
            "/",
            "/.well-known/jwks.json",
        ] {
            assert!(limited_by_address(path), "{path}");
        }
    }
}
