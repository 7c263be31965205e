//! The pipelines as the job engine sees them: one [`JobHandler`] per queue of the bridge.

use std::sync::Arc;

use crate::engine::{BoxedRun, JobHandler};
use crate::jobs::Job;
use crate::ports::{Clock, ConnectApi, Store, XApi};

use super::Bridge;

/// Runs inbound jobs: a customer's DM into their chat.
pub(super) struct InboundDelivery<S, X, C, K>(pub(super) Arc<Bridge<S, X, C, K>>);

/// Runs outbound jobs: a chat item to the customer on X.
pub(super) struct OutboundDelivery<S, X, C, K>(pub(super) Arc<Bridge<S, X, C, K>>);

impl<S, X, C, K> JobHandler for InboundDelivery<S, X, C, K>
where
    S: Store,
    X: XApi,
    C: ConnectApi,
    K: Clock,
{
    fn run<'a>(&'a self, job: &'a Job) -> BoxedRun<'a> {
        Box::pin(self.0.handle_inbound(job))
    }
}

impl<S, X, C, K> JobHandler for OutboundDelivery<S, X, C, K>
where
    S: Store,
    X: XApi,
    C: ConnectApi,
    K: Clock,
{
    fn run<'a>(&'a self, job: &'a Job) -> BoxedRun<'a> {
        Box::pin(self.0.handle_outbound(job))
    }
}
