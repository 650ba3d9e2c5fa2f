//! Daylight-saving time: Europe/Berlin (2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 ->
//! 02:00), America/New_York (2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00) and
//! America/Sao_Paulo (2018-11-04 00:00 -> 01:00, a gap at local midnight).
//! Durations are real elapsed time; a time in the gap is the first instant after it; a
//! repeated time is the earlier instant.

use qrpark::domain::tariff::price;

use crate::support::*;

const HOURLY_EUR: &str = r#"{"currency":"EUR","rules":[
    {"name":"all","price":{"every_minutes":60,"amount":"1.00"}}]}"#;

fn rfc(fee: &qrpark::domain::tariff::Fee) -> Vec<(String, String)> {
    fee.lines
        .iter()
        .map(|l| (l.from.to_rfc3339(), l.to.to_rfc3339()))
        .collect()
}

#[test]
fn spring_forward_night_is_an_hour_shorter() {
    // Sat 23:00 CET (22:00Z) - Sun 05:00 CEST (03:00Z) = 5 real hours.
    // Sat 23:00-00:00: 1 x 1.00; Sun 00:00-05:00 local is 4 real hours: 4 x 1.00.
    let fee = quote(
        &tariff(HOURLY_EUR),
        BERLIN,
        "2026-03-28 23:00",
        "2026-03-29 05:00",
    );
    assert_fee(
        &fee,
        "5.00",
        &[
            "all 28 23:00-29 00:00 x1 1.00 1.00",
            "all 29 00:00-29 05:00 x4 4.00 4.00",
        ],
    );
    assert_eq!(rfc(&fee)[1].1, "2026-03-29T05:00:00+02:00");
}

#[test]
fn fall_back_night_is_an_hour_longer() {
    // Sat 23:00 CEST (21:00Z) - Sun 05:00 CET (04:00Z) = 7 real hours: 1 + 6 increments.
    let fee = quote(
        &tariff(HOURLY_EUR),
        BERLIN,
        "2026-10-24 23:00",
        "2026-10-25 05:00",
    );
    assert_fee(
        &fee,
        "7.00",
        &[
            "all 24 23:00-25 00:00 x1 1.00 1.00",
            "all 25 00:00-25 05:00 x6 6.00 6.00",
        ],
    );
    assert_eq!(
        rfc(&fee)[1],
        (
            "2026-10-25T00:00:00+02:00".into(),
            "2026-10-25T05:00:00+01:00".into()
        )
    );
}

#[test]
fn the_23_hour_calendar_day_is_one_cap_period() {
    // Sun 2026-03-29 00:00 - Mon 00:00 is 23 real hours: 23 x 1.00, daily cap 20.00.
    let doc = HOURLY_EUR.replace(
        r#""rules""#,
        r#""daily_cap":{"amount":"20.00","period":"calendar_day"},"rules""#,
    );
    let fee = quote(
        &tariff(&doc),
        BERLIN,
        "2026-03-29 00:00",
        "2026-03-30 00:00",
    );
    assert_fee(&fee, "20.00", &["all 29 00:00-30 00:00 x23 23.00 20.00"]);
}

#[test]
fn the_25_hour_calendar_day_is_one_cap_period() {
    // Sun 2026-10-25 00:00 - Mon 00:00 is 25 real hours: 25 x 1.00, one period: 20.00.
    let doc = HOURLY_EUR.replace(
        r#""rules""#,
        r#""daily_cap":{"amount":"20.00","period":"calendar_day"},"rules""#,
    );
    let fee = quote(
        &tariff(&doc),
        BERLIN,
        "2026-10-25 00:00",
        "2026-10-26 00:00",
    );
    assert_fee(&fee, "20.00", &["all 25 00:00-26 00:00 x25 25.00 20.00"]);
}

#[test]
fn rolling_periods_are_24_real_hours_across_fall_back() {
    // Same 25 h with rolling_24h: increments 0..23 fall in period 1 (24.00 -> 20.00);
    // the 25th starts at 24 h (Sun 23:00 CET), period 2: 1.00. Total 21.00.
    let doc = HOURLY_EUR.replace(
        r#""rules""#,
        r#""daily_cap":{"amount":"20.00","period":"rolling_24h"},"rules""#,
    );
    let fee = quote(
        &tariff(&doc),
        BERLIN,
        "2026-10-25 00:00",
        "2026-10-26 00:00",
    );
    assert_fee(&fee, "21.00", &["all 25 00:00-26 00:00 x25 25.00 21.00"]);
}

