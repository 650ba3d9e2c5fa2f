//! Rules shared by the short human-entered texts (names, addresses, codes).

/// The whitespace `str::trim` removes that is not also a control character (Unicode
/// White_Space less Cc), spelled for a regular-expression character class.
const SPACES: &str = r" \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// What [`check_line`] accepts, as an ECMA 262 pattern for the OpenAPI document (lengths
/// are `minLength`/`maxLength`): no control character, no whitespace at either end.
pub static LINE_PATTERN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let inner = r"\x00-\x1F\x7F-\x9F";
    format!("^[^{inner}{SPACES}](?:[^{inner}]*[^{inner}{SPACES}])?$")
});

/// What [`check_note`] accepts, as an ECMA 262 pattern: tabs and line breaks allowed, other
/// control characters not, and at least one character that is not whitespace.
pub static NOTE_PATTERN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let allowed = r"[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*";
    format!(r"^{allowed}[^\x00-\x1F\x7F-\x9F{SPACES}]{allowed}$")
});

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

    /// The OpenAPI patterns say exactly what the checks accept, character by character.
    #[test]
    fn the_patterns_agree_with_the_checks() {
        let line = regex::Regex::new(&LINE_PATTERN).unwrap();
        let note = regex::Regex::new(&NOTE_PATTERN).unwrap();
        let odd = [
            ' ',
            '\t',
            '\n',
            '\r',
            '\u{b}',
            '\u{c}',
            '\u{7}',
            '\u{7f}',
            '\u{85}',
            '\u{9f}',
            '\u{a0}',
            '\u{a1}',
            '\u{1680}',
            '\u{2000}',
            '\u{200a}',
            '\u{200b}',
            '\u{2028}',
            '\u{202f}',
            '\u{205f}',
            '\u{3000}',
            '\u{feff}',
            'a',
            '停',
            '\u{1f600}',
        ];
        let mut texts = vec![String::new()];
        for a in odd {
            texts.push(a.to_string());
            for b in odd {
                texts.push(format!("{a}{b}"));
                texts.push(format!("{a}x{b}"));
            }
        }
        for text in &texts {
            assert_eq!(
                line.is_match(text),
                check_line(text, usize::MAX).is_ok(),
                "line {text:?}"
            );
            assert_eq!(
                note.is_match(text),
                check_note(text, usize::MAX).is_ok(),
                "note {text:?}"
            );
        }
    }
}
