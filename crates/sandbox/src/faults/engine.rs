//! The decision for one call: down switch, queued fault, throttling burst, profile — and the
//! counters of what was injected. Pure (the caller passes the time), so it is unit-tested without
//! sockets.

use std::collections::BTreeMap;

use axum::http::StatusCode;

use crate::faults::profile::SplitMix64;
use crate::faults::stats::StatsBook;
use crate::faults::{
    DownMode, DropMode, Fault, FaultBook, FaultKind, FaultOp, FaultProfile, Platform, Side,
    ThrottleBurst, ThrottleBurstView,
};

/// `x-rate-limit-limit` of a throttled X answer when neither the burst nor the configuration says.
pub(crate) const DEFAULT_THROTTLE_LIMIT: u32 = 15;

/// An injected failure: the error answer a call gives — or would give, when its connection is
/// dropped instead (`dropped`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Injected {
    /// `status` is always `Some`.
    pub fault: Fault,
    /// X: the `x-rate-limit-*` headers of a throttled answer.
    pub throttle: Option<Throttle>,
    pub kind: FaultKind,
}

/// The rate-limit headers of a throttled X answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Throttle {
    pub reset: i64,
    pub limit: Option<u32>,
}

impl Injected {
    fn new(kind: FaultKind, status: u16, code: Option<&str>, message: Option<&str>) -> Self {
        Self {
            fault: Fault {
                status: Some(status),
                code: code.map(str::to_owned),
                message: message.map(str::to_owned),
                ..Fault::default()
            },
            throttle: None,
            kind,
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.fault
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Why the call was refused, for request records.
    pub(crate) fn rejection(&self) -> &'static str {
        match self.kind {
            FaultKind::Error | FaultKind::Delay => "injected fault",
            FaultKind::Throttle => "injected throttling",
            FaultKind::Down => "platform switched down",
            FaultKind::DropBefore | FaultKind::DropAfter => "injected connection drop",
        }
    }

    /// The platform's answer while switched down.
    fn unavailable(platform: Platform) -> Self {
        match platform {
            Platform::Connect | Platform::Participant | Platform::Profiles => Self::new(
                FaultKind::Down,
                503,
                Some("ServiceUnavailableException"),
                Some("Service Unavailable"),
            ),
            Platform::S3 => Self::new(
                FaultKind::Down,
                503,
                Some("ServiceUnavailable"),
                Some("Service is unable to handle request."),
            ),
            Platform::X | Platform::PublicMedia | Platform::Processing => {
                Self::new(FaultKind::Down, 503, None, None)
            }
        }
    }

    fn throttled(platform: Platform, reset: i64, limit: Option<u32>) -> Self {
        match platform {
            Platform::Connect | Platform::Participant | Platform::Profiles => Self::new(
                FaultKind::Throttle,
                429,
                Some("ThrottlingException"),
                Some("Rate exceeded"),
            ),
            Platform::S3 => Self::new(
                FaultKind::Throttle,
                503,
                Some("SlowDown"),
                Some("Please reduce your request rate."),
            ),
            Platform::X | Platform::PublicMedia | Platform::Processing => {
                let mut injected = Self::new(FaultKind::Throttle, 429, None, None);
                injected.fault.rate_limit_reset = Some(reset);
                injected.throttle = Some(Throttle { reset, limit });
                injected
            }
        }
    }

    fn from_profile(platform: Platform, profile: &FaultProfile, kind: FaultKind) -> Self {
        let status = profile.error.status.unwrap_or(match platform {
            Platform::Participant | Platform::Profiles | Platform::S3 => 500,
            _ => 503,
        });
        Self::new(
            kind,
            status,
            profile.error.code.as_deref(),
            profile.error.message.as_deref(),
        )
    }
}

/// What one call does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    /// Wait this long first.
    pub delay_ms: u64,
    /// Answer this error instead of running the call (`kind` `DropBefore` / `Down` with
    /// [`DownMode::Drop`]: drop the connection instead; the error is what is recorded).
    pub answer: Option<Injected>,
    /// Close the connection without an answer (after running the call when `answer` is `None`).
    pub drop: bool,
    /// The event to report: kind, status.
    pub event: Option<(FaultKind, Option<u16>)>,
}

