//! Turning a JSON document into a [`Tariff`], reporting every problem at once with the
//! JSON path of the offending field, so an operator can fix a document in one pass.

use std::collections::HashSet;
use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::currency::Currency;
use crate::domain::money::{Money, MoneyError};

use super::model::{CapPeriod, DAY_NAMES, DailyCap, DaySet, LocalTime, Price, Rule, Step, Tariff};

/// Building a [`Tariff`] goes through validation: the model knows nothing of it.
impl Tariff {
    /// Validates a tariff document, collecting every problem.
    pub fn from_json(value: &serde_json::Value) -> Result<Tariff, InvalidTariff> {
        tariff(value)
    }

    /// Parses and validates a tariff document given as JSON text.
    pub fn from_json_str(text: &str) -> Result<Tariff, InvalidTariff> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| InvalidTariff {
            problems: vec![TariffProblem::new("$", format!("is not valid JSON: {e}"))],
        })?;
        Self::from_json(&value)
    }

    /// Checks the tariff's currency against the lot's; the problem names `$.currency`.
    pub fn check_currency(&self, lot_currency: Currency) -> Result<(), TariffProblem> {
        if self.currency == lot_currency {
            Ok(())
        } else {
            Err(TariffProblem::new(
                "$.currency",
                format!("is {} but the lot charges in {lot_currency}", self.currency),
            ))
        }
    }
}

/// The largest value accepted for any minute count (about 190 years). It keeps every
/// duration the engine derives from a tariff well inside an `i64` of nanoseconds.
pub const MAX_MINUTES: u64 = 100_000_000;

/// The largest amount accepted, in minor units. Keeping amounts far below `i64::MAX` lets
/// the engine sum millions of increments without overflowing.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// One thing wrong with a tariff document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TariffProblem {
    /// JSONPath of the offending field, such as `$.rules[1].price.steps[0].amount`.
    pub path: String,
    /// What is wrong, in words for the operator.
    pub message: String,
}

impl TariffProblem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for TariffProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A rejected tariff document: every problem found, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct InvalidTariff {
    /// The problems, never empty.
    pub problems: Vec<TariffProblem>,
}

impl fmt::Display for InvalidTariff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid tariff: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Collects problems while walking the document.
struct Checker {
    problems: Vec<TariffProblem>,
    /// `None` when the currency itself is bad: amounts are then checked for syntax only.
    currency: Option<Currency>,
}

pub(super) fn tariff(value: &Value) -> Result<Tariff, InvalidTariff> {
    let mut c = Checker {
        problems: Vec::new(),
        currency: None,
    };
    let Some(root) = value.as_object() else {
        c.problem("$", "must be a JSON object");
        return Err(c.into_error());
    };
    c.unknown_fields(
        root,
        "$",
        &[
            "currency",
            "grace_minutes",
            "max_stay_minutes",
            "daily_cap",
            "rules",
        ],
    );

    c.currency = match root.get("currency") {
        None => {
            c.problem("$.currency", "is required");
            None
        }
        Some(Value::String(code)) => match Currency::parse(code) {
            Ok(cur) => Some(cur),
            Err(e) => {
                c.problem("$.currency", e.to_string());
                None
            }
        },
        Some(_) => {
            c.problem("$.currency", "must be a string such as \"CNY\"");
            None
        }
    };

    let grace_minutes = match root.get("grace_minutes") {
        None => Some(0),
        Some(v) => c.minutes(v, "$.grace_minutes", 0),
    };
    let max_stay_minutes = root
        .get("max_stay_minutes")
        .map(|v| c.minutes(v, "$.max_stay_minutes", 1));
    let daily_cap = root.get("daily_cap").map(|v| c.daily_cap(v));
    let rules = c.rules(root.get("rules"));

    match (c.currency, grace_minutes, c.problems.is_empty()) {
        (Some(currency), Some(grace_minutes), true) => Ok(Tariff {
            currency,
            grace_minutes,
            max_stay_minutes: max_stay_minutes.flatten(),
            daily_cap: daily_cap.flatten(),
            rules,
        }),
        _ => Err(c.into_error()),
    }
}

