//! Matching what arrives at the far side with what was sent: every message carries a sequence
//! number in its text; the sandbox's live events (a customer MESSAGE added to a Connect transcript,
//! a DM accepted by the X API) are keyed back to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinHandle;
use xdm_sandbox::{ItemType, ParticipantRole, SandboxEvent, SandboxHandle};

use crate::latency::Recorder;

/// Sequence numbers are `phase << 32 | n`.
const PHASE_SHIFT: u32 = 32;

/// The parts of a scenario; only `Measured` messages count in the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// One message per customer to open the chats.
    Open = 0,
    Warmup = 1,
    Measured = 2,
}

const PHASES: usize = 3;

impl Phase {
    pub fn seq(self, n: u64) -> u64 {
        (self as u64) << PHASE_SHIFT | n
    }

    fn of(seq: u64) -> Option<Phase> {
        match seq >> PHASE_SHIFT {
            0 => Some(Phase::Open),
            1 => Some(Phase::Warmup),
            2 => Some(Phase::Measured),
            _ => None,
        }
    }
}

/// A customer's DM carrying `seq`.
pub fn inbound_text(seq: u64) -> String {
    format!("Hello, I need help with order #{seq}")
}

/// An agent's reply carrying `seq` (markdown that renders to itself).
pub fn outbound_text(seq: u64) -> String {
    format!("Thanks! Looking into order #{seq} now.")
}

/// The sequence numbers in a text made of `inbound_text` / `outbound_text` lines: one, or
/// several when message buffering merged a customer's DMs into one Connect message.
pub fn parse_seqs(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.split("order #").skip(1).filter_map(|rest| {
        rest.split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or_default()
            .parse()
            .ok()
    })
}

/// Which arrivals a tracker listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Customer MESSAGE items added to Connect transcripts.
    Inbound,
    /// DMs accepted by the X API.
    Outbound,
}

#[derive(Debug, Default)]
struct State {
    sent: HashMap<u64, Instant>,
    arrivals: HashMap<u64, u32>,
    delivered: [u64; PHASES],
    duplicates: [u64; PHASES],
    first_sent: [Option<Instant>; PHASES],
    last_arrival: [Option<Instant>; PHASES],
}

/// Sent times, arrivals and end-to-end latencies of one scenario.
#[derive(Debug)]
pub struct Tracker {
    direction: Direction,
    state: Mutex<State>,
    /// End-to-end latency of measured messages.
    pub e2e: Recorder,
    /// Events the live subscription missed (the broadcast buffer overflowed).
    lagged: AtomicU64,
    /// Released on each first arrival: bounds the messages in flight.
    in_flight: Mutex<Option<Arc<Semaphore>>>,
}

