//! Helpers shared by the pricing tests.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use qrpark::domain::tariff::{Fee, Tariff, price};

pub const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;
pub const BERLIN: Tz = chrono_tz::Europe::Berlin;
pub const NEW_YORK: Tz = chrono_tz::America::New_York;
pub const SAO_PAULO: Tz = chrono_tz::America::Sao_Paulo;

pub const SPEC: &str = include_str!("../../fixtures/tariffs/spec-example.json");
pub const BEIJING: &str = include_str!("../../fixtures/tariffs/beijing-on-street.json");
pub const SHANGHAI_COMMERCIAL: &str =
    include_str!("../../fixtures/tariffs/shanghai-commercial.json");
pub const BERLIN_METER: &str = include_str!("../../fixtures/tariffs/berlin-meter-zone.json");
pub const EVENTS: &str = include_str!("../../fixtures/tariffs/event-rate-holidays.json");

/// A tariff that must validate.
#[track_caller]
pub fn tariff(json: &str) -> Tariff {
    match Tariff::from_json_str(json) {
        Ok(t) => t,
        Err(e) => panic!("tariff should validate: {e}"),
    }
}

/// An unambiguous local time `YYYY-MM-DD HH:MM[:SS]` in `tz`, as an instant.
#[track_caller]
pub fn local(tz: Tz, text: &str) -> DateTime<Utc> {
    let format = if text.len() > 16 {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M"
    };
    let naive = NaiveDateTime::parse_from_str(text, format).expect("test time");
    tz.from_local_datetime(&naive)
        .single()
        .expect("unambiguous local time")
        .with_timezone(&Utc)
}

/// An instant from RFC 3339 (for times in a repeated hour).
#[track_caller]
pub fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("rfc3339")
        .with_timezone(&Utc)
}

/// Prices between two local times.
#[track_caller]
pub fn quote(t: &Tariff, tz: Tz, from: &str, to: &str) -> Fee {
    price(t, tz, local(tz, from), local(tz, to)).expect("priceable interval")
}

/// Each line as `rule dd HH:MM-dd HH:MM xN amount charged` (local day of month and time),
/// compact enough to compare whole breakdowns at a glance.
pub fn summary(fee: &Fee) -> Vec<String> {
    fee.lines
        .iter()
        .map(|l| {
            format!(
                "{} {}-{} x{} {} {}",
                l.rule,
                l.from.format("%d %H:%M"),
                l.to.format("%d %H:%M"),
                l.increments,
                l.amount,
                l.charged
            )
        })
        .collect()
}

/// Asserts the total and the breakdown summary.
#[track_caller]
pub fn assert_fee(fee: &Fee, total: &str, lines: &[&str]) {
    assert_eq!(summary(fee), lines, "breakdown");
    assert_eq!(fee.total.to_string(), total, "total");
}
