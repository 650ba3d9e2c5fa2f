//! The key-encryption key: 32 random bytes in a file of mode 0600, written as 64 hex digits
//! (so `openssl rand -hex 32 > FILE` makes one too).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The length of a sealed 32-byte secret: nonce, ciphertext, tag.
pub const SEALED_LEN: usize = NONCE_LEN + 32 + TAG_LEN;

/// Seals and opens 32-byte secrets.
pub struct Kek {
    cipher: XChaCha20Poly1305,
    path: PathBuf,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({}, ***)", self.path.display())
    }
}

impl Kek {
    /// Reads the KEK from `path`, refusing a file others may read.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let shown = path.display();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .with_context(|| format!("cannot read the key-encryption key file {shown}"))?
                .permissions()
                .mode();
            anyhow::ensure!(
                mode & 0o077 == 0,
                "the key-encryption key file {shown} has mode {:o}: others may read it; \
                 `chmod 600 {shown}`",
                mode & 0o777
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key-encryption key file {shown}"))?;
        let key = parse_hex_key(text.trim()).with_context(|| {
            format!("the key-encryption key file {shown} must hold 64 hex digits (32 bytes)")
        })?;
        Ok(Self::from_bytes(&key, path))
    }

    /// Makes a new random KEK and writes it to `path` (mode 0600, its folder 0700 if made).
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let shown = path.display();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dir)
                .with_context(|| format!("cannot make the folder of {shown}"))?;
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).context("the operating system's random source")?;
        let mut options = std::fs::OpenOptions::new();
        // create_new: two processes starting at once must not each write their own key.
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(format!("{}\n", crate::domain::audit::hex(&key)).as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("cannot write the key-encryption key {shown}"))?;
                Ok(Self::from_bytes(&key, path))
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::read(path),
            Err(e) => Err(e).with_context(|| format!("cannot make the key-encryption key {shown}")),
        }
    }

    fn from_bytes(key: &[u8; 32], path: &Path) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&Key::from(*key)),
            path: path.to_owned(),
        }
    }

    /// Seals `secret`, bound to `name` (a sealed value does not open under another name).
    pub fn seal(&self, name: &str, secret: &[u8; 32]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random source is available");
        let mut body = *secret;
        let tag = self
            .cipher
            .encrypt_inout_detached(
                &XNonce::from(nonce),
                name.as_bytes(),
                (&mut body[..]).into(),
            )
            .expect("32 bytes are well within the cipher's limits");
        let mut sealed = Vec::with_capacity(SEALED_LEN);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&body);
        sealed.extend_from_slice(&tag);
        sealed
    }

    /// Opens what [`Kek::seal`] sealed under `name`; fails for another KEK, another name or
    /// altered bytes.
    pub fn open(&self, name: &str, sealed: &[u8]) -> anyhow::Result<[u8; 32]> {
        anyhow::ensure!(
            sealed.len() == SEALED_LEN,
            "{name} is sealed in {} bytes, not {SEALED_LEN}",
            sealed.len()
        );
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(32);
        let mut plain: [u8; 32] = body.try_into().expect("split at 32");
        let nonce = XNonce::try_from(nonce).expect("split at the nonce's length");
        let tag = Tag::try_from(tag).expect("what is left is the tag");
        self.cipher
            .decrypt_inout_detached(&nonce, name.as_bytes(), (&mut plain[..]).into(), &tag)
            .map_err(|_| {
                anyhow::anyhow!(
                    "{name} does not open with the key-encryption key in {}: the database was \
                     sealed under another key-encryption key, or altered",
                    self.path.display()
                )
            })?;
        Ok(plain)
    }
}

fn parse_hex_key(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path() -> PathBuf {
        std::env::temp_dir()
            .join(format!("qrpark-kek-{}", uuid::Uuid::now_v7()))
            .join("kek")
    }

    #[test]
    fn seals_open_only_with_the_same_key_and_name() {
        let path = temp_path();
        let kek = Kek::create(&path).unwrap();
        let secret = [7u8; 32];
        let sealed = kek.seal("signing_key:k1", &secret);
        assert_eq!(sealed.len(), SEALED_LEN);
        assert!(
            !sealed.windows(32).any(|w| w == secret),
            "the plaintext shows"
        );
        assert_ne!(sealed, kek.seal("signing_key:k1", &secret), "nonces repeat");
        assert_eq!(kek.open("signing_key:k1", &sealed).unwrap(), secret);
        assert!(
            kek.open("signing_key:k2", &sealed).is_err(),
            "moved to another row"
        );
        let mut altered = sealed.clone();
        altered[30] ^= 1;
        assert!(kek.open("signing_key:k1", &altered).is_err());

        // The file reads back as the same key; another file is another key.
        assert_eq!(
            Kek::read(&path)
                .unwrap()
                .open("signing_key:k1", &sealed)
                .unwrap(),
            secret
        );
        let other = Kek::create(&temp_path()).unwrap();
        assert!(other.open("signing_key:k1", &sealed).is_err());
        // A second create finds the file and keeps it.
        assert_eq!(
            Kek::create(&path)
                .unwrap()
                .open("signing_key:k1", &sealed)
                .unwrap(),
            secret
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_and_a_readable_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let path = temp_path();
        Kek::create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir = std::fs::metadata(path.parent().unwrap()).unwrap();
        assert_eq!(dir.permissions().mode() & 0o777, 0o700);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = Kek::read(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }

    #[test]
    fn the_file_must_hold_64_hex_digits() {
        let path = temp_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        for bad in ["", "abc", &"zz".repeat(32), &"ab".repeat(33)] {
            std::fs::write(&path, bad).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            assert!(Kek::read(&path).is_err(), "{bad:?}");
        }
        std::fs::write(&path, format!("{}\n", "0f".repeat(32))).unwrap();
        assert!(Kek::read(&path).is_ok());
    }
}
