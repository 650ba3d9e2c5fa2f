//! Rules shared by the short human-entered texts (names, addresses, codes).

/// Why a human-entered text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not start or end with whitespace")]
    OuterWhitespace,
}

/// Checks a single-line text of 1..=`max` characters, trimmed, without control characters.
pub fn check_line(text: &str, max: usize) -> Result<(), TextError> {
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    if text.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    if text.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    if text.trim() != text {
        return Err(TextError::OuterWhitespace);
    }
    Ok(())
}

/// Checks a free note (a reason, what a warden saw): 1..=`max` characters, not only
/// whitespace, line breaks and tabs allowed but no other control characters.
pub fn check_note(text: &str, max: usize) -> Result<(), TextError> {
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    if text.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(TextError::ControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_may_span_lines_but_not_be_blank_or_too_long() {
        assert_eq!(check_note("blocked the exit\nsecond line", 500), Ok(()));
        assert_eq!(check_note("  ", 500), Err(TextError::Empty));
        assert_eq!(check_note("", 500), Err(TextError::Empty));
        assert_eq!(
            check_note(&"x".repeat(501), 500),
            Err(TextError::TooLong { max: 500 })
        );
        assert_eq!(check_note("a\u{7}", 500), Err(TextError::ControlCharacter));
    }

    #[test]
    fn accepts_ordinary_and_unicode_lines() {
        assert_eq!(check_line("Nanjing Road East", 100), Ok(()));
        assert_eq!(check_line("南京东路停车场", 10), Ok(()));
    }

    #[test]
    fn refuses_empty_long_control_and_padded_lines() {
        assert_eq!(check_line("", 10), Err(TextError::Empty));
        assert_eq!(check_line("abcdef", 5), Err(TextError::TooLong { max: 5 }));
        assert_eq!(check_line("a\nb", 5), Err(TextError::ControlCharacter));
        assert_eq!(check_line(" a", 5), Err(TextError::OuterWhitespace));
    }
}
