//! The instance lock: one delivering process per SQLite file.
//!
//! Why: a process that delivers starts by releasing every claim it finds (`Store::release_claims`:
//! on a file only one process delivers from, a claim can only be a dead predecessor's). A second
//! `serve` on the same file would thereby take over the jobs the first is still running and send
//! them again. So the processes that deliver (`serve`, `demo`) take an exclusive lock on
//! `<database>.lock` next to the database before anything else — before they bind a port or open
//! the store — and a second one fails at once with an error naming the first ("another
//! xdm-connect (pid 1234 on host, started …) is serving …").
//!
//! The lock is an OS file lock held through an open file ([`std::fs::File::try_lock`]: `flock` on
//! unix, `LockFileEx` on Windows; no crate needed since Rust 1.89): it ends with the process
//! however the process ends, `kill -9` included, so no stale lock is ever left to clean up. The
//! file itself stays (removing it would race with a process that has just opened it); after
//! taking the lock the holder writes its pid, host and start time into it as JSON, for the
//! refusal message and `doctor`. It is created with mode 0600.
//!
//! What it does not cover: a network file system whose locks do not reach every client (keep the
//! store on a local disk; SQLite's WAL mode needs one anyway), and the same database reached
//! through another name (a hard link or a symlink has another lock file). Commands that only read
//! or make single conditional changes (`inbox`, `doctor`, `x …`) do not take the lock: their
//! statements stay correct beside a running `serve`. `doctor` asks [`InstanceLock::state`], which
//! takes a shared lock and drops it at once; [`InstanceLock::acquire`] tries again for a moment,
//! so that this probe never makes a starting `serve` fail.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::access;
use crate::OpenError;

/// How often, and how far apart, a held lock is tried again before giving up (a `doctor` probe
/// holds it for microseconds; a process that has it holds it until it exits).
const ATTEMPTS: u32 = 10;
const PAUSE: Duration = Duration::from_millis(25);

/// Who holds the lock, as it wrote itself into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    /// RFC 3339, UTC.
    pub started_at: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {}, started {}",
            self.pid, self.host, self.started_at
        )
    }
}

/// Whether a delivering process holds a database's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// No process holds it (or there is no lock file yet).
    Free,
    /// Held; by this holder when its lock file could be read.
    Held(Option<LockHolder>),
}

/// The exclusive lock of one SQLite database file, held until dropped (or the process ends).
#[derive(Debug)]
pub struct InstanceLock {
    /// Holding the open file holds the lock.
    _file: File,
    path: PathBuf,
    holder: LockHolder,
}

impl InstanceLock {
    /// The lock file of `database`: its name with `.lock` appended.
    pub fn path_for(database: &Path) -> PathBuf {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of `database` (the file need not exist; its directory must, and must not
    /// be writable by every user). Blocking: up to [`ATTEMPTS`] × [`PAUSE`] when it is held.
    /// [`OpenError::Locked`] names the process that holds it.
    pub fn acquire(database: &Path) -> Result<Self, OpenError> {
        let location = database.display().to_string();
        if database.as_os_str().is_empty() {
            return Err(OpenError::EmptyPath);
        }
        // Refusals only: the store's open, right after, logs the warnings (and keeps them for
        // `doctor`).
        access::check_location(database, &location)?;
        let path = Self::path_for(database);
        let io = |source: std::io::Error| OpenError::Lock {
            location: location.clone(),
            lock_file: path.display().to_string(),
            source,
        };
        let mut file = open_lock_file(&path).map_err(io)?;
        let mut attempt = 1;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if attempt < ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(PAUSE);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(OpenError::Locked {
                        location,
                        holder: read_holder(&path),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        let holder = LockHolder {
            pid: std::process::id(),
            host: host_name(),
            started_at: now_rfc3339(),
        };
        let json = serde_json::to_vec(&holder).map_err(|e| io(std::io::Error::other(e)))?;
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&json).map_err(io)?;
        tracing::debug!(lock_file = %path.display(), %holder, "instance lock taken");
        Ok(Self {
            _file: file,
            path,
            holder,
        })
    }

    /// Whether a process holds the lock of `database`, without keeping it: a shared lock taken
    /// and dropped at once (see the module docs). No lock file: free.
    pub fn state(database: &Path) -> std::io::Result<LockState> {
        let path = Self::path_for(database);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockState::Free),
            Err(e) => return Err(e),
        };
        match file.try_lock_shared() {
            Ok(()) => {
                file.unlock()?;
                Ok(LockState::Free)
            }
            Err(TryLockError::WouldBlock) => Ok(LockState::Held(read_holder(&path))),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This process, as written into the lock file.
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }
}

/// Opens (creating it with mode 0600) the lock file without truncating it: the holder's record
/// must stay readable until the lock is ours.
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    access::tighten(path)?;
    Ok(file)
}

/// The holder's record; `None` if it cannot be read (a holder that is writing it right now is
/// waited for a moment; a process of an older build wrote none).
fn read_holder(path: &Path) -> Option<LockHolder> {
    for _ in 0..ATTEMPTS {
        let mut text = String::new();
        if File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .is_ok()
            && let Ok(holder) = serde_json::from_str(&text)
        {
            return Some(holder);
        }
        std::thread::sleep(PAUSE);
    }
    None
}

fn host_name() -> String {
    #[cfg(unix)]
    {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown host".to_owned())
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "at an unknown time".to_owned())
}
