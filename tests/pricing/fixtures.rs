//! The shipped fixtures validate and price as documented in docs/tariffs.md.

use qrpark::domain::tariff::CapPeriod;

use crate::support::*;

#[test]
fn every_fixture_validates() {
    for (doc, currency) in [
        (SPEC, "CNY"),
        (BEIJING, "CNY"),
        (SHANGHAI_COMMERCIAL, "CNY"),
        (BERLIN_METER, "EUR"),
        (EVENTS, "CNY"),
    ] {
        assert_eq!(tariff(doc).currency().code(), currency);
    }
    let sh = tariff(SHANGHAI_COMMERCIAL);
    assert_eq!(
        sh.daily_cap().map(|c| c.period),
        Some(CapPeriod::Rolling24h)
    );
    assert_eq!(sh.grace_minutes(), 30);
    assert_eq!(tariff(BEIJING).max_stay_minutes(), Some(1440));
}

#[test]
fn beijing_two_hours_in_the_evening() {
    // day 19:30-21:00: 19:30..20:15 4 x 2.50 = 10.00, 20:30, 20:45 2 x 3.75 = 7.50;
    // night 21:00-21:30: 1 x 1.00. Total 18.50.
    let fee = quote(
        &tariff(BEIJING),
        SHANGHAI,
        "2026-09-29 19:30",
        "2026-09-29 21:30",
    );
    assert_fee(
        &fee,
        "18.50",
        &[
            "day 29 19:30-29 21:00 x6 17.50 17.50",
            "night 29 21:00-29 21:30 x1 1.00 1.00",
        ],
    );
}
