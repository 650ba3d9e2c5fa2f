//! A double of the city's payment gateway: a real HTTP server on 127.0.0.1:0 serving
//! payments (`POST {url}`) and refunds (`POST {url}/refunds`), answering from a script per
//! kind (then accepting), checking every request's `Qrpark-Signature` against qrpark's
//! JWKS, and charging (or giving back) once per idempotency key, as a real gateway must.
//! Whatever a well-behaved qrpark never does is a violation, and a violation fails the test
//! when the double is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::Value;

/// What the double answers to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 200: charged (or given back), once per idempotency key.
    Accept,
    /// A definite refusal (402, 422...): nothing charged.
    Refuse(u16),
    /// A failure worth retrying (503, 429...): nothing charged.
    Fail(u16),
    /// Charges, then answers only after this long: later than the client waits, the
    /// gateway acted but qrpark cannot know it.
    TimeOut(Duration),
    /// Charges and answers 200 after this long (in time).
    Slow(Duration),
}

/// Payments or refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Payment,
    Refund,
}

/// One request as the double saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub kind: Kind,
    pub key: String,
    pub body: Value,
    pub reply: Reply,
}

#[derive(Default)]
struct Inner {
    jwks: Option<Value>,
    scripts: HashMap<Kind, VecDeque<Reply>>,
    seen: Vec<Seen>,
    /// Idempotency key -> the request charged (or refunded) under it.
    done: HashMap<String, Value>,
    violations: Vec<String>,
}

/// The double; clones share it.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Mutex<Inner>>,
    /// The payments URL (refunds are at `{url}/refunds`).
    pub url: String,
}

impl Gateway {
    /// Listens on 127.0.0.1:0 (bound before serving), accepting everything until scripted.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let router = axum::Router::new()
            .route("/pay", axum::routing::post(payment))
            .route("/pay/refunds", axum::routing::post(refund))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gateway double");
        let url = format!(
            "http://{}/pay",
            listener.local_addr().expect("gateway address")
        );
        tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("serve the gateway double")
        });
        Self { inner, url }
    }

    /// Trusts these signing keys (qrpark's `/.well-known/jwks.json`); a request before this
    /// is a violation.
    pub fn trust(&self, jwks: Value) {
        assert!(
            jwks["keys"].as_array().is_some_and(|k| !k.is_empty()),
            "a JWKS with keys: {jwks}"
        );
        self.inner.lock().unwrap().jwks = Some(jwks);
    }

    /// Answers the next requests of `kind` so, in order, then accepts again.
    pub fn script(&self, kind: Kind, replies: impl IntoIterator<Item = Reply>) {
        self.inner
            .lock()
            .unwrap()
            .scripts
            .entry(kind)
            .or_default()
            .extend(replies);
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// The idempotency keys of the requests of `kind` about this reference, in order.
    pub fn keys_for(&self, kind: Kind, reference: &str) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.kind == kind && s.body["reference"] == reference)
            .map(|s| s.key)
            .collect()
    }

    /// How many distinct keys were charged (payments) or given back (refunds).
    pub fn done(&self, kind: Kind) -> usize {
        let inner = self.inner.lock().unwrap();
        inner
            .done
            .values()
            .filter(|body| kind_of(body) == kind)
            .count()
    }

    /// Whether a payment or refund was made under this idempotency key.
    pub fn did(&self, key: &str) -> bool {
        self.inner.lock().unwrap().done.contains_key(key)
    }

    /// The sum, in minor units, of what was charged (payments) or given back (refunds).
    pub fn total(&self, kind: Kind) -> i64 {
        let inner = self.inner.lock().unwrap();
        inner
            .done
            .values()
            .filter(|body| kind_of(body) == kind)
            .map(|body| minor(&body["amount"]))
            .sum()
    }

    /// Fails the test if qrpark did anything a gateway must not accept.
    #[track_caller]
    pub fn assert_clean(&self) {
        let violations = self.inner.lock().unwrap().violations.clone();
        assert!(violations.is_empty(), "gateway violations: {violations:#?}");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // The last clone (the server holds `inner` too, so count the handles: the test's).
        if Arc::strong_count(&self.inner) <= 2 && !std::thread::panicking() {
            self.assert_clean();
        }
    }
}

/// Refund bodies carry `payment_reference`; payments do not.
fn kind_of(body: &Value) -> Kind {
    if body.get("payment_reference").is_some() {
        Kind::Refund
    } else {
        Kind::Payment
    }
}

