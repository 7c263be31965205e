//! `floor`: what the least a bridge-shaped process can do costs on this machine, so that the
//! bridge's CPU per message can be read against it.
//!
//! A DM through the bridge is at least one HTTP request answered (X's webhook POST) and one HTTP
//! request made (Connect's SendMessage), the second after the reorder window — two separate
//! wake-ups of an otherwise idle process at low rates. This scenario runs a stand-in that does
//! only that, with the bridge's own stack (tokio's multi-threaded runtime with one worker, the
//! bridge's default, axum on hyper to answer, a pooled reqwest client to relay) and nothing else: no
//! signature, no parsing, no store, no logging. It is a second process started from this binary
//! (`XDM_BENCH_FLOOR_SERVER` in its environment, see [`serve_if_asked`]), sent the same 1.5 KB
//! bodies at the same rate as the end-to-end scenarios; its CPU over the window (the scheduler's
//! run time of its threads, `schedstat`, in nanoseconds) divided by the requests is the floor.
//!
//! Three variants, each in a fresh stand-in process:
//! * `answer` — answer 200, nothing else;
//! * `answer + relay` — also POST the body to a sink in this process right away;
//! * `answer + relay after 250 ms` — the relay waits the bridge's default reorder window first,
//!   so it wakes the process a second time, as a delivery does.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::load::{Pace, Until};
use crate::procfs::{SchedStat, cpu_times, thread_schedstats};

/// The environment variable that turns this binary into the stand-in:
/// `<listen address>` or `<listen address> <relay URL> <delay ms>`.
pub const SERVER_ENV: &str = "XDM_BENCH_FLOOR_SERVER";

/// What one variant cost.
#[derive(Debug, Clone, Serialize)]
pub struct FloorLine {
    pub variant: String,
    /// Requests answered in the measured window.
    pub requests: u64,
    /// Relays that reached the sink (0 for `answer`).
    pub relayed: u64,
    /// The stand-in's CPU per request (`schedstat` run time of its threads).
    pub cpu_per_request_us: f64,
    /// The same from `utime + stime` (clock ticks: coarser), split.
    pub user_s: f64,
    pub system_s: f64,
    /// Times one of its threads was scheduled in, per request.
    pub slices_per_request: f64,
    pub seconds: f64,
}

/// A variant of the stand-in.
#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    /// `None`: answer only; `Some(d)`: relay after `d`.
    relay_after: Option<Duration>,
}

const VARIANTS: [Variant; 3] = [
    Variant {
        name: "answer",
        relay_after: None,
    },
    Variant {
        name: "answer + relay",
        relay_after: Some(Duration::ZERO),
    },
    Variant {
        name: "answer + relay after 250 ms",
        relay_after: Some(Duration::from_millis(250)),
    },
];

/// The body each request carries: the size of an Account Activity delivery.
fn body() -> Bytes {
    Bytes::from(vec![b'x'; 1_500])
}

