//! The names, labels and descriptions of what xdm-connect measures beyond its HTTP face (the
//! app describes its own): one catalogue, so that the core, the adapters (which record the
//! platforms' errors and rate limits) and the app (which samples the backlog and the tokens)
//! spell every metric the same way. The operator's view of it is docs/operations.md.
//!
//! Conventions: the `xdm_` prefix; counters end in `_total`, durations are `_seconds` (a
//! histogram, or a gauge of an age); labels take a few fixed values each (a queue, a result, an
//! HTTP status or an AWS error code) — never an id, a token or a text.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Counter `{result = accepted | duplicate | stale | echo | ignored}`: events of X deliveries
/// (webhook, stream, catch-up): customer DMs stored as jobs, DMs already stored, DMs older than
/// the age bound (acknowledged, not delivered), the business account's own DMs, and read /
/// revoke events (typing: [`TYPING_EVENTS`]).
pub const INBOUND_EVENTS: &str = "xdm_inbound_events_total";
/// Counter `{result = sent | throttled | no_chat | failed}`: the customers' typing events on X,
/// shown in their chats (`sent`), within the interval of the last one shown, without an open
/// chat to show them in, or not shown because the store or Connect failed.
pub const TYPING_EVENTS: &str = "xdm_typing_events_total";
/// Counter `{receipt = delivered | read, result}`: receipts of the agent's messages sent into
/// the chat. Delivered: `sent | failed`, one per message on X. Read: `sent` (one per message
/// marked read), `nothing_unread` and `failed` (one per read event of the customer).
pub const RECEIPTS: &str = "xdm_receipts_total";
/// Counter `{result = found | updated | created | failed | timeout}`: Customer Profiles lookups
/// of new chats' customers (with a domain configured): the profile found as it was, found and
/// brought up to date, created; or the chat started without it (Connect refused, or did not
/// answer in time).
pub const CUSTOMER_PROFILES: &str = "xdm_customer_profiles_total";
/// Counter `{result = deferred | carried}`: message buffering — DMs whose text waits for the
/// customer's next DM, and deliveries carrying such texts (one Connect message for several DMs).
pub const BUFFERED_MESSAGES: &str = "xdm_buffered_messages_total";
/// Counter `{result = continued | refused}`: new chats started as persistent chats of the
/// customer's previous one, and those Connect refused to continue (then started afresh).
pub const PERSISTENT_CHATS: &str = "xdm_persistent_chats_total";
/// Counter `{result = accepted | duplicate | filtered | after_end}`: chat items streamed by
/// Connect; `after_end`: accepted but not delivered, arriving long after its chat ended (a
/// replay).
pub const CHAT_ITEMS: &str = "xdm_chat_items_total";
/// Counter `{queue, outcome = done | failed | retry | superseded}`: runs of jobs, by what was
/// recorded. `done` and `failed` are final; `retry` waits for its backoff; `superseded` was
/// overtaken by another worker's claim (its outcome is the other's).
pub const JOB_ATTEMPTS: &str = "xdm_job_attempts_total";
/// Histogram `{queue}`: from accepting an event to its job's `done` (retries included).
pub const DELIVERY_LATENCY: &str = "xdm_delivery_latency_seconds";
/// Histogram `{queue}`: how old a job is when a worker first claims it (the reorder window
/// included): the time a new event waits in its job queue.
pub const QUEUE_AGE: &str = "xdm_job_queue_age_seconds";
/// Gauge `{queue, state = pending | processing | failed}`: jobs in the store, sampled (at most
/// [`BACKLOG_COUNT_LIMIT`] are counted per state).
pub const BACKLOG_JOBS: &str = "xdm_backlog_jobs";
/// Gauge `{queue}`: age of the oldest open (pending or processing) job, 0 when there is none.
pub const BACKLOG_OLDEST_AGE: &str = "xdm_backlog_oldest_age_seconds";
/// Counter `{platform = x | connect, code}`: failed calls to a platform, by HTTP status (X),
/// AWS error code (Connect), or `timeout` / `connect` / `transport` / `unexpected_answer`.
pub const PLATFORM_ERRORS: &str = "xdm_platform_errors_total";
/// Counter `{platform}`: rate-limit answers (X's 429, Connect's throttling), each a wait.
pub const RATE_LIMIT_WAITS: &str = "xdm_rate_limit_waits_total";
/// Counter `{platform}`: seconds the platform asked to wait (X's `x-rate-limit-reset`).
pub const RATE_LIMIT_WAIT_SECONDS: &str = "xdm_rate_limit_wait_seconds_total";
/// Counter `{result = refreshed | rejected | unavailable | no_refresh_token}`: OAuth 2.0 token
/// refreshes of business accounts.
pub const TOKEN_REFRESHES: &str = "xdm_x_token_refreshes_total";
/// Gauge: business accounts whose OAuth 2.0 token X refused, waiting for `xdm-connect x login`.
pub const ACCOUNTS_NEEDING_LOGIN: &str = "xdm_x_accounts_needing_login";
/// Gauge: seconds until the soonest stored OAuth 2.0 access token of a usable account expires
/// (negative once expired; tokens are refreshed when next used).
pub const TOKEN_EXPIRY: &str = "xdm_x_token_expiry_seconds";

