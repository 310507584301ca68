//! The push config API's providers (admin), beside the original's provider URL:
//! - `GET /api/message_push/config/providers`: FCM, APNs and Web Push, each with the settings an
//!   admin set, or `null` where the mobile-push-worker's config file applies;
//! - `GET` / `PUT` / `DELETE /api/message_push/config/providers/{provider}`: one of them; `PUT`
//!   replaces its settings, `DELETE` gives it back to the config file.
//!
//! The settings name their secret by reference (`file:/path` on the worker, or `env:NAME` of the
//! worker's environment): the API never takes, stores or shows a key. The workers read the table
//! every `mobile.provider_reload_ms` and switch to new settings once they load.

use crate::IngestApi;
use crate::mobile::unavailable;
use crate::openapi;
use actix_web::{HttpRequest, HttpResponse, web};
use http_server::{AdminClaims, Failure};
use mobile::StoredProvider;
use model::{ApiResponse, ErrorCode, PushProvider, TimeFormat};
use serde::Serialize;
use serde_json::Value;

/// One provider as the API shows it.
#[derive(Debug, Serialize)]
struct ProviderView {
    provider: &'static str,
    config_type: i16,
    /// `api` when an admin set its settings, `config_file` when the worker's own apply.
    source: &'static str,
    settings: Option<Value>,
    create_time: Option<String>,
    update_time: Option<String>,
}

impl ProviderView {
    /// `provider` as `stored` (every provider's stored settings) has it.
    fn of(provider: PushProvider, stored: &[StoredProvider], time: &TimeFormat) -> Self {
        Self::new(provider, stored.iter().find(|stored| stored.settings.provider() == provider), time)
    }

    fn new(provider: PushProvider, stored: Option<&StoredProvider>, time: &TimeFormat) -> Self {
        Self {
            provider: provider.as_str(),
            config_type: provider.config_type(),
            source: if stored.is_some() { "api" } else { "config_file" },
            settings: stored.map(|stored| stored.settings.to_json()),
            create_time: stored.map(|stored| time.format_millis(stored.create_time)),
            update_time: stored.map(|stored| time.format_millis(stored.update_time)),
        }
    }
}

#[derive(Debug, Serialize)]
struct ProvidersView {
    providers: Vec<ProviderView>,
}

/// The provider the path names.
fn provider(req: &HttpRequest) -> Result<PushProvider, Failure> {
    let raw = req.match_info().get("provider").unwrap_or_default();
    PushProvider::parse(raw).ok_or_else(|| {
        let names = PushProvider::NAMES.join(", ");
        let mut failure = Failure::new(ErrorCode::NotFound, format!("no push provider {raw:?}; there are {names}"));
        failure.data.field = Some("provider".to_owned());
        failure
    })
}

/// `GET /api/message_push/config/providers`: every provider's settings.
#[utoipa::path(
    get,
    path = "/api/message_push/config/providers",
    operation_id = "listPushProviders",
    tag = "mobile",
    summary = "Read the push providers' settings",
    description = "FCM (`config_type` 2), APNs (3) and Web Push (4): each with the settings an admin set \
        (`source` `api`), or `settings` `null` where the mobile-push-worker's config file applies (`source` \
        `config_file`). Secrets appear only as the references they were set with. Admin role.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The providers", body = openapi::PushProvidersResponse),
        openapi::AdminRefusals,
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
    ),
)]
pub async fn list(_admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let stored = api.mobile.provider_settings().await.map_err(unavailable)?;
    let providers =
        PushProvider::ALL.into_iter().map(|provider| ProviderView::of(provider, &stored, &api.time)).collect();
    Ok(HttpResponse::Ok().json(ApiResponse::ok(ProvidersView { providers })))
}

/// `GET /api/message_push/config/providers/{provider}`: one provider's settings.
#[utoipa::path(
    get,
    path = "/api/message_push/config/providers/{provider}",
    operation_id = "getPushProvider",
    tag = "mobile",
    summary = "Read one push provider's settings",
    description = "As in the listing: the settings an admin set, or `null` where the worker's config file applies. \
        Admin role.",
    security(("bearer" = [])),
    params(("provider" = inline(openapi::ProviderName), Path, description = "fcm, apns or web_push")),
    responses(
        (status = 200, description = "The provider", body = openapi::PushProviderResponse),
        openapi::AdminRefusals,
        (status = 404, description = "NOT_FOUND: no such provider (`data.field` is `provider`)",
            body = openapi::FailureResponse),
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
    ),
)]
pub async fn get(req: HttpRequest, _admin: AdminClaims, api: web::Data<IngestApi>) -> Result<HttpResponse, Failure> {
    let provider = provider(&req)?;
    let stored = api.mobile.provider_settings().await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(ApiResponse::ok(ProviderView::of(provider, &stored, &api.time))))
}

