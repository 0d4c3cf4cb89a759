//! A shutdown signal for `run_until`: Ctrl-C, or SIGTERM on Unix (what Kubernetes and
//! docker-compose send), without enabling tokio's `signal` feature yourself.
//!
//! ```no_run
//! # async fn demo(broker: brokerkit::Broker) -> brokerkit::Result<()> {
//! broker.consumer("orders").group("billing")
//!     .handle_raw(|_ctx, _m| async { Ok(()) })
//!     .run_until(brokerkit::shutdown_signal())
//!     .await?;
//! # Ok(()) }
//! ```

/// Resolves on the first Ctrl-C (SIGINT) or, on Unix, SIGTERM. If a signal handler cannot be
/// installed, that signal is ignored (logged), and the other still works.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        _ = term => tracing::info!("SIGTERM: shutting down"),
    }
}
