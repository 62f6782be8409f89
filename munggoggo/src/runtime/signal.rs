//! Ctrl-C or SIGTERM: when the runtime, the launcher and the dashboard
//! stop gracefully.

/// Completes at Ctrl-C or SIGTERM, the signals that end
/// [`RuntimeHandle::run_until_signal`](super::RuntimeHandle::run_until_signal):
/// for programs beside a runtime (a launcher, a dashboard's server) that
/// stop gracefully on the same signals.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
