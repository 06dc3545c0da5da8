//! Enabling and disabling an addon takes effect in a running server without a restart.

use std::time::Duration;

use opsconductor::registry::set_enabled;
use opsconductor_tests::{Db, TestRuntime, bundle, fixture};

async fn wait_for_status(rt: &TestRuntime, want: u16) -> u16 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = rt
            .post_webhook("alertmanager", fixture("alertmanager", "firing"))
            .await;
        if status == want || tokio::time::Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_and_enable_without_restart() {
    let rt = TestRuntime::start(Db::Sqlite, &[bundle("alertmanager")]).await;
    assert_eq!(wait_for_status(&rt, 200).await, 200);

    // What `opsconductor addon disable` does, against the same database.
    set_enabled(&rt.server.state().store, "alertmanager", false)
        .await
        .unwrap();
    assert_eq!(
        wait_for_status(&rt, 404).await,
        404,
        "disabled addon still routed"
    );
    let addon = rt.addon("alertmanager").await;
    assert_eq!(
        (addon["enabled"].as_bool(), addon["loaded"].as_bool()),
        (Some(false), Some(false))
    );

    set_enabled(&rt.server.state().store, "alertmanager", true)
        .await
        .unwrap();
    assert_eq!(
        wait_for_status(&rt, 200).await,
        200,
        "re-enabled addon not routed"
    );

    let err = set_enabled(&rt.server.state().store, "no-such-addon", true)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no addon `no-such-addon`"),
        "{err}"
    );
    rt.stop().await;
}
