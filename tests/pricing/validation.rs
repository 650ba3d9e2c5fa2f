//! Validation: every problem at once, each with its JSON path.

use qrpark::domain::currency::Currency;
use qrpark::domain::tariff::Tariff;

use crate::support::*;

/// The sorted paths of every problem in `json`.
#[track_caller]
fn paths(json: &str) -> Vec<String> {
    let err = Tariff::from_json_str(json).expect_err("should be rejected");
    let mut p: Vec<String> = err.problems.iter().map(|p| p.path.clone()).collect();
    p.sort();
    p
}

/// The single problem of `json`, as `path: message`.
#[track_caller]
fn only_problem(json: &str) -> String {
    let err = Tariff::from_json_str(json).expect_err("should be rejected");
    assert_eq!(err.problems.len(), 1, "{err}");
    err.problems[0].to_string()
}

const OK_RULE: &str = r#"{"name":"r","price":{"free":true}}"#;

fn with_rules(rules: &str) -> String {
    format!(r#"{{"currency":"CNY","rules":[{rules}]}}"#)
}

#[test]
fn many_problems_are_reported_together() {
    let doc = r#"{
      "currency": "CNY",
      "grace_minutes": -5,
      "colour": "red",
      "daily_cap": {"amount": 60, "period": "weekly"},
      "rules": [
        {"name": "day", "days": ["mon", "funday"], "from": "7:00", "to": "24:00",
         "price": {"steps": [
            {"until_minute": 60, "every_minutes": 0, "amount": "2.505"},
            {"every_minutes": 15, "amount": "-3.75", "extra": 1}]}},
        {"name": "day", "dates": ["2026-02-30"], "from": "24:00",
         "price": {"flat": "1.00", "free": true}},
        {"price": {"every_minutes": 60}}
      ]
    }"#;
    assert_eq!(
        paths(doc),
        [
            "$.colour",
            "$.daily_cap.amount",
            "$.daily_cap.period",
            "$.grace_minutes",
            "$.rules[0].days[1]",
            "$.rules[0].from",
            "$.rules[0].price.steps[0].amount",
            "$.rules[0].price.steps[0].every_minutes",
            "$.rules[0].price.steps[1].amount",
            "$.rules[0].price.steps[1].extra",
            "$.rules[1].dates[0]",
            "$.rules[1].from",
            "$.rules[1].name",
            "$.rules[1].price",
            "$.rules[2].name",
            "$.rules[2].price.amount",
        ]
    );
}