/// Runs every variant at `rate` (or as fast as `concurrency` requests at a time go) for
/// `warmup` then `duration`, each in a fresh stand-in: `exe` (this binary, `xdm-bench`) started
/// with [`SERVER_ENV`].
pub async fn run(
    exe: &Path,
    rate: Option<f64>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Vec<FloorLine>> {
    if rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) || concurrency == 0 {
        bail!("floor: the rate must be a positive number and the concurrency at least 1");
    }
    let sink = Sink::start().await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let mut lines = Vec::new();
    for variant in VARIANTS {
        let port = crate::bridge::free_loopback_port()?;
        let spec = match variant.relay_after {
            None => format!("127.0.0.1:{port}"),
            Some(d) => format!("127.0.0.1:{port} {} {}", sink.url, d.as_millis()),
        };
        let mut server = StandIn::start(exe, &spec)?;
        let url = format!("http://127.0.0.1:{port}/");
        server.wait_listening(port).await?;
        let relayed_before = sink.count();
        let warm = send(&client, &url, rate, concurrency, warmup).await?;
        // Let the warm-up's relays land before the window opens.
        if !sink
            .wait_for(relayed_before + warm, variant.relay_after)
            .await
        {
            bail!(
                "{}: the warm-up's relays did not reach the sink",
                variant.name
            );
        }
        let relayed_before = sink.count();
        let cpu_before = cpu_times(server.pid())?;
        let sched_before = total_sched(server.pid());
        let start = Instant::now();
        let requests = send(&client, &url, rate, concurrency, duration).await?;
        if variant.relay_after.is_some() {
            let expected = relayed_before + requests;
            if !sink.wait_for(expected, variant.relay_after).await {
                bail!(
                    "{}: {} of {requests} relays reached the sink",
                    variant.name,
                    sink.count() - relayed_before
                );
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let sched = total_sched(server.pid()).since(&sched_before);
        let cpu = cpu_times(server.pid())?.since(&cpu_before);
        server.stop();
        lines.push(FloorLine {
            variant: variant.name.to_owned(),
            requests,
            relayed: sink.count() - relayed_before,
            cpu_per_request_us: per(sched.run_ns as f64 / 1_000.0, requests),
            user_s: cpu.user().as_secs_f64(),
            system_s: cpu.system().as_secs_f64(),
            slices_per_request: per(sched.slices as f64, requests),
            seconds,
        });
    }
    Ok(lines)
}

#[allow(clippy::cast_precision_loss)]
fn per(total: f64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { total / n as f64 }
}

/// Every thread of `pid` added up.
fn total_sched(pid: u32) -> SchedStat {
    let mut total = SchedStat::default();
    for s in thread_schedstats(pid).values() {
        total += *s;
    }
    total
}

/// POSTs the body to `url` for `length`, at `rate` or `concurrency` at a time; returns the
/// requests answered 200 (anything else fails the run: the stand-in answers nothing else).
async fn send(
    client: &reqwest::Client,
    url: &str,
    rate: Option<f64>,
    concurrency: usize,
    length: Duration,
) -> anyhow::Result<u64> {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let pace = Pace::start(Until::Time(length), rate);
    let mut tasks = JoinSet::new();
    let mut n: u64 = 0;
    while pace.turn(n).await {
        let permit = Arc::clone(&limit).acquire_owned().await?;
        let request = client.post(url).body(body());
        tasks.spawn(async move {
            let answer = request.send().await;
            drop(permit);
            match answer {
                Ok(a) if a.status() == StatusCode::OK => Ok(()),
                Ok(a) => Err(anyhow::anyhow!("the stand-in answered {}", a.status())),
                Err(e) => Err(anyhow::Error::new(e).context("the stand-in did not answer")),
            }
        });
        n += 1;
    }
    let mut ok = 0;
    while let Some(done) = tasks.join_next().await {
        done??;
        ok += 1;
    }
    Ok(ok)
}

/// Where the stand-in relays to: counts what arrives.
struct Sink {
    url: String,
    count: Arc<AtomicU64>,
}

impl Sink {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let count = Arc::new(AtomicU64::new(0));
        let app = Router::new()
            .route("/", post(count_one))
            .with_state(Arc::clone(&count));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the floor's sink stopped");
            }
        });
        Ok(Self {
            url: format!("http://{addr}/"),
            count,
        })
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits until `n` relays arrived (true), or gives up after the relay delay plus 10 s.
    async fn wait_for(&self, n: u64, relay_after: Option<Duration>) -> bool {
        let Some(delay) = relay_after else {
            return true;
        };
        let give_up = Instant::now() + delay + Duration::from_secs(10);
        while self.count() < n {
            if Instant::now() >= give_up {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

async fn count_one(State(count): State<Arc<AtomicU64>>, _body: Bytes) -> StatusCode {
    count.fetch_add(1, Ordering::Relaxed);
    StatusCode::OK
}

/// The stand-in process.
struct StandIn {
    child: Child,
}

impl StandIn {
    fn start(exe: &Path, spec: &str) -> anyhow::Result<Self> {
        let child = Command::new(exe)
            .env_clear()
            .env(SERVER_ENV, spec)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        Ok(Self { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_listening(&mut self, port: u16) -> anyhow::Result<()> {
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the floor's stand-in exited: {status}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= give_up {
                bail!("the floor's stand-in is not listening on {port} after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// In the stand-in process (this binary started with [`SERVER_ENV`]): serves until killed, then
/// `Some` with how it ended; `None` in any other process.
pub fn serve_if_asked() -> Option<anyhow::Result<()>> {
    let spec = std::env::var(SERVER_ENV).ok()?;
    Some(
        tokio::runtime::Builder::new_multi_thread()
            // As the bridge (`xdm-connect`'s `async_runtime`); figures before 2026-12-08 ran
            // tokio's default of one worker per core.
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(serve(&spec))),
    )
}

/// What the stand-in does with a request.
struct Relay {
    client: reqwest::Client,
    url: String,
    after: Duration,
}

async fn serve(spec: &str) -> anyhow::Result<()> {
    let mut parts = spec.split(' ');
    let addr: SocketAddr = parts
        .next()
        .context("no listen address")?
        .parse()
        .context("not a socket address")?;
    let relay = match (parts.next(), parts.next()) {
        (Some(url), Some(ms)) => Some(Relay {
            client: reqwest::Client::builder().no_proxy().build()?,
            url: url.to_owned(),
            after: Duration::from_millis(ms.parse().context("not a delay in ms")?),
        }),
        (None, None) => None,
        _ => bail!("`{spec}` is neither `ADDR` nor `ADDR URL MS`"),
    };
    let app = Router::new()
        .route("/", post(answer))
        .with_state(relay.map(Arc::new));
    let listener = TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn answer(State(relay): State<Option<Arc<Relay>>>, body: Bytes) -> StatusCode {
    if let Some(relay) = relay {
        tokio::spawn(async move {
            if !relay.after.is_zero() {
                tokio::time::sleep(relay.after).await;
            }
            // A relay that fails shows as missing at the sink, which fails the run.
            let _ = relay.client.post(&relay.url).body(body).send().await;
        });
    }
    StatusCode::OK
}

/// The lines as a table.
pub fn render(lines: &[FloorLine], rate: Option<f64>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let pace = rate.map_or_else(|| "as fast as it goes".to_owned(), |r| format!("{r}/s"));
    let _ = writeln!(
        out,
        "floor: a stand-in with the bridge's HTTP stack and nothing else, {pace}"
    );
    let _ = writeln!(
        out,
        "| variant | requests | relayed | CPU / request | user / system | slices / request |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for l in lines {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} µs | {:.2} s / {:.2} s | {:.1} |",
            l.variant,
            l.requests,
            l.relayed,
            l.cpu_per_request_us,
            l.user_s,
            l.system_s,
            l.slices_per_request
        );
    }
    out
}
