//! Secrets at rest. Every private signing key and server secret is stored sealed under a
//! key-encryption key (KEK) that lives in a file outside the database, so that the
//! database alone (a stolen backup, a leaked dump, a read-only SQL account) reveals none.
//!
//! Why a KEK file rather than key files under `QRPARK_DATA_DIR`: every process on one
//! database must sign with the same keys (QR codes printed by one are scanned by another,
//! `qrpark keys rotate` in one reaches all), and the database is what they share. With the
//! keys sealed in it, the one thing each host needs is the same 32-byte KEK file, which
//! changes never (a rotation of signing keys needs nothing but the database).
//!
//! The seal is XChaCha20-Poly1305: a random 24-byte nonce (random nonces of that size never
//! collide in practice), the ciphertext, and the 16-byte tag, with the secret's name as
//! associated data so that a sealed value moved to another row does not open.

pub mod kek;

use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::store::{Db, secrets};

pub use kek::{Kek, SEALED_LEN};

/// The server secret of the keyed hash by which the audit chain commits to plates.
pub const PLATE_KEY: &str = "plate_key";
/// The server secret of the keyed hash that gives operators a pseudonym of each driver.
pub const PSEUDONYM_KEY: &str = "pseudonym_key";

/// Opens (or on a new installation, makes) the KEK named by the configuration, and seals
/// whatever plaintext an earlier version left in the database.
pub async fn prepare(config: &Config, db: &Db) -> anyhow::Result<Arc<Kek>> {
    let path = config.key_encryption_key_file();
    let kek = if path.exists() {
        Kek::read(&path)?
    } else {
        anyhow::ensure!(
            !secrets::any_sealed(db).await?,
            "the key-encryption key file {} does not exist, but the database holds keys \
             sealed under one: give every process the same file (setting \
             `key_encryption_key_file`, QRPARK_KEY_ENCRYPTION_KEY_FILE)",
            path.display()
        );
        let kek = Kek::create(&path)?;
        tracing::warn!(
            path = %path.display(),
            "made a new key-encryption key: back it up apart from the database; without it \
             the signing keys and the plate key cannot be opened"
        );
        kek
    };
    seal_leftovers(db, &kek).await?;
    Ok(Arc::new(kek))
}

/// Seals the plaintext secrets of earlier versions and deletes them.
async fn seal_leftovers(db: &Db, kek: &Kek) -> anyhow::Result<()> {
    let leftovers = secrets::unsealed(db).await?;
    if leftovers.is_empty() {
        return Ok(());
    }
    for secret in &leftovers {
        let plain: [u8; 32] = secret
            .secret
            .as_slice()
            .try_into()
            .with_context(|| format!("{} is not 32 bytes", secret.name))?;
        let sealed = kek.seal(&secret.name, &plain);
        secrets::seal_unsealed(db, &secret.name, &sealed).await?;
    }
    secrets::scrub(db).await?;
    // A new database has only the plate key its migration made, never used: nothing to
    // warn about. An earlier version's installation always has a signing key.
    if !leftovers.iter().any(|s| s.name.starts_with("signing_key:")) {
        return Ok(());
    }
    tracing::warn!(
        sealed = leftovers.len(),
        "sealed the plaintext keys of an earlier version: backups made before now still hold \
         them; rotate the signing keys (qrpark keys rotate --purpose ...) if those backups \
         are not as safe as the key-encryption key"
    );
    Ok(())
}

/// The server secret `name`, made (random) and stored sealed if the database has none.
pub async fn server_secret(db: &Db, kek: &Kek, name: &str) -> anyhow::Result<[u8; 32]> {
    let sealed = match secrets::sealed(db, name).await? {
        Some(sealed) => sealed,
        None => {
            let mut fresh = [0u8; 32];
            getrandom::fill(&mut fresh).context("the operating system's random source")?;
            secrets::add_sealed(db, name, &kek.seal(name, &fresh)).await?
        }
    };
    kek.open(name, &sealed)
        .with_context(|| format!("cannot open the server secret {name}"))
}

/// The name under which a signing key's seed is sealed (its associated data).
pub fn signing_key_name(kid: &str) -> String {
    format!("signing_key:{kid}")
}
