//! The `opsconductor` binary.

use clap::Parser;
use opsconductor::cli::{Cli, run};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.load_config()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(&config.log)),
        )
        .with_writer(std::io::stderr)
        .init();
    run(cli, config).await
}
