//! `xdm-connect demo --web`: the demo's world (the bridge wired to the X and Connect sandboxes)
//! played from a browser page served on loopback — the customer on X, the agent in Connect,
//! and what crossed the wire.
//!
//! The page only calls this server's small API, and the API only does what the terminal demo
//! does: the customer's DMs go out through the sandbox's X (which delivers them to the bridge's
//! webhook over HTTP), the X Chat customer encrypts with X's protocol on her own keys, the agent
//! acts through the sandbox's Connect. Nothing reaches the bridge except over its public
//! endpoints. The page itself is one embedded HTML file: no CDN, no build step, works offline.
// A terminal command: printing the URL to stdout is its job.
#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use xdm_sandbox::{ContactView, DmSpec, MediaFile, MediaSpec, SandboxEvent, SandboxHandle};

use super::demo::DemoArgs;
use super::demo_world::{
    BILLING_ID, BILLING_NAME, CHAT_CUSTOMER_HANDLE, CHAT_CUSTOMER_ID, CHAT_CUSTOMER_NAME,
    CUSTOMER_ID, World,
};

const PAGE: &str = include_str!("demo_web/page.html");
/// A small picture the page offers as "a sample photo" (drawn for this project).
const SAMPLE_PNG: &[u8] = include_bytes!("demo_web/sample.png");

/// How often the feed looks for new sandbox events and for answers the X Chat customer's device
/// opened.
const FEED_POLL: Duration = Duration::from_millis(100);
/// Feed entries kept for pages that connect later (a reload replays them).
const FEED_CAPACITY: usize = 5_000;
/// The largest file the page may send (base64 in JSON).
const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// Runs the web demo until Ctrl-C.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    super::demo_world::init_logs();
    let demo = WebDemo::start(args).await?;
    println!("xdm-connect demo in a browser: open {}", demo.url);
    if let Some(admin) = &demo.world.running.admin_base {
        println!(
            "  operator page {admin}/   (admin token: {})",
            crate::sandbox_link::SANDBOX_ADMIN_TOKEN
        );
    }
    println!(
        "  sandbox       {}   (X API + Amazon Connect + SNS)",
        demo.world.sandbox.base_url()
    );
    println!("  (the bridge, X and Amazon Connect sandboxes run in this process; Ctrl-C stops)");
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    demo.stop().await
}

/// A running web demo: the world, and the page's server in front of it.
struct WebDemo {
    /// The page's URL, `http://127.0.0.1:PORT/`.
    url: String,
    world: World,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    feeder: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for WebDemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebDemo")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WebDemo {
    /// Starts the demo's world and serves its page on `args.web_listen`, which must be a
    /// loopback address.
    async fn start(args: DemoArgs) -> anyhow::Result<Self> {
        if !args.web_listen.ip().is_loopback() {
            anyhow::bail!(
                "--web-listen {} is not a loopback address: the demo page has no login, so it is served on loopback only",
                args.web_listen
            );
        }
        let world = World::start(&args.customer_name, &args.customer_handle).await?;
        let feed = Arc::new(Feed::default());
        let feeder = tokio::spawn(feed_loop(
            world.sandbox.clone(),
            Arc::clone(&world.chat_customer),
            Arc::clone(&feed),
        ));
        let state = AppState {
            sandbox: world.sandbox.clone(),
            chat_customer: Arc::clone(&world.chat_customer),
            feed,
            agent_name: args.agent_name.clone(),
            customer: Party {
                id: CUSTOMER_ID.to_owned(),
                name: args.customer_name.clone(),
                handle: args.customer_handle.clone(),
            },
            accounts: accounts(&world.sandbox),
            operator_page: world.running.admin_base.as_ref().map(|a| format!("{a}/")),
        };
        let listener = tokio::net::TcpListener::bind(args.web_listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.web_listen))?;
        let addr: SocketAddr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, router(state))
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "the demo page's server stopped");
            }
        });
        Ok(Self {
            url: format!("http://{addr}/"),
            world,
            stop,
            server,
            feeder,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        // Open event streams keep a graceful shutdown waiting: give it a moment, then stop.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.server).await;
        self.feeder.abort();
        self.world.running.stop().await?;
        self.world.sandbox.shutdown();
        Ok(())
    }
}

