//! Message buffering (`BridgeConfig::buffer_window_ms`): a customer's DMs written within the
//! window of each other reach the chat as one Connect message, their lines in order — fewer
//! messages for the agent to read and for Connect to bill.
//!
//! Each DM's job waits the window before it runs (accept). When it runs, a text-only DM that
//! the customer's next DM (already accepted: it is in the lane) followed within the window — and
//! within the window of the first DM deferred, so that one message carries one window's DMs and
//! its first line waits about two windows at most — is *deferred*: its text is noted in the lane's record `buffer/<business>/<customer>` and its job
//! is done. The first DM that is not deferred *carries* the noted texts: it commits that in the
//! record (`carried_by`), delivers the lines — the noted ones, then its own — as its own message
//! (its ClientTokens), and deletes the record. Every decision is committed before it is acted
//! on, so a retry after a crash repeats it exactly: a carrier re-delivers the same lines with
//! the same tokens (Connect keeps one message), a deferred DM stays deferred. A record still
//! carried by another DM (whose delivery failed for good and waits for an operator's retry) is
//! left alone: the DMs after it are delivered one by one until it is retried.

use serde::{Deserialize, Serialize};

use crate::engine::JobOutcome;
use crate::inbound::InboundDm;
use crate::jobs::{Job, JobQueue};
use crate::metric_names::BUFFERED_MESSAGES;
use crate::ports::{Clock, Store};
use crate::records::Expect;

use super::Bridge;

/// DMs one message carries at most; the next one is delivered with them.
const MAX_MESSAGES: usize = 20;
/// Characters of noted text at most (a Connect message holds 1,024; longer ones are split).
const MAX_CHARS: usize = 8_000;
/// Compare-and-set attempts on the lane's record before the job is retried later.
const WRITE_ATTEMPTS: usize = 4;

fn record_key(dm: &InboundDm) -> String {
    format!("buffer/{}/{}", dm.business, dm.sender)
}

/// A lane's noted texts and their carrier.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Buffer {
    /// (event id, text) of the deferred DMs, oldest first.
    deferred: Vec<(String, String)>,
    /// The DM delivering them, once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    carried_by: Option<String>,
    /// When the first deferred DM was written: a message carries DMs of one window, so the
    /// first line waits about two windows at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_ms: Option<i64>,
}

impl Buffer {
    fn has_room_for(&self, text: &str) -> bool {
        let chars: usize = self.deferred.iter().map(|(_, t)| t.chars().count()).sum();
        self.deferred.len() < MAX_MESSAGES && chars + text.chars().count() <= MAX_CHARS
    }

    /// `dm` with the noted lines before its own.
    fn carried(&self, dm: &InboundDm) -> InboundDm {
        let mut lines: Vec<&str> = self.deferred.iter().map(|(_, t)| t.as_str()).collect();
        if !dm.text.is_empty() {
            lines.push(&dm.text);
        }
        InboundDm {
            text: lines.join("\n"),
            ..dm.clone()
        }
    }
}

/// What buffering makes of one DM.
#[derive(Debug)]
pub(super) enum Buffered {
    /// Its text waits for a later DM: nothing to deliver now.
    Deferred,
    /// Deliver the DM — or `carried`: it with the noted lines before its own — then, if `clear`
    /// is set, delete the record at that version.
    Deliver {
        carried: Option<Box<InboundDm>>,
        clear: Option<u64>,
    },
}