impl Tracker {
    pub fn new(direction: Direction) -> Arc<Self> {
        Arc::new(Self {
            direction,
            state: Mutex::new(State::default()),
            e2e: Recorder::new(),
            lagged: AtomicU64::new(0),
            in_flight: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every first arrival from now on adds one permit to `permits`.
    pub fn set_in_flight(&self, permits: Option<Arc<Semaphore>>) {
        *self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = permits;
    }

    /// Starts listening; call before sending anything.
    pub fn listen(self: &Arc<Self>, sandbox: &SandboxHandle) -> JoinHandle<()> {
        let mut events = sandbox.events();
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => this.on_event(&event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        this.lagged.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }

    fn on_event(&self, event: &SandboxEvent) {
        let text = match (self.direction, event) {
            (Direction::Inbound, SandboxEvent::ChatItem { item, .. })
                if item.item.item_type == ItemType::Message
                    && item.item.participant_role == Some(ParticipantRole::Customer) =>
            {
                item.item.content.as_deref()
            }
            (Direction::Outbound, SandboxEvent::DmSent { dm }) => dm.text.as_deref(),
            _ => None,
        };
        if let Some(text) = text {
            let now = Instant::now();
            for seq in parse_seqs(text) {
                self.arrived(seq, now);
            }
        }
    }

    /// Records that `seq` is being sent now.
    pub fn sent(&self, seq: u64, at: Instant) {
        let mut s = self.lock();
        s.sent.insert(seq, at);
        if let Some(phase) = Phase::of(seq) {
            let first = &mut s.first_sent[phase as usize];
            if first.is_none() {
                *first = Some(at);
            }
        }
    }

    /// Takes back `seq` (its delivery was refused: it is not expected to arrive).
    pub fn forget(&self, seq: u64) {
        self.lock().sent.remove(&seq);
    }

    fn arrived(&self, seq: u64, at: Instant) {
        let Some(phase) = Phase::of(seq) else { return };
        let first = {
            let mut s = self.lock();
            let n = s.arrivals.entry(seq).or_insert(0);
            *n += 1;
            if *n > 1 {
                s.duplicates[phase as usize] += 1;
                return;
            }
            s.delivered[phase as usize] += 1;
            s.last_arrival[phase as usize] = Some(at);
            s.sent.get(&seq).copied()
        };
        if phase == Phase::Measured
            && let Some(sent) = first
        {
            self.e2e.record(at.saturating_duration_since(sent));
        }
        if phase != Phase::Open
            && let Some(permits) = &*self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        {
            permits.add_permits(1);
        }
    }

    /// Messages of `phase` seen arriving (first arrivals).
    pub fn delivered(&self, phase: Phase) -> u64 {
        self.lock().delivered[phase as usize]
    }

    /// Second and later arrivals of a message of `phase`.
    pub fn duplicates(&self, phase: Phase) -> u64 {
        self.lock().duplicates[phase as usize]
    }

    pub fn first_sent(&self, phase: Phase) -> Option<Instant> {
        self.lock().first_sent[phase as usize]
    }

    pub fn last_arrival(&self, phase: Phase) -> Option<Instant> {
        self.lock().last_arrival[phase as usize]
    }

    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// Sequence numbers of `phase` that were sent.
    pub fn sent_seqs(&self, phase: Phase) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .lock()
            .sent
            .keys()
            .copied()
            .filter(|s| Phase::of(*s) == Some(phase))
            .collect();
        v.sort_unstable();
        v
    }

    /// Waits until `expected` messages of `phase` have arrived; false on timeout. When the live
    /// subscription lagged, the sandbox's state is counted instead (once a second).
    pub async fn wait_delivered(
        &self,
        sandbox: &SandboxHandle,
        phase: Phase,
        expected: u64,
        timeout: Duration,
    ) -> bool {
        let start = Instant::now();
        let mut last_scan = start;
        loop {
            if self.delivered(phase) >= expected {
                return true;
            }
            if self.lagged() > 0 && last_scan.elapsed() >= Duration::from_secs(1) {
                last_scan = Instant::now();
                let counts = arrivals_in_sandbox(sandbox, self.direction);
                let n = counts
                    .keys()
                    .filter(|s| Phase::of(**s) == Some(phase))
                    .count() as u64;
                if n >= expected {
                    return true;
                }
            }
            if start.elapsed() >= timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// How many times each sequence number appears at the far side, from the sandbox's own state
/// (every Connect transcript, or every DM the X API accepted): the ground truth for
/// "exactly once".
pub fn arrivals_in_sandbox(sandbox: &SandboxHandle, direction: Direction) -> HashMap<u64, u32> {
    let mut counts: HashMap<u64, u32> = HashMap::new();
    match direction {
        Direction::Inbound => {
            for contact in sandbox.contacts() {
                for item in &contact.transcript {
                    if item.item.item_type == ItemType::Message
                        && item.item.participant_role == Some(ParticipantRole::Customer)
                        && let Some(text) = item.item.content.as_deref()
                    {
                        for seq in parse_seqs(text) {
                            *counts.entry(seq).or_insert(0) += 1;
                        }
                    }
                }
            }
        }
        Direction::Outbound => {
            for dm in sandbox.sent_dms() {
                for seq in dm.text.as_deref().map(parse_seqs).into_iter().flatten() {
                    *counts.entry(seq).or_insert(0) += 1;
                }
            }
        }
    }
    counts
}

/// Sent messages never seen at the far side, and messages seen more than once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Exactness {
    pub sent: u64,
    pub delivered: u64,
    pub missing: u64,
    pub duplicated: u64,
}

impl Exactness {
    pub fn exactly_once(&self) -> bool {
        self.missing == 0 && self.duplicated == 0
    }
}

/// Checks the messages of `phase` against the sandbox's state.
pub fn check_exactly_once(tracker: &Tracker, sandbox: &SandboxHandle, phase: Phase) -> Exactness {
    let counts = arrivals_in_sandbox(sandbox, tracker.direction);
    let sent = tracker.sent_seqs(phase);
    let mut e = Exactness {
        sent: sent.len() as u64,
        ..Exactness::default()
    };
    for seq in &sent {
        match counts.get(seq).copied().unwrap_or(0) {
            0 => e.missing += 1,
            1 => e.delivered += 1,
            _ => {
                e.delivered += 1;
                e.duplicated += 1;
            }
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_carry_their_sequence_number() {
        let seq = Phase::Measured.seq(42);
        assert_eq!(parse_seqs(&inbound_text(seq)).collect::<Vec<_>>(), [seq]);
        assert_eq!(parse_seqs(&outbound_text(seq)).collect::<Vec<_>>(), [seq]);
        let merged = format!("{}\n{}", inbound_text(1), inbound_text(seq));
        assert_eq!(parse_seqs(&merged).collect::<Vec<_>>(), [1, seq]);
        assert_eq!(Phase::of(seq), Some(Phase::Measured));
        assert_eq!(Phase::of(Phase::Open.seq(3)), Some(Phase::Open));
        assert_eq!(parse_seqs("no number").next(), None);
    }
}
