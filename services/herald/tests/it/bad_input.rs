//! Every malformed request gets the spec's error code and a clear message, never a 500.

use crate::helpers::{Embedded, Endpoints, PATIENCE, SECRET, assert_schema, jwt_settings, listener, token};
use bus::{BusSettings, BusUrl};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use runtime::testing::eventually;
use runtime::{Claims, Role};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn admin() -> String {
    token(1, Role::Admin, "admin")
}

/// Asserts a failure answer: status, error code, schema, and a message.
fn assert_failure(status: u16, body: &Value, expected_status: u16, expected_code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_schema("failure-response.schema.json", body);
    assert_eq!(body["data"]["error_code"], expected_code, "{body}");
    assert!(!body["message"].as_str().unwrap_or_default().is_empty());
}

async fn raw_post(
    app: &Endpoints,
    content_type: &str,
    body: impl Into<reqwest::Body>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut request =
        app.http.post(format!("{}/api/admin/system/notice", app.api)).header("Content-Type", content_type).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_an_invalid_request() {
    let app = Embedded::spawn().await;
    let (status, body) = raw_post(&app.endpoints, "application/json", "{\"content\": ", Some(&admin())).await;
    assert_failure(status, &body, 400, "INVALID_REQUEST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_is_an_unsupported_media_type() {
    let app = Embedded::spawn().await;
    let (status, body) = raw_post(&app.endpoints, "text/plain", "content=hello", Some(&admin())).await;
    assert_failure(status, &body, 415, "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_as_too_large() {
    let app = Embedded::spawn().await;
    let huge = json!({"content": "x", "data": {"blob": "a".repeat(100 * 1024)}}).to_string();
    let (status, body) = raw_post(&app.endpoints, "application/json", huge, Some(&admin())).await;
    assert_failure(status, &body, 413, "PAYLOAD_TOO_LARGE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_admin_token_are_refused() {
    let app = Embedded::spawn().await;
    let body = json!({"content": "hello"});
    let expired = {
        let mut claims = Claims::new(1, "admin", Role::Admin, Duration::ZERO);
        claims.exp -= 3600;
        runtime::JwtIssuer::new(&jwt_settings()).issue(&claims).unwrap()
    };
    let forged = {
        let claims = Claims::new(1, "admin", Role::Admin, Duration::from_secs(600));
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"not-the-secret-at-all"),
        )
        .unwrap()
    };
    let alg_none = {
        let claims = Claims::new(1, "admin", Role::Admin, Duration::from_secs(600));
        let real = runtime::JwtIssuer::new(&jwt_settings()).issue(&claims).unwrap();
        let payload = real.split('.').nth(1).unwrap().to_owned();
        // {"alg":"none","typ":"JWT"}, base64url.
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")
    };
    for (case, token) in [
        ("missing", None),
        ("expired", Some(expired)),
        ("forged", Some(forged)),
        ("alg none", Some(alg_none)),
        ("garbage", Some("abc".to_owned())),
    ] {
        let (status, headers, answer) = app.endpoints.post_notice(token.as_deref(), &body).await;
        assert_failure(status, &answer, 401, "UNAUTHORIZED");
        assert_eq!(headers.get("www-authenticate").unwrap(), "Bearer", "{case}");
    }
    let user = token(5, Role::User, "user");
    let (status, _, answer) = app.endpoints.post_notice(Some(&user), &body).await;
    assert_failure(status, &answer, 403, "FORBIDDEN");
    let _ = SECRET;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_violations_answer_with_their_spec_code_and_the_notice_context() {
    let app = Embedded::spawn().await;
    let cases = [
        (json!({"content": "a".repeat(501)}), "CONTENT_TOO_LONG", "content"),
        (json!({"content": "x", "target": "everyone"}), "INVALID_TARGET", "target"),
        (json!({"content": "x", "target": "custom"}), "MISSING_USER_IDS", "user_ids"),
        (
            json!({"content": "x", "target": "custom", "user_ids": (1..=1001).collect::<Vec<i64>>()}),
            "TOO_MANY_USER_IDS",
            "user_ids",
        ),
        (json!({"content": "x", "target": "custom", "user_ids": [1, 1]}), "INVALID_USER_IDS", "user_ids"),
        (json!({"content": "x", "data": {"k": "v".repeat(1100)}}), "DATA_TOO_LARGE", "data"),
        (json!({"content": "x", "priority": 9}), "INVALID_PRIORITY", "priority"),
        (json!({"content": "x", "type": "Bad Type"}), "INVALID_TYPE", "type"),
        (json!({"type": "system_notice"}), "MISSING_CONTENT", "content"),
    ];
    for (body, code, field) in cases {
        let (status, _, answer) = app.endpoints.post_notice(Some(&admin()), &body).await;
        assert_failure(status, &answer, 400, code);
        assert_eq!(answer["data"]["field"], field, "{answer}");
        assert_eq!(answer["data"]["status"], "failed");
        assert!(answer["data"]["push_time"].is_string(), "{answer}");
    }
    let (_, _, answer) = app.endpoints.post_notice(Some(&admin()), &json!({"content": "x", "target": "custom"})).await;
    assert_eq!((answer["data"]["message"].as_str(), answer["data"]["target"].as_str()), (Some("x"), Some("custom")));
    let (status, _, answer) = app.endpoints.post_notice(Some(&admin()), &json!({"content": "x", "usr_ids": [1]})).await;
    assert_failure(status, &answer, 400, "INVALID_REQUEST");
    assert!(answer["message"].as_str().unwrap().contains("usr_ids"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_with_the_envelope() {
    let app = Embedded::spawn().await;
    let response = app.endpoints.http.get(format!("{}/api/nope", app.endpoints.api)).send().await.unwrap();
    let status = response.status().as_u16();
    assert_failure(status, &response.json().await.unwrap(), 404, "NOT_FOUND");
    let response =
        app.endpoints.http.delete(format!("{}/api/admin/system/notice", app.endpoints.api)).send().await.unwrap();
    let status = response.status().as_u16();
    assert_failure(status, &response.json().await.unwrap(), 405, "METHOD_NOT_ALLOWED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_answers_push_failed_quickly_and_reports_not_ready() {
    runtime::install_crypto_provider();
    let shutdown = CancellationToken::new();
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    let settings = herald::Settings {
        jwt: jwt_settings(),
        bus: BusSettings { url: BusUrl::Amqp("amqp://guest:guest@127.0.0.1:1/%2f".into()), ..BusSettings::default() },
        redis: crate::helpers::no_redis(),
        database: crate::helpers::memory_database(),
        ..Default::default()
    };
    crate::helpers::spawn_roles(settings, &[herald::Role::IngestApi], listener, shutdown.clone());
    let app = Endpoints::new(addr, addr);
    let health = format!("{}/healthz", app.api);
    // Not `/readyz`: without a broker it never is.
    eventually("ingest-api to answer /healthz", PATIENCE, || async { app.http.get(&health).send().await.map(drop) })
        .await;
    let started = std::time::Instant::now();
    let (status, headers, answer) = app.post_notice(Some(&admin()), &json!({"content": "lost?"})).await;
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    assert_failure(status, &answer, 503, "PUSH_FAILED");
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    assert_eq!(answer["data"]["message"], "lost?");
    let ready = app.http.get(format!("{}/readyz", app.api)).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    shutdown.cancel();
}

/// U+0000 cannot be stored (PostgreSQL refuses it): refused where it enters, with the field named,
/// in a notice, in the user API, in a query parameter and in a token claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_a_store_cannot_hold_is_refused_at_the_edge_naming_the_field() {
    let app = crate::helpers::Distributed::spawn().await;
    let api = &app.endpoints;
    let nul = "before\u{0}after";
    for (body, field) in [
        (json!({"content": nul}), "content"),
        (json!({"content": "x", "data": {"order": {"note": nul}}}), "data.order.note"),
    ] {
        let (status, _, answer) = api.post_notice(Some(&admin()), &body).await;
        assert_failure(status, &answer, 400, "INVALID_TEXT");
        assert_eq!(answer["data"]["field"], field, "{answer}");
    }
    let (status, answer) =
        api.put(&admin(), "/api/admin/users", &json!({"users": [{"user_id": 5, "name": nul}]})).await;
    assert_failure(status, &answer, 400, "INVALID_TEXT");
    assert_eq!(answer["data"]["field"], "users[0].name");

    let (status, answer) = api.get(&admin(), "/api/admin/push/records?content=%00").await;
    assert_failure(status, &answer, 400, "INVALID_TEXT");
    assert_eq!(answer["data"]["field"], "content");

    let nul_name = token(6, Role::User, nul);
    let mark = json!({"message_id": "1706335800123456789-abc12345"});
    let response = api
        .http
        .post(format!("{}/api/admin/notification/mark-read", api.api))
        .bearer_auth(&nul_name)
        .json(&mark)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_failure(status, &answer, 400, "INVALID_TEXT");
    assert_eq!(answer["data"]["field"], "token claim name");
    let refused = crate::helpers::WsClient::connect(&api.ws, &nul_name, crate::helpers::TokenVia::Query).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 400),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("a token with a NUL name was accepted"),
    }

    // None of it took the replica out of service.
    let ready = api.http.get(format!("{}/readyz", api.api)).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    app.stop().await;
}

/// A page so far out that the rows it skips do not fit a 64-bit offset is a 400, not a dropped
/// connection (the offset once saturated and the SQL driver panicked binding it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_past_any_listing_is_an_invalid_request() {
    let app = Embedded::spawn().await;
    for path in ["/api/admin/users", "/api/admin/push/records", "/api/admin/notification/logs"] {
        let (status, body) =
            app.endpoints.get(&admin(), &format!("{path}?page=9223372036854775806&page_size=20")).await;
        assert_failure(status, &body, 400, "INVALID_REQUEST");
        let (status, _) = app.endpoints.get(&admin(), &format!("{path}?page=1000000&page_size=20")).await;
        assert_eq!(status, 200, "{path}: a far page that fits is just empty");
    }
}
