//! `munggoggo dashboard` and `run --dashboard`: the web dashboard (feature `web`).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use super::args::GlobalArgs;
use super::error::{CliError, ErrorKind};
use super::output;
use munggoggo::{Runtime, RuntimeHandle};
use munggoggo_web::{Dashboard, DashboardOptions};

/// Joins the broker of `args` and serves the dashboard on `listen` until
/// Ctrl-C or SIGTERM.
pub(crate) async fn dashboard(
    args: &GlobalArgs,
    listen: SocketAddr,
    token: Option<String>,
) -> Result<(), CliError> {
    let url = args.broker_url();
    let shown = munggoggo::bus::redact(url);
    let runtime = Runtime::from_url(url)?;
    let wait = args.timeout.max(Duration::from_secs(1));
    let runtime = match tokio::time::timeout(wait, runtime.start()).await {
        Ok(Ok(runtime)) => runtime,
        Ok(Err(e)) => {
            return Err(CliError::new(
                ErrorKind::Connect,
                format!(
                    "cannot connect to the broker at `{shown}`: {}",
                    e.to_string().replace(url, &shown)
                ),
            ))
        }
        Err(_) => {
            return Err(CliError::new(
                ErrorKind::Connect,
                format!(
                    "cannot reach the broker at `{shown}` within {}",
                    humantime::format_duration(wait)
                ),
            ))
        }
    };
    let options = DashboardOptions::from_env()
        .call_timeout(args.timeout)
        .token(token.or_else(|| DashboardOptions::from_env().token));
    let outcome = serve(&runtime, listen, options, args.json).await;
    runtime.shutdown().await;
    outcome
}

/// Serves a dashboard of `runtime`'s bus on `listen` until Ctrl-C or SIGTERM.
pub(crate) async fn serve(
    runtime: &RuntimeHandle,
    listen: SocketAddr,
    options: DashboardOptions,
    json: bool,
) -> Result<(), CliError> {
    let listener = munggoggo_web::bind(listen)
        .await
        .map_err(|e| CliError::failed(e.to_string()))?;
    let address = listener.local_addr().unwrap_or(listen);
    let guarded = options.token.is_some();
    let dashboard = Dashboard::start(runtime, options).await?;
    if json {
        output::print_json(&json!({ "dashboard": format!("http://{address}/"), "token": guarded }));
    } else {
        let note = if guarded { " (changes need the token)" } else { "" };
        output::note(&format!("dashboard on http://{address}/{note}; Ctrl-C to stop"));
    }
    if !address.ip().is_loopback() && !guarded {
        tracing::warn!(%address, "the dashboard listens beyond this machine without a token");
    }
    dashboard
        .serve(listener, munggoggo::runtime::shutdown_signal())
        .await
        .map_err(|e| CliError::failed(e.to_string()))
}
