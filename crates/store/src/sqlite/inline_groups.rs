//! Group commit on the callers' threads: during a burst of webhook acceptances, an acceptance
//! run inline leaves its transaction open and waits for the ones that follow it to share one
//! commit.
//!
//! A commit costs more than the insert it ends: SQLite appends every page the transaction
//! changed to the log (whole pages, two system calls each), takes and releases the log's locks,
//! and the checkpointer later copies those pages back. Writes queued to the store thread already
//! share a commit (`worker.rs`); inline writes did not, so 10,000 acceptances a second were
//! 10,000 commits, many of them rewriting the same table and index pages.
//!
//! Only writes made with [`Commit::Grouped`](super::worker::Commit::Grouped) wait: acceptances,
//! which arrive from many independent callers at once, and recorded claims, which the dispatcher
//! makes from the jobs' own tasks, several lanes at once. A caller that writes in a sequence
//! would wait for itself (the dispatcher did, while it claimed one job after the other before
//! starting it: replies at saturation fell from ~2,000/s to 1,190/s); one that writes grouped
//! writes in a sequence (the X Activity stream, one event after the other) shows it when its
//! write's deadline passes with nobody else in the group: writes then stop waiting for
//! [`QUIET`], so such a caller loses at most one wait of [`LONGEST_WAIT`] per [`QUIET`]. This
//! estimates how often
//! grouped writes arrive and, when at least [`MIN_GROUP`] of them are expected within the window
//! (`group_commit_us`, 1 ms by default), lets each wait, unanswered, until the group holds as many
//! as the window is expected to bring; the last one commits for all.
//!
//! The guarantees do not change: a caller hears "done" only after the commit that made its write
//! durable, and hears the commit's error if it failed. The cost is latency, only during bursts:
//! about half the window on average, [`LONGEST_WAIT`] at most when the expected writes do not
//! come (the first waiter then commits, on its own thread or through the store thread). When
//! fewer than [`MIN_GROUP`] are expected in a window (below 2,000 a second with the default),
//! every write commits at once.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The fewest writes expected within the window for writes to wait for each other.
const MIN_GROUP: u64 = 2;

/// The most writes one inline commit carries.
const MAX_GROUP: u64 = 64;

/// The longest a write waits for its group's commit: then its caller commits the group itself.
const LONGEST_WAIT: Duration = Duration::from_millis(2);

/// How long writes stop waiting after a write waited alone until its deadline (its caller
/// writes in a sequence, or the burst ended).
const QUIET: Duration = Duration::from_millis(100);

/// Intervals between writes are counted as at most this: after a pause the estimate starts from
/// "slow" and grouping resumes after a few dozen writes of a new burst.
const LONGEST_INTERVAL_NS: u64 = 10_000_000;

/// What a waiting write hears when its group ends: `None` committed, else the commit's error
/// (or why the transaction was rolled back).
pub(super) type Outcome = Option<String>;

/// What a grouped write that ran inline does next.
#[derive(Debug)]
pub(super) enum AfterWrite {
    /// Commit now (and answer the group's waiting writes with the outcome).
    Commit,
    /// Leave the transaction open; the caller waits for `outcome`, and commits the group itself
    /// if nothing has by `deadline`.
    Wait {
        outcome: oneshot::Receiver<Outcome>,
        deadline: Instant,
    },
}

/// The writes waiting for the open transaction's commit (changed only by whoever holds the
/// connection), and the estimate of how often grouped writes arrive (by each as it arrives).
#[derive(Debug)]
pub(super) struct InlineGroup {
    /// The time a group's first write is expected to wait for the rest; zero: writes never wait.
    window: Duration,
    waiting: Vec<oneshot::Sender<Outcome>>,
    /// When the group's first write ran: the group is committed by [`LONGEST_WAIT`] after it.
    first_at: Option<Instant>,
    /// Smoothed interval between grouped writes (an exponential moving average, weight 1/8).
    interval_ns: u64,
    last_at: Option<Instant>,
    /// No write waits before this (see [`QUIET`]).
    quiet_until: Option<Instant>,
    /// Groups committed because their deadline passed with one write in them.
    alone: u64,
}

impl InlineGroup {
    pub(super) fn new(window: Duration) -> Self {
        Self {
            window,
            waiting: Vec::new(),
            first_at: None,
            interval_ns: LONGEST_INTERVAL_NS,
            last_at: None,
            quiet_until: None,
            alone: 0,
        }
    }

    /// Counts a grouped write arriving at `now` in the estimate of the rate.
    pub(super) fn arrived(&mut self, now: Instant) {
        if let Some(last) = self.last_at {
            let sample = u64::try_from(now.saturating_duration_since(last).as_nanos())
                .unwrap_or(u64::MAX)
                .min(LONGEST_INTERVAL_NS);
            self.interval_ns = (self.interval_ns * 7 + sample) / 8;
        }
        self.last_at = Some(now);
    }

    /// Writes wait for their commit now.
    pub(super) fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// How many writes a group is expected to gather within the window at the current rate.
    fn expected(&self) -> u64 {
        let window = u64::try_from(self.window.as_nanos()).unwrap_or(u64::MAX);
        (window / self.interval_ns.max(1)).min(MAX_GROUP)
    }

