//! `xdm-bench`: see the crate documentation (`cargo doc -p xdm-bench`).
// A command-line report: printing is its job.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::Serialize;
use xdm_bench::report;
use xdm_bench::{
    Admin, BridgeProcess, BridgeSettings, LoadOptions, Scenario, ScenarioReport, Target,
};
use xdm_sandbox::{FaultProfile, Sandbox, SandboxConfig, Side, SignatureVersion};

/// Load generator: simulated X customers and Connect agents through the bridge (a separate
/// `xdm-connect serve` process) and the in-process sandbox, over loopback only.
#[derive(Debug, Parser)]
#[command(name = "xdm-bench", version)]
struct Cli {
    /// Scenarios to run, in turn (each with a fresh sandbox and bridge).
    #[arg(required = true, value_enum)]
    scenarios: Vec<Scenario>,
    /// The bridge binary.
    #[arg(long, default_value = "target/release/xdm-connect")]
    bridge_bin: PathBuf,
    /// Simulated customers (one chat and one agent each).
    #[arg(long, default_value_t = 50)]
    customers: usize,
    /// Webhook POSTs in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Messages per second (open loop); default: as fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of measured sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of unmeasured sending first (not for connect-down).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// End-to-end scenarios: messages on their way at most.
    #[arg(long, default_value_t = 1000)]
    max_in_flight: usize,
    /// Seconds to wait for the last message to arrive.
    #[arg(long, default_value_t = 300.0)]
    drain_timeout: f64,
    /// `acks`: do not wait for the backlog to reach Connect afterwards.
    #[arg(long)]
    no_drain: bool,
    /// Subscribe the bridge's SNS endpoint without the echo filter policy (the customer's own
    /// messages are then streamed back to the bridge, which drops them).
    #[arg(long)]
    no_sns_filter: bool,
    /// Extra environment of the bridge, e.g. `XDM_REORDER_WINDOW_MS=0` (repeatable).
    #[arg(long = "bridge-env", value_name = "KEY=VALUE", value_parser = parse_env)]
    bridge_env: Vec<(String, String)>,
    /// `RUST_LOG` of the bridge.
    #[arg(long, default_value = "info")]
    bridge_log: String,
    /// Keep each bridge's temporary directory (SQLite database and log).
    #[arg(long)]
    keep_dir: bool,
    /// Also write the reports as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Faults on every Amazon Connect operation (contact, participant, attachments) for the whole
    /// scenario, e.g. `error=0.15,throttle=0.05,drop-after=0.02,latency=5+10` (see `xdm_bench::faults`).
    #[arg(long, value_name = "SPEC", value_parser = xdm_bench::faults::parse_fault_spec)]
    connect_faults: Option<FaultProfile>,
    /// SNS `SignatureVersion` of the sandbox's topic: `2` (SHA256withRSA, signed with aws-lc-rs,
    /// ~0.2 ms each) or `1` (SHA1withRSA, signed with the pure-Rust `rsa` crate, ~0.9 ms each,
    /// which then dominates this process's CPU). The bridge verifies either.
    #[arg(long, value_name = "1|2", default_value = "2", value_parser = parse_signature_version)]
    sns_signature_version: SignatureVersion,
    /// Faults on every X operation (REST, media), same syntax as `--connect-faults`.
    #[arg(long, value_name = "SPEC", value_parser = xdm_bench::faults::parse_fault_spec)]
    x_faults: Option<FaultProfile>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

fn parse_signature_version(s: &str) -> Result<SignatureVersion, String> {
    match s {
        "1" => Ok(SignatureVersion::V1),
        "2" => Ok(SignatureVersion::V2),
        _ => Err(format!("`{s}` is not an SNS SignatureVersion (1 or 2)")),
    }
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{what}: `{s}` is not a duration"))
}

/// Where the numbers were taken.
#[derive(Debug, Serialize)]
struct Machine {
    cpus: usize,
    cpu_model: String,
    memory_gib: f64,
    kernel: String,
    clock_ticks_per_sec: u64,
}

impl Machine {
    fn probe() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                matches!(k.trim(), "model name" | "Model" | "CPU part").then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let mem_kib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        Self {
            cpus: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            cpu_model,
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            clock_ticks_per_sec: xdm_bench::procfs::clock_ticks_per_sec(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Output<'a> {
    machine: &'a Machine,
    command: String,
    /// SNS `SignatureVersion` the sandbox signed with.
    sns_signature_version: &'static str,
    reports: &'a [ScenarioReport],
    /// The `floor` scenario's lines, if it ran.
    floor: &'a [xdm_bench::floor::FloorLine],
}

fn main() -> anyhow::Result<()> {
    // The `floor` scenario's stand-in is this binary started again with its own environment.
    if let Some(served) = xdm_bench::floor::serve_if_asked() {
        return served;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(generate())
}

async fn generate() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let opts = LoadOptions {
        customers: cli.customers,
        concurrency: cli.concurrency,
        rate: cli.rate,
        duration: secs(cli.duration, "--duration")?,
        warmup: secs(cli.warmup, "--warmup")?,
        max_in_flight: cli.max_in_flight,
        drain_timeout: secs(cli.drain_timeout, "--drain-timeout")?,
        drain_acks: !cli.no_drain,
        sns_filter: !cli.no_sns_filter,
    };
    let settings = BridgeSettings {
        bin: cli.bridge_bin.clone(),
        log_filter: cli.bridge_log.clone(),
        extra_env: cli.bridge_env.clone(),
        keep_dir: cli.keep_dir,
    };
    let machine = Machine::probe();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    println!(
        "xdm-bench on {} CPUs ({}), {} GiB, Linux {}; bridge {}; SNS SignatureVersion {}",
        machine.cpus,
        machine.cpu_model,
        machine.memory_gib,
        machine.kernel,
        settings.bin.display(),
        cli.sns_signature_version.as_str()
    );
    let mut reports = Vec::new();
    let mut floor = Vec::new();
    for scenario in &cli.scenarios {
        if *scenario == Scenario::Floor {
            let exe = std::env::current_exe()
                .context("cannot find this binary to start the floor's stand-in")?;
            let lines = xdm_bench::floor::run(
                &exe,
                opts.rate,
                opts.concurrency,
                opts.warmup,
                opts.duration,
            )
            .await
            .context("scenario floor")?;
            println!();
            print!("{}", xdm_bench::floor::render(&lines, opts.rate));
            floor.extend(lines);
            continue;
        }
        let mut sandbox_config = SandboxConfig::default();
        sandbox_config.sns.signature_version = cli.sns_signature_version;
        let sandbox = Sandbox::start(sandbox_config)
            .await
            .context("cannot start the sandbox")?;
        let bridge = BridgeProcess::start(&sandbox, &settings).await?;
        let mut fault_notes = Vec::new();
        for (side, profile) in [
            (Side::Connect, &cli.connect_faults),
            (Side::X, &cli.x_faults),
        ] {
            if let Some(profile) = profile {
                sandbox
                    .set_side_fault_profile(side, profile.clone())
                    .context("cannot set the fault profile")?;
                fault_notes.push(format!(
                    "faults on every {side:?} call: error {} throttle {} drop {} ({:?}), latency {}+{} ms",
                    profile.error_rate,
                    profile.throttle_rate,
                    profile.drop_rate,
                    profile.drop_mode,
                    profile.latency_ms,
                    profile.jitter_ms
                ));
            }
        }
        let target = Target {
            base_url: bridge.base_url.clone(),
            pid: bridge.pid(),
            admin: Some(Admin {
                url: bridge.admin_url.clone(),
                token: bridge.admin_token.clone(),
            }),
        };
        let result = xdm_bench::run(*scenario, &sandbox, &target, &opts).await;
        let warnings = bridge.warnings();
        let kept = bridge.stop();
        sandbox.shutdown();
        let mut r = result.with_context(|| format!("scenario {}", scenario.name()))?;
        r.notes.push(format!(
            "SNS notifications signed with SignatureVersion {}",
            cli.sns_signature_version.as_str()
        ));
        r.notes.extend(fault_notes);
        if !warnings.is_empty() {
            r.notes.push(format!(
                "the bridge logged {} WARN/ERROR lines, e.g. {}",
                warnings.len(),
                warnings[0]
            ));
        }
        if let Some(dir) = kept {
            r.notes
                .push(format!("bridge database and log kept in {}", dir.display()));
        }
        println!();
        print!("{}", report::render(&r));
        reports.push(r);
    }
    if !reports.is_empty() {
        println!();
        print!("{}", report::markdown(&reports));
    }
    if let Some(path) = &cli.json {
        let json = serde_json::to_string_pretty(&Output {
            machine: &machine,
            command,
            sns_signature_version: cli.sns_signature_version.as_str(),
            reports: &reports,
            floor: &floor,
        })?;
        if path.as_os_str() == "-" {
            println!("{json}");
        } else {
            std::fs::write(path, json + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}
