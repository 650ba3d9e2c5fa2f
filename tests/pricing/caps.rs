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
fn the_rule_cap_resets_with_each_date_of_a_windowless_rule() {
    // all 3.00/h, cap 5.00 per occurrence = per local date. Tue 22:00, 23:00: 6.00 -> 5.00;
    // Wed 00:00, 01:00: 6.00 -> 5.00. Total 10.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[{"name":"all","price":{"every_minutes":60,"amount":"3.00"},
            "cap":"5.00"}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 22:00", "2026-09-30 02:00");
    assert_fee(
        &fee,
        "10.00",
        &[
            "all 29 22:00-30 00:00 x2 6.00 5.00",
            "all 30 00:00-30 02:00 x2 6.00 5.00",
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

#[test]
fn an_increment_starting_before_midnight_counts_wholly_to_its_first_day() {
    // calendar_day cap 15.00. eve 20:00-23:00 4.00/h: 20:00, 21:00, 22:00 -> Tue 12.00.
    // night 23:00-06:00, 180-min increments: 23:00 (Tue; runs to 02:00 Wed but its first
    // instant is Tue): 10.00 cut to 3.00 (Tue full); 02:00 (Wed) 10.00; 05:00 (Wed) 10.00
    // cut to 5.00. night: amount 30.00, charged 18.00. Total 30.00.
    let t = tariff(
        r#"{"currency":"CNY","daily_cap":{"amount":"15.00","period":"calendar_day"},"rules":[
            {"name":"eve","from":"20:00","to":"23:00","price":{"every_minutes":60,"amount":"4.00"}},
            {"name":"night","from":"23:00","to":"06:00","price":{"every_minutes":180,"amount":"10.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 20:00", "2026-09-30 06:00");
    assert_fee(
        &fee,
        "30.00",
        &[
            "eve 29 20:00-29 23:00 x3 12.00 12.00",
            "night 29 23:00-30 06:00 x3 30.00 18.00",
        ],
    );
}

#[test]
fn a_rolling_period_boundary_inside_a_segment() {
    // rolling_24h cap 20.00 from Tue 10:00. all (no window) 90-min increments at 5.00.
    // Tue 10:00-00:00 (14 h): increments 10:00 + 1.5 h k for k = 0..9 (23:30 runs past
    // midnight, charged whole): 10 x 5.00 = 50.00; period 1 allows 20.00.
    // Wed 00:00-12:00: increments restart: 00:00, 01:30, ..., 09:00 (7, still period 1:
    // 0) and 10:30 (period 2 from Wed 10:00: 5.00): amount 40.00, charged 5.00.
    // Total 25.00.
    let t = tariff(
        r#"{"currency":"CNY","daily_cap":{"amount":"20.00","period":"rolling_24h"},"rules":[
            {"name":"all","price":{"every_minutes":90,"amount":"5.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00", "2026-09-30 12:00");
    assert_fee(
        &fee,
        "25.00",
        &[
            "all 29 10:00-30 00:00 x10 50.00 20.00",
            "all 30 00:00-30 12:00 x8 40.00 5.00",
        ],
    );
}

#[test]
fn a_flat_counts_to_the_period_of_its_first_segment_not_of_its_occurrence_date() {
    // calendar_day cap 12.00. early 22:00-01:00 at 5.00/h listed first; nightflat
    // 22:00-04:00 flat 8.00. Tue 22:00, 23:00: 10.00 (Tue). Wed 00:00: 5.00 (Wed 5.00).
    // nightflat (Tuesday's occurrence) first applies at Wed 01:00: the flat's first
    // instant is Wed, which has 7.00 left: 8.00 -> 7.00. Total 22.00.
    let t = tariff(
        r#"{"currency":"CNY","daily_cap":{"amount":"12.00","period":"calendar_day"},"rules":[
            {"name":"early","from":"22:00","to":"01:00","price":{"every_minutes":60,"amount":"5.00"}},
            {"name":"nightflat","from":"22:00","to":"04:00","price":{"flat":"8.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 22:00", "2026-09-30 03:00");
    assert_fee(
        &fee,
        "22.00",
        &[
            "early 29 22:00-30 01:00 x3 15.00 15.00",
            "nightflat 30 01:00-30 03:00 x1 8.00 7.00",
        ],
    );
}
