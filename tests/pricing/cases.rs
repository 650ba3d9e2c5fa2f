//! Hand-worked cases for grace, windows, precedence, segments, flats and steps. Each
//! comment shows the computation; times are local (Asia/Shanghai unless said otherwise).

use qrpark::domain::tariff::{PriceError, price};

use crate::support::*;

// ---- grace ----------------------------------------------------------------------------

#[test]
fn grace_ends_at_exactly_n_minutes() {
    // 15 min 0 s <= 15 min: free.
    let fee = quote(
        &tariff(BEIJING),
        SHANGHAI,
        "2026-09-29 10:00:00",
        "2026-09-29 10:15:00",
    );
    assert_fee(&fee, "0.00", &["grace 29 10:00-29 10:15 x0 0.00 0.00"]);
}

#[test]
fn one_second_past_grace_charges_from_the_start() {
    // 15 min 1 s > 15 min: increments at 10:00 and 10:15 (the second lasts 1 s inside the
    // session and is charged whole): 2 x 2.50 = 5.00.
    let fee = quote(
        &tariff(BEIJING),
        SHANGHAI,
        "2026-09-29 10:00:00",
        "2026-09-29 10:15:01",
    );
    assert_fee(&fee, "5.00", &["day 29 10:00-29 10:15 x2 5.00 5.00"]);
    assert_eq!(fee.lines[0].to.to_rfc3339(), "2026-09-29T10:15:01+08:00");
}

#[test]
fn thirty_minute_grace_boundary() {
    // shanghai-commercial, grace 30. 30 min: free. 31 min: daytime steps from 10:00,
    // elapsed 0 and 30 (< 60): 2 x 5.00 = 10.00.
    let t = tariff(SHANGHAI_COMMERCIAL);
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00", "2026-09-29 10:30");
    assert_fee(&fee, "0.00", &["grace 29 10:00-29 10:30 x0 0.00 0.00"]);
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00", "2026-09-29 10:31");
    assert_fee(&fee, "10.00", &["daytime 29 10:00-29 10:31 x2 10.00 10.00"]);
}

#[test]
fn an_empty_interval_with_grace_is_one_grace_line() {
    // 0 min <= 15 min: the grace line, from == to.
    let fee = quote(
        &tariff(BEIJING),
        SHANGHAI,
        "2026-09-29 10:00",
        "2026-09-29 10:00",
    );
    assert_fee(&fee, "0.00", &["grace 29 10:00-29 10:00 x0 0.00 0.00"]);
}

#[test]
fn an_empty_interval_without_grace_is_within_grace() {
    // berlin-meter-zone has no grace (0): end - start = 0 <= 0 minutes, so step 2 of
    // docs/tariffs.md applies: the fee is 0 and one line names the grace.
    let fee = quote(
        &tariff(BERLIN_METER),
        BERLIN,
        "2026-11-09 10:00",
        "2026-11-09 10:00",
    );
    assert_fee(&fee, "0.00", &["grace 09 10:00-09 10:00 x0 0.00 0.00"]);
}

/// 3.00 per started hour, all day, and no `grace_minutes`: the default, 0.
const HOURLY_NO_GRACE: &str =
    r#"{"currency":"CNY","rules":[{"name":"all","price":{"every_minutes":60,"amount":"3.00"}}]}"#;

#[test]
fn zero_length_with_default_grace_has_one_grace_line() {
    // docs/tariffs.md, step 2: a session lasting at most `grace_minutes` costs 0, with one
    // line naming the grace. grace_minutes defaults to 0; end - start = 0 <= 0, so the
    // fee is 0 with exactly one grace line from 10:00 to 10:00.
    let t = tariff(HOURLY_NO_GRACE);
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00", "2026-09-29 10:00");
    assert_fee(&fee, "0.00", &["grace 29 10:00-29 10:00 x0 0.00 0.00"]);
    assert!(fee.lines[0].grace);
}

#[test]
fn one_second_with_zero_grace_pays_a_whole_increment() {
    // grace 0: 1 s > 0 min, so charged from the start: one 60-min increment at 10:00:00,
    // running past the end, charged whole: 3.00.
    let t = tariff(HOURLY_NO_GRACE);
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00:00", "2026-09-29 10:00:01");
    assert_fee(&fee, "3.00", &["all 29 10:00-29 10:00 x1 3.00 3.00"]);
}

