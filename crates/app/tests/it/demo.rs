//! `xdm-connect demo`, as a person would run it, with a scripted conversation.

use std::process::Command;

#[test]
fn the_demo_plays_a_whole_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("conversation.txt");
    std::fs::write(
        &script,
        "Hi! My order #1234 hasn't arrived.\n\
         /agent Sorry about that, **Jordan**. Tracking: [here](https://example.com/t/1234)\n\
         Thanks!\n\
         /leave\n\
         /flow Thanks for contacting Acme. Goodbye!\n\
         /end\n\
         One more question\n\
         @billing My invoice is wrong\n\
         /agent We fixed your invoice.\n\
         @chat Is this conversation private?\n\
         /agent Yes, **end to end**.\n\
         /status\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xdm-connect"))
        .args(["demo", "--script"])
        .arg(&script)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed\n{stdout}\n{stderr}");
    for expected in [
        "X webhook CRC passed; SNS subscription confirmed.",
        "new chat",
        "for Jordan Brinks (@furiouscamper",
        "agent sees  Jordan Brinks: Hi! My order #1234 hasn't arrived.",
        "Enrique joined the chat",
        "receives from Acme Support: Sorry about that, Jordan. Tracking: here (https://example.com/t/1234)",
        "agent sees  Jordan Brinks: Thanks!",
        "flow says   Thanks for contacting Acme. Goodbye!",
        "receives from Acme Support: Thanks for contacting Acme. Goodbye!",
        "chat ended",
        "agent sees  Jordan Brinks: One more question",
        "customer profile ",
        "continues chat ",
        "to Acme Billing — queued for an agent",
        "in the billing flow (queue: billing)",
        "agent sees  Jordan Brinks: My invoice is wrong",
        "receives from Acme Billing: We fixed your invoice.",
        "for Mia Chen (@mia_on_xchat",
        "on X Chat: end-to-end encrypted between her device and the bridge",
        "agent sees  Mia Chen: Is this conversation private?",
        "@mia_on_xchat receives on X Chat (signature checked, decrypted on her device): Yes, end to end.",
        "inbound events: 0 pending, 0 processing, 5 done, 0 failed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    assert_eq!(stdout.matches("new chat").count(), 4, "{stdout}");
    // Every chat shows its customer's profile; only the second continues a chat.
    assert_eq!(stdout.matches("customer profile ").count(), 4, "{stdout}");
    assert_eq!(stdout.matches("continues chat ").count(), 1, "{stdout}");
}
