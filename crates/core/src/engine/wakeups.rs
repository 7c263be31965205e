//! What a queue's dispatcher is told between two looks at the store: which lanes have work and
//! from when, so that it looks up those lanes alone, at that time, instead of re-reading the
//! heads of every lane on every accepted event and every finished job.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::jobs::Lane;

/// Hints kept before the dispatcher asks for a full scan instead (a process without a
/// dispatcher, such as a Lambda function, would otherwise collect them for ever).
const MAX_HINTS: usize = 4_096;

/// Hints for one queue's dispatcher. Hints only save work: the dispatcher still scans every
/// lane periodically, so a lost hint delays a job, it never strands it.
///
/// A hint wakes the dispatcher only when it would otherwise sleep past the hint's due time: an
/// accepted DM held for the reorder window does not cost a wake-up of its own, it is picked up
/// when the dispatcher wakes for an earlier job (or its periodic look) anyway.
#[derive(Debug)]
pub(crate) struct Wakeups {
    notify: Notify,
    /// Until when the dispatcher sleeps; `i64::MAX` while it is awake (every hint then notifies,
    /// since it may have taken the hints already).
    sleeping_until: AtomicI64,
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
                self.rescan.store(true, Ordering::SeqCst);
                self.notify.notify_one();
                return;
            }
            Err(_) => {
                self.rescan.store(true, Ordering::SeqCst);
                self.notify.notify_one();
                return;
            }
        }
        // After the push: a dispatcher that stored its sleep before our load has taken the hints
        // before it (it stores `i64::MAX` before taking), so it wakes in time for this one.
        if due_ms < self.sleeping_until.load(Ordering::SeqCst) {
            self.notify.notify_one();
        }
    }

    /// The dispatcher is awake and about to take the hints: every hint from now on notifies.
    pub(crate) fn awake(&self) {
        self.sleeping_until.store(i64::MAX, Ordering::SeqCst);
    }

    /// The dispatcher is going to sleep until `wake_at_ms` unless notified.
    pub(crate) fn sleeping_until(&self, wake_at_ms: i64) {
        self.sleeping_until.store(wake_at_ms, Ordering::SeqCst);
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

impl Default for Wakeups {
    fn default() -> Self {
        Self {
            notify: Notify::new(),
            sleeping_until: AtomicI64::new(i64::MAX),
            hints: Mutex::default(),
            rescan: AtomicBool::new(false),
            held: AtomicUsize::new(0),
        }
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

    /// Whether `w` has a wake-up waiting for the dispatcher.
    fn notified(w: &Wakeups) -> bool {
        use std::future::Future;
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let notified = std::pin::pin!(w.notified());
        notified.poll(&mut cx).is_ready()
    }

    /// A hint due after the dispatcher's planned wake-up does not wake it; one due before does;
    /// while the dispatcher is awake every hint does.
    #[test]
    fn a_hint_wakes_the_dispatcher_only_if_it_would_sleep_past_it() {
        let w = Wakeups::default();
        let lane = Lane::parse("a").unwrap();
        w.awake();
        w.lane(&lane, 1_000);
        assert!(notified(&w), "awake: may have taken the hints already");
        w.sleeping_until(500);
        w.lane(&lane, 750);
        assert!(!notified(&w), "due after the planned wake-up");
        w.lane(&lane, 400);
        assert!(notified(&w), "due before the planned wake-up");
        assert_eq!(w.take().0.len(), 3, "every hint is kept");
    }
}
