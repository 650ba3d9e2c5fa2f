//! The pricing engine: a tariff and an interval give a fee with one line per segment.
//!
//! The interval is swept from occurrence boundary to occurrence boundary, never minute by
//! minute: each rule keeps a cursor on its current window occurrence, the first-listed
//! rule whose occurrence contains the sweep point wins, and the segment lasts until that
//! occurrence ends or an earlier-listed rule's next occurrence begins. Within a segment,
//! increments are charged in runs that share one step and one cap period, so the cost
//! grows with segments, step changes and cap periods, not with minutes or increments.
//! All money is summed as `i64` minor units, which is exact because every tariff amount
//! is a whole number of minor units.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

use crate::domain::currency::Currency;
use crate::domain::money::Money;

use super::local_time::{self, Instant};
use super::model::{CapPeriod, Price, Rule, Step, Tariff};

const NS_PER_MINUTE: i64 = 60_000_000_000;
const NS_PER_DAY: i64 = 24 * 60 * NS_PER_MINUTE;

/// The rule name of the single line a fee within the grace period carries.
pub const GRACE_RULE: &str = "grace";

/// A priced interval: the total and its breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fee {
    /// The tariff's currency.
    pub currency: Currency,
    /// The sum of the lines' charged amounts.
    pub total: Money,
    /// One line per segment in time order (or the single grace line).
    pub lines: Vec<FeeLine>,
}

/// One segment of the interval, priced by one rule's window occurrence.
///
/// A session within the grace period has one line with `rule` = `"grace"`, `from`/`to` =
/// the session's start and end, `increments` = 0 and both amounts zero; `grace` tells it
/// apart from a rule that happens to be named "grace".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeeLine {
    /// The rule's name (`"grace"` for the grace line).
    pub rule: String,
    /// Segment start, in the lot's local offset.
    #[serde(serialize_with = "rfc3339")]
    pub from: DateTime<FixedOffset>,
    /// Segment end (exclusive), in the lot's local offset.
    #[serde(serialize_with = "rfc3339")]
    pub to: DateTime<FixedOffset>,
    /// Increments started in the segment; 1 for the segment that charges a flat, 0 for a
    /// later segment of the same occurrence, a free rule or the grace line.
    pub increments: u64,
    /// The amount before caps.
    pub amount: Money,
    /// The amount charged after caps.
    pub charged: Money,
    /// Whether this is the grace line (not serialized: the API shows it by its rule name).
    #[serde(skip)]
    pub grace: bool,
}

/// Why an interval could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// The interval ends before it starts.
    #[error("the interval ends ({end}) before it starts ({start})")]
    EndBeforeStart {
        /// The given start.
        start: DateTime<Utc>,
        /// The given end.
        end: DateTime<Utc>,
    },
    /// An instant lies outside the years 1677 to 2262.
    #[error("the interval lies outside the supported years 1677 to 2262")]
    OutOfRange,
    /// The fee does not fit the amount type (only with absurd tariffs).
    #[error("the fee is too large to represent")]
    Overflow,
}

fn rfc3339<S: Serializer>(at: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    // Whole seconds print without a fraction; `Z` is never used, so the offset is always
    // visible (`+00:00` for a lot on UTC).
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, false))
}

