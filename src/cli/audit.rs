//! `qrpark export` and `qrpark audit verify|jwks`: auditor exports, checked offline.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::audit::export::{self, Format, Range};
use crate::audit::verify;
use crate::config::Config;
use crate::domain::audit::canonical_json;
use crate::domain::key_purpose::KeyPurpose;

/// Export the stopped sessions of a range, chained and closed by a signed checkpoint.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Sessions that ended at or after this instant (RFC 3339).
    #[arg(long, value_name = "T")]
    pub from: DateTime<Utc>,
    /// ...and before this one.
    #[arg(long, value_name = "T")]
    pub to: DateTime<Utc>,
    /// `csv` or `jsonl`.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// Only this operator's lots.
    #[arg(long)]
    pub operator: Option<Uuid>,
    /// Only this lot.
    #[arg(long)]
    pub lot: Option<Uuid>,
    /// Where to write the export (a CSV export's checkpoint goes to FILE.checkpoint.json).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an export offline: its chain, its checkpoint's count, head and signature.
    Verify {
        /// The export (CSV or JSONL).
        file: PathBuf,
        /// Pin qrpark's keys: a JWKS saved from /.well-known/jwks.json (or `qrpark audit jwks`).
        /// Without it the signature is checked against the key the checkpoint carries.
        #[arg(long, value_name = "FILE")]
        jwks: Option<PathBuf>,
        /// A CSV export's checkpoint (default: FILE.checkpoint.json).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// An earlier export (or its checkpoint) that this export must extend.
        #[arg(long, value_name = "CHECKPOINT")]
        since: Option<PathBuf>,
    },
    /// Print the JWKS that verifies checkpoints and QR codes.
    Jwks,
    /// Print the keyed hash (`plate_hmac`) by which the audit chain commits to a plate, to
    /// find a vehicle's events or check a plate against them (reads the key from the
    /// database: the city's auditors run it, nobody else holds the key).
    Plate {
        /// The plate as written anywhere (`沪A 12345`); it is normalised first.
        plate: String,
    },
}

