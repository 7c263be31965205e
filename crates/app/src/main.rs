//! `xdm-connect`: the bridge between X Direct Messages and Amazon Connect Chat.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use xdm_app::{async_runtime, commands};

#[derive(Debug, Parser)]
#[command(
    name = "xdm-connect",
    version,
    about = "Bridge between X Direct Messages and Amazon Connect Chat"
)]
struct Cli {
    /// Configuration file (TOML). Default: ./xdm-connect.toml when it exists. XDM_* environment
    /// variables override it.
    #[arg(long, global = true, env = "XDM_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the bridge: X webhooks on /webhooks/x, the Connect SNS subscription on /webhooks/connect.
    Serve,
    /// Run the bridge wired to built-in X and Amazon Connect sandboxes, and play the customer and
    /// the agent from this terminal. Needs no account and no configuration.
    #[cfg(feature = "sandbox")]
    Demo(commands::demo::DemoArgs),
    /// Run the X + Amazon Connect sandbox alone (for tests, load generators, other emulators).
    #[cfg(feature = "sandbox")]
    Sandbox(commands::sandbox::SandboxArgs),
    /// Not in this build (built without the `sandbox` feature).
    #[cfg(not(feature = "sandbox"))]
    #[command(hide = true)]
    Demo(commands::no_sandbox::NotBuilt),
    /// Not in this build (built without the `sandbox` feature).
    #[cfg(not(feature = "sandbox"))]
    #[command(hide = true)]
    Sandbox(commands::no_sandbox::NotBuilt),
    /// Run as an AWS Lambda function (what `bootstrap`, the same binary renamed, does by itself).
    Lambda,
    /// Check the configuration, the store, and (unless --offline) X, Amazon Connect and SNS;
    /// one line per check with its fix. Exit code 1 on any failure.
    Doctor(commands::doctor::DoctorArgs),
    /// Go live: write the configuration, log in to X, register the webhook (or use the stream),
    /// subscribe, check everything, and list the Amazon Connect console steps left.
    Setup(Box<commands::setup::SetupArgs>),
    /// X: OAuth 2.0 login, webhook, subscriptions, replay, catch-up.
    #[command(subcommand)]
    X(commands::x::XCommand),
    /// Inspect and re-drive accepted events.
    #[command(subcommand)]
    Inbox(commands::inbox::InboxCommand),
}

fn main() -> ExitCode {
    // On Lambda (provided.al2023) this binary is the function's `bootstrap`, started without
    // arguments.
    let invoked_as_bootstrap = std::env::args_os()
        .next()
        .and_then(|a| PathBuf::from(a).file_name().map(|n| n == "bootstrap"))
        .unwrap_or(false);
    let cli = if invoked_as_bootstrap {
        Cli {
            config: None,
            command: Command::Lambda,
        }
    } else {
        Cli::parse()
    };
    let runtime = match async_runtime::build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = cli.config.as_deref();
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => commands::serve::run(config).await,
            #[cfg(feature = "sandbox")]
            Command::Demo(args) if args.web => commands::demo_web::run(args).await,
            #[cfg(feature = "sandbox")]
            Command::Demo(args) => commands::demo::run(args).await,
            #[cfg(feature = "sandbox")]
            Command::Sandbox(args) => commands::sandbox::run(args).await,
            #[cfg(not(feature = "sandbox"))]
            Command::Demo(_) => Err(commands::no_sandbox::not_built("demo")),
            #[cfg(not(feature = "sandbox"))]
            Command::Sandbox(_) => Err(commands::no_sandbox::not_built("sandbox")),
            Command::Lambda => xdm_app::lambda::run().await,
            Command::Doctor(args) => commands::doctor::run(config, args).await,
            Command::Setup(args) => commands::setup::run(config, *args).await,
            Command::X(cmd) => Box::pin(commands::x::run(config, cmd)).await,
            Command::Inbox(cmd) => commands::inbox::run(config, cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
