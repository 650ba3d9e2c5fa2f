//! `qrpark operator create|key`: operators and their API keys, from the command line.

use anyhow::{Context, bail};
use clap::Subcommand;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::text::check_line;
use crate::identity::operator_key;
use crate::store::{Constraint, StoreError, operators};

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator and print its id and first API key (shown once).
    Create {
        /// The operator's name (unique).
        name: String,
        /// Print exactly {"id": ..., "api_key": ...}.
        #[arg(long)]
        json: bool,
    },
    /// Issue another API key for an operator, or revoke one with --revoke.
    Key {
        /// The operator's name or id.
        name_or_id: String,
        /// Revoke the key with this id instead of issuing one.
        #[arg(long, value_name = "KEY_ID")]
        revoke: Option<Uuid>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: Config, command: OperatorCommand) -> anyhow::Result<()> {
    let db = super::serve::open_database(&config).await?;
    let now = SystemClock.now();
    let result = match command {
        OperatorCommand::Create { name, json } => {
            check_line(&name, 120).map_err(|e| anyhow::anyhow!("operator name {e}"))?;
            let key = operator_key::generate();
            let (operator, _) = match operators::create(&db, &name, &key.hash, now).await {
                Err(StoreError::Conflict(Constraint::OperatorName)) => {
                    bail!("an operator named {name:?} already exists")
                }
                other => other?,
            };
            if json {
                let out = serde_json::json!({"id": operator.operator_id, "api_key": key.plaintext});
                println!("{out}");
            } else {
                println!(
                    "operator {} created: {}",
                    operator.name, operator.operator_id
                );
                println!("API key (shown once, keep it safe): {}", key.plaintext);
            }
            Ok(())
        }
        OperatorCommand::Key {
            name_or_id,
            revoke,
            json,
        } => {
            let operator = operators::find(&db, &name_or_id)
                .await?
                .with_context(|| format!("no operator named or numbered {name_or_id:?}"))?;
            match revoke {
                Some(key_id) => {
                    let key = operators::revoke_key(&db, operator.operator_id, key_id, now)
                        .await?
                        .with_context(|| {
                            format!("operator {} has no key {key_id}", operator.name)
                        })?;
                    let revoked_at = key.revoked_at.unwrap_or(now);
                    if json {
                        let out = serde_json::json!({"key_id": key.operator_key_id, "revoked_at": revoked_at});
                        println!("{out}");
                    } else {
                        println!("key {} revoked at {revoked_at}", key.operator_key_id);
                    }
                }
                None => {
                    let key = operator_key::generate();
                    let stored =
                        operators::add_key(&db, operator.operator_id, &key.hash, now).await?;
                    if json {
                        let out = serde_json::json!({
                            "id": operator.operator_id,
                            "key_id": stored.operator_key_id,
                            "api_key": key.plaintext,
                        });
                        println!("{out}");
                    } else {
                        println!(
                            "new key {} for operator {}",
                            stored.operator_key_id, operator.name
                        );
                        println!("API key (shown once, keep it safe): {}", key.plaintext);
                    }
                }
            }
            Ok(())
        }
    };
    db.close().await;
    result
}
