//! Sending an event into a chat as the customer (typing, receipts): best effort, bounded in
//! time, since these are sent before X's delivery is answered (which is also what AWS Lambda
//! needs: work left after the answer may never run).

use std::time::Duration;

use crate::ids::ConnectionToken;
use crate::ports::{ChatEvent, ConnectApi, Store};
use crate::session::Session;

use super::Bridge;

/// How long one `SendEvent` may wait for Connect.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

impl<S: Store, X, C: ConnectApi, K> Bridge<S, X, C, K> {
    /// `SendEvent` of `event` with the chat's `connection`, within [`SEND_TIMEOUT`]; whether
    /// Connect took it (a refusal or no answer is logged at DEBUG, never an error).
    pub(super) async fn send_chat_event(
        &self,
        session: &Session,
        connection: &ConnectionToken,
        event: &ChatEvent,
        client_token: &str,
    ) -> bool {
        let sent = self.connect.send_event(connection, event, client_token);
        match tokio::time::timeout(SEND_TIMEOUT, sent).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!(initial_contact_id = %session.initial_contact_id, error = %e,
                    content_type = event.content_type(), "chat event not sent: Connect refused it");
                false
            }
            Err(_) => {
                tracing::debug!(initial_contact_id = %session.initial_contact_id,
                    content_type = event.content_type(), "chat event not sent: Connect did not answer in time");
                false
            }
        }
    }
}