#[test]
fn an_amount_as_a_json_number_is_rejected() {
    assert_eq!(
        only_problem(&with_rules(r#"{"name":"r","price":{"flat":2.5}}"#)),
        "$.rules[0].price.flat: must be a string such as \"2.5\", not a JSON number"
    );
}

#[test]
fn a_negative_amount_is_rejected() {
    assert_eq!(
        only_problem(&with_rules(
            r#"{"name":"r","price":{"flat":"1.00"},"cap":"-1.00"}"#
        )),
        "$.rules[0].cap: must not be negative"
    );
}

#[test]
fn decimals_beyond_the_minor_unit_are_rejected() {
    let doc =
        r#"{"currency":"JPY","rules":[{"name":"r","price":{"every_minutes":30,"amount":"1.5"}}]}"#;
    assert_eq!(
        only_problem(doc),
        "$.rules[0].price.amount: has 1 decimals but JPY allows at most 0"
    );
    let doc = r#"{"currency":"KWD","rules":[{"name":"r","price":{"flat":"0.125"}}]}"#;
    assert!(Tariff::from_json_str(doc).is_ok());
}

#[test]
fn unknown_fields_are_rejected_at_every_level() {
    let doc = r#"{"currency":"CNY","x":1,"daily_cap":{"amount":"1.00","period":"rolling_24h","y":2},
        "rules":[{"name":"r","z":3,"price":{"steps":[{"every_minutes":5,"amount":"1.00","w":4}],"v":5}}]}"#;
    assert_eq!(
        paths(doc),
        [
            "$.daily_cap.y",
            "$.rules[0].price.steps[0].w",
            "$.rules[0].price.v",
            "$.rules[0].z",
            "$.x",
        ]
    );
}

#[test]
fn duplicate_rule_names_are_rejected_on_the_later_rule() {
    assert_eq!(
        only_problem(&with_rules(&format!("{OK_RULE},{OK_RULE}"))),
        "$.rules[1].name: `r` is already the name of an earlier rule"
    );
}

#[test]
fn bad_times_are_rejected_and_24_00_only_ends_a_window() {
    let doc = with_rules(
        r#"{"name":"a","from":"24:00","price":{"free":true}},
           {"name":"b","to":"24:01","price":{"free":true}},
           {"name":"c","from":"12:60","to":"7:00","price":{"free":true}},
           {"name":"d","from":"00:00","to":"24:00","price":{"free":true}}"#,
    );
    assert_eq!(
        paths(&doc),
        [
            "$.rules[0].from",
            "$.rules[1].to",
            "$.rules[2].from",
            "$.rules[2].to"
        ]
    );
}

#[test]
fn bad_dates_and_days_are_rejected() {
    let doc = with_rules(
        r#"{"name":"a","dates":["2026-10-01","2026-13-01","2026-10-01","20261001"],
            "days":["mon","Mon","sunday"],"price":{"free":true}},
           {"name":"b","dates":[],"days":[],"price":{"free":true}}"#,
    );
    assert_eq!(
        paths(&doc),
        [
            "$.rules[0].dates[1]",
            "$.rules[0].dates[2]",
            "$.rules[0].dates[3]",
            "$.rules[0].days[1]",
            "$.rules[0].days[2]",
            "$.rules[1].dates",
            "$.rules[1].days",
        ]
    );
}

#[test]
fn step_rules_are_enforced() {
    // steps[0] lacks until_minute; steps[2] is not above steps[1]; the last has one.
    let doc = with_rules(
        r#"{"name":"a","price":{"steps":[
            {"every_minutes":15,"amount":"1.00"},
            {"until_minute":60,"every_minutes":15,"amount":"1.00"},
            {"until_minute":60,"every_minutes":15,"amount":"1.00"},
            {"until_minute":0,"every_minutes":15,"amount":"1.00"},
            {"until_minute":90,"every_minutes":15,"amount":"1.00"}]}},
           {"name":"b","price":{"steps":[]}}"#,
    );
    assert_eq!(
        paths(&doc),
        [
            "$.rules[0].price.steps[0].until_minute",
            "$.rules[0].price.steps[2].until_minute",
            "$.rules[0].price.steps[3].until_minute",
            "$.rules[0].price.steps[4].until_minute",
            "$.rules[1].price.steps",
        ]
    );
}

#[test]
fn every_minutes_must_be_at_least_one() {
    assert_eq!(
        only_problem(&with_rules(
            r#"{"name":"a","price":{"every_minutes":0,"amount":"1.00"}}"#
        )),
        "$.rules[0].price.every_minutes: must be at least 1"
    );
}

#[test]
fn the_price_must_have_exactly_one_form() {
    let doc = with_rules(
        r#"{"name":"a","price":{}},
           {"name":"b","price":{"flat":"1.00","every_minutes":5,"amount":"1.00"}},
           {"name":"c","price":{"free":false}},
           {"name":"d","price":"free"},
           {"name":"e","price":{"amount":"1.00"}},
           {"name":"f"}"#,
    );
    assert_eq!(
        paths(&doc),
        [
            "$.rules[0].price",
            "$.rules[1].price",
            "$.rules[2].price.free",
            "$.rules[3].price",
            "$.rules[4].price.every_minutes",
            "$.rules[5].price",
        ]
    );
}

