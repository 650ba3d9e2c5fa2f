//! The claim rules, applied to the raw JSON of a token whose signature verified: who issued
//! it, for whom, about whom, with which roles, and whether it is valid at the given instant.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::{CityIdentity, TokenRejection, shorten};

/// Clock skew tolerated between the city's identity provider and us, applied to `nbf` and
/// `iat` only: a token is refused if its `nbf` is more than 60 s in the future, or if its
/// `iat` is more than 60 s in the future. `exp` gets no leeway (a token is refused from the
/// second of its `exp` on), so that the cache never serves a token past its own expiry.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// Longest `sub` accepted, in characters.
pub const MAX_SUBJECT_CHARS: usize = 255;

/// Longest lifetime (`exp` minus `iat`) of a token accepted unless configured otherwise
/// (`QRPARK_CITY_MAX_TOKEN_LIFETIME_SECS`): a token stolen from a phone is useful for at most
/// this long, however far away its issuer set its `exp`.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Latest instant a NumericDate may name (9999-12-31T23:59:59Z).
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// The identity the claims prove at `now`, if they name the city's `issuer`, include our
/// `audience`, and live no longer than `max_lifetime` (from `iat`, or from `now` without one).
pub(super) fn check(
    claims: &Map<String, Value>,
    issuer: &str,
    audience: &str,
    now: DateTime<Utc>,
    max_lifetime: Duration,
) -> Result<CityIdentity, TokenRejection> {
    let exp = numeric_date(claims, "exp")?.ok_or(TokenRejection::MissingClaim("exp"))?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;

    match claims.get("iss") {
        None | Some(Value::Null) => return Err(TokenRejection::MissingClaim("iss")),
        Some(Value::String(iss)) if iss == issuer => {}
        Some(Value::String(iss)) => return Err(TokenRejection::WrongIssuer(shorten(iss))),
        Some(_) => return Err(TokenRejection::WrongType("iss")),
    }

    let audience_ok = match claims.get("aud") {
        None | Some(Value::Null) => return Err(TokenRejection::MissingClaim("aud")),
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => {
            let mut found = false;
            for aud in auds {
                match aud {
                    Value::String(aud) => found |= aud == audience,
                    _ => return Err(TokenRejection::WrongType("aud")),
                }
            }
            found
        }
        Some(_) => return Err(TokenRejection::WrongType("aud")),
    };
    if !audience_ok {
        return Err(TokenRejection::WrongAudience);
    }

    let subject = match claims.get("sub") {
        None | Some(Value::Null) => return Err(TokenRejection::MissingClaim("sub")),
        Some(Value::String(sub)) => sub,
        Some(_) => return Err(TokenRejection::WrongType("sub")),
    };
    if subject.is_empty() {
        return Err(TokenRejection::BadSubject("is empty"));
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(TokenRejection::BadSubject("is longer than 255 characters"));
    }
    // The subject lands in logs, exports and receipts: control characters have no
    // business in an identifier.
    if subject.chars().any(char::is_control) {
        return Err(TokenRejection::BadSubject("contains control characters"));
    }

    let roles = match claims.get("roles") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(roles)) => roles
            .iter()
            .map(|role| role.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(TokenRejection::BadRoles)?,
        Some(_) => return Err(TokenRejection::BadRoles),
    };

    let leeway = TimeDelta::from_std(LEEWAY).expect("the leeway fits a TimeDelta");
    if now >= exp {
        return Err(TokenRejection::Expired(exp));
    }
    if let Some(nbf) = nbf
        && nbf > now + leeway
    {
        return Err(TokenRejection::NotYetValid(nbf));
    }
    if let Some(iat) = iat
        && iat > now + leeway
    {
        return Err(TokenRejection::IssuedInFuture(iat));
    }
    let lifetime = exp - iat.unwrap_or(now);
    if lifetime > TimeDelta::from_std(max_lifetime).unwrap_or(TimeDelta::MAX) {
        return Err(TokenRejection::LivesTooLong {
            seconds: lifetime.num_seconds(),
        });
    }

    Ok(CityIdentity {
        subject: subject.clone(),
        roles,
        expires_at: exp,
    })
}

