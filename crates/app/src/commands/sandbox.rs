//! `xdm-connect sandbox`: the X + Amazon Connect emulator on its own, driven over HTTP
//! (`/_sandbox/…`, see the xdm-sandbox crate docs).
// A terminal command: printing to stdout is its job.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use xdm_sandbox::{Sandbox, SandboxConfig};

use crate::config::LogFormat;
use crate::telemetry;

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4566", env = "XDM_SANDBOX_LISTEN")]
    listen: SocketAddr,
    /// Register this X webhook (CRC-checked) at start.
    #[arg(long)]
    webhook: Option<String>,
    /// Subscribe this endpoint to the Connect SNS topic at start.
    #[arg(long)]
    sns_endpoint: Option<String>,
}

pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    telemetry::init(LogFormat::Text);
    let config = SandboxConfig {
        listen: args.listen,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config)
        .await
        .context("cannot start the sandbox")?;
    let sb = sandbox.config();
    println!("xdm-sandbox listening on {}", sandbox.base_url());
    println!();
    println!("Point a bridge at it with:");
    println!("  XDM_X_API_URL={}", sandbox.base_url());
    println!("  XDM_X_CONSUMER_KEY={}", sb.x.consumer_key);
    println!("  XDM_X_CONSUMER_SECRET={}", sb.x.consumer_secret);
    println!("  XDM_X_ACCESS_TOKEN={}", sb.x.access_token);
    println!("  XDM_X_ACCESS_TOKEN_SECRET={}", sb.x.access_token_secret);
    println!("  XDM_CONNECT_INSTANCE_ID={}", sb.connect.instance_id);
    println!(
        "  XDM_CONNECT_CONTACT_FLOW_ID={}",
        sb.connect.contact_flow_id
    );
    println!("  XDM_CONNECT_TOPIC_ARN={}", sandbox.sns_topic_arn());
    println!("  XDM_SNS_TRUSTED_CERT_URLS={}", sandbox.sns_cert_url());
    println!(
        "  AWS_REGION={} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test",
        sb.connect.region
    );
    println!(
        "  AWS_ENDPOINT_URL_CONNECT={0} AWS_ENDPOINT_URL_CONNECTPARTICIPANT={0}",
        sandbox.base_url()
    );
    println!();
    println!(
        "Control API: {}/_sandbox (see `cargo doc -p xdm-sandbox`)",
        sandbox.base_url()
    );

    if let Some(url) = &args.webhook {
        let crc = sandbox
            .set_webhook(url)
            .await
            .context("cannot register the webhook")?;
        println!(
            "webhook {url}: CRC {}",
            if crc.ok { "passed" } else { "FAILED" }
        );
    }
    if let Some(endpoint) = &args.sns_endpoint {
        // With the filter policy of a deployment: the customer's own messages are not sent.
        let sub = sandbox
            .subscribe_filtered(
                None,
                endpoint,
                Some(xdm_amazon_connect::sns::ECHO_FILTER_POLICY),
            )
            .await
            .context("cannot subscribe the SNS endpoint")?;
        match sandbox
            .wait_confirmed(&sub.subscription_arn, Duration::from_secs(10))
            .await
        {
            Ok(_) => println!(
                "SNS subscription {endpoint}: confirmed (filter policy: no echo of the customer's messages)"
            ),
            Err(e) => println!("SNS subscription {endpoint}: not confirmed ({e})"),
        }
    }
    crate::shutdown::signal().await;
    sandbox.shutdown();
    sandbox.stopped().await;
    Ok(())
}
