//! `xdm-connect serve`.

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::startup::{Application, Overrides};
use crate::telemetry;

pub async fn run(config_path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    telemetry::init(config.log_format);
    let app = Application::build(config, Overrides::default())
        .await
        .context("cannot start the bridge")?;
    tracing::info!(address = %app.local_addr(), "xdm-connect listening");
    if let Some(admin) = app.admin_addr() {
        tracing::info!(address = %admin, "admin listener (/metrics, /healthz) listening");
    }
    app.run_until_stopped(shutdown_signal()).await
}

/// Ctrl-C or SIGTERM.
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
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
