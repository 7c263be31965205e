//! The Customer Profiles operations (rest-json, SigV4 `profile`, docs/protocols.md B5):
//! SearchProfiles (`POST /domains/{DomainName}/profiles/search?max-results&next-token`),
//! CreateProfile (`POST /domains/{DomainName}/profiles`) and UpdateProfile
//! (`PUT /domains/{DomainName}/profiles`).
//!
//! A call gets in like a Connect control-plane call: the SigV4 `Authorization` header's shape
//! (scope service `profile`, the configured region), then fault injection. Then, in AWS's order:
//! the body and query against the model's constraints (400 `BadRequestException`), the domain
//! (404 `ResourceNotFoundException`), the search keys (400) or the profile (404). Errors are
//! `x-amzn-ErrorType` + `{"Message"}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::clock;
use crate::connect::admission::injected_fault;
use crate::connect::errors::{AwsError, Service, parse, respond_as};
use crate::faults::{self, FaultOp};
use crate::ids;
use crate::profiles::model::Profile;
use crate::profiles::request::{
    CreateProfileRequest, Mode, SearchProfilesRequest, UpdateProfileRequest, Violations,
};
use crate::profiles::search;
use crate::sigv4;
use crate::state::Shared;
use crate::sync::lock;

/// `max-results` when absent.
const DEFAULT_MAX_RESULTS: usize = 20;
const MAX_MAX_RESULTS: i64 = 100;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/domains/{domain}/profiles/search", post(search_profiles))
        .route(
            "/domains/{domain}/profiles",
            post(create_profile).put(update_profile),
        )
}

/// SigV4 (service `profile`), then the fault for `op` (if any).
async fn admit(shared: &Shared, headers: &HeaderMap, op: FaultOp) -> Result<(), AwsError> {
    faults::note_call(op);
    sigv4::check(headers, &shared.cfg.connect.region, "profile").map_err(AwsError::from)?;
    injected_fault(shared, Service::Profiles, op).await
}

fn no_domain(domain: &str) -> AwsError {
    AwsError::not_found(format!("Domain {domain} does not exist"))
}

/// `max-results` and `next-token` of the query string.
fn page_params(
    query: Option<&str>,
    v: &mut Violations,
) -> Result<(usize, Option<String>), AwsError> {
    let mut max_results = DEFAULT_MAX_RESULTS;
    let mut next_token = None;
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "max-results" => {
                let n: i64 = value.parse().map_err(|_| {
                    AwsError::bad_request(format!(
                        "Value '{value}' at 'maxResults' is not a valid integer"
                    ))
                })?;
                v.range("maxResults", n, 1, MAX_MAX_RESULTS);
                max_results = usize::try_from(n).unwrap_or(DEFAULT_MAX_RESULTS);
            }
            "next-token" => {
                v.length("nextToken", &value, 1, 1024);
                next_token = Some(value.into_owned());
            }
            _ => {}
        }
    }
    Ok((max_results, next_token))
}

async fn search_profiles(
    State(shared): State<Arc<Shared>>,
    Path(domain): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond_as(
        Service::Profiles,
        search_profiles_inner(&shared, &headers, &domain, query.as_deref(), &body).await,
    )
}

async fn search_profiles_inner(
    shared: &Shared,
    headers: &HeaderMap,
    domain: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<Value, AwsError> {
    admit(shared, headers, FaultOp::SearchProfiles).await?;
    let req: SearchProfilesRequest = parse(Service::Profiles, body)?;
    let mut v = Violations::default();
    v.name("domainName", domain);
    let (max_results, next_token) = page_params(query, &mut v)?;
    let search = req.check(&mut v);
    v.into_result()?;

    let profiles = lock(&shared.profiles);
    let stored = profiles.domain(domain).ok_or_else(|| no_domain(domain))?;
    search::check_keys(domain, &search)?;
    let fingerprint = search::fingerprint(domain, &search);
    let offset = match &next_token {
        Some(token) => search::token_offset(token, &fingerprint)?,
        None => 0,
    };
    let found: Vec<Value> = stored
        .profiles
        .iter()
        .filter_map(|s| {
            search::found_by(&s.profile, &search)
                .map(|keys| search::item(&s.profile, &search, &keys))
        })
        .collect();
    let end = offset.saturating_add(max_results);
    let items: Vec<Value> = found
        .iter()
        .skip(offset)
        .take(max_results)
        .cloned()
        .collect();
    let mut answer = json!({"Items": items});
    if end < found.len()
        && let Value::Object(obj) = &mut answer
    {
        obj.insert(
            "NextToken".into(),
            Value::String(search::next_token(end, &fingerprint)),
        );
    }
    Ok(answer)
}

async fn create_profile(
    State(shared): State<Arc<Shared>>,
    Path(domain): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond_as(
        Service::Profiles,
        create_profile_inner(&shared, &headers, &domain, &body).await,
    )
}

async fn create_profile_inner(
    shared: &Shared,
    headers: &HeaderMap,
    domain: &str,
    body: &[u8],
) -> Result<Value, AwsError> {
    admit(shared, headers, FaultOp::CreateProfile).await?;
    let req: CreateProfileRequest = parse(Service::Profiles, body)?;
    let mut v = Violations::default();
    v.name("domainName", domain);
    req.fields.validate(Mode::Create, &mut v);
    v.into_result()?;

    let mut profiles = lock(&shared.profiles);
    let stored = profiles
        .domain_mut(domain)
        .ok_or_else(|| no_domain(domain))?;
    let profile_id = ids::hex_token(1);
    let mut profile = Profile {
        profile_id: profile_id.clone(),
        ..Profile::default()
    };
    req.fields.apply(&mut profile);
    stored.insert(profile, clock::now());
    tracing::info!(%domain, %profile_id, "customer profile created");
    Ok(json!({"ProfileId": profile_id}))
}

async fn update_profile(
    State(shared): State<Arc<Shared>>,
    Path(domain): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond_as(
        Service::Profiles,
        update_profile_inner(&shared, &headers, &domain, &body).await,
    )
}

async fn update_profile_inner(
    shared: &Shared,
    headers: &HeaderMap,
    domain: &str,
    body: &[u8],
) -> Result<Value, AwsError> {
    admit(shared, headers, FaultOp::UpdateProfile).await?;
    let req: UpdateProfileRequest = parse(Service::Profiles, body)?;
    let mut v = Violations::default();
    v.name("domainName", domain);
    match &req.profile_id {
        None => v.missing("profileId"),
        Some(id) => v.profile_id("profileId", id),
    }
    req.fields.validate(Mode::Update, &mut v);
    v.into_result()?;
    let profile_id = req.profile_id.unwrap_or_default();

    let mut profiles = lock(&shared.profiles);
    let stored = profiles
        .domain_mut(domain)
        .ok_or_else(|| no_domain(domain))?
        .get_mut(&profile_id)
        .ok_or_else(|| {
            AwsError::not_found(format!(
                "Profile {profile_id} does not exist in domain {domain}"
            ))
        })?;
    req.fields.apply(&mut stored.profile);
    stored.updated_at = clock::now();
    tracing::info!(%domain, %profile_id, "customer profile updated");
    Ok(json!({"ProfileId": profile_id}))
}
