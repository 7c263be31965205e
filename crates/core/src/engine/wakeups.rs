//! What a queue's dispatcher is told between two looks at the store: which lanes have work and
//! from when, so that it looks up those lanes alone, at that time, instead of re-reading the
//! heads of every lane on every accepted event and every finished job.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::jobs::Lane;

/// Hints kept before the dispatcher asks for a full scan instead (a process without a
/// dispatcher, such as a Lambda function, would otherwise collect them for ever).
const MAX_HINTS: usize = 4_096;

/// Hints for one queue's dispatcher. Hints only save work: the dispatcher still scans every
/// lane periodically, so a lost hint delays a job, it never strands it.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    notify: Notify,
    hints: Mutex<Vec<(Lane, i64)>>,
    rescan: AtomicBool,
    /// Holds in force ([`super::JobEngine::hold`]): while above 0 no new job is started.
    held: AtomicUsize,
}

impl Wakeups {
    /// `lane` has a job that may run from `due_ms`.
    pub(crate) fn lane(&self, lane: &Lane, due_ms: i64) {
        match self.hints.lock() {
            Ok(mut hints) if hints.len() < MAX_HINTS => hints.push((lane.clone(), due_ms)),
            Ok(mut hints) => {
                hints.clear();
                self.rescan.store(true, Ordering::Release);
            }
            Err(_) => self.rescan.store(true, Ordering::Release),
        }
        self.notify.notify_one();
    }

    /// Something changed that hints cannot describe: look at every lane.
    pub(crate) fn all(&self) {
        self.rescan.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// The hints since the last call, and whether a full scan was asked for.
    pub(crate) fn take(&self) -> (Vec<(Lane, i64)>, bool) {
        let hints = match self.hints.lock() {
            Ok(mut hints) => std::mem::take(&mut *hints),
            Err(_) => {
                return (Vec::new(), true);
            }
        };
        (hints, self.rescan.swap(false, Ordering::AcqRel))
    }

    pub(crate) fn hold(&self) {
        self.held.fetch_add(1, Ordering::AcqRel);
    }

    /// Ends one hold; the last one makes the dispatcher look at every lane again.
    pub(crate) fn release(&self) {
        if self.held.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all();
        }
    }

    pub(crate) fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire) > 0
    }

    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_taken_once_and_overflow_asks_for_a_scan() {
        let w = Wakeups::default();
        let (a, b) = (Lane::parse("a").unwrap(), Lane::parse("b").unwrap());
        w.lane(&a, 5);
        w.lane(&b, 7);
        assert_eq!(w.take(), (vec![(a, 5), (b, 7)], false));
        assert_eq!(w.take(), (vec![], false));
        w.all();
        assert_eq!(w.take(), (vec![], true));
        for i in 0..=MAX_HINTS {
            w.lane(&Lane::parse("x").unwrap(), i64::try_from(i).unwrap());
        }
        let (hints, rescan) = w.take();
        assert!(hints.len() < MAX_HINTS);
        assert!(rescan);
    }
}
