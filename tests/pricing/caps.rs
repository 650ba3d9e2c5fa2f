//! Hand-worked cases for rule caps and daily caps (both periods), including charges cut
//! in part. Times are local Asia/Shanghai unless said otherwise.

use crate::support::*;

#[test]
fn a_rule_cap_cuts_a_charge_in_part() {
    // 1.50 per hour, cap 4.00: 1.50, 1.50, then 1.00 of 1.50 (4.00 reached), then 0.
    let t = tariff(
        r#"{"currency":"CNY","rules":[{"name":"hourly","price":
            {"every_minutes":60,"amount":"1.50"},"cap":"4.00"}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00", "2026-09-29 14:00");
    assert_fee(&fee, "4.00", &["hourly 29 10:00-29 14:00 x4 6.00 4.00"]);
}

#[test]
fn a_rule_cap_applies_per_occurrence() {
    // evening 18:00-22:00 at 3.00/h, cap 5.00. Tue: 4 x 3.00 = 12.00 -> 5.00.
    // Wed 18:00-20:00: new occurrence, 2 x 3.00 = 6.00 -> 5.00. Between: free.
    let t = tariff(
        r#"{"currency":"CNY","rules":[{"name":"evening","from":"18:00","to":"22:00",
            "price":{"every_minutes":60,"amount":"3.00"},"cap":"5.00"}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 18:00", "2026-09-30 20:00");
    assert_fee(
        &fee,
        "10.00",
        &[
            "evening 29 18:00-29 22:00 x4 12.00 5.00",
            "evening 30 18:00-30 20:00 x2 6.00 5.00",
        ],
    );
}

#[test]
fn a_rule_cap_spans_the_segments_of_one_occurrence() {
    // day 07:00-19:00 at 2.00/h, cap 5.00, split by peak 08:00-09:00 (3.00/30 min).
    // day 07:00-08:00: 2.00 (occurrence total 2.00); peak: 2 x 3.00; day 09:00-11:00:
    // 2.00 -> total 4.00, then 1.00 of 2.00 (5.00 reached). Total 2 + 6 + 3 = 11.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[
        {"name":"peak","from":"08:00","to":"09:00","price":{"every_minutes":30,"amount":"3.00"}},
        {"name":"day","from":"07:00","to":"19:00","price":{"every_minutes":60,"amount":"2.00"},
         "cap":"5.00"}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 07:00", "2026-09-29 11:00");
    assert_fee(
        &fee,
        "11.00",
        &[
            "day 29 07:00-29 08:00 x1 2.00 2.00",
            "peak 29 08:00-29 09:00 x2 6.00 6.00",
            "day 29 09:00-29 11:00 x2 4.00 3.00",
        ],
    );
}

#[test]
fn the_calendar_day_cap_stops_a_long_day() {
    // Tue 07:00-21:00: 4 x 2.50 + 52 x 3.75 = 10.00 + 195.00 = 205.00, daily cap 60.00.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-09-29 07:00",
        "2026-09-29 21:00",
    );
    assert_fee(&fee, "60.00", &["day 29 07:00-29 21:00 x56 205.00 60.00"]);
}

#[test]
fn the_calendar_day_cap_resets_at_local_midnight() {
    // Tue 12:00-21:00: 4 x 2.50 + 32 x 3.75 = 130.00 -> 60.00 (Tue full).
    // night 21:00-07:00: increments at 21:00, 23:00 (Tue, full: 0) and 01:00, 03:00,
    // 05:00 (Wed: 3.00); amount 5.00, charged 3.00.
    // Wed 07:00-12:00: 20 x 3.75 = 75.00, Wed has 57.00 left -> 57.00. Total 120.00.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-09-29 12:00",
        "2026-09-30 12:00",
    );
    assert_fee(
        &fee,
        "120.00",
        &[
            "day 29 12:00-29 21:00 x36 130.00 60.00",
            "night 29 21:00-30 07:00 x5 5.00 3.00",
            "day 30 07:00-30 12:00 x20 75.00 57.00",
        ],
    );
}

