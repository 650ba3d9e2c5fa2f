//! `qrpark tariff check` and `qrpark quote`: tariffs offline, no server or database.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone as _, Utc};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::domain::tariff::{self, Fee, Tariff};
use crate::domain::timezone::TimeZone;

#[derive(Debug, Subcommand)]
pub enum TariffCommand {
    /// Validate a tariff document: every problem with its JSON path, or a summary.
    Check {
        /// The tariff document (JSON).
        file: PathBuf,
    },
}

/// Price an interval offline and print the breakdown.
#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// The tariff document (JSON).
    #[arg(long, value_name = "FILE")]
    pub tariff: PathBuf,
    /// The lot's IANA time zone, e.g. Asia/Shanghai.
    #[arg(long, value_name = "TZ")]
    pub timezone: String,
    /// Start: RFC 3339 (2026-09-29T10:00:00+08:00) or local time in --timezone (2026-09-29T10:00).
    #[arg(long, value_name = "T")]
    pub start: String,
    /// End, in the same forms as --start.
    #[arg(long, value_name = "T")]
    pub end: String,
    /// Print the fee as JSON (the API's shape) instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn load(file: &Path) -> anyhow::Result<Result<Tariff, tariff::InvalidTariff>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(Tariff::from_json_str(&text))
}

pub fn check(command: TariffCommand) -> anyhow::Result<()> {
    let TariffCommand::Check { file } = command;
    match load(&file)? {
        Ok(tariff) => {
            println!("{}: valid", file.display());
            print!("{}", summary(&tariff));
            Ok(())
        }
        Err(invalid) => {
            for problem in &invalid.problems {
                println!("{}: {}", problem.path, problem.message);
            }
            bail!(
                "{}: {} problem(s) in the tariff",
                file.display(),
                invalid.problems.len()
            )
        }
    }
}

/// A few lines an operator can read back against what they meant.
fn summary(tariff: &Tariff) -> String {
    let doc = tariff.to_json();
    let mut out = format!("  currency   {}\n", tariff.currency());
    out += &format!("  grace      {} min\n", tariff.grace_minutes());
    if let Some(max) = tariff.max_stay_minutes() {
        out += &format!("  max stay   {max} min\n");
    }
    if let Some(cap) = doc.get("daily_cap") {
        out += &format!(
            "  daily cap  {} per {}\n",
            text(&cap["amount"]),
            text(&cap["period"])
        );
    }
    out += "  rules (the first whose window contains an instant prices it):\n";
    for rule in doc["rules"].as_array().into_iter().flatten() {
        let mut when = Vec::new();
        if let Some(days) = rule.get("days") {
            when.push(list(days));
        }
        if let Some(dates) = rule.get("dates") {
            when.push(list(dates));
        }
        let from = rule.get("from").map_or("00:00".into(), text);
        let to = rule.get("to").map_or("24:00".into(), text);
        when.push(format!("{from}-{to}"));
        let cap = rule
            .get("cap")
            .map(|c| format!(", cap {}", text(c)))
            .unwrap_or_default();
        out += &format!(
            "    {:<16} {:<28} {}{cap}\n",
            text(&rule["name"]),
            when.join(" "),
            rule["price"]
        );
    }
    out
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

fn list(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(text).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

pub fn quote(args: QuoteArgs) -> anyhow::Result<()> {
    let tariff = match load(&args.tariff)? {
        Ok(tariff) => tariff,
        Err(invalid) => bail!("{invalid}"),
    };
    let timezone = TimeZone::parse(&args.timezone)?;
    let start = instant(&args.start, timezone).context("--start")?;
    let end = instant(&args.end, timezone).context("--end")?;
    let fee = tariff::price(&tariff, timezone.tz(), start, end)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&fee)?);
    } else {
        print!("{}", table(&fee));
    }
    Ok(())
}

/// RFC 3339, or a local wall-clock time in `timezone` (refused inside a DST gap; the
/// earlier instant when the hour repeats, as the pricing spec reads local times).
fn instant(text: &str, timezone: TimeZone) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .with_context(|| {
        format!("`{text}` is neither RFC 3339 nor a local time like 2026-09-29T10:00")
    })?;
    match timezone.tz().from_local_datetime(&naive) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Ok(at.with_timezone(&Utc)),
        LocalResult::None => bail!("{text} does not exist in {timezone} (a daylight-saving gap)"),
    }
}

fn table(fee: &Fee) -> String {
    let mut out = format!(
        "{:<16} {:<25} {:<25} {:>10} {:>12} {:>12}\n",
        "rule", "from", "to", "increments", "amount", "charged"
    );
    for line in &fee.lines {
        out += &format!(
            "{:<16} {:<25} {:<25} {:>10} {:>12} {:>12}\n",
            line.rule,
            line.from.to_rfc3339(),
            line.to.to_rfc3339(),
            line.increments,
            line.amount.to_string(),
            line.charged.to_string()
        );
    }
    out += &format!(
        "{:<79} {:>12} {:>12} {}\n",
        "",
        "total",
        fee.total.to_string(),
        fee.currency
    );
    out
}