/// Prices `[start, end)` for a lot in `tz` (see docs/tariffs.md for the rules).
pub fn price(
    tariff: &Tariff,
    tz: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Fee, PriceError> {
    if end < start {
        return Err(PriceError::EndBeforeStart { start, end });
    }
    let currency = tariff.currency();
    let (start_at, start_local) = local_time::from_utc(tz, start).ok_or(PriceError::OutOfRange)?;
    let (end_at, end_local) = local_time::from_utc(tz, end).ok_or(PriceError::OutOfRange)?;

    let grace_ns = i64::from(tariff.grace_minutes()) * NS_PER_MINUTE;
    // Spec point 2 read literally: with the default grace of 0, a zero-length interval is
    // within grace too, and its one line names the grace.
    if end_at.ns.saturating_sub(start_at.ns) <= grace_ns {
        let zero = Money::zero(currency);
        return Ok(Fee {
            currency,
            total: zero,
            lines: vec![FeeLine {
                rule: GRACE_RULE.to_owned(),
                from: start_at.local(),
                to: end_at.local(),
                increments: 0,
                amount: zero,
                charged: zero,
                grace: true,
            }],
        });
    }

    let mut sweep = Sweep {
        tariff,
        tz,
        start: start_at.ns,
        end: end_at.ns,
        // A window from the day before the start can still be open at the start; see
        // `Cursor::advance` for why one day each side is enough.
        last_date: end_local.date().succ_opt().ok_or(PriceError::OutOfRange)?,
        cursors: Vec::with_capacity(tariff.rules().len()),
        period: Period {
            end: i64::MIN,
            charged: 0,
        },
        total: 0,
        lines: Vec::new(),
    };
    let first_date = start_local
        .date()
        .pred_opt()
        .ok_or(PriceError::OutOfRange)?;
    sweep
        .cursors
        .resize(tariff.rules().len(), Cursor::new(first_date));
    sweep.run(start_at, end_at)?;
    Ok(Fee {
        currency,
        total: Money::from_minor(sweep.total, currency),
        lines: sweep.lines,
    })
}

/// One occurrence of a rule's window, as instants.
#[derive(Debug, Clone, Copy)]
struct Occurrence {
    start: Instant,
    end: Instant,
}

/// A rule's position in time: its current occurrence and what that occurrence has charged.
#[derive(Debug, Clone)]
struct Cursor {
    /// The next local date whose occurrence has not been generated yet.
    next_date: NaiveDate,
    current: Option<Occurrence>,
    exhausted: bool,
    /// Running total charged in the current occurrence (for the rule's `cap`).
    charged: i64,
    /// Whether the current occurrence's flat has been charged.
    flat_done: bool,
}

/// The cap period the last charge fell in.
struct Period {
    /// End of the period (exclusive), `i64::MIN` before the first charge.
    end: i64,
    /// Running total charged in it (for `daily_cap`).
    charged: i64,
}

struct Sweep<'a> {
    tariff: &'a Tariff,
    tz: Tz,
    start: i64,
    end: i64,
    last_date: NaiveDate,
    cursors: Vec<Cursor>,
    period: Period,
    total: i64,
    lines: Vec<FeeLine>,
}

impl Cursor {
    fn new(first_date: NaiveDate) -> Self {
        Self {
            next_date: first_date,
            current: None,
            exhausted: false,
            charged: 0,
            flat_done: false,
        }
    }

    /// The rule's first occurrence that ends after `t` and starts before `end`, if any.
    ///
    /// Occurrences of one rule never overlap and come in date order: an occurrence ends
    /// at or before the next date's begins on the wall clock, and the gap/ambiguity rules
    /// map later wall-clock times to instants that are not earlier. So an occurrence from
    /// two days before the start's local date has ended by the start, and one from two
    /// days after the end's local date begins after the end.
    fn advance(
        &mut self,
        rule: &Rule,
        tz: Tz,
        t: i64,
        end: i64,
        last_date: NaiveDate,
    ) -> Result<Option<Occurrence>, PriceError> {
        loop {
            if let Some(occ) = self.current {
                if occ.end.ns > t {
                    return Ok(Some(occ));
                }
                self.current = None;
            }
            if self.exhausted {
                return Ok(None);
            }
            let Some(date) = next_accepted(rule, self.next_date, last_date) else {
                self.exhausted = true;
                return Ok(None);
            };
            self.next_date = date.succ_opt().ok_or(PriceError::OutOfRange)?;
            let occ = occurrence(rule, tz, date).ok_or(PriceError::OutOfRange)?;
            if occ.start.ns >= end {
                self.exhausted = true;
                return Ok(None);
            }
            if occ.end.ns > occ.start.ns {
                self.current = Some(occ);
                self.charged = 0;
                self.flat_done = false;
            }
        }
    }
}

/// The first date from `from` to `last` that the rule's `days`/`dates` filters accept.
fn next_accepted(rule: &Rule, from: NaiveDate, last: NaiveDate) -> Option<NaiveDate> {
    if let Some(dates) = rule.dates() {
        let i = dates.partition_point(|d| *d < from);
        return dates[i..]
            .iter()
            .copied()
            .take_while(|d| *d <= last)
            .find(|d| rule.accepts(*d));
    }
    // With a `days` filter an accepted date is at most six days away.
    let mut date = from;
    while date <= last {
        if rule.accepts(date) {
            return Some(date);
        }
        date = date.succ_opt()?;
    }
    None
}