#[test]
fn the_rolling_24h_cap_counts_from_the_session_start() {
    // shanghai-commercial, cap 60.00 per 24 h from the start (Tue 09:00).
    // daytime Tue 09:00-22:00: 09:00, 09:30 at 5.00; 10:00..21:00 12 x 8.00; raw 106.00;
    // running 10, 18, ..., 58 at 15:00, then 2.00 of 8.00 at 16:00, then 0 -> 60.00.
    // overnight 22:00-08:00: 10 x 2.00 = 20.00, period full -> 0.00.
    // daytime Wed 08:00-13:00 (elapsed >= 60: 8.00/h): 08:00 still in period 1 -> 0;
    // 09:00 starts period 2: 09:00..12:00 4 x 8.00 = 32.00. Total 92.00.
    let fee = quote(
        &tariff(SHANGHAI_COMMERCIAL),
        SHANGHAI,
        "2026-09-29 09:00",
        "2026-09-30 13:00",
    );
    assert_fee(
        &fee,
        "92.00",
        &[
            "daytime 29 09:00-29 22:00 x14 106.00 60.00",
            "overnight 29 22:00-30 08:00 x10 20.00 0.00",
            "daytime 30 08:00-30 13:00 x5 40.00 32.00",
        ],
    );
}

#[test]
fn the_same_session_with_a_calendar_day_cap() {
    // As above but calendar_day. Tue: daytime 60.00; overnight 22:00, 23:00 (Tue, full)
    // 0; Wed 00:00..04:00 5 x 2.00 = 10.00 hits the rule cap, 05:00..07:00 0.
    // daytime Wed 08:00-13:00: 5 x 8.00 = 40.00, Wed has 50.00 left -> 40.00. Total 110.00.
    let doc = SHANGHAI_COMMERCIAL.replace("rolling_24h", "calendar_day");
    let fee = quote(
        &tariff(&doc),
        SHANGHAI,
        "2026-09-29 09:00",
        "2026-09-30 13:00",
    );
    assert_fee(
        &fee,
        "110.00",
        &[
            "daytime 29 09:00-29 22:00 x14 106.00 60.00",
            "overnight 29 22:00-30 08:00 x10 20.00 10.00",
            "daytime 30 08:00-30 13:00 x5 40.00 40.00",
        ],
    );
}

#[test]
fn the_tighter_of_both_caps_wins() {
    // daily 5.00. first 10:00: 4.00 (day total 4.00). second at 3.00/h, cap 2.50:
    // 11:00 min(3.00, 2.50 rule, 1.00 daily) = 1.00; 12:00, 13:00: 0. Total 5.00.
    let t = tariff(
        r#"{"currency":"CNY","daily_cap":{"amount":"5.00","period":"calendar_day"},"rules":[
        {"name":"first","from":"10:00","to":"11:00","price":{"every_minutes":60,"amount":"4.00"}},
        {"name":"second","from":"11:00","to":"14:00","price":{"every_minutes":60,"amount":"3.00"},
         "cap":"2.50"}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00", "2026-09-29 14:00");
    assert_fee(
        &fee,
        "5.00",
        &[
            "first 29 10:00-29 11:00 x1 4.00 4.00",
            "second 29 11:00-29 14:00 x3 9.00 1.00",
        ],
    );
}

#[test]
fn a_flat_is_cut_by_the_daily_cap() {
    // event-rate-holidays, Thu 2026-12-31: standard 08:00-18:00 10 x 6.00 = 60.00, rule cap
    // 40.00; new-year-concert flat 50.00 at 18:00, day has 40.00 left of 80.00 -> 40.00.
    let fee = quote(
        &tariff(EVENTS),
        SHANGHAI,
        "2026-12-31 08:00",
        "2026-12-31 19:00",
    );
    assert_fee(
        &fee,
        "80.00",
        &[
            "standard 31 08:00-31 18:00 x10 60.00 40.00",
            "new-year-concert 31 18:00-31 19:00 x1 50.00 40.00",
        ],
    );
}

#[test]
fn night_cap_of_the_spec_tariff() {
    // night 21:00-07:00 (10 h): 5 x 1.00 = 5.00, exactly the cap; a 12 h stay to 09:00
    // adds day 07:00-09:00 at elapsed >= 60: 8 x 3.75 = 30.00. Calendar day: Tue 21:00,
    // 23:00 = 2.00; Wed 3.00 + 30.00. Total 35.00.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-09-29 21:00",
        "2026-09-30 09:00",
    );
    assert_fee(
        &fee,
        "35.00",
        &[
            "night 29 21:00-30 07:00 x5 5.00 5.00",
            "day 30 07:00-30 09:00 x8 30.00 30.00",
        ],
    );
}
