//! Events handed from their acceptance to their delivery in the same process, so that a job
//! accepted here does not parse back the JSON it was stored as.
//!
//! An accepted event is stored as its job's payload (JSON), the journal that a restart, a retry,
//! another process or an operator reads. When the process that accepted it also runs the
//! queue's dispatcher, its delivery follows a reorder window later; the hand-off keeps the typed
//! event until then and the delivery takes it instead of parsing the payload: a fifth of a DM's
//! JSON work (docs/performance.md, "Events handed to their delivery"). Whatever is not here —
//! a retry, a job of another process, one kept past the bound — is read from the payload, which
//! holds the same value (tests check the round trip).
//!
//! Bounded by count, in two generations: an event is dropped after between `generation` and
//! twice that many later hand-offs, whether or not it was taken, so the events of jobs another
//! process runs never pile up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;

use crate::jobs::{Job, JobKey};

/// Events kept per generation: with two generations, at most twice this many (~1 MB of DMs).
/// An event stays at least this many hand-offs: at 1,000 accepted DMs a second, half a second,
/// twice the default reorder window. Faster, or with longer windows, more deliveries read their
/// payload instead; memory stays bounded (docs/performance.md, "Events handed to their delivery").
pub(crate) const GENERATION: usize = 512;

pub(crate) struct HandOff<T> {
    /// Off until the queue's dispatcher runs in this process: a process that only accepts
    /// (a Lambda webhook function) would only fill it.
    on: AtomicBool,
    generation: usize,
    kept: Mutex<Generations<T>>,
}

struct Generations<T> {
    current: HashMap<JobKey, T>,
    /// Events handed over since `current` started (taken ones included).
    puts: usize,
    previous: HashMap<JobKey, T>,
}

/// Counts only: the events are customers' messages, which never go to a log.
impl<T> std::fmt::Debug for HandOff<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandOff")
            .field("on", &self.is_on())
            .field("held", &self.held())
            .finish()
    }
}

impl<T> Default for HandOff<T> {
    fn default() -> Self {
        Self::with_generation(GENERATION)
    }
}

impl<T> HandOff<T> {
    pub(crate) fn with_generation(generation: usize) -> Self {
        Self {
            on: AtomicBool::new(false),
            generation: generation.max(1),
            kept: Mutex::new(Generations {
                current: HashMap::new(),
                puts: 0,
                previous: HashMap::new(),
            }),
        }
    }

    /// This process delivers the queue: keep what it accepts from now on.
    pub(crate) fn turn_on(&self) {
        self.on.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Keeps `event`, the payload of the job `key` just accepted, for its delivery.
    pub(crate) fn put(&self, key: JobKey, event: T) {
        if !self.is_on() {
            return;
        }
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.puts >= self.generation {
            kept.previous = std::mem::take(&mut kept.current);
            kept.puts = 0;
        }
        kept.puts += 1;
        kept.current.insert(key, event);
    }

    /// The event of job `key` if it is still here; it is not kept after.
    pub(crate) fn take(&self, key: &JobKey) -> Option<T> {
        let mut kept = self.kept.lock().ok()?;
        match kept.current.remove(key) {
            Some(event) => Some(event),
            None => kept.previous.remove(key),
        }
    }

    /// The event of `job`: the one handed over if it is still here, else read from its payload.
    pub(crate) fn take_or_read(&self, job: &Job) -> Result<T, serde_json::Error>
    where
        T: DeserializeOwned,
    {
        match self.take(&job.key) {
            Some(event) => Ok(event),
            None => serde_json::from_str(&job.payload),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.held().unwrap_or(0)
    }

    fn held(&self) -> Option<usize> {
        self.kept
            .lock()
            .map(|k| k.current.len() + k.previous.len())
            .ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ids::{XEventId, XUserId};

    fn key(n: usize) -> JobKey {
        let business = XUserId::parse("100").unwrap();
        JobKey::inbound_dm(&business, &XEventId::parse(n.to_string()).unwrap())
    }

    #[test]
    fn an_event_is_taken_once_and_only_once_handing_off_is_on() {
        let handoff = HandOff::default();
        handoff.put(key(1), "first");
        assert_eq!(handoff.take(&key(1)), None, "off: nothing kept");
        handoff.turn_on();
        handoff.put(key(1), "first");
        assert_eq!(handoff.take(&key(2)), None);
        assert_eq!(handoff.take(&key(1)), Some("first"));
        assert_eq!(handoff.take(&key(1)), None);
    }

    #[test]
    fn its_debug_form_shows_counts_never_the_events() {
        let handoff = HandOff::default();
        handoff.turn_on();
        handoff.put(key(1), "a customer's secret message");
        let shown = format!("{handoff:?}");
        assert_eq!(shown, "HandOff { on: true, held: Some(1) }");
    }

    #[test]
    fn events_never_taken_are_dropped_after_two_generations() {
        let handoff = HandOff::with_generation(4);
        handoff.turn_on();
        for n in 0..4 {
            handoff.put(key(n), n);
        }
        // The next four start a generation: the first four are still there.
        for n in 4..8 {
            handoff.put(key(n), n);
        }
        assert_eq!(handoff.len(), 8);
        assert_eq!(handoff.take(&key(0)), Some(0));
        // Another generation drops the first (taken or not).
        handoff.put(key(8), 8);
        assert_eq!(handoff.take(&key(1)), None);
        assert_eq!(handoff.take(&key(5)), Some(5));
        for n in 9..100 {
            handoff.put(key(n), n);
        }
        assert!(handoff.len() <= 8, "{} kept", handoff.len());
        assert_eq!(handoff.take(&key(99)), Some(99));
    }
}