impl<S: Store, X, C, K: Clock> Bridge<S, X, C, K> {
    /// Decides whether `dm` (of `job`) is deferred or delivered, and with which lines.
    pub(super) async fn buffer(&self, job: &Job, dm: &InboundDm) -> Result<Buffered, JobOutcome> {
        let deliver_alone = || Buffered::Deliver {
            carried: None,
            clear: None,
        };
        if self.config.buffer_window_ms <= 0 {
            return Ok(deliver_alone());
        }
        let key = record_key(dm);
        let id = dm.event_id.as_str();
        for _ in 0..WRITE_ATTEMPTS {
            let (buffer, version) = match self.store().record(&key).await? {
                Some(r) => (
                    serde_json::from_str::<Buffer>(&r.value).map_err(|e| JobOutcome::Failed {
                        reason: format!("unreadable message buffer {key}: {e}"),
                    })?,
                    Some(r.version),
                ),
                None => (Buffer::default(), None),
            };
            let expect = version.map_or(Expect::Absent, Expect::Version);
            // A decision already taken (an earlier attempt of this job).
            match &buffer.carried_by {
                Some(carrier) if carrier == id => {
                    return Ok(Buffered::Deliver {
                        carried: Some(Box::new(buffer.carried(dm))),
                        clear: version,
                    });
                }
                // Another DM's lines wait for its retry: leave them to it.
                Some(_) => return Ok(deliver_alone()),
                None => {}
            }
            if buffer.deferred.iter().any(|(d, _)| d == id) {
                return Ok(Buffered::Deferred);
            }
            let group_start = buffer.first_ms.unwrap_or(dm.created_ms);
            let defer = dm.media.is_none()
                && !dm.text.is_empty()
                && buffer.has_room_for(&dm.text)
                && self.followed_within_window(job, dm, group_start).await?;
            let next = if defer {
                let mut next = buffer;
                next.deferred.push((id.to_owned(), dm.text.clone()));
                next.first_ms = Some(group_start);
                next
            } else if buffer.deferred.is_empty() {
                return Ok(deliver_alone());
            } else {
                Buffer {
                    carried_by: Some(id.to_owned()),
                    ..buffer
                }
            };
            let value = serde_json::to_string(&next).map_err(|e| JobOutcome::Failed {
                reason: format!("cannot encode the message buffer: {e}"),
            })?;
            if let Some(version) = self
                .store()
                .put_record(&key, &value, expect, self.now_ms())
                .await?
            {
                let result = if defer { "deferred" } else { "carried" };
                metrics::counter!(BUFFERED_MESSAGES, "result" => result).increment(1);
                return Ok(if defer {
                    Buffered::Deferred
                } else {
                    Buffered::Deliver {
                        carried: Some(Box::new(next.carried(dm))),
                        clear: Some(version),
                    }
                });
            }
        }
        Err(JobOutcome::retry(
            "the customer's message buffer kept changing",
        ))
    }

    /// Deletes the lane's record once its carrier delivered the lines.
    pub(super) async fn buffer_delivered(
        &self,
        dm: &InboundDm,
        version: u64,
    ) -> Result<(), JobOutcome> {
        self.store()
            .delete_record(&record_key(dm), Expect::Version(version))
            .await?;
        Ok(())
    }

    /// Whether the customer's next DM in the lane was written within the window after `dm`, and
    /// within the window of the group's first DM (written at `group_start`).
    async fn followed_within_window(
        &self,
        job: &Job,
        dm: &InboundDm,
        group_start: i64,
    ) -> Result<bool, JobOutcome> {
        let open = self
            .store()
            .lane_jobs(JobQueue::Inbound, &job.lane, 16)
            .await?;
        let next = open
            .iter()
            .skip_while(|e| e.key != job.key)
            .nth(1)
            .map(|e| e.order_key);
        let window = self.config.buffer_window_ms;
        Ok(next.is_some_and(|at| at - dm.created_ms <= window && at - group_start <= window))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn room_is_bounded_by_messages_and_characters() {
        let mut b = Buffer::default();
        for i in 0..MAX_MESSAGES {
            assert!(b.has_room_for("hi"));
            b.deferred.push((i.to_string(), "hi".into()));
        }
        assert!(!b.has_room_for("hi"));
        let b = Buffer {
            deferred: vec![("1".into(), "x".repeat(MAX_CHARS - 1))],
            ..Buffer::default()
        };
        assert!(b.has_room_for("y"));
        assert!(!b.has_room_for("yz"));
    }

    #[test]
    fn the_record_round_trips() {
        let b = Buffer {
            deferred: vec![("1".into(), "a".into())],
            carried_by: Some("2".into()),
            first_ms: Some(7),
        };
        let text = serde_json::to_string(&b).unwrap();
        assert_eq!(
            text,
            r#"{"deferred":[["1","a"]],"carried_by":"2","first_ms":7}"#
        );
        assert_eq!(serde_json::from_str::<Buffer>(&text).unwrap(), b);
    }
}