#[derive(Debug)]
struct ActiveProfile {
    profile: FaultProfile,
    rng: SplitMix64,
}

#[derive(Debug, Clone, Copy)]
struct ActiveBurst {
    remaining: u32,
    reset_at: i64,
    reset_after_secs: i64,
    hold_window: bool,
    limit: Option<u32>,
}

/// Every fault setting and counter of one sandbox (behind one leaf lock in `Shared`).
#[derive(Debug)]
pub(crate) struct FaultState {
    seed: u64,
    pub queued: FaultBook,
    profiles: BTreeMap<FaultOp, ActiveProfile>,
    bursts: BTreeMap<FaultOp, ActiveBurst>,
    down: BTreeMap<Side, DownMode>,
    pub stats: StatsBook,
}

impl FaultState {
    pub(crate) fn new(seed: u64, since: String) -> Self {
        Self {
            seed,
            queued: FaultBook::default(),
            profiles: BTreeMap::new(),
            bursts: BTreeMap::new(),
            down: BTreeMap::new(),
            stats: StatsBook::new(since),
        }
    }

    /// Decides call `op` at Unix second `now` and counts what it injects.
    pub(crate) fn decide(&mut self, op: FaultOp, now: i64) -> Plan {
        let platform = op.platform();
        if let Some(mode) = self.down.get(&op.side()).copied() {
            self.stats.op(op).faults.down += 1;
            let answer = Injected::unavailable(platform);
            let status = answer.fault.status;
            return Plan {
                delay_ms: 0,
                answer: Some(answer),
                drop: mode == DownMode::Drop,
                event: Some((
                    FaultKind::Down,
                    status.filter(|_| mode == DownMode::Unavailable),
                )),
            };
        }
        // The profile's draws happen for every call, used or not, so each call of an operation
        // meets the same draws whatever else is injected.
        let drawn = self.profiles.get_mut(&op).map(|active| {
            let p = &active.profile;
            let delay = p.latency_ms.saturating_add(active.rng.up_to(p.jitter_ms));
            (delay, active.rng.unit())
        });
        let mut plan = Plan {
            delay_ms: drawn.map_or(0, |(delay, _)| delay),
            ..Plan::default()
        };
        if let Some(fault) = self.queued.take(op) {
            plan.delay_ms = plan.delay_ms.saturating_add(fault.delay_ms);
            match fault.status {
                Some(status) => {
                    self.stats.op(op).faults.errors += 1;
                    plan.event = Some((FaultKind::Error, Some(status)));
                    plan.answer = Some(Injected {
                        fault,
                        throttle: None,
                        kind: FaultKind::Error,
                    });
                }
                None => plan.event = Some((FaultKind::Delay, None)),
            }
        } else if let Some(throttled) = self.throttle(op, platform, now) {
            self.stats.op(op).faults.throttled += 1;
            plan.event = Some((FaultKind::Throttle, throttled.fault.status));
            plan.answer = Some(throttled);
        } else if let (Some((_, r)), Some(active)) = (drawn, self.profiles.get(&op)) {
            let p = &active.profile;
            if r < p.error_rate {
                let answer = Injected::from_profile(platform, p, FaultKind::Error);
                self.stats.op(op).faults.errors += 1;
                plan.event = Some((FaultKind::Error, answer.fault.status));
                plan.answer = Some(answer);
            } else if r < p.error_rate + p.throttle_rate {
                let answer = Injected::throttled(platform, now.saturating_add(1), None);
                self.stats.op(op).faults.throttled += 1;
                plan.event = Some((FaultKind::Throttle, answer.fault.status));
                plan.answer = Some(answer);
            } else if r < p.error_rate + p.throttle_rate + p.drop_rate {
                plan.drop = true;
                match p.drop_mode {
                    DropMode::Before => {
                        self.stats.op(op).faults.dropped_before += 1;
                        plan.event = Some((FaultKind::DropBefore, None));
                        // Answered only where the connection cannot be dropped.
                        plan.answer = Some(Injected::from_profile(
                            platform,
                            &FaultProfile::default(),
                            FaultKind::DropBefore,
                        ));
                    }
                    DropMode::After => {
                        self.stats.op(op).faults.dropped_after += 1;
                        plan.event = Some((FaultKind::DropAfter, None));
                    }
                }
            }
        }
        if plan.delay_ms > 0 {
            let faults = &mut self.stats.op(op).faults;
            faults.delayed += 1;
            faults.delay_ms = faults.delay_ms.saturating_add(plan.delay_ms);
        }
        plan
    }

