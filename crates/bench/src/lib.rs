//! # xdm-bench
//!
//! The load generator of xdm-connect: N simulated X customers and Connect agents talking through
//! the bridge, with the X and Amazon Connect emulators of `xdm-sandbox` running in this process
//! and the bridge (`xdm-connect serve`, SQLite store) as a **separate process**, everything over
//! loopback. It reports throughput, latency percentiles (HdrHistogram), the bridge's CPU time per
//! message (`utime + stime` of `/proc/<pid>/stat`), its heap allocations and allocated bytes per
//! message (read from its admin `/metrics` when it is built with `--features count-allocations`,
//! else "n/a"), its peak RSS (`VmHWM` of `/proc/<pid>/status`),
//! the platform calls per operation and the SNS notifications per message (the sandbox's counters),
//! and — apart from the bridge's — this process's own CPU per message (`/proc/self/stat`: the
//! sandbox and the generator). The sandbox signs SNS with SignatureVersion 2 (SHA256withRSA,
//! aws-lc-rs) unless `--sns-signature-version 1` (SHA1withRSA, the slower pure-Rust `rsa` crate).
//!
//! ## Run it
//!
//! ```text
//! cargo build --release -p xdm-app -p xdm-bench      # add --features count-allocations for allocations
//! ./target/release/xdm-bench acks inbound-e2e outbound-e2e connect-down \
//!     --customers 50 --duration 20
//! ./target/release/xdm-bench inbound-e2e --rate 1000 --duration 30     # RSS at 1,000 msg/s
//! ./target/release/xdm-bench acks --json results.json                  # machine-readable too
//! ```
//!
//! Each scenario gets a fresh sandbox and a fresh bridge process (new database, so `VmHWM`
//! covers only that scenario plus start-up). The bridge binary is `--bridge-bin` (default
//! `target/release/xdm-connect`); its settings are the production defaults (reorder windows of
//! 250 ms included) unless overridden with `--bridge-env KEY=VALUE`; its log goes to a file in
//! the temporary directory (`--keep-dir` keeps it).
//!
//! ## Scenarios
//!
//! * `acks` — customers' DMs POSTed to `/webhooks/x` as fast as possible (or `--rate`),
//!   `--concurrency` at a time. The Account Activity bodies (one `message_create` event and a
//!   `users` map, ~1.5 KB, shaped like the captured fixture) are built and HMAC-signed here and
//!   only the HTTP round trip is timed: the acknowledgement latency X would see. Delivery to
//!   Connect runs meanwhile, as in production; afterwards the backlog is drained (unless
//!   `--no-drain`) to report the whole CPU cost per message.
//! * `inbound-e2e` — one chat opened per customer first (not measured), then DMs; latency is
//!   from the webhook POST to the message appearing in the Connect transcript (the sandbox's
//!   live events, keyed by the sequence number in the text). At most `--max-in-flight`
//!   messages are on their way at once.
//! * `outbound-e2e` — chats opened and accepted by agents, then agent messages
//!   (`SandboxHandle::agent_send`); latency is from the agent sending to the DM accepted by the
//!   X API.
//! * `connect-down` — chats opened, then every Connect call answers 503 while customers keep
//!   sending: acknowledgement latency while Connect is down; then Connect comes back and the
//!   drain time and exactly-once arrival of every message are reported.
//! * `idle` — chats opened, then nothing for `--duration` seconds: the bridge's CPU (as a share
//!   of a core, from its threads' scheduler statistics) and wake-ups while it waits.
//! * `floor` — no bridge: a stand-in process with the bridge's HTTP stack that only answers
//!   each POST and relays it (at once, or after the reorder window): the CPU per request below
//!   which no bridge on this machine can go at that rate ([`floor`]).
//!
//! Any scenario can run while a platform misbehaves: `--connect-faults SPEC` / `--x-faults SPEC`
//! put a fault profile of the sandbox (error, throttling and dropped-connection rates, latency;
//! [`faults`]) on every operation of that platform for the whole scenario, e.g.
//! `xdm-bench inbound-e2e --connect-faults error=0.15,throttle=0.05 --bridge-env XDM_RETRY_BASE_MS=50`.
//!
//! The smoke test (`tests/smoke.rs`) runs a scenario with the bridge in-process instead.
//!
//! ## Layout
//!
//! [`options`] (what to run, how hard, against which bridge) → [`scenario`] (what each scenario
//! does) over `load` (sending: webhook POSTs, agent messages, pacing) and [`tracker`] (matching
//! arrivals with what was sent) → `measure` (CPU, memory and calls over a window) → [`report`]
//! (the [`ScenarioReport`] model and its rendering); [`latency`], [`procfs`], [`allocations`] and
//! [`calls`] are the raw measurements, [`bridge`], [`webhook`] and [`faults`] the set-up.

pub mod allocations;
pub mod bridge;
pub mod calls;
pub mod faults;
pub mod floor;
pub mod latency;
mod load;
mod measure;
pub mod options;
pub mod procfs;
pub mod report;
pub mod scenario;
pub mod tracker;
pub mod webhook;

pub use bridge::{BridgeProcess, BridgeSettings};
pub use options::{Admin, LoadOptions, Scenario, Target};
pub use report::ScenarioReport;
pub use scenario::run;
