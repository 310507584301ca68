//! The user directory and presence for admins:
//! - `PUT /api/admin/users`: batch upsert (at most 1000 users);
//! - `GET /api/admin/users`: the directory, paged, with each user's presence;
//! - `GET /api/admin/users/online`: who is online, on which gateway replicas.

use crate::IngestApi;
use crate::openapi;
use actix_web::{HttpRequest, HttpResponse, web};
use http_server::{AdminClaims, Failure};
use model::{ApiResponse, ErrorCode, TimeFormat, UserId};
use runtime::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use state::{DirectoryEntry, OnlineUser, Source, UserProfile, UserQuery};
use std::collections::HashSet;
use utoipa::IntoParams;

/// The largest page a listing returns.
pub const MAX_PAGE_SIZE: u64 = 200;
/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// The longest tenant id or group name, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// The most groups one user may be in.
pub const MAX_GROUPS: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpsertRequest {
    users: Vec<UserInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserInput {
    user_id: i64,
    #[serde(default)]
    name: String,
    #[serde(default = "default_role")]
    role: Role,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

fn default_role() -> Role {
    Role::User
}

fn invalid(message: String) -> Failure {
    Failure::new(ErrorCode::InvalidRequest, message)
}

fn unavailable(err: impl std::fmt::Display) -> Failure {
    tracing::warn!(error = %err, "user directory or presence unavailable");
    let mut failure =
        Failure::new(ErrorCode::ServiceUnavailable, "the user directory is unavailable; retry shortly".to_owned());
    failure.retry_after = Some(1);
    failure
}

impl UserInput {
    /// Checks one entry; `at` names it in the message (`users[3]`).
    fn into_profile(self, at: &str) -> Result<UserProfile, Failure> {
        if self.user_id <= 0 {
            return Err(invalid(format!("{at}.user_id must be a positive integer, got {}", self.user_id)));
        }
        validation::check_storable(&format!("{at}.name"), &self.name)?;
        if let Some(tenant) = &self.tenant_id {
            validation::check_storable(&format!("{at}.tenant_id"), tenant)?;
        }
        for group in &self.groups {
            validation::check_storable(&format!("{at}.groups"), group)?;
        }
        if self.name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid(format!("{at}.name is longer than {MAX_NAME_CHARS} characters")));
        }
        if let Some(tenant) = &self.tenant_id
            && (tenant.is_empty() || tenant.chars().count() > MAX_TAG_CHARS)
        {
            return Err(invalid(format!("{at}.tenant_id must be 1 to {MAX_TAG_CHARS} characters")));
        }
        if self.groups.len() > MAX_GROUPS {
            return Err(invalid(format!("{at}.groups may hold at most {MAX_GROUPS} groups")));
        }
        if let Some(bad) = self.groups.iter().find(|g| g.is_empty() || g.chars().count() > MAX_TAG_CHARS) {
            return Err(invalid(format!("{at}.groups: {bad:?} must be 1 to {MAX_TAG_CHARS} characters")));
        }
        Ok(UserProfile {
            user_id: self.user_id,
            name: self.name,
            role: self.role,
            tenant_id: self.tenant_id,
            groups: self.groups,
        })
    }
}

