//! # xdm-sandbox: wire-compatible emulators of X, Amazon Connect and SNS
//!
//! A faithful emulator of **X (Twitter) Direct Messages** and **Amazon Connect Chat** (with SNS
//! message streaming and Customer Profiles) on one HTTP listener, so that the real xdm-connect
//! bridge — its OAuth 1.0a X client, its SigV4-signed Connect calls and the official
//! `aws-sdk-connectparticipant` client — talks to it unmodified. Wire formats follow `docs/protocols.md`; request checking (OAuth 1.0a
//! verification, CRC, webhook and SNS signatures) is written here from those formats, not borrowed
//! from the bridge, so that the sandbox checks the bridge.
//!
//! ## Use in-process
//!
//! ```no_run
//! # async fn demo() -> Result<(), xdm_sandbox::SandboxError> {
//! use xdm_sandbox::{DmSpec, Sandbox, SandboxConfig, SandboxUser};
//!
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! // Point the bridge at it: XDM_X_API_URL = AWS_ENDPOINT_URL_CONNECT =
//! // AWS_ENDPOINT_URL_CONNECTPARTICIPANT = AWS_ENDPOINT_URL_CUSTOMER_PROFILES =
//! // sandbox.base_url(),
//! // XDM_SNS_TRUSTED_CERT_URLS = sandbox.sns_cert_url(), XDM_CONNECT_TOPIC_ARN = sandbox.sns_topic_arn().
//! sandbox.add_user(SandboxUser::new("55125386", "Elizabeth Fuentes", "ElizabethFue12"));
//! sandbox.set_webhook("http://127.0.0.1:8080/webhooks/x").await?;
//! let sub = sandbox.subscribe("http://127.0.0.1:8080/webhooks/connect").await?;
//! sandbox.wait_confirmed(&sub.subscription_arn, std::time::Duration::from_secs(5)).await?;
//! sandbox.deliver_dm(DmSpec::text("55125386", "Hola")).await?;
//! # Ok(()) }
//! ```
//!
//! `SandboxConfig::default()` uses fixed development values: consumer key/secret
//! `sandbox-consumer-key` / `sandbox-consumer-secret`, access token/secret
//! `4337869213-sandbox-access-token` / `sandbox-access-token-secret`, business account
//! `4337869213` "Acme Support" `@AcmeSupport`, app `13090192` `AcmeSupportBridge`, Connect instance
//! `6f8c1a52-3b7e-4d2a-9c11-5a0e2b7d9f40`, contact flow `c2a9e4f7-8d13-4b6e-a5f2-0e7d3c9b1a68`,
//! region `us-east-1`, account `123456789012`, Customer Profiles domain `xdm-demo`
//! ([`ProfilesConfig`]), topic
//! `arn:aws:sns:us-east-1:123456789012:xdm-sandbox-chat`, SNS SignatureVersion 1, fault seed 0;
//! OAuth 2.0 client id/secret `sandbox-client-id` / `sandbox-client-secret`, app Bearer token
//! `sandbox-app-bearer-token`.
//!
//! ## Emulated platform routes
//!
//! | route | what |
//! |---|---|
//! | `POST /2/dm_conversations/with/{participant_id}/messages` | X send DM (user context: OAuth 1.0a, or OAuth 2.0 `dm.write tweet.read users.read`) → 201 |
//! | `GET /2/dm_conversations/with/{participant_id}/dm_events` | X conversation read-back: the DMs the user sent to the participant, newest first, paged (user context, `dm.read`) |
//! | `GET /2/dm_events` | every DM event of the user's conversations (received and sent), newest first, 30 days, paged; `expansions=sender_id,attachments.media_keys` ⇒ `includes.users` / `includes.media`; window `XConfig::dm_events_rate_limit` per user |
//! | `GET /2/dm_conversations/media/{dm_id}/{media_id}/{resource_id}` | DM media download, `application/octet-stream` (OAuth 2.0 user with `dm.read` only) |
//! | `GET /2/users/{id}`, `GET /2/users/me` | X user lookup (`{id}`: any principal; `me`: user context, the token's user) |
//! | `GET /i/oauth2/authorize` | OAuth 2.0 authorize with PKCE (S256 / plain): auto-approved by the approver ⇒ `302 redirect_uri?state&code` (code: 30 s, single use); bad client / PKCE ⇒ 400 text |
//! | `POST /2/oauth2/token`, `POST /2/oauth2/revoke` | grants `authorization_code`, `refresh_token` (single-use; reuse revokes the family ⇒ 400 `invalid_request`); client auth Basic or body `client_id` |
//! | `POST`/`GET /2/webhooks`, `PUT`/`DELETE /2/webhooks/{id}` | webhooks v2 with a real CRC (`CrcValidationFailed`, `DuplicateUrlFailed`, `WebhookLimitExceeded`, `UrlValidationFailed`, `WebhookIdInvalid`); app Bearer (create / PUT / delete also OAuth 1.0a) |
//! | `POST /2/webhooks/replay` | `{"webhook_id","from_date","to_date"}` (yyyymmddhhmm, last 24 h) ⇒ job; logged events re-POSTed in order (app Bearer) |
//! | `POST`/`GET /2/activity/subscriptions`, `PUT`/`DELETE /2/activity/subscriptions/{id}` | X Activity API subscriptions (see below) |
//! | `GET /2/activity/stream?backfill_minutes&start_time&end_time` | the activity stream: JSON lines ending `\r\n`, bare `\r\n` keep-alives, backfill ≤ 5 min, `max_stream_connections` (app Bearer) |
//! | `/2/account_activity/webhooks/{id}/subscriptions/all[/list]`, `…/subscriptions/{user_id}/all` | Account Activity API, only with `XConfig::account_activity_api`; otherwise 403 "retired" |
//! | `PUT /contact/chat` | StartChatContact (SigV4 `connect`); `CustomerId` (1–128) kept on the contact; `PersistentChat`: source ended, each source continued once (else 400 `InvalidRequestException`), not with `RelatedContactId` |
//! | `POST /contact/start-streaming`, `/contact/stop-streaming`, `/contact/stop` | StartContactStreaming, StopContactStreaming, StopContact |
//! | `POST /contact/attributes` | UpdateContactAttributes: merged into the attributes of the contact whose initial contact id is given (the same key and size rules as StartChatContact); unknown ⇒ 404 `ResourceNotFoundException` |
//! | `POST /domains/{DomainName}/profiles/search?max-results&next-token` | Customer Profiles SearchProfiles (SigV4 `profile`): keys `_account`, `_profileId`, `_fullName`, `_phone`, `_email` (other predefined keys match nothing; unknown ⇒ 400 `BadRequestException`), `AdditionalSearchKeys` (≤ 4) with `LogicalOperator` `AND`/`OR` (⇒ `FoundByItems`), 1–100 per page (default 20) |
//! | `POST /domains/{DomainName}/profiles`, `PUT /domains/{DomainName}/profiles` | CreateProfile (⇒ `{"ProfileId":"<32 hex>"}`), UpdateProfile (present members replace, absent kept, `""` clears; `Attributes` merge key by key); the model's lengths and enums (400 `BadRequestException`); unknown domain or ProfileId ⇒ 404 `ResourceNotFoundException` |
//! | `GET /instance/{InstanceId}` | DescribeInstance (SigV4 `connect`): `ACTIVE`, alias `xdm-sandbox`; unknown id ⇒ 404 `ResourceNotFoundException` |
//! | `GET /contact-flows/{InstanceId}/{ContactFlowId}` | DescribeContactFlow (SigV4 `connect`) of the instance's flows ([`ContactFlowSpec`]); unknown ⇒ 404 `ResourceNotFoundException`, `SAVED` ⇒ 404 `ContactFlowNotPublishedException` |
//! | `POST /participant/connection`, `/message`, `/event`, `/disconnect`, `/transcript` | participant service (`X-Amz-Bearer`) |
//! | `POST /participant/start-attachment-upload`, `/complete-attachment-upload`, `/attachment` | StartAttachmentUpload, CompleteAttachmentUpload, GetAttachment (`X-Amz-Bearer` = ConnectionToken) |
//! | `PUT`/`GET /s3/…?X-Amz-Signature=…` | the pre-signed attachment upload / download URLs ("S3": XML errors) |
//! | `POST /2/media/upload/initialize`, `/2/media/upload/{id}/append`, `/2/media/upload/{id}/finalize` | X media upload v2 (OAuth 1.0a) |
//! | `GET /2/media/upload?command=STATUS&media_id=…`, `POST /2/media/upload` | STATUS polling; one-shot image upload |
//! | `GET /1.1/ton/data/dm/{dm_id}/{media_id}/{resource}` | DM photo download (TON: OAuth 1.0a required) |
//! | `GET /dm_video/…`, `/dm_gif/…`, `/dm_video_preview/…`, `/dm_gif_preview/…`, any other registered media URL | public DM video / GIF / preview downloads |
//! | `GET /sns/SimpleNotificationService-<hash>.pem` | the SNS signing certificate |
//! | `POST /` (form `Action=GetTopicAttributes\|ListSubscriptionsByTopic\|Subscribe\|GetSubscriptionAttributes\|SetSubscriptionAttributes&Version=2010-03-31`) | SNS Query API (SigV4 `sns`, XML): the topic's attributes (`Policy`: [`default_policy`] lets `connect.amazonaws.com` publish), its subscriptions 100 per page (`PendingConfirmation` until confirmed); unknown topic ⇒ 404 `NotFound`; http(s) subscriptions with their `FilterPolicy` (scope `MessageAttributes`; a policy the sandbox cannot evaluate ⇒ 400 `InvalidParameter`, see [`FilterPolicy`]) |
//! | `GET /sns/confirm?Action=ConfirmSubscription&TopicArn=…&Token=…` | SubscribeURL |
//! | `GET /sns/unsubscribe?Action=Unsubscribe&SubscriptionArn=…` | UnsubscribeURL |
//!
//! Every X response carries `x-rate-limit-limit/-remaining/-reset`; every Connect error carries
//! `x-amzn-ErrorType`, `{"__type","message"}` and `x-amzn-RequestId`; Customer Profiles errors
//! carry `x-amzn-ErrorType`, `{"Message"}` and `x-amzn-RequestId`.
//!
//! ## Control API (`/_sandbox`, JSON)
//!
//! | route | body → answer |
//! |---|---|
//! | `GET /_sandbox` | base URL, cert URL, topic, configuration |
//! | `GET /_sandbox/events?since=N` | logged [`SandboxEvent`]s with `seq > N` |
//! | `GET`/`POST /_sandbox/x/users` | [`SandboxUser`] → the user (201) |
//! | `GET`/`POST /_sandbox/x/webhook` | `{"url"}` → [`CrcOutcome`]: registers the webhook (CRC) and subscribes the business account to `dm.received`, `dm.read`, `dm.indicate_typing` with it (AAA when `account_activity_api`) |
//! | `POST /_sandbox/x/oauth2` | [`OAuth2Settings`] `{"access_token_lifetime_secs"?,"approver"?,"deny_next"?}` → token families |
//! | `GET /_sandbox/x/oauth2/tokens`, `POST /x/oauth2/issue` `{"user_id","scopes"}`, `POST /x/oauth2/revoke-user` `{"user_id"}` | [`OAuth2TokenFamily`]s (token prefixes only); [`OAuth2Tokens`]; `{"revoked":N}` |
//! | `GET /_sandbox/x/webhooks`, `POST /x/webhooks/{id}/invalidate`, `POST /x/webhooks/{id}/outage` `{"on"}` | [`WebhookRegistration`]s; mark invalid (as after failed CRCs); outage switch (deliveries recorded as failed, not sent) |
//! | `GET /_sandbox/x/subscriptions`, `/x/events`, `/x/dm-history`, `/x/replays` | `{"activity":[…],"account_activity":[…]}`, [`XEventRecord`]s, every DM both ways, [`ReplayJob`]s |
//! | `GET /_sandbox/x/streams`, `POST /x/streams/drop`, `POST /x/streams/silent` `{"on"}` | `{"silent","connections":[StreamConnection]}`; end every stream abruptly; stop / resume writing |
//! | `POST /_sandbox/x/crc` | `{"url","crc_token"}` → [`CrcOutcome`] |
//! | `POST /_sandbox/x/dm` | [`DmSpec`] → [`WebhookDelivery`] |
//! | `POST /_sandbox/x/typing`, `/x/read` | `{"sender_id"}`, `{"sender_id","last_read_event_id"}` |
//! | `POST /_sandbox/x/raw` | `{"body":"…","signature":"valid"\|"omit"\|{"custom":"sha256=…"}}` |
//! | `GET /_sandbox/x/dms`, `/x/requests`, `/x/deliveries` | [`SentDm`]s, [`RequestRecord`]s, [`WebhookDelivery`]s |
//! | `GET /_sandbox/x/media` | [`UploadedMedia`]s (media upload v2) |
//! | `GET /_sandbox/x/chat/events`, `/x/chat/public-keys[?user_id=]`, `/x/chat/media`, `/x/chat/media/{media_hash_key}/content`, `/x/chat/indicators` | X Chat: [`ChatEventRecord`]s, [`ChatPublicKeyRecord`]s, [`ChatMediaRecord`]s, the stored ciphertext, [`ChatIndicatorRecord`]s |
//! | `POST /_sandbox/x/chat/deliver` | `{"user_id","event_type","payload"}` → [`WebhookDelivery`]: a hand-made `chat.*` event to the user's subscriptions |
//! | `GET`/`POST /_sandbox/media/files` | [`MediaFile`] → [`FileInfo`] (201); `content`: `{"bytes":"<base64>"}`, `{"text":"…"}` or `{"generated":{"size","seed"}}` |
//! | `GET /_sandbox/media/files/{id}`, `…/{id}/content` | [`FileInfo`]; the bytes, streamed |
//! | `POST /_sandbox/media/files/{id}/serve` | [`ServeOptions`] `{"omit_content_length"?,"redirect_to"?}` → [`FileInfo`] |
//! | `GET /_sandbox/media/requests` | [`MediaRequestRecord`]s (every media GET) |
//! | `GET /_sandbox/media/generated?size=N&seed=S` | `{"size","seed","sha256"}` of a generated file |
//! | `GET /_sandbox/connect/contacts[/{id}]` | [`ContactView`]s |
//! | `GET /_sandbox/connect/profiles` | [`ProfileView`]s: `{"domain","ProfileId",…every stored member…,"created_at","updated_at"}` |
//! | `POST /_sandbox/connect/contacts/{id}/accept` | `{"agent_name"}` |
//! | `POST …/{id}/message` | `{"content","content_type"?}` (default `text/markdown`) |
//! | `POST …/{id}/item` | [`ItemSpec`] |
//! | `POST …/{id}/typing`, `/read` `{"message_id"}`, `/leave`, `/end`, `/transfer` | |
//! | `POST …/{id}/barge` `{"name"?}` (default `Supervisor`), `POST …/{id}/barge/leave` | a supervisor barges in (role SUPERVISOR, `participant.joined`; needs the agent present) / leaves (`participant.left`) → [`ChatItem`] |
//! | `POST …/{id}/system` | `{"text"}` |
//! | `POST …/{id}/attachment` | [`AgentAttachment`] `{"name","file_id","content_type"?,"status"?}` → [`ChatItem`] |
//! | `GET /_sandbox/connect/attachments`, `/connect/s3-requests` | [`AttachmentView`]s, [`S3RequestRecord`]s |
//! | `GET`/`POST /_sandbox/connect/attachment-scan` | [`AttachmentScan`] `{"delay_ms","verdict":"APPROVED"\|"REJECTED"}` |
//! | `POST /_sandbox/sns/subscribe` | `{"endpoint","topic_arn"?,"filter_policy"?}` (the policy a JSON object or a string holding one; refused with 400 if the sandbox cannot evaluate it) → [`SubscriptionView`] |
//! | `POST /_sandbox/sns/subscriptions/filter-policy` | `{"subscription_arn","filter_policy"}` (`null` removes it) → [`SubscriptionView`] |
//! | `GET /_sandbox/sns/subscriptions`, `/sns/deliveries` | [`SubscriptionView`]s, [`SnsDelivery`]s |
//! | `GET`/`POST /_sandbox/sns/topics`, `DELETE /_sandbox/sns/topics?topic_arn=…` | [`TopicView`]s; `{"topic_arn","display_name"?,"policy"?}` → the topic (201); remove (204) |
//! | `POST /_sandbox/sns/topics/policy` | `{"topic_arn"?,"policy"}` (a JSON document or a string; default topic: the configured one) → [`TopicView`] |
//! | `GET`/`POST /_sandbox/connect/flows`, `DELETE /_sandbox/connect/flows/{id}` | [`ContactFlowSpec`]s; `{"id","name"?,"type"?,"state"?,"status"?}` → the flow (201); remove (204). The configured flow exists until removed; StartChatContact takes any listed flow |
//! | `POST /_sandbox/sns/redeliver` | `{"message_id"}` → attempts |
//! | `GET`/`POST /_sandbox/faults` | [`PendingFault`]s; `{"op":"SendMessage","count":2,"fault":{"status":429}}` queues a [`Fault`] for the next `count` calls |
//! | `DELETE /_sandbox/faults` | clears every fault setting: queued faults, profiles, bursts, down switches (204) |
//! | `GET`/`POST`/`DELETE /_sandbox/faults/profiles` | profiles by op; `{"op":"SendMessage","profile":{…}}` or `{"side":"Connect"\|"X","profile":{…}}` ([`FaultProfile`]) → profiles; clear (204) |
//! | `GET`/`POST`/`DELETE /_sandbox/faults/burst` | [`ThrottleBurstView`]s; `{"op","count","reset_after_secs","hold_window"?,"limit"?}` ([`ThrottleBurst`]) → bursts; clear (204) |
//! | `GET`/`POST /_sandbox/faults/down` | `{"X":null,"Connect":"Unavailable"}`; `{"side":"Connect","down":true,"mode"?:"Unavailable"\|"Drop"}` → the same |
//! | `GET`/`DELETE /_sandbox/stats` | [`SandboxStats`]; reset the counters (204) |
//!
//! Control errors answer `{"error":"…"}` with 400/404/409/502/504. Fault ops: every Connect and X
//! operation above, plus `StartAttachmentUpload`, `CompleteAttachmentUpload`, `GetAttachment`,
//! `AttachmentPut`, `AttachmentGet` (S3 XML errors), `MediaInitialize`, `MediaAppend`,
//! `MediaFinalize`, `MediaStatus`, `MediaUpload`, `MediaProcessing` (makes the next GIF/video
//! processing fail), `TonDownload`, `MediaDownload`, and Customer Profiles' `SearchProfiles`,
//! `CreateProfile`, `UpdateProfile` (see [`FaultOp`]). DescribeInstance,
//! DescribeContactFlow and the SNS Query API are not fault operations (the Connect down switch
//! still answers the first two 503).
//!
//! ## Fault injection
//!
//! | what | Rust ([`SandboxHandle`]) | effect |
//! |---|---|---|
//! | queued fault | `fail_next(op, n, Fault)` | the next `n` calls of `op` fail with / are delayed by the [`Fault`] |
//! | profile | `set_fault_profile(op, FaultProfile)`, `set_side_fault_profile(side, …)` (every call op of the side), `clear_fault_profiles()` | every call: `latency_ms` + uniform `0..=jitter_ms`; then `error_rate` of the calls answer `error`, `drop_rate` lose their connection |
//! | throttling burst | `throttle_burst(op, n, reset_after_secs)`, `throttle_burst_with(op, ThrottleBurst)` | the next `n` calls are throttled; `hold_window`: until the reset |
//! | down switch | `set_down(Side, bool)`, `set_down_with(Side, Option<DownMode>)` | every call of the side answers 503 (or its connection drops) |
//! | counters | `stats()`, `reset_stats()` | [`SandboxStats`] |
//!
//! * One call meets, in this order: the down switch (answers at once); the profile's latency; a
//!   queued fault; a throttling burst; the profile's error / drop draw. `clear_faults()` clears all
//!   of them (not the counters).
//! * **Default errors** (a profile's [`FaultError`] with `status: None`): Connect `503
//!   ServiceUnavailableException`, participant service and Customer Profiles `500
//!   InternalServerException`, S3 `500 InternalError`, X `503` problem, public media `503` text.
//!   Down: `503` everywhere (Connect, participant and Customer Profiles
//!   `ServiceUnavailableException`, S3 `ServiceUnavailable`). Throttled: X `429` "Too Many
//!   Requests" problem with `x-rate-limit-limit` ([`ThrottleBurst::limit`], else
//!   `XConfig::rate_limit`'s, else 15), `x-rate-limit-remaining: 0`, `x-rate-limit-reset` = the
//!   burst's start + `reset_after_secs`; Connect, participant and Customer Profiles `429
//!   ThrottlingException`; S3 `503 SlowDown`; public media `429`.
//! * **Dropped connections** ([`DropMode`]): `Before` — the call has no effect; `After` — the call
//!   takes effect (the message is in the transcript, the DM is recorded, the echo is sent) and
//!   only the answer is lost. Either way hyper closes the connection without sending a byte: the
//!   client sees a transport error, never an HTTP status. Records of a call dropped before its
//!   effect (X requests, media and S3 records) keep the error it would have answered, with the
//!   rejection "injected connection drop".
//! * **Reproducible**: each operation's profile has its own SplitMix64 PRNG seeded from the
//!   profile's `seed` or [`SandboxConfig::fault_seed`], mixed with the operation; every call of the
//!   operation draws once for latency and once for error / drop. The same calls per operation give
//!   the same faults (under concurrency, which call gets which draw follows arrival order).
//! * **Sides**: [`Side::X`] = the X REST, media upload, TON and public media operations;
//!   [`Side::Connect`] = contact, participant and attachment operations, including the S3 URLs,
//!   and Customer Profiles.
//!   Only API calls are affected: webhook deliveries and SNS notifications to the bridge are not.
//! * `MediaProcessing` is not a call: only queued faults and a profile's `error_rate` apply (the
//!   processing of GIFs / videos ends `failed`).
//! * **Counters** ([`SandboxStats`]): per operation, calls answered by status class (2xx … 5xx,
//!   429, dropped — authentication failures included) and faults injected (errors, throttled,
//!   down, dropped before / after, delayed calls and total delay); Connect: SendMessage calls,
//!   distinct messages it added to transcripts, ClientToken replays and calls per message; X:
//!   CreateDm calls, DMs recorded and calls per DM. Every fault but a profile's plain latency is
//!   also a [`SandboxEvent::FaultInjected`] with its [`FaultKind`].
//!
//! ```text
//! curl -s -XPOST $B/_sandbox/faults/profiles -d '{"side":"Connect","profile":{"error_rate":0.2,"latency_ms":20,"jitter_ms":30,"seed":7}}'
//! curl -s -XPOST $B/_sandbox/faults/profiles -d '{"op":"SendMessage","profile":{"drop_rate":0.1,"drop_mode":"After"}}'
//! curl -s -XPOST $B/_sandbox/faults/burst -d '{"op":"CreateDm","count":5,"reset_after_secs":60,"hold_window":true}'
//! curl -s -XPOST $B/_sandbox/faults/down -d '{"side":"Connect","down":true}'
//! curl -s $B/_sandbox/stats | jq '.ops.SendMessage, .connect.calls_per_message'
//! ```
//!
//! ```text
//! B=http://127.0.0.1:4566
//! curl -s -XPOST $B/_sandbox/x/users -d '{"id":"55125386","name":"Elizabeth","username":"eli"}'
//! curl -s -XPOST $B/_sandbox/x/webhook -d '{"url":"http://127.0.0.1:8080/webhooks/x"}'
//! curl -s -XPOST $B/_sandbox/x/dm -d '{"sender_id":"55125386","text":"Hola"}'
//! curl -s $B/_sandbox/connect/contacts | jq '.[0].contact_id'
//! curl -s -XPOST $B/_sandbox/connect/contacts/$CONTACT/accept -d '{"agent_name":"Enrique"}'
//! curl -s -XPOST $B/_sandbox/connect/contacts/$CONTACT/message -d '{"content":"Hi, how can I help?"}'
//! curl -s -XPOST $B/_sandbox/faults -d '{"op":"CreateDm","count":1,"fault":{"status":429,"rate_limit_reset":1893456000}}'
//! curl -s -XPOST $B/_sandbox/media/files -d '{"name":"clip.mp4","content_type":"video/mp4","content":{"generated":{"size":209715200,"seed":7}}}'
//! curl -s -XPOST $B/_sandbox/x/dm -d '{"sender_id":"55125386","text":"look","media":{"kind":"video","file_id":"file-1"}}'
//! curl -s -XPOST $B/_sandbox/connect/contacts/$CONTACT/attachment -d '{"name":"statement.pdf","file_id":"file-2"}'
//! ```
//!
//! ## Behaviour worth knowing
//!
//! * OAuth 1.0a: consumer key and token must be the configured ones, HMAC-SHA1, timestamp within
//!   `oauth_max_clock_skew_secs`, nonces single-use for 15 minutes; the base URL is rebuilt from the
//!   request as received (`http`, `Host` header lower-cased, default port dropped). Query and
//!   form-urlencoded body parameters are signed; JSON bodies are not. Failures: X's 401 problem
//!   (the reason is kept in [`RequestRecord::rejection`]).
//! * Faults are consumed by calls that passed authentication (OAuth / SigV4 shape / bearer present).
//! * Chat streaming: items that exist when StartContactStreaming first attaches a topic (usually
//!   the initial message) are streamed to it too, in order, so the subscriber sees the whole chat;
//!   a topic stopped and started again only gets later items. Notifications are delivered per
//!   (subscription, contact) in item order, retried `SnsConfig::retries` times on non-2xx. A
//!   subscription with a filter policy gets only the messages whose attributes it matches, as
//!   with SNS ([`FilterPolicy`]; `SubscriptionView::filtered_out` counts the others).
//! * CreateParticipantConnection with `ConnectParticipant: true` adds a customer
//!   `participant.joined` item. GetTranscript (customer view) omits AGENT-only items and typing.
//! * **Message receipts** (SendEvent `….message.delivered` / `….message.read` with
//!   `{"messageId":…}`, and `agent_read`) become `MESSAGEMETADATA` items with
//!   `MessageMetadata: {"MessageId", "Receipts": [{"DeliveredTimestamp"|"ReadTimestamp",
//!   "RecipientParticipantId"}]}` (the timestamp is the item's `AbsoluteTime`, the recipient the
//!   participant who sent the receipt), in the transcript and streamed alike (see [`Item`]).
//!   While more than two participants are active (a supervisor barged in,
//!   [`SandboxHandle::supervisor_barge`]) receipts are refused — SendEvent 409
//!   `ConflictException`, `agent_read` [`SandboxError::ReceiptsRefused`] — and nothing is added;
//!   typing still goes through. A receipt of an id that is no message of the chat is accepted.
//! * **Principals** (X's OpenAPI `security` per route): OAuth 1.0a user (the configured token: the
//!   business account), OAuth 2.0 user tokens from the token endpoint or
//!   [`SandboxHandle::issue_oauth2_token`] (acting as their user, limited to their scopes; unknown,
//!   expired or revoked ⇒ 401; missing scope ⇒ 403 naming it), the app Bearer
//!   (`XConfig::bearer_token` exactly; any other Bearer ⇒ 401). A principal the route does not
//!   list ⇒ 403 `unsupported-authentication`.
//! * **Webhooks**: `XConfig::crc_secret` keys CRC answers (client secret by default, as X's
//!   current quickstart; or the consumer secret). Event POSTs carry `X-Twitter-Webhooks-Signature`
//!   (consumer secret) and `X-Twitter-Webhooks-Signature-OAuth2` (client secret), or one of them
//!   (`XConfig::signature_headers`). A webhook from `set_webhook` / `XConfig::webhook_url` whose
//!   CRC failed is re-checked before the next delivery; one marked invalid by the control, or
//!   created through `/2/webhooks`, gets nothing until `PUT /2/webhooks/{id}` validates it.
//! * **X Activity API**: subscriptions `{"event_type","filter":{"user_id"},"tag"?,"webhook_id"?}`;
//!   private events (`dm.*`, `chat.*`, likes, mutes, blocks) need the user context of
//!   `filter.user_id` (OAuth 1.0a, or OAuth 2.0 with `dm.read`) — app-only ⇒ 403
//!   `not-authorized-for-resource`; duplicates ⇒ 409 `DuplicateSubscriptionFailed`;
//!   `max_subscriptions` ⇒ `SubscriptionLimitExceeded`; answers
//!   `{"data":{"subscription":{…}},"meta":{"total_subscriptions"}}` (flat with
//!   `flat_subscription_answers`). Refusals: `{"title":"Invalid Request","detail":"<Reason>: …",
//!   "type":…/invalid-request,"errors":[{"message":"<Reason>"}]}`.
//! * **Events**: `deliver_dm` / `deliver_typing` / `deliver_read` (and DMs sent through the API,
//!   as `dm.sent`) are kept in the DM history and rendered for every matching subscription in
//!   XAA's envelope (`data.event_uuid`, `filter`, `event_type`, `tag`, `payload` with the Account
//!   Activity-shaped events and v2 `users`), logged ([`SandboxHandle::x_events`]), written to every
//!   open activity stream and POSTed to the subscription's webhook. Account Activity
//!   subscriptions get the AAA shape (echoes of sent DMs with `echo_outbound`). No subscription ⇒
//!   recorded, delivered nowhere ([`WebhookDelivery::status`] `None`).
//! * **Stream controls**: [`SandboxHandle::drop_streams`] (abrupt end),
//!   [`SandboxHandle::set_streams_silent`] (no keep-alives, no events; they stay in the log for
//!   backfills), [`SandboxHandle::stream_connections`]; attempts are in `x_requests`
//!   ([`XOp::ActivityStream`]).
//! * Fault ops of the new routes: `OAuth2Token`, `Webhooks` (incl. replay), `Subscriptions`
//!   (incl. Account Activity), `ActivityStream`, `DmMediaDownload`; `GET /2/dm_events` is under
//!   `DmEvents`.
//! * DMs to ids not in the registry are accepted; registered users with `accepts_dms: false` get 403.
//! * Not emulated: participant websockets (the `Websocket` URL of CreateParticipantConnection is not
//!   served), v1.1 media upload, XAA events other than DMs and X Chat (subscriptions to them are kept). The
//!   command-style `POST /2/media/upload?command=…` answers 400 (deprecated by X).
//! * **X Chat** (encrypted DMs, [`x::chat`]; docs/xchat.md §9): public key registration and
//!   lookup, conversation keys, signed messages relayed as Thrift `MessageEvent`s (`chat.received`,
//!   `chat.sent`, `chat.conversation.join` through the Activity API), history, typing / read,
//!   encrypted media. Ciphertext only; a message whose signature does not verify with the
//!   sender's registered key answers 400 `INVALID_SENDER_SIGNATURE`. Fault ops `ChatPublicKeys`,
//!   `ChatAddKeys`, `ChatSendMessage`, `ChatEvents`, `ChatIndicators`, `ChatMediaUpload`,
//!   `ChatMediaDownload`.
//!
//! ## Media
//!
//! * **Files** ([`SandboxHandle::add_file`], [`MediaFile`]): literal bytes, or generated content —
//!   `size` bytes from `seed`, computed on the fly whenever served ([`generated_stream`]) and never
//!   materialised; [`generated_sha256`] gives a generated file's hash (memoised) so tests compare
//!   without holding it. Every stored file — registered, decoy, X upload, Connect upload — has a
//!   size and a SHA-256 ([`FileInfo`]); uploads are hashed as they stream and keep their bytes only
//!   up to [`MediaConfig::keep_bytes_up_to`] (1 MiB). A larger upload whose size and hash equal a
//!   retained file's (e.g. a generated file the bridge relayed) is servable from that file's source.
//! * **DM media** ([`MediaSpec::photo`], [`MediaSpec::video`], [`MediaSpec::animated_gif`] on a
//!   [`DmSpec`]): every URL is on this listener. Photo: `media_url_https` =
//!   `{base}/1.1/ton/data/dm/{dm_id}/{media_id}/{file name}`, which needs an OAuth 1.0a signature
//!   (verified like the REST routes, base URL = the URL without query; unsigned or wrong ⇒ 401, the
//!   reason recorded). Video: three variants — a 320 kbit/s mp4 (a small decoy), the 2,176 kbit/s
//!   mp4 (the file, listed in the middle) and an `application/x-mpegURL` playlist without bitrate —
//!   and a preview image, all public. GIF: one mp4 variant with `bitrate: 0`. The text ends with
//!   the media's t.co link ([`DeliveredMedia::tco_url`], also the entity's `url` and `media.url`);
//!   [`DmSpec::with_link`] adds other t.co links. [`MediaSpec::url`] may name any URL: one on this
//!   port under another host name ([`SandboxHandle::alt_base_url`], `http://localhost:PORT/…`) is
//!   still served, so a bridge that fetched it despite its allow-list shows in
//!   [`SandboxHandle::media_requests`] (every media GET: path, `Host`, status, rejection).
//!   [`ServeOptions`] per file: no `Content-Length` (chunked), or `302` to another host.
//! * **X media upload v2**: `initialize` needs `media_category` `dm_image`/`dm_gif`/`dm_video` and a
//!   fitting `media_type` (image/* but GIF, `image/gif`, video/*), `total_bytes` within 5 / 15 /
//!   512 MB; `append` (multipart `segment_index` + `media`, or JSON base64) takes segments 0, 1, 2…
//!   strictly in order and one at a time (out of order, duplicate, concurrent ⇒ 400), each at most
//!   [`XMediaConfig::max_segment_bytes`] (5 MiB) and never past `total_bytes`; `finalize` needs
//!   exactly `total_bytes`. Images are ready at once (no `processing_info`); GIFs and videos answer
//!   `pending`, then STATUS polls answer `in_progress` until poll number
//!   [`XMediaConfig::processing_polls`] (default 2), which answers `succeeded` — or `failed` when
//!   a [`FaultOp::MediaProcessing`] fault was queued. Polls before `check_after_secs` are answered and
//!   counted ([`UploadedMedia::early_polls`]). A DM's `attachments` must name media this user
//!   uploaded, `succeeded` and unexpired (else 400); [`SentDm::media`] records its category, type,
//!   size and SHA-256, and the echo carries it as photo / video / GIF.
//! * **Connect attachments**: StartAttachmentUpload checks the type against
//!   [`ConnectConfig::attachment_types`] (docs/protocols.md B2's list + `video/mp4`, `video/quicktime`),
//!   size ≤ 20 MiB, name 1..256 (ValidationException 400) and 35 attachments per chat, agent ones
//!   included (`ServiceQuotaExceededException` 402); ClientToken is idempotent. The upload URL takes
//!   a PUT only with every `HeadersToInclude` header verbatim (the eight Connect sends, plus
//!   [`ConnectConfig::attachment_extra_headers`]) and the declared length; otherwise S3's `403
//!   SignatureDoesNotMatch` XML, with the missing or altered headers in [`S3RequestRecord`].
//!   CompleteAttachmentUpload (409 `ConflictException` before a successful PUT) adds an ATTACHMENT
//!   item (role CUSTOMER, no top-level `ContentType`, like the only real sample), streamed like every
//!   item. Scan ([`AttachmentScan`]): by default the item says APPROVED at once; with `delay_ms` it
//!   says IN_PROGRESS and a second ATTACHMENT item with the verdict (APPROVED or REJECTED) follows.
//!   GetAttachment (URL expiry 5..300 s, default 300) serves APPROVED attachments only (else 400);
//!   its URL's GET streams the file with `Content-Length`, `Content-Type`, `Content-Disposition`.
//!   [`SandboxHandle::agent_send_attachment`] adds an agent's (Connect's type and size limits are not
//!   applied to the agent side). [`ContactView::attachments`] and [`SandboxHandle::attachments`] show
//!   what reached Connect: size, SHA-256, status.

