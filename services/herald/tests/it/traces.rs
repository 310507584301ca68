//! One trace across the services: `herald run ingest-api`, `ws-gateway`, `record-writer` and
//! `mobile-push-worker`, each a process of its own over RabbitMQ, export their spans to an
//! OTLP/HTTP receiver this test starts (JSON encoding). A notice posted with a caller's
//! `traceparent` (and the mobile channel) yields spans in that trace from all four: the API
//! request, the gateway's delivery, the record write, the worker's expansion and the provider
//! send; the API's JSON log line about it carries the trace id.

use crate::helpers::{Endpoints, ServerLeftovers, TokenVia, amqp_url, listener, token};
use actix_web::{HttpResponse, web};
use database::scratch::{Backend, ScratchDatabase};
use runtime::Role;
use runtime::testing::{eventually, holds};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Child;

/// The caller's trace: the W3C example's trace id.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Every span received, as (service.name, span name, trace id).
type Spans = Arc<Mutex<Vec<(String, String, String)>>>;

/// An OTLP/HTTP receiver (JSON) on a free port: it keeps what it is sent.
fn start_receiver(shutdown: tokio_util::sync::CancellationToken) -> (SocketAddr, Spans) {
    let spans: Spans = Arc::default();
    let kept = spans.clone();
    let component = http_server::Component::new("otlp-receiver").routes(move |cfg| {
        let kept = kept.clone();
        cfg.route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes| {
                let kept = kept.clone();
                async move {
                    let export: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let mut kept = kept.lock().unwrap();
                    for resource in export["resourceSpans"].as_array().into_iter().flatten() {
                        let service = resource["resource"]["attributes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|a| a["key"] == "service.name")
                            .and_then(|a| a["value"]["stringValue"].as_str())
                            .unwrap_or_default()
                            .to_owned();
                        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                            for span in scope["spans"].as_array().into_iter().flatten() {
                                let text = |field: &str| span[field].as_str().unwrap_or_default().to_lowercase();
                                kept.push((service.clone(), text("name"), text("traceId")));
                            }
                        }
                    }
                    HttpResponse::Ok().content_type("application/json").body("{}")
                }
            }),
        );
    });
    let socket = listener();
    let addr = socket.local_addr().unwrap();
    let shared = http_server::Shared {
        verifier: runtime::JwtVerifier::new(&crate::helpers::jwt_settings()),
        time: model::TimeFormat::default(),
        metrics: http_server::Registry::new(),
    };
    let settings = runtime::HttpSettings { workers: 1, shutdown_timeout_secs: 1, ..Default::default() };
    tokio::spawn(async move { http_server::serve(socket, &settings, shared, vec![component], shutdown).await });
    (addr, spans)
}

