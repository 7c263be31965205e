//! `xdm-connect x chat-keys …`: the business account's X Chat keys (docs/xchat.md, "Keys").
//!
//! * `init` makes an identity and a signing key pair, registers their public keys with X as
//!   the business account (`POST /2/users/{id}/public_keys`, the two keys bound to each other
//!   by signatures) and keeps the private keys as a key blob: X's Chat SDK export format (the two
//!   P-256 scalars), base64, in the configuration file (`x.chat_keys`, with the version X
//!   recorded as `x.chat_key_version`; the file is written with mode 0600) — or, with
//!   `--print`, on standard output for a secret store (`XDM_X_CHAT_KEYS`, the Lambda secret's
//!   `chat_keys`).
//! * `import` takes a blob made elsewhere (X's SDK `export_keys`, base64) with the version its
//!   keys were registered under, checks that X serves those very keys for the account, and keeps
//!   it the same way.
//! * `show` prints the configured keys' fingerprint and version, and whether X serves them.
//!
//! The blob is never logged or put in an error; only `--print` shows it.
// A terminal command: printing to stdout is its job.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use xdm_core::ids::XUserId;
use xdm_x::chat::{ChatIdentity, register_public_keys, user_public_keys};
use xdm_xchat::ChatKeys;

use crate::commands::private_file::write_private;
use crate::config::DEFAULT_CONFIG_FILE;
use crate::x_link::XLink;

#[derive(Debug, Subcommand)]
pub enum ChatKeysCommand {
    /// Make new keys, register them with X and keep them (`x.chat_keys` in the configuration
    /// file, or `--print`).
    Init(KeepArgs),
    /// Keep keys made elsewhere: a blob from X's Chat SDK (`export_keys`, base64) and the
    /// version its public keys were registered under.
    Import(ImportArgs),
    /// The configured keys' fingerprint and version, and whether X serves them.
    Show(AccountArg),
}

#[derive(Debug, Args)]
pub struct AccountArg {
    /// The business account (default: the only one the bridge acts for).
    #[arg(long)]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct KeepArgs {
    #[command(flatten)]
    pub account: AccountArg,
    /// Print the settings (`XDM_X_CHAT_KEYS`, `XDM_X_CHAT_KEY_VERSION`) instead of writing them
    /// into the configuration file.
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub keep: KeepArgs,
    /// The key blob, base64 (read from standard input when omitted, so that it stays out of
    /// the shell's history).
    #[arg(long)]
    pub blob: Option<String>,
    /// The version X registered the blob's public keys under.
    #[arg(long)]
    pub version: String,
}

pub async fn run(
    config_path: Option<&Path>,
    link: &XLink,
    command: ChatKeysCommand,
) -> anyhow::Result<()> {
    match command {
        ChatKeysCommand::Init(args) => {
            let account = account(link, args.account.account.as_deref()).await?;
            let keys = ChatKeys::generate();
            let proposed = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let version =
                register_public_keys(&link.client, &account, &keys, &proposed.to_string())
                    .await
                    .context("X refused the public keys")?;
            let identity = ChatIdentity::new(keys, version)?;
            println!(
                "registered X Chat keys for account {account}: fingerprint {}, version {}",
                identity.fingerprint(),
                identity.key_version()
            );
            let listed = is_listed(link, &account);
            keep(
                config_path,
                listed.then_some(&account),
                &identity,
                args.print,
            )
        }
        ChatKeysCommand::Import(args) => {
            let account = account(link, args.keep.account.account.as_deref()).await?;
            let blob = match args.blob {
                Some(b) => b,
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("cannot read the key blob from standard input")?;
                    line
                }
            };
            let identity = ChatIdentity::from_blob_base64(&blob, args.version)?;
            check_registered(link, &account, &identity).await?;
            println!(
                "X serves these keys for account {account}: fingerprint {}, version {}",
                identity.fingerprint(),
                identity.key_version()
            );
            let listed = is_listed(link, &account);
            keep(
                config_path,
                listed.then_some(&account),
                &identity,
                args.keep.print,
            )
        }
        ChatKeysCommand::Show(args) => {
            let account = account(link, args.account.as_deref()).await?;
            let identity = match link.client.chat_identity(&account) {
                Ok(identity) => identity,
                Err(_) => bail!(
                    "no X Chat keys are configured for account {account} (XDM_X_CHAT_KEYS, or its \
                     [[x.accounts]] chat_keys): run `xdm-connect x chat-keys init`"
                ),
            };
            println!("fingerprint {}", identity.fingerprint());
            println!("version     {}", identity.key_version());
            match check_registered(link, &account, &identity).await {
                Ok(()) => println!("X serves them for account {account}"),
                Err(e) => println!("NOT served by X for account {account}: {e:#}"),
            }
            Ok(())
        }
    }
}

/// Whether `account` is one of `[[x.accounts]]` (its keys are kept in its entry), not the
/// default account.
fn is_listed(link: &XLink, account: &XUserId) -> bool {
    link.config
        .x
        .accounts
        .iter()
        .any(|a| a.user_id == account.as_str())
}

/// The account to act for: the one named, else the only one.
async fn account(link: &XLink, named: Option<&str>) -> anyhow::Result<XUserId> {
    if let Some(id) = named {
        return XUserId::parse(id.to_owned()).context("--account is not an X user id");
    }
    let accounts = link.business_accounts().await?;
    match accounts.as_slice() {
        [one] => Ok(one.id.clone()),
        _ => bail!(
            "the bridge acts for {} accounts: name one with --account",
            accounts.len()
        ),
    }
}