#[test]
fn end_before_start_is_an_error() {
    let t = tariff(BEIJING);
    let start = local(SHANGHAI, "2026-09-29 10:00");
    let end = local(SHANGHAI, "2026-09-29 09:59");
    assert!(matches!(
        price(&t, SHANGHAI, start, end),
        Err(PriceError::EndBeforeStart { .. })
    ));
}

// ---- windows ----------------------------------------------------------------------------

#[test]
fn a_window_crossing_midnight_is_one_occurrence() {
    // night (Tue's occurrence 21:00 Tue - 07:00 Wed) covers 22:00-02:00: one segment,
    // 120-min increments at 22:00 and 00:00: 2 x 1.00.
    let fee = quote(
        &tariff(BEIJING),
        SHANGHAI,
        "2026-09-29 22:00",
        "2026-09-30 02:00",
    );
    assert_fee(&fee, "2.00", &["night 29 22:00-30 02:00 x2 2.00 2.00"]);
}

#[test]
fn overnight_then_morning_uses_the_elapsed_step() {
    // night 23:00-07:00: 8 h = 4 x 1.00 = 4.00 (cap 5.00 not reached).
    // day 07:00-08:00: elapsed 480 min >= 60, second step: 4 x 3.75 = 15.00. Total 19.00.
    let fee = quote(
        &tariff(BEIJING),
        SHANGHAI,
        "2026-09-29 23:00",
        "2026-09-30 08:00",
    );
    assert_fee(
        &fee,
        "19.00",
        &[
            "night 29 23:00-30 07:00 x4 4.00 4.00",
            "day 30 07:00-30 08:00 x4 15.00 15.00",
        ],
    );
}

