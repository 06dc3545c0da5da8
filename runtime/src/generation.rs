//! Following a change counter in the store. Addons, silences and SNMP credentials each have a
//! *generation* that every change moves in the same transaction; a process holding a copy in
//! memory (the addon registry, the writer's silences, the trap receiver's credentials) checks
//! it every few seconds and reloads when it moved, so a change made by the CLI or another node
//! arrives without a restart. This module owns that loop; the owners of the copies say how to
//! read the counter and how to reload.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tracing::warn;

/// Every `interval` until `stop` completes: reads the store's generation with `current` and,
/// when it differs from the one the copy reflects (`loaded`), calls `reload` with it. A failed
/// read or reload is logged and retried at the next check; the previous copy stays in use.
///
/// `reload` must record what it loaded where `loaded` reads it, having read the data after
/// the generation it is given: a change committed in between then moves the generation past
/// the recorded one and costs one extra reload rather than a missed change.
pub async fn follow<E: Display, F: Display, Current, Reload>(
    what: &'static str,
    interval: Duration,
    stop: impl Future<Output = ()>,
    loaded: impl Fn() -> i64,
    current: impl Fn() -> Current,
    reload: impl Fn(i64) -> Reload,
) where
    Current: Future<Output = Result<i64, E>>,
    Reload: Future<Output = Result<(), F>>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = std::pin::pin!(stop);
    loop {
        tokio::select! {
            // A stop wins over a tick that is also due.
            biased;
            () = &mut stop => return,
            _ = ticker.tick() => {}
        }
        match current().await {
            Ok(generation) if generation != loaded() => {
                if let Err(error) = reload(generation).await {
                    warn!(%error, what, "not reloaded; the previous copy stays in use");
                }
            }
            Ok(_) => {}
            Err(error) => warn!(%error, what, "cannot read the generation"),
        }
    }
}

/// A `stop` for [`follow`]: completes when `shutdown` says so (or its sender is gone).
pub async fn on_shutdown(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    // An error means the sender is gone, which is a shutdown too.
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// Reloads exactly when the generation moved past what was loaded, and retries a failed
    /// reload at the next check.
    #[tokio::test]
    async fn reloads_when_the_generation_moves_and_retries_failures() {
        // What the store says at each check, and the check whose reload fails.
        let generations = [0, 0, 3, 3, 3, 4];
        let failing_check = 3;
        let checks = Cell::new(0);
        let loaded = Cell::new(0);
        let reloads = Cell::new(Vec::new());
        let (checks, loaded, reloads) = (&checks, &loaded, &reloads);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        follow(
            "test",
            Duration::from_millis(1),
            on_shutdown(stopped),
            || loaded.get(),
            || async {
                checks.set(checks.get() + 1);
                if checks.get() == generations.len() {
                    stop.send_replace(true);
                }
                Ok::<_, String>(generations[checks.get() - 1])
            },
            |generation| async move {
                if checks.get() == failing_check {
                    return Err("store unreachable".to_owned());
                }
                loaded.set(generation);
                let mut done = reloads.take();
                done.push(generation);
                reloads.set(done);
                Ok(())
            },
        )
        .await;
        assert_eq!(checks.get(), generations.len());
        // Generation 3 failed at check 3 and loaded at check 4; 4 loaded at check 6; no reload
        // while nothing moved.
        assert_eq!(reloads.take(), vec![3, 4]);
    }
}
