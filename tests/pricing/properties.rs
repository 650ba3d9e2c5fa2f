//! Property tests: the engine agrees with the naive reference model on generated tariffs
//! and minute-aligned intervals, and its fees obey the invariants a user relies on.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use qrpark::domain::tariff::{Fee, Tariff, price};

use crate::reference::{self, RefPrice, RefRule, RefTariff};
use crate::support::{BERLIN, NEW_YORK, SHANGHAI};

/// Days around which sessions start: ordinary days, a holiday, and every DST change.
const ANCHORS: [(i32, u32, u32); 6] = [
    (2026, 9, 29),
    (2026, 3, 28),
    (2026, 10, 24),
    (2026, 3, 7),
    (2026, 10, 31),
    (2026, 12, 30),
];

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![SHANGHAI, BERLIN, NEW_YORK])
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), 1i64..=50, 50i64..=1000]
}

fn minutes_of_day(max: u32) -> impl Strategy<Value = u32> {
    // Round hours and half hours meet each other often, 01:00-03:00 meets the DST
    // changes of Berlin and New York; any minute exercises the rest.
    prop_oneof![
        (0..=max / 30).prop_map(|h| h * 30),
        prop::sample::select(vec![60u32, 90, 120, 150, 180]),
        0..=max,
    ]
}

fn every() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(vec![1u32, 15, 30, 60, 120]),
        1u32..=180
    ]
}

fn price_form() -> impl Strategy<Value = RefPrice> {
    prop_oneof![
        1 => Just(RefPrice::Free),
        2 => amount().prop_map(RefPrice::Flat),
        3 => (every(), amount()).prop_map(|(n, a)| RefPrice::Every(n, a)),
        4 => (prop::collection::vec((1u32..=240, every(), amount()), 1..=3), every(), amount())
            .prop_map(|(mut head, n, a)| {
                head.sort_by_key(|s| s.0);
                head.dedup_by_key(|s| s.0);
                let mut steps: Vec<_> = head.into_iter().map(|(u, n, a)| (Some(u), n, a)).collect();
                steps.push((None, n, a));
                RefPrice::Steps(steps)
            }),
    ]
}

fn rule(anchor: NaiveDate) -> impl Strategy<Value = RefRule> {
    let days = prop::option::weighted(
        0.3,
        prop::collection::btree_set(0u32..7, 1..=6).prop_map(|s| s.into_iter().collect()),
    );
    let dates = prop::option::weighted(
        0.2,
        prop::collection::btree_set(-2i64..=4, 1..=3).prop_map(move |s| {
            s.into_iter()
                .map(|d| anchor + Duration::days(d))
                .collect::<Vec<_>>()
        }),
    );
    let from = prop::option::weighted(0.7, minutes_of_day(1439));
    let to = prop::option::weighted(0.7, minutes_of_day(1440));
    let cap = prop::option::weighted(0.3, 0i64..=3000);
    (days, dates, from, to, price_form(), cap).prop_map(|(days, dates, from, to, price, cap)| {
        RefRule {
            days,
            dates,
            from,
            to,
            price,
            cap,
        }
    })
}

/// A tariff, a zone, a start instant and a duration in minutes.
fn scenario() -> impl Strategy<Value = (RefTariff, Tz, DateTime<Utc>, i64)> {
    (prop::sample::select(ANCHORS.to_vec()), zone()).prop_flat_map(|((y, m, d), tz)| {
        let anchor = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let tariff = (
            prop_oneof![Just(0u32), 1u32..=30],
            prop::option::weighted(0.4, (0i64..=5000, any::<bool>())),
            prop::collection::vec(rule(anchor), 1..=4),
        )
            .prop_map(|(grace_minutes, daily_cap, rules)| RefTariff {
                grace_minutes,
                daily_cap,
                rules,
            });
        let start_minute = 0i64..(2 * 1440);
        let duration = prop_oneof![0i64..=40, 0i64..=600, 0i64..=2 * 1440];
        (tariff, Just(tz), start_minute, duration).prop_map(move |(t, tz, s, len)| {
            let midnight = tz
                .from_local_datetime(&anchor.and_hms_opt(0, 0, 0).unwrap())
                .earliest()
                .unwrap()
                .with_timezone(&Utc);
            (t, tz, midnight + Duration::minutes(s), len)
        })
    })
}