/// `herald run <role>`, exporting spans to `otlp`, its JSON log lines into `log`.
fn run_traced(
    role: &str,
    prefix: &str,
    database: &database::DatabaseSettings,
    otlp: SocketAddr,
    log: &std::path::Path,
) -> (Child, SocketAddr) {
    let (mut command, addr) = crate::roles::role_command(role, prefix, database);
    command
        .env("HERALD_LOG_LEVEL", "warn,ingest_api=info,ws_gateway=info,record_writer=info")
        .env("HERALD_LOG_FORMAT", "json")
        .env("HERALD_LOG_OTLP_ENDPOINT", format!("http://{otlp}"))
        .env("HERALD_LOG_OTLP_PROTOCOL", "json")
        // Export batches every 200 ms rather than every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .stderr(std::fs::File::create(log).unwrap());
    (command.spawn().unwrap(), addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_notice_is_one_trace_across_the_services() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (otlp, spans) = start_receiver(shutdown.clone());
    let prefix = format!("test-trace-{}", uuid::Uuid::new_v4().simple());
    let bus = bus::BusSettings { url: bus::BusUrl::Amqp(amqp_url()), prefix: prefix.clone(), ..Default::default() };
    let leftovers = ServerLeftovers::new(
        bus,
        ScratchDatabase::create(Backend::Postgres).await.expect("PostgreSQL is not reachable"),
    );
    let database = leftovers.database().clone();
    let logs = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&logs).unwrap();
    let (api, api_addr) = run_traced("ingest-api", &prefix, &database, otlp, &logs.join("ingest-api.log"));
    let (gateway, gateway_addr) = run_traced("ws-gateway", &prefix, &database, otlp, &logs.join("ws-gateway.log"));
    let (writer, writer_addr) = run_traced("record-writer", &prefix, &database, otlp, &logs.join("record-writer.log"));
    let (worker, worker_addr) =
        run_traced("mobile-push-worker", &prefix, &database, otlp, &logs.join("mobile-push-worker.log"));
    let endpoints = Endpoints::new(api_addr, gateway_addr);
    for addr in [api_addr, gateway_addr, writer_addr, worker_addr] {
        endpoints.wait_ready(&format!("http://{addr}")).await;
    }
    // User 80's phone, and a provider for it.
    let provider = mock_push::MockProvider::start_local().unwrap();
    let admin = token(1, Role::Admin, "root");
    let (status, _) = endpoints.post(&admin, "/api/message_push/config", &json!({"url": provider.push_url()})).await;
    assert_eq!(status, 200);
    let phone = json!({"pushId": "00000000000000000000000000000c80", "deviceType": "android"});
    let (status, _) = endpoints.post(&token(80, Role::User, "u80"), "/api/message_push", &phone).await;
    assert_eq!(status, 200);

    let mut client = endpoints.ws(&token(80, Role::User, "u80"), TokenVia::Query).await;
    let answer: Value = endpoints
        .http
        .post(format!("{}/api/admin/system/notice", endpoints.api))
        .bearer_auth(token(1, Role::Admin, "root"))
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(&json!({"content": "traced", "target": "custom", "user_ids": [80], "channels": ["websocket", "mobile"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message_id = answer["data"]["message_id"].as_str().expect("accepted").to_owned();
    client.frames_until(&message_id).await;

    let wanted = [
        ("ingest-api", "post_notice"),
        ("ws-gateway", "ws_fan_out"),
        ("record-writer", "record_write"),
        ("mobile-push-worker", "mobile_notice"),
        ("mobile-push-worker", "mobile_send"),
    ];
    eventually("each service's span in the caller's trace", Duration::from_secs(20), || async {
        let spans = spans.lock().unwrap().clone();
        let missing: Vec<_> = wanted
            .iter()
            .filter(|(service, name)| !spans.iter().any(|s| s.0 == *service && s.1 == *name && s.2 == TRACE_ID))
            .collect();
        holds(missing.is_empty(), format_args!("missing {missing:?} among {spans:?}"))
    })
    .await;
    // Nothing of this notice started a trace of its own.
    let spans = spans.lock().unwrap().clone();
    for (service, name) in wanted {
        assert!(spans.iter().filter(|s| s.0 == service && s.1 == name).all(|s| s.2 == TRACE_ID), "{spans:?}");
    }
    // The API's log line about the notice carries the trace id.
    let log = std::fs::read_to_string(logs.join("ingest-api.log")).unwrap();
    let accepted: Value = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "notice accepted")
        .unwrap_or_else(|| panic!("no \"notice accepted\" line in\n{log}"));
    assert_eq!(accepted["span"]["trace_id"], TRACE_ID, "{accepted}");
    assert_eq!(accepted["span"]["message_id"], message_id.as_str(), "{accepted}");
    assert_eq!(provider.mock.received().len(), 1, "the phone was pushed once");
    drop((api, gateway, writer, worker, client));
    provider.stop().await;
    let _ = std::fs::remove_dir_all(&logs);
    shutdown.cancel();
    leftovers.remove().await;
}