#[test]
fn a_window_starting_in_the_gap_starts_after_it() {
    // early 02:30-06:00 on 2026-03-29: 02:30 does not exist, so it starts at 03:00 CEST
    // (01:00Z) and ends 06:00 CEST (04:00Z): 3 h = 6 x 1.00.
    let t = tariff(
        r#"{"currency":"EUR","rules":[{"name":"early","from":"02:30","to":"06:00",
            "price":{"every_minutes":30,"amount":"1.00"}}]}"#,
    );
    let fee = quote(&t, BERLIN, "2026-03-29 00:00", "2026-03-29 07:00");
    assert_fee(&fee, "6.00", &["early 29 03:00-29 06:00 x6 6.00 6.00"]);
    assert_eq!(rfc(&fee)[0].0, "2026-03-29T03:00:00+02:00");
}

#[test]
fn a_window_starting_in_the_repeated_hour_takes_the_earlier_instant() {
    // late 02:30-05:00 on 2026-10-25: 02:30 occurs twice; the earlier is 02:30 CEST
    // (00:30Z). 05:00 CET is 04:00Z: 3.5 real hours = 7 x 1.00.
    let t = tariff(
        r#"{"currency":"EUR","rules":[{"name":"late","from":"02:30","to":"05:00",
            "price":{"every_minutes":30,"amount":"1.00"}}]}"#,
    );
    let fee = quote(&t, BERLIN, "2026-10-25 00:00", "2026-10-25 06:00");
    assert_fee(&fee, "7.00", &["late 25 02:30-25 05:00 x7 7.00 7.00"]);
    assert_eq!(
        rfc(&fee)[0],
        (
            "2026-10-25T02:30:00+02:00".into(),
            "2026-10-25T05:00:00+01:00".into()
        )
    );
}

#[test]
fn a_window_ending_in_the_repeated_hour_ends_at_the_earlier_instant() {
    // early-close 00:00-02:30 on 2026-10-25: 00:00 CEST (22:00Z) to 02:30 CEST (00:30Z),
    // 2.5 h = 5 x 1.00; the rest of the session is uncovered.
    let t = tariff(
        r#"{"currency":"EUR","rules":[{"name":"early-close","from":"00:00","to":"02:30",
            "price":{"every_minutes":30,"amount":"1.00"}}]}"#,
    );
    let fee = quote(&t, BERLIN, "2026-10-25 00:00", "2026-10-25 04:00");
    assert_fee(
        &fee,
        "5.00",
        &["early-close 25 00:00-25 02:30 x5 5.00 5.00"],
    );
    assert_eq!(rfc(&fee)[0].1, "2026-10-25T02:30:00+02:00");
}

#[test]
fn berlin_meter_across_the_spring_weekend() {
    // berlin-meter-zone Sat 2026-03-28 19:00 - Mon 03-30 09:00: meter Sat 19:00-20:00
    // 4 x 0.75 = 3.00 (+01:00); Sunday free; Mon 08:00-09:00 4 x 0.75 = 3.00 (+02:00).
    let fee = quote(
        &tariff(BERLIN_METER),
        BERLIN,
        "2026-03-28 19:00",
        "2026-03-30 09:00",
    );
    assert_fee(
        &fee,
        "6.00",
        &[
            "meter 28 19:00-28 20:00 x4 3.00 3.00",
            "meter 30 08:00-30 09:00 x4 3.00 3.00",
        ],
    );
    assert_eq!(rfc(&fee)[0].0, "2026-03-28T19:00:00+01:00");
    assert_eq!(rfc(&fee)[1].0, "2026-03-30T08:00:00+02:00");
}

const OVERNIGHT_USD: &str = r#"{"currency":"USD","rules":[{"name":"overnight",
    "from":"22:00","to":"06:00","price":{"every_minutes":60,"amount":"2.00"}}]}"#;