impl Checker {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(TariffProblem::new(path, message));
    }

    fn into_error(self) -> InvalidTariff {
        InvalidTariff {
            problems: self.problems,
        }
    }

    /// Reports every key of `object` that is not in `known`, in key order.
    fn unknown_fields(&mut self, object: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in object.keys() {
            if !known.contains(&key.as_str()) {
                self.problem(field(path, key), "is not a known field");
            }
        }
    }

    /// A whole number of minutes, at least `min`.
    fn minutes(&mut self, value: &Value, path: &str, min: u64) -> Option<u32> {
        match value.as_u64() {
            Some(n) if n < min => {
                self.problem(path, format!("must be at least {min}"));
                None
            }
            Some(n) if n > MAX_MINUTES => {
                self.problem(path, format!("must be at most {MAX_MINUTES}"));
                None
            }
            // MAX_MINUTES fits in a u32.
            Some(n) => u32::try_from(n).ok(),
            None => {
                let message = if min == 0 {
                    "must be a whole number of minutes, 0 or more"
                } else {
                    "must be a whole number of minutes, 1 or more"
                };
                self.problem(path, message);
                None
            }
        }
    }

    /// A non-negative amount written as a JSON string.
    fn amount(&mut self, value: &Value, path: &str) -> Option<Money> {
        let Value::String(text) = value else {
            let hint = if value.is_number() {
                format!("must be a string such as \"{value}\", not a JSON number")
            } else {
                "must be a string holding a decimal amount such as \"2.50\"".to_owned()
            };
            self.problem(path, hint);
            return None;
        };
        if text.starts_with('-') {
            self.problem(path, "must not be negative");
            return None;
        }
        // Without a valid currency, check the syntax with the widest minor unit we know so
        // the operator still hears about malformed amounts.
        let currency = self.currency.or_else(|| Currency::parse("CLF").ok())?;
        match Money::parse(text, currency) {
            Ok(m) if m.to_minor().is_none_or(|minor| minor > MAX_AMOUNT_MINOR) => {
                self.problem(path, "is too large");
                None
            }
            Ok(m) => Some(m),
            Err(MoneyError::TooManyDecimals {
                decimals, allowed, ..
            }) if self.currency.is_some() => {
                self.problem(
                    path,
                    format!("has {decimals} decimals but {currency} allows at most {allowed}"),
                );
                None
            }
            Err(MoneyError::TooManyDecimals { .. }) => None,
            Err(_) => {
                self.problem(path, "must be a non-negative decimal such as \"2.50\"");
                None
            }
        }
    }

    fn daily_cap(&mut self, value: &Value) -> Option<DailyCap> {
        let path = "$.daily_cap";
        let Some(obj) = value.as_object() else {
            self.problem(path, "must be an object with `amount` and `period`");
            return None;
        };
        self.unknown_fields(obj, path, &["amount", "period"]);
        let amount = match obj.get("amount") {
            Some(v) => self.amount(v, "$.daily_cap.amount"),
            None => {
                self.problem("$.daily_cap.amount", "is required");
                None
            }
        };
        let period = match obj.get("period").map(Value::as_str) {
            Some(Some("calendar_day")) => Some(CapPeriod::CalendarDay),
            Some(Some("rolling_24h")) => Some(CapPeriod::Rolling24h),
            Some(_) => {
                self.problem(
                    "$.daily_cap.period",
                    "must be \"calendar_day\" or \"rolling_24h\"",
                );
                None
            }
            None => {
                self.problem("$.daily_cap.period", "is required");
                None
            }
        };
        Some(DailyCap {
            amount: amount?,
            period: period?,
        })
    }

    fn rules(&mut self, value: Option<&Value>) -> Vec<Rule> {
        let path = "$.rules";
        let items = match value {
            None => {
                self.problem(path, "is required");
                return Vec::new();
            }
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.problem(path, "must be an array of rules");
                return Vec::new();
            }
        };
        if items.is_empty() {
            self.problem(path, "must hold at least one rule");
        }
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let rule_path = format!("{path}[{i}]");
            if let Some(rule) = self.rule(item, &rule_path, &mut names) {
                rules.push(rule);
            }
        }
        rules
    }

    fn rule<'a>(
        &mut self,
        value: &'a Value,
        path: &str,
        names: &mut HashSet<&'a str>,
    ) -> Option<Rule> {
        let Some(obj) = value.as_object() else {
            self.problem(path, "must be an object");
            return None;
        };
        self.unknown_fields(
            obj,
            path,
            &["name", "days", "dates", "from", "to", "price", "cap"],
        );
        let name_path = field(path, "name");
        let name = match obj.get("name") {
            None => {
                self.problem(name_path, "is required");
                None
            }
            Some(Value::String(n)) if n.trim().is_empty() => {
                self.problem(name_path, "must not be empty");
                None
            }
            Some(Value::String(n)) => {
                if !names.insert(n.as_str()) {
                    self.problem(
                        name_path,
                        format!("`{n}` is already the name of an earlier rule"),
                    );
                }
                Some(n.clone())
            }
            Some(_) => {
                self.problem(name_path, "must be a string");
                None
            }
        };
        let days = obj.get("days").map(|v| self.days(v, &field(path, "days")));
        let dates = obj
            .get("dates")
            .map(|v| self.dates(v, &field(path, "dates")));
        let from = obj
            .get("from")
            .map(|v| self.time(v, &field(path, "from"), false));
        let to = obj
            .get("to")
            .map(|v| self.time(v, &field(path, "to"), true));
        let price = match obj.get("price") {
            Some(v) => self.price(v, &field(path, "price")),
            None => {
                self.problem(field(path, "price"), "is required");
                None
            }
        };
        let cap = obj.get("cap").map(|v| self.amount(v, &field(path, "cap")));
        Some(Rule {
            name: name?,
            days: days.map_or(Some(None), |d| d.map(Some))?,
            dates: dates.map_or(Some(None), |d| d.map(Some))?,
            from: from.map_or(Some(None), |t| t.map(Some))?,
            to: to.map_or(Some(None), |t| t.map(Some))?,
            price: price?,
            cap: cap.map_or(Some(None), |m| m.map(Some))?,
        })
    }

    fn days(&mut self, value: &Value, path: &str) -> Option<DaySet> {
        let Some(items) = value.as_array() else {
            self.problem(
                path,
                "must be an array of day names such as [\"mon\", \"tue\"]",
            );
            return None;
        };
        if items.is_empty() {
            self.problem(
                path,
                "must name at least one day (leave it out for every day)",
            );
            return None;
        }
        let mut set = 0u8;
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match item
                .as_str()
                .and_then(|s| DAY_NAMES.iter().position(|d| *d == s))
            {
                Some(bit) if set & (1 << bit) != 0 => {
                    self.problem(item_path, "is listed twice");
                    ok = false;
                }
                Some(bit) => set |= 1 << bit,
                None => {
                    self.problem(
                        item_path,
                        "must be one of mon, tue, wed, thu, fri, sat, sun",
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(DaySet(set))
    }

    fn dates(&mut self, value: &Value, path: &str) -> Option<Vec<NaiveDate>> {
        let Some(items) = value.as_array() else {
            self.problem(path, "must be an array of dates such as [\"2026-10-01\"]");
            return None;
        };
        if items.is_empty() {
            self.problem(
                path,
                "must list at least one date (leave it out for every date)",
            );
            return None;
        }
        let mut dates = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match item.as_str().and_then(parse_date) {
                Some(d) if dates.contains(&d) => {
                    self.problem(item_path, "is listed twice");
                    ok = false;
                }
                Some(d) => dates.push(d),
                None => {
                    self.problem(item_path, "must be a real date written YYYY-MM-DD");
                    ok = false;
                }
            }
        }
        dates.sort_unstable();
        ok.then_some(dates)
    }

    fn time(&mut self, value: &Value, path: &str, is_end: bool) -> Option<LocalTime> {
        let parsed = value.as_str().and_then(parse_time);
        match parsed {
            Some(t) if t.0 == 24 * 60 && !is_end => {
                self.problem(path, "may be 24:00 only in `to`");
                None
            }
            Some(t) => Some(t),
            None => {
                let range = if is_end {
                    "00:00 to 24:00"
                } else {
                    "00:00 to 23:59"
                };
                self.problem(path, format!("must be a local time HH:MM from {range}"));
                None
            }
        }
    }

    fn price(&mut self, value: &Value, path: &str) -> Option<Price> {
        const FORMS: &str = "must be exactly one of {\"free\": true}, {\"flat\": A}, \
                             {\"every_minutes\": N, \"amount\": A} or {\"steps\": [...]}";
        let Some(obj) = value.as_object() else {
            self.problem(path, FORMS);
            return None;
        };
        self.unknown_fields(
            obj,
            path,
            &["free", "flat", "every_minutes", "amount", "steps"],
        );
        let has = |k: &str| obj.contains_key(k);
        let forms = [
            has("free"),
            has("flat"),
            has("every_minutes") || has("amount"),
            has("steps"),
        ];
        if forms.iter().filter(|f| **f).count() != 1 {
            self.problem(path, FORMS);
            return None;
        }
        if let Some(v) = obj.get("free") {
            if v != &Value::Bool(true) {
                self.problem(field(path, "free"), "must be true");
                return None;
            }
            return Some(Price::Free);
        }
        if let Some(v) = obj.get("flat") {
            return self.amount(v, &field(path, "flat")).map(Price::Flat);
        }
        if let Some(v) = obj.get("steps") {
            return self.steps(v, &field(path, "steps")).map(Price::Steps);
        }
        let every_minutes = match obj.get("every_minutes") {
            Some(v) => self.minutes(v, &field(path, "every_minutes"), 1),
            None => {
                self.problem(field(path, "every_minutes"), "is required with `amount`");
                None
            }
        };
        let amount = match obj.get("amount") {
            Some(v) => self.amount(v, &field(path, "amount")),
            None => {
                self.problem(field(path, "amount"), "is required with `every_minutes`");
                None
            }
        };
        Some(Price::Every {
            every_minutes: every_minutes?,
            amount: amount?,
        })
    }

    fn steps(&mut self, value: &Value, path: &str) -> Option<Vec<Step>> {
        let Some(items) = value.as_array() else {
            self.problem(path, "must be an array of steps");
            return None;
        };
        if items.is_empty() {
            self.problem(path, "must hold at least one step");
            return None;
        }
        let mut steps = Vec::with_capacity(items.len());
        let mut ok = true;
        let mut previous_until: Option<u32> = None;
        for (i, item) in items.iter().enumerate() {
            let step_path = format!("{path}[{i}]");
            let last = i + 1 == items.len();
            let Some(obj) = item.as_object() else {
                self.problem(step_path, "must be an object");
                ok = false;
                continue;
            };
            self.unknown_fields(
                obj,
                &step_path,
                &["until_minute", "every_minutes", "amount"],
            );
            let until_path = field(&step_path, "until_minute");
            let until_minute = match (obj.get("until_minute"), last) {
                (None, true) => Some(None),
                (None, false) => {
                    self.problem(until_path, "is required on every step but the last");
                    None
                }
                (Some(_), true) => {
                    self.problem(
                        until_path,
                        "must be left out on the last step, which applies to the rest of the session",
                    );
                    None
                }
                (Some(v), false) => match self.minutes(v, &until_path, 1) {
                    Some(m) if previous_until.is_some_and(|p| m <= p) => {
                        self.problem(
                            until_path,
                            format!(
                                "must be greater than the previous step's until_minute ({})",
                                previous_until.unwrap_or_default()
                            ),
                        );
                        previous_until = Some(m);
                        None
                    }
                    Some(m) => {
                        previous_until = Some(m);
                        Some(Some(m))
                    }
                    None => None,
                },
            };
            let every_path = field(&step_path, "every_minutes");
            let every_minutes = match obj.get("every_minutes") {
                Some(v) => self.minutes(v, &every_path, 1),
                None => {
                    self.problem(every_path, "is required");
                    None
                }
            };
            let amount_path = field(&step_path, "amount");
            let amount = match obj.get("amount") {
                Some(v) => self.amount(v, &amount_path),
                None => {
                    self.problem(amount_path, "is required");
                    None
                }
            };
            match (until_minute, every_minutes, amount) {
                (Some(until_minute), Some(every_minutes), Some(amount)) => steps.push(Step {
                    until_minute,
                    every_minutes,
                    amount,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(steps)
    }
}

/// `path.key`, or `path["odd key"]` for a key that is not a plain identifier.
fn field(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !key.as_bytes()[0].is_ascii_digit();
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", serde_json::Value::String(key.to_owned()))
    }
}

/// `HH:MM`, 00:00 to 24:00 (whether 24:00 is allowed is the caller's business).
fn parse_time(text: &str) -> Option<LocalTime> {
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let two = |hi: u8, lo: u8| -> Option<u16> {
        (hi.is_ascii_digit() && lo.is_ascii_digit())
            .then(|| u16::from(hi - b'0') * 10 + u16::from(lo - b'0'))
    };
    let hours = two(b[0], b[1])?;
    let minutes = two(b[3], b[4])?;
    match (hours, minutes) {
        (24, 0) => Some(LocalTime(24 * 60)),
        (0..=23, 0..=59) => Some(LocalTime(hours * 60 + minutes)),
        _ => None,
    }
}

/// `YYYY-MM-DD` with every digit written, naming a real date.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let year = text[0..4].parse().ok()?;
    let month = text[5..7].parse().ok()?;
    let day = text[8..10].parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("07:30"), Some(LocalTime(450)));
        assert_eq!(parse_time("24:00"), Some(LocalTime(1440)));
        for bad in [
            "7:30", "24:01", "23:60", "07-30", "0730", "07:3a", " 7:30", "25:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert!(parse_date("2026-10-01").is_some());
        for bad in [
            "2026-02-30",
            "2026-1-01",
            "26-10-01",
            "2026/10/01",
            "2026-10-01T00",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn field_paths() {
        assert_eq!(field("$", "currency"), "$.currency");
        assert_eq!(field("$.rules[0]", "odd key"), "$.rules[0][\"odd key\"]");
    }
}
