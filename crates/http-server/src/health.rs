//! `/healthz` (the process is alive) and `/readyz` (its dependencies are reachable).

use actix_web::{HttpResponse, web};
use serde_json::json;
use std::sync::Arc;

type Check = Arc<dyn Fn() -> bool + Send + Sync>;

/// Named readiness checks; `/readyz` answers 503 while any of them fails.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    /// Adds a check.
    pub fn check(mut self, name: &'static str, check: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        self.checks.push((name, Arc::new(check)));
        self
    }

    /// Merges another set of checks into this one.
    pub fn merge(mut self, other: Readiness) -> Self {
        self.checks.extend(other.checks);
        self
    }

    /// Whether every check passes right now.
    pub fn is_ready(&self) -> bool {
        self.checks.iter().all(|(_, check)| check())
    }

    fn report(&self) -> (bool, serde_json::Map<String, serde_json::Value>) {
        let mut all_ok = true;
        let mut report = serde_json::Map::new();
        for (name, check) in &self.checks {
            let ok = check();
            all_ok &= ok;
            report.insert((*name).to_owned(), json!(if ok { "ok" } else { "unavailable" }));
        }
        (all_ok, report)
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let (ok, checks) = readiness.report();
    let body = json!({"status": if ok { "ok" } else { "unavailable" }, "checks": checks});
    if ok { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

/// Mounts `/healthz` and `/readyz` with `readiness`. Each is a resource of its own, so another
/// method gets actix's 405 with `Allow: GET` (in the envelope, from `serve`), not a 404.
pub fn health_routes(readiness: Readiness) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(readiness))
            .service(web::resource("/healthz").get(healthz))
            .service(web::resource("/readyz").get(readyz));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::{Method, StatusCode, header};
    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, call_service, init_service, read_body_json};

    #[actix_web::test]
    async fn another_method_on_a_health_route_is_a_405_naming_get() {
        let app = init_service(
            actix_web::App::new()
                .wrap(from_fn(crate::failure_envelope))
                .configure(health_routes(Readiness::default().check("down", || false))),
        )
        .await;
        for path in ["/healthz", "/readyz"] {
            for method in [Method::POST, Method::TRACE, Method::DELETE] {
                let res =
                    call_service(&app, TestRequest::default().method(method.clone()).uri(path).to_request()).await;
                assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert_eq!(res.headers().get(header::ALLOW).unwrap(), "GET", "{method} {path}");
                let body: serde_json::Value = read_body_json(res).await;
                assert_eq!(body["data"]["error_code"], "METHOD_NOT_ALLOWED", "{body}");
            }
        }
        let res = call_service(&app, TestRequest::get().uri("/readyz").to_request()).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = read_body_json(res).await;
        assert_eq!(body, json!({"status": "unavailable", "checks": {"down": "unavailable"}}));
    }
}
