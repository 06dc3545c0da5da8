//! The `opsconductor` binary.

use clap::Parser;
use opsconductor::cli::{Cli, run};
use opsconductor::config::LogFormat;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(done) = cli.run_without_config() {
        return done;
    }
    let config = cli.load_config()?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(&config.log)),
        )
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.init(),
        // Fields at the top level, beside `message`, as log shippers index them.
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    run(cli, config).await
}