#[test]
fn to_24_00_ends_at_the_next_midnight() {
    // evening 18:00-24:00 covers 23:30-00:00: one 60-min increment, 2.00. After midnight
    // no rule applies: free, no line.
    let t = tariff(
        r#"{"currency":"CNY","rules":[
            {"name":"evening","from":"18:00","to":"24:00",
             "price":{"every_minutes":60,"amount":"2.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 23:30", "2026-09-30 00:30");
    assert_fee(&fee, "2.00", &["evening 29 23:30-30 00:00 x1 2.00 2.00"]);
    assert_eq!(fee.lines[0].to.to_rfc3339(), "2026-09-30T00:00:00+08:00");
}

#[test]
fn to_equal_to_from_is_a_24_hour_window() {
    // noon-ticket 12:00-12:00: each occurrence runs from noon to the next noon.
    // Tue 10:00-Wed 14:00 meets Mon's (until Tue 12:00), Tue's and Wed's occurrences:
    // three flats of 8.00 = 24.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[
            {"name":"noon-ticket","from":"12:00","to":"12:00","price":{"flat":"8.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00", "2026-09-30 14:00");
    assert_fee(
        &fee,
        "24.00",
        &[
            "noon-ticket 29 10:00-29 12:00 x1 8.00 8.00",
            "noon-ticket 29 12:00-30 12:00 x1 8.00 8.00",
            "noon-ticket 30 12:00-30 14:00 x1 8.00 8.00",
        ],
    );
}

#[test]
fn a_rule_without_window_restarts_at_local_midnight() {
    // hourly, all day: Tue's occurrence ends at midnight, Wed's begins, and increments
    // restart there.
    let t = tariff(
        r#"{"currency":"CNY","rules":[
            {"name":"hourly","price":{"every_minutes":60,"amount":"3.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 23:30", "2026-09-30 01:00");
    // 23:30-00:00: one increment (charged whole); 00:00-01:00: one. 6.00.
    assert_fee(
        &fee,
        "6.00",
        &[
            "hourly 29 23:30-30 00:00 x1 3.00 3.00",
            "hourly 30 00:00-30 01:00 x1 3.00 3.00",
        ],
    );
}

#[test]
fn days_and_dates_must_both_match() {
    // event-rate-holidays: match-day lists 2026-10-14 but it is a Wednesday, so only
    // `standard` applies: 12:00-14:00 = 2 x 6.00 = 12.00.
    let fee = quote(
        &tariff(EVENTS),
        SHANGHAI,
        "2026-10-14 12:00",
        "2026-10-14 14:00",
    );
    assert_fee(
        &fee,
        "12.00",
        &["standard 14 12:00-14 14:00 x2 12.00 12.00"],
    );
}

#[test]
fn a_listed_saturday_gets_the_match_day_flat() {
    // 2026-10-10 is a listed Saturday. standard 11:00-12:00: 1 x 6.00; match-day
    // 12:00-13:00: flat 30.00. Total 36.00.
    let fee = quote(
        &tariff(EVENTS),
        SHANGHAI,
        "2026-10-10 11:00",
        "2026-10-10 13:00",
    );
    assert_fee(
        &fee,
        "36.00",
        &[
            "standard 10 11:00-10 12:00 x1 6.00 6.00",
            "match-day 10 12:00-10 13:00 x1 30.00 30.00",
        ],
    );
}

#[test]
fn a_free_rule_has_a_zero_line() {
    // national-day (free) is listed before standard and covers 2026-10-02.
    let fee = quote(
        &tariff(EVENTS),
        SHANGHAI,
        "2026-10-02 10:00",
        "2026-10-02 12:00",
    );
    assert_fee(
        &fee,
        "0.00",
        &["national-day 02 10:00-02 12:00 x0 0.00 0.00"],
    );
}

#[test]
fn days_filter_skips_sundays_and_uncovered_time_is_free() {
    // berlin-meter-zone, Sat 2026-11-07 19:30 - Mon 2026-11-09 08:30 (CET):
    // meter Sat 19:30-20:00: 2 x 0.75; nothing covers Sat 20:00 - Mon 08:00 (no line);
    // meter Mon 08:00-08:30: 2 x 0.75. Total 3.00.
    let fee = quote(
        &tariff(BERLIN_METER),
        BERLIN,
        "2026-11-07 19:30",
        "2026-11-09 08:30",
    );
    assert_fee(
        &fee,
        "3.00",
        &[
            "meter 07 19:30-07 20:00 x2 1.50 1.50",
            "meter 09 08:00-09 08:30 x2 1.50 1.50",
        ],
    );
}

#[test]
fn a_whole_sunday_is_free_with_no_lines() {
    let fee = quote(
        &tariff(BERLIN_METER),
        BERLIN,
        "2026-11-08 09:00",
        "2026-11-08 18:00",
    );
    assert_fee(&fee, "0.00", &[]);
}

const FRI_NIGHT: &str = r#"{"currency":"CNY","rules":[
    {"name":"fri-night","days":["fri"],"from":"22:00","to":"02:00",
     "price":{"every_minutes":60,"amount":"5.00"}},
    {"name":"all","price":{"every_minutes":60,"amount":"1.00"}}]}"#;

#[test]
fn a_days_window_runs_into_a_day_not_in_days() {
    // docs/tariffs.md, step 3: the occurrence of accepted date D (Fri 10-02) runs from
    // D 22:00 to D+1 02:00, although Saturday is not in `days`.
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

// ---- precedence -------------------------------------------------------------------------

#[test]
fn the_holiday_covers_a_whole_evening() {
    // national-day covers 2026-10-01 00:00-24:00, so it wins over night at 21:00-23:00.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-10-01 20:00",
        "2026-10-01 23:00",
    );
    assert_fee(
        &fee,
        "20.00",
        &["national-day 01 20:00-01 23:00 x1 20.00 20.00"],
    );
}

#[test]
fn night_gives_way_to_the_holiday_at_midnight() {
    // Wed 09-30 night 22:00-00:00: 1 x 1.00. From 00:00 national-day (listed first):
    // flat 20.00. Total 21.00.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-09-30 22:00",
        "2026-10-01 02:00",
    );
    assert_fee(
        &fee,
        "21.00",
        &[
            "night 30 22:00-01 00:00 x1 1.00 1.00",
            "national-day 01 00:00-01 02:00 x1 20.00 20.00",
        ],
    );
}

#[test]
fn two_holiday_dates_are_two_occurrences_and_night_resumes() {
    // national-day 10-01 and 10-02 are separate occurrences: two flats. At 10-03 00:00
    // night (10-02's occurrence, 21:00-07:00, suppressed until now) applies; its
    // increments start at the segment: 00:00 -> 1 x 1.00. Total 41.00.
    let fee = quote(
        &tariff(SPEC),
        SHANGHAI,
        "2026-10-01 21:00",
        "2026-10-03 01:00",
    );
    assert_fee(
        &fee,
        "41.00",
        &[
            "national-day 01 21:00-02 00:00 x1 20.00 20.00",
            "national-day 02 00:00-03 00:00 x1 20.00 20.00",
            "night 03 00:00-03 01:00 x1 1.00 1.00",
        ],
    );
}

const PEAK_FIRST: &str = r#"{"currency":"CNY","rules":[
    {"name":"peak","from":"08:00","to":"10:00","price":{"every_minutes":30,"amount":"3.00"}},
    {"name":"day","from":"07:00","to":"19:00","price":{"every_minutes":60,"amount":"2.00"}}]}"#;

