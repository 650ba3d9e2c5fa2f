//! `qrpark serve`: the production server.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, redact_url};
use crate::http::server::ServerLimits;
use crate::identity::city::{CityVerifier, JwksSource};
use crate::qr::keyring::KeyRing;
use crate::store::Db;
use crate::store::reads::Reads;
use crate::telemetry::Metrics;
use crate::{AppState, app};

/// Refuses to start without a city identity provider, then serves until a signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    require_city_identity(&config)?;
    require_https_public_url(&config)?;
    let verifier = city_verifier(&config).await?;
    let db = open_database(&config).await?;
    super::demo::refuse_published_key(&db).await?;
    let state = state(config, db).await?.with_city(verifier, None);
    serve(state, |_| {}).await
}

/// The verifier of city identity tokens, from the configured JWKS and issuer.
async fn city_verifier(config: &Config) -> anyhow::Result<CityVerifier> {
    let (Some(jwks), Some(issuer)) = (&config.city_jwks, &config.city_issuer) else {
        anyhow::bail!("configuration: `city_jwks` and `city_issuer` are required");
    };
    let source = JwksSource::from_setting(jwks)
        .context("configuration: setting `city_jwks` (QRPARK_CITY_JWKS)")?;
    // The clock of the state `serve` builds (see `state`): the system's.
    let clock = Arc::new(SystemClock);
    let verifier = CityVerifier::new(source, issuer.clone(), config.city_audience.clone(), clock)
        .await
        .context("configuration: setting `city_jwks` (QRPARK_CITY_JWKS): cannot load the JWKS")?;
    Ok(
        verifier.with_max_token_lifetime(std::time::Duration::from_secs(
            config.city_max_token_lifetime_secs,
        )),
    )
}

/// `serve` must know whom to trust for driver identities before it takes traffic.
fn require_city_identity(config: &Config) -> anyhow::Result<()> {
    config.city_jwks.as_deref().context(
        "configuration: setting `city_jwks` (QRPARK_CITY_JWKS) is required by `qrpark serve`: \
         the path or https:// URL of the city identity provider's JWKS",
    )?;
    config.city_issuer.as_deref().context(
        "configuration: setting `city_issuer` (QRPARK_CITY_ISSUER) is required by `qrpark serve`: \
         the `iss` of city identity tokens",
    )?;
    Ok(())
}

/// QR codes printed for the street must lead drivers over https: the public URL (by default
/// `http://{bind}`) may be plain http only on loopback.
fn require_https_public_url(config: &Config) -> anyhow::Result<()> {
    crate::config::require_https("public_url", &config.public_url()).context(
        "`qrpark serve` prints the public URL (QRPARK_PUBLIC_URL, --public-url) into QR codes: \
         set it to the https:// address drivers reach this server at",
    )?;
    Ok(())
}

/// Connects to the configured database and applies pending migrations.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let shown = redact_url(&config.database_url);
    let acquire_timeout = std::time::Duration::from_millis(config.database_acquire_timeout_ms);
    let db = Db::connect_with(
        &config.database_url,
        config.database_max_connections,
        acquire_timeout,
    )
    .await
    .with_context(|| format!("cannot open database {shown}"))?;
    db.migrate()
        .await
        .with_context(|| format!("cannot migrate database {shown}"))?;
    Ok(db)
}

/// The state every request shares: opens the key-encryption key (sealing what an earlier
/// version left in plaintext), loads (or on first start, creates) the signing keys and the
/// server secrets, and gives any space without a code its code.
pub async fn state(config: Config, db: Db) -> anyhow::Result<AppState> {
    let now = SystemClock.now();
    let kek = crate::secrets::prepare(&config, &db)
        .await
        .context("cannot open the key-encryption key")?;
    let keys = KeyRing::load(&db, kek.clone(), now)
        .await
        .context("cannot load the signing keys")?;
    let filled = crate::qr::codes::backfill(&db, &keys, now).await?;
    if filled > 0 {
        tracing::info!(spaces = filled, "gave spaces without a QR code their code");
    }
    let plate_key = crate::secrets::server_secret(&db, &kek, crate::secrets::PLATE_KEY)
        .await
        .context("cannot load the plate key")?;
    let pseudonym_key = crate::secrets::server_secret(&db, &kek, crate::secrets::PSEUDONYM_KEY)
        .await
        .context("cannot load the pseudonym key")?;
    let reads = match &config.database_read_url {
        Some(url) => Reads::with_replica(db.clone(), url, config.database_max_connections)
            .map_err(|reason| {
                anyhow::anyhow!(
                    "configuration: setting `database_read_url` (QRPARK_DATABASE_READ_URL) is \
                     invalid: {reason}"
                )
            })?,
        None => Reads::primary(db.clone()),
    };
    Ok(AppState {
        reads,
        plate_key: Arc::new(plate_key),
        pseudonym_key: Arc::new(pseudonym_key),
        clock: Arc::new(SystemClock),
        metrics: Metrics::global(),
        keys: Arc::new(keys),
        city: None,
        demo_idp: None,
        payments_url: config.city_payments_url.clone(),
        limits: Arc::new(crate::http::limits::Limits::from_config(&config)),
        config: Arc::new(config),
        sign_in_limiter: Arc::default(),
        cache: Arc::new(crate::store::cache::PublicCache::new(db.clone())),
        db,
    })
}

/// Binds, calls `ready` with the bound address, and serves until SIGTERM or Ctrl-C, letting
/// requests in flight finish.
pub async fn serve(
    state: AppState,
    ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let bind = state.config.bind;
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, config = ?state.config, "qrpark listening");
    if state.payments_url.is_some() {
        crate::settlement::outbox::spawn(state.clone(), std::time::Duration::from_secs(1));
    }
    crate::sessions::scheduler::spawn(state.clone());
    let sealer = crate::audit::sealer::spawn(state.clone());
    ready(addr);
    let (db, reads) = (state.db.clone(), state.reads.clone());
    let limits = ServerLimits::from_config(&state.config);
    crate::http::server::serve(listener, app(state), limits, shutdown_signal()).await;
    // The requests in flight have finished: their audit events are sealed before the pool
    // closes.
    sealer.stop().await;
    reads.close().await;
    db.close().await;
    tracing::info!("qrpark stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing requests in flight");
}