    /// Whether the next GIF / video processing fails, and with what message.
    pub(crate) fn processing_failure(&mut self) -> Option<(String, Option<u16>)> {
        const DEFAULT: &str = "The media could not be processed.";
        let op = FaultOp::MediaProcessing;
        let failure = if let Some(fault) = self.queued.take(op) {
            Some((
                fault.message.unwrap_or_else(|| DEFAULT.to_owned()),
                fault.status,
            ))
        } else {
            let active = self.profiles.get_mut(&op)?;
            (active.rng.unit() < active.profile.error_rate).then(|| {
                let message = active.profile.error.message.clone();
                (
                    message.unwrap_or_else(|| DEFAULT.to_owned()),
                    active.profile.error.status,
                )
            })
        };
        if failure.is_some() {
            self.stats.op(op).faults.errors += 1;
        }
        failure
    }

    /// The throttled answer of a call under a burst or its held window.
    fn throttle(&mut self, op: FaultOp, platform: Platform, now: i64) -> Option<Injected> {
        let burst = self.bursts.get_mut(&op)?;
        let reset = if burst.remaining > 0 {
            burst.remaining -= 1;
            if burst.reset_at > now {
                burst.reset_at
            } else {
                now.saturating_add(burst.reset_after_secs)
            }
        } else if burst.hold_window && now < burst.reset_at {
            burst.reset_at
        } else {
            self.bursts.remove(&op);
            return None;
        };
        let limit = burst.limit;
        if burst.remaining == 0 && !(burst.hold_window && now < burst.reset_at) {
            self.bursts.remove(&op);
        }
        Some(Injected::throttled(platform, reset, limit))
    }

    pub(crate) fn set_profile(&mut self, op: FaultOp, profile: FaultProfile) {
        if profile.is_noop() {
            self.profiles.remove(&op);
            return;
        }
        let rng = SplitMix64::for_op(profile.seed.unwrap_or(self.seed), op);
        self.profiles.insert(op, ActiveProfile { profile, rng });
    }

    pub(crate) fn profiles(&self) -> BTreeMap<FaultOp, FaultProfile> {
        self.profiles
            .iter()
            .map(|(op, active)| (*op, active.profile.clone()))
            .collect()
    }

    pub(crate) fn clear_profiles(&mut self) {
        self.profiles.clear();
    }

    pub(crate) fn set_burst(&mut self, op: FaultOp, burst: ThrottleBurst, now: i64) {
        let reset_after_secs = i64::try_from(burst.reset_after_secs).unwrap_or(i64::MAX);
        let reset_at = now.saturating_add(reset_after_secs);
        if burst.count == 0 && !(burst.hold_window && now < reset_at) {
            self.bursts.remove(&op);
            return;
        }
        self.bursts.insert(
            op,
            ActiveBurst {
                remaining: burst.count,
                reset_at,
                reset_after_secs,
                hold_window: burst.hold_window,
                limit: burst.limit,
            },
        );
    }

    pub(crate) fn bursts(&self) -> Vec<ThrottleBurstView> {
        self.bursts
            .iter()
            .map(|(op, b)| ThrottleBurstView {
                op: *op,
                remaining: b.remaining,
                reset_at: b.reset_at,
                hold_window: b.hold_window,
                limit: b.limit,
            })
            .collect()
    }

