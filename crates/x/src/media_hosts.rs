//! The media host allow-list (`XDM_X_MEDIA_HOSTS`, README, Configuration): the only places DM media is
//! downloaded from, redirects included.
//!
//! The setting is a comma-separated list of `host[:port]` entries (default: X's media hosts
//! `ton.twitter.com`, `pbs.twimg.com`, `video.twimg.com`). Downloads use https only, except that
//! an entry written with an explicit `http://` scheme (`http://127.0.0.1:4566`, for local
//! emulators) also allows plain http for that one host. Hosts compare case-insensitively; an
//! entry with a port allows only that port, an entry without one only the scheme's default port
//! (so `pbs.twimg.com:443` is the same entry as `pbs.twimg.com`). No wildcards, no paths.

use std::fmt;
use std::str::FromStr;

use url::Url;

/// The setting that lists the allowed media hosts.
pub const MEDIA_HOSTS_SETTING: &str = "XDM_X_MEDIA_HOSTS";

/// X's media hosts (docs/protocols.md A6): TON photos, twimg GIFs, videos and previews.
pub const DEFAULT_MEDIA_HOSTS: [&str; 3] = ["ton.twitter.com", "pbs.twimg.com", "video.twimg.com"];

/// A `XDM_X_MEDIA_HOSTS` value that cannot work. The message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaHostsError {
    #[error(
        "{MEDIA_HOSTS_SETTING} is empty: list at least one media host (the default is {})",
        DEFAULT_MEDIA_HOSTS.join(",")
    )]
    Empty,
    #[error("{MEDIA_HOSTS_SETTING} entry {entry:?} is not a usable host[:port]: {reason}")]
    Entry { entry: String, reason: String },
}

/// One allowed host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHost {
    /// As `url` normalises it: lower case, IDNA, IPv6 in brackets.
    host: String,
    /// `None`: the scheme's default port only.
    port: Option<u16>,
    /// Written with `http://`: plain http is allowed too.
    plain_http: bool,
}

impl MediaHost {
    /// Reads one entry: `host`, `host:port`, `https://host[:port]` or `http://host[:port]`.
    pub fn parse(entry: &str) -> Result<Self, MediaHostsError> {
        let entry = entry.trim();
        // An entry with credentials in it is shown without them.
        let shown = match entry.rsplit_once('@') {
            Some((_, rest)) => format!("…@{rest}"),
            None => entry.to_owned(),
        };
        let bad = |reason: &str| MediaHostsError::Entry {
            entry: shown.clone(),
            reason: reason.to_owned(),
        };
        if entry.is_empty() {
            return Err(bad("it is empty"));
        }
        if entry.contains('*') {
            return Err(bad("wildcards are not supported; list each host"));
        }
        let (plain_http, candidate) = match entry.split_once("://") {
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => (false, entry.to_owned()),
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => (true, entry.to_owned()),
            Some(_) => return Err(bad("the scheme can only be https:// or http://")),
            None => (false, format!("https://{entry}")),
        };
        let url = Url::parse(&candidate).map_err(|e| bad(&e.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("it must not carry credentials"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "it must be a host and an optional port, without a path",
            ));
        }
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_ascii_lowercase(),
            _ => return Err(bad("it has no host")),
        };
        Ok(Self {
            host,
            port: url.port(),
            plain_http,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when the entry names one other than the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the entry was written with `http://` (plain http allowed for this host).
    pub fn allows_plain_http(&self) -> bool {
        self.plain_http
    }

    /// Whether `url` may be fetched under this entry.
    pub fn allows(&self, url: &Url) -> bool {
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => self.plain_http,
            _ => false,
        };
        if !scheme_ok || !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        if !url
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
        {
            return false;
        }
        match self.port {
            Some(port) => url.port_or_known_default() == Some(port),
            // `Url::port` is `None` exactly when the URL uses its scheme's default port.
            None => url.port().is_none(),
        }
    }
}

impl fmt::Display for MediaHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.plain_http {
            f.write_str("http://")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// The allowed media hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaHosts {
    entries: Vec<MediaHost>,
}

impl MediaHosts {
    /// Reads a `XDM_X_MEDIA_HOSTS` value: comma-separated entries, blanks around them ignored.
    pub fn parse(setting: &str) -> Result<Self, MediaHostsError> {
        let entries = setting
            .split(',')
            .filter(|e| !e.trim().is_empty())
            .map(MediaHost::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if entries.is_empty() {
            return Err(MediaHostsError::Empty);
        }
        Ok(Self { entries })
    }

    /// X's own media hosts ([`DEFAULT_MEDIA_HOSTS`]).
    pub fn x_defaults() -> Self {
        Self {
            entries: DEFAULT_MEDIA_HOSTS
                .iter()
                .map(|h| MediaHost {
                    host: (*h).to_owned(),
                    port: None,
                    plain_http: false,
                })
                .collect(),
        }
    }

    pub fn entries(&self) -> &[MediaHost] {
        &self.entries
    }

    /// Whether `url` may be fetched: https (or http for an `http://` entry) on a listed host and
    /// port, without credentials in the URL.
    pub fn allows(&self, url: &Url) -> bool {
        self.entries.iter().any(|e| e.allows(url))
    }
}

impl Default for MediaHosts {
    fn default() -> Self {
        Self::x_defaults()
    }
}

impl FromStr for MediaHosts {
    type Err = MediaHostsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The setting's form (`ton.twitter.com,pbs.twimg.com,http://127.0.0.1:4566`).
impl fmt::Display for MediaHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{entry}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn defaults_are_x_media_hosts_over_https() {
        let hosts = MediaHosts::default();
        assert_eq!(
            hosts.to_string(),
            "ton.twitter.com,pbs.twimg.com,video.twimg.com"
        );
        assert_eq!(
            MediaHosts::parse("ton.twitter.com, pbs.twimg.com ,video.twimg.com").unwrap(),
            hosts
        );
        for ok in [
            "https://ton.twitter.com/1.1/ton/data/dm/1547580822294646788/1547580751654203394/T7xt1pvd.jpg",
            "https://pbs.twimg.com/dm_gif/762712152901836804/D48bbEKGhPr2F3kDOH2mhzlD3fBZuxcngHkBwcSfLvgLLUbCOS.mp4",
            "https://video.twimg.com/dm_video/762671519986319360/vid/720x1280/cVTnZqWOdFPmGS_h9AjvW3m4NqWPkQCDsXc9VOx3kIQ.mp4?tag=1",
            "https://PBS.TWIMG.COM/x.jpg",
            "https://pbs.twimg.com:443/x.jpg",
        ] {
            assert!(hosts.allows(&url(ok)), "{ok}");
        }
        for refused in [
            "http://ton.twitter.com/1.1/ton/data/dm/1/2/x.jpg",
            "https://evil.example/x.jpg",
            "https://pbs.twimg.com.evil.example/x.jpg",
            "https://twimg.com/x.jpg",
            "https://abs.twimg.com/x.jpg",
            "https://pbs.twimg.com:8443/x.jpg",
            "https://user:pw@pbs.twimg.com/x.jpg",
            "ftp://pbs.twimg.com/x.jpg",
            "file:///etc/passwd",
        ] {
            assert!(!hosts.allows(&url(refused)), "{refused}");
        }
    }

