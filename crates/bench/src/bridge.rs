//! The bridge under test as a separate process: `xdm-connect serve` with a SQLite store in a
//! temporary directory, configured only through `XDM_*` / `AWS_*` environment variables to talk
//! to the in-process sandbox, listening on a free loopback port.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xdm_sandbox::SandboxHandle;

/// How to start the bridge.
#[derive(Debug, Clone)]
pub struct BridgeSettings {
    /// The `xdm-connect` binary.
    pub bin: PathBuf,
    /// `RUST_LOG` of the bridge (its default is `info`).
    pub log_filter: String,
    /// More environment variables (`XDM_REORDER_WINDOW_MS`, `XDM_CONCURRENCY`, …), set last.
    pub extra_env: Vec<(String, String)>,
    /// Keep the temporary directory (database and log) instead of deleting it.
    pub keep_dir: bool,
}

/// A running bridge process.
#[derive(Debug)]
pub struct BridgeProcess {
    child: Child,
    pub port: u16,
    pub base_url: String,
    /// The admin listener (`/metrics`, `/healthz` with details), on its own free port.
    pub admin_url: String,
    /// Its bearer token (`Authorization: Bearer …`).
    pub admin_token: String,
    pub log_path: PathBuf,
    pub db_path: PathBuf,
    dir: Option<tempfile::TempDir>,
    keep_dir: bool,
}

pub(crate) fn free_loopback_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

impl BridgeProcess {
    /// Starts `xdm-connect serve` against `sandbox` and waits until `/healthz` answers 200.
    pub async fn start(sandbox: &SandboxHandle, settings: &BridgeSettings) -> anyhow::Result<Self> {
        if !settings.bin.is_file() {
            bail!(
                "no bridge binary at {} (build it with `cargo build --release -p xdm-app`, or pass --bridge-bin)",
                settings.bin.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("xdm-bench-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let db_path = dir.path().join("bench.db");
        let log_path = dir.path().join("bridge.log");
        let port = free_loopback_port()?;
        let admin_port = free_loopback_port()?;
        let admin_token = format!("xdm-bench-admin-{}", std::process::id());
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let sb = sandbox.config();
        let mut cmd = Command::new(&settings.bin);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", &settings.log_filter)
            .env("XDM_LISTEN", format!("127.0.0.1:{port}"))
            .env("XDM_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
            .env("XDM_ADMIN_TOKEN", &admin_token)
            .env("XDM_STORE", format!("sqlite:{}", db_path.display()))
            .env("XDM_X_API_URL", sandbox.base_url())
            .env("XDM_X_CONSUMER_KEY", &sb.x.consumer_key)
            .env("XDM_X_CONSUMER_SECRET", &sb.x.consumer_secret)
            // X signs its CRC challenge with the OAuth 2.0 client secret since the X Activity API.
            .env("XDM_X_CLIENT_SECRET", &sb.x.client_secret)
            .env("XDM_X_ACCESS_TOKEN", &sb.x.access_token)
            .env("XDM_X_ACCESS_TOKEN_SECRET", &sb.x.access_token_secret)
            .env("XDM_X_MEDIA_HOSTS", sandbox.base_url())
            .env("XDM_CONNECT_INSTANCE_ID", &sb.connect.instance_id)
            .env("XDM_CONNECT_CONTACT_FLOW_ID", &sb.connect.contact_flow_id)
            .env("XDM_CONNECT_TOPIC_ARN", sandbox.sns_topic_arn())
            .env("XDM_SNS_TRUSTED_CERT_URLS", sandbox.sns_cert_url())
            .env("AWS_REGION", &sb.connect.region)
            .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
            .env("AWS_SECRET_ACCESS_KEY", "bench-secret-access-key")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_CONNECT", sandbox.base_url())
            .env("AWS_ENDPOINT_URL_CONNECTPARTICIPANT", sandbox.base_url());
        for (k, v) in &settings.extra_env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", settings.bin.display()))?;
        let mut bridge = Self {
            child,
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            admin_token,
            log_path,
            db_path,
            dir: Some(dir),
            keep_dir: settings.keep_dir,
        };
        bridge.wait_healthy(Duration::from_secs(20)).await?;
        Ok(bridge)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::builder().no_proxy().build()?;
        let url = format!("{}/healthz", self.base_url);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the bridge exited ({status}) before becoming healthy; its log:\n{}",
                    tail(&self.log_path, 40)
                );
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!(
                    "the bridge did not become healthy within {} s; its log:\n{}",
                    timeout.as_secs(),
                    tail(&self.log_path, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Lines of the bridge's log at WARN or ERROR level.
    pub fn warnings(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(str::to_owned)
            .collect()
    }

    /// Kills the process (SIGKILL: the store is crash-safe) and removes or keeps the directory.
    pub fn stop(mut self) -> Option<PathBuf> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = self.dir.take()?;
        if self.keep_dir {
            Some(dir.keep())
        } else {
            None
        }
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
