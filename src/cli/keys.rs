//! `qrpark keys`: the Ed25519 keys that sign QR codes, proofs of parking, export
//! checkpoints and gateway requests, one set per purpose.

use anyhow::Context;
use clap::Subcommand;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::key_purpose::KeyPurpose;
use crate::qr::keyring;
use crate::store::signing_keys;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys (per purpose, the newest active one signs).
    List,
    /// Make a new signing key; what older keys signed keeps verifying.
    Rotate {
        /// What the key signs: qr (the default), proof, checkpoint or gateway.
        #[arg(long, default_value = "qr", value_parser = parse_purpose)]
        purpose: KeyPurpose,
    },
    /// Retire a key: it leaves the JWKS and what it signed stops verifying on every
    /// running server within a minute.
    Retire {
        /// The key id, e.g. k1.
        kid: String,
    },
}

fn parse_purpose(text: &str) -> Result<KeyPurpose, String> {
    KeyPurpose::parse(text).ok_or_else(|| {
        let names: Vec<&str> = KeyPurpose::ALL.iter().map(|p| p.as_str()).collect();
        format!("must be one of {}", names.join(", "))
    })
}

pub async fn run(config: Config, command: KeysCommand) -> anyhow::Result<()> {
    let db = super::serve::open_database(&config).await?;
    let now = SystemClock.now();
    let result = async {
        // Opening the KEK seals an earlier version's plaintext; loading the ring makes the
        // first key of each purpose on a new database.
        let kek = crate::secrets::prepare(&config, &db).await?;
        keyring::KeyRing::load(&db, kek.clone(), now).await?;
        match command {
            KeysCommand::List => {
                for key in signing_keys::all(&db).await? {
                    let state = match key.retired_at {
                        Some(at) => format!("retired {at}"),
                        None => "active".to_owned(),
                    };
                    println!(
                        "{}\t{}\tEdDSA\tcreated {}\t{state}",
                        key.kid, key.purpose, key.created_at
                    );
                }
            }
            KeysCommand::Rotate { purpose } => {
                let kid = keyring::rotate(&db, &kek, purpose, now).await?;
                println!(
                    "new {purpose} signing key {kid}: running servers sign with it within a \
                     minute; what older keys signed keeps verifying until they are retired"
                );
            }
            KeysCommand::Retire { kid } => {
                let active = signing_keys::active(&db).await?;
                let key = active
                    .iter()
                    .find(|k| k.kid == kid)
                    .with_context(|| format!("no active signing key {kid}"))?;
                anyhow::ensure!(
                    active.iter().filter(|k| k.purpose == key.purpose).count() > 1,
                    "{kid} is the only active {} key: rotate first (qrpark keys rotate \
                     --purpose {}), then retire it",
                    key.purpose,
                    key.purpose
                );
                signing_keys::retire(&db, &kid, now)
                    .await?
                    .with_context(|| format!("no active signing key {kid}"))?;
                let what = match KeyPurpose::parse(&key.purpose) {
                    Some(KeyPurpose::Qr) => {
                        "codes it signed no longer verify; rotate their spaces' codes"
                    }
                    Some(KeyPurpose::Proof) => "proofs of parking it signed no longer verify",
                    Some(KeyPurpose::Checkpoint) => {
                        "exports it signed verify only against a JWKS saved before now"
                    }
                    _ => "the gateway should stop accepting its signatures",
                };
                println!(
                    "{kid} retired: it leaves the JWKS, and running servers stop using it \
                     within a minute; {what}"
                );
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}