#[test]
fn an_earlier_rule_splits_a_later_one_and_increments_restart() {
    // day 07:30-08:00: one 60-min increment, charged whole (2.00); peak 08:00-10:00:
    // 4 x 3.00 = 12.00; day 10:00-10:30: increments restart at the segment: 1 x 2.00.
    // Total 16.00.
    let fee = quote(
        &tariff(PEAK_FIRST),
        SHANGHAI,
        "2026-09-29 07:30",
        "2026-09-29 10:30",
    );
    assert_fee(
        &fee,
        "16.00",
        &[
            "day 29 07:30-29 08:00 x1 2.00 2.00",
            "peak 29 08:00-29 10:00 x4 12.00 12.00",
            "day 29 10:00-29 10:30 x1 2.00 2.00",
        ],
    );
}

#[test]
fn a_later_overlapping_rule_never_applies() {
    // Same rules, day listed first: day covers 07:30-10:30 whole; increments at 07:30,
    // 08:30, 09:30: 3 x 2.00 = 6.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[
        {"name":"day","from":"07:00","to":"19:00","price":{"every_minutes":60,"amount":"2.00"}},
        {"name":"peak","from":"08:00","to":"10:00","price":{"every_minutes":30,"amount":"3.00"}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 07:30", "2026-09-29 10:30");
    assert_fee(&fee, "6.00", &["day 29 07:30-29 10:30 x3 6.00 6.00"]);
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

// ---- flats ------------------------------------------------------------------------------

const LUNCH: &str = r#"{"currency":"CNY","rules":[
    {"name":"lunch-rush","from":"11:00","to":"14:00","price":{"every_minutes":30,"amount":"2.00"}},
    {"name":"day-ticket","price":{"flat":"10.00"}}]}"#;

#[test]
fn a_flat_is_charged_once_even_when_split() {
    // day-ticket 10:00-11:00: flat 10.00 at its first segment; lunch-rush 11:00-14:00:
    // 6 x 2.00 = 12.00; day-ticket 14:00-16:00: same occurrence, flat already charged:
    // 0 increments. Total 22.00.
    let fee = quote(
        &tariff(LUNCH),
        SHANGHAI,
        "2026-09-29 10:00",
        "2026-09-29 16:00",
    );
    assert_fee(
        &fee,
        "22.00",
        &[
            "day-ticket 29 10:00-29 11:00 x1 10.00 10.00",
            "lunch-rush 29 11:00-29 14:00 x6 12.00 12.00",
            "day-ticket 29 14:00-29 16:00 x0 0.00 0.00",
        ],
    );
}

#[test]
fn a_flat_occurrence_that_starts_covered_charges_at_its_first_segment() {
    // 11:30-15:00: lunch-rush 11:30-14:00 (5 x 2.00 = 10.00), then day-ticket's first
    // segment 14:00-15:00: flat 10.00. Total 20.00.
    let fee = quote(
        &tariff(LUNCH),
        SHANGHAI,
        "2026-09-29 11:30",
        "2026-09-29 15:00",
    );
    assert_fee(
        &fee,
        "20.00",
        &[
            "lunch-rush 29 11:30-29 14:00 x5 10.00 10.00",
            "day-ticket 29 14:00-29 15:00 x1 10.00 10.00",
        ],
    );
}