#[test]
fn new_york_spring_forward_overnight() {
    // Sat 2026-03-07 22:00 EST (03:00Z) - Sun 06:00 EDT (10:00Z): 7 h = 7 x 2.00.
    let fee = quote(
        &tariff(OVERNIGHT_USD),
        NEW_YORK,
        "2026-03-07 22:00",
        "2026-03-08 06:00",
    );
    assert_fee(
        &fee,
        "14.00",
        &["overnight 07 22:00-08 06:00 x7 14.00 14.00"],
    );
    assert_eq!(rfc(&fee)[0].1, "2026-03-08T06:00:00-04:00");
}

#[test]
fn new_york_fall_back_overnight() {
    // Sat 2026-10-31 22:00 EDT (02:00Z) - Sun 06:00 EST (11:00Z): 9 h = 9 x 2.00.
    let fee = quote(
        &tariff(OVERNIGHT_USD),
        NEW_YORK,
        "2026-10-31 22:00",
        "2026-11-01 06:00",
    );
    assert_fee(
        &fee,
        "18.00",
        &["overnight 31 22:00-01 06:00 x9 18.00 18.00"],
    );
}

#[test]
fn a_session_starting_in_the_second_pass_of_the_repeated_hour() {
    // 01:30 EST (06:30Z, the later 01:30) - 03:00 EST (08:00Z): 1.5 h = 2 x 1.00, and
    // the line shows the real offset.
    let t = tariff(
        r#"{"currency":"USD","rules":[{"name":"all","price":{"every_minutes":60,"amount":"1.00"}}]}"#,
    );
    let fee = price(
        &t,
        NEW_YORK,
        instant("2026-11-01T01:30:00-05:00"),
        instant("2026-11-01T03:00:00-05:00"),
    )
    .unwrap();
    assert_fee(&fee, "2.00", &["all 01 01:30-01 03:00 x2 2.00 2.00"]);
    assert_eq!(rfc(&fee)[0].0, "2026-11-01T01:30:00-05:00");
}

#[test]
fn a_flat_window_starting_in_the_new_york_gap() {
    // early-bird 02:15-04:00 on 2026-03-08: starts at 03:00 EDT (07:00Z), ends 04:00 EDT.
    let t = tariff(
        r#"{"currency":"USD","rules":[{"name":"early-bird","from":"02:15","to":"04:00",
            "price":{"flat":"5.00"}}]}"#,
    );
    let fee = quote(&t, NEW_YORK, "2026-03-08 01:00", "2026-03-08 05:00");
    assert_fee(&fee, "5.00", &["early-bird 08 03:00-08 04:00 x1 5.00 5.00"]);
    assert_eq!(rfc(&fee)[0].0, "2026-03-08T03:00:00-04:00");
}

#[test]
fn grace_counts_real_time_across_the_spring_gap() {
    // Berlin, grace 60. 01:30 CET (00:30Z) - 03:30 CEST (01:30Z) is 60 real minutes
    // (2 h on the wall clock): 60 <= 60, free. To 03:31 CEST: 61 min > 60, charged from
    // the start: one all-day occurrence (03-29), 60-min increments at 00:30Z and 01:30Z:
    // 2 x 1.00 = 2.00.
    let t = tariff(
        r#"{"currency":"EUR","grace_minutes":60,"rules":[
            {"name":"all","price":{"every_minutes":60,"amount":"1.00"}}]}"#,
    );
    let fee = quote(&t, BERLIN, "2026-03-29 01:30", "2026-03-29 03:30");
    assert_fee(&fee, "0.00", &["grace 29 01:30-29 03:30 x0 0.00 0.00"]);
    let fee = quote(&t, BERLIN, "2026-03-29 01:30", "2026-03-29 03:31");
    assert_fee(&fee, "2.00", &["all 29 01:30-29 03:31 x2 2.00 2.00"]);
}