/// A NumericDate claim (RFC 7519 2): absent, or a JSON number of seconds since 1970.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<DateTime<Utc>>, TokenRejection> {
    let seconds = match claims.get(name) {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().ok_or(TokenRejection::NotANumber(name))?,
        Some(_) => return Err(TokenRejection::NotANumber(name)),
    };
    if !(0.0..=MAX_NUMERIC_DATE).contains(&seconds) {
        return Err(TokenRejection::DateOutOfRange(name));
    }
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9) as u32;
    DateTime::from_timestamp(whole as i64, nanos.min(999_999_999))
        .map(Some)
        .ok_or(TokenRejection::DateOutOfRange(name))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn reads_roles_and_audience_lists() {
        let v = verifier().await;
        let c = with(claims(), "roles", json!(["auditor", "driver"]));
        let c = with(c, "aud", json!(["city-portal", AUDIENCE]));
        let identity = v.verify(&TestKey::es().sign(&c)).await.unwrap();
        assert_eq!(identity.roles, ["auditor", "driver"]);
        assert!(identity.is_auditor());
        // Times as fractional NumericDates, and within the leeway, are fine.
        let c = with(claims(), "nbf", json!(now() as f64 + 30.5));
        let c = with(c, "iat", json!(now() + 30));
        v.verify(&TestKey::es().sign(&c)).await.unwrap();
    }

    #[tokio::test]
    async fn refuses_wrong_issuer_and_audience() {
        let v = verifier().await;
        let es = TestKey::es();
        let cases = [
            (
                with(claims(), "iss", json!("https://evil.example")),
                TokenRejection::WrongIssuer("https://evil.example".into()),
            ),
            (
                without(claims(), "iss"),
                TokenRejection::MissingClaim("iss"),
            ),
            (
                with(claims(), "iss", json!([ISSUER])),
                TokenRejection::WrongType("iss"),
            ),
            (
                with(claims(), "aud", json!("someone-else")),
                TokenRejection::WrongAudience,
            ),
            (
                with(claims(), "aud", json!(["a", "b"])),
                TokenRejection::WrongAudience,
            ),
            (
                with(claims(), "aud", json!([AUDIENCE, 7])),
                TokenRejection::WrongType("aud"),
            ),
            (
                without(claims(), "aud"),
                TokenRejection::MissingClaim("aud"),
            ),
        ];
        for (c, expected) in cases {
            assert_eq!(rejected(v.verify(&es.sign(&c)).await), expected, "{c}");
        }
    }

    #[tokio::test]
    async fn refuses_bad_times() {
        let v = verifier().await;
        let es = TestKey::es();
        let cases = [
            (with(claims(), "exp", json!(now() - 1)), "Expired"),
            (with(claims(), "exp", json!(now())), "Expired"),
            (with(claims(), "nbf", json!(now() + 120)), "NotYetValid"),
            (with(claims(), "iat", json!(now() + 120)), "IssuedInFuture"),
            (
                with(claims(), "exp", json!((now() + 600).to_string())),
                "NotANumber(\"exp\")",
            ),
            (
                with(claims(), "nbf", json!(now().to_string())),
                "NotANumber(\"nbf\")",
            ),
            (
                with(claims(), "iat", json!(now().to_string())),
                "NotANumber(\"iat\")",
            ),
            (with(claims(), "exp", Value::Null), "NotANumber(\"exp\")"),
            (
                with(claims(), "exp", json!(1e300)),
                "DateOutOfRange(\"exp\")",
            ),
            (with(claims(), "nbf", json!(-5)), "DateOutOfRange(\"nbf\")"),
            (without(claims(), "exp"), "MissingClaim(\"exp\")"),
        ];
        for (c, expected) in cases {
            let got = format!("{:?}", rejected(v.verify(&es.sign(&c)).await));
            assert!(got.starts_with(expected), "{c}: {got}");
        }
    }

    #[tokio::test]
    async fn refuses_tokens_that_live_longer_than_the_maximum() {
        let day = 24 * 3600;
        let v = verifier().await;
        let es = TestKey::es();
        // Exactly the default maximum is fine; a second more is not.
        let c = with(claims(), "exp", json!(now() + day));
        v.verify(&es.sign(&c)).await.unwrap();
        let c = with(claims(), "exp", json!(now() + day + 1));
        assert_eq!(
            rejected(v.verify(&es.sign(&c)).await),
            TokenRejection::LivesTooLong { seconds: day + 1 }
        );
        // Issued an hour ago for 25 hours: 24 remain, but it lives 25.
        let c = with(claims(), "iat", json!(now() - 3600));
        let c = with(c, "exp", json!(now() + day));
        assert!(matches!(
            rejected(v.verify(&es.sign(&c)).await),
            TokenRejection::LivesTooLong { .. }
        ));
        // Without `iat`, what remains of it counts.
        let c = with(without(claims(), "iat"), "exp", json!(now() + day + 60));
        assert!(matches!(
            rejected(v.verify(&es.sign(&c)).await),
            TokenRejection::LivesTooLong { .. }
        ));
        // The maximum is a setting.
        let short = verifier()
            .await
            .with_max_token_lifetime(Duration::from_secs(300));
        assert!(matches!(
            rejected(short.verify(&es.sign(&claims())).await),
            TokenRejection::LivesTooLong { seconds: 600 }
        ));
    }

    #[tokio::test]
    async fn refuses_bad_subjects_and_roles() {
        let v = verifier().await;
        let es = TestKey::es();
        let cases = [
            (
                without(claims(), "sub"),
                TokenRejection::MissingClaim("sub"),
            ),
            (
                with(claims(), "sub", json!("")),
                TokenRejection::BadSubject("is empty"),
            ),
            (
                with(claims(), "sub", json!("x".repeat(256))),
                TokenRejection::BadSubject("is longer than 255 characters"),
            ),
            (
                with(claims(), "sub", json!("a\nb")),
                TokenRejection::BadSubject("contains control characters"),
            ),
            (
                with(claims(), "sub", json!(42)),
                TokenRejection::WrongType("sub"),
            ),
            (
                with(claims(), "roles", json!("auditor")),
                TokenRejection::BadRoles,
            ),
            (
                with(claims(), "roles", json!(["auditor", 1])),
                TokenRejection::BadRoles,
            ),
        ];
        for (c, expected) in cases {
            assert_eq!(rejected(v.verify(&es.sign(&c)).await), expected, "{c}");
        }
        let longest = with(claims(), "sub", json!("é".repeat(255)));
        v.verify(&es.sign(&longest)).await.unwrap();
    }
}