    pub(crate) fn clear_bursts(&mut self) {
        self.bursts.clear();
    }

    pub(crate) fn set_down(&mut self, side: Side, mode: Option<DownMode>) {
        match mode {
            Some(mode) => self.down.insert(side, mode),
            None => self.down.remove(&side),
        };
    }

    pub(crate) fn down(&self, side: Side) -> Option<DownMode> {
        self.down.get(&side).copied()
    }

    /// Starts the counters afresh, as of `since`.
    pub(crate) fn reset_stats(&mut self, since: String) {
        self.stats = StatsBook::new(since);
    }

    /// Queued faults, profiles, bursts and down switches (not the counters).
    pub(crate) fn clear_all(&mut self) {
        self.queued.clear();
        self.profiles.clear();
        self.bursts.clear();
        self.down.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::faults::FaultError;

    const NOW: i64 = 1_800_000_000;

    fn state() -> FaultState {
        FaultState::new(42, "t".into())
    }

    fn failures(state: &mut FaultState, op: FaultOp, calls: u32) -> u32 {
        (0..calls)
            .map(|_| u32::from(state.decide(op, NOW).answer.is_some()))
            .sum()
    }

    #[test]
    fn error_rates_one_zero_and_a_fifth() {
        let mut s = state();
        s.set_profile(FaultOp::SendMessage, FaultProfile::errors(1.0));
        assert_eq!(failures(&mut s, FaultOp::SendMessage, 500), 500);
        s.set_profile(
            FaultOp::SendMessage,
            FaultProfile::errors(0.0).with_latency(0, 3),
        );
        assert_eq!(failures(&mut s, FaultOp::SendMessage, 500), 0);
        s.set_profile(FaultOp::SendMessage, FaultProfile::errors(0.2));
        let failed = failures(&mut s, FaultOp::SendMessage, 2_000);
        // Binomial(2000, 0.2): mean 400, sd ≈ 17.9; ±5 sd.
        assert!((310..=490).contains(&failed), "{failed}");
        assert_eq!(
            s.stats.op(FaultOp::SendMessage).faults.errors,
            500 + u64::from(failed)
        );
        // Untouched operations never fail.
        assert_eq!(failures(&mut s, FaultOp::CreateDm, 100), 0);
    }

    #[test]
    fn seeded_runs_repeat_and_seeds_differ() {
        let run = |seed: Option<u64>| {
            let mut s = state();
            let mut profile = FaultProfile::errors(0.3).with_latency(10, 20);
            profile.seed = seed;
            s.set_profile(FaultOp::CreateDm, profile);
            (0..200)
                .map(|_| {
                    let plan = s.decide(FaultOp::CreateDm, NOW);
                    (plan.delay_ms, plan.answer.is_some())
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(None), run(None));
        assert_eq!(run(Some(9)), run(Some(9)));
        assert_ne!(run(Some(9)), run(Some(10)));
        assert!(run(None).iter().all(|(d, _)| (10..=30).contains(d)));
    }

    #[test]
    fn default_errors_per_platform_and_custom_error() {
        let mut s = state();
        for op in [
            FaultOp::StartChatContact,
            FaultOp::SendMessage,
            FaultOp::AttachmentPut,
            FaultOp::CreateDm,
            FaultOp::SearchProfiles,
        ] {
            s.set_profile(op, FaultProfile::errors(1.0));
        }
        let status = |s: &mut FaultState, op| s.decide(op, NOW).answer.unwrap().fault.status;
        assert_eq!(status(&mut s, FaultOp::SearchProfiles), Some(500));
        assert_eq!(status(&mut s, FaultOp::StartChatContact), Some(503));
        assert_eq!(status(&mut s, FaultOp::SendMessage), Some(500));
        assert_eq!(status(&mut s, FaultOp::AttachmentPut), Some(500));
        assert_eq!(status(&mut s, FaultOp::CreateDm), Some(503));
        s.set_profile(
            FaultOp::CreateDm,
            FaultProfile::errors(1.0)
                .with_error(FaultError::error(500, "about:blank").with_message("x")),
        );
        let answer = s.decide(FaultOp::CreateDm, NOW).answer.unwrap();
        assert_eq!(
            (
                answer.fault.status,
                answer.fault.code.as_deref(),
                answer.fault.message.as_deref()
            ),
            (Some(500), Some("about:blank"), Some("x"))
        );
    }

    #[test]
    fn a_profile_mixes_errors_throttling_and_drops_in_one_draw() {
        let mut s = state();
        s.set_profile(
            FaultOp::SendMessage,
            FaultProfile::errors(0.1)
                .with_throttle_rate(0.06)
                .with_drops(0.04, DropMode::After),
        );
        let mut kinds = BTreeMap::new();
        for _ in 0..5_000 {
            let plan = s.decide(FaultOp::SendMessage, NOW);
            let kind = match (&plan.answer, plan.drop) {
                (Some(answer), _) => {
                    if answer.kind == FaultKind::Throttle {
                        assert_eq!(
                            (answer.fault.status, answer.fault.code.as_deref()),
                            (Some(429), Some("ThrottlingException"))
                        );
                    }
                    format!("{:?}", answer.kind)
                }
                (None, true) => "DropAfter".to_owned(),
                (None, false) => "ok".to_owned(),
            };
            *kinds.entry(kind).or_insert(0_u32) += 1;
        }
        // Binomial(5000, p), ±5 sd.
        let within = |kind: &str, p: f64| {
            let n = f64::from(kinds.get(kind).copied().unwrap_or(0));
            let sd = (5_000.0 * p * (1.0 - p)).sqrt();
            assert!((n - 5_000.0 * p).abs() <= 5.0 * sd, "{kind}: {kinds:?}");
        };
        within("Error", 0.1);
        within("Throttle", 0.06);
        within("DropAfter", 0.04);
        within("ok", 0.8);
        let faults = &s.stats.op(FaultOp::SendMessage).faults;
        assert_eq!(
            (faults.errors, faults.throttled, faults.dropped_after),
            (
                u64::from(kinds["Error"]),
                u64::from(kinds["Throttle"]),
                u64::from(kinds["DropAfter"])
            )
        );
        // X: a throttled answer announces a reset one second later.
        s.set_profile(
            FaultOp::CreateDm,
            FaultProfile::default().with_throttle_rate(1.0),
        );
        let answer = s.decide(FaultOp::CreateDm, NOW).answer.unwrap();
        assert_eq!(answer.fault.status, Some(429));
        assert_eq!(answer.throttle.unwrap().reset, NOW + 1);
    }

    #[test]
    fn drops_before_and_after() {
        let mut s = state();
        s.set_profile(
            FaultOp::SendMessage,
            FaultProfile::drops(1.0, DropMode::Before),
        );
        let plan = s.decide(FaultOp::SendMessage, NOW);
        assert!(plan.drop && plan.answer.is_some());
        s.set_profile(
            FaultOp::SendMessage,
            FaultProfile::drops(1.0, DropMode::After),
        );
        let plan = s.decide(FaultOp::SendMessage, NOW);
        assert!(plan.drop && plan.answer.is_none());
        let faults = s.stats.op(FaultOp::SendMessage).faults.clone();
        assert_eq!((faults.dropped_before, faults.dropped_after), (1, 1));
        // Errors and drops share one draw: 0.5 + 0.5 covers every call.
        s.set_profile(
            FaultOp::GetUser,
            FaultProfile::errors(0.5).with_drops(0.5, DropMode::Before),
        );
        for _ in 0..100 {
            let plan = s.decide(FaultOp::GetUser, NOW);
            assert!(plan.drop || plan.answer.is_some());
        }
    }

    #[test]
    fn bursts_throttle_then_hold_the_window_until_reset() {
        let mut s = state();
        s.set_burst(FaultOp::CreateDm, ThrottleBurst::new(2, 60), NOW);
        for _ in 0..2 {
            let answer = s.decide(FaultOp::CreateDm, NOW).answer.unwrap();
            assert_eq!(answer.fault.status, Some(429));
            assert_eq!(answer.throttle.unwrap().reset, NOW + 60);
        }
        assert!(s.decide(FaultOp::CreateDm, NOW).answer.is_none());
        assert!(s.bursts().is_empty());

        s.set_burst(
            FaultOp::CreateDm,
            ThrottleBurst::new(1, 60).holding_window().with_limit(200),
            NOW,
        );
        let first = s.decide(FaultOp::CreateDm, NOW).answer.unwrap();
        assert_eq!(first.throttle.unwrap().limit, Some(200));
        let held = s.decide(FaultOp::CreateDm, NOW + 59).answer.unwrap();
        assert_eq!(held.throttle.unwrap().reset, NOW + 60);
        assert!(s.decide(FaultOp::CreateDm, NOW + 60).answer.is_none());
        assert!(s.bursts().is_empty());
        assert_eq!(s.stats.op(FaultOp::CreateDm).faults.throttled, 4);

        // A burst consumed after its reset announces a fresh one.
        s.set_burst(FaultOp::SendMessage, ThrottleBurst::new(1, 5), NOW);
        let late = s.decide(FaultOp::SendMessage, NOW + 10).answer.unwrap();
        assert_eq!(
            (late.fault.status, late.fault.code.as_deref()),
            (Some(429), Some("ThrottlingException"))
        );
    }

    #[test]
    fn down_wins_and_precedence_is_queued_then_burst_then_profile() {
        let mut s = state();
        s.set_profile(
            FaultOp::SendMessage,
            FaultProfile::errors(1.0).with_latency(7, 0),
        );
        s.set_burst(FaultOp::SendMessage, ThrottleBurst::new(1, 60), NOW);
        s.queued.push(FaultOp::SendMessage, 1, Fault::status(418));
        s.set_down(Side::Connect, Some(DownMode::Unavailable));
        let plan = s.decide(FaultOp::SendMessage, NOW);
        assert_eq!(
            (plan.delay_ms, plan.answer.unwrap().kind),
            (0, FaultKind::Down)
        );
        assert!(s.decide(FaultOp::CreateDm, NOW).answer.is_none());
        s.set_down(Side::Connect, None);
        let kinds: Vec<_> = (0..3)
            .map(|_| {
                let plan = s.decide(FaultOp::SendMessage, NOW);
                assert_eq!(plan.delay_ms, 7);
                let answer = plan.answer.unwrap();
                (answer.kind, answer.fault.status)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (FaultKind::Error, Some(418)),
                (FaultKind::Throttle, Some(429)),
                (FaultKind::Error, Some(500)),
            ]
        );
        let faults = &s.stats.op(FaultOp::SendMessage).faults;
        assert_eq!((faults.down, faults.delayed, faults.delay_ms), (1, 3, 21));
        s.set_down(Side::X, Some(DownMode::Drop));
        assert!(s.decide(FaultOp::MediaDownload, NOW).drop);
        s.clear_all();
        assert!(s.decide(FaultOp::SendMessage, NOW).answer.is_none());
        assert!(s.down(Side::X).is_none());
    }

    #[test]
    fn processing_failures_follow_queue_then_profile() {
        let mut s = state();
        assert!(s.processing_failure().is_none());
        s.queued.push(
            FaultOp::MediaProcessing,
            1,
            Fault::status(400).with_message("codec"),
        );
        assert_eq!(s.processing_failure().unwrap().0, "codec");
        s.set_profile(FaultOp::MediaProcessing, FaultProfile::errors(1.0));
        assert_eq!(
            s.processing_failure().unwrap().0,
            "The media could not be processed."
        );
        assert_eq!(s.stats.op(FaultOp::MediaProcessing).faults.errors, 2);
    }
}