#[test]
fn a_to_equal_from_window_over_the_spring_gap_is_23_real_hours() {
    // Berlin noon 12:00-12:00: Sat 03-28 12:00 CET (11:00Z) - Sun 03-29 12:00 CEST (10:00Z)
    // = 23 real hours: 23 x 1.00 in one segment.
    let t = tariff(
        r#"{"currency":"EUR","rules":[{"name":"noon","from":"12:00","to":"12:00",
            "price":{"every_minutes":60,"amount":"1.00"}}]}"#,
    );
    let fee = quote(&t, BERLIN, "2026-03-28 12:00", "2026-03-29 12:00");
    assert_fee(&fee, "23.00", &["noon 28 12:00-29 12:00 x23 23.00 23.00"]);
}

#[test]
fn a_window_wholly_inside_the_gap_is_empty_and_makes_no_line() {
    // gap 02:00-03:00 on 03-29: both ends map to the first instant after the gap, 03:00
    // CEST (01:00Z); the occurrence contains no instant. all covers 01:00 CET (00:00Z) -
    // 04:00 CEST (02:00Z) in one segment: 2 real hours, 2 x 1.00.
    let t = tariff(
        r#"{"currency":"EUR","rules":[
            {"name":"gap","from":"02:00","to":"03:00","price":{"flat":"5.00"}},
            {"name":"all","price":{"every_minutes":60,"amount":"1.00"}}]}"#,
    );
    let fee = quote(&t, BERLIN, "2026-03-29 01:00", "2026-03-29 04:00");
    assert_fee(&fee, "2.00", &["all 29 01:00-29 04:00 x2 2.00 2.00"]);
}

#[test]
fn a_window_ending_in_the_gap_ends_after_it() {
    // early 00:00-02:30: 02:30 is in the gap, so it ends at 03:00 CEST (01:00Z); from
    // 00:00 CET (23:00Z) that is 2 h: 4 x 1.00. late 02:30-06:00 starts at 03:00 CEST:
    // 03:00-05:00 CEST = 2 h: 4 x 2.00. Total 12.00.
    let t = tariff(
        r#"{"currency":"EUR","rules":[
            {"name":"early","from":"00:00","to":"02:30","price":{"every_minutes":30,"amount":"1.00"}},
            {"name":"late","from":"02:30","to":"06:00","price":{"every_minutes":30,"amount":"2.00"}}]}"#,
    );
    let fee = quote(&t, BERLIN, "2026-03-29 00:00", "2026-03-29 05:00");
    assert_fee(
        &fee,
        "12.00",
        &[
            "early 29 00:00-29 03:00 x4 4.00 4.00",
            "late 29 03:00-29 05:00 x4 8.00 8.00",
        ],
    );
}

#[test]
fn steps_follow_real_elapsed_time_across_the_gap() {
    // Steps: until 120 every 60 at 1.00, then every 60 at 3.00. Berlin 01:00 CET (00:00Z)
    // - 05:00 CEST (03:00Z) = 3 real hours in one occurrence. Increments at elapsed 0
    // (1.00), 60 (1.00), 120 (120 > 120 is false: second step, 3.00). Total 5.00.
    let t = tariff(
        r#"{"currency":"EUR","rules":[{"name":"all","price":{"steps":[
            {"until_minute":120,"every_minutes":60,"amount":"1.00"},
            {"every_minutes":60,"amount":"3.00"}]}}]}"#,
    );
    let fee = quote(&t, BERLIN, "2026-03-29 01:00", "2026-03-29 05:00");
    assert_fee(&fee, "5.00", &["all 29 01:00-29 05:00 x3 5.00 5.00"]);
}

const NY_LATE: &str = r#"{"currency":"USD","rules":[
    {"name":"late","from":"01:30","to":"03:00","price":{"every_minutes":30,"amount":"1.00"}},
    {"name":"early","from":"00:00","to":"01:30","price":{"every_minutes":30,"amount":"7.00"}},
    {"name":"all","price":{"every_minutes":60,"amount":"5.00"}}]}"#;

