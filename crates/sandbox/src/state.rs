//! The state every route, task and handle of one sandbox shares: each emulated part's memory
//! behind its own lock, the fault settings, the event bus, the HTTP client and SNS signing
//! identity, and the runtime background tasks run on. Plain data: what the parts do with it lives
//! in their own modules.

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

use crate::clock;
use crate::config::SandboxConfig;
use crate::connect::state::ConnectState;
use crate::events::EventBus;
use crate::faults::FaultState;
use crate::ids::Snowflake;
use crate::media::registry::MediaState;
use crate::profiles::state::ProfilesState;
use crate::sns::signer::SnsSigner;
use crate::sns::state::SnsState;
use crate::x::state::XState;

/// Lock order, where two are held: `connect` before `sns`; `media`, `x` and `profiles` are never
/// held with another lock; `faults` is a leaf (nothing is locked while holding it). No lock is held
/// across an `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub cfg: SandboxConfig,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    pub x: Mutex<XState>,
    pub connect: Mutex<ConnectState>,
    pub sns: Mutex<SnsState>,
    /// Customer Profiles: the configured domains and their profiles.
    pub profiles: Mutex<ProfilesState>,
    /// Files, media paths and media GET records.
    pub media: Mutex<MediaState>,
    /// Fault settings and the call counters.
    pub faults: Mutex<FaultState>,
    pub events: EventBus,
    /// Client for calls to the bridge (webhook, SNS endpoints): no redirects, no proxy.
    pub http: reqwest::Client,
    pub signer: SnsSigner,
    pub snowflake: Snowflake,
    runtime: tokio::runtime::Handle,
    shutdown: watch::Sender<bool>,
    me: Weak<Shared>,
}

impl Shared {
    pub(crate) fn new(
        cfg: SandboxConfig,
        base_url: String,
        http: reqwest::Client,
        signer: SnsSigner,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        let (shutdown, _) = watch::channel(false);
        let faults = FaultState::new(cfg.fault_seed, clock::now_iso_ms());
        let profiles = ProfilesState::new(&cfg.profiles.domains);
        Arc::new_cyclic(|me| Self {
            cfg,
            base_url,
            x: Mutex::default(),
            connect: Mutex::default(),
            sns: Mutex::default(),
            profiles: Mutex::new(profiles),
            media: Mutex::default(),
            faults: Mutex::new(faults),
            events: EventBus::new(),
            http,
            signer,
            snowflake: Snowflake::default(),
            runtime,
            shutdown,
            me: me.clone(),
        })
    }

    /// This state as an `Arc` (for tasks spawned from `&self` methods).
    pub(crate) fn arc(&self) -> Option<Arc<Self>> {
        self.me.upgrade()
    }

    /// Runs `task` on the sandbox's runtime until it finishes or the sandbox shuts down.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut stop = self.shutdown.subscribe();
        self.runtime.spawn(async move {
            tokio::select! {
                () = task => {}
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
    }

    pub(crate) fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves when `shutdown` is called.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stop = self.shutdown.subscribe();
        async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        }
    }
}