/// `PUT /api/admin/users`: inserts or updates up to 1000 users. A user listed twice counts once
/// (the last entry wins); a name left out or empty is stored empty.
#[utoipa::path(
    put,
    path = "/api/admin/users",
    operation_id = "upsertUsers",
    tag = "users",
    summary = "Add or update users of the directory",
    description = "Batch upsert of 1 to 1000 users. The directory is how `admin` notices reach admins who are \
        offline; users are also recorded from their token when they connect (the token's role wins then). Admin role.",
    security(("bearer" = [])),
    request_body = openapi::UserUpsertRequest,
    responses(
        (status = 200, description = "Upserted", body = openapi::UserUpsertResponse),
        (status = 400, body = openapi::FailureResponse,
            description = "INVALID_REQUEST: a malformed batch; the message names the entry and field"),
        openapi::AdminRefusals,
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
        openapi::BodyRefusals,
    ),
)]
pub async fn upsert(
    _admin: AdminClaims,
    api: web::Data<IngestApi>,
    body: web::Json<Value>,
) -> Result<HttpResponse, Failure> {
    let request: UpsertRequest = serde_path_to_error::deserialize(body.into_inner())
        .map_err(|err| invalid(format!("invalid user batch: {err}")))?;
    if request.users.is_empty() || request.users.len() > state::directory::MAX_BATCH {
        return Err(invalid(format!("users must hold 1 to {} entries", state::directory::MAX_BATCH)));
    }
    let profiles = request
        .users
        .into_iter()
        .enumerate()
        .map(|(i, user)| user.into_profile(&format!("users[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let upserted = api.stores.directory.upsert(&profiles, Source::Admin).await.map_err(unavailable)?;
    tracing::info!(upserted, "users upserted");
    Ok(HttpResponse::Ok().json(ApiResponse::ok(serde_json::json!({ "upserted": upserted }))))
}

/// The query of `GET /api/admin/users`; it is also what the OpenAPI document says it is.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// 1-based page (default 1)
    #[serde(default)]
    #[param(value_type = Option<openapi::PageNumber>, inline)]
    page: Option<u64>,
    /// Entries per page, 1 to 200 (default 20)
    #[serde(default)]
    #[param(value_type = Option<openapi::UserPageSize>, inline)]
    page_size: Option<u64>,
    /// Only users of this role
    #[serde(default)]
    #[param(value_type = Option<openapi::RoleName>, inline)]
    role: Option<Role>,
    /// Only this tenant's users
    #[serde(default)]
    tenant_id: Option<String>,
}

/// A page of a listing (the shape of spec 6.3's records page, without stats).
#[derive(Debug, Serialize)]
struct Page<T> {
    page: u64,
    page_size: u64,
    total: u64,
    items: Vec<T>,
}

/// One directory entry as the API shows it.
#[derive(Debug, Serialize)]
struct UserView {
    user_id: UserId,
    name: String,
    role: Role,
    tenant_id: Option<String>,
    groups: Vec<String>,
    is_online: bool,
    created_at: String,
    updated_at: String,
    last_seen_at: Option<String>,
}

impl UserView {
    fn new(entry: DirectoryEntry, online: &HashSet<UserId>, time: &TimeFormat) -> Self {
        let profile = entry.profile;
        Self {
            is_online: online.contains(&profile.user_id),
            user_id: profile.user_id,
            name: profile.name,
            role: profile.role,
            tenant_id: profile.tenant_id,
            groups: profile.groups,
            created_at: time.format(entry.created_at),
            updated_at: time.format(entry.updated_at),
            last_seen_at: entry.last_seen_at.map(|at| time.format(at)),
        }
    }
}

/// The page and page size a listing asked for, given its (default, largest) page size.
pub(crate) fn paging(
    page: Option<u64>,
    page_size: Option<u64>,
    (default_page_size, max_page_size): (u64, u64),
) -> Result<(u64, u64), Failure> {
    let page = page.unwrap_or(1);
    let page_size = page_size.unwrap_or(default_page_size);
    if page == 0 {
        return Err(invalid("page starts at 1".to_owned()));
    }
    if page_size == 0 || page_size > max_page_size {
        return Err(invalid(format!("page_size must be 1 to {max_page_size}")));
    }
    // The rows skipped must fit the database's 64-bit offset.
    if (page - 1).checked_mul(page_size).is_none_or(|offset| offset > i64::MAX as u64) {
        return Err(invalid(format!("page {page} is past any listing (page_size {page_size})")));
    }
    Ok((page, page_size))
}

/// `GET /api/admin/users?page=&page_size=&role=&tenant_id=`: the directory in user id order.
#[utoipa::path(
    get,
    path = "/api/admin/users",
    operation_id = "listUsers",
    tag = "users",
    summary = "List the user directory",
    description = "In user id order, each user with presence. Admin role.",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page", body = openapi::UserPageResponse),
        (status = 400, description = "INVALID_REQUEST: a bad or unknown parameter, named in the message",
            body = openapi::FailureResponse),
        openapi::AdminRefusals,
        (status = 503, description = "SERVICE_UNAVAILABLE: the database or presence is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
    ),
)]
pub async fn list(req: HttpRequest, _admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let params: ListParams = http_server::query(&req)?;
    let (page, page_size) = paging(params.page, params.page_size, (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))?;
    let query = UserQuery { role: params.role, tenant_id: params.tenant_id, page, page_size };
    let found = api.stores.directory.list(&query).await.map_err(unavailable)?;
    let online: HashSet<UserId> =
        api.stores.presence.online_users().await.map_err(unavailable)?.iter().map(|u| u.user_id).collect();
    let items = found.items.into_iter().map(|entry| UserView::new(entry, &online, &api.time)).collect();
    Ok(HttpResponse::Ok().json(ApiResponse::ok(Page { page, page_size, total: found.total, items })))
}

/// The query of `GET /api/admin/users/online`; it is also what the OpenAPI document says it is.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct OnlineParams {
    /// 1-based page (default 1)
    #[serde(default)]
    #[param(value_type = Option<openapi::PageNumber>, inline)]
    page: Option<u64>,
    /// Entries per page, 1 to 200 (default 20)
    #[serde(default)]
    #[param(value_type = Option<openapi::UserPageSize>, inline)]
    page_size: Option<u64>,
}

/// `GET /api/admin/users/online?page=&page_size=`: online users in user id order, with their
/// connection count and the gateway replicas holding them.
#[utoipa::path(
    get,
    path = "/api/admin/users/online",
    operation_id = "onlineUsers",
    tag = "users",
    summary = "Who is online, on which gateway replicas",
    description = "Users with a live WebSocket connection, in user id order, with their connection count. Admin role.",
    security(("bearer" = [])),
    params(OnlineParams),
    responses(
        (status = 200, description = "A page", body = openapi::OnlineUsersResponse),
        (status = 400, description = "INVALID_REQUEST: a bad or unknown parameter, named in the message",
            body = openapi::FailureResponse),
        openapi::AdminRefusals,
        (status = 503, description = "SERVICE_UNAVAILABLE: presence is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
    ),
)]
pub async fn online(req: HttpRequest, _admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let params: OnlineParams = http_server::query(&req)?;
    let (page, page_size) = paging(params.page, params.page_size, (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))?;
    let everyone = api.stores.presence.online_users().await.map_err(unavailable)?;
    let total = everyone.len() as u64;
    let skip = usize::try_from((page - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
    let items: Vec<OnlineUser> = everyone.into_iter().skip(skip).take(page_size as usize).collect();
    Ok(HttpResponse::Ok().json(ApiResponse::ok(Page { page, page_size, total, items })))
}
