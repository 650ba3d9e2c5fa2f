//! Local wall-clock times to instants, with the tariff's rules for daylight-saving time:
//! a time that does not exist (the gap) means the first instant after the gap, and a time
//! that exists twice (the repeated hour) means the earlier instant.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// An instant as nanoseconds since the Unix epoch, with the lot's UTC offset at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Instant {
    pub(super) ns: i64,
    pub(super) offset: FixedOffset,
}

impl Instant {
    /// The instant as RFC 3339-ready local time.
    pub(super) fn local(&self) -> DateTime<FixedOffset> {
        DateTime::<Utc>::from_timestamp_nanos(self.ns).with_timezone(&self.offset)
    }
}

/// An instant with its offset in `tz` and its local wall-clock time, or `None` outside
/// the range of `i64` nanoseconds
/// (years 1677 to 2262).
pub(super) fn from_utc(tz: Tz, at: DateTime<Utc>) -> Option<(Instant, NaiveDateTime)> {
    let ns = at.timestamp_nanos_opt()?;
    let offset = tz.offset_from_utc_datetime(&at.naive_utc()).fix();
    let local = at.naive_utc().checked_add_offset(offset)?;
    Some((Instant { ns, offset }, local))
}

/// The local date of instant `ns` in `tz`.
pub(super) fn local_date(tz: Tz, ns: i64) -> NaiveDate {
    let utc = DateTime::<Utc>::from_timestamp_nanos(ns).naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix();
    utc.checked_add_offset(offset).unwrap_or(utc).date()
}

/// The instant a local wall-clock time designates, per the tariff's daylight-saving rules.
/// `None` only outside the range of `i64` nanoseconds.
pub(super) fn resolve(tz: Tz, local: NaiveDateTime) -> Option<Instant> {
    let at = match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t,
        LocalResult::Ambiguous(a, b) => a.min(b),
        LocalResult::None => first_instant_after_gap(tz, local)?,
    };
    Some(Instant {
        ns: at.timestamp_nanos_opt()?,
        offset: at.offset().fix(),
    })
}

/// The first instant whose local time is later than `local`, which sits in a gap.
///
/// Local time as a function of the instant jumps forward across the gap, so the first
/// instant at or after `local` is the transition itself. Offsets lie within -12 h..+14 h,
/// so it is found by bisecting whole seconds between `local - 15 h` and `local + 13 h`.
/// Gaps are rare (twice a year at most), so these ~17 look-ups do not matter.
fn first_instant_after_gap(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Tz>> {
    let local_secs = local.and_utc().timestamp();
    let wall = |utc_secs: i64| -> Option<i64> {
        let utc = DateTime::<Utc>::from_timestamp(utc_secs, 0)?.naive_utc();
        Some(utc_secs + i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()))
    };
    // Invariant: wall(lo) < local <= wall(hi).
    let mut lo = local_secs - 15 * 3600;
    let mut hi = local_secs + 13 * 3600;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall(mid)? >= local_secs {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(tz.from_utc_datetime(&DateTime::<Utc>::from_timestamp(hi, 0)?.naive_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn utc(i: Instant) -> String {
        DateTime::<Utc>::from_timestamp_nanos(i.ns).to_rfc3339()
    }

    #[test]
    fn a_time_in_the_gap_is_the_first_instant_after_it() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let i = resolve(tz, local(2026, 3, 29, 2, 30)).unwrap();
        assert_eq!(utc(i), "2026-03-29T01:00:00+00:00");
        assert_eq!(i.local().to_rfc3339(), "2026-03-29T03:00:00+02:00");
    }

    #[test]
    fn a_repeated_time_is_the_earlier_instant() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let i = resolve(tz, local(2026, 11, 1, 1, 30)).unwrap();
        assert_eq!(i.local().to_rfc3339(), "2026-11-01T01:30:00-04:00");
    }
}
