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

/// Mounts `/healthz` and `/readyz` with `readiness`.
pub fn health_routes(readiness: Readiness) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(readiness))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz));
    }
}
