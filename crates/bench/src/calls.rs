//! Calls the bridge made to the emulated platforms, and the SNS notifications the sandbox POSTed
//! to it, from the sandbox's counters; and the switch that takes Amazon Connect down.

use std::collections::BTreeMap;

use serde::Serialize;
use xdm_sandbox::{DownMode, SandboxHandle, Side};

/// Calls per operation, by platform (operation names as in `FaultOp`), and SNS notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Calls {
    pub connect: BTreeMap<String, u64>,
    pub x: BTreeMap<String, u64>,
    /// SNS notifications POSTed to the bridge (one per chat item streamed and subscription;
    /// retries of the same notification not counted again).
    pub sns_notifications: u64,
}

impl Calls {
    /// The sandbox's counters now (every call answered or dropped, refused ones included).
    pub fn snapshot(sandbox: &SandboxHandle) -> Self {
        let stats = sandbox.stats();
        let mut calls = Calls::default();
        for (op, s) in &stats.ops {
            let side = match op.side() {
                Side::Connect => &mut calls.connect,
                Side::X => &mut calls.x,
            };
            side.insert(format!("{op:?}"), s.calls);
        }
        calls.sns_notifications = sandbox.sns_notification_count();
        calls
    }

    /// What was called between `earlier` and `self` (operations with no call left out).
    pub fn since(&self, earlier: &Calls) -> Calls {
        let diff = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .filter_map(|(op, n)| {
                    let d = n.saturating_sub(then.get(op).copied().unwrap_or(0));
                    (d > 0).then(|| (op.clone(), d))
                })
                .collect()
        };
        Calls {
            connect: diff(&self.connect, &earlier.connect),
            x: diff(&self.x, &earlier.x),
            sns_notifications: self
                .sns_notifications
                .saturating_sub(earlier.sns_notifications),
        }
    }

    pub fn connect_total(&self) -> u64 {
        self.connect.values().sum()
    }

    pub fn x_total(&self) -> u64 {
        self.x.values().sum()
    }
}

/// Every Amazon Connect call (contact and participant services, attachments) answers 503
/// `ServiceUnavailableException` while `down`.
pub fn set_connect_down(sandbox: &SandboxHandle, down: bool) {
    sandbox.set_down_with(Side::Connect, down.then_some(DownMode::Unavailable));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_keeps_what_was_called_in_between() {
        let earlier = Calls {
            connect: BTreeMap::from([
                ("SendMessage".to_owned(), 5),
                ("GetTranscript".to_owned(), 1),
            ]),
            x: BTreeMap::new(),
            sns_notifications: 7,
        };
        let now = Calls {
            connect: BTreeMap::from([
                ("SendMessage".to_owned(), 9),
                ("GetTranscript".to_owned(), 1),
                ("StartChatContact".to_owned(), 2),
            ]),
            x: BTreeMap::from([("CreateDm".to_owned(), 3)]),
            sns_notifications: 15,
        };
        let d = now.since(&earlier);
        assert_eq!(
            d.connect,
            BTreeMap::from([
                ("SendMessage".to_owned(), 4),
                ("StartChatContact".to_owned(), 2)
            ])
        );
        assert_eq!(d.x, BTreeMap::from([("CreateDm".to_owned(), 3)]));
        assert_eq!(d.sns_notifications, 8);
        assert_eq!((d.connect_total(), d.x_total()), (6, 3));
    }
}
