//! Parking spaces: a code painted on the ground, unique within its lot.

use std::fmt;
use std::str::FromStr;

/// Longest space code, in characters.
pub const MAX_CODE: usize = 32;
/// Most spaces created by one request.
pub const MAX_BULK: usize = 1000;

/// A space's code as painted on the ground and printed on its QR sticker (`A-012`, `B2-17`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpaceCode(String);

/// Why a space code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpaceCodeError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_CODE} characters")]
    TooLong,
    #[error(
        "may hold only letters, digits, '-', '_' and '.', and must start with a letter or digit"
    )]
    BadCharacter,
}

/// The characters of a space code, as a pattern both the OpenAPI document (ECMA 262) and
/// [`SpaceCode::parse`] read: a letter or digit of any script (Unicode categories L and N)
/// first, then letters, digits, `-`, `_` and `.`. Combining marks are not letters: write
/// `é`, not `e` and U+0301. Lengths are counted apart ([`MAX_CODE`]).
pub const CODE_PATTERN: &str = r"^[\p{L}\p{N}][\p{L}\p{N}\-_.]*$";

static CODE: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(CODE_PATTERN).expect("a valid pattern"));

impl SpaceCode {
    /// Validates a code: letters and digits (any script), with `-`, `_`, `.` inside.
    pub fn parse(code: &str) -> Result<Self, SpaceCodeError> {
        if code.is_empty() {
            return Err(SpaceCodeError::Empty);
        }
        if code.chars().count() > MAX_CODE {
            return Err(SpaceCodeError::TooLong);
        }
        // Codes are printed on stickers and typed by enforcement officers: no spaces or
        // punctuation that could be misread, and nothing that changes meaning in a URL.
        if !CODE.is_match(code) {
            return Err(SpaceCodeError::BadCharacter);
        }
        Ok(Self(code.to_owned()))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SpaceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether drivers may park in a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpaceStatus {
    Active,
    OutOfService,
}

impl SpaceStatus {
    /// The stored and serialised name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::OutOfService => "out_of_service",
        }
    }
}

impl FromStr for SpaceStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "out_of_service" => Ok(Self::OutOfService),
            other => Err(format!("unknown space status `{other}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_painted_codes() {
        for ok in ["A-012", "B2_17", "P1.003", "7", "东区-1", "Ä-1", "Ⅻ-2"] {
            assert!(SpaceCode::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_empty_long_and_odd_codes() {
        assert_eq!(SpaceCode::parse(""), Err(SpaceCodeError::Empty));
        assert_eq!(
            SpaceCode::parse(&"A".repeat(MAX_CODE + 1)),
            Err(SpaceCodeError::TooLong)
        );
        for bad in [
            "-A1",
            "A 1",
            "A/1",
            "A?1",
            " A1",
            "A\n",
            "\u{301}A",
            "e\u{301}",
            "A\u{200b}",
            "Ⓐ1",
        ] {
            assert_eq!(
                SpaceCode::parse(bad),
                Err(SpaceCodeError::BadCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn status_round_trips() {
        for s in [SpaceStatus::Active, SpaceStatus::OutOfService] {
            assert_eq!(s.as_str().parse::<SpaceStatus>(), Ok(s));
        }
    }
}