#[test]
fn the_second_pass_of_the_repeated_hour_is_inside_a_window_that_began_in_the_first() {
    // New York 11-01: late starts at the earlier 01:30 (EDT, 05:30Z) and ends 03:00 EST
    // (08:00Z). early ends at the earlier 01:30 (05:30Z). The session 01:15 EST (06:15Z) -
    // 02:15 EST (07:15Z) lies wholly in late's occurrence although 01:15 < 01:30 on the
    // wall: 30-min increments at 06:15Z, 06:45Z: 2 x 1.00.
    let t = tariff(NY_LATE);
    let fee = price(
        &t,
        NEW_YORK,
        instant("2026-11-01T01:15:00-05:00"),
        instant("2026-11-01T02:15:00-05:00"),
    )
    .unwrap();
    assert_fee(&fee, "2.00", &["late 01 01:15-01 02:15 x2 2.00 2.00"]);
}

#[test]
fn a_session_in_the_first_pass_meets_early_then_late() {
    // 01:00 EDT (05:00Z) - 01:00 EST (06:00Z): early 05:00Z-05:30Z 1 x 7.00; late
    // 05:30Z-06:00Z 1 x 1.00. Total 8.00.
    let t = tariff(NY_LATE);
    let fee = price(
        &t,
        NEW_YORK,
        instant("2026-11-01T01:00:00-04:00"),
        instant("2026-11-01T01:00:00-05:00"),
    )
    .unwrap();
    assert_fee(
        &fee,
        "8.00",
        &[
            "early 01 01:00-01 01:30 x1 7.00 7.00",
            "late 01 01:30-01 01:00 x1 1.00 1.00",
        ],
    );
}

#[test]
fn a_calendar_day_cap_on_the_25_hour_new_york_day_with_a_window() {
    // New York 11-01 (25 h). daily cap 10.00 calendar_day. night 20:00 (Sat 10-31, EDT,
    // 00:00Z) - 04:00 (Sun, EST, 09:00Z) = 9 real hours, 2.00/h: 20:00..23:00 EDT = 4
    // increments in Saturday (8.00); 00:00 EDT .. 03:00 EST = 5 increments in Sunday:
    // 10.00, exactly the cap. Total 18.00.
    let t = tariff(
        r#"{"currency":"USD","daily_cap":{"amount":"10.00","period":"calendar_day"},"rules":[
            {"name":"night","from":"20:00","to":"04:00","price":{"every_minutes":60,"amount":"2.00"}}]}"#,
    );
    let fee = quote(&t, NEW_YORK, "2026-10-31 20:00", "2026-11-01 04:00");
    assert_fee(&fee, "18.00", &["night 31 20:00-01 04:00 x9 18.00 18.00"]);
    // The same with a cap of 9.00: Saturday 8.00; Sunday 5 x 2.00 = 10.00 -> 9.00. 17.00.
    let t = tariff(&t.to_json().to_string().replace("10.00", "9.00"));
    let fee = quote(&t, NEW_YORK, "2026-10-31 20:00", "2026-11-01 04:00");
    assert_fee(&fee, "17.00", &["night 31 20:00-01 04:00 x9 18.00 17.00"]);
}

#[test]
fn a_gap_at_local_midnight_moves_the_day_boundary() {
    // Sao Paulo 2018-11-04: 00:00 -> 01:00 (-03 -> -02). Local midnight of 11-04 does not
    // exist: it is the first instant after the gap, 03:00Z (01:00 -02). So Saturday's
    // all-day occurrence and Saturday's calendar day run 22:00 -03 (01:00Z) to 03:00Z:
    // increments at 22:00, 23:00 = 2 x 1.00, daily cap 1.50 -> 1.00 + 0.50.
    // Sunday's occurrence 01:00-02:00 (-02): 1 x 1.00, new day -> 1.00. Total 2.50.
    let t = tariff(
        r#"{"currency":"BRL","daily_cap":{"amount":"1.50","period":"calendar_day"},
            "rules":[{"name":"all","price":{"every_minutes":60,"amount":"1.00"}}]}"#,
    );
    let fee = quote(&t, SAO_PAULO, "2018-11-03 22:00", "2018-11-04 02:00");
    assert_fee(
        &fee,
        "2.50",
        &[
            "all 03 22:00-04 01:00 x2 2.00 1.50",
            "all 04 01:00-04 02:00 x1 1.00 1.00",
        ],
    );
    assert_eq!(fee.lines[1].from.to_rfc3339(), "2018-11-04T01:00:00-02:00");
}
