//! Space codes written as ranges, the way operators number their lots: `A-001..A-120` is
//! the 120 codes ... A-120. A list mixes ranges and single codes, separated by
//! commas or line breaks.

use super::space::MAX_BULK;

/// Why a list of ranges was refused; each names the part it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("give at least one code or range")]
    Empty,
    #[error("`{0}`: both ends must be a prefix followed by a number, as in A-001..A-120")]
    NoNumber(String),
    #[error("`{0}`: both ends must have the same prefix")]
    PrefixDiffers(String),
    #[error("`{0}`: both ends must have the same number of digits")]
    WidthDiffers(String),
    #[error("`{0}`: the first number must not be larger than the last")]
    Backwards(String),
    #[error("at most {MAX_BULK} spaces at once")]
    TooMany,
}

/// The codes a list of ranges and single codes stands for, in order. Codes themselves are
/// checked afterwards, like any other (`SpaceCode::parse`).
pub fn expand(text: &str) -> Result<Vec<String>, RangeError> {
    let mut codes = Vec::new();
    for part in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match part.split_once("..") {
            None => codes.push(part.to_owned()),
            Some((first, last)) => {
                let (prefix, start, width) = split_number(first.trim())
                    .ok_or_else(|| RangeError::NoNumber(part.to_owned()))?;
                let (last_prefix, end, last_width) = split_number(last.trim())
                    .ok_or_else(|| RangeError::NoNumber(part.to_owned()))?;
                if prefix != last_prefix {
                    return Err(RangeError::PrefixDiffers(part.to_owned()));
                }
                // Zero-padded numbers (`A-001`) keep their width; plain ones (`9..11`) grow.
                let padded = width.1 || last_width.1;
                if padded && width.0 != last_width.0 {
                    return Err(RangeError::WidthDiffers(part.to_owned()));
                }
                if start > end {
                    return Err(RangeError::Backwards(part.to_owned()));
                }
                if (end - start) as usize >= MAX_BULK - codes.len().min(MAX_BULK) {
                    return Err(RangeError::TooMany);
                }
                let width = if padded { width.0 } else { 0 };
                codes.extend((start..=end).map(|n| format!("{prefix}{n:0width$}")));
            }
        }
        if codes.len() > MAX_BULK {
            return Err(RangeError::TooMany);
        }
    }
    if codes.is_empty() {
        return Err(RangeError::Empty);
    }
    Ok(codes)
}

/// `A-007` -> (`A-`, 7, (3, true)), `B12` -> (`B`, 12, (2, false)): the prefix, the
/// trailing number, its digits and whether it is zero-padded.
fn split_number(code: &str) -> Option<(&str, u64, (usize, bool))> {
    let digits = code.chars().rev().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let (prefix, number) = code.split_at(code.len() - digits);
    let padded = digits > 1 && number.starts_with('0');
    Some((prefix, number.parse().ok()?, (digits, padded)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_with_their_padding() {
        let codes = expand("A-001..A-120").unwrap();
        assert_eq!(codes.len(), 120);
        assert_eq!((codes[0].as_str(), codes[119].as_str()), ("A-001", "A-120"));
        assert_eq!(
            expand("B7, C1..C3\nX").unwrap(),
            ["B7", "C1", "C2", "C3", "X"]
        );
        assert_eq!(
            expand("9..11").unwrap(),
            ["9", "10", "11"].map(String::from)
        );
    }

    #[test]
    fn bad_ranges_are_named() {
        assert_eq!(expand(" , "), Err(RangeError::Empty));
        assert!(matches!(expand("A..B"), Err(RangeError::NoNumber(_))));
        assert!(matches!(
            expand("A-1..B-3"),
            Err(RangeError::PrefixDiffers(_))
        ));
        assert!(matches!(
            expand("A-01..A-100"),
            Err(RangeError::WidthDiffers(_))
        ));
        assert!(matches!(expand("A-9..A-1"), Err(RangeError::Backwards(_))));
        assert_eq!(expand("A-0001..A-1000").map(|c| c.len()), Ok(1000));
        assert_eq!(expand("A-0001..A-1001"), Err(RangeError::TooMany));
        assert_eq!(expand("X, A-0001..A-1000"), Err(RangeError::TooMany));
    }
}
