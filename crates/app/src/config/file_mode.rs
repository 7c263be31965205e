//! Whether the configuration file gives its secrets away: a file that holds a secret (an X
//! consumer or client secret, a token, the admin token) and that its group or every user may
//! read is reported — not refused, since the file is the operator's and `chmod 600` is theirs to
//! run. `setup` writes the file with mode 0600; this catches a copy or an edit that widened it.
//! The warning is carried in [`Config::file_warnings`](super::Config) (loading happens before
//! logging is set up): `serve` and `demo` log it at start, `doctor` prints it. Not unix: nothing
//! is checked.

use std::path::Path;

use super::file::FileConfig;

/// The warning for `path`, when it is readable by others and `file` holds a secret.
pub(super) fn secrets_readable_by_others(path: &Path, file: &FileConfig) -> Option<String> {
    let secrets = secret_keys(file);
    if secrets.is_empty() {
        return None;
    }
    let mode = mode_of(path)?;
    if mode & 0o044 == 0 {
        return None;
    }
    let who = if mode & 0o004 != 0 {
        "every user"
    } else {
        "its group"
    };
    Some(format!(
        "the configuration file {} holds secrets ({}) and is readable by {who} (mode {:o}): \
         run `chmod 600 {}`",
        path.display(),
        secrets.join(", "),
        mode & 0o777,
        path.display()
    ))
}

/// The keys of the secrets the file holds (names only, never values).
fn secret_keys(file: &FileConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if let Some(x) = &file.x {
        for (key, value) in [
            ("x.consumer_secret", &x.consumer_secret),
            ("x.access_token", &x.access_token),
            ("x.access_token_secret", &x.access_token_secret),
            ("x.bearer_token", &x.bearer_token),
            ("x.chat_keys", &x.chat_keys),
            ("x.client_secret", &x.client_secret),
        ] {
            if value.as_deref().is_some_and(|v| !v.trim().is_empty()) {
                keys.push(key);
            }
        }
        if x.accounts.as_ref().is_some_and(|a| !a.is_empty()) {
            keys.push("x.accounts");
        }
    }
    if file
        .admin
        .as_ref()
        .and_then(|a| a.token.as_deref())
        .is_some_and(|v| !v.trim().is_empty())
    {
        keys.push("admin.token");
    }
    keys
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn mode_of(_path: &Path) -> Option<u32> {
    None
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::config::Config;

    fn load(path: &std::path::Path) -> Config {
        Config::load_with(Some(path), &|_| None).unwrap()
    }

    fn chmod(path: &std::path::Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_file_holding_secrets_that_others_may_read_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xdm-connect.toml");
        std::fs::write(
            &path,
            "[x]\nconsumer_key = \"key\"\nconsumer_secret = \"s3cr3t-value\"\n[admin]\ntoken = \"another-s3cr3t-value\"\n",
        )
        .unwrap();

        chmod(&path, 0o644);
        let warnings = load(&path).file_warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let w = &warnings[0];
        assert!(w.contains(&path.display().to_string()), "{w}");
        assert!(w.contains("x.consumer_secret, admin.token"), "{w}");
        assert!(w.contains("every user") && w.contains("chmod 600"), "{w}");
        assert!(
            !w.contains("s3cr3t"),
            "a secret's value in the warning: {w}"
        );

        chmod(&path, 0o640);
        let warnings = load(&path).file_warnings;
        assert!(warnings[0].contains("its group"), "{warnings:?}");

        chmod(&path, 0o600);
        assert!(load(&path).file_warnings.is_empty());
    }

    #[test]
    fn a_readable_file_without_secrets_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xdm-connect.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:8081\"\n[x]\nconsumer_key = \"public-ish\"\nconsumer_secret = \"\"\n",
        )
        .unwrap();
        chmod(&path, 0o644);
        assert!(load(&path).file_warnings.is_empty());
    }
}