pub async fn export(config: Config, args: ExportArgs) -> anyhow::Result<()> {
    let format = Format::parse(&args.format).context("--format must be csv or jsonl")?;
    anyhow::ensure!(args.to > args.from, "--to must be after --from");
    let db = super::serve::open_database(&config).await?;
    let state = super::serve::state(config, db).await?;
    let range = Range {
        from: args.from,
        to: args.to,
        operator: args.operator,
        lot: args.lot,
    };
    // Exports hold sealed sessions only: seal what is pending first (docs/audit.md).
    crate::store::audit::seal_pending(&state.db).await?;
    // The read replica, when one is configured and catches up with the primary within a
    // bound; else the primary (docs/operations.md, "Read replica").
    let db = state.reads.caught_up().await;
    // A progress bar on a terminal; nothing when stderr is piped (and no count to make).
    let progress = if std::io::stderr().is_terminal() {
        let total = export::count(&db, &range).await?;
        Some(Progress::new(u64::try_from(total)?))
    } else {
        None
    };
    let shown = progress.is_some();
    let key = state
        .keys
        .signing_key(KeyPurpose::Checkpoint, state.clock.now())
        .await?;
    // Written beside the destination and renamed into place once whole: a failed export
    // leaves no file that looks like one.
    let partial = with_suffix(&args.out, ".partial");
    let written = write_export(&db, &range, format, &key, &partial, progress).await;
    if shown {
        eprintln!();
    }
    let (count, head) = written.inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    if format == Format::Csv {
        let checkpoint = export::checkpoint(format, &range, count, &head, &key);
        let path = checkpoint_path(&args.out);
        std::fs::write(&path, format!("{}\n", canonical_json(&checkpoint)))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    std::fs::rename(&partial, &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "{}: {count} records, chain head {}",
        args.out.display(),
        crate::domain::audit::hex(&head)
    );
    state.reads.close().await;
    state.db.close().await;
    Ok(())
}

/// Writes the export (a JSONL export closed by its checkpoint line) to `path`; the count
/// and the chain head.
async fn write_export(
    db: &crate::store::Db,
    range: &Range,
    format: Format,
    key: &crate::domain::qr_token::QrSigningKey,
    path: &std::path::Path,
    mut progress: Option<Progress>,
) -> anyhow::Result<(u64, [u8; 32])> {
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let (sender, mut receiver) = mpsc::channel::<export::Chunk>(8);
    let producer = {
        let (db, range, key) = (db.clone(), range.clone(), key.clone());
        tokio::spawn(async move { export::produce(&db, &range, format, &key, &sender).await })
    };
    while let Some(chunk) = receiver.recv().await {
        file.write_all(&chunk.bytes)?;
        if let Some(progress) = &mut progress {
            progress.advance(chunk.records);
        }
    }
    let (count, head) = producer.await??;
    if let Some(progress) = &mut progress {
        progress.draw();
    }
    file.into_inner()?.sync_all()?;
    Ok((count, head))
}

/// The export's progress on stderr: a bar, a percentage and the records written, redrawn
/// at most ten times a second.
struct Progress {
    /// The range's records when the export began (more may stop while it runs).
    total: u64,
    /// The records written so far.
    done: u64,
    drawn: Option<std::time::Instant>,
}

impl Progress {
    fn new(total: u64) -> Self {
        Self {
            total,
            done: 0,
            drawn: None,
        }
    }

    /// Takes the count of records written so far.
    fn advance(&mut self, done: u64) {
        self.done = done;
        if self
            .drawn
            .is_none_or(|at| at.elapsed() >= std::time::Duration::from_millis(100))
        {
            self.draw();
        }
    }

    fn draw(&mut self) {
        eprint!("\r{}", bar(self.done, self.total));
        self.drawn = Some(std::time::Instant::now());
    }
}

/// `exporting [#######-------] 50%  500 / 1000 records`
fn bar(done: u64, total: u64) -> String {
    const WIDTH: u64 = 30;
    let total = total.max(done);
    // An empty range is done.
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    format!(
        "exporting [{}{}] {percent:>3}%  {done} / {total} records",
        "#".repeat(filled as usize),
        "-".repeat((WIDTH - filled) as usize),
    )
}

fn checkpoint_path(file: &std::path::Path) -> PathBuf {
    with_suffix(file, ".checkpoint.json")
}

fn with_suffix(file: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The checkpoint in a file: a checkpoint JSON, or an export whose last line is one.
fn read_checkpoint(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let value: serde_json::Value = serde_json::from_str(last)
        .or_else(|_| serde_json::from_str(&text))
        .with_context(|| format!("{} holds no checkpoint", path.display()))?;
    anyhow::ensure!(
        value.get("checkpoint").is_some(),
        "{} holds no checkpoint",
        path.display()
    );
    Ok(value)
}

pub async fn run(config: Config, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Plate { plate } => {
            let plate = crate::domain::plate::Plate::parse(&plate)
                .with_context(|| format!("{plate:?} is not a plate"))?;
            let db = super::serve::open_database(&config).await?;
            let key = async {
                let kek = crate::secrets::prepare(&config, &db).await?;
                crate::secrets::server_secret(&db, &kek, crate::secrets::PLATE_KEY).await
            }
            .await;
            db.close().await;
            let key = key?;
            println!(
                "{}\t{}",
                plate,
                crate::domain::audit::hex(&plate.keyed_hash(&key))
            );
            Ok(())
        }
        AuditCommand::Jwks => {
            let db = super::serve::open_database(&config).await?;
            let state = super::serve::state(config, db).await?;
            println!("{}", state.keys.jwks().await?);
            state.db.close().await;
            Ok(())
        }
        AuditCommand::Verify {
            file,
            jwks,
            checkpoint,
            since,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let pinned = match &jwks {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    let jwks: serde_json::Value =
                        serde_json::from_str(&text).context("the JWKS is not JSON")?;
                    Some(verify::keys_of(&jwks))
                }
                None => None,
            };
            let checkpoint = match checkpoint {
                Some(path) => Some(read_checkpoint(&path)?),
                None => {
                    let sidecar = checkpoint_path(&file);
                    if sidecar.exists() {
                        Some(read_checkpoint(&sidecar)?)
                    } else {
                        None
                    }
                }
            };
            let since = since.map(|p| read_checkpoint(&p)).transpose()?;
            let keys = match &pinned {
                Some(keys) => keys.clone(),
                None => {
                    // Offline and unpinned: trust the keys the checkpoints carry, and say so.
                    let own = checkpoint.clone().or_else(|| {
                        text.lines()
                            .rev()
                            .find(|l| l.contains("\"checkpoint\""))
                            .and_then(|l| serde_json::from_str(l).ok())
                    });
                    let mut keys = own.as_ref().map(verify::embedded_keys).unwrap_or_default();
                    if let Some(earlier) = &since {
                        keys.extend(verify::embedded_keys(earlier));
                    }
                    eprintln!(
                        "note: signature checked against the key carried in the checkpoint; \
                         pass --jwks with qrpark's published JWKS to prove who signed"
                    );
                    keys
                }
            };
            match verify::verify(&text, checkpoint.as_ref(), &keys, since.as_ref()) {
                Ok(ok) => {
                    println!(
                        "{}: intact: {} records, chain head {}, signed by {}{}",
                        file.display(),
                        ok.records,
                        ok.head,
                        ok.kid,
                        if since.is_some() {
                            ", extends the earlier export"
                        } else {
                            ""
                        }
                    );
                    Ok(())
                }
                Err(problem) => bail!("{}: NOT intact: {problem}", file.display()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_share_written() {
        assert_eq!(
            bar(500, 1000),
            "exporting [###############---------------]  50%  500 / 1000 records"
        );
        assert!(
            bar(0, 0).contains("100%  0 / 0 records"),
            "an empty range is done"
        );
        // Sessions that stopped after the count was made: never past 100%.
        assert!(bar(12, 10).contains("100%  12 / 12 records"));
    }
}