    /// Decides, after a grouped write ran inline at `now`, whether it commits or waits for
    /// the writes expected after it.
    pub(super) fn after_write(&mut self, now: Instant) -> AfterWrite {
        let expected = self.expected();
        let size = u64::try_from(self.waiting.len()).unwrap_or(u64::MAX) + 1;
        let quiet = self.quiet_until.is_some_and(|until| now < until);
        if quiet || expected < MIN_GROUP || size >= expected {
            return AfterWrite::Commit;
        }
        let first_at = *self.first_at.get_or_insert(now);
        let (tx, rx) = oneshot::channel();
        self.waiting.push(tx);
        AfterWrite::Wait {
            outcome: rx,
            deadline: first_at + LONGEST_WAIT,
        }
    }

    /// A waiting write's deadline passed at `now` (its caller commits the group next): if it
    /// waited alone, nobody writes beside its caller, and writes stop waiting for a while.
    pub(super) fn deadline_passed(&mut self, now: Instant) {
        if self.waiting.len() <= 1 {
            self.alone += 1;
            self.quiet_until = Some(now + QUIET);
        }
    }

    /// How many groups were committed by their deadline with one write in them.
    #[cfg(test)]
    pub(super) fn alone(&self) -> u64 {
        self.alone
    }

    /// Answers every waiting write with how their transaction ended.
    pub(super) fn ended(&mut self, outcome: Option<&str>) {
        self.first_at = None;
        for waiter in self.waiting.drain(..) {
            // A caller that went away (its request dropped) no longer listens.
            let _ = waiter.send(outcome.map(str::to_owned));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(1);

    fn at(start: Instant, us: u64) -> Instant {
        start + Duration::from_micros(us)
    }

    /// Feeds `n` writes `every_us` apart from `*t`, committing whenever told to.
    fn feed(g: &mut InlineGroup, start: Instant, t: &mut u64, n: usize, every_us: u64) {
        for _ in 0..n {
            g.arrived(at(start, *t));
            if let AfterWrite::Commit = g.after_write(at(start, *t)) {
                g.ended(None);
            }
            *t += every_us;
        }
    }

    #[test]
    fn slow_writes_commit_at_once() {
        let mut g = InlineGroup::new(WINDOW);
        let start = Instant::now();
        for i in 0..100 {
            // 1,000 writes a second: one per window.
            g.arrived(at(start, i * 1_000));
            assert!(matches!(
                g.after_write(at(start, i * 1_000)),
                AfterWrite::Commit
            ));
        }
        assert!(!g.is_waiting());
    }

    #[test]
    fn a_burst_groups_as_many_writes_as_the_window_brings_then_commits() {
        let mut g = InlineGroup::new(WINDOW);
        let start = Instant::now();
        // 10,000 writes a second: ten per window, once the estimate has caught up.
        let mut t = 0;
        feed(&mut g, start, &mut t, 200, 100);
        assert_eq!(g.expected(), 10);
        g.ended(None);
        let mut waiting = Vec::new();
        for i in 0..9 {
            g.arrived(at(start, t));
            match g.after_write(at(start, t)) {
                AfterWrite::Wait { outcome, deadline } => {
                    assert_eq!(deadline, at(start, t - i * 100) + LONGEST_WAIT);
                    waiting.push(outcome);
                }
                AfterWrite::Commit => panic!("write {i} committed before its group was full"),
            }
            t += 100;
        }
        g.arrived(at(start, t));
        assert!(matches!(g.after_write(at(start, t)), AfterWrite::Commit));
        g.ended(Some("disk full"));
        for mut w in waiting {
            assert_eq!(w.try_recv().unwrap().as_deref(), Some("disk full"));
        }
        assert!(!g.is_waiting());
    }

    #[test]
    fn a_pause_ends_grouping_until_the_rate_is_back() {
        let mut g = InlineGroup::new(WINDOW);
        let start = Instant::now();
        let mut t = 0;
        feed(&mut g, start, &mut t, 200, 100);
        g.ended(None);
        assert!(g.expected() >= MIN_GROUP);
        // A second without writes.
        t += 1_000_000;
        g.arrived(at(start, t));
        assert!(matches!(g.after_write(at(start, t)), AfterWrite::Commit));
    }

    #[test]
    fn a_write_that_waited_alone_stops_the_waiting_for_a_while() {
        let mut g = InlineGroup::new(WINDOW);
        let start = Instant::now();
        let mut t = 0;
        feed(&mut g, start, &mut t, 200, 100);
        g.ended(None);
        g.arrived(at(start, t));
        assert!(matches!(
            g.after_write(at(start, t)),
            AfterWrite::Wait { .. }
        ));
        t += 2_000;
        g.deadline_passed(at(start, t));
        g.ended(None);
        assert_eq!(g.alone(), 1);
        // The rate still says "burst", but nobody wrote beside that write.
        g.arrived(at(start, t));
        assert!(matches!(g.after_write(at(start, t)), AfterWrite::Commit));
        t += 100_000;
        g.arrived(at(start, t));
        for _ in 0..50 {
            t += 50;
            g.arrived(at(start, t));
        }
        assert!(matches!(
            g.after_write(at(start, t)),
            AfterWrite::Wait { .. }
        ));
    }

    #[test]
    fn a_zero_window_never_waits() {
        let mut g = InlineGroup::new(Duration::ZERO);
        let start = Instant::now();
        let mut t = 0;
        for _ in 0..200 {
            g.arrived(at(start, t));
            assert!(matches!(g.after_write(at(start, t)), AfterWrite::Commit));
            t += 10;
        }
    }
}
