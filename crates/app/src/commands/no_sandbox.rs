//! `demo` and `sandbox` in a build without the `sandbox` feature (the production builds): the
//! commands are still recognised, so the answer says why they cannot run instead of "unrecognized
//! subcommand".

use clap::Args;

/// Whatever was passed to a command this build does not have.
#[derive(Debug, Args)]
pub struct NotBuilt {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

/// The error `demo` and `sandbox` end with in this build.
pub fn not_built(command: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`xdm-connect {command}` needs the built-in sandboxes, which this build leaves out \
         (built with --no-default-features, as production builds are); build with the default \
         features, e.g. `cargo run -- {command}`"
    )
}
