//! A key change checked and opened (docs/xchat.md §2.6): its sender's signature over the
//! conversation key it carries, checked against the sender's signing key as X serves it, and our
//! wrapped copy unwrapped with the identity key (entries for another version of our key skipped).

use xdm_core::ids::XUserId;
use xdm_core::inbound::ChatKeyChange;
use xdm_core::ports::XError;
use xdm_xchat::ConversationKey;
use xdm_xchat::events::MessageEvent;

use crate::chat::public_keys::signing_key;
use crate::chat::{ChatIdentity, unreadable};
use crate::client::XClient;

/// Checks and unwraps a key change: its sender's signature, our wrapped copy (once per key
/// change and account: the result is kept in the client's conversation key cache).
pub(crate) async fn open_key_change(
    client: &XClient,
    identity: &ChatIdentity,
    business: &XUserId,
    change: &MessageEvent,
    encoded: &str,
) -> Result<(ConversationKey, ChatKeyChange), XError> {
    if let Some(opened) = client.conversation_keys().get(business, encoded) {
        return Ok(opened);
    }
    let changer = XUserId::parse(change.sender_id.clone())
        .map_err(|_| XError::Unreadable("the key change's sender is not an X user id".into()))?;
    let signature_version = change
        .signature
        .as_ref()
        .map(|s| s.public_key_version.clone())
        .unwrap_or_default();
    let signer = signing_key(client, identity, business, &changer, &signature_version).await?;
    let (key_version, key) = change
        .open_key_change(
            identity.keys(),
            business.as_str(),
            Some(identity.key_version()),
            &signer,
        )
        .map_err(|e| unreadable("the key change", &e))?;
    let opened = (
        key,
        ChatKeyChange {
            conversation_id: change.conversation_id.clone(),
            key_version,
            encoded_event: encoded.to_owned(),
        },
    );
    client
        .conversation_keys()
        .put(business, encoded, opened.clone());
    Ok(opened)
}