/// Minor units of a two-decimal amount such as "2.50".
fn minor(amount: &Value) -> i64 {
    let text = amount.as_str().unwrap_or_default();
    let (units, cents) = text.split_once('.').unwrap_or((text, "00"));
    units.parse::<i64>().unwrap_or(0) * 100 + cents.parse::<i64>().unwrap_or(0)
}

async fn payment(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    answer(inner, Kind::Payment, headers, body).await
}

async fn refund(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    answer(inner, Kind::Refund, headers, body).await
}

async fn answer(
    inner: Arc<Mutex<Inner>>,
    kind: Kind,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let reply = {
        let mut inner = inner.lock().unwrap();
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut problems = Vec::new();
        if key.is_empty() {
            problems.push("no Idempotency-Key".to_owned());
        }
        if let Err(e) = verify(inner.jwks.as_ref(), &headers, &body) {
            problems.push(format!("signature: {e}"));
        }
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if kind_of(&parsed) != kind {
            problems.push(format!(
                "a {:?} body at the {kind:?} path",
                kind_of(&parsed)
            ));
        }
        let reply = inner
            .scripts
            .get_mut(&kind)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Reply::Accept);
        let charges = matches!(reply, Reply::Accept | Reply::TimeOut(_) | Reply::Slow(_));
        if charges && problems.is_empty() {
            match inner.done.get(&key) {
                // A replayed key: the first outcome again, nothing charged twice.
                Some(first) if *first != parsed => {
                    problems.push(format!("key {key} reused for another request"))
                }
                Some(_) => {}
                None => {
                    check_once(&inner.done, kind, &parsed, &mut problems);
                    inner.done.insert(key.clone(), parsed.clone());
                }
            }
        }
        for p in problems {
            inner.violations.push(format!("{kind:?} {key}: {p}"));
        }
        inner.seen.push(Seen {
            kind,
            key,
            body: parsed,
            reply,
        });
        reply
    };
    match reply {
        Reply::Accept => StatusCode::OK,
        Reply::Refuse(code) | Reply::Fail(code) => {
            StatusCode::from_u16(code).expect("a status code")
        }
        Reply::TimeOut(after) | Reply::Slow(after) => {
            tokio::time::sleep(after).await;
            StatusCode::OK
        }
    }
}

/// What a gateway refuses to do even under a new key: charge a payment (reference) twice,
/// or give back more than was charged for it.
fn check_once(
    done: &HashMap<String, Value>,
    kind: Kind,
    request: &Value,
    problems: &mut Vec<String>,
) {
    match kind {
        Kind::Payment => {
            if done
                .values()
                .any(|b| kind_of(b) == Kind::Payment && b["reference"] == request["reference"])
            {
                problems.push(format!("{} charged twice", request["reference"]));
            }
        }
        Kind::Refund => {
            let paid = &request["payment_reference"];
            let charged: i64 = done
                .values()
                .filter(|b| kind_of(b) == Kind::Payment && &b["reference"] == paid)
                .map(|b| minor(&b["amount"]))
                .sum();
            let refunded: i64 = done
                .values()
                .filter(|b| kind_of(b) == Kind::Refund && &b["payment_reference"] == paid)
                .map(|b| minor(&b["amount"]))
                .sum();
            if refunded + minor(&request["amount"]) > charged {
                problems.push(format!(
                    "refund of {paid} beyond what was charged ({charged}, {refunded} given back)"
                ));
            }
        }
    }
}

/// Checks `Qrpark-Signature: kid="..", alg="EdDSA", sig=".."` over the body against the
/// trusted JWKS.
fn verify(jwks: Option<&Value>, headers: &HeaderMap, body: &str) -> Result<(), String> {
    let jwks = jwks.ok_or("no JWKS trusted yet")?;
    let header = headers
        .get("qrpark-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Qrpark-Signature")?;
    let param = |name: &str| {
        header
            .split(&format!("{name}=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or(format!("no {name} in {header}"))
    };
    if param("alg")? != "EdDSA" {
        return Err(format!("alg in {header}"));
    }
    let kid = param("kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .ok_or(format!("unknown kid {kid}"))?;
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().unwrap_or_default())
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "x is not 32 bytes")?;
    let sig: [u8; 64] = URL_SAFE_NO_PAD
        .decode(param("sig")?)
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "sig is not 64 bytes")?;
    VerifyingKey::from_bytes(&x)
        .map_err(|e| e.to_string())?
        .verify(body.as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|e| format!("does not verify: {e}"))
}
