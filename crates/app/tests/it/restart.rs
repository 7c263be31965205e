//! The binary, configured only through the public settings (DESIGN.md §4), killed with SIGKILL
//! right after acknowledging a delivery, then started again.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use xdm_sandbox::{DmSpec, Fault, FaultOp, Sandbox, SandboxConfig, SandboxHandle, SandboxUser};

use crate::helpers::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(sandbox: &SandboxHandle, port: u16, db: &std::path::Path) -> Child {
    let sb = sandbox.config();
    Command::new(env!("CARGO_BIN_EXE_xdm-connect"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("XDM_LISTEN", format!("127.0.0.1:{port}"))
        .env("XDM_STORE", format!("sqlite:{}", db.display()))
        .env("XDM_X_API_URL", sandbox.base_url())
        .env("XDM_X_CONSUMER_KEY", &sb.x.consumer_key)
        .env("XDM_X_CONSUMER_SECRET", &sb.x.consumer_secret)
        .env("XDM_X_ACCESS_TOKEN", &sb.x.access_token)
        .env("XDM_X_ACCESS_TOKEN_SECRET", &sb.x.access_token_secret)
        .env("XDM_CONNECT_INSTANCE_ID", &sb.connect.instance_id)
        .env("XDM_CONNECT_CONTACT_FLOW_ID", &sb.connect.contact_flow_id)
        .env("XDM_CONNECT_TOPIC_ARN", sandbox.sns_topic_arn())
        .env("XDM_SNS_TRUSTED_CERT_URLS", sandbox.sns_cert_url())
        .env("XDM_RETRY_BASE_MS", "100")
        .env("AWS_REGION", &sb.connect.region)
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_CONNECT", sandbox.base_url())
        .env("AWS_ENDPOINT_URL_CONNECTPARTICIPANT", sandbox.base_url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_healthy(port: u16) {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the bridge did not become healthy");
}

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
    bridge.kill().unwrap(); // SIGKILL: no shutdown code runs
    bridge.wait().unwrap();
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
    bridge.kill().unwrap();
    bridge.wait().unwrap();
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
    bridge.kill().unwrap();
    bridge.wait().unwrap();
    sandbox.shutdown();
}