/// The platforms of [`PLATFORM_ERRORS`] and the rate-limit counters.
pub const PLATFORM_X: &str = "x";
pub const PLATFORM_CONNECT: &str = "connect";

/// The most jobs the backlog sampler counts per queue and state: a bound on what one sample
/// reads from the store. A count at this value means "at least".
pub const BACKLOG_COUNT_LIMIT: usize = 10_000;

/// Histogram buckets, in seconds, for the `_seconds` histograms: a chat's scale, from a fast
/// delivery (the 250 ms reorder window) to an outage of an hour.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Counts one failed call to `platform`; `code` must come from a fixed set (an HTTP status, a
/// known AWS error code, a transport failure's kind).
pub fn platform_error(platform: &'static str, code: impl Into<metrics::SharedString>) {
    let code: metrics::SharedString = code.into();
    metrics::counter!(PLATFORM_ERRORS, "platform" => platform, "code" => code).increment(1);
}

/// Counts one rate-limit answer of `platform` and the seconds it asked to wait (0 when unknown).
pub fn rate_limit_wait(platform: &'static str, wait_s: u64) {
    metrics::counter!(RATE_LIMIT_WAITS, "platform" => platform).increment(1);
    if wait_s > 0 {
        metrics::counter!(RATE_LIMIT_WAIT_SECONDS, "platform" => platform).increment(wait_s);
    }
}

/// Registers the descriptions (the `# HELP` lines) and units with the installed recorder; call
/// once after installing it.
pub fn describe() {
    describe_counter!(
        INBOUND_EVENTS,
        Unit::Count,
        "Events of X deliveries, by result: accepted (stored as a job), duplicate, stale (older than the age bound: not delivered), echo (the business account's own DM), ignored (read, revoke)."
    );
    describe_counter!(
        TYPING_EVENTS,
        Unit::Count,
        "The customers' typing events on X, by result: sent (shown in the chat), throttled (within the interval of the last one shown), no_chat, failed (store or Connect)."
    );
    describe_counter!(
        RECEIPTS,
        Unit::Count,
        "Receipts of the agent's messages sent into the chat, by receipt (delivered, read) and result (sent, failed; for reads also nothing_unread, per read event)."
    );
    describe_counter!(
        CUSTOMER_PROFILES,
        Unit::Count,
        "Customer Profiles lookups for new chats, by result: found, updated (name or handle brought up to date), created, failed or timeout (the chat started without the profile)."
    );
    describe_counter!(
        BUFFERED_MESSAGES,
        Unit::Count,
        "Message buffering: DMs whose text waits for the customer's next DM (deferred), and deliveries that carry such texts in one Connect message (carried)."
    );
    describe_counter!(
        PERSISTENT_CHATS,
        Unit::Count,
        "New chats started as a continuation of the customer's previous chat (continued), or refused by Amazon Connect and started afresh (refused)."
    );
    describe_counter!(
        CHAT_ITEMS,
        Unit::Count,
        "Chat items streamed by Amazon Connect, by result: accepted (stored as a job), duplicate, filtered (not for the customer), after_end (arrived long after its chat ended: not delivered)."
    );
    describe_counter!(
        JOB_ATTEMPTS,
        Unit::Count,
        "Job runs by queue (inbound = X to Connect, outbound = Connect to X) and outcome: done and failed are final, retry waits for its backoff, superseded was overtaken by another claim."
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "Seconds from accepting an event to its delivery (job done), retries included, by queue."
    );
    describe_histogram!(
        QUEUE_AGE,
        Unit::Seconds,
        "Age in seconds of a job when a worker first claims it (reorder window included), by queue."
    );
    describe_gauge!(
        BACKLOG_JOBS,
        Unit::Count,
        "Jobs in the store by queue and state (pending, processing, failed), sampled; counted up to 10000."
    );
    describe_gauge!(
        BACKLOG_OLDEST_AGE,
        Unit::Seconds,
        "Age in seconds of the oldest pending or processing job, by queue (0 when none), sampled."
    );
    describe_counter!(
        PLATFORM_ERRORS,
        Unit::Count,
        "Failed calls to X or Amazon Connect, by platform and code (HTTP status, AWS error code, timeout, connect, transport, unexpected_answer)."
    );
    describe_counter!(
        RATE_LIMIT_WAITS,
        Unit::Count,
        "Rate-limit answers (X 429, Connect throttling) by platform; each makes the work wait."
    );
    describe_counter!(
        RATE_LIMIT_WAIT_SECONDS,
        Unit::Seconds,
        "Seconds the platform asked to wait in its rate-limit answers (X x-rate-limit-reset), by platform."
    );
    describe_counter!(
        TOKEN_REFRESHES,
        Unit::Count,
        "OAuth 2.0 token refreshes of X business accounts, by result: refreshed, rejected (the account needs x login), unavailable, no_refresh_token."
    );
    describe_gauge!(
        ACCOUNTS_NEEDING_LOGIN,
        Unit::Count,
        "X business accounts whose OAuth 2.0 token was refused: nothing reaches or leaves them until xdm-connect x login."
    );
    describe_gauge!(
        TOKEN_EXPIRY,
        Unit::Seconds,
        "Seconds until the soonest stored OAuth 2.0 access token of a usable X account expires (negative once expired; refreshed when next used)."
    );
}
