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
    // The worker count comes from the environment (`async_runtime`): say which it took.
    let async_workers = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(address = %app.local_addr(), async_workers, "xdm-connect listening");
    if let Some(admin) = app.admin_addr() {
        tracing::info!(address = %admin, "admin listener (/metrics, /healthz) listening");
    }
    app.run_until_stopped(crate::shutdown::signal()).await
}
