//! A lot's metrics per local hour, as the Curb Data Specification's Metrics API defines
//! them (CDS `metrics/README.md`, "Methodology"), and its revenue per local day. Pure: the
//! sessions come in, the figures go out (docs/console.md says which sessions count where).

use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

/// Longest range of one metrics request: 31 days of hours.
pub const MAX_HOURS: i64 = 31 * 24;

const US_PER_HOUR: i64 = 3_600_000_000;
const US_PER_MINUTE: i64 = 60_000_000;

/// A session as the metrics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub started_at: DateTime<Utc>,
    /// `None` while the session is active.
    pub ended_at: Option<DateTime<Utc>>,
    /// The fee charged at the stop, in minor units.
    pub fee_minor: Option<i64>,
}

/// Why a range cannot be measured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("must be after `from`")]
    Empty,
    #[error("a range covers at most {MAX_HOURS} hours (31 days)")]
    TooLong,
    #[error("must fall on a whole hour of the lot's local time (minutes and seconds zero)")]
    NotWholeHour,
}

/// `[from, to)` cut into hours, each starting on a whole hour of the lot's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tz: Tz,
}

impl HourRange {
    /// Checks the range: `to` after `from`, at most [`MAX_HOURS`] apart, both on whole local
    /// hours. The error names which end is wrong (`from` or `to`).
    pub fn new(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tz: Tz,
    ) -> Result<Self, (&'static str, RangeError)> {
        let whole = |at: DateTime<Utc>| {
            let local = at.with_timezone(&tz);
            local.minute() == 0 && local.second() == 0 && local.nanosecond() == 0
        };
        if !whole(from) {
            return Err(("from", RangeError::NotWholeHour));
        }
        if !whole(to) {
            return Err(("to", RangeError::NotWholeHour));
        }
        if to <= from {
            return Err(("to", RangeError::Empty));
        }
        if to - from > TimeDelta::hours(MAX_HOURS) {
            return Err(("to", RangeError::TooLong));
        }
        Ok(Self { from, to, tz })
    }

    /// The hours of the range, in order.
    pub fn hours(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let count = (self.to - self.from).num_hours();
        (0..count).map(move |k| self.from + TimeDelta::hours(k))
    }

    /// The local dates the range touches, in order.
    pub fn dates(&self) -> Vec<NaiveDate> {
        let first = self.from.with_timezone(&self.tz).date_naive();
        let last = (self.to - TimeDelta::microseconds(1))
            .with_timezone(&self.tz)
            .date_naive();
        first.iter_days().take_while(|d| *d <= last).collect()
    }
}

/// One hour of a lot: the raw sums every CDS metric of the hour is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hour {
    pub start: DateTime<Utc>,
    /// The local date and hour, as CDS aggregates name them.
    pub date: NaiveDate,
    pub hour: u32,
    /// Sessions that started in the hour.
    pub sessions: i64,
    /// Of those, the ones that have ended, and their dwell times summed (microseconds).
    pub ended: i64,
    pub dwell_us: i64,
    /// Time spaces were occupied within the hour, summed over sessions (microseconds).
    pub occupied_us: i64,
}

impl Hour {
    /// CDS `total_sessions`: `count[sessions]` in the hour.
    pub fn total_sessions(&self) -> i64 {
        self.sessions
    }

    /// CDS `turnover`: `count[sessions]/hour`; over one hour the count itself.
    pub fn turnover(&self) -> Decimal {
        Decimal::from(self.sessions)
    }

    /// CDS `average_dwell_time`: `sum[dwell time] / count[sessions]`, in minutes (two
    /// decimals), over the hour's sessions that have ended; `None` when none has.
    pub fn average_dwell_time(&self) -> Option<Decimal> {
        (self.ended > 0).then(|| ratio(self.dwell_us, self.ended * US_PER_MINUTE, 1))
    }

    /// CDS `occupancy_percent`: `sum[dwell time] / total duration`, the duration being the
    /// hour times the lot's `spaces`, as a percentage (two decimals); `None` without spaces.
    pub fn occupancy_percent(&self, spaces: i64) -> Option<Decimal> {
        (spaces > 0).then(|| ratio(self.occupied_us, spaces * US_PER_HOUR, 100))
    }
}

/// `numerator * scale / denominator`, rounded half away from zero to two decimals.
fn ratio(numerator: i64, denominator: i64, scale: i64) -> Decimal {
    (Decimal::from(numerator) * Decimal::from(scale) / Decimal::from(denominator))
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// The hours of `range`; an active session occupies its space until `now`.
pub fn hours(range: &HourRange, spans: &[Span], now: DateTime<Utc>) -> Vec<Hour> {
    range
        .hours()
        .map(|start| {
            let end = start + TimeDelta::hours(1);
            let local = start.with_timezone(&range.tz);
            let mut hour = Hour {
                start,
                date: local.date_naive(),
                hour: local.hour(),
                sessions: 0,
                ended: 0,
                dwell_us: 0,
                occupied_us: 0,
            };
            for span in spans {
                if span.started_at >= start && span.started_at < end {
                    hour.sessions += 1;
                    if let Some(ended_at) = span.ended_at {
                        hour.ended += 1;
                        hour.dwell_us += micros(ended_at - span.started_at);
                    }
                }
                let until = span.ended_at.unwrap_or(now.max(span.started_at));
                let overlap = until.min(end) - span.started_at.max(start);
                if overlap > TimeDelta::zero() {
                    hour.occupied_us += micros(overlap);
                }
            }
            hour
        })
        .collect()
}

fn micros(delta: TimeDelta) -> i64 {
    delta.num_microseconds().unwrap_or(i64::MAX)
}

/// What a lot earned on one local day: the fees of the sessions that ended that day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRevenue {
    pub date: NaiveDate,
    pub sessions: i64,
    pub minor: i64,
}

