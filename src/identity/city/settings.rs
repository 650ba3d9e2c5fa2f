//! What the verifier is told and what it answers: where the city's keys come from (the
//! `QRPARK_CITY_JWKS` setting and its URL rules), and the identity a verified token proves.

use std::net::IpAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;

use super::jwks::JwksError;

/// A caller proven by the city's identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CityIdentity {
    /// The city's stable identifier for the person (`sub`).
    pub subject: String,
    /// The `roles` claim, empty when absent.
    pub roles: Vec<String>,
    /// When the token stops being valid (`exp`).
    pub expires_at: DateTime<Utc>,
}

impl CityIdentity {
    /// Whether the city made this caller an auditor (`roles` contains `auditor`).
    pub fn is_auditor(&self) -> bool {
        self.roles.iter().any(|role| role == "auditor")
    }
}

/// Where the city's public keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A JWKS document on disk, read once at start.
    File(PathBuf),
    /// An `https://` URL (or `http://` on a loopback host), fetched at start and again,
    /// rate-limited, when a token names a `kid` we do not know.
    Url(String),
    /// Keys given by the program itself (the demo's identity provider, tests).
    Static(JwkSet),
}

impl JwksSource {
    /// Reads the `QRPARK_CITY_JWKS` setting: an `https://` URL, an `http://` URL on
    /// 127.0.0.1, `localhost` or `[::1]` (for tests and local development), or a file path.
    pub fn from_setting(value: &str) -> Result<Self, JwksError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(JwksError::Setting("the JWKS setting is empty".into()));
        }
        let lower = value.to_ascii_lowercase();
        if !lower.contains("://") {
            return Ok(Self::File(PathBuf::from(value)));
        }
        let url = reqwest::Url::parse(value)
            .map_err(|e| JwksError::Setting(format!("{value:?} is not a URL: {e}")))?;
        match url.scheme() {
            "https" if url.host().is_some() => Ok(Self::Url(url.into())),
            "http" if is_loopback(&url) => Ok(Self::Url(url.into())),
            "http" => Err(JwksError::Setting(format!(
                "{value:?}: plain http is accepted only on a loopback host; use https"
            ))),
            _ => Err(JwksError::Setting(format!(
                "{value:?}: expected an https:// URL or a file path"
            ))),
        }
    }

    /// How the source is named in the log.
    pub(super) fn label(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Url(url) => url.clone(),
            Self::Static(_) => "built-in keys".into(),
        }
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_setting() {
        for url in [
            "https://id.city.example/.well-known/jwks.json",
            "http://127.0.0.1:8081/jwks.json",
            "http://localhost/jwks.json",
            "http://[::1]:9000/jwks.json",
        ] {
            assert!(
                matches!(JwksSource::from_setting(url), Ok(JwksSource::Url(_))),
                "{url}"
            );
        }
        for refused in [
            "http://id.city.example/jwks.json",
            "http://10.0.0.1/jwks",
            "ftp://x/y",
            "",
            "  ",
            "https://",
        ] {
            assert!(JwksSource::from_setting(refused).is_err(), "{refused}");
        }
        assert!(matches!(
            JwksSource::from_setting("/etc/qrpark/city-jwks.json"),
            Ok(JwksSource::File(p)) if p == std::path::Path::new("/etc/qrpark/city-jwks.json")
        ));
        assert!(matches!(
            JwksSource::from_setting("jwks.json"),
            Ok(JwksSource::File(_))
        ));
    }
}
