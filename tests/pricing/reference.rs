//! A deliberately naive reference model of the pricing semantics, written from
//! docs/tariffs.md without looking at the engine's algorithm: it walks the interval minute by minute,
//! finds the applying occurrence by brute force over every rule and date, builds
//! segments from the runs, lays every increment one by one and clips every charge in
//! order, working out each charge's cap period from scratch.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A tariff in plain numbers (amounts in minor units), turned into JSON for the engine.
#[derive(Debug, Clone)]
pub struct RefTariff {
    pub grace_minutes: u32,
    pub daily_cap: Option<(i64, bool)>, // (amount, rolling_24h?)
    pub rules: Vec<RefRule>,
}

#[derive(Debug, Clone)]
pub struct RefRule {
    pub days: Option<Vec<u32>>, // 0 = Monday
    pub dates: Option<Vec<NaiveDate>>,
    pub from: Option<u32>, // minutes, 0..1440
    pub to: Option<u32>,   // minutes, 0..=1440
    pub price: RefPrice,
    pub cap: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum RefPrice {
    Free,
    Flat(i64),
    /// (until_minute, every_minutes, amount); the last has no until_minute.
    Steps(Vec<(Option<u32>, u32, i64)>),
    Every(u32, i64),
}

/// One expected breakdown line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefLine {
    pub rule: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub increments: u64,
    pub amount: i64,
    pub charged: i64,
}

fn cents(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl RefTariff {
    /// The tariff as a CNY document.
    pub fn to_json(&self) -> String {
        let mut rules = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let mut obj = serde_json::Map::new();
            obj.insert("name".into(), format!("r{i}").into());
            if let Some(days) = &r.days {
                let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
                let v: Vec<_> = days.iter().map(|d| names[*d as usize]).collect();
                obj.insert("days".into(), serde_json::json!(v));
            }
            if let Some(dates) = &r.dates {
                let v: Vec<_> = dates.iter().map(|d| d.to_string()).collect();
                obj.insert("dates".into(), serde_json::json!(v));
            }
            if let Some(f) = r.from {
                obj.insert("from".into(), hhmm(f).into());
            }
            if let Some(t) = r.to {
                obj.insert("to".into(), hhmm(t).into());
            }
            let price = match &r.price {
                RefPrice::Free => serde_json::json!({"free": true}),
                RefPrice::Flat(a) => serde_json::json!({"flat": cents(*a)}),
                RefPrice::Every(n, a) => {
                    serde_json::json!({"every_minutes": n, "amount": cents(*a)})
                }
                RefPrice::Steps(steps) => {
                    let v: Vec<_> = steps
                        .iter()
                        .map(|(u, n, a)| match u {
                            Some(u) => serde_json::json!({"until_minute": u, "every_minutes": n, "amount": cents(*a)}),
                            None => serde_json::json!({"every_minutes": n, "amount": cents(*a)}),
                        })
                        .collect();
                    serde_json::json!({ "steps": v })
                }
            };
            obj.insert("price".into(), price);
            if let Some(c) = r.cap {
                obj.insert("cap".into(), cents(c).into());
            }
            rules.push(serde_json::Value::Object(obj));
        }
        let mut doc = serde_json::json!({
            "currency": "CNY",
            "grace_minutes": self.grace_minutes,
            "rules": rules,
        });
        if let Some((amount, rolling)) = self.daily_cap {
            let period = if rolling {
                "rolling_24h"
            } else {
                "calendar_day"
            };
            doc["daily_cap"] = serde_json::json!({"amount": cents(amount), "period": period});
        }
        doc.to_string()
    }
}

/// Local wall-clock time to an instant: the earlier of two, or for a time in a gap the
/// instant at which the first existing later minute begins.
fn resolve(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    loop {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            // If we had to walk forward, `t` is the first instant after the gap.
            return t.with_timezone(&Utc);
        }
        probe += Duration::minutes(1);
    }
}

fn accepts(rule: &RefRule, date: NaiveDate) -> bool {
    use chrono::Datelike;
    let day_ok = rule
        .days
        .as_ref()
        .is_none_or(|d| d.contains(&date.weekday().num_days_from_monday()));
    let date_ok = rule.dates.as_ref().is_none_or(|d| d.contains(&date));
    day_ok && date_ok
}

fn occurrence(rule: &RefRule, tz: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = rule.from.unwrap_or(0);
    let to = rule.to.unwrap_or(1440);
    let start_local = date.and_hms_opt(0, 0, 0).unwrap() + Duration::minutes(from.into());
    let end_day = if to <= from {
        date + Duration::days(1)
    } else {
        date
    };
    let end_local = end_day.and_hms_opt(0, 0, 0).unwrap() + Duration::minutes(to.into());
    (resolve(tz, start_local), resolve(tz, end_local))
}