/// Revenue per local day of `range`, counting the sessions that ended within the range.
pub fn revenue(range: &HourRange, spans: &[Span]) -> Vec<DayRevenue> {
    let mut days: Vec<DayRevenue> = range
        .dates()
        .into_iter()
        .map(|date| DayRevenue {
            date,
            sessions: 0,
            minor: 0,
        })
        .collect();
    for span in spans {
        let (Some(ended_at), Some(fee)) = (span.ended_at, span.fee_minor) else {
            continue;
        };
        if ended_at < range.from || ended_at >= range.to {
            continue;
        }
        let date = ended_at.with_timezone(&range.tz).date_naive();
        if let Some(day) = days.iter_mut().find(|d| d.date == date) {
            day.sessions += 1;
            day.minor = day.minor.saturating_add(fee);
        }
    }
    days
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    #[test]
    fn ranges_are_whole_local_hours_at_most_31_days() {
        let from = at("2026-09-29T00:00:00+08:00");
        assert!(HourRange::new(from, at("2026-09-29T03:00:00+08:00"), SHANGHAI).is_ok());
        assert_eq!(
            HourRange::new(from, from, SHANGHAI),
            Err(("to", RangeError::Empty))
        );
        assert_eq!(
            HourRange::new(at("2026-09-29T00:30:00+08:00"), from, SHANGHAI),
            Err(("from", RangeError::NotWholeHour))
        );
        let kolkata = chrono_tz::Asia::Kolkata;
        // 00:00 in Kolkata is 18:30 UTC: whole there, not in Shanghai.
        let k = at("2026-09-28T18:30:00Z");
        assert!(HourRange::new(k, k + TimeDelta::hours(2), kolkata).is_ok());
        assert!(HourRange::new(from, from + TimeDelta::hours(MAX_HOURS), SHANGHAI).is_ok());
        assert_eq!(
            HourRange::new(from, from + TimeDelta::hours(MAX_HOURS + 1), SHANGHAI),
            Err(("to", RangeError::TooLong))
        );
    }

    #[test]
    fn figures_follow_the_cds_methodology() {
        let range = HourRange::new(
            at("2026-09-29T10:00:00+08:00"),
            at("2026-09-29T12:00:00+08:00"),
            SHANGHAI,
        )
        .unwrap();
        let spans = [
            // 10:00-10:30: 30 minutes, in hour 10.
            Span {
                started_at: at("2026-09-29T10:00:00+08:00"),
                ended_at: Some(at("2026-09-29T10:30:00+08:00")),
                fee_minor: Some(500),
            },
            // 10:45-11:15: 30 minutes, 15 in each hour.
            Span {
                started_at: at("2026-09-29T10:45:00+08:00"),
                ended_at: Some(at("2026-09-29T11:15:00+08:00")),
                fee_minor: Some(250),
            },
            // 11:30, still active at 11:50.
            Span {
                started_at: at("2026-09-29T11:30:00+08:00"),
                ended_at: None,
                fee_minor: None,
            },
        ];
        let now = at("2026-09-29T11:50:00+08:00");
        let hours = hours(&range, &spans, now);
        assert_eq!(hours.len(), 2);
        let (ten, eleven) = (&hours[0], &hours[1]);
        assert_eq!((ten.date.to_string(), ten.hour), ("2026-09-29".into(), 10));
        assert_eq!(ten.total_sessions(), 2);
        assert_eq!(ten.turnover(), Decimal::from(2));
        assert_eq!(ten.average_dwell_time(), Some(Decimal::from(30)));
        // 30 + 15 minutes of 4 spaces x 60 minutes = 18.75 %.
        assert_eq!(ten.occupancy_percent(4).unwrap().to_string(), "18.75");
        assert_eq!(eleven.total_sessions(), 1);
        assert_eq!(
            eleven.average_dwell_time(),
            None,
            "the active one has no dwell yet"
        );
        // 15 minutes + 20 minutes (active until now) of 4 x 60 = 14.583.. %.
        assert_eq!(eleven.occupancy_percent(4).unwrap().to_string(), "14.58");
        assert_eq!(eleven.occupancy_percent(0), None);
        let days = revenue(&range, &spans);
        assert_eq!(days.len(), 1);
        assert_eq!((days[0].sessions, days[0].minor), (2, 750));
    }

    #[test]
    fn revenue_falls_on_the_local_day_of_the_stop() {
        let range = HourRange::new(
            at("2026-09-29T00:00:00+08:00"),
            at("2026-10-01T00:00:00+08:00"),
            SHANGHAI,
        )
        .unwrap();
        assert_eq!(range.dates().len(), 2);
        let spans = [Span {
            started_at: at("2026-09-29T23:30:00+08:00"),
            ended_at: Some(at("2026-09-30T00:30:00+08:00")),
            fee_minor: Some(100),
        }];
        let days = revenue(&range, &spans);
        assert_eq!((days[0].minor, days[1].minor), (0, 100));
    }
}