#[derive(Clone)]
struct AppState {
    sandbox: SandboxHandle,
    chat_customer: Arc<tokio::sync::Mutex<super::demo_chat_customer::ChatCustomer>>,
    feed: Arc<Feed>,
    agent_name: String,
    customer: Party,
    /// The business accounts, the main one first, with the `to` that writes to each.
    accounts: Vec<Account>,
    /// The bridge's operator page (its admin listener).
    operator_page: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Account {
    id: String,
    name: String,
    /// What `POST /api/customer` takes as `to` for a DM to this account.
    to: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct Party {
    id: String,
    name: String,
    handle: String,
}

fn accounts(sandbox: &SandboxHandle) -> Vec<Account> {
    let main = &sandbox.config().x.business;
    vec![
        Account {
            id: main.id.clone(),
            name: main.name.clone(),
            to: "support",
        },
        Account {
            id: BILLING_ID.to_owned(),
            name: BILLING_NAME.to_owned(),
            to: "billing",
        },
    ]
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/sample.png", get(sample_png))
        .route("/api/world", get(world_view))
        .route("/api/contacts", get(contacts))
        .route("/api/events", get(events))
        .route("/api/customer", post(customer_writes))
        .route("/api/customer/typing", post(customer_types))
        .route("/api/customer/read", post(customer_reads))
        .route("/api/agent", post(agent_acts))
        // Base64 of the largest file plus the JSON around it.
        .layer(axum::extract::DefaultBodyLimit::max(
            MAX_FILE_BYTES / 3 * 4 + 64 * 1024,
        ))
        .with_state(state)
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response()
}

async fn sample_png() -> Response {
    ([(header::CONTENT_TYPE, "image/png")], SAMPLE_PNG).into_response()
}

/// Who is who: the customers the page plays and the business accounts they write to.
async fn world_view(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "customer": state.customer,
        "chat_customer": Party {
            id: CHAT_CUSTOMER_ID.to_owned(),
            name: CHAT_CUSTOMER_NAME.to_owned(),
            handle: CHAT_CUSTOMER_HANDLE.to_owned(),
        },
        "accounts": state.accounts,
        "agent": state.agent_name,
        "operator_page": state.operator_page,
    }))
}

/// Every chat as Connect's sandbox holds it (attributes, transcript, agent).
async fn contacts(State(state): State<AppState>) -> Json<Vec<ContactView>> {
    Json(state.sandbox.contacts())
}

