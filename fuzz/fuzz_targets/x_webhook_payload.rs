//! X webhook deliveries: `xdm_x::parse_delivery` on arbitrary bytes (the body X POSTs, after its
//! signature has been checked). The parser promises never to panic on any input (its module doc).
//!
//! Asserted on top of "no panic", for every delivery it accepts:
//! * every message, typing and read event is attributed to the delivery's business account
//!   (`for_user_id` / `filter.user_id`): an event never lands on another or on no account;
//! * the batch survives the JSON round trip the bridge's job queue relies on.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xdm_core::inbound::{InboundBatch, InboundEvent};

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = xdm_x::parse_delivery(data) else {
        return;
    };
    for event in &parsed.batch.events {
        let business = match event {
            InboundEvent::Message(dm) => &dm.business,
            InboundEvent::Typing(i) => &i.business,
            InboundEvent::Read(r) => &r.business,
            InboundEvent::Revoked { .. } => continue,
        };
        assert_eq!(
            Some(business),
            parsed.business.as_ref(),
            "event attributed to another account than the delivery's"
        );
    }
    let json = serde_json::to_string(&parsed.batch).expect("an InboundBatch serialises");
    let back: InboundBatch = serde_json::from_str(&json).expect("a serialised batch reads back");
    assert_eq!(back, parsed.batch, "the batch changed in a JSON round trip");
});
