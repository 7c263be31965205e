//! The AWS emulator (moto: DynamoDB, SQS, SSM, Secrets Manager) the tests talk to, over real
//! sockets with the real SDK clients.
//!
//! `XDM_TEST_DYNAMODB_ENDPOINT` (e.g. `http://127.0.0.1:5555`) points the tests at a running
//! emulator. Otherwise the first test that asks starts moto's server from the project's virtualenv
//! (`./scripts/venv.sh` creates it) on a free loopback port, once for this test binary. There is
//! no emulator-less fallback: without one the DynamoDB tests fail, saying what to run.
//!
//! Nothing is left running: moto is started under a small `sh` watchdog that holds the read end
//! of a pipe whose write end only this process has. When this process ends — normally, by a
//! panic or by a signal — the kernel closes the pipe, the watchdog's `read` returns, and it
//! kills moto. Tests never reset moto's state: each store uses fresh, uniquely prefixed tables.
//!
//! moto serves each request on its own thread and its transactions are not isolated from
//! one another (a cancelled transaction restores a copy of the whole table taken when it
//! started, undoing what concurrent requests wrote meanwhile). Real DynamoDB serialises
//! conflicting writes; so the emulator runs behind `serialized_moto.py`, which runs moto's own
//! server with one request at a time. Requests still arrive concurrently over many connections:
//! the races are between real clients, as against DynamoDB.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

const ENV: &str = "XDM_TEST_DYNAMODB_ENDPOINT";
const START_TIMEOUT: Duration = Duration::from_secs(30);

struct Emulator {
    endpoint: String,
    /// The watchdog; its stdin pipe stays open for as long as this process lives (statics are
    /// never dropped).
    _watchdog: Option<Child>,
}

/// The emulator's endpoint URL; panics (failing the test) when there is none.
pub fn endpoint() -> &'static str {
    static EMULATOR: OnceLock<Result<Emulator, String>> = OnceLock::new();
    match EMULATOR.get_or_init(start) {
        Ok(emulator) => &emulator.endpoint,
        Err(why) => panic!("{why}"),
    }
}

/// An explicit SDK configuration for the emulator: static credentials, us-east-1, the endpoint;
/// nothing read from the environment or from instance metadata.
pub fn sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test",
            "test",
            None,
            None,
            "xdm-tests",
        )))
        .endpoint_url(endpoint())
        .build()
}

fn start() -> Result<Emulator, String> {
    if let Ok(endpoint) = std::env::var(ENV)
        && !endpoint.trim().is_empty()
    {
        return Ok(Emulator {
            endpoint: endpoint.trim().to_owned(),
            _watchdog: None,
        });
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    let moto = root.join(".venv/bin/moto_server");
    if !python.is_file() || !moto.is_file() {
        return Err(format!(
            "the AWS tests need the moto emulator: run ./scripts/venv.sh (or set {ENV} to a running emulator)"
        ));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("serialized_moto.py");
    let log = std::env::temp_dir().join(format!("xdm-moto-{}.log", std::process::id()));
    let mut last_error = String::new();
    // A port picked free can be taken before moto binds it: try a few.
    for _ in 0..3 {
        let port = free_port().map_err(|e| format!("no free loopback port for moto: {e}"))?;
        match spawn(&python, &script, port, &log) {
            Ok(watchdog) => {
                return Ok(Emulator {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    _watchdog: Some(watchdog),
                });
            }
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Starts moto under the watchdog and waits until it accepts connections.
fn spawn(python: &Path, script: &Path, port: u16, log: &Path) -> Result<Child, String> {
    // $0 python, $1 script, $2 port, $3 log. fd 3 is the pipe from this process: explicit,
    // because asynchronous lists of a non-interactive shell get /dev/null as their stdin.
    const WATCHDOG: &str = r#"
        exec 3<&0
        "$0" "$1" -H 127.0.0.1 -p "$2" >"$3" 2>&1 </dev/null &
        moto=$!
        ( read -r _ <&3; kill "$moto" 2>/dev/null ) &
        wait "$moto"
    "#;
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg(python)
        .arg(script)
        .arg(port.to_string())
        .arg(log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start moto (sh): {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(watchdog);
        }
        let exited = watchdog.try_wait().ok().flatten().is_some();
        if exited || started.elapsed() > START_TIMEOUT {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            let mut output = String::new();
            let _ = std::fs::File::open(log).and_then(|mut f| f.read_to_string(&mut output));
            let tail: String = output.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            return Err(format!(
                "moto did not start on 127.0.0.1:{port} (log {}): {tail}",
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