/// Whether X serves `identity`'s public keys, under its version, for `account`.
async fn check_registered(
    link: &XLink,
    account: &XUserId,
    identity: &ChatIdentity,
) -> anyhow::Result<()> {
    let served = user_public_keys(&link.client, account, account)
        .await
        .context("cannot read the account's public keys from X")?;
    let keys = identity.keys();
    match served.iter().find(|k| k.version == identity.key_version()) {
        Some(k) if k.identity == keys.identity_public() && k.signing == keys.signing_public() => {
            Ok(())
        }
        Some(_) => bail!(
            "X serves other public keys under version {} (the blob is not the one registered)",
            identity.key_version()
        ),
        None => bail!(
            "X serves no public keys of version {} for this account (versions served: {})",
            identity.key_version(),
            served
                .iter()
                .map(|k| k.version.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Prints the settings, or writes them into the configuration file (mode 0600): `x.chat_keys`
/// for the default account, the `chat_keys` of its `[[x.accounts]]` entry for a `listed` one.
fn keep(
    config_path: Option<&Path>,
    listed: Option<&XUserId>,
    identity: &ChatIdentity,
    print: bool,
) -> anyhow::Result<()> {
    let blob = STANDARD.encode(identity.keys().to_blob());
    if print {
        match listed {
            None => {
                println!("XDM_X_CHAT_KEYS={blob}");
                println!("XDM_X_CHAT_KEY_VERSION={}", identity.key_version());
            }
            Some(account) => {
                println!(
                    "# the [[x.accounts]] entry (or the Lambda secret's \"accounts\" item) of {account}:"
                );
                println!("chat_keys = \"{blob}\"");
                println!("chat_key_version = \"{}\"", identity.key_version());
            }
        }
        return Ok(());
    }
    let file = config_path.map_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE), Path::to_path_buf);
    let mut doc: toml::Table = match std::fs::read_to_string(&file) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("{} is not valid TOML", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let section = doc
        .entry("x")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(section) = section.as_table_mut() else {
        bail!("[x] in {} is not a table", file.display());
    };
    let (table, what) = match listed {
        None => (section, "x.chat_keys, x.chat_key_version".to_owned()),
        Some(account) => {
            let entry = section
                .get_mut("accounts")
                .and_then(toml::Value::as_array_mut)
                .and_then(|accounts| {
                    accounts.iter_mut().find(|a| {
                        a.get("user_id").and_then(toml::Value::as_str) == Some(account.as_str())
                    })
                })
                .and_then(toml::Value::as_table_mut);
            let Some(entry) = entry else {
                bail!(
                    "account {account} is not an [[x.accounts]] entry of {} (it may come from the \
                     environment or a secret): use --print and keep the keys there",
                    file.display()
                );
            };
            (
                entry,
                format!("chat_keys, chat_key_version of [[x.accounts]] {account}"),
            )
        }
    };
    table.insert("chat_keys".into(), toml::Value::String(blob));
    table.insert(
        "chat_key_version".into(),
        toml::Value::String(identity.key_version().to_owned()),
    );
    let text = toml::to_string(&doc).context("cannot write the configuration")?;
    write_private(&file, &text)?;
    println!(
        "kept in {} ({what}; mode 0600). Keep a copy of the file: without the keys, customers' \
         X Chat messages cannot be read",
        file.display()
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_made_elsewhere_is_kept_as_is() {
        // The blob of X's Chat SDK vectors (testdata/xchat-vectors.json, alice).
        let blob = "YwNTM8/rLkxJrajQY1oEqhYitLEpkmdBaACwEXo4BwkLIML9kuB+H/a5tNolMs/c9pyu55q7oezadEsn6FOEPQ==";
        let identity = ChatIdentity::from_blob_base64(blob, "1765382634817").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[x]\napi_url = \"http://127.0.0.1:1\"\n").unwrap();
        keep(Some(&file), None, &identity, false).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(&format!("chat_keys = \"{blob}\"")), "{text}");
        assert!(text.contains("chat_key_version = \"1765382634817\""));
        assert!(text.contains("api_url"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A further account's keys go into its own entry.
        std::fs::write(
            &file,
            "[[x.accounts]]\nuser_id = \"1000000000000000002\"\n[[x.accounts]]\nuser_id = \"7\"\n",
        )
        .unwrap();
        let billing = XUserId::parse("1000000000000000002").unwrap();
        keep(Some(&file), Some(&billing), &identity, false).unwrap();
        let doc: toml::Table = std::fs::read_to_string(&file).unwrap().parse().unwrap();
        let accounts = doc["x"]["accounts"].as_array().unwrap();
        assert_eq!(accounts[0]["chat_keys"].as_str(), Some(blob));
        assert!(accounts[1].get("chat_keys").is_none());
        assert!(doc["x"].get("chat_keys").is_none());
        let stranger = XUserId::parse("99").unwrap();
        assert!(keep(Some(&file), Some(&stranger), &identity, false).is_err());
        // A wrong length or not base64: refused without echoing it.
        let e = ChatIdentity::from_blob_base64("AAAA", "1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("AAAA"), "{e}");
        assert!(ChatIdentity::from_blob_base64(blob, "v1").is_err());
    }
}
