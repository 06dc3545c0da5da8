//! `opsconductor import legacy | json`: the command line of [`crate::import`], with its report
//! printed as text.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Config;
use crate::import::{DEFAULT_BATCH, ImportOptions, ImportReport, import_json, import_legacy};
use crate::store::LegacySource;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Brings over the legacy system's alerts (open and history), targets (disabled: their
    /// credentials are not in that database) and settings from its PostgreSQL database. Run it
    /// again to continue after a failure or after installing a missing addon: nothing is
    /// imported twice.
    Legacy {
        /// The legacy database, `postgres://user@host/db` (only read).
        #[arg(long)]
        from: String,
        /// Read, convert and report; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Alerts per transaction.
        #[arg(long, default_value_t = DEFAULT_BATCH)]
        batch: usize,
    },
    /// Imports alerts from a JSON file: an array of alerts (or `{"alerts": [...]}`) with the
    /// legacy alert columns as keys and optional `fields`.
    Json {
        file: PathBuf,
        #[arg(long)]
        dry_run: bool,
        #[arg(long, default_value_t = DEFAULT_BATCH)]
        batch: usize,
    },
}

pub(super) async fn import_command(cmd: ImportCommand, config: &Config) -> anyhow::Result<()> {
    let store = crate::server::connect_store(config).await?;
    let report = match cmd {
        ImportCommand::Legacy {
            from,
            dry_run,
            batch,
        } => {
            let source = LegacySource::connect(&from).await?;
            import_legacy(&store, &source, ImportOptions { dry_run, batch }).await?
        }
        ImportCommand::Json {
            file,
            dry_run,
            batch,
        } => import_json(&store, &file, ImportOptions { dry_run, batch }).await?,
    };
    print!("{}", text(&report));
    Ok(())
}

/// The report as an operator reads it: counts per kind, then every note.
pub fn text(r: &ImportReport) -> String {
    let mut out = String::new();
    if r.dry_run {
        out.push_str("dry run: nothing was written\n");
    }
    for (kind, c) in [
        ("alerts", r.alerts),
        ("targets", r.targets),
        ("settings", r.settings),
    ] {
        out.push_str(&format!(
            "{kind}: {} read, {} imported{}, {} refused, {} imported before, {} kept as they are here\n",
            c.read,
            c.imported,
            if r.dry_run { " (would be)" } else { "" },
            c.refused,
            c.imported_before,
            c.kept_ours,
        ));
    }
    if !r.missing_addons.is_empty() {
        out.push_str(&format!(
            "addons not installed here: {} (install them, or convert their manifests with \
             `opsconductor addon convert-legacy`, and run again)\n",
            r.missing_addons
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for note in &r.notes {
        out.push_str(&format!("  {note}\n"));
    }
    out
}
