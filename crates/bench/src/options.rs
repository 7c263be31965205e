//! What a run is asked to do: which [`Scenario`], how hard and how long ([`LoadOptions`]), and
//! against which bridge ([`Target`], with its [`Admin`] listener).

use std::time::Duration;

use serde::Serialize;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Customers' DMs POSTed to the webhook: acknowledgement latency and rate.
    Acks,
    /// DMs into open chats: from the webhook POST to the message in the Connect transcript.
    InboundE2e,
    /// Agents' messages in open chats: from the agent sending to the DM accepted by X.
    OutboundE2e,
    /// Connect down (every call 503) while customers keep sending: acknowledgement latency; then
    /// Connect up again: drain time and exactly-once delivery.
    ConnectDown,
    /// Chats open, nothing sent: what the bridge costs while it waits (CPU and wake-ups).
    Idle,
    /// No bridge: a stand-in that only answers requests and relays them, with the bridge's HTTP
    /// stack — what the least a DM needs costs on this machine (`xdm_bench::floor`).
    Floor,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Self::Acks => "acks",
            Self::InboundE2e => "inbound-e2e",
            Self::OutboundE2e => "outbound-e2e",
            Self::ConnectDown => "connect-down",
            Self::Idle => "idle",
            Self::Floor => "floor",
        }
    }
}

/// The bridge under test: where it listens and which process to measure.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The process whose CPU time and memory are reported (the bridge; in tests, the test itself).
    pub pid: u32,
    /// Its admin listener, where its allocation counters are read (`None`: not reported).
    pub admin: Option<Admin>,
}

/// The bridge's admin listener: `/metrics` behind `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Admin {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `XDM_ADMIN_TOKEN` (a throw-away value the generator made up).
    pub token: String,
}

/// How hard and how long.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Simulated customers (one chat each, one agent each).
    pub customers: usize,
    /// Webhook POSTs in flight at once.
    pub concurrency: usize,
    /// Messages per second (open loop); `None`: as fast as `concurrency` (and `max_in_flight`) allow.
    pub rate: Option<f64>,
    /// Length of the measured sending phase.
    pub duration: Duration,
    /// Sending before the measured phase, same pattern, not counted.
    pub warmup: Duration,
    /// End-to-end scenarios: messages sent but not yet arrived, at most (bounds the backlog when
    /// sending as fast as possible).
    pub max_in_flight: usize,
    /// How long to wait for the last message to arrive.
    pub drain_timeout: Duration,
    /// `acks`: after the measured phase, wait for every message to reach Connect and report the
    /// whole cost per message.
    pub drain_acks: bool,
    /// Subscribe the bridge's SNS endpoint with the echo filter policy
    /// (`xdm_amazon_connect::sns::ECHO_FILTER_POLICY`), as a deployment does; `false` measures
    /// the customer's own messages streamed back (and dropped by the bridge).
    pub sns_filter: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            customers: 50,
            concurrency: 32,
            rate: None,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            max_in_flight: 1_000,
            drain_timeout: Duration::from_secs(300),
            drain_acks: true,
            sns_filter: true,
        }
    }
}
