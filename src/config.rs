//! Configuration: command-line flags win over `QRPARK_*` environment variables, which win over
//! an optional `qrpark.toml`, which wins over the defaults below.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod secure_url;
mod trusted_proxies;

pub use secure_url::require_https;
pub use trusted_proxies::TrustedProxies;

/// Every setting qrpark reads, typed and validated.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://PATH` (created if missing) or `postgres://...`.
    pub database_url: String,
    /// Most connections one process opens to the database.
    pub database_max_connections: u32,
    /// A PostgreSQL streaming replica of `database_url` for the reads that may lag (exports,
    /// summaries, metrics, public scans and quotes); unset: every read goes to the primary.
    /// Only with a PostgreSQL primary (docs/operations.md, "Read replica").
    pub database_read_url: Option<String>,
    /// Listen address.
    pub bind: SocketAddr,
    /// Base URL printed into QR codes; `http://{bind}` when unset.
    pub public_url: Option<String>,
    /// Where signing keys live if not in the database; holds the key-encryption key
    /// file unless `key_encryption_key_file` names another.
    pub data_dir: PathBuf,
    /// The file of the key-encryption key that seals private keys and server secrets in
    /// the database (src/secrets/); `{data_dir}/key-encryption-key` when unset.
    pub key_encryption_key_file: Option<PathBuf>,
    /// Path or `https://` URL of the city identity provider's JWKS.
    pub city_jwks: Option<String>,
    /// Required `iss` of city identity tokens.
    pub city_issuer: Option<String>,
    /// Required `aud` of city identity tokens.
    pub city_audience: String,
    /// The city's payment gateway; when set, settlements are delivered to it.
    pub city_payments_url: Option<String>,
    /// How long the payment gateway gets to answer one delivery, in milliseconds; a
    /// delivery claimed by a process that died is taken over after six times this.
    pub city_payments_timeout_ms: u64,
    /// The city identity provider's sign-in page; the phone page sends drivers there
    /// (docs/phone-page.md). Unset: drivers can sign in only under `qrpark demo`.
    pub city_login_url: Option<String>,
    /// Largest request body accepted, in bytes (larger answers 413).
    pub max_body_bytes: usize,
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// Active sessions one driver may hold at once.
    pub max_active_sessions: u32,
    /// Days after a session's stop when its plate is erased.
    pub plate_retention_days: u32,
    /// Sessions in arrears a driver may have and still start (docs/money.md).
    pub max_unpaid_sessions: u32,
    /// Requests per second from one client address on public and driver routes, in bursts
    /// of up to twice that; 0 turns the limit off.
    pub rate_limit_per_address: u32,
    /// Requests per second of one city identity, in bursts of up to twice that; 0 turns
    /// the limit off.
    pub rate_limit_per_identity: u32,
    /// Peers whose `X-Forwarded-For` is believed (addresses or CIDR blocks).
    pub trusted_proxies: TrustedProxies,
    /// Most connections open at once; further clients wait in the kernel's backlog.
    pub max_connections: u32,
    /// Seconds a client has to send a request's headers before its connection is closed.
    pub header_timeout_secs: u64,
    /// Seconds an ordinary request may take (exports stream without a deadline).
    pub request_timeout_secs: u64,
    /// Milliseconds a request waits for a database connection before answering 503.
    pub database_acquire_timeout_ms: u64,
    /// Longest lifetime (`exp` minus `iat`) of a city identity token accepted, in seconds.
    pub city_max_token_lifetime_secs: u64,
    /// How often each `qrpark serve` seals pending audit events into the chain, in
    /// milliseconds: the chain's maximum merge delay is this plus one batch's sealing
    /// (docs/audit.md, "Sealing").
    pub audit_seal_interval_ms: u64,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://qrpark.db".into(),
            database_max_connections: 16,
            database_read_url: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./qrpark-data"),
            key_encryption_key_file: None,
            city_jwks: None,
            city_issuer: None,
            city_audience: "qrpark".into(),
            city_payments_url: None,
            city_payments_timeout_ms: 10_000,
            city_login_url: None,
            max_body_bytes: 256 * 1024,
            log_format: LogFormat::Text,
            max_active_sessions: 3,
            plate_retention_days: 90,
            max_unpaid_sessions: 0,
            rate_limit_per_address: 50,
            rate_limit_per_identity: 10,
            trusted_proxies: TrustedProxies::default(),
            max_connections: 1024,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            database_acquire_timeout_ms: 5000,
            city_max_token_lifetime_secs: 24 * 3600,
            audit_seal_interval_ms: 200,
        }
    }
}

/// A setting that could not be read or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {}", describe(.0))]
    Read(Box<figment::Error>),
    #[error("configuration: setting `{setting}` is invalid: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

