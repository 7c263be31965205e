//! Streamed chat items: the `Message` of an SNS notification (docs/protocols.md B3) through
//! `parse_chat_item`, once without and once with the message attributes of the captured agent
//! message, then, for messages, the outbound path to X: `render_for_x` and `split_message` at
//! X's DM limit. Also `iso8601_to_ms` on the raw input (the `AbsoluteTime` reader).
//!
//! Asserted on top of "no panic": a rendered message is non-empty and trimmed, and its parts fit
//! X's limit (a single over-long grapheme excepted).

#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use unicode_segmentation::UnicodeSegmentation;
use xdm_amazon_connect::sns::{MessageAttribute, parse_chat_item};
use xdm_core::chat_item::ChatItemBody;
use xdm_core::text::{X_DM_MAX_CHARS, render_for_x, split_message, utf16_len};

/// The attributes of testdata/lambda-sns-agent-message.json.
static ATTRIBUTES: LazyLock<BTreeMap<String, MessageAttribute>> = LazyLock::new(|| {
    [
        ("InitialContactId", "da81f813-70b0-496e-91ed-70f48771c522"),
        ("MessageVisibility", "ALL"),
        ("Type", "MESSAGE"),
        ("AccountId", "643504311277"),
        ("ContentType", "text/markdown"),
        ("InstanceId", "30b0e238-b3bd-4f61-9f04-c0b24e4a2f74"),
        ("ContactId", "da81f813-70b0-496e-91ed-70f48771c522"),
        ("ParticipantRole", "AGENT"),
    ]
    .into_iter()
    .map(|(k, v)| {
        let attr = MessageAttribute {
            data_type: "String".to_owned(),
            value: v.to_owned(),
        };
        (k.to_owned(), attr)
    })
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(message) = std::str::from_utf8(data) else {
        return;
    };
    let _ = xdm_amazon_connect::iso8601_to_ms(message);
    for attributes in [&BTreeMap::new(), &*ATTRIBUTES] {
        let Ok(item) = parse_chat_item(message, attributes) else {
            continue;
        };
        let _ = item.is_for_customer();
        if let ChatItemBody::Message {
            content_type,
            content,
        } = &item.body
            && let Some(text) = render_for_x(content_type, content)
        {
            assert!(!text.is_empty() && text.trim() == text, "{text:?}");
            for part in split_message(&text, X_DM_MAX_CHARS) {
                assert!(utf16_len(&part) <= X_DM_MAX_CHARS || part.graphemes(true).count() == 1);
            }
        }
    }
});