#[test]
fn a_flat_per_date_charges_again_after_midnight() {
    // day-ticket has no window: one occurrence per local date. 22:00-02:00 meets two.
    let fee = quote(
        &tariff(LUNCH),
        SHANGHAI,
        "2026-09-29 22:00",
        "2026-09-30 02:00",
    );
    assert_fee(
        &fee,
        "20.00",
        &[
            "day-ticket 29 22:00-30 00:00 x1 10.00 10.00",
            "day-ticket 30 00:00-30 02:00 x1 10.00 10.00",
        ],
    );
}

#[test]
fn a_concert_flat_across_midnight_is_one_occurrence() {
    // new-year-concert 2026-12-31 18:00 - 2027-01-01 02:00 is one occurrence: one flat
    // 50.00 although the calendar date changes. standard from 02:00: 02:00-03:00 1 x 6.00.
    let fee = quote(
        &tariff(EVENTS),
        SHANGHAI,
        "2026-12-31 19:00",
        "2027-01-01 03:00",
    );
    assert_fee(
        &fee,
        "56.00",
        &[
            "new-year-concert 31 19:00-01 02:00 x1 50.00 50.00",
            "standard 01 02:00-01 03:00 x1 6.00 6.00",
        ],
    );
}

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

// ---- steps ------------------------------------------------------------------------------

#[test]
fn the_step_changes_at_elapsed_minute_60_inside_a_segment() {
    // 10:00, 10:15, 10:30, 10:45 at 2.50 (elapsed < 60); 11:00 at 3.75. 13.75.
    let fee = quote(
        &tariff(BEIJING),
        SHANGHAI,
        "2026-09-29 10:00",
        "2026-09-29 11:10",
    );
    assert_fee(&fee, "13.75", &["day 29 10:00-29 11:10 x5 13.75 13.75"]);
}

#[test]
fn an_increment_straddling_the_step_boundary_keeps_its_step() {
    // Steps: until 60 every 40 at 1.00, then every 30 at 2.00. Increments at elapsed
    // 0 (1.00, to 40), 40 (1.00, to 80: chosen at 40 < 60), 80 (2.00), 110 (2.00). 6.00.
    let t = tariff(
        r#"{"currency":"CNY","rules":[{"name":"all","price":{"steps":[
            {"until_minute":60,"every_minutes":40,"amount":"1.00"},
            {"every_minutes":30,"amount":"2.00"}]}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00", "2026-09-29 12:00");
    assert_fee(&fee, "6.00", &["all 29 10:00-29 12:00 x4 6.00 6.00"]);
}

#[test]
fn increments_restart_per_segment_while_elapsed_time_runs_on() {
    // night 06:30-07:00: one 120-min increment charged whole, 1.00. day 07:00-07:40:
    // 07:00 (elapsed 30) 2.50, 07:15 (45) 2.50, 07:30 (60) 3.75 = 8.75. Total 9.75.
    let fee = quote(
        &tariff(BEIJING),
        SHANGHAI,
        "2026-09-29 06:30",
        "2026-09-29 07:40",
    );
    assert_fee(
        &fee,
        "9.75",
        &[
            "night 29 06:30-29 07:00 x1 1.00 1.00",
            "day 29 07:00-29 07:40 x3 8.75 8.75",
        ],
    );
}

#[test]
fn a_short_night_stay_pays_a_whole_increment() {
    // 21:00-21:30 is past grace (30 > 15): one 120-min increment, charged whole: 1.00.
    let fee = quote(
        &tariff(BEIJING),
        SHANGHAI,
        "2026-09-29 21:00",
        "2026-09-29 21:30",
    );
    assert_fee(&fee, "1.00", &["night 29 21:00-29 21:30 x1 1.00 1.00"]);
}

