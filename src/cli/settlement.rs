//! `qrpark settlement`: the city's payment office deals with payments and refunds the
//! gateway refused or whose delivery gave up (docs/money.md). Every change is in the audit
//! log.

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::currency::Currency;
use crate::domain::money::Money;
use crate::domain::session::{RefundStatus, SettlementStatus};
use crate::domain::text;
use crate::store::refunds::{self, Refund};
use crate::store::sessions::Settlement;
use crate::store::settlements::{self, Resolution, SentBy};

#[derive(Debug, Subcommand)]
pub enum SettlementCommand {
    /// Payments and refunds in a state (default: everything in review, then arrears).
    List {
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// At most this many of each kind.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Send a payment in review or arrears (QRP-...), or a refund in review (QRR-...), to
    /// the gateway again. Review keeps the gateway's idempotency key, so nothing is charged
    /// twice; arrears start a new payment round.
    Retry { reference: String },
    /// Decide a payment (QRP-...: `--as settled|arrears`) or refund (QRR-...:
    /// `--as refunded|failed`) in review.
    Resolve {
        reference: String,
        #[arg(long = "as", value_enum)]
        outcome: Outcome,
        /// Why: kept in the audit log (1 to 500 characters).
        #[arg(long)]
        note: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Status {
    Review,
    Arrears,
    Pending,
    Settled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Outcome {
    /// A payment the gateway did charge.
    Settled,
    /// A payment it did not: the driver owes it.
    Arrears,
    /// A refund the gateway did give back.
    Refunded,
    /// A refund it did not.
    Failed,
}

pub async fn run(config: Config, command: SettlementCommand) -> anyhow::Result<()> {
    let db = super::serve::open_database(&config).await?;
    let deliver = config.city_payments_url.is_some();
    let now = SystemClock.now();
    let result = async {
        match command {
            SettlementCommand::List {
                status,
                limit,
                json,
            } => {
                let states: &[(Option<SettlementStatus>, Option<RefundStatus>)] = match status {
                    None => &[
                        (Some(SettlementStatus::Review), Some(RefundStatus::Review)),
                        (Some(SettlementStatus::Arrears), None),
                    ],
                    Some(Status::Review) => {
                        &[(Some(SettlementStatus::Review), Some(RefundStatus::Review))]
                    }
                    Some(Status::Arrears) => &[(Some(SettlementStatus::Arrears), None)],
                    Some(Status::Pending) => {
                        &[(Some(SettlementStatus::Pending), Some(RefundStatus::Pending))]
                    }
                    Some(Status::Settled) => &[(
                        Some(SettlementStatus::Settled),
                        Some(RefundStatus::Refunded),
                    )],
                };
                if !json {
                    println!("reference\tkind\tstatus\tamount\tattempts\tupdated\tlast error");
                }
                for (payments, refunds_in) in states {
                    if let Some(state) = payments {
                        for s in settlements::list(&db, Some(*state), limit).await? {
                            print_payment(&s, json)?;
                        }
                    }
                    if let Some(state) = refunds_in {
                        for r in refunds::list(&db, Some(*state), limit).await? {
                            print_refund(&r, json)?;
                        }
                    }
                }
            }
            SettlementCommand::Retry { reference } => {
                // Without the gateway a retry would settle arrears and review at once, as
                // if charged: the payment office resolves instead.
                anyhow::ensure!(
                    deliver,
                    "retry sends to the city's payment gateway: QRPARK_CITY_PAYMENTS_URL is \
                     not set (use `resolve` to decide without it)"
                );
                if let Some(refund) = refunds::by_reference(&db, &reference).await? {
                    anyhow::ensure!(
                        refunds::retry(&db, &refund, now).await?,
                        "refund {reference} is {}: only a refund in review is sent again",
                        refund.status
                    );
                    println!("refund {reference} is on its way to the gateway again");
                    return Ok(());
                }
                let settlement = payment(&db, &reference).await?;
                let sent = settlements::send_again(
                    &db,
                    settlement.settlement_id,
                    deliver,
                    SentBy::PaymentOffice,
                    now,
                )
                .await?
                .with_context(|| {
                    format!(
                        "payment {reference} is {}: only review or arrears are sent again",
                        settlement.status
                    )
                })?;
                println!(
                    "payment {reference} is {} (round {})",
                    sent.status, sent.payment_round
                );
            }
            SettlementCommand::Resolve {
                reference,
                outcome,
                note,
            } => {
                text::check_note(&note, 500).context("--note")?;
                if let Some(refund) = refunds::by_reference(&db, &reference).await? {
                    let to = match outcome {
                        Outcome::Refunded => RefundStatus::Refunded,
                        Outcome::Failed => RefundStatus::Failed,
                        _ => bail!("a refund is resolved --as refunded or --as failed"),
                    };
                    anyhow::ensure!(
                        refunds::resolve(&db, &refund, to, &note, now).await?,
                        "refund {reference} is {}: only a refund in review is resolved",
                        refund.status
                    );
                    println!("refund {reference} resolved as {to}");
                    return Ok(());
                }
                let resolution = match outcome {
                    Outcome::Settled => Resolution::Settled,
                    Outcome::Arrears => Resolution::Arrears,
                    _ => bail!("a payment is resolved --as settled or --as arrears"),
                };
                let settlement = payment(&db, &reference).await?;
                let resolved =
                    settlements::resolve(&db, settlement.settlement_id, resolution, &note, now)
                        .await?
                        .with_context(|| {
                            format!(
                                "payment {reference} is {}: only a payment in review is resolved",
                                settlement.status
                            )
                        })?;
                println!("payment {reference} resolved as {}", resolved.status);
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}

async fn payment(db: &crate::store::Db, reference: &str) -> anyhow::Result<Settlement> {
    settlements::by_reference(db, reference)
        .await?
        .with_context(|| format!("no payment or refund with reference {reference}"))
}

fn amount(minor: i64, currency: &str) -> anyhow::Result<String> {
    Ok(Money::from_minor(minor, Currency::parse(currency)?).to_string())
}

fn print_payment(s: &Settlement, json: bool) -> anyhow::Result<()> {
    let amount = amount(s.amount_minor, &s.currency)?;
    if json {
        let line = json!({
            "kind": "payment",
            "reference": s.reference,
            "session_id": s.session_id,
            "status": s.status,
            "currency": s.currency,
            "amount": amount,
            "refunded": self::amount(s.refunded_minor, &s.currency)?,
            "payment_round": s.payment_round,
            "attempts": s.attempts,
            "last_error": s.last_error,
            "updated_at": s.updated_at,
        });
        println!("{line}");
    } else {
        println!(
            "{}\tpayment\t{}\t{} {}\t{}\t{}\t{}",
            s.reference,
            s.status,
            amount,
            s.currency,
            s.attempts,
            s.updated_at.to_rfc3339(),
            s.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

fn print_refund(r: &Refund, json: bool) -> anyhow::Result<()> {
    let amount = amount(r.amount_minor, &r.currency)?;
    if json {
        let line = json!({
            "kind": "refund",
            "reference": r.reference,
            "session_id": r.session_id,
            "status": r.status,
            "currency": r.currency,
            "amount": amount,
            "reason": r.reason,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "updated_at": r.updated_at,
        });
        println!("{line}");
    } else {
        println!(
            "{}\trefund\t{}\t{} {}\t{}\t{}\t{}",
            r.reference,
            r.status,
            amount,
            r.currency,
            r.attempts,
            r.updated_at.to_rfc3339(),
            r.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
