//! A session's life outside HTTP: pricing it, and ending it, whoever ends it (the driver,
//! the operator, or the scheduler at the planned end or the maximum stay). Every ending goes
//! through [`end`], so a session is priced to the same instant and stopped exactly once
//! however many try at the same time.

pub mod scheduler;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::audit::canonical_json;
use crate::domain::session::{EndedBy, SettlementStatus};
use std::sync::Arc;

use crate::AppState;
use crate::domain::tariff::{self, Fee};
use crate::domain::timezone::TimeZone;
use crate::store::cache::{CachedTariff, PublicCache};
pub use crate::store::sessions::Claim;
use crate::store::sessions::{self, Session, Settlement, Stop};

/// A fee with the tariff version that priced it: what drivers, receipts and exports show.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PricedFee {
    #[serde(flatten)]
    pub fee: Fee,
    pub tariff_version: i32,
}

/// Everything needed to price a session: its locked tariff and its lot's time zone.
pub struct Pricing {
    tariff: Arc<CachedTariff>,
    timezone: TimeZone,
}

impl Pricing {
    /// The session's tariff version and its lot's time zone, from the process's cache:
    /// exact, since a tariff version never changes and neither does a lot's time zone (no
    /// write path changes it), so a cached copy is never stale for pricing.
    pub async fn of(cache: &PublicCache, session: &Session) -> anyhow::Result<Self> {
        let tariff = cache
            .tariff(session.tariff_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("session {}'s tariff is gone", session.session_id))?;
        let lot = cache
            .lot(session.lot_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("session {}'s lot is gone", session.session_id))?;
        let timezone = TimeZone::parse(&lot.timezone)?;
        Ok(Self { tariff, timezone })
    }

    /// The session's fee from its start to `end`.
    pub fn price(&self, session: &Session, end: DateTime<Utc>) -> anyhow::Result<PricedFee> {
        let fee = tariff::price(
            &self.tariff.tariff,
            self.timezone.tz(),
            session.started_at,
            end,
        )?;
        Ok(PricedFee {
            fee,
            tariff_version: session.tariff_version,
        })
    }
}

/// When a stop asked for `now` really ends the session, and how: a session past its planned
/// end or its maximum stay has already ended there, whoever asks (so a driver's stop racing
/// the scheduler answers the same session); otherwise it ends now, by `asked_by`.
pub fn ending(
    session: &Session,
    now: DateTime<Utc>,
    asked_by: EndedBy,
) -> (DateTime<Utc>, EndedBy) {
    match session.ends_at {
        Some(due) if due <= now => {
            let by = if session.stop_at == Some(due) {
                EndedBy::Planned
            } else {
                EndedBy::MaxStay
            };
            (due, by)
        }
        _ => (now.max(session.started_at), asked_by),
    }
}

/// Ends an active session as [`ending`] says, prices it to that instant and settles it, in
/// one transaction. `false` when someone else ended it first (read the stored outcome).
pub async fn end(
    state: &AppState,
    session: &Session,
    now: DateTime<Utc>,
    asked_by: EndedBy,
    reason: Option<String>,
    claim: Claim,
) -> anyhow::Result<bool> {
    if !session.is_active() {
        return Ok(false);
    }
    let (ended_at, ended_by) = ending(session, now, asked_by);
    let reason = if ended_by == EndedBy::Operator {
        reason
    } else {
        None
    };
    let priced = Pricing::of(&state.cache, session)
        .await?
        .price(session, ended_at)?;
    let fee_minor = priced
        .fee
        .total
        .to_minor()
        .ok_or_else(|| anyhow::anyhow!("fee out of range"))?;
    // Nothing to charge is settled at once: the gateway is not asked for zero.
    let deliver = state.payments_url.is_some() && fee_minor > 0;
    let settlement = Settlement {
        settlement_id: Uuid::now_v7(),
        session_id: session.session_id,
        reference: settlement_reference(),
        driver: session.driver.clone(),
        operator_id: session.operator_id,
        currency: session.currency.clone(),
        amount_minor: fee_minor,
        // Without a payment gateway the ledger is the settlement: settled at once.
        status: if deliver {
            SettlementStatus::Pending
        } else {
            SettlementStatus::Settled
        },
        attempts: 0,
        last_error: None,
        created_at: now,
        updated_at: now,
        settled_at: (!deliver).then_some(now),
        refunded_minor: 0,
        payment_round: 1,
        arrears_since: None,
    };
    let stop = Stop {
        ended_at,
        ended_by,
        reason,
        fee_minor,
        // Stored canonical, so the export embeds it as it is and the stop event's
        // `fee_sha256` is the hash of the breakdown exactly as auditors receive it.
        fee_lines: canonical_json(&serde_json::to_value(&priced)?),
        settlement,
        deliver,
    };
    let stopped = sessions::stop(&state.db, session.session_id, &stop, claim).await?;
    if stopped {
        tracing::info!(
            session_id = %session.session_id,
            fee_minor,
            ended_by = ended_by.as_str(),
            "session stopped and settled"
        );
    }
    Ok(stopped)
}

/// A settlement reference drivers can read out: `QRP-` and 12 characters of Crockford base32.
fn settlement_reference() -> String {
    reference("QRP")
}

/// A reference people can read out: `{prefix}-` and 12 characters of Crockford base32
/// (60 random bits).
pub fn reference(prefix: &str) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).expect("the operating system's random source is available");
    let code: String = random
        .iter()
        .map(|b| ALPHABET[usize::from(b % 32)] as char)
        .collect();
    format!("{prefix}-{code}")
}
