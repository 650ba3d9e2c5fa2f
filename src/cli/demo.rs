//! `qrpark demo`: the first-run experience, with demo data seeded idempotently.

use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;

use crate::AppState;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::currency::Currency;
use crate::domain::lot::{Address, LotName, NewLot};
use crate::domain::space::SpaceCode;
use crate::domain::tariff::Tariff;
use crate::domain::timezone::TimeZone;
use crate::identity::city::{CityVerifier, JwksSource};
use crate::identity::demo_idp::DemoIdp;
use crate::identity::operator_key;
use crate::store::{lots, operators, spaces, tariffs};

/// The demo data, compiled in so the binary works from any directory.
const DEMO: &str = include_str!("../../fixtures/demo.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Demo {
    operator: DemoOperator,
    lot: DemoLot,
    spaces: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoOperator {
    name: String,
    api_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoLot {
    name: String,
    address: String,
    timezone: String,
    currency: String,
    /// A file name under fixtures/tariffs/, listed in [`TARIFFS`].
    tariff: String,
    /// Sessions must name the vehicle's plate.
    plate_required: bool,
}

/// The fixture tariffs the demo may publish, compiled in.
const TARIFFS: &[(&str, &str)] = &[
    (
        "shanghai-commercial.json",
        include_str!("../../fixtures/tariffs/shanghai-commercial.json"),
    ),
    (
        "beijing-on-street.json",
        include_str!("../../fixtures/tariffs/beijing-on-street.json"),
    ),
];

/// What seeding produced, for the welcome text.
pub struct Seeded {
    pub api_key: String,
    pub lot_id: uuid::Uuid,
    pub lot_name: String,
    pub spaces: usize,
    /// One space to show in the welcome text, with its code's token.
    pub sample: Option<SampleSpace>,
}

/// A space shown in the welcome text.
pub struct SampleSpace {
    pub space_id: uuid::Uuid,
    pub code: String,
    pub token: String,
}

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    // Bound to every interface without a public URL: print codes a phone on the same network
    // can open, with the machine's LAN address.
    if config.bind.ip().is_unspecified()
        && config.public_url.is_none()
        && let Some(ip) = lan_address()
    {
        config.public_url = Some(format!("http://{ip}:{}", config.bind.port()));
    }
    let db = super::serve::open_database(&config).await?;
    refuse_foreign_operators(&db).await?;
    let audience = config.city_audience.clone();
    let state = super::serve::state(config, db).await?;
    let (idp, verifier) = demo_identity(audience, state.clock.clone()).await?;
    let state = state.with_city(verifier, Some(idp));
    let seeded = seed(&state).await?;
    let public_url = state.config.public_url();
    // The terminal code is drawn from the same cached matrix the PNG and the sheet use.
    let mut terminal_code = None;
    if let Some(sample) = &seeded.sample
        && let Some(qr) = crate::store::space_qr::get(&state.db, sample.space_id).await?
    {
        let matrix = crate::qr::codes::matrix(&state.db, &qr, &public_url).await?;
        terminal_code = Some(matrix.terminal());
    }
    super::serve::serve(state, |addr| {
        if let Some(code) = &terminal_code {
            println!("\n{code}");
        }
        welcome(addr, &public_url, &seeded)
    })
    .await
}

/// `qrpark demo` publishes a well-known operator key: it must never run on a database that
/// serves anyone but the demo operator.
async fn refuse_foreign_operators(db: &crate::store::Db) -> anyhow::Result<()> {
    let demo = demo_fixture()?;
    let others = operators::others(db, &demo.operator.name, 3).await?;
    if let Some(first) = others.first() {
        anyhow::bail!(
            "this database holds operators other than the demo's (such as {first:?}): \
             `qrpark demo` gives the world a published operator key, so it runs only on a \
             database of its own; point QRPARK_DATABASE_URL (or --database-url) at a new one"
        );
    }
    Ok(())
}

/// `qrpark serve` refuses to start while the published demo operator key
/// (fixtures/demo.json) opens this database: anyone could act as that operator.
pub async fn refuse_published_key(db: &crate::store::Db) -> anyhow::Result<()> {
    let demo = demo_fixture()?;
    let hash = operator_key::hash(&demo.operator.api_key);
    if let Some(owner) = operators::authenticate(db, &hash).await? {
        anyhow::bail!(
            "the demo operator key published in fixtures/demo.json is valid on this database, \
             so anyone could act as operator {:?}; revoke it before serving:\n  \
             qrpark operator key {} --revoke {}",
            demo.operator.name,
            owner.operator_id,
            owner.operator_key_id
        );
    }
    Ok(())
}

fn demo_fixture() -> anyhow::Result<Demo> {
    serde_json::from_str(DEMO).context("fixtures/demo.json is malformed")
}

/// The address this machine uses on its local network. Connecting a UDP socket only picks
/// the route: no packet is sent.
fn lan_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // 192.0.2.1 is TEST-NET-1: reserved for documentation, never routed anywhere.
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// The development identity provider and a verifier that trusts exactly it: the demo's
/// drivers sign in with one call, and `serve` never has either. Both read `clock`, the app's,
/// so that the tokens the provider issues are judged at the instants it issued them for.
pub async fn demo_identity(
    audience: String,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(DemoIdp, CityVerifier)> {
    let idp = DemoIdp::generate(clock.clone());
    let verifier = CityVerifier::new(
        JwksSource::Static(idp.jwks()),
        DemoIdp::ISSUER.to_owned(),
        audience,
        clock,
    )
    .await?;
    Ok((idp, verifier))
}

/// Creates whatever part of the demo data is missing; running it twice changes nothing.
pub async fn seed(state: &AppState) -> anyhow::Result<Seeded> {
    let db = &state.db;
    let demo = demo_fixture()?;
    let now = state.clock.now();
    let key_hash = operator_key::hash(&demo.operator.api_key);
    let operator = match operators::find(db, &demo.operator.name).await? {
        Some(operator) => {
            if operators::authenticate(db, &key_hash).await?.is_none() {
                operators::add_key(db, operator.operator_id, &key_hash, now).await?;
            }
            operator
        }
        None => {
            operators::create(db, &demo.operator.name, &key_hash, now)
                .await?
                .0
        }
    };
    let existing = lots::list(db, operator.operator_id).await?;
    let lot = match existing.into_iter().find(|l| l.name == demo.lot.name) {
        Some(lot) => lot,
        None => {
            let new_lot = NewLot {
                name: LotName::parse(&demo.lot.name)?,
                address: Some(Address::parse(&demo.lot.address)?),
                timezone: TimeZone::parse(&demo.lot.timezone)?,
                currency: Currency::parse(&demo.lot.currency)?,
                plate_required: demo.lot.plate_required,
            };
            lots::create(db, operator.operator_id, &new_lot, now).await?
        }
    };
    if tariffs::in_force(db, lot.lot_id, now).await?.is_none() {
        let (_, text) = TARIFFS
            .iter()
            .find(|(name, _)| *name == demo.lot.tariff)
            .with_context(|| format!("demo tariff {} is not compiled in", demo.lot.tariff))?;
        let tariff = Tariff::from_json_str(text)?;
        let document = tariff.to_json().to_string();
        tariffs::publish(db, lot.lot_id, &document, tariff.currency().code(), now).await?;
    }
    let present = spaces::list(db, lot.lot_id).await?;
    let missing = demo
        .spaces
        .iter()
        .filter(|code| !present.iter().any(|s| &s.code == *code))
        .map(|code| SpaceCode::parse(code))
        .collect::<Result<Vec<_>, _>>()?;
    if !missing.is_empty() {
        let new = crate::qr::codes::new_spaces(&state.keys, missing.clone(), now).await?;
        spaces::create_many(db, lot.lot_id, &new, now).await?;
    }
    let sample = spaces::list(db, lot.lot_id)
        .await?
        .into_iter()
        .find_map(|s| {
            s.qr_token.map(|token| SampleSpace {
                space_id: s.space_id,
                code: s.code,
                token,
            })
        });
    Ok(Seeded {
        sample,
        api_key: demo.operator.api_key,
        lot_id: lot.lot_id,
        lot_name: lot.name,
        spaces: present.len() + missing.len(),
    })
}

fn welcome(addr: std::net::SocketAddr, public_url: &str, seeded: &Seeded) {
    let base = format!("http://{addr}");
    if let Some(SampleSpace { code, token, .. }) = &seeded.sample {
        let url = crate::qr::codes::url(public_url, token);
        println!(
            "\nSpace {code}'s signed QR code holds:\n  {url}\n  (check it: curl {base}/v1/scan/{token})"
        );
    }
    println!(
        "\nqrpark demo is running at {base}\n\n  \
         API docs      {base}/docs\n  \
         health        {base}/healthz\n  \
         metrics       {base}/metrics\n\n\
         Demo operator API key: {key}\n\
         Demo lot: {lot} ({id}), {spaces} spaces\n\n\
         Try:\n  curl -H 'Authorization: Bearer {key}' {base}/v1/operator/lots\n  \
         curl -H 'Authorization: Bearer {key}' {base}/v1/operator/lots/{id}/spaces\n  \
         curl -H 'Authorization: Bearer {key}' {base}/v1/operator/lots/{id}/tariff\n  \
         curl -H 'Content-Type: application/json' -d '{{\"start\":\"2026-09-29T09:00:00+08:00\",\"end\":\"2026-09-29T11:30:00+08:00\"}}' {base}/v1/lots/{id}/quote\n\n\
         A demo driver token (the development city identity provider, demo only):\n  \
         curl -H 'Content-Type: application/json' -d '{{\"subject\":\"driver-1\"}}' {base}/v1/demo/token\n\
         then start parking with the code above (the demo lot requires the vehicle's plate):\n  \
         curl -H \"Authorization: Bearer $TOKEN\" -H 'Idempotency-Key: tap-1' -H 'Content-Type: application/json' \\\n       \
         -d '{{\"qr\":\"<the token after /q/>\",\"plate\":\"沪A12345\"}}' {base}/v1/sessions\n\n\
         Wardens: {base}/warden (sign in as a demo warden), or with a token of the warden role:\n  \
         curl -H 'Content-Type: application/json' -d '{{\"subject\":\"warden-1\",\"roles\":[\"warden\"]}}' {base}/v1/demo/token\n  \
         curl -H \"Authorization: Bearer $WARDEN\" '{base}/v1/enforcement/check?plate=沪A12345'\n\n\
         Stop with Ctrl-C.",
        key = seeded.api_key,
        lot = seeded.lot_name,
        id = seeded.lot_id,
        spaces = seeded.spaces,
    );
}
