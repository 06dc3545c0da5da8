//! `opsconductor serve`: binds the HTTP listener (and the SNMP trap socket), runs the
//! [`Server`] and stops it on Ctrl-C or SIGTERM.

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::server::Server;

/// Runs the runtime until a shutdown signal; `listen` overrides the configured address. Prints
/// the addresses it bound (port 0 picks a free one), HTTP first, which scripts and tests read.
pub(super) async fn serve(
    mut config: Config,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let traps = match config.trap_listen {
        Some(addr) => Some(crate::inbound::trap::bind_socket(addr).with_context(|| {
            format!(
                "cannot bind the SNMP trap port {addr} (port 162 needs root or \
                 CAP_NET_BIND_SERVICE; set trap_listen or OPSCONDUCTOR_TRAP_LISTEN, \
                 `off` to run without traps)"
            )
        })?),
        None => None,
    };
    let server = Server::start(&config, listener, traps).await?;
    println!(
        "opsconductor listening on http://{}; the console is at {}",
        server.addr(),
        crate::server::console_url(server.addr())
    );
    if let Some(traps) = server.trap_addr() {
        println!("opsconductor receives SNMP traps on udp://{traps}");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    let traps = server.state().traps.counters.clone();
    server.stop().await?;
    // What became of every trap, once nothing more can change it: an operator (or a test)
    // checks that what was decoded before the signal was all stored.
    let t = traps.snapshot();
    tracing::info!(
        received = t.received,
        decoded = t.decoded,
        queued = t.queued,
        dropped_queue_full = t.dropped_queue_full,
        ingested = t.ingested,
        unhandled = t.unhandled,
        addon_failed = t.addon_failed,
        quarantined = t.quarantined,
        store_failed = t.store_failed,
        informs_acked = t.informs_acked,
        "stopped; traps accounted"
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