/// A rule's occurrence: its local date, start and end.
type Occurrence = (NaiveDate, DateTime<Utc>, DateTime<Utc>);

/// The expected total, lines and whether the grace applied, for `[start, start + minutes)`.
pub fn price(
    t: &RefTariff,
    tz: Tz,
    start: DateTime<Utc>,
    minutes: i64,
) -> (i64, Vec<RefLine>, bool) {
    let end = start + Duration::minutes(minutes);
    if minutes <= i64::from(t.grace_minutes) {
        return (0, Vec::new(), true);
    }
    // Every occurrence of every rule on any date near the interval.
    let first = start.with_timezone(&tz).date_naive() - Duration::days(3);
    let last = end.with_timezone(&tz).date_naive() + Duration::days(3);
    let mut occurrences: Vec<Vec<Occurrence>> = Vec::new();
    for rule in &t.rules {
        let mut list = Vec::new();
        let mut d = first;
        while d <= last {
            if accepts(rule, d) {
                let (s, e) = occurrence(rule, tz, d);
                list.push((d, s, e));
            }
            d += Duration::days(1);
        }
        occurrences.push(list);
    }
    // Minute by minute: which (rule, date) applies?
    let mut owner: Vec<Option<(usize, NaiveDate)>> = Vec::new();
    for m in 0..minutes {
        let at = start + Duration::minutes(m);
        let mut found = None;
        'rules: for (r, list) in occurrences.iter().enumerate() {
            for (d, s, e) in list {
                if *s <= at && at < *e {
                    found = Some((r, *d));
                    break 'rules;
                }
            }
        }
        owner.push(found);
    }
    // Segments: maximal runs of one owner.
    let mut segments = Vec::new();
    let mut m = 0;
    while m < owner.len() {
        let mut n = m;
        while n < owner.len() && owner[n] == owner[m] {
            n += 1;
        }
        if let Some(o) = owner[m] {
            segments.push((o, m as i64, n as i64));
        }
        m = n;
    }
    // Charges, one by one, in time order.
    let mut occ_total: HashMap<(usize, NaiveDate), i64> = HashMap::new();
    let mut flat_done: Vec<(usize, NaiveDate)> = Vec::new();
    let mut period_total: HashMap<String, i64> = HashMap::new();
    let mut lines = Vec::new();
    let mut total = 0;
    for ((r, d), from_m, to_m) in segments {
        let rule = &t.rules[r];
        let mut line = RefLine {
            rule: format!("r{r}"),
            from: start + Duration::minutes(from_m),
            to: start + Duration::minutes(to_m),
            increments: 0,
            amount: 0,
            charged: 0,
        };
        let mut charges: Vec<(i64, i64)> = Vec::new(); // (first minute, amount)
        match &rule.price {
            RefPrice::Free => {}
            RefPrice::Flat(a) => {
                if !flat_done.contains(&(r, d)) {
                    flat_done.push((r, d));
                    charges.push((from_m, *a));
                }
            }
            RefPrice::Every(n, a) => {
                let mut x = from_m;
                while x < to_m {
                    charges.push((x, *a));
                    x += i64::from(*n);
                }
            }
            RefPrice::Steps(steps) => {
                let mut x = from_m;
                while x < to_m {
                    // elapsed minutes since the start = x
                    let (_, n, a) = steps
                        .iter()
                        .find(|(u, _, _)| u.is_none_or(|u| i64::from(u) > x))
                        .unwrap();
                    charges.push((x, *a));
                    x += i64::from(*n);
                }
            }
        }
        for (at_m, amount) in charges {
            let at = start + Duration::minutes(at_m);
            let mut allowed = amount;
            if let Some(cap) = rule.cap {
                allowed = allowed.min(cap - occ_total.get(&(r, d)).copied().unwrap_or(0));
            }
            let period = match t.daily_cap {
                Some((_, true)) => format!("rolling {}", at_m / 1440),
                Some((_, false)) => format!("day {}", at.with_timezone(&tz).date_naive()),
                None => String::new(),
            };
            if let Some((cap, _)) = t.daily_cap {
                allowed = allowed.min(cap - period_total.get(&period).copied().unwrap_or(0));
            }
            *occ_total.entry((r, d)).or_default() += allowed;
            *period_total.entry(period).or_default() += allowed;
            line.increments += 1;
            line.amount += amount;
            line.charged += allowed;
            total += allowed;
        }
        lines.push(line);
    }
    (total, lines, false)
}
