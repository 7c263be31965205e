//! Fault injection at the moment of a call: what the fault settings decide for one call of an
//! operation (a delay, a dropped connection, an error to answer) or for one GIF / video
//! processing, applied and reported as [`SandboxEvent::FaultInjected`].

use std::time::Duration;

use crate::clock;
use crate::events::SandboxEvent;
use crate::faults::{FaultKind, FaultOp, Injected, flag_drop, note_call};
use crate::state::Shared;
use crate::sync::lock;

/// Fault injection for one call of `op` (after its authentication): waits the injected delay,
/// arranges a dropped connection, and returns the error to answer, if any. When the connection
/// is to be dropped before the call takes effect, the error is returned too: the handler answers
/// it (and records it), and the answer is replaced by the abort.
pub(crate) async fn gate(shared: &Shared, op: FaultOp) -> Option<Injected> {
    note_call(op);
    let plan = lock(&shared.faults).decide(op, clock::now_unix_secs());
    if let Some((kind, status)) = plan.event {
        tracing::info!(
            ?op,
            ?kind,
            ?status,
            delay_ms = plan.delay_ms,
            "injecting fault"
        );
        shared.events.emit(SandboxEvent::FaultInjected {
            op,
            status,
            delay_ms: plan.delay_ms,
            kind,
        });
    }
    if plan.drop {
        flag_drop();
    }
    if plan.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(plan.delay_ms)).await;
    }
    plan.answer
}

/// Whether the GIF / video being finalized fails processing (queued `MediaProcessing` fault or
/// its profile's error rate), with the failure message.
pub(crate) fn processing_failure(shared: &Shared) -> Option<String> {
    let (message, status) = lock(&shared.faults).processing_failure()?;
    tracing::info!(op = ?FaultOp::MediaProcessing, "injecting fault");
    shared.events.emit(SandboxEvent::FaultInjected {
        op: FaultOp::MediaProcessing,
        status,
        delay_ms: 0,
        kind: FaultKind::Error,
    });
    Some(message)
}
