//! How drivers see their sessions: the views, and the fee so far of an active session.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::domain::currency::Currency;
use crate::domain::money::Money;
use crate::domain::session::EndedBy;
use crate::domain::session::{RefundStatus, SessionStatus, SettlementStatus};
use crate::http::error::ApiError;
use crate::sessions::{Pricing, ending};
use crate::store::refunds::{self, Refund};
use crate::store::sessions::{self, Session, Settlement};
use crate::store::spaces;

/// A settlement as drivers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementView {
    /// `pending` (on its way to the city's payment gateway), `settled`, `arrears` (the
    /// gateway refused it: you owe it, pay it again) or `review` (the city's payment office
    /// is checking whether it was charged).
    #[schema(value_type = String)]
    pub status: SettlementStatus,
    /// Quote it to the operator or the city.
    pub reference: String,
    #[schema(example = "25.00")]
    pub amount: String,
    pub settled_at: Option<DateTime<Utc>>,
    /// Given back so far (refunds not failed).
    #[schema(example = "0.00")]
    pub refunded: String,
}

/// A refund of (part of) a session's fee.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundView {
    pub id: Uuid,
    /// Quote it to the operator or the city.
    pub reference: String,
    #[schema(example = "5.00")]
    pub amount: String,
    pub currency: String,
    /// The operator's reason.
    pub reason: String,
    /// `pending` (on its way to the gateway), `refunded`, `failed` (nothing was given back)
    /// or `review`.
    #[schema(value_type = String)]
    pub status: RefundStatus,
    pub created_at: DateTime<Utc>,
    pub refunded_at: Option<DateTime<Utc>>,
}

impl RefundView {
    /// The view of a stored refund.
    pub fn of(refund: &Refund) -> Result<Self, ApiError> {
        Ok(Self {
            id: refund.refund_id,
            reference: refund.reference.clone(),
            amount: money(refund.amount_minor, &refund.currency)?,
            currency: refund.currency.clone(),
            reason: refund.reason.clone(),
            status: refund.status,
            created_at: refund.created_at,
            refunded_at: refund.refunded_at,
        })
    }
}

/// A parking session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub lot_id: Uuid,
    pub space_id: Uuid,
    pub space_code: String,
    /// `active` or `stopped`.
    #[schema(value_type = String)]
    pub status: SessionStatus,
    pub started_at: DateTime<Utc>,
    /// When the tariff's maximum stay ends, if it has one.
    pub leave_by: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The tariff version in force at the start, which prices the whole session.
    pub tariff_version: i32,
    pub currency: String,
    /// While active: the fee so far (as if stopped now); once stopped: the fee charged.
    #[schema(value_type = Option<crate::http::quote::FeeDoc>)]
    pub fee: Option<Value>,
    pub settlement: Option<SettlementView>,
    /// The vehicle's plate, normalised; `null` when none was given (or once erased).
    pub plate: Option<String>,
    /// The end the driver planned: the session stops itself then.
    pub stop_at: Option<DateTime<Utc>>,
    /// How it ended: `driver`, `planned`, `max_stay` or `operator`; `null` while active.
    #[schema(value_type = Option<String>)]
    pub ended_by: Option<EndedBy>,
    /// The operator's refunds of its fee, oldest first.
    pub refunds: Vec<RefundView>,
}

/// A driver's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// An amount in minor units, written with the currency's decimals.
pub(super) fn money(minor: i64, currency: &str) -> Result<String, ApiError> {
    let currency = Currency::parse(currency).map_err(ApiError::internal)?;
    Ok(Money::from_minor(minor, currency).to_string())
}

/// A settlement as the driver sees it.
pub(super) fn settlement_view(s: &Settlement) -> Result<SettlementView, ApiError> {
    Ok(SettlementView {
        status: s.status,
        reference: s.reference.clone(),
        amount: money(s.amount_minor, &s.currency)?,
        settled_at: s.settled_at,
        refunded: money(s.refunded_minor, &s.currency)?,
    })
}

/// Views of `sessions` in their order, loaded in a fixed number of queries however many
/// there are: their spaces' codes, their settlements and refunds, and for active ones the tariffs and
/// lots that price the fee so far.
pub(super) async fn views(
    state: &AppState,
    sessions: Vec<Session>,
) -> Result<Vec<SessionView>, ApiError> {
    let db = &state.db;
    let ids: Vec<Uuid> = sessions.iter().map(|s| s.session_id).collect();
    let space_ids: Vec<Uuid> = sessions.iter().map(|s| s.space_id).collect();
    let codes = spaces::codes(db, &space_ids).await?;
    let mut settlements: HashMap<Uuid, Settlement> = sessions::settlements(db, &ids)
        .await?
        .into_iter()
        .map(|s| (s.session_id, s))
        .collect();
    let mut refunds: HashMap<Uuid, Vec<Refund>> = HashMap::new();
    for refund in refunds::of_sessions(db, &ids).await? {
        refunds.entry(refund.session_id).or_default().push(refund);
    }
    let mut pricing: HashMap<Uuid, Pricing> = HashMap::new();
    for session in sessions.iter().filter(|s| s.is_active()) {
        let priced = Pricing::of(&state.cache, session)
            .await
            .map_err(ApiError::internal)?;
        pricing.insert(session.session_id, priced);
    }
    let now = state.clock.now();
    sessions
        .into_iter()
        .map(|session| {
            let code = codes.get(&session.space_id).cloned().unwrap_or_default();
            let settlement = settlements.remove(&session.session_id);
            let refunds = refunds.remove(&session.session_id).unwrap_or_default();
            let pricing = pricing.get(&session.session_id);
            view(session, code, settlement, &refunds, pricing, now)
        })
        .collect()
}

/// One session's view (see [`views`]).
pub(super) async fn one(state: &AppState, session: Session) -> Result<SessionView, ApiError> {
    let mut views = views(state, vec![session]).await?;
    views
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a session's view went missing")))
}

fn view(
    session: Session,
    space_code: String,
    settlement: Option<Settlement>,
    refunds: &[Refund],
    pricing: Option<&Pricing>,
    now: DateTime<Utc>,
) -> Result<SessionView, ApiError> {
    let fee = match (&session.fee_lines, pricing) {
        (Some(stored), _) => Some(serde_json::from_str(stored).map_err(ApiError::internal)?),
        (None, Some(pricing)) if session.is_active() => {
            // Past its planned end or maximum stay it costs what it will be stopped at.
            let (until, _) = ending(&session, now, EndedBy::Driver);
            let so_far = pricing.price(&session, until).map_err(ApiError::internal)?;
            Some(serde_json::to_value(so_far).map_err(ApiError::internal)?)
        }
        (None, _) => None,
    };
    let settlement = settlement.as_ref().map(settlement_view).transpose()?;
    Ok(SessionView {
        id: session.session_id,
        lot_id: session.lot_id,
        space_id: session.space_id,
        space_code,
        status: session.status,
        started_at: session.started_at,
        leave_by: session.leave_by,
        ended_at: session.ended_at,
        tariff_version: session.tariff_version,
        currency: session.currency,
        fee,
        settlement,
        plate: session.plate,
        stop_at: session.stop_at,
        ended_by: session.ended_by,
        refunds: refunds
            .iter()
            .map(RefundView::of)
            .collect::<Result<_, _>>()?,
    })
}