/// The occurrence of the rule's window that belongs to local date `date`.
fn occurrence(rule: &Rule, tz: Tz, date: NaiveDate) -> Option<Occurrence> {
    let from = rule.from().map_or(0, |t| t.minutes());
    let to = rule.to().map_or(24 * 60, |t| t.minutes());
    // `to` <= `from` crosses midnight (equal: a 24-hour window); `to` = 24:00 is the next
    // day's midnight.
    let mut end_date = date;
    if to <= from || to == 24 * 60 {
        end_date = end_date.succ_opt()?;
    }
    let at = |d: NaiveDate, minutes: u16| {
        let time = NaiveTime::from_hms_opt(u32::from(minutes / 60), u32::from(minutes % 60), 0)?;
        local_time::resolve(tz, d.and_time(time))
    };
    Some(Occurrence {
        start: at(date, from)?,
        end: at(end_date, to % (24 * 60))?,
    })
}

impl Sweep<'_> {
    fn run(&mut self, start: Instant, end: Instant) -> Result<(), PriceError> {
        let rules = self.tariff.rules();
        let mut t = start;
        while t.ns < self.end {
            let mut winner = None;
            let mut next = end;
            for (r, rule) in rules.iter().enumerate() {
                let found =
                    self.cursors[r].advance(rule, self.tz, t.ns, self.end, self.last_date)?;
                let Some(occ) = found else { continue };
                if occ.start.ns <= t.ns {
                    // The first-listed containing occurrence wins; later rules cannot
                    // cut its segment short.
                    if occ.end.ns < next.ns {
                        next = occ.end;
                    }
                    winner = Some(r);
                    break;
                }
                // An earlier-listed rule that starts later ends the segment there.
                if occ.start.ns < next.ns {
                    next = occ.start;
                }
            }
            if let Some(r) = winner {
                let line = self.segment(r, t, next)?;
                self.lines.push(line);
            }
            t = next;
        }
        Ok(())
    }

    /// Charges the segment `[from, to)` of rule `r`'s current occurrence.
    fn segment(&mut self, r: usize, from: Instant, to: Instant) -> Result<FeeLine, PriceError> {
        let rule = &self.tariff.rules()[r];
        let mut amount: i64 = 0;
        let mut charged: i64 = 0;
        let mut increments: u64 = 0;
        match rule.price() {
            Price::Free => {}
            Price::Flat(flat) => {
                if !self.cursors[r].flat_done {
                    self.cursors[r].flat_done = true;
                    let raw = minor(flat)?;
                    amount = raw;
                    charged = self.clip(r, from.ns, raw)?;
                    increments = 1;
                }
            }
            Price::Every {
                every_minutes,
                amount: each,
            } => {
                let steps = Steps::One(*every_minutes, *each);
                (amount, charged, increments) = self.increments(r, steps, from.ns, to.ns)?;
            }
            Price::Steps(steps) => {
                (amount, charged, increments) =
                    self.increments(r, Steps::Many(steps), from.ns, to.ns)?;
            }
        }
        let currency = self.tariff.currency();
        Ok(FeeLine {
            rule: rule.name().to_owned(),
            from: from.local(),
            to: to.local(),
            increments,
            amount: Money::from_minor(amount, currency),
            charged: Money::from_minor(charged, currency),
            grace: false,
        })
    }

    /// Lays increments from `from` to past `to`, in runs of increments that share a step
    /// and a cap period, so each run is charged with one multiplication and one clip.
    ///
    /// Clipping a run of `n` equal charges one by one against a remaining allowance `R`
    /// charges `min(n * c, R)` in total, which is what one clip of the run's sum gives.
    fn increments(
        &mut self,
        r: usize,
        steps: Steps<'_>,
        from: i64,
        to: i64,
    ) -> Result<(i64, i64, u64), PriceError> {
        let (mut amount, mut charged, mut increments) = (0i64, 0i64, 0u64);
        let daily = self.tariff.daily_cap().is_some();
        let mut x = from;
        while x < to {
            let Some((until, every, each)) = steps.at(x.saturating_sub(self.start)) else {
                break;
            };
            let length = i64::from(every) * NS_PER_MINUTE;
            let mut limit = to;
            if let Some(m) = until {
                limit = limit.min(self.start.saturating_add(i64::from(m) * NS_PER_MINUTE));
            }
            if daily {
                self.enter_period(x)?;
                limit = limit.min(self.period.end);
            }
            // Every increment whose first instant lies before `limit` belongs to this run.
            // `limit` > `x` always (the step, period and segment all extend past `x`), so
            // this is ceil((limit - x) / length) >= 1 without overflowing near the end of
            // the i64 range; the `max` guards the loop against a zero-length run anyway.
            let n = ((limit - x).max(1) - 1) / length + 1;
            let raw = n.checked_mul(minor(&each)?).ok_or(PriceError::Overflow)?;
            amount = amount.checked_add(raw).ok_or(PriceError::Overflow)?;
            charged += self.clip(r, x, raw)?;
            increments += n.unsigned_abs();
            x = x.saturating_add(n.saturating_mul(length));
        }
        Ok((amount, charged, increments))
    }

    /// Charges as much of `raw` (first instant `at`) as the rule's cap and the daily cap
    /// allow, and books it against both running totals.
    fn clip(&mut self, r: usize, at: i64, raw: i64) -> Result<i64, PriceError> {
        let mut allowed = raw;
        if let Some(cap) = self.tariff.rules()[r].cap() {
            allowed = allowed.min(minor(&cap)? - self.cursors[r].charged);
        }
        if let Some(daily) = self.tariff.daily_cap() {
            self.enter_period(at)?;
            allowed = allowed.min(minor(&daily.amount)? - self.period.charged);
        }
        // Totals never exceed their caps, so `allowed` is never negative; this keeps it so
        // even if a cap were lowered mid-way by a future change.
        let allowed = allowed.max(0);
        self.cursors[r].charged += allowed;
        self.period.charged += allowed;
        self.total = self
            .total
            .checked_add(allowed)
            .ok_or(PriceError::Overflow)?;
        Ok(allowed)
    }

    /// Moves the cap period forward to the one containing `at` (charges come in time order).
    fn enter_period(&mut self, at: i64) -> Result<(), PriceError> {
        if at < self.period.end {
            return Ok(());
        }
        let Some(cap) = self.tariff.daily_cap() else {
            return Ok(());
        };
        self.period.charged = 0;
        self.period.end = match cap.period {
            CapPeriod::Rolling24h => {
                let k = at.saturating_sub(self.start) / NS_PER_DAY;
                self.start
                    .saturating_add((k + 1).saturating_mul(NS_PER_DAY))
            }
            CapPeriod::CalendarDay => {
                // Periods run from one resolved local midnight to the next, so a 23- or
                // 25-hour day is one period.
                let date = local_time::local_date(self.tz, at);
                let midnight =
                    |d: NaiveDate| local_time::resolve(self.tz, d.and_time(NaiveTime::MIN));
                let mut next = date.succ_opt().ok_or(PriceError::OutOfRange)?;
                let mut end = midnight(next).ok_or(PriceError::OutOfRange)?.ns;
                // Only in a zone whose midnight moves across `at` can the date be off by one.
                while end <= at {
                    next = next.succ_opt().ok_or(PriceError::OutOfRange)?;
                    end = midnight(next).ok_or(PriceError::OutOfRange)?.ns;
                }
                end
            }
        };
        Ok(())
    }
}

/// The increment steps of a price: a plain `every_minutes` price is one open-ended step.
#[derive(Clone, Copy)]
enum Steps<'a> {
    One(u32, Money),
    Many(&'a [Step]),
}

impl Steps<'_> {
    /// The step in force at `elapsed` nanoseconds into the session: the first whose
    /// `until_minute` lies beyond it, else the last (validation guarantees one exists).
    /// Returns its `until_minute`, `every_minutes` and amount; `None` only for no steps.
    fn at(self, elapsed: i64) -> Option<(Option<u32>, u32, Money)> {
        match self {
            Steps::One(every, amount) => Some((None, every, amount)),
            Steps::Many(steps) => steps
                .iter()
                .find(|s| {
                    s.until_minute
                        .is_none_or(|m| i64::from(m) * NS_PER_MINUTE > elapsed)
                })
                .or(steps.last())
                .map(|s| (s.until_minute, s.every_minutes, s.amount)),
        }
    }
}

/// A tariff amount as minor units; validation keeps every amount far inside `i64`.
fn minor(m: &Money) -> Result<i64, PriceError> {
    m.to_minor().ok_or(PriceError::Overflow)
}
