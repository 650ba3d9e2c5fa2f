//! The command line: parses arguments and calls the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

mod audit;
pub mod demo;
mod keys;
mod operator;
mod qr_sheet;
pub mod serve;
mod settlement;
mod tariff;

/// QR-code parking payment: signed codes per space, exact tariffs, city identity.
#[derive(Debug, Parser)]
#[command(name = "qrpark", version, about)]
pub struct Cli {
    /// Configuration file (default: ./qrpark.toml if it exists).
    #[arg(long, global = true, env = "QRPARK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://... [env: QRPARK_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Listen address [env: QRPARK_BIND]
    #[arg(long, global = true, value_name = "ADDR")]
    pub bind: Option<std::net::SocketAddr>,
    /// Base URL printed into QR codes [env: QRPARK_PUBLIC_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// Where signing keys live if not in the database [env: QRPARK_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// First run: serve on SQLite with a demo operator, lot and spaces.
    Demo,
    /// The production server (no demo data).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Exit 0 if the server at --bind answers /healthz with 200 (for container health checks).
    Healthcheck,
    /// Work with tariff documents offline.
    #[command(subcommand)]
    Tariff(tariff::TariffCommand),
    /// Price an interval offline under a tariff file, with the breakdown.
    Quote(tariff::QuoteArgs),
    /// Export the stopped sessions of a range for auditors (chained, signed checkpoint).
    Export(audit::ExportArgs),
    /// Check exports offline; print the JWKS that verifies them.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Write a printable PDF sheet of a lot's signed QR codes.
    QrSheet(qr_sheet::QrSheetArgs),
    /// Manage the keys that sign QR codes.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage lot operators and their API keys.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// The payment office: payments and refunds in review or arrears.
    #[command(subcommand)]
    Settlement(settlement::SettlementCommand),
}

impl Cli {
    fn overrides(&self) -> Overrides {
        Overrides {
            database_url: self.database_url.clone(),
            bind: self.bind,
            public_url: self.public_url.clone(),
            data_dir: self.data_dir.clone(),
        }
    }
}

/// Runs the parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = cli.overrides();
    // Offline commands (tariff, quote) need neither configuration nor a database.
    let config = || -> anyhow::Result<Config> {
        let config = Config::load(cli.config.as_deref(), &overrides)?;
        crate::telemetry::init_logging(config.log_format);
        Ok(config)
    };
    match cli.command {
        Command::Tariff(command) => tariff::check(command),
        Command::Quote(args) => tariff::quote(args),
        Command::Demo => demo::run(config()?).await,
        Command::Serve => serve::run(config()?).await,
        Command::Migrate => {
            let config = config()?;
            let db = serve::open_database(&config).await?;
            db.close().await;
            println!(
                "migrations applied to {}",
                crate::config::redact_url(&config.database_url)
            );
            Ok(())
        }
        Command::Operator(command) => operator::run(config()?, command).await,
        Command::Export(args) => audit::export(config()?, args).await,
        Command::Audit(audit::AuditCommand::Verify {
            file,
            jwks,
            checkpoint,
            since,
        }) => {
            // Offline: no configuration, no database.
            let command = audit::AuditCommand::Verify {
                file,
                jwks,
                checkpoint,
                since,
            };
            audit::run(crate::config::Config::default(), command).await
        }
        Command::Audit(command) => audit::run(config()?, command).await,
        Command::QrSheet(args) => qr_sheet::run(config()?, args).await,
        Command::Keys(command) => keys::run(config()?, command).await,
        Command::Settlement(command) => settlement::run(config()?, command).await,
        Command::Healthcheck => healthcheck(config()?.bind).await,
    }
}

/// A minimal HTTP/1.1 GET of `/healthz`, so container images need no curl.
async fn healthcheck(bind: std::net::SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = if bind.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], bind.port()))
    } else {
        bind
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(target).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = vec![0u8; 64];
        let n = stream.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(5), exchange).await??;
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 200"),
        "unhealthy: {}",
        head.lines().next().unwrap_or("")
    );
    Ok(())
}
