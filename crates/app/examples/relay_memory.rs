//! Peak memory while relaying a large video through the bridge, both ways, in one process with
//! the sandbox (so the number includes the emulators' streaming too).
//!
//! `cargo run --release -p xdm-app --example relay_memory [-- SIZE_MB]` (default 200).
//! X → Connect needs a Connect instance that accepts large attachments, so the sandbox and the
//! bridge are configured with a 256 MB attachment limit here (real Connect: 20 MB).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use xdm_app::sandbox_link;
use xdm_sandbox::{
    DmSpec, MediaFile, MediaSpec, ParticipantRole, Sandbox, SandboxConfig, SandboxUser,
};

const CUSTOMER: &str = "3001969357";
const MB: u64 = 1024 * 1024;

/// Peak resident set size of this process since the last reset, in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn reset_peak() {
    // Linux: writing 5 resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let size_mb: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mut sb = SandboxConfig::default();
    sb.connect.max_attachment_bytes = 256 * MB;
    let sandbox = Sandbox::start(sb).await?;
    sandbox.add_user(SandboxUser::new(CUSTOMER, "Jordan Brinks", "furiouscamper"));
    let dir = tempfile::tempdir()?;
    let store = format!("sqlite:{}", dir.path().join("relay.db").display());
    let bridge = sandbox_link::LinkedBridge::start(&sandbox, &store, |config| {
        config.delivery.attachments.max_bytes = 256 * MB;
        config.delivery.reorder_window_ms = 10;
        config.delivery.outbound_reorder_window_ms = 10;
    })
    .await?;
    bridge.link_x_webhook(&sandbox).await?;

    // Open the chat with a text first (baseline memory of a running bridge + sandbox).
    sandbox.deliver_dm(DmSpec::text(CUSTOMER, "hello")).await?;
    let chat = sandbox
        .wait_until("the chat", Duration::from_secs(30), |s| {
            s.contacts().into_iter().find(|c| c.customer_connected)
        })
        .await?;
    let baseline = peak_rss_mb();
    println!("baseline (bridge + sandbox running, one chat): peak RSS {baseline:.1} MB");

    // X → Connect
    let video = sandbox.add_file(MediaFile::generated(
        "big.mp4",
        "video/mp4",
        size_mb * MB,
        42,
    ));
    reset_peak();
    let t = Instant::now();
    sandbox
        .deliver_dm(DmSpec {
            media: Some(MediaSpec::video(&video.file_id)),
            ..DmSpec::text(CUSTOMER, "")
        })
        .await?;
    let att = sandbox
        .wait_until("the attachment", Duration::from_secs(600), |s| {
            s.attachments()
                .into_iter()
                .find(|a| a.role == ParticipantRole::Customer && a.completed)
        })
        .await?;
    assert_eq!(
        att.sha256.as_deref(),
        Some(video.sha256.as_str()),
        "bytes intact"
    );
    println!(
        "X → Connect: {size_mb} MB video relayed in {:.1} s, peak RSS {:.1} MB",
        t.elapsed().as_secs_f64(),
        peak_rss_mb()
    );

    // Connect → X
    sandbox.agent_accept(&chat.contact_id, "Enrique")?;
    let agent_file = sandbox.add_file(MediaFile::generated(
        "agent.mp4",
        "video/mp4",
        size_mb * MB,
        43,
    ));
    reset_peak();
    let t = Instant::now();
    sandbox.agent_send_attachment(
        &chat.contact_id,
        "agent.mp4",
        "video/mp4",
        &agent_file.file_id,
    )?;
    let dm = sandbox
        .wait_until("the DM", Duration::from_secs(600), |s| {
            s.sent_dms().into_iter().find(|d| d.media.is_some())
        })
        .await?;
    assert_eq!(
        dm.media.map(|m| m.sha256),
        Some(agent_file.sha256.clone()),
        "bytes intact"
    );
    println!(
        "Connect → X: {size_mb} MB video relayed in {:.1} s (chunked append + STATUS), peak RSS {:.1} MB",
        t.elapsed().as_secs_f64(),
        peak_rss_mb()
    );
    bridge.stop().await?;
    sandbox.shutdown();
    Ok(())
}
