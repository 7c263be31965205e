//! The customer typing on X, shown in their chat: a Connect typing event (`SendEvent`).
//!
//! Best effort, and never stored: typing is not a message. Nothing is queued, retried or sent
//! again after a restart; an event the chat cannot show (no open chat yet, a chat still being
//! set up, Connect unavailable) is dropped. X sends a typing event every few seconds while the
//! customer types, and a client may send bursts; the chat gets **at most one per 5 s per
//! customer** (`typing_gate.rs`), which is also about how long Connect's chat interfaces show
//! one. The interval is kept per process (on AWS Lambda, per warm instance): a few more may
//! get through when several processes share the work, never a flood.

use crate::inbound::Indicator;
use crate::metric_names::TYPING_EVENTS;
use crate::ports::{ChatEvent, Clock, ConnectApi, Store};

use super::Bridge;

/// What became of one typing event (the `result` label of [`TYPING_EVENTS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relayed {
    Sent,
    /// Within the interval of the last one relayed.
    Throttled,
    /// No chat (or no connection to it yet) to show it in.
    NoChat,
    /// The store or Connect did not answer (in time).
    Failed,
}

impl Relayed {
    fn label(self) -> &'static str {
        match self {
            Relayed::Sent => "sent",
            Relayed::Throttled => "throttled",
            Relayed::NoChat => "no_chat",
            Relayed::Failed => "failed",
        }
    }
}

impl<S: Store, X, C: ConnectApi, K: Clock> Bridge<S, X, C, K> {
    /// Shows the customers' typing of one X delivery in their open chats. Never fails.
    pub(super) async fn relay_typing(&self, typing: &[Indicator]) {
        for indicator in typing {
            let relayed = self.relay_one(indicator).await;
            metrics::counter!(TYPING_EVENTS, "result" => relayed.label()).increment(1);
        }
    }

    async fn relay_one(&self, indicator: &Indicator) -> Relayed {
        let relayed = self.relay_admitted(indicator).await;
        if relayed == Relayed::NoChat {
            self.typing.forget(&indicator.business, &indicator.sender);
        }
        relayed
    }

    async fn relay_admitted(&self, indicator: &Indicator) -> Relayed {
        let now = self.now_ms();
        if !self
            .typing
            .admit(&indicator.business, &indicator.sender, now)
        {
            return Relayed::Throttled;
        }
        let session = match self
            .store()
            .open_session(&indicator.business, &indicator.sender)
            .await
        {
            Ok(Some(session)) => session,
            Ok(None) => return Relayed::NoChat,
            Err(e) => {
                tracing::debug!(error = %e, "typing not relayed: the store did not answer");
                return Relayed::Failed;
            }
        };
        let Some(connection) = session.current_connection(now) else {
            return Relayed::NoChat;
        };
        let client_token = format!(
            "xdm-typing-{}-{}",
            session.initial_contact_id, indicator.created_ms
        );
        if self
            .send_chat_event(&session, connection, &ChatEvent::Typing, &client_token)
            .await
        {
            Relayed::Sent
        } else {
            Relayed::Failed
        }
    }
}
