//! The route table: every route ingest-api mounts, in one place. `IngestApi::configure` mounts
//! them, and a test in `openapi.rs` checks that the OpenAPI document describes each (and nothing
//! more).

use crate::{mobile, notice, openapi, providers, receipts, records, users};
use actix_web::http::Method;
use actix_web::{Route, web};

/// Gives a route, already guarded by its method, its handler.
type Handler = fn(Route) -> Route;

/// Every route ingest-api mounts: method, path and handler.
pub(crate) const ROUTES: [(Method, &str, Handler); 23] = [
    (Method::POST, "/api/admin/system/notice", |route| route.to(notice::post_notice)),
    (Method::POST, "/api/admin/notification/mark-read", |route| route.to(receipts::mark_read)),
    (Method::POST, "/api/admin/notification/confirm", |route| route.to(receipts::confirm)),
    (Method::PUT, "/api/admin/users", |route| route.to(users::upsert)),
    (Method::GET, "/api/admin/users", |route| route.to(users::list)),
    (Method::GET, "/api/admin/push/records", |route| route.to(records::list)),
    (Method::GET, "/api/admin/push/records/{message_id}", |route| route.to(records::detail)),
    (Method::GET, "/api/admin/notification/logs", |route| route.to(records::logs)),
    (Method::GET, "/api/admin/users/online", |route| route.to(users::online)),
    (Method::POST, "/api/message_push", |route| route.to(mobile::register)),
    (Method::POST, "/api/message_push/logout", |route| route.to(mobile::logout)),
    (Method::GET, "/api/message_push/config", |route| route.to(mobile::get_config)),
    (Method::POST, "/api/message_push/config", |route| route.to(mobile::set_config)),
    (Method::GET, "/api/message_push/config/providers", |route| route.to(providers::list)),
    (Method::GET, "/api/message_push/config/providers/{provider}", |route| route.to(providers::get)),
    (Method::PUT, "/api/message_push/config/providers/{provider}", |route| route.to(providers::set)),
    (Method::DELETE, "/api/message_push/config/providers/{provider}", |route| route.to(providers::remove)),
    (Method::GET, "/api/message_push/manage", |route| route.to(mobile::manage)),
    (Method::GET, "/api/message_push/logs", |route| route.to(mobile::logs)),
    (Method::GET, "/api/message_push/logs/export", |route| route.to(mobile::export)),
    (Method::POST, "/api/message_push/alarm", |route| route.to(mobile::alarm)),
    (Method::POST, "/api/message_push/logs/{id}/retry", |route| route.to(mobile::retry)),
    (Method::GET, "/api/openapi.json", |route| route.to(openapi::serve)),
];

/// Mounts [`ROUTES`]: one resource per path, holding a route per method and no default service
/// of its own, so that another method gets 405 with `Allow` (ARCHITECTURE.md, "Refusals and their
/// bodies").
pub(crate) fn mount(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&str> = Vec::new();
    for (_, path, _) in &ROUTES {
        if !paths.contains(path) {
            paths.push(path);
        }
    }
    for path in paths {
        let routes = ROUTES.iter().filter(|(_, at, _)| *at == path);
        cfg.service(routes.fold(web::resource(path), |resource, (method, _, handler)| {
            resource.route(handler(web::route().method(method.clone())))
        }));
    }
}
