//! Counters for benchmarks: calls per operation by status class, injected faults, and the
//! messages that calls created (so "calls per message" can be computed).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::faults::FaultOp;

/// A snapshot of the counters since the sandbox started or `reset_stats` was last called.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SandboxStats {
    /// When counting started (ISO-8601, ms).
    pub since: String,
    /// Per operation (only operations that were called or faulted).
    pub ops: BTreeMap<FaultOp, OpStats>,
    pub connect: ConnectStats,
    pub x: XStats,
}

impl SandboxStats {
    /// One operation's counters (zero when it was never called).
    pub fn op(&self, op: FaultOp) -> OpStats {
        self.ops.get(&op).cloned().unwrap_or_default()
    }

    /// Injected faults over every operation.
    pub fn faults_injected(&self) -> u64 {
        self.ops.values().map(|s| s.faults.total()).sum()
    }
}

/// One operation's calls and faults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpStats {
    /// Calls answered or dropped (authentication failures included).
    pub calls: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// 429 answers (also counted in `status_4xx`).
    pub status_429: u64,
    /// Calls whose connection was closed without an answer.
    pub dropped: u64,
    pub faults: FaultCounts,
}

/// Faults injected into one operation's calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultCounts {
    /// Error answers from a profile's `error_rate` or a queued fault.
    pub errors: u64,
    /// Throttled answers from a burst or its held window.
    pub throttled: u64,
    /// Calls refused (503 or dropped) because the platform was switched down.
    pub down: u64,
    /// Connections closed before the call took effect (profile drops).
    pub dropped_before: u64,
    /// Connections closed after the call took effect (profile drops).
    pub dropped_after: u64,
    /// Calls delayed by a profile's latency or a queued fault's delay.
    pub delayed: u64,
    /// Total injected delay, in milliseconds.
    pub delay_ms: u64,
}

impl FaultCounts {
    /// Faults that changed the call's outcome (delays not included).
    pub fn total(&self) -> u64 {
        self.errors + self.throttled + self.down + self.dropped_before + self.dropped_after
    }
}

/// What Connect calls produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectStats {
    /// SendMessage calls (answered or dropped).
    pub send_message_calls: u64,
    /// Distinct customer messages SendMessage added to transcripts (ClientToken replays excluded).
    pub messages_created: u64,
    /// SendMessage / SendEvent calls answered from an earlier call with the same ClientToken.
    pub client_token_replays: u64,
    /// `send_message_calls / messages_created` (`None` before the first message).
    pub calls_per_message: Option<f64>,
}

/// What X calls produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct XStats {
    /// CreateDm calls (answered or dropped).
    pub create_dm_calls: u64,
    /// DMs recorded (`sent_dms`).
    pub dms_created: u64,
    /// `create_dm_calls / dms_created` (`None` before the first DM).
    pub calls_per_dm: Option<f64>,
}

/// The mutable counters behind [`SandboxStats`].
#[derive(Debug, Default)]
pub(crate) struct StatsBook {
    pub since: String,
    pub ops: BTreeMap<FaultOp, OpStats>,
    pub messages_created: u64,
    pub client_token_replays: u64,
    pub dms_created: u64,
}

impl StatsBook {
    pub(crate) fn new(since: String) -> Self {
        Self {
            since,
            ..Self::default()
        }
    }

    pub(crate) fn op(&mut self, op: FaultOp) -> &mut OpStats {
        self.ops.entry(op).or_default()
    }

    /// Counts an answered call (`status: None` = dropped connection).
    pub(crate) fn answered(&mut self, op: FaultOp, status: Option<u16>) {
        let stats = self.op(op);
        stats.calls += 1;
        match status {
            None => stats.dropped += 1,
            Some(s) => {
                match s / 100 {
                    2 => stats.status_2xx += 1,
                    3 => stats.status_3xx += 1,
                    4 => stats.status_4xx += 1,
                    _ => stats.status_5xx += 1,
                }
                if s == 429 {
                    stats.status_429 += 1;
                }
            }
        }
    }

    pub(crate) fn snapshot(&self) -> SandboxStats {
        let calls = |op| self.ops.get(&op).map_or(0, |s| s.calls);
        let ratio = |calls: u64, made: u64| (made > 0).then(|| calls as f64 / made as f64);
        let send_message_calls = calls(FaultOp::SendMessage);
        let create_dm_calls = calls(FaultOp::CreateDm);
        SandboxStats {
            since: self.since.clone(),
            ops: self.ops.clone(),
            connect: ConnectStats {
                send_message_calls,
                messages_created: self.messages_created,
                client_token_replays: self.client_token_replays,
                calls_per_message: ratio(send_message_calls, self.messages_created),
            },
            x: XStats {
                create_dm_calls,
                dms_created: self.dms_created,
                calls_per_dm: ratio(create_dm_calls, self.dms_created),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_and_ratios_computed() {
        let mut book = StatsBook::new("t".into());
        for status in [Some(200), Some(200), Some(429), Some(503), None] {
            book.answered(FaultOp::SendMessage, status);
        }
        book.messages_created = 2;
        let snap = book.snapshot();
        let op = snap.op(FaultOp::SendMessage);
        assert_eq!(
            (
                op.calls,
                op.status_2xx,
                op.status_4xx,
                op.status_429,
                op.status_5xx,
                op.dropped
            ),
            (5, 2, 1, 1, 1, 1)
        );
        assert_eq!(snap.connect.send_message_calls, 5);
        assert_eq!(snap.connect.calls_per_message, Some(2.5));
        assert_eq!(snap.x.calls_per_dm, None);
        assert_eq!(snap.op(FaultOp::CreateDm), OpStats::default());
        let json = serde_json::to_value(&snap).unwrap();
        assert_eq!(json["ops"]["SendMessage"]["status_429"], 1);
    }
}
