//! `xdm-connect doctor`: says what the configuration lacks before X or Connect find out.
// A terminal command: printing to stdout is its job.
#![allow(clippy::print_stdout)]

use std::path::Path;

use aws_config::BehaviorVersion;
use xdm_core::jobs::{JobState, Queue};
use xdm_core::ports::Store;

use crate::config::Config;
use crate::wiring::{ConnectPort, XPort, open_store, sns_verifier};

pub async fn run(config_path: Option<&Path>) -> anyhow::Result<()> {
    let mut problems = 0;
    let mut report = |ok: bool, what: &str, detail: String| {
        println!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            problems += 1;
        }
    };

    let config = match Config::load(config_path) {
        Ok(c) => {
            report(true, "configuration", "read".to_owned());
            c
        }
        Err(e) => {
            report(false, "configuration", e.to_string());
            anyhow::bail!("the configuration cannot be read");
        }
    };

    report(
        config.webhook_secret().is_some(),
        "X webhooks (CRC, signatures)",
        if config.webhook_secret().is_some() {
            "consumer secret set".into()
        } else {
            "XDM_X_CONSUMER_SECRET is not set".into()
        },
    );
    let x = XPort::from_config(&config);
    report(
        x.problem().is_none(),
        "X API client",
        x.problem()
            .map_or_else(|| config.x.api_url.clone(), str::to_owned),
    );

    let region = aws_config::meta::region::RegionProviderChain::default_provider()
        .region()
        .await;
    report(
        region.is_some(),
        "AWS region",
        region
            .as_ref()
            .map_or_else(|| "not set: set AWS_REGION".to_owned(), ToString::to_string),
    );
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let connect = ConnectPort::from_config(&config, Some(&sdk));
    report(
        connect.problem().is_none(),
        "Amazon Connect client",
        connect.problem().unwrap_or("configured").to_owned(),
    );
    match sns_verifier(&config) {
        Ok(Some(v)) => report(
            true,
            "SNS subscription",
            format!("accepts topic {}", v.topic_arn()),
        ),
        Ok(None) => report(
            false,
            "SNS subscription",
            "XDM_CONNECT_TOPIC_ARN is not set".to_owned(),
        ),
        Err(e) => report(false, "SNS subscription", e.to_string()),
    }

    match open_store(&config.store, None).await {
        Ok(store) => {
            let failed = store
                .jobs(Queue::Inbound, Some(JobState::Failed), 1000)
                .await?
                .len()
                + store
                    .jobs(Queue::Outbound, Some(JobState::Failed), 1000)
                    .await?
                    .len();
            report(
                true,
                "store",
                format!(
                    "{} ({failed} failed event(s); see `xdm-connect inbox list --state failed`)",
                    config.store
                ),
            );
        }
        Err(e) => report(false, "store", format!("{}: {e:#}", config.store)),
    }

    println!();
    println!("Point X's webhook at   https://<your host>/webhooks/x");
    println!(
        "Subscribe the SNS topic https://<your host>/webhooks/connect (HTTPS, raw message delivery off)"
    );
    if problems > 0 {
        anyhow::bail!("{problems} problem(s) found");
    }
    println!("all good");
    Ok(())
}
