//! What a signing key signs. Each purpose has keys of its own, so that a key stolen or
//! misused for one kind of artefact proves nothing about the others, and each artefact is
//! verified only with keys of its purpose.

use std::fmt;

/// The four kinds of artefact qrpark signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// QR codes on spaces (`/q/{token}`).
    Qr,
    /// Proofs of parking shown to wardens.
    Proof,
    /// Checkpoints of auditor exports.
    Checkpoint,
    /// Requests to the city's payment gateway.
    Gateway,
}

impl KeyPurpose {
    /// Every purpose, in the order keys for them are first made.
    pub const ALL: [KeyPurpose; 4] = [Self::Qr, Self::Proof, Self::Checkpoint, Self::Gateway];

    /// The name stored in `signing_key.purpose` and published in the JWKS.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qr => "qr",
            Self::Proof => "proof",
            Self::Checkpoint => "checkpoint",
            Self::Gateway => "gateway",
        }
    }

    /// The purpose of a stored or published name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for KeyPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for purpose in KeyPurpose::ALL {
            assert_eq!(KeyPurpose::parse(purpose.as_str()), Some(purpose));
        }
        assert_eq!(KeyPurpose::parse("QR"), None);
        assert_eq!(KeyPurpose::parse(""), None);
    }
}
