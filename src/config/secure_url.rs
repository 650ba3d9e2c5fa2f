//! URLs that cross the network must be https: plain http is accepted only for a loopback
//! host, where nothing on the wire can read or change what is sent.

use std::net::IpAddr;

use super::{ConfigError, redact_url};

/// Refuses `url` unless it is an `https://` URL, or an `http://` URL whose host is loopback
/// (`localhost`, `127.0.0.0/8`, `[::1]`).
pub fn require_https(setting: &'static str, url: &str) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { setting, reason };
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| invalid(format!("`{}` is not a URL: {e}", redact_url(url))))?;
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if parsed.host_str().is_some_and(is_loopback) => Ok(()),
        "http" => Err(invalid(format!(
            "`{}` must be an https:// URL: plain http:// is accepted only on loopback \
             (localhost, 127.0.0.1, [::1]), since anyone on the path could read or change \
             what is sent",
            redact_url(url)
        ))),
        _ => Err(invalid(format!(
            "`{}` must be an https:// URL",
            redact_url(url)
        ))),
    }
}

/// Whether a URL's host names this machine's loopback interface.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::require_https;

    #[test]
    fn takes_https_anywhere_and_http_only_on_loopback() {
        for good in [
            "https://pay.city.example/v1/settlements",
            "https://10.0.0.5:8443/",
            "http://127.0.0.1:9000/pay",
            "http://127.8.9.10/",
            "http://localhost:8080",
            "http://LOCALHOST/",
            "http://[::1]:8080/",
        ] {
            assert!(require_https("s", good).is_ok(), "{good}");
        }
        for bad in [
            "http://pay.city.example/",
            "http://10.0.0.5/",
            "http://0.0.0.0:8080",
            "http://localhost.evil.example/",
            "http://127.0.0.1.nip.io/",
            "ftp://127.0.0.1/",
            "pay.city.example",
        ] {
            let error = require_https("city_payments_url", bad)
                .expect_err(bad)
                .to_string();
            assert!(error.contains("city_payments_url"), "{error}");
        }
    }

    #[test]
    fn never_repeats_a_password() {
        let error = require_https("city_payments_url", "http://user:hunter2@pay.example/")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("https://"), "{error}");
    }
}
