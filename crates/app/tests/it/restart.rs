//! The binary, configured only through the public settings (README, Configuration), killed with SIGKILL
//! right after acknowledging a delivery, then started again.

use std::time::Duration;

use xdm_sandbox::{DmSpec, Fault, FaultOp, Sandbox, SandboxConfig, SandboxUser};

use crate::bridge_process::{free_port, serve, wait_healthy};
use crate::helpers::*;

#[tokio::test]
async fn a_message_acknowledged_just_before_a_kill_9_is_delivered_after_restart() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox.add_user(SandboxUser::new(CUSTOMER, "Jordan Brinks", "furiouscamper"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bridge.db");
    let port = free_port();

    let mut bridge = serve(&sandbox, port, &db);
    wait_healthy(port).await;
    assert!(
        sandbox
            .set_webhook(&format!("http://127.0.0.1:{port}/webhooks/x"))
            .await
            .unwrap()
            .ok
    );

    // Connect is failing: the bridge acknowledges X, keeps the message, and keeps trying.
    sandbox.fail_next(
        FaultOp::StartChatContact,
        10_000,
        Fault::error(500, "InternalServiceException"),
    );
    let d = sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, "please don't lose me"))
        .await
        .unwrap();
    assert_eq!(d.status, Some(200), "acknowledged");
    sandbox
        .wait_until("a delivery attempt", WAIT, |s| {
            s.pending_faults()
                .iter()
                .any(|f| f.remaining < 10_000)
                .then_some(())
        })
        .await
        .unwrap();
    bridge.kill_9(); // no shutdown code runs
    assert!(sandbox.contacts().is_empty());

    sandbox.clear_faults();
    let mut bridge = serve(&sandbox, port, &db);
    let chat = sandbox
        .wait_until("the message after restart", WAIT, |s| {
            s.contacts().into_iter().find(|c| c.customer_connected)
        })
        .await
        .unwrap();
    assert_eq!(customer_messages(&chat), vec!["please don't lose me"]);
    assert_eq!(sandbox.contacts().len(), 1);

    // Killed the instant the 200 arrives, before any delivery attempt (the reorder window alone
    // holds the message back 250 ms): still delivered, exactly once.
    let d = sandbox
        .deliver_dm(DmSpec::text(CUSTOMER, "killed at once"))
        .await
        .unwrap();
    bridge.kill_9();
    assert_eq!(d.status, Some(200));
    let mut bridge = serve(&sandbox, port, &db);
    let chat = sandbox
        .wait_until("the second message after restart", WAIT, |s| {
            s.contacts()
                .into_iter()
                .find(|c| customer_messages(c).len() >= 2)
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        customer_messages(&sandbox.contact(&chat.contact_id).unwrap()),
        vec!["please don't lose me", "killed at once"]
    );
    assert_eq!(sandbox.contacts().len(), 1);
    bridge.kill_9();
    sandbox.shutdown();
}
