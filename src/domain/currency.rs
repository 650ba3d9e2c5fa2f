//! ISO 4217 currency codes and their minor units.

use std::fmt;
use std::str::FromStr;

/// An ISO 4217 currency that has a minor unit (precious metals and testing codes are excluded:
/// nobody pays for parking in them).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    minor_unit: u8,
}

/// Active ISO 4217 codes whose minor unit is not 2. Every other code in [`TWO_DECIMALS`] has 2.
const OTHER_MINOR_UNITS: &[(&str, u8)] = &[
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("ISK", 0),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("PYG", 0),
    ("RWF", 0),
    ("UGX", 0),
    ("UYI", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("BHD", 3),
    ("IQD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("TND", 3),
    ("CLF", 4),
    ("UYW", 4),
];

/// Active ISO 4217 codes with a minor unit of 2.
const TWO_DECIMALS: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHE",
    "CHF", "CHW", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP",
    "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ", "GYD", "HKD",
    "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR", "KPW", "KYD",
    "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP",
    "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR",
    "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SBD",
    "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL",
    "THB", "TJS", "TMT", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "USN", "UYU", "UZS",
    "VED", "VES", "WST", "XCD", "XCG", "YER", "ZAR", "ZMW", "ZWG",
];

/// Why a string is not a currency we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ISO 4217 currency code with a minor unit (for example CNY, EUR, JPY)")]
pub struct UnknownCurrency(pub String);

impl Currency {
    /// Every code [`Currency::parse`] accepts.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        OTHER_MINOR_UNITS
            .iter()
            .map(|(code, _)| *code)
            .chain(TWO_DECIMALS.iter().copied())
    }

    /// Parses an upper-case ISO 4217 code such as `CNY`.
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        let minor_unit = OTHER_MINOR_UNITS
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, m)| *m)
            .or_else(|| TWO_DECIMALS.contains(&code).then_some(2))
            .ok_or_else(|| UnknownCurrency(code.to_owned()))?;
        let bytes = code.as_bytes();
        Ok(Self {
            code: [bytes[0], bytes[1], bytes[2]],
            minor_unit,
        })
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // The bytes came from a validated ASCII code.
        std::str::from_utf8(&self.code).expect("currency codes are ASCII")
    }

    /// The number of decimals of the currency's minor unit (CNY 2, JPY 0, KWD 3).
    pub fn minor_unit(&self) -> u32 {
        u32::from(self.minor_unit)
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(Currency::parse("CNY").unwrap().minor_unit(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().minor_unit(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_unit(), 3);
        assert_eq!(Currency::parse("EUR").unwrap().minor_unit(), 2);
        assert_eq!(Currency::parse("CLF").unwrap().minor_unit(), 4);
    }

    #[test]
    fn rejects_unknown_lower_case_and_metal_codes() {
        for bad in ["cny", "XXX", "XAU", "", "CN", "CNYY", "ABC"] {
            assert!(Currency::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn tables_do_not_overlap() {
        for (code, _) in OTHER_MINOR_UNITS {
            assert!(!TWO_DECIMALS.contains(code), "{code} listed twice");
        }
    }

    #[test]
    fn every_listed_code_parses() {
        let codes: Vec<&str> = Currency::codes().collect();
        assert!(codes.len() > 150);
        for code in codes {
            assert_eq!(Currency::parse(code).unwrap().code(), code);
        }
    }
}