#[test]
fn the_document_level_fields_are_checked() {
    assert_eq!(paths("[]"), ["$"]);
    assert_eq!(paths("{not json"), ["$"]);
    assert_eq!(paths("{}"), ["$.currency", "$.rules"]);
    assert_eq!(
        paths(r#"{"currency":"XYZ","rules":[],"max_stay_minutes":0,"grace_minutes":"15"}"#),
        [
            "$.currency",
            "$.grace_minutes",
            "$.max_stay_minutes",
            "$.rules"
        ]
    );
    assert_eq!(
        paths(r#"{"currency":"CNY","rules":[{"name":""," price":{"free":true}}],"daily_cap":{}}"#),
        [
            "$.daily_cap.amount",
            "$.daily_cap.period",
            "$.rules[0].name",
            "$.rules[0].price",
            "$.rules[0][\" price\"]",
        ]
    );
}

#[test]
fn an_unknown_currency_still_reports_amount_syntax() {
    let doc = r#"{"currency":"CNYY","rules":[{"name":"a","price":{"flat":"abc"}}]}"#;
    assert_eq!(paths(doc), ["$.currency", "$.rules[0].price.flat"]);
}

#[test]
fn problems_serialize_with_path_and_message() {
    let err = Tariff::from_json_str(r#"{"currency":"CNY"}"#).unwrap_err();
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        serde_json::json!({"problems":[{"path":"$.rules","message":"is required"}]})
    );
}

#[test]
fn the_canonical_document_round_trips() {
    // Amounts gain their minor-unit decimals, days come in week order, dates sorted.
    let t = tariff(
        r#"{"currency":"CNY","rules":[{"name":"a","days":["sun","mon"],
            "dates":["2026-10-02","2026-10-01"],"from":"07:00","to":"24:00",
            "price":{"every_minutes":15,"amount":"2.5"},"cap":"10"}]}"#,
    );
    let canonical = serde_json::to_string(&t).unwrap();
    assert_eq!(
        canonical,
        r#"{"currency":"CNY","grace_minutes":0,"rules":[{"name":"a","days":["mon","sun"],"dates":["2026-10-01","2026-10-02"],"from":"07:00","to":"24:00","price":{"every_minutes":15,"amount":"2.50"},"cap":"10.00"}]}"#
    );
    assert_eq!(tariff(&canonical), t);
    for doc in [SPEC, BEIJING, SHANGHAI_COMMERCIAL, BERLIN_METER, EVENTS] {
        let t = tariff(doc);
        assert_eq!(Tariff::from_json(&t.to_json()).unwrap(), t);
        let back: Tariff = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }
}

#[test]
fn the_currency_is_checked_against_the_lot() {
    let t = tariff(SPEC);
    assert!(t.check_currency(Currency::parse("CNY").unwrap()).is_ok());
    let problem = t
        .check_currency(Currency::parse("EUR").unwrap())
        .unwrap_err();
    assert_eq!(problem.path, "$.currency");
    assert_eq!(problem.message, "is CNY but the lot charges in EUR");
}

#[test]
fn everything_the_format_allows_is_accepted() {
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
fn amount_decimals_are_counted_as_written() {
    // "2.500" is worth 2.50 but is written with 3 decimals, more than CNY's 2; "1.0" has
    // 1, more than JPY's 0.
    assert_eq!(
        only_problem(&with_rules(
            r#"{"name":"a","price":{"steps":[
                {"until_minute":60,"every_minutes":15,"amount":"2.500"},
                {"every_minutes":15,"amount":"1"}]}}"#
        )),
        "$.rules[0].price.steps[0].amount: has 3 decimals but CNY allows at most 2"
    );
    assert_eq!(
        only_problem(
            r#"{"currency":"JPY","rules":[{"name":"j","price":{"every_minutes":60,"amount":"1.0"}}]}"#
        ),
        "$.rules[0].price.amount: has 1 decimals but JPY allows at most 0"
    );
}
