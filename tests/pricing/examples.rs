//! The worked examples of docs/tariffs.md, on its example tariff, lot in Asia/Shanghai.
//! 2026-09-29 is a Tuesday; 2026-10-01 a Thursday (national day).

use crate::support::*;

#[test]
fn tue_10_00_to_10_15_is_within_grace() {
    // 15 min <= 15 min of grace: free, one line naming the grace.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-09-29 10:00",
        "2026-09-29 10:15",
    );
    assert_fee(&fee, "0.00", &["grace 29 10:00-29 10:15 x0 0.00 0.00"]);
    assert!(fee.lines[0].grace);
}

#[test]
fn tue_10_00_to_10_16_charges_two_first_step_increments() {
    // 16 min > grace. Increments at 10:00 (elapsed 0) and 10:15 (elapsed 15), both first
    // step: 2 x 2.50 = 5.00; the second runs past the end and is charged whole.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-09-29 10:00",
        "2026-09-29 10:16",
    );
    assert_fee(&fee, "5.00", &["day 29 10:00-29 10:16 x2 5.00 5.00"]);
}

#[test]
fn tue_10_00_to_12_00_escalates_after_the_first_hour() {
    // 10:00-11:00: 4 x 2.50 = 10.00 (elapsed 0..45 < 60); 11:00-12:00: 4 x 3.75 = 15.00.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-09-29 10:00",
        "2026-09-29 12:00",
    );
    assert_fee(&fee, "25.00", &["day 29 10:00-29 12:00 x8 25.00 25.00"]);
}

#[test]
fn tue_20_30_to_22_00_splits_day_and_night() {
    // day 20:30-21:00: 2 x 2.50 = 5.00; night 21:00-22:00: one 120-min increment, 1.00.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-09-29 20:30",
        "2026-09-29 22:00",
    );
    assert_fee(
        &fee,
        "6.00",
        &[
            "day 29 20:30-29 21:00 x2 5.00 5.00",
            "night 29 21:00-29 22:00 x1 1.00 1.00",
        ],
    );
}

#[test]
fn tue_06_00_to_07_20_day_starts_at_elapsed_minute_60() {
    // night 06:00-07:00 (Monday's occurrence): 1 x 1.00. day 07:00-07:20 starts at elapsed
    // minute 60, so the second step applies: 07:00, 07:15 -> 2 x 3.75 = 7.50.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-09-29 06:00",
        "2026-09-29 07:20",
    );
    assert_fee(
        &fee,
        "8.50",
        &[
            "night 29 06:00-29 07:00 x1 1.00 1.00",
            "day 29 07:00-29 07:20 x2 7.50 7.50",
        ],
    );
}

#[test]
fn national_day_flat_wins_over_day() {
    // national-day is listed first and covers all of 2026-10-01: one flat of 20.00.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-10-01 09:00",
        "2026-10-01 11:00",
    );
    assert_fee(
        &fee,
        "20.00",
        &["national-day 01 09:00-01 11:00 x1 20.00 20.00"],
    );
}

#[test]
fn the_api_shape_is_exact() {
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-09-29 06:00",
        "2026-09-29 07:20",
    );
    let json = serde_json::to_string(&fee).unwrap();
    assert_eq!(
        json,
        r#"{"currency":"CNY","total":"8.50","lines":[{"rule":"night","from":"2026-09-29T06:00:00+08:00","to":"2026-09-29T07:00:00+08:00","increments":1,"amount":"1.00","charged":"1.00"},{"rule":"day","from":"2026-09-29T07:00:00+08:00","to":"2026-09-29T07:20:00+08:00","increments":2,"amount":"7.50","charged":"7.50"}]}"#
    );
}
