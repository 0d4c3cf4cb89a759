//! `shutdown_signal` ends a handler run on SIGTERM, which then drains normally.

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_a_handler_run() {
    use std::time::Duration;
    let broker = brokerkit::Broker::connect("memory://").await.unwrap();
    let running = broker
        .consumer("signals")
        .handle_raw(|_ctx, _m| async { Ok(()) })
        .start(brokerkit::shutdown_signal())
        .await
        .unwrap();
    // Let the signal handler install before the signal is raised.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let report = tokio::time::timeout(Duration::from_secs(5), running.join())
        .await
        .expect("the run ends on SIGTERM")
        .unwrap();
    assert_eq!(report.total(), 0);
}
