//! `xdm-connect inbox list|retry`: what was accepted and what became of it.
// A terminal command: printing to stdout is its job.
#![allow(clippy::print_stdout)]

use std::path::Path;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use xdm_core::engine::{FailedJobs, retry_failed_jobs};
use xdm_core::jobs::{JobKey, JobQueue, JobState};
use xdm_core::ports::{Clock, Store, SystemClock};

use crate::config::Config;
use crate::wiring::open_store;

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// List accepted events (newest last).
    List(ListArgs),
    /// Put failed events back in line for delivery.
    Retry(RetryArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum QueueArg {
    /// X → Connect.
    Inbound,
    /// Connect → X.
    Outbound,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StateArg {
    Pending,
    Processing,
    Done,
    Failed,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value = "inbound")]
    queue: QueueArg,
    /// Only events in this state (default: all).
    #[arg(long, value_enum)]
    state: Option<StateArg>,
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    #[arg(long, value_enum, default_value = "inbound")]
    queue: QueueArg,
    /// Keys of the events to retry (as printed by `inbox list`).
    keys: Vec<String>,
    /// Retry every failed event of the queue.
    #[arg(long, conflicts_with = "keys")]
    all_failed: bool,
}

fn queue(q: QueueArg) -> JobQueue {
    match q {
        QueueArg::Inbound => JobQueue::Inbound,
        QueueArg::Outbound => JobQueue::Outbound,
    }
}

fn state(s: StateArg) -> JobState {
    match s {
        StateArg::Pending => JobState::Pending,
        StateArg::Processing => JobState::Processing,
        StateArg::Done => JobState::Done,
        StateArg::Failed => JobState::Failed,
    }
}

pub async fn run(config_path: Option<&Path>, cmd: InboxCommand) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let store = open_store(&config.store, None).await?;
    match cmd {
        InboxCommand::List(args) => {
            let jobs = store
                .jobs(queue(args.queue), args.state.map(state), args.limit)
                .await?;
            println!(
                "{:<44} {:<10} {:>8}  last error",
                "key", "state", "attempts"
            );
            for j in &jobs {
                println!(
                    "{:<44} {:<10} {:>8}  {}",
                    j.key,
                    j.state.as_str(),
                    j.attempts,
                    j.last_error.as_deref().unwrap_or("")
                );
            }
            println!("{} event(s)", jobs.len());
        }
        InboxCommand::Retry(args) => {
            let which = if args.all_failed {
                FailedJobs::All
            } else if args.keys.is_empty() {
                bail!("name the events to retry, or pass --all-failed");
            } else {
                FailedJobs::Keys(
                    args.keys
                        .into_iter()
                        .map(|key| JobKey::parse(key).context("not an event key"))
                        .collect::<anyhow::Result<_>>()?,
                )
            };
            let done = retry_failed_jobs(&store, queue(args.queue), which, SystemClock.now_ms())
                .await
                .context("cannot retry the failed events")?;
            for key in &done.left_alone {
                println!("{key}: not a failed event, left alone");
            }
            println!(
                "{} event(s) put back in line; a running bridge delivers them within a second",
                done.retried.len()
            );
        }
    }
    Ok(())
}
