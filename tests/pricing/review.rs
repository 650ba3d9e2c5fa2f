//! Independent review of the engine against the shared spec (tariff.md v1), written from
//! the spec text without the engine's or the reference model's reading of it. Each case
//! carries its hand computation. Dates: 2026-09-29 Tue, 10-02 Fri, 10-03 Sat, 10-04 Sun;
//! 2026-03-29 and 2026-11-01 are the Berlin spring and New York fall-back Sundays.
//! Times are local (Asia/Shanghai unless said otherwise).

use chrono_tz::Tz;
use qrpark::domain::tariff::{Tariff, price};

use crate::support::*;

const SAO_PAULO: Tz = chrono_tz::America::Sao_Paulo;

// ---- grace ------------------------------------------------------------------------------

#[test]
fn zero_length_with_default_grace_has_one_grace_line() {
    // Spec §2: "If `end - start` <= `grace_minutes` minutes, the fee is 0 (one breakdown
    // line names the grace)." grace_minutes defaults to 0; end - start = 0 <= 0, so the
    // fee is 0 with exactly one grace line from 10:00 to 10:00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[{"name":"all","price":{"every_minutes":60,"amount":"3.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00", "2026-09-29 10:00");
    assert_fee(&fee, "0.00", &["grace 29 10:00-29 10:00 x0 0.00 0.00"]);
    assert!(fee.lines[0].grace);
}

#[test]
fn one_second_with_zero_grace_pays_a_whole_increment() {
    // grace 0: 1 s > 0 min, so charged from the start: one 60-min increment at 10:00:00,
    // running past the end, charged whole: 3.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[{"name":"all","price":{"every_minutes":60,"amount":"3.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00:00", "2026-09-29 10:00:01");
    assert_fee(&fee, "3.00", &["all 29 10:00-29 10:00 x1 3.00 3.00"]);
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

// ---- windows and occurrences -------------------------------------------------------------

const FRI_NIGHT: &str = r#"{"currency":"CNY","rules":[
    {"name":"fri-night","days":["fri"],"from":"22:00","to":"02:00",
     "price":{"every_minutes":60,"amount":"5.00"}},
    {"name":"all","price":{"every_minutes":60,"amount":"1.00"}}]}"#;

#[test]
fn a_days_window_runs_into_a_day_not_in_days() {
    // §3: the occurrence of accepted date D (Fri 10-02) runs from D 22:00 to D+1 02:00,
    // although Saturday is not in `days`.
    // all (Fri's) 21:00-22:00: 1 x 1.00; fri-night 22:00-02:00: 4 x 5.00 = 20.00;
    // all (Sat's) 02:00-03:00: 1 x 1.00. Total 22.00.
    let t = tariff(FRI_NIGHT);
    let fee = quote(&t, SHANGHAI, "2026-10-02 21:00", "2026-10-03 03:00");
    assert_fee(
        &fee,
        "22.00",
        &[
            "all 02 21:00-02 22:00 x1 1.00 1.00",
            "fri-night 02 22:00-03 02:00 x4 20.00 20.00",
            "all 03 02:00-03 03:00 x1 1.00 1.00",
        ],
    );
}

#[test]
fn a_session_starting_on_the_unlisted_day_still_meets_the_previous_occurrence() {
    // Sat 01:00-03:00: Sat is not in `days`, but Friday's occurrence (to Sat 02:00)
    // contains 01:00: fri-night 01:00-02:00 1 x 5.00; all 02:00-03:00 1 x 1.00. 6.00.
    // Sat 22:00 - Sun 01:00: Saturday's date is not accepted, no occurrence: all (Sat)
    // 22:00-00:00 2 x 1.00, all (Sun) 00:00-01:00 1 x 1.00. 3.00.
    let t = tariff(FRI_NIGHT);
    let fee = quote(&t, SHANGHAI, "2026-10-03 01:00", "2026-10-03 03:00");
    assert_fee(
        &fee,
        "6.00",
        &[
            "fri-night 03 01:00-03 02:00 x1 5.00 5.00",
            "all 03 02:00-03 03:00 x1 1.00 1.00",
        ],
    );
    let fee = quote(&t, SHANGHAI, "2026-10-03 22:00", "2026-10-04 01:00");
    assert_fee(
        &fee,
        "3.00",
        &[
            "all 03 22:00-04 00:00 x2 2.00 2.00",
            "all 04 00:00-04 01:00 x1 1.00 1.00",
        ],
    );
}

