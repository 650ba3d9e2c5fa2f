//! Limits and deadlines (docs/operations.md): rate limits per client address and per city
//! identity, `X-Forwarded-For` believed only from trusted proxies, the header deadline
//! (a slowloris connection is cut), the request deadline, the connection cap, and a flood of
//! invented methods that does not grow `/metrics`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use qrpark::config::{Config, TrustedProxies};
use qrpark::http::limits::Limits;
use qrpark::http::server::ServerLimits;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Answer, TestApp};

/// The test app's state served again through the production accept loop, with `edit`
/// applied to its configuration; returns the base URL.
async fn serve_with(app: &TestApp, edit: impl FnOnce(&mut Config)) -> String {
    let mut config = (*app.state.config).clone();
    edit(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let server_limits = ServerLimits::from_config(&config);
    let state = qrpark::AppState {
        limits: Arc::new(Limits::from_config(&config)),
        config: Arc::new(config),
        ..app.state.clone()
    };
    tokio::spawn(qrpark::http::server::serve(
        listener,
        qrpark::app(state),
        server_limits,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

#[track_caller]
fn assert_rate_limited(answer: &Answer) {
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        answer.text
    );
    assert_eq!(answer.problem_code(), "rate_limited");
    let retry_after: u64 = answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
}

async fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    TestApp::decode_response(request.send().await.expect("send")).await
}

#[tokio::test]
async fn public_routes_are_limited_per_address_and_operators_are_not() {
    let app = TestApp::sqlite().await;
    let op = app.operator("Limited").await;
    // One request a second, bursts of two.
    let base = serve_with(&app, |c| c.rate_limit_per_address = 1).await;
    for _ in 0..2 {
        let answer = get(&base, "/.well-known/jwks.json", &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    assert_rate_limited(&get(&base, "/.well-known/jwks.json", &[]).await);
    // Another public path shares the address's bucket.
    assert_rate_limited(&get(&base, "/v1/scan/whatever", &[]).await);
    // Without a trusted proxy, a forged X-Forwarded-For changes nothing.
    assert_rate_limited(
        &get(
            &base,
            "/.well-known/jwks.json",
            &[("x-forwarded-for", "198.51.100.1")],
        )
        .await,
    );
    // The operator API, health and metrics are not limited by address.
    for _ in 0..5 {
        let auth = format!("Bearer {}", op.key);
        let lots = get(&base, "/v1/operator/lots", &[("authorization", &auth)]).await;
        assert_eq!(lots.status, StatusCode::OK, "{}", lots.text);
        assert_eq!(get(&base, "/healthz", &[]).await.status, StatusCode::OK);
    }
    // A second later, one more request gets through.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = get(&base, "/.well-known/jwks.json", &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let app = TestApp::sqlite().await;
    let base = serve_with(&app, |c| {
        c.rate_limit_per_address = 1;
        c.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let from = |client: &'static str| [("x-forwarded-for", client)];
    for _ in 0..2 {
        let answer = get(&base, "/.well-known/jwks.json", &from("198.51.100.1")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    assert_rate_limited(&get(&base, "/.well-known/jwks.json", &from("198.51.100.1")).await);
    // The client cannot escape by prepending addresses: the right-most untrusted hop counts.
    assert_rate_limited(
        &get(
            &base,
            "/.well-known/jwks.json",
            &from("203.0.113.5, 198.51.100.1"),
        )
        .await,
    );
    // Another client behind the same proxy has its own bucket.
    let other = get(&base, "/.well-known/jwks.json", &from("198.51.100.2")).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.text);
}

#[tokio::test]
async fn a_city_identity_is_limited_wherever_it_comes_from() {
    let app = TestApp::sqlite().await;
    let base = serve_with(&app, |c| {
        c.rate_limit_per_address = 0;
        c.rate_limit_per_identity = 1;
    })
    .await;
    let greedy = format!("Bearer {}", app.driver_token("greedy"));
    for _ in 0..2 {
        let mine = get(&base, "/v1/me/sessions", &[("authorization", &greedy)]).await;
        assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    }
    assert_rate_limited(&get(&base, "/v1/me/sessions", &[("authorization", &greedy)]).await);
    let other = format!("Bearer {}", app.driver_token("other"));
    let theirs = get(&base, "/v1/me/sessions", &[("authorization", &other)]).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text);
    // A bad token is refused as such, not counted against anyone.
    let bad = get(
        &base,
        "/v1/me/sessions",
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
}

/// A client that trickles its headers is cut at the header deadline; others are served.
#[tokio::test]
async fn a_slowloris_connection_is_cut_at_the_header_deadline() {
    let app = TestApp::sqlite().await;
    let base = serve_with(&app, |c| c.header_timeout_secs = 1).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    let began = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: qrpark\r\n")
        .await
        .expect("write the request line");
    // One header line every 200 ms, never the blank line that ends them.
    let cut = loop {
        let mut buf = [0u8; 256];
        tokio::select! {
            read = slow.read(&mut buf) => {
                // The server closes the connection (0 bytes) or resets it.
                assert!(read.map_or(true, |n| n == 0 || buf[..n].starts_with(b"HTTP/1.1 408")));
                break began.elapsed();
            }
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                    break began.elapsed();
                }
            }
        }
        assert!(began.elapsed() < Duration::from_secs(10), "never cut");
    };
    eprintln!("slowloris connection cut after {cut:?} (header deadline 1 s)");
    assert!(cut >= Duration::from_millis(900), "cut too early: {cut:?}");
    assert!(cut < Duration::from_secs(3), "cut too late: {cut:?}");
    // Meanwhile and afterwards, a normal client is served.
    assert_eq!(get(&base, "/healthz", &[]).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_server_caps_open_connections() {
    let app = TestApp::sqlite().await;
    let base = serve_with(&app, |c| c.max_connections = 2).await;
    let addr = base.trim_start_matches("http://").to_owned();
    // Two clients hold both connections (idle, within the header deadline).
    let first = TcpStream::connect(&addr).await.expect("connect");
    let _second = TcpStream::connect(&addr).await.expect("connect");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let waiting = client.get(format!("{base}/healthz")).send().await;
    assert!(
        waiting.as_ref().is_err_and(|e| e.is_timeout()),
        "a third connection must wait: {waiting:?}"
    );
    // One hangs up: the next client is served.
    drop(first);
    let served = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("served once a connection is free");
    assert_eq!(served.status(), StatusCode::OK);
}

/// A request still running at its deadline answers 503 `unavailable`: here, a write that
/// waits on a SQLite lock held elsewhere.
#[tokio::test]
async fn a_request_past_its_deadline_answers_503() {
    let app = TestApp::sqlite().await;
    let op = app.operator("Deadline").await;
    let base = serve_with(&app, |c| c.request_timeout_secs = 1).await;
    let url = app.state.config.database_url.clone();
    let locker = qrpark::store::Db::connect(&url, 1).await.unwrap();
    let qrpark::store::Db::Sqlite(pool) = &locker else {
        unreachable!("a sqlite URL opens SQLite");
    };
    let mut held = pool.acquire().await.unwrap();
    sqlx::query("begin immediate")
        .execute(&mut *held)
        .await
        .unwrap();
    let began = Instant::now();
    let answer = TestApp::decode_response(
        reqwest::Client::new()
            .post(format!("{base}/v1/operator/lots"))
            .bearer_auth(&op.key)
            .json(&serde_json::json!({"name": "Blocked", "timezone": "Asia/Shanghai", "currency": "CNY"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let took = began.elapsed();
    sqlx::query("rollback").execute(&mut *held).await.unwrap();
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    assert_eq!(answer.problem_code(), "unavailable");
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("longer than 1 s")
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// Invented methods are counted as `other`: they cannot add series to `/metrics`.
#[tokio::test]
async fn a_flood_of_invented_methods_does_not_grow_the_metrics() {
    let app = TestApp::sqlite().await;
    let invented: Vec<String> = (0..300).map(|i| format!("FLOOD{i}X")).collect();
    for (i, name) in invented.iter().enumerate() {
        let method = Method::from_bytes(name.as_bytes()).unwrap();
        let path = if i % 2 == 0 {
            "/healthz"
        } else {
            "/no/such/path"
        };
        let answer = app.call(method, path, None, None).await;
        assert!(
            answer.status.is_client_error(),
            "{} {}",
            answer.status,
            answer.text
        );
    }
    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        !metrics.text.contains("FLOOD"),
        "an invented method is a label"
    );
    assert!(
        metrics.text.contains("method=\"other\""),
        "{}",
        metrics.text
    );
    let methods: std::collections::BTreeSet<&str> = metrics
        .text
        .split("method=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let fixed = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
    ];
    assert!(methods.iter().all(|m| fixed.contains(m)), "{methods:?}");
}
