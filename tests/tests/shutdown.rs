//! Stopping a node: what it had started is finished within the grace period or handed on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use opsconductor_tests::{Db, TestRuntime, bundle};
use serde_json::json;
use tokio::net::TcpListener;

/// A node stopping with a poll that does not finish in its grace period cuts it short and gives
/// its lease back, so another node polls the target at once — not after the lease (two minutes
/// here), and not at the next interval (an hour), which is when it would come round had the
/// cut poll been recorded as done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_node_hands_its_unfinished_polls_to_another_at_once() {
    // A peer that accepts connections and never answers: every poll of it hangs until its
    // timeout. It counts the connections, that is, the polls that reached it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU32::new(0));
    let counted = connections.clone();
    let peer = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });

    // The database's owner polls nothing; node A polls, then node B.
    let owner = TestRuntime::start_configured(
        Db::Postgres,
        &[bundle("http-json")],
        |config| config.scheduler = false,
        async |_| {},
    )
    .await;
    let node = |config: &mut opsconductor::config::Config| {
        config.scheduler = true;
        config.poll_lease_seconds = 120;
        config.poll_stop_grace_seconds = 1;
    };
    let a = owner.start_peer(node).await;
    let (status, target) = owner
        .send_json(
            "POST",
            "/api/v1/targets",
            &json!({
                "name": "hangs",
                "address": addr.to_string(),
                "addon_id": "http-json",
                "schedule": { "interval_seconds": 3600 },
                "config": { "path": "health" },
            }),
        )
        .await;
    assert_eq!(status, 201, "{target}");
    let id = target["id"].as_i64().unwrap();
    let (status, answer) = owner
        .send_json_as(
            &owner.http,
            "POST",
            &format!("/api/v1/targets/{id}/poll"),
            None,
        )
        .await;
    assert!(status < 300, "{answer}");
    owner
        .wait_for("node A's poll to reach the peer", 30, async |_| {
            (connections.load(Ordering::SeqCst) == 1).then_some(())
        })
        .await;

    // B starts while A holds the lease, then A stops: B takes the target over.
    let b = owner.start_peer(node).await;
    a.stop().await;
    owner
        .wait_for(
            "node B to poll the target A let go (the lease has 120 s to run)",
            30,
            async |_| (connections.load(Ordering::SeqCst) >= 2).then_some(()),
        )
        .await;

    b.stop().await;
    owner.stop().await;
    peer.abort();
}