/// `PUT /api/message_push/config/providers/{provider}`: sets one provider's settings.
#[utoipa::path(
    put,
    path = "/api/message_push/config/providers/{provider}",
    operation_id = "setPushProvider",
    tag = "mobile",
    summary = "Set one push provider's settings",
    description = "Replaces the provider's settings (the config file's no longer apply to it). The secret is a \
        reference the mobile-push-worker resolves: `file:/path` of a file it reads (a mounted secret) or `env:NAME` \
        of a variable of its environment; a key posted in its place is refused and not stored. FCM: `credentials` \
        (the service account's JSON key), `project_id` (default: the key's), `url`. APNs: `key` (the `.p8`), \
        `key_id`, `team_id`, `topic` (the bundle id), `url`. Web Push: `vapid_key`, `subject` (`mailto:` or \
        `https://`), `ttl_secs` (1 to 86400, default 43200), `hosts` (the push services sent to). The workers \
        switch to the new settings within `mobile.provider_reload_ms` once the secret loads; until it does they \
        keep the settings before, log why and set `herald_mobile_push_provider_settings_broken`. Admin role.",
    security(("bearer" = [])),
    params(("provider" = inline(openapi::ProviderName), Path, description = "fcm, apns or web_push")),
    request_body = openapi::PushProviderRequest,
    responses(
        (status = 200, description = "Set", body = openapi::PushProviderResponse),
        (status = 400, body = openapi::FailureResponse,
            description = "INVALID_REQUEST: a malformed body, a field out of its bounds, or a key in place of its \
                reference; `data.field` names the field"),
        openapi::AdminRefusals,
        (status = 404, description = "NOT_FOUND: no such provider (`data.field` is `provider`)",
            body = openapi::FailureResponse),
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
        openapi::BodyRefusals,
    ),
)]
pub async fn set(
    req: HttpRequest,
    AdminClaims(admin): AdminClaims,
    api: web::Data<IngestApi>,
    raw: web::Json<Value>,
) -> Result<HttpResponse, Failure> {
    let provider = provider(&req)?;
    let settings = validation::providers::check_provider_settings(provider, raw.into_inner())?;
    let stored = api.mobile.set_provider_settings(&settings).await.map_err(unavailable)?;
    tracing::info!(admin = admin.sub, provider = provider.as_str(), "push provider settings set");
    Ok(HttpResponse::Ok().json(ApiResponse::ok(ProviderView::new(provider, Some(&stored), &api.time))))
}

/// `DELETE /api/message_push/config/providers/{provider}`: gives the provider back to the config
/// file.
#[utoipa::path(
    delete,
    path = "/api/message_push/config/providers/{provider}",
    operation_id = "removePushProvider",
    tag = "mobile",
    summary = "Remove one push provider's settings",
    description = "Removes the settings an admin set: the mobile-push-worker's config file applies to the \
        provider again (or, where it configures none, the provider is off). Removing settings that are not \
        there changes nothing. Admin role.",
    security(("bearer" = [])),
    params(("provider" = inline(openapi::ProviderName), Path, description = "fcm, apns or web_push")),
    responses(
        (status = 200, description = "Removed: `source` is `config_file`", body = openapi::PushProviderResponse),
        openapi::AdminRefusals,
        (status = 404, description = "NOT_FOUND: no such provider (`data.field` is `provider`)",
            body = openapi::FailureResponse),
        (status = 503, description = "SERVICE_UNAVAILABLE: the database is unavailable; retry",
            body = openapi::FailureResponse,
            headers(("Retry-After" = inline(openapi::RetrySeconds), description = "Whole seconds to wait before trying again"))),
    ),
)]
pub async fn remove(
    req: HttpRequest,
    AdminClaims(admin): AdminClaims,
    api: web::Data<IngestApi>,
) -> Result<HttpResponse, Failure> {
    let provider = provider(&req)?;
    if api.mobile.remove_provider_settings(provider).await.map_err(unavailable)? {
        tracing::info!(admin = admin.sub, provider = provider.as_str(), "push provider settings removed");
    }
    Ok(HttpResponse::Ok().json(ApiResponse::ok(ProviderView::new(provider, None, &api.time))))
}
