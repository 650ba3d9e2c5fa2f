//! Vehicle registration plates, normalised so that what a driver typed and what a warden
//! reads off the car compare equal.

use std::fmt;

/// The 31 provincial abbreviations that open a mainland Chinese plate.
pub const PROVINCES: [char; 31] = [
    '京', '津', '沪', '渝', '冀', '豫', '云', '辽', '黑', '湘', '皖', '鲁', '新', '苏', '浙', '赣',
    '鄂', '桂', '甘', '晋', '蒙', '陕', '吉', '闽', '贵', '粤', '青', '藏', '川', '宁', '琼',
];

/// The shortest and longest run of Latin letters and digits after the province character.
const MIN_CHARS: usize = 2;
const MAX_CHARS: usize = 10;

/// What [`Plate::parse`] accepts, as an ECMA 262 pattern for the OpenAPI document: the
/// separators anywhere, one province character before the first Latin letter or digit, and 2
/// to 10 Latin letters (either case) and digits.
pub static PATTERN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let provinces: String = PROVINCES.iter().collect();
    let sep = r"[ \-\u00B7.]*";
    format!("^{sep}(?:[{provinces}]{sep})?(?:[A-Za-z0-9]{sep}){{{MIN_CHARS},{MAX_CHARS}}}$")
});

/// A normalised plate: upper case, no separators, 2 to 10 of `A-Z0-9`, optionally after one
/// province character (`沪A12345`, `沪AD12345` for new-energy vehicles, `B123XYZ`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Plate(String);

/// Why a text is not a plate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be 2 to 10 letters A-Z and digits, optionally after one Chinese province character \
     (for example 沪A12345)"
)]
pub struct InvalidPlate;

impl Plate {
    /// Normalises `text` (upper case; spaces, `-`, `·` and `.` removed) and checks the result.
    pub fn parse(text: &str) -> Result<Self, InvalidPlate> {
        // Exactly the spec's rule: ASCII letters upper-cased, the four separators removed;
        // anything else (a tab, a full-width letter, `ß`) stays and is refused below.
        let normal: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '·' | '.'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let rest = match normal.chars().next() {
            Some(first) if PROVINCES.contains(&first) => &normal[first.len_utf8()..],
            _ => normal.as_str(),
        };
        let latin = rest
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if latin && (MIN_CHARS..=MAX_CHARS).contains(&rest.len()) {
            Ok(Self(normal))
        } else {
            Err(InvalidPlate)
        }
    }

    /// The normalised plate.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Plate {
    /// HMAC-SHA256 (RFC 2104) of the normalised plate under `key`: how the audit chain
    /// commits to a plate without holding it, so that erasing the plate later leaves the
    /// chain whole, and whoever holds the key and a plate can check it against the chain.
    pub fn keyed_hash(&self, key: &[u8; 32]) -> [u8; 32] {
        crate::domain::keyed_hash::hmac_sha256(key, self.0.as_bytes())
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plate(text: &str) -> String {
        Plate::parse(text).unwrap().to_string()
    }

    #[test]
    fn mainland_new_energy_and_latin_plates_are_accepted() {
        assert_eq!(plate("沪A12345"), "沪A12345");
        assert_eq!(plate("沪AD12345"), "沪AD12345");
        assert_eq!(plate("京N8P8F8"), "京N8P8F8");
        assert_eq!(plate("B 123 XYZ"), "B123XYZ");
        assert_eq!(plate("AB"), "AB");
        assert_eq!(plate("ABCDE12345"), "ABCDE12345");
        assert_eq!(plate("粤ABCDE12345"), "粤ABCDE12345");
    }

    #[test]
    fn letters_are_upper_cased_and_separators_removed() {
        assert_eq!(plate("沪a·123.45"), "沪A12345");
        assert_eq!(plate(" m-ab 12-34 "), "MAB1234");
        assert_eq!(Plate::parse("沪 a-12345"), Plate::parse("沪A12345"));
    }

    #[test]
    fn every_province_opens_a_plate() {
        for province in PROVINCES {
            assert!(
                Plate::parse(&format!("{province}A12345")).is_ok(),
                "{province}"
            );
        }
        let distinct: std::collections::HashSet<char> = PROVINCES.into_iter().collect();
        assert_eq!(distinct.len(), 31);
    }

    #[test]
    fn the_keyed_hash_is_hmac_sha256() {
        use sha2::{Digest, Sha256};
        // The construction written out by hand (the published vectors are checked in
        // `domain::keyed_hash`): H((K^opad) || H((K^ipad) || m)).
        let key = [0x0bu8; 32];
        let plate = Plate::parse("沪A12345").unwrap();
        let mut k = [0u8; 64];
        k[..32].copy_from_slice(&key);
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::digest([ipad.as_slice(), "沪A12345".as_bytes()].concat());
        let expected: [u8; 32] = Sha256::digest([opad.as_slice(), &inner[..]].concat()).into();
        assert_eq!(plate.keyed_hash(&key), expected);
        assert_ne!(plate.keyed_hash(&key), plate.keyed_hash(&[0x0c; 32]));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "A",
            "沪A",
            "沪",
            "ABCDEFGHIJK",
            "沪ABCDEFGHIJK",
            "中A12345",
            "A沪12345",
            "沪沪A12345",
            "AB_12",
            "ÄB123",
            "ＡＢ123",
            "AB/12",
            "AB\t12",
            "ßAB12",
            "ﬁ123",
            "AB\u{3000}12",
        ] {
            assert_eq!(Plate::parse(bad), Err(InvalidPlate), "{bad:?}");
        }
    }

    #[test]
    fn the_pattern_agrees_with_parse() {
        let pattern = regex::Regex::new(&PATTERN).unwrap();
        let pieces = [
            "", "沪", "京", "A", "b", "9", " ", "-", "·", ".", "ß", "Ａ", "\t", "东",
        ];
        let mut texts = Vec::new();
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    texts.push(format!("{a}{b}{c}"));
                    texts.push(format!("{a}{b}1{c}"));
                    texts.push(format!("{a}{b}A2345678{c}"));
                    texts.push(format!("{a}{b}A23456789{c}"));
                }
            }
        }
        for text in &texts {
            assert_eq!(
                pattern.is_match(text),
                Plate::parse(text).is_ok(),
                "{text:?}"
            );
        }
    }
}