/// Names the setting and where its value came from, for each error figment found.
fn describe(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let setting = e.path.join(".").to_lowercase();
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(figment::Source::File(path)) => format!("file {}", path.display()),
                    _ if m.name.contains("environment") => {
                        format!("environment variable QRPARK_{}", setting.to_uppercase())
                    }
                    _ => m.name.to_string(),
                })
                .unwrap_or_else(|| "defaults".to_owned());
            if setting.is_empty() {
                format!("{} (from {source})", e.kind)
            } else {
                format!("setting `{setting}` (from {source}) is invalid: {}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Settings given on the command line; `None` means "not given, fall through".
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// The environment variables qrpark reads, without their `QRPARK_` prefix.
const ENV_KEYS: &[&str] = &[
    "database_url",
    "database_max_connections",
    "database_read_url",
    "bind",
    "public_url",
    "data_dir",
    "key_encryption_key_file",
    "city_jwks",
    "city_issuer",
    "city_audience",
    "city_payments_url",
    "city_payments_timeout_ms",
    "city_login_url",
    "max_body_bytes",
    "log_format",
    "max_active_sessions",
    "plate_retention_days",
    "max_unpaid_sessions",
    "rate_limit_per_address",
    "rate_limit_per_identity",
    "trusted_proxies",
    "max_connections",
    "header_timeout_secs",
    "request_timeout_secs",
    "database_acquire_timeout_ms",
    "city_max_token_lifetime_secs",
    "audit_seal_interval_ms",
];

impl Config {
    /// Loads the configuration: `file` (or `qrpark.toml` if it exists), then the
    /// environment, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Invalid {
                        setting: "config",
                        reason: format!("file {} does not exist", path.display()),
                    });
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file("qrpark.toml")),
        }
        let config: Config = figment
            .merge(Env::prefixed("QRPARK_").only(ENV_KEYS))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Read(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let backend = Backend::of(&self.database_url);
        if backend.is_none() {
            return Err(ConfigError::Invalid {
                setting: "database_url",
                reason: "must start with sqlite:// or postgres:// (or postgresql://)".into(),
            });
        }
        if let Some(url) = &self.database_read_url {
            validate_read_url(backend, url)?;
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                setting: "public_url",
                reason: format!("`{url}` must be an http:// or https:// URL"),
            });
        }
        // Payments and sign-ins cross the network to the city: plain http only on loopback.
        if let Some(url) = &self.city_payments_url {
            require_https("city_payments_url", url)?;
        }
        if let Some(url) = &self.city_login_url {
            require_https("city_login_url", url)?;
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError::Invalid {
                setting: "database_max_connections",
                reason: "must be at least 1".into(),
            });
        }
        if !(1..=1000).contains(&self.max_active_sessions) {
            return Err(ConfigError::Invalid {
                setting: "max_active_sessions",
                reason: "must be 1 to 1000: a driver must be able to park".into(),
            });
        }
        if !(1..=36_500).contains(&self.plate_retention_days) {
            return Err(ConfigError::Invalid {
                setting: "plate_retention_days",
                reason: "must be 1 to 36500 days: wardens check plates of sessions that just \
                         ended, and plates are personal data"
                    .into(),
            });
        }
        if !(100..=60_000).contains(&self.city_payments_timeout_ms) {
            return Err(ConfigError::Invalid {
                setting: "city_payments_timeout_ms",
                reason: "must be 100 to 60000 milliseconds".into(),
            });
        }
        if !(10..=60_000).contains(&self.audit_seal_interval_ms) {
            return Err(ConfigError::Invalid {
                setting: "audit_seal_interval_ms",
                reason: "must be 10 to 60000 milliseconds: the audit chain's delay bound".into(),
            });
        }
        if self.max_unpaid_sessions > 1000 {
            return Err(ConfigError::Invalid {
                setting: "max_unpaid_sessions",
                reason: "must be 0 to 1000".into(),
            });
        }
        self.validate_limits()?;
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                setting: "max_body_bytes",
                reason: "must be at least 1024".into(),
            });
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let at_least_one = |setting: &'static str, value: u64| {
            if value == 0 {
                Err(ConfigError::Invalid {
                    setting,
                    reason: "must be at least 1".into(),
                })
            } else {
                Ok(())
            }
        };
        at_least_one("max_connections", self.max_connections.into())?;
        at_least_one("header_timeout_secs", self.header_timeout_secs)?;
        at_least_one("request_timeout_secs", self.request_timeout_secs)?;
        at_least_one(
            "database_acquire_timeout_ms",
            self.database_acquire_timeout_ms,
        )?;
        at_least_one(
            "city_max_token_lifetime_secs",
            self.city_max_token_lifetime_secs,
        )
    }

    /// The key-encryption key's file: the setting, or `key-encryption-key` in the data dir.
    pub fn key_encryption_key_file(&self) -> PathBuf {
        match &self.key_encryption_key_file {
            Some(path) => path.clone(),
            None => self.data_dir.join("key-encryption-key"),
        }
    }

    /// The base URL printed into QR codes, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.bind),
        }
    }
}

