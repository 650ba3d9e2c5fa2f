//! IANA time zones, the only source of local wall-clock time.

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;

/// A validated IANA time zone name such as `Asia/Shanghai`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(Tz);

/// Why a string is not a time zone we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IANA time zone name (for example Asia/Shanghai or Europe/Berlin)")]
pub struct UnknownTimeZone(pub String);

impl TimeZone {
    /// Every name [`TimeZone::parse`] accepts.
    pub fn names() -> impl Iterator<Item = &'static str> {
        chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
    }

    /// Parses an exact IANA name (case-sensitive, as the tz database spells it).
    pub fn parse(name: &str) -> Result<Self, UnknownTimeZone> {
        Tz::from_str(name)
            .map(Self)
            .map_err(|_| UnknownTimeZone(name.to_owned()))
    }

    /// The chrono-tz zone, for the pricing engine.
    pub fn tz(&self) -> Tz {
        self.0
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeZone({})", self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_iana_names() {
        assert_eq!(
            TimeZone::parse("Asia/Shanghai").unwrap().name(),
            "Asia/Shanghai"
        );
        assert!(TimeZone::parse("UTC").is_ok());
        assert!(TimeZone::parse("America/New_York").is_ok());
    }

    #[test]
    fn refuses_unknown_names_and_offsets() {
        for bad in ["Mars/Olympus", "", "+08:00", "asia/shanghai", "CST8"] {
            assert!(TimeZone::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn every_listed_name_parses() {
        let names: Vec<&str> = TimeZone::names().collect();
        assert!(names.len() > 400);
        for name in &names {
            assert_eq!(TimeZone::parse(name).unwrap().name(), *name);
        }
    }
}
