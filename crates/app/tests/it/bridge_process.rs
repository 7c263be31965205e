//! The real `xdm-connect` binary as a child process, configured only through the public settings
//! (`XDM_*`, `AWS_*`; README, Configuration) against an in-process sandbox: `serve`, for tests that
//! kill it with SIGKILL and start it again on the same port and SQLite file, and the Lambda
//! `bootstrap`.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use xdm_sandbox::SandboxHandle;

/// A port nobody listens on right now (the bridge binds it again after each restart).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How to start the binary beyond the sandbox wiring.
#[derive(Default)]
pub struct ServeOptions<'a> {
    /// More `XDM_*` settings (they override the defaults below: `XDM_RETRY_BASE_MS=100`).
    pub env: &'a [(&'a str, &'a str)],
    /// Append the binary's stderr (its log) to this file; `None` discards it.
    pub log: Option<&'a Path>,
}

/// A running `xdm-connect serve`; killed with SIGKILL when dropped (a failing test leaves no
/// process behind).
pub struct BridgeProcess {
    child: Child,
}

impl BridgeProcess {
    /// SIGKILL (no shutdown code runs), then reaps the process.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (what systemd, Docker and Lambda send before they stop a process).
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed: {sent}");
    }

    /// Waits up to `limit` for the process to exit on its own; `None` if it is still running.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `xdm-connect serve` on `127.0.0.1:port` with the SQLite store `db`, wired to `sandbox`.
pub fn serve(sandbox: &SandboxHandle, port: u16, db: &Path) -> BridgeProcess {
    serve_with(sandbox, port, db, &ServeOptions::default())
}

pub fn serve_with(
    sandbox: &SandboxHandle,
    port: u16,
    db: &Path,
    options: &ServeOptions<'_>,
) -> BridgeProcess {
    let stderr = match options.log {
        Some(path) => Stdio::from(append(path)),
        None => Stdio::null(),
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_xdm-connect"));
    wire_to_sandbox(&mut command, sandbox, db);
    command
        .arg("serve")
        .env("XDM_LISTEN", format!("127.0.0.1:{port}"))
        // Several of these run at once: none may take the default admin port.
        .env("XDM_ADMIN_LISTEN", "off")
        .env("XDM_RETRY_BASE_MS", "100");
    for (key, value) in options.env {
        command.env(key, value);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    BridgeProcess { child }
}

/// The binary started as a Lambda function's `bootstrap` (a link of that name in `dir`) with
/// the variables Lambda sets, its Runtime API at `runtime_api`, its log (JSON lines) to `log`.
pub fn lambda_bootstrap(
    sandbox: &SandboxHandle,
    runtime_api: std::net::SocketAddr,
    dir: &Path,
    log: &Path,
) -> BridgeProcess {
    let bootstrap = dir.join("bootstrap");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_xdm-connect"), &bootstrap).unwrap();
    let mut command = Command::new(&bootstrap);
    wire_to_sandbox(&mut command, sandbox, &dir.join("lambda.db"));
    command
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "xdm-test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/xdm-test")
        .env("XDM_METRICS_NAMESPACE", "off");
    let child = command
        .stdout(Stdio::from(append(log)))
        .stderr(Stdio::from(append(log)))
        .spawn()
        .unwrap();
    BridgeProcess { child }
}

/// Only the given settings (first: it clears the rest): the store `db`, X and Amazon Connect at
/// `sandbox`, static AWS credentials.
fn wire_to_sandbox(command: &mut Command, sandbox: &SandboxHandle, db: &Path) {
    let sb = sandbox.config();
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("XDM_STORE", format!("sqlite:{}", db.display()))
        .env("XDM_X_API_URL", sandbox.base_url())
        .env("XDM_X_CONSUMER_KEY", &sb.x.consumer_key)
        .env("XDM_X_CONSUMER_SECRET", &sb.x.consumer_secret)
        .env("XDM_X_CLIENT_SECRET", &sb.x.client_secret)
        .env("XDM_X_BEARER_TOKEN", &sb.x.bearer_token)
        .env("XDM_X_ACCESS_TOKEN", &sb.x.access_token)
        .env("XDM_X_ACCESS_TOKEN_SECRET", &sb.x.access_token_secret)
        .env("XDM_CONNECT_INSTANCE_ID", &sb.connect.instance_id)
        .env("XDM_CONNECT_CONTACT_FLOW_ID", &sb.connect.contact_flow_id)
        .env("XDM_CONNECT_TOPIC_ARN", sandbox.sns_topic_arn())
        .env("XDM_SNS_TRUSTED_CERT_URLS", sandbox.sns_cert_url())
        .env("AWS_REGION", &sb.connect.region)
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_CONNECT", sandbox.base_url())
        .env("AWS_ENDPOINT_URL_CONNECTPARTICIPANT", sandbox.base_url());
}

/// Waits until `GET /healthz` answers 200 (gives up after 15 s).
pub async fn wait_healthy(port: u16) {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the bridge did not become healthy");
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// The binary's log file: the test writes its own markers into it, and it is printed (its
/// tail) if the test panics while this is alive.
pub struct BridgeLog {
    path: PathBuf,
}

impl BridgeLog {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A line of the test's own between the binary's lines.
    pub fn mark(&self, line: &str) {
        writeln!(append(&self.path), "===== {line}").unwrap();
    }
}

impl Drop for BridgeLog {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        const TAIL: usize = 300;
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(TAIL);
        eprintln!(
            "----- the bridge's log ({}), last {} of {} lines -----",
            self.path.display(),
            lines.len() - from,
            lines.len()
        );
        for line in &lines[from..] {
            eprintln!("{line}");
        }
        eprintln!("----- end of the bridge's log -----");
        let kept =
            std::env::temp_dir().join(format!("xdm-connect-test-{}.log", std::process::id()));
        if std::fs::copy(&self.path, &kept).is_ok() {
            eprintln!("the whole log is kept in {}", kept.display());
        }
    }
}