/// A read replica is a PostgreSQL standby of a PostgreSQL primary: SQLite has no replicas,
/// and reads from another kind of server would not be the primary's data.
fn validate_read_url(primary: Option<Backend>, url: &str) -> Result<(), ConfigError> {
    let reason = if primary != Some(Backend::Postgres) {
        "a read replica needs a PostgreSQL primary: database_url is not postgres://, so unset \
         database_read_url (QRPARK_DATABASE_READ_URL)"
            .to_owned()
    } else if Backend::of(url) != Some(Backend::Postgres) {
        format!(
            "`{}` must be the postgres:// URL of a streaming replica of the primary",
            redact_url(url)
        )
    } else {
        return Ok(());
    };
    Err(ConfigError::Invalid {
        setting: "database_read_url",
        reason,
    })
}

/// The two database backends, chosen by the URL's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if any.
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// A URL with any password replaced, safe for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let redacted_tail = redact_query_password(tail);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let shown = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{shown}@{host}{redacted_tail}")
        }
        None => format!("{scheme}://{authority}{redacted_tail}"),
    }
}

fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field(
                "database_read_url",
                &self.database_read_url.as_deref().map(redact_url),
            )
            .field("bind", &self.bind)
            .field("public_url", &self.public_url())
            .field("data_dir", &self.data_dir)
            .field("key_encryption_key_file", &self.key_encryption_key_file())
            .field("city_jwks", &self.city_jwks.as_deref().map(redact_url))
            .field("city_issuer", &self.city_issuer)
            .field("city_audience", &self.city_audience)
            .field(
                "city_payments_url",
                &self.city_payments_url.as_deref().map(redact_url),
            )
            .field(
                "city_login_url",
                &self.city_login_url.as_deref().map(redact_url),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field("log_format", &self.log_format)
            .field("max_active_sessions", &self.max_active_sessions)
            .field("max_unpaid_sessions", &self.max_unpaid_sessions)
            .field("city_payments_timeout_ms", &self.city_payments_timeout_ms)
            .field("plate_retention_days", &self.plate_retention_days)
            .field("rate_limit_per_address", &self.rate_limit_per_address)
            .field("rate_limit_per_identity", &self.rate_limit_per_identity)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_connections", &self.max_connections)
            .field("header_timeout_secs", &self.header_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field(
                "database_acquire_timeout_ms",
                &self.database_acquire_timeout_ms,
            )
            .field(
                "city_max_token_lifetime_secs",
                &self.city_max_token_lifetime_secs,
            )
            .field("audit_seal_interval_ms", &self.audit_seal_interval_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_database_password() {
        let config = Config {
            database_url: "postgres://app:s3cret@db:5432/qrpark?password=other".into(),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("other"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@db:5432/qrpark"),
            "{shown}"
        );
    }

    #[test]
    fn a_read_replica_needs_postgres_on_both_sides() {
        let with = |primary: &str, read: &str| Config {
            database_url: primary.into(),
            database_read_url: Some(read.into()),
            ..Config::default()
        };
        let replica = "postgres://app:s3cret@replica:5433/qrpark";
        with("postgres://app@primary/qrpark", replica)
            .validate()
            .expect("a PostgreSQL primary with a PostgreSQL replica");
        let sqlite = with("sqlite://qrpark.db", replica).validate().unwrap_err();
        assert!(
            sqlite.to_string().contains("needs a PostgreSQL primary"),
            "{sqlite}"
        );
        let other = with("postgres://app@primary/qrpark", "mysql://app:s3cret@h/db")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(other.contains("database_read_url"), "{other}");
        assert!(!other.contains("s3cret"), "{other}");
        let shown = format!("{:?}", with("postgres://primary/qrpark", replica));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn redaction_keeps_urls_without_secrets() {
        assert_eq!(redact_url("sqlite://qrpark.db"), "sqlite://qrpark.db");
        assert_eq!(
            redact_url("postgres://root@127.0.0.1/test"),
            "postgres://root@127.0.0.1/test"
        );
    }

    #[test]
    fn public_url_defaults_to_bind() {
        let config = Config::default();
        assert_eq!(config.public_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn backend_follows_scheme() {
        assert_eq!(Backend::of("sqlite://x.db"), Some(Backend::Sqlite));
        assert_eq!(Backend::of("postgresql://h/db"), Some(Backend::Postgres));
        assert_eq!(Backend::of("mysql://h/db"), None);
    }
}
