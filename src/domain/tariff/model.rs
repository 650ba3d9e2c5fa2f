//! The validated tariff: what an operator configured, in a form the engine can price with
//! and that serializes back to the canonical JSON document.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use crate::domain::currency::Currency;
use crate::domain::money::Money;

/// A validated tariff document. Build one with [`Tariff::from_json`] or
/// [`Tariff::from_json_str`]; serializing it gives the canonical JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tariff {
    pub(super) currency: Currency,
    pub(super) grace_minutes: u32,
    pub(super) max_stay_minutes: Option<u32>,
    pub(super) daily_cap: Option<DailyCap>,
    pub(super) rules: Vec<Rule>,
}

/// A cap on everything charged within one cap period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DailyCap {
    /// The most one period can charge.
    pub amount: Money,
    /// How periods are counted.
    pub period: CapPeriod,
}

/// How the periods of a daily cap are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CapPeriod {
    /// Local midnight to local midnight (23 or 25 hours on daylight-saving days).
    CalendarDay,
    /// 24-hour periods counted from the session start.
    #[serde(rename = "rolling_24h")]
    Rolling24h,
}

/// One pricing rule: a window of local time and a price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub(super) name: String,
    pub(super) days: Option<DaySet>,
    pub(super) dates: Option<Vec<NaiveDate>>,
    pub(super) from: Option<LocalTime>,
    pub(super) to: Option<LocalTime>,
    pub(super) price: Price,
    pub(super) cap: Option<Money>,
}

/// A set of weekdays, as a bit per day (Monday = bit 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySet(pub(super) u8);

/// A local wall-clock time from `00:00` to `24:00`, in minutes since midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(pub(super) u16);

/// What a rule charges, in the form the operator wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Price {
    /// Nothing.
    Free,
    /// One amount per window occurrence.
    Flat(Money),
    /// One amount per started increment of `every_minutes`.
    Every {
        /// Increment length in minutes (at least 1).
        every_minutes: u32,
        /// Charge per increment.
        amount: Money,
    },
    /// Increments whose length and amount depend on the session's elapsed time.
    Steps(Vec<Step>),
}

/// One step of a stepped price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The step applies while the session's elapsed time is below this many minutes;
    /// `None` on the last step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_minute: Option<u32>,
    /// Increment length in minutes (at least 1).
    pub every_minutes: u32,
    /// Charge per increment.
    pub amount: Money,
}

pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Tariff {
    /// The canonical JSON document (what [`Serialize`] writes).
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing our own types into a Value cannot fail: every key is a string.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The currency every amount is in.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Sessions lasting at most this many minutes are free.
    pub fn grace_minutes(&self) -> u32 {
        self.grace_minutes
    }

    /// The longest a session may be started or extended for, if limited.
    pub fn max_stay_minutes(&self) -> Option<u32> {
        self.max_stay_minutes
    }

    /// The cap per period, if any.
    pub fn daily_cap(&self) -> Option<&DailyCap> {
        self.daily_cap.as_ref()
    }

    /// The rules, first match first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

impl Rule {
    /// The rule's unique name, shown in breakdown lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The weekdays the rule is limited to, if any.
    pub fn days(&self) -> Option<DaySet> {
        self.days
    }

    /// The local dates the rule is limited to (sorted), if any.
    pub fn dates(&self) -> Option<&[NaiveDate]> {
        self.dates.as_deref()
    }

    /// The window's local start as written (`None`: `00:00`).
    pub fn from(&self) -> Option<LocalTime> {
        self.from
    }

    /// The window's local end as written (`None`: `24:00`).
    pub fn to(&self) -> Option<LocalTime> {
        self.to
    }

    /// The price.
    pub fn price(&self) -> &Price {
        &self.price
    }

    /// The most one occurrence of the window can charge, if capped.
    pub fn cap(&self) -> Option<Money> {
        self.cap
    }

    /// Whether the rule's filters accept local date `date`.
    pub fn accepts(&self, date: NaiveDate) -> bool {
        self.days.is_none_or(|d| d.contains(date.weekday()))
            && self
                .dates
                .as_ref()
                .is_none_or(|ds| ds.binary_search(&date).is_ok())
    }
}

impl DaySet {
    /// Whether the set holds `day`.
    pub fn contains(&self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

impl LocalTime {
    /// Minutes since local midnight (0..=1440).
    pub fn minutes(&self) -> u16 {
        self.0
    }
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for DaySet {
    /// The days in week order, Monday first.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for (bit, name) in DAY_NAMES.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                seq.serialize_element(name)?;
            }
        }
        seq.end()
    }
}

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            Price::Free => map.serialize_entry("free", &true)?,
            Price::Flat(amount) => map.serialize_entry("flat", amount)?,
            Price::Every {
                every_minutes,
                amount,
            } => {
                map.serialize_entry("every_minutes", every_minutes)?;
                map.serialize_entry("amount", amount)?;
            }
            Price::Steps(steps) => map.serialize_entry("steps", steps)?,
        }
        map.end()
    }
}

impl Serialize for Rule {
    /// Only the fields the operator gave, in the order of the format's table.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        if let Some(days) = &self.days {
            map.serialize_entry("days", days)?;
        }
        if let Some(dates) = &self.dates {
            let dates: Vec<String> = dates
                .iter()
                .map(|d| d.format("%Y-%m-%d").to_string())
                .collect();
            map.serialize_entry("dates", &dates)?;
        }
        if let Some(from) = &self.from {
            map.serialize_entry("from", from)?;
        }
        if let Some(to) = &self.to {
            map.serialize_entry("to", to)?;
        }
        map.serialize_entry("price", &self.price)?;
        if let Some(cap) = &self.cap {
            map.serialize_entry("cap", cap)?;
        }
        map.end()
    }
}

impl Serialize for Tariff {
    /// The canonical document: amounts with exactly the minor-unit decimals, days in week
    /// order, dates sorted, defaults written out only for `grace_minutes`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("currency", &self.currency)?;
        map.serialize_entry("grace_minutes", &self.grace_minutes)?;
        if let Some(max_stay) = &self.max_stay_minutes {
            map.serialize_entry("max_stay_minutes", max_stay)?;
        }
        if let Some(cap) = &self.daily_cap {
            map.serialize_entry("daily_cap", cap)?;
        }
        map.serialize_entry("rules", &self.rules)?;
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Tariff {
    /// Deserializes through full validation; the error lists every problem.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Tariff::from_json(&value).map_err(serde::de::Error::custom)
    }
}