fn engine(t: &RefTariff) -> Tariff {
    Tariff::from_json_str(&t.to_json()).expect("generated tariffs are valid")
}

fn minor(m: &qrpark::domain::money::Money) -> i64 {
    m.to_minor().unwrap()
}

fn check_invariants(fee: &Fee, start: DateTime<Utc>, end: DateTime<Utc>) {
    let sum: i64 = fee.lines.iter().map(|l| minor(&l.charged)).sum();
    assert_eq!(sum, minor(&fee.total), "lines sum to the total");
    let mut previous_to = start;
    for l in &fee.lines {
        assert!(!l.amount.is_negative() && !l.charged.is_negative());
        assert!(minor(&l.charged) <= minor(&l.amount), "charged <= amount");
        let (from, to) = (l.from.with_timezone(&Utc), l.to.with_timezone(&Utc));
        assert!(
            start <= from && from <= to && to <= end,
            "line within [start, end]"
        );
        assert!(previous_to <= from, "lines in order, not overlapping");
        previous_to = to;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_reference_model((t, tz, start, minutes) in scenario()) {
        let end = start + Duration::minutes(minutes);
        let fee = price(&engine(&t), tz, start, end).unwrap();
        let (total, lines, grace) = reference::price(&t, tz, start, minutes);
        prop_assert_eq!(minor(&fee.total), total);
        if grace {
            prop_assert_eq!(fee.lines.len(), 1);
            prop_assert!(fee.lines[0].grace);
        } else {
            let got: Vec<_> = fee
                .lines
                .iter()
                .map(|l| reference::RefLine {
                    rule: l.rule.clone(),
                    from: l.from.with_timezone(&Utc),
                    to: l.to.with_timezone(&Utc),
                    increments: l.increments,
                    amount: minor(&l.amount),
                    charged: minor(&l.charged),
                })
                .collect();
            prop_assert_eq!(got, lines);
        }
        check_invariants(&fee, start, end);
    }

    #[test]
    fn the_fee_never_decreases_as_the_end_moves_later(
        (t, tz, start, minutes) in scenario(),
        extra in 0i64..=600,
    ) {
        let t = engine(&t);
        let end = start + Duration::minutes(minutes);
        let later = end + Duration::minutes(extra);
        let a = price(&t, tz, start, end).unwrap();
        let b = price(&t, tz, start, later).unwrap();
        prop_assert!(minor(&a.total) <= minor(&b.total));
        check_invariants(&b, start, later);
    }

    #[test]
    fn any_second_aligned_interval_keeps_the_invariants(
        (t, tz, start, _) in scenario(),
        offset in 0i64..3600,
        seconds in 0i64..(3 * 86_400),
    ) {
        let start = start + Duration::seconds(offset);
        let end = start + Duration::seconds(seconds);
        let fee = price(&engine(&t), tz, start, end).unwrap();
        check_invariants(&fee, start, end);
    }
}

proptest! {
    // Long sessions are slow for the minute-by-minute reference: few cases.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn long_sessions_match_the_reference_model(
        (t, tz, start, _) in scenario(),
        days in 3i64..=35,
    ) {
        let minutes = days * 1440;
        let end = start + Duration::minutes(minutes);
        let fee = price(&engine(&t), tz, start, end).unwrap();
        let (total, lines, _) = reference::price(&t, tz, start, minutes);
        prop_assert_eq!(minor(&fee.total), total);
        prop_assert_eq!(fee.lines.len(), lines.len());
        check_invariants(&fee, start, end);
    }
}
