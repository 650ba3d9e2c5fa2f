//! Exact amounts of money in one currency.
//!
//! An amount never carries more decimals than its currency's minor unit, and it is always
//! shown with exactly that many ("8.50" CNY, "1200" JPY, "0.500" KWD), because drivers,
//! operators and auditors compare these strings, not numbers.

use std::fmt;

use rust_decimal::Decimal;

use super::currency::Currency;

/// An exact amount in one currency, held at the currency's minor unit.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

/// Why an amount could not be built or combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is not a plain decimal such as `2.50` or `-1`.
    #[error("`{0}` is not a decimal amount such as \"2.50\"")]
    Syntax(String),
    /// The amount has more decimals than the currency's minor unit.
    #[error("`{amount}` has {decimals} decimals but {currency} allows at most {allowed}")]
    TooManyDecimals {
        /// The amount as given.
        amount: String,
        /// How many decimals it has.
        decimals: u32,
        /// The currency it was meant for.
        currency: Currency,
        /// The currency's minor unit.
        allowed: u32,
    },
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    /// The result does not fit the decimal type.
    #[error("amount out of range")]
    Overflow,
}

impl Money {
    /// Builds an amount, refusing one that is not a whole number of minor units.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let allowed = currency.minor_unit();
        // Trailing zeros beyond the minor unit are harmless here ("2.500" from arithmetic);
        // only a value that is not a whole number of minor units is refused.
        let normalized = amount.normalize();
        if normalized.scale() > allowed {
            return Err(MoneyError::TooManyDecimals {
                amount: amount.to_string(),
                decimals: normalized.scale(),
                currency,
                allowed,
            });
        }
        Ok(Self::at_minor_unit(amount, currency))
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::at_minor_unit(Decimal::ZERO, currency)
    }

    /// Builds an amount from a whole number of minor units (cents, fils, yen).
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self {
            amount: Decimal::new(minor, currency.minor_unit()),
            currency,
        }
    }

    /// Parses a plain decimal string (`"2.50"`, `"-1"`, `"1200"`) written with at most the
    /// currency's minor-unit decimals; exponents, signs other than `-`, spaces and a bare
    /// `.` are refused so that what is stored is what a person reads.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
            return Err(MoneyError::Syntax(text.to_owned()));
        }
        let decimals = fraction.map_or(0, |f| f.len());
        let allowed = currency.minor_unit();
        if decimals > allowed as usize {
            return Err(MoneyError::TooManyDecimals {
                amount: text.to_owned(),
                decimals: u32::try_from(decimals).unwrap_or(u32::MAX),
                currency,
                allowed,
            });
        }
        let amount: Decimal = text
            .parse()
            .map_err(|_| MoneyError::Syntax(text.to_owned()))?;
        Ok(Self::at_minor_unit(amount, currency))
    }

    /// The amount as a decimal with exactly the currency's minor-unit scale.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount as a whole number of minor units, if it fits in an `i64`.
    pub fn to_minor(&self) -> Option<i64> {
        i64::try_from(self.amount.mantissa()).ok()
    }

    /// Whether the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// Whether the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// `self + other`, refusing mixed currencies and overflow.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let sum = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::at_minor_unit(sum, self.currency))
    }

    /// `self - other`, refusing mixed currencies and overflow.
    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let difference = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::at_minor_unit(difference, self.currency))
    }

    /// The smaller of two amounts in the same currency.
    pub fn min(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(if other.amount < self.amount {
            *other
        } else {
            *self
        })
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    /// Stores the amount at the minor-unit scale so `Display` prints exactly those decimals.
    /// Callers guarantee the value is a whole number of minor units, so nothing is rounded.
    fn at_minor_unit(amount: Decimal, currency: Currency) -> Self {
        let mut amount = amount;
        amount.rescale(currency.minor_unit());
        // `-0.00` would print with a sign; zero has none.
        if amount.is_zero() {
            amount.set_sign_positive(true);
        }
        Self { amount, currency }
    }
}

impl fmt::Display for Money {
    /// The amount alone, with exactly the minor-unit decimals (`8.50`); no currency code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.amount, f)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

impl serde::Serialize for Money {
    /// A string with exactly the minor-unit decimals; the currency is carried beside it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    #[test]
    fn displays_exactly_the_minor_unit_decimals() {
        assert_eq!(Money::parse("8.5", cur("CNY")).unwrap().to_string(), "8.50");
        assert_eq!(
            Money::parse("1200", cur("JPY")).unwrap().to_string(),
            "1200"
        );
        assert_eq!(
            Money::parse("0.5", cur("KWD")).unwrap().to_string(),
            "0.500"
        );
        assert_eq!(Money::zero(cur("CNY")).to_string(), "0.00");
        assert_eq!(Money::from_minor(850, cur("CNY")).to_string(), "8.50");
        assert_eq!(Money::from_minor(-5, cur("KWD")).to_string(), "-0.005");
    }

    #[test]
    fn arithmetic_keeps_the_minor_unit_scale() {
        let a = Money::parse("2.50", cur("CNY")).unwrap();
        let b = Money::parse("3.75", cur("CNY")).unwrap();
        assert_eq!(a.checked_add(&b).unwrap().to_string(), "6.25");
        assert_eq!(a.checked_sub(&b).unwrap().to_string(), "-1.25");
        assert_eq!(a.min(&b).unwrap(), a);
        assert_eq!(a.checked_sub(&a).unwrap().to_string(), "0.00");
        assert!(!a.checked_sub(&a).unwrap().is_negative());
    }

    #[test]
    fn refuses_mixed_currencies() {
        let a = Money::parse("1.00", cur("CNY")).unwrap();
        let b = Money::parse("1.00", cur("EUR")).unwrap();
        assert!(matches!(
            a.checked_add(&b),
            Err(MoneyError::CurrencyMismatch(..))
        ));
        assert!(a.checked_sub(&b).is_err());
        assert!(a.min(&b).is_err());
    }

    #[test]
    fn refuses_overflow() {
        let max = Money::new(Decimal::MAX, cur("JPY")).unwrap();
        let one = Money::parse("1", cur("JPY")).unwrap();
        assert_eq!(max.checked_add(&one), Err(MoneyError::Overflow));
    }

    #[test]
    fn refuses_more_decimals_than_the_currency_has() {
        assert!(matches!(
            Money::parse("2.505", cur("CNY")),
            Err(MoneyError::TooManyDecimals { decimals: 3, .. })
        ));
        assert!(Money::parse("1.0", cur("JPY")).is_err());
        assert!(Money::new(Decimal::new(2505, 3), cur("CNY")).is_err());
        // A value that is a whole number of minor units is fine whatever its scale.
        assert_eq!(
            Money::new(Decimal::new(2500, 3), cur("CNY"))
                .unwrap()
                .to_string(),
            "2.50"
        );
    }

    #[test]
    fn parse_refuses_anything_but_a_plain_decimal() {
        for bad in [
            "", "-", ".5", "5.", "1e3", "+1", " 1", "1 ", "1,00", "0x10", "--1",
        ] {
            assert!(
                matches!(Money::parse(bad, cur("CNY")), Err(MoneyError::Syntax(_))),
                "{bad:?}"
            );
        }
        assert!(Money::parse("-1.25", cur("CNY")).unwrap().is_negative());
    }

    #[test]
    fn serializes_as_a_string() {
        let m = Money::parse("0.5", cur("KWD")).unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"0.500\"");
        assert_eq!(m.to_minor(), Some(500));
    }
}
