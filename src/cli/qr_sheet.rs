//! `qrpark qr-sheet LOT_ID --out FILE.pdf`: the printable sheet of a lot's codes.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use uuid::Uuid;

use crate::config::Config;
use crate::qr::codes;
use crate::store::lots;

/// Write the printable sheet of a lot's signed QR codes.
#[derive(Debug, Args)]
pub struct QrSheetArgs {
    /// The lot's id.
    pub lot_id: Uuid,
    /// Where to write the PDF.
    #[arg(long, value_name = "FILE.pdf")]
    pub out: PathBuf,
}

pub async fn run(config: Config, args: QrSheetArgs) -> anyhow::Result<()> {
    let public_url = config.public_url();
    let db = super::serve::open_database(&config).await?;
    // Building the state loads the signing keys and gives every space its code.
    let state = super::serve::state(config, db).await?;
    let result = async {
        let lot = lots::get_public(&state.db, args.lot_id)
            .await?
            .with_context(|| format!("no lot {}", args.lot_id))?;
        let pdf = codes::lot_sheet(&state.db, lot.lot_id, &lot.name, &public_url).await?;
        std::fs::write(&args.out, &pdf)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        println!(
            "{}: {} bytes, the codes of lot {} under {public_url}",
            args.out.display(),
            pdf.len(),
            lot.name
        );
        Ok(())
    }
    .await;
    state.db.close().await;
    result
}
