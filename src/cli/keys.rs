//! `qrpark keys`: the Ed25519 keys that sign QR codes.

use anyhow::Context;
use clap::Subcommand;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::qr::keyring;
use crate::store::signing_keys;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys (the newest active one signs new codes).
    List,
    /// Make a new signing key; codes signed by older keys keep verifying.
    Rotate,
    /// Retire a key: it leaves the JWKS and the codes it signed stop verifying.
    Retire {
        /// The key id, e.g. k1.
        kid: String,
    },
}

pub async fn run(config: Config, command: KeysCommand) -> anyhow::Result<()> {
    let db = super::serve::open_database(&config).await?;
    let now = SystemClock.now();
    let result = async {
        match command {
            KeysCommand::List => {
                // Loading the ring creates the first key on a new database.
                keyring::KeyRing::load(&db, now).await?;
                for key in signing_keys::all(&db).await? {
                    let state = match key.retired_at {
                        Some(at) => format!("retired {at}"),
                        None => "active".to_owned(),
                    };
                    println!("{}\tEdDSA\tcreated {}\t{state}", key.kid, key.created_at);
                }
            }
            KeysCommand::Rotate => {
                keyring::KeyRing::load(&db, now).await?;
                let kid = keyring::rotate(&db, now).await?;
                println!(
                    "new signing key {kid}: running servers sign new codes with it within a \
                     minute; codes signed by older keys keep verifying until retired"
                );
            }
            KeysCommand::Retire { kid } => {
                let active = signing_keys::active(&db).await?;
                anyhow::ensure!(
                    active.iter().any(|k| k.kid == kid),
                    "no active signing key {kid}"
                );
                anyhow::ensure!(
                    active.len() > 1,
                    "{kid} is the only active key: rotate first, then retire it"
                );
                signing_keys::retire(&db, &kid, now)
                    .await?
                    .with_context(|| format!("no active signing key {kid}"))?;
                println!(
                    "{kid} retired: codes it signed no longer verify; rotate their spaces' codes"
                );
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}