/// The feed as server-sent events: everything since `Last-Event-ID` (a reconnect) or from the
/// start, then live.
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let feed = Arc::clone(&state.feed);
    let changed = feed.changed.subscribe();
    let stream = futures_util::stream::unfold(
        (feed, changed, since, Vec::<FeedEntry>::new()),
        |(feed, mut changed, mut since, mut pending)| async move {
            loop {
                if let Some(entry) = pending.pop() {
                    let event = Event::default()
                        .id(entry.seq.to_string())
                        .event(entry.kind)
                        .data(entry.data.to_string());
                    return Some((Ok(event), (feed, changed, since, pending)));
                }
                let mut fresh = feed.since(since);
                if let Some(last) = fresh.last() {
                    since = last.seq;
                    fresh.reverse();
                    pending = fresh;
                    continue;
                }
                if changed.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Debug, Deserialize)]
struct CustomerWrites {
    /// `support` (the main business account), `billing` (the second) or `chat` (Mia Chen on
    /// encrypted X Chat).
    to: String,
    #[serde(default)]
    text: String,
    photo: Option<UploadedFile>,
}

#[derive(Debug, Deserialize)]
struct UploadedFile {
    name: String,
    content_type: String,
    /// The file's bytes, base64.
    base64: String,
}

impl UploadedFile {
    fn bytes(&self) -> Result<Vec<u8>, ApiError> {
        let bytes = STANDARD
            .decode(self.base64.as_bytes())
            .map_err(|_| ApiError::BadRequest("the file is not valid base64".to_owned()))?;
        if bytes.is_empty() || bytes.len() > MAX_FILE_BYTES {
            return Err(ApiError::BadRequest(format!(
                "a file must have 1 to {MAX_FILE_BYTES} bytes"
            )));
        }
        Ok(bytes)
    }
}

async fn customer_writes(
    State(state): State<AppState>,
    Json(body): Json<CustomerWrites>,
) -> Result<StatusCode, ApiError> {
    let text = body.text.trim().to_owned();
    if text.is_empty() && body.photo.is_none() {
        return Err(ApiError::BadRequest(
            "write something or attach a photo".to_owned(),
        ));
    }
    let who;
    match body.to.as_str() {
        "chat" => {
            if body.photo.is_some() {
                return Err(ApiError::BadRequest(
                    "the X Chat customer sends text in this demo".to_owned(),
                ));
            }
            state
                .chat_customer
                .lock()
                .await
                .send(&text)
                .await
                .map_err(|e| ApiError::Failed(format!("{e:#}")))?;
            who = CHAT_CUSTOMER_ID;
        }
        "support" | "billing" => {
            let mut spec = DmSpec::text(CUSTOMER_ID, &text);
            if body.to == "billing" {
                spec.recipient_id = Some(BILLING_ID.to_owned());
            }
            if let Some(photo) = &body.photo {
                let file = state.sandbox.add_file(MediaFile::bytes(
                    photo.name.clone(),
                    photo.content_type.clone(),
                    photo.bytes()?,
                ));
                // As X sends them: a GIF is an mp4 of the animation, a video its mp4.
                spec.media = Some(match photo.content_type.as_str() {
                    "image/gif" => MediaSpec::animated_gif(&file.file_id),
                    t if t.starts_with("video/") => MediaSpec::video(&file.file_id),
                    _ => MediaSpec::photo(&file.file_id),
                });
            }
            let delivery = state
                .sandbox
                .deliver_dm(spec)
                .await
                .map_err(|e| ApiError::Failed(e.to_string()))?;
            delivered(delivery.status)?;
            who = CUSTOMER_ID;
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown recipient {other:?} (support, billing or chat)"
            )));
        }
    }
    state.feed.push(
        "customer_sent",
        serde_json::json!({
            "customer": who,
            "to": body.to,
            "text": text,
            "photo": body.photo.as_ref().map(|p| &p.name),
        }),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/customer/typing`: the DM customer is typing (X's typing indicator, delivered to
/// the bridge's webhook as X does).
async fn customer_types(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    let delivery = state
        .sandbox
        .deliver_typing(CUSTOMER_ID)
        .await
        .map_err(|e| ApiError::Failed(e.to_string()))?;
    delivered(delivery.status)
}

#[derive(Debug, Deserialize)]
struct CustomerReads {
    /// The newest DM the customer has seen (`dm_event_id` of a `dm_sent` event).
    dm_event_id: String,
}

/// `POST /api/customer/read`: the DM customer read up to a DM (X's read receipt).
async fn customer_reads(
    State(state): State<AppState>,
    Json(body): Json<CustomerReads>,
) -> Result<StatusCode, ApiError> {
    if body.dm_event_id.is_empty() || !body.dm_event_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest(
            "dm_event_id is an X event id (digits)".to_owned(),
        ));
    }
    let delivery = state
        .sandbox
        .deliver_read(CUSTOMER_ID, &body.dm_event_id)
        .await
        .map_err(|e| ApiError::Failed(e.to_string()))?;
    delivered(delivery.status)
}

/// What the bridge answered X's webhook delivery with, as the API's answer.
fn delivered(status: Option<u16>) -> Result<StatusCode, ApiError> {
    if status == Some(200) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::Failed(format!(
            "the bridge answered X's webhook delivery with {status:?}"
        )))
    }
}

#[derive(Debug, Deserialize)]
struct AgentActs {
    contact_id: String,
    /// `accept`, `send` (markdown), `file`, `transfer`, `leave` or `end`.
    action: String,
    #[serde(default)]
    text: String,
    file: Option<UploadedFile>,
}

async fn agent_acts(
    State(state): State<AppState>,
    Json(body): Json<AgentActs>,
) -> Result<StatusCode, ApiError> {
    let sandbox = &state.sandbox;
    let contact = sandbox
        .contacts()
        .into_iter()
        .find(|c| c.contact_id == body.contact_id || c.initial_contact_id == body.contact_id)
        .ok_or_else(|| ApiError::NotFound(format!("no chat {}", body.contact_id)))?;
    let id = contact.contact_id.as_str();
    let accept_first = |sandbox: &SandboxHandle| -> Result<(), ApiError> {
        if contact.agent.is_none() {
            sandbox
                .agent_accept(id, &state.agent_name)
                .map_err(conflict)?;
        }
        Ok(())
    };
    match body.action.as_str() {
        "accept" => {
            sandbox
                .agent_accept(id, &state.agent_name)
                .map_err(conflict)?;
        }
        "send" => {
            if body.text.trim().is_empty() {
                return Err(ApiError::BadRequest("write a reply first".to_owned()));
            }
            accept_first(sandbox)?;
            sandbox
                .agent_send(id, body.text.trim(), "text/markdown")
                .map_err(conflict)?;
        }
        "file" => {
            let file = body
                .file
                .as_ref()
                .ok_or_else(|| ApiError::BadRequest("no file".to_owned()))?;
            accept_first(sandbox)?;
            let stored = sandbox.add_file(MediaFile::bytes(
                file.name.clone(),
                file.content_type.clone(),
                file.bytes()?,
            ));
            sandbox
                .agent_send_attachment(id, &file.name, &file.content_type, &stored.file_id)
                .map_err(conflict)?;
        }
        "transfer" => {
            sandbox.transfer(id).map_err(conflict)?;
        }
        "leave" => {
            sandbox.agent_leave(id).map_err(conflict)?;
        }
        "end" => {
            sandbox.end_chat(id).map_err(conflict)?;
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown action {other:?} (accept, send, file, transfer, leave, end)"
            )));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// What Connect's sandbox refused (an ended chat, no agent to leave…) is the page's mistake.
fn conflict(e: xdm_sandbox::SandboxError) -> ApiError {
    ApiError::Conflict(e.to_string())
}

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Failed(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Failed(_) => StatusCode::BAD_GATEWAY,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

/// What the page shows as it happens: the sandboxes' events (every X call, webhook and SNS
/// delivery, contact and chat item, as the sandbox logs them), what the customers sent from
/// the page, and what the X Chat customer's device decrypted.
#[derive(Default)]
struct Feed {
    entries: Mutex<Vec<FeedEntry>>,
    changed: watch::Sender<u64>,
}

#[derive(Debug, Clone)]
struct FeedEntry {
    seq: u64,
    kind: &'static str,
    data: serde_json::Value,
}

impl Feed {
    fn push(&self, kind: &'static str, data: serde_json::Value) {
        let seq = {
            let Ok(mut entries) = self.entries.lock() else {
                return;
            };
            let seq = entries.last().map_or(1, |e| e.seq + 1);
            entries.push(FeedEntry { seq, kind, data });
            if entries.len() > FEED_CAPACITY {
                let excess = entries.len() - FEED_CAPACITY;
                entries.drain(..excess);
            }
            seq
        };
        self.changed.send_replace(seq);
    }

    /// The entries after `seq` (entries are in `seq` order).
    fn since(&self, seq: u64) -> Vec<FeedEntry> {
        self.entries.lock().map_or_else(
            |_| Vec::new(),
            |entries| {
                let from = entries.partition_point(|e| e.seq <= seq);
                entries[from..].to_vec()
            },
        )
    }
}

async fn feed_loop(
    sandbox: SandboxHandle,
    chat_customer: Arc<tokio::sync::Mutex<super::demo_chat_customer::ChatCustomer>>,
    feed: Arc<Feed>,
) {
    let mut since = 0;
    loop {
        // The X Chat customer's device looks for answers only after something was posted to
        // X Chat (its reads would otherwise fill the wire log several times a second).
        let mut chat_posted = false;
        for logged in sandbox.event_log(since) {
            since = logged.seq;
            if let SandboxEvent::XRequest { method, path, .. } = &logged.event {
                chat_posted |= method == "POST" && path.starts_with("/2/chat/");
            }
            match serde_json::to_value(&logged) {
                Ok(data) => feed.push("sandbox", data),
                Err(e) => tracing::warn!(error = %e, "a sandbox event could not be shown"),
            }
        }
        if chat_posted {
            let answers = chat_customer.lock().await.new_answers().await;
            match answers {
                Ok(answers) => {
                    for text in answers {
                        feed.push(
                            "x_chat_received",
                            serde_json::json!({ "customer": CHAT_CUSTOMER_ID, "text": text }),
                        );
                    }
                }
                Err(e) => feed.push(
                    "problem",
                    serde_json::json!({ "text": format!("the X Chat customer's device: {e:#}") }),
                ),
            }
        }
        tokio::time::sleep(FEED_POLL).await;
    }
}