#[test]
fn three_steps() {
    // until 30 every 10 at 1.00; until 90 every 20 at 2.00; then every 60 at 5.00.
    // Elapsed 0,10,20 -> 3 x 1.00; 30,50,70 -> 3 x 2.00; 90 (to 150), 150 -> 2 x 5.00.
    // 3 + 6 + 10 = 19.00 over 0..160 min.
    let t = tariff(
        r#"{"currency":"CNY","rules":[{"name":"all","price":{"steps":[
            {"until_minute":30,"every_minutes":10,"amount":"1.00"},
            {"until_minute":90,"every_minutes":20,"amount":"2.00"},
            {"every_minutes":60,"amount":"5.00"}]}}]}"#,
    );
    let fee = quote(&t, SHANGHAI, "2026-09-29 10:00", "2026-09-29 12:40");
    assert_fee(&fee, "19.00", &["all 29 10:00-29 12:40 x8 19.00 19.00"]);
}

// ---- currencies -------------------------------------------------------------------------

#[test]
fn jpy_has_no_decimals() {
    // Every 30 min at 300 yen, cap 1200: 3 h = 6 x 300 = 1800, cut to 1200.
    let t = tariff(
        r#"{"currency":"JPY","rules":[{"name":"coin","price":
            {"every_minutes":30,"amount":"300"},"cap":"1200"}]}"#,
    );
    let tokyo: chrono_tz::Tz = chrono_tz::Asia::Tokyo;
    let fee = quote(&t, tokyo, "2026-09-29 10:00", "2026-09-29 13:00");
    assert_fee(&fee, "1200", &["coin 29 10:00-29 13:00 x6 1800 1200"]);
    let json = serde_json::to_value(&fee).unwrap();
    assert_eq!(json["total"], "1200");
    assert_eq!(json["lines"][0]["from"], "2026-09-29T10:00:00+09:00");
}

#[test]
fn kwd_has_three_decimals() {
    // Every 60 min at 0.125 KWD: 3 h = 0.375. A flat of 0.5 prints 0.500.
    let t = tariff(
        r#"{"currency":"KWD","rules":[
            {"name":"entry","from":"08:00","to":"09:00","price":{"flat":"0.5"}},
            {"name":"hourly","price":{"every_minutes":60,"amount":"0.125"}}]}"#,
    );
    let kuwait: chrono_tz::Tz = chrono_tz::Asia::Kuwait;
    let fee = quote(&t, kuwait, "2026-09-29 10:00", "2026-09-29 13:00");
    assert_fee(&fee, "0.375", &["hourly 29 10:00-29 13:00 x3 0.375 0.375"]);
    // 08:30-09:00 entry flat 0.500; 09:00-10:00 hourly 0.125. 0.625.
    let fee = quote(&t, kuwait, "2026-09-29 08:30", "2026-09-29 10:00");
    assert_fee(
        &fee,
        "0.625",
        &[
            "entry 29 08:30-29 09:00 x1 0.500 0.500",
            "hourly 29 09:00-29 10:00 x1 0.125 0.125",
        ],
    );
}

#[test]
fn instants_outside_the_supported_years_are_an_error() {
    // The engine counts nanoseconds in an i64: years 1677 to 2262.
    let t = tariff(BEIJING);
    let start = instant("2300-01-01T00:00:00Z");
    let end = instant("2300-01-01T02:00:00Z");
    assert_eq!(price(&t, SHANGHAI, start, end), Err(PriceError::OutOfRange));
}

#[test]
fn a_thirty_day_session_adds_up_day_by_day() {
    // beijing-on-street, Tue 2026-09-29 10:00 + 30 days (no daily cap).
    // Sep 29: day 10:00-21:00 = 4 x 2.50 + 40 x 3.75 = 160.00.
    // Sep 30 .. Oct 28 (29 days): day 07:00-21:00 = 56 x 3.75 = 210.00 each = 6090.00.
    // Oct 29: day 07:00-10:00 = 12 x 3.75 = 45.00.
    // 30 nights of 10 h: 5 x 1.00 = 5.00 each (exactly the cap) = 150.00.
    // 160 + 6090 + 45 + 150 = 6445.00, in 31 day lines and 30 night lines.
    let fee = quote(
        &tariff(BEIJING),
        SHANGHAI,
        "2026-09-29 10:00",
        "2026-10-29 10:00",
    );
    assert_eq!(fee.lines.len(), 61);
    assert_eq!(fee.total.to_string(), "6445.00");
}