mod clock;
pub mod config;
pub mod connect;
mod control;
pub mod error;
pub mod events;
pub mod faults;
mod handle;
mod ids;
pub mod media;
pub mod profiles;
mod server;
mod sigv4;
pub mod sns;
mod state;
mod sync;
pub mod x;

pub use config::{
    AttachmentScan, BusinessAccount, ConnectConfig, CrcSecret, DEFAULT_ATTACHMENT_TYPES,
    DEFAULT_PROFILES_DOMAIN, MediaConfig, OAuth2Config, ProfilesConfig, RateLimit, SandboxConfig,
    ScanVerdict, SignatureHeaders, SignatureVersion, SnsConfig, XApp, XConfig, XMediaConfig,
};
pub use connect::flows::ContactFlowSpec;
pub use connect::model::{
    AgentAttachment, AgentView, ArtifactStatus, AttachmentItem, AttachmentView, ChatItem,
    ChatMessage, ContactStatus, ContactView, EndReason, Item, ItemSpec, ItemType, MessageMetadata,
    MessageVisibility, ParticipantRole, Receipt, S3RequestRecord, StreamingView, content_types,
};
pub use error::SandboxError;
pub use events::{LoggedEvent, SandboxEvent};
pub use faults::{
    ConnectStats, DownMode, DropMode, Fault, FaultCounts, FaultError, FaultKind, FaultOp,
    FaultProfile, OpStats, PendingFault, SandboxStats, Side, ThrottleBurst, ThrottleBurstView,
    XStats,
};
pub use handle::SandboxHandle;
pub use media::files::{
    FileContent, FileInfo, FileOrigin, Generator, MediaFile, ServeOptions, generated_bytes,
    generated_sha256, generated_stream, sha256_hex,
};
pub use media::registry::{MediaRequestKind, MediaRequestRecord};
pub use profiles::model::{
    Address, ContactPreference, EngagementPreferences, Gender, PartyType, Profile, ProfileType,
    ProfileView,
};
pub use sns::filter_policy::{FilterPolicy, FilterPolicyError};
pub use sns::state::{SnsAttempt, SnsDelivery, SnsMessageType, SubscriptionView};
pub use sns::topics::{TopicView, default_policy};
pub use x::chat::{
    ChatEventKind, ChatEventRecord, ChatIndicatorKind, ChatIndicatorRecord, ChatMediaRecord,
    ChatPublicKeyRecord,
};
pub use x::dm_spec::{DmSpec, MediaKind, MediaSpec, PayloadShape, UrlSpec};
pub use x::oauth2_tokens::{OAuth2Settings, OAuth2TokenFamily, OAuth2Tokens, s256_challenge};
pub use x::records::{
    ActivitySubscription, CrcOutcome, DeliveredMedia, DeliveryKind, MediaCategory, ProcessingState,
    ReplayJob, ReplayState, RequestRecord, SentDm, SentMedia, StreamConnection, SubscriptionFilter,
    UploadedMedia, WebhookDelivery, WebhookRegistration, XEventRecord, XOp,
};
pub use x::users::SandboxUser;
pub use x::webhook_client::SignatureHeader;

/// Entry point: `Sandbox::start(config)`.
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// Binds `config.listen`, generates the SNS signing identity and serves every emulated API.
    pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
        server::start(config).await
    }
}