#[test]
fn days_and_dates_both_given_across_midnight() {
    // event: days [sat], dates [10-03 Sat, 10-04 Sun], 20:00-02:00, flat 10.00. Only
    // 10-03 passes both filters; 10-04 (a Sunday) fails `days`, so no Sun 20:00 occurrence.
    // all (Sat) 19:00-20:00 1.00; event Sat 20:00 - Sun 02:00 flat 10.00;
    // all (Sun) 02:00-00:00 22 x 1.00; all (Mon) 00:00-01:00 1.00. Total 34.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[
            {"name":"event","days":["sat"],"dates":["2026-10-03","2026-10-04"],
             "from":"20:00","to":"02:00","price":{"flat":"10.00"}},
            {"name":"all","price":{"every_minutes":60,"amount":"1.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-10-03 19:00", "2026-10-05 01:00");
    assert_fee(
        &fee,
        "34.00",
        &[
            "all 03 19:00-03 20:00 x1 1.00 1.00",
            "event 03 20:00-04 02:00 x1 10.00 10.00",
            "all 04 02:00-05 00:00 x22 22.00 22.00",
            "all 05 00:00-05 01:00 x1 1.00 1.00",
        ],
    );
}

#[test]
fn explicit_00_00_to_00_00_is_the_whole_day() {
    // to == from: a 24-hour window D 00:00 - D+1 00:00, i.e. one occurrence per date, so
    // the segment and the increments restart at midnight: 23:00 1 x 2.00, 00:00 1 x 2.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[{"name":"d","from":"00:00","to":"00:00",
            "price":{"every_minutes":60,"amount":"2.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 23:00", "2026-09-30 01:00");
    assert_fee(
        &fee,
        "4.00",
        &[
            "d 29 23:00-30 00:00 x1 2.00 2.00",
            "d 30 00:00-30 01:00 x1 2.00 2.00",
        ],
    );
}

#[test]
fn only_from_or_only_to_default_the_other_end() {
    // late: from 22:00, to defaults to 24:00 (22:00-00:00, not crossing); early: to 06:00,
    // from defaults to 00:00. 21:00-22:00 and 06:00-07:00 uncovered: no line.
    // late 22:00-00:00 2 x 3.00 = 6.00; early 00:00-06:00 6 x 2.00 = 12.00. Total 18.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[
            {"name":"late","from":"22:00","price":{"every_minutes":60,"amount":"3.00"}},
            {"name":"early","to":"06:00","price":{"every_minutes":60,"amount":"2.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 21:00", "2026-09-30 07:00");
    assert_fee(
        &fee,
        "18.00",
        &[
            "late 29 22:00-30 00:00 x2 6.00 6.00",
            "early 30 00:00-30 06:00 x6 12.00 12.00",
        ],
    );
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

// ---- daylight saving --------------------------------------------------------------------

const HOURLY_EUR: &str = r#"{"name":"all","price":{"every_minutes":60,"amount":"1.00"}}"#;

#[test]
fn a_window_wholly_inside_the_gap_is_empty_and_makes_no_line() {
    // gap 02:00-03:00 on 03-29: both ends map to the first instant after the gap, 03:00
    // CEST (01:00Z); the occurrence contains no instant. all covers 01:00 CET (00:00Z) -
    // 04:00 CEST (02:00Z) in one segment: 2 real hours, 2 x 1.00.
    let t = tariff(&format!(
        r#"{{"currency":"EUR","rules":[
            {{"name":"gap","from":"02:00","to":"03:00","price":{{"flat":"5.00"}}}},
            {HOURLY_EUR}]}}"#
    ));
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

// ---- precedence, segments, flats --------------------------------------------------------

#[test]
fn a_flat_occurrence_that_ends_under_a_higher_rule_is_followed_by_a_new_one() {
    // day-ticket (no window, flat 10.00) is interrupted by night 22:00-02:00. Tuesday's
    // occurrence ends at midnight while night applies; at 02:00 Wednesday's occurrence
    // applies for the first time: a new flat. 10.00 + 4 x 1.00 + 10.00 = 24.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[
            {"name":"night","from":"22:00","to":"02:00","price":{"every_minutes":60,"amount":"1.00"}},
            {"name":"day-ticket","price":{"flat":"10.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 21:00", "2026-09-30 03:00");
    assert_fee(
        &fee,
        "24.00",
        &[
            "day-ticket 29 21:00-29 22:00 x1 10.00 10.00",
            "night 29 22:00-30 02:00 x4 4.00 4.00",
            "day-ticket 30 02:00-30 03:00 x1 10.00 10.00",
        ],
    );
}

#[test]
fn a_free_higher_rule_starting_mid_segment_splits_it() {
    // quiet 12:00-13:00 free, listed first. all 11:30-12:00: 1 x 2.00 (charged whole);
    // quiet 12:00-13:00: a zero line; all 13:00-13:30: increments restart, 1 x 2.00. 4.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[
            {"name":"quiet","from":"12:00","to":"13:00","price":{"free":true}},
            {"name":"all","price":{"every_minutes":60,"amount":"2.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 11:30", "2026-09-29 13:30");
    assert_fee(
        &fee,
        "4.00",
        &[
            "all 29 11:30-29 12:00 x1 2.00 2.00",
            "quiet 29 12:00-29 13:00 x0 0.00 0.00",
            "all 29 13:00-29 13:30 x1 2.00 2.00",
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

// ---- caps -------------------------------------------------------------------------------

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

// ---- validation -------------------------------------------------------------------------

fn problem_paths(json: &str) -> Vec<String> {
    let err = Tariff::from_json_str(json).expect_err("should be rejected");
    let mut p: Vec<String> = err.problems.iter().map(|p| p.path.clone()).collect();
    p.sort();
    p
}

#[test]
fn everything_the_spec_allows_is_accepted() {
    // `to` 24:00, `from` 00:00, `to` 00:00, days + dates together, grace 0, a lone last
    // step, a zero amount, KWD with 3 decimals, fewer decimals than allowed.
    for doc in [
        r#"{"currency":"CNY","grace_minutes":0,"rules":[
            {"name":"a","from":"00:00","to":"24:00","price":{"free":true}},
            {"name":"b","to":"00:00","price":{"flat":"0"}},
            {"name":"c","days":["sat"],"dates":["2026-10-03"],"price":{"flat":"2.5"}},
            {"name":"d","price":{"steps":[{"every_minutes":1,"amount":"0.01"}]}}]}"#,
        r#"{"currency":"KWD","daily_cap":{"amount":"1.000","period":"rolling_24h"},
            "rules":[{"name":"k","price":{"every_minutes":60,"amount":"0.125"},"cap":"0.5"}]}"#,
        r#"{"currency":"JPY","rules":[{"name":"j","price":{"flat":"1200"}}]}"#,
    ] {
        tariff(doc);
    }
}

#[test]
fn rejections_name_their_json_paths() {
    // Amount decimals are counted as written: "2.500" has 3 > 2 (CNY); "1.0" has 1 > 0
    // (JPY). A JSON number is rejected wherever an amount goes, including the daily cap.
    assert_eq!(
        problem_paths(
            r#"{"currency":"CNY","daily_cap":{"amount":60,"period":"calendar_day"},"rules":[
                {"name":"a","price":{"steps":[{"until_minute":60,"every_minutes":15,"amount":"2.500"},
                  {"every_minutes":15,"amount":"1"}]},"cap":"-0.01"},
                {"name":"b","days":["Tue"],"from":"7:00","to":"24:01","price":{"flat":"1"}}]}"#
        ),
        [
            "$.daily_cap.amount",
            "$.rules[0].cap",
            "$.rules[0].price.steps[0].amount",
            "$.rules[1].days[0]",
            "$.rules[1].from",
            "$.rules[1].to",
        ]
    );
    assert_eq!(
        problem_paths(
            r#"{"currency":"JPY","rules":[{"name":"j","price":{"every_minutes":0,"amount":"1.0"}}]}"#
        ),
        ["$.rules[0].price.amount", "$.rules[0].price.every_minutes"]
    );
}
