//! Parking lots: a named place with one time zone and one currency.

use super::currency::Currency;
use super::text::{TextError, check_line};
use super::timezone::TimeZone;

/// Longest lot name, in characters.
pub const MAX_NAME: usize = 120;
/// Longest address, in characters.
pub const MAX_ADDRESS: usize = 300;

/// A lot's display name, 1 to 120 characters on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotName(String);

impl LotName {
    /// Validates a name as the operator typed it.
    pub fn parse(name: &str) -> Result<Self, TextError> {
        check_line(name, MAX_NAME).map(|()| Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A lot's postal address, 1 to 300 characters on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(String);

impl Address {
    /// Validates an address as the operator typed it.
    pub fn parse(address: &str) -> Result<Self, TextError> {
        check_line(address, MAX_ADDRESS).map(|()| Self(address.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything needed to create a lot, already validated.
#[derive(Debug, Clone)]
pub struct NewLot {
    pub name: LotName,
    pub address: Option<Address>,
    pub timezone: TimeZone,
    pub currency: Currency,
    /// Every session in the lot must name the vehicle's plate.
    pub plate_required: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_trimmed_lines() {
        assert!(LotName::parse("People's Square P2").is_ok());
        assert!(LotName::parse("").is_err());
        assert!(LotName::parse(&"x".repeat(MAX_NAME + 1)).is_err());
        assert!(Address::parse("200 Renmin Ave, Huangpu, Shanghai").is_ok());
        assert!(Address::parse("line\nbreak").is_err());
    }
}
