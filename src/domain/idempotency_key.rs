//! The key a client sends so that a repeated request runs once.

/// A validated `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// Why a text is not an idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the key must be 1 to 255 visible ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    /// The longest key accepted.
    pub const MAX_LEN: usize = 255;
    /// What [`IdempotencyKey::parse`] accepts, as an ECMA 262 pattern for the OpenAPI document.
    pub const PATTERN: &str = "^[!-~]{1,255}$";

    /// A key, if `text` is 1 to 255 visible ASCII characters.
    pub fn parse(text: &str) -> Result<Self, InvalidIdempotencyKey> {
        if text.is_empty()
            || text.len() > Self::MAX_LEN
            || !text.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(InvalidIdempotencyKey);
        }
        Ok(Self(text.to_owned()))
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidIdempotencyKey;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl AsRef<str> for IdempotencyKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::IdempotencyKey;

    #[test]
    fn visible_ascii_of_1_to_255_characters_is_a_key() {
        assert_eq!(IdempotencyKey::parse("a").unwrap().as_str(), "a");
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("tap-1:{x}~").is_ok());
    }

    #[test]
    fn empty_long_spaced_or_non_ascii_keys_are_refused() {
        for bad in ["", "a b", "tab\t", "ключ", "\u{7f}"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }
}