    #[test]
    fn entries_with_ports_and_schemes() {
        let hosts = MediaHosts::parse(
            "Ton.Twitter.com, pbs.twimg.com:443, media.example:8443, http://127.0.0.1:4566, HTTP://LocalHost, https://[::1]:9000/",
        )
        .unwrap();
        assert_eq!(
            hosts.to_string(),
            "ton.twitter.com,pbs.twimg.com,media.example:8443,http://127.0.0.1:4566,http://localhost,[::1]:9000"
        );
        let e = &hosts.entries()[3];
        assert_eq!(
            (e.host(), e.port(), e.allows_plain_http()),
            ("127.0.0.1", Some(4566), true)
        );

        for ok in [
            "https://ton.twitter.com/x",
            "https://media.example:8443/x",
            "http://127.0.0.1:4566/1.1/ton/data/dm/1/2/x.jpg",
            "https://127.0.0.1:4566/x",
            "http://localhost/x",
            "http://LOCALHOST:80/x",
            "https://localhost/x",
            "https://[::1]:9000/x",
        ] {
            assert!(hosts.allows(&url(ok)), "{ok}");
        }
        for refused in [
            // An https-only entry does not allow http, whatever the port.
            "http://ton.twitter.com/x",
            "http://media.example:8443/x",
            // The port must match the entry's, or be the default when the entry has none.
            "https://media.example/x",
            "https://media.example:8444/x",
            "http://127.0.0.1/x",
            "http://127.0.0.1:4567/x",
            "http://localhost:4566/x",
            "https://ton.twitter.com:8443/x",
            "https://[::1]/x",
            // Another host on the same address.
            "http://127.0.0.2:4566/x",
        ] {
            assert!(!hosts.allows(&url(refused)), "{refused}");
        }
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "*.twimg.com",
            "ftp://pbs.twimg.com",
            "pbs.twimg.com/dm_video",
            "https://pbs.twimg.com/?a=1",
            "user:pw@pbs.twimg.com",
            "pbs.twimg.com:99999",
            "http://",
            "exa mple.com",
        ] {
            let e = MediaHosts::parse(&format!("ton.twitter.com,{bad}")).unwrap_err();
            assert!(matches!(e, MediaHostsError::Entry { .. }), "{bad}: {e:?}");
            let shown = e.to_string();
            assert!(shown.starts_with("XDM_X_MEDIA_HOSTS entry "), "{shown}");
            assert!(!shown.contains("pw"), "{shown}");
        }
        for empty in ["", " ", ", ,"] {
            let e = MediaHosts::parse(empty).unwrap_err();
            assert_eq!(e, MediaHostsError::Empty);
            assert_eq!(
                e.to_string(),
                "XDM_X_MEDIA_HOSTS is empty: list at least one media host (the default is ton.twitter.com,pbs.twimg.com,video.twimg.com)"
            );
        }
        assert!("pbs.twimg.com".parse::<MediaHosts>().is_ok());
    }
}
