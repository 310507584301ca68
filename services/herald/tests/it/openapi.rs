//! The OpenAPI document against the running all-in-one: every operation it lists is mounted and
//! answers with a status it documents, in the body it documents; the schemas added for receipts,
//! upserts and health match real answers; other methods on a resource get 405 with `Allow`.

use crate::helpers::{Embedded, assert_schema, token};
use runtime::Role;
use serde_json::{Value, json};

const METHODS: [&str; 4] = ["get", "put", "post", "delete"];

/// Validates `instance` against the response schema `response` documents for JSON, resolved
/// inside the served document itself (so the embedded components are what is checked).
fn assert_documented_body(doc: &Value, response: &Value, instance: &Value, at: &str) {
    let schema = &response["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{at}: no JSON schema documented");
    let mut root = doc.clone();
    let object = root.as_object_mut().unwrap();
    for (key, value) in schema.as_object().unwrap() {
        object.insert(key.clone(), value.clone());
    }
    let validator = jsonschema::validator_for(&root).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{at}: {instance} violates its documented schema: {errors:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_answers_a_documented_status_with_a_documented_body() {
    let app = Embedded::spawn().await;
    let http = &app.endpoints.http;
    let doc: Value =
        http.get(format!("{}/api/openapi.json", app.endpoints.api)).send().await.unwrap().json().await.unwrap();
    let admin = token(1, Role::Admin, "admin");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let url = format!("{}{}", app.endpoints.api, path.replace("{message_id}", "1706335800123456789-abc12345"));
            let mut request = http.request(method.to_uppercase().parse().unwrap(), url).bearer_auth(&admin);
            if op.get("requestBody").is_some() {
                request = request.json(&json!({}));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16().to_string();
            let at = format!("{method} {path} -> {status}");
            let documented = &op["responses"][&status];
            assert!(documented.is_object(), "{at}: status not documented");
            let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
            if kind.starts_with("text/csv") {
                // A file: of the documented type, starting with its byte order mark.
                assert!(documented["content"]["text/csv"].is_object(), "{at}: {kind} not documented");
                assert!(response.bytes().await.unwrap().starts_with(b"\xEF\xBB\xBF"), "{at}");
            } else {
                let body: Value = response.json().await.unwrap();
                assert_documented_body(&doc, documented, &body, &at);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 26);
    app.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_upserts_and_health_answers_match_their_schemas() {
    let app = Embedded::spawn().await;
    let api = &app.endpoints.api;
    let http = &app.endpoints.http;
    let admin = token(1, Role::Admin, "admin");
    let accepted = app.endpoints.notice(&admin, json!({"content": "hi", "target": "custom", "user_ids": [2]})).await;

    let bob = token(2, Role::User, "bob");
    for (path, status) in [("mark-read", "read"), ("confirm", "confirmed")] {
        let request = json!({"message_id": accepted.message_id, "user_id": 2});
        assert_schema("receipt-request.schema.json", &request);
        let response = http
            .post(format!("{api}/api/admin/notification/{path}"))
            .bearer_auth(&bob)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_schema("receipt-response.schema.json", &answer);
        assert_eq!(answer["data"]["status"], status);
    }

    let (status, answer) =
        app.endpoints.put(&admin, "/api/admin/users", &json!({"users": [{"user_id": 7}, {"user_id": 7}]})).await;
    assert_eq!(status, 200, "{answer}");
    assert_schema("user-upsert-response.schema.json", &answer);
    assert_eq!(answer["data"]["upserted"], 1);

    let health: Value = http.get(format!("{api}/healthz")).send().await.unwrap().json().await.unwrap();
    assert_schema("health-response.schema.json", &health);
    let ready: Value = http.get(format!("{api}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_schema("readiness-response.schema.json", &ready);
    assert_eq!(ready["status"], "ok");
    app.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_method_on_a_health_route_is_a_405_with_allow_in_the_envelope() {
    let app = Embedded::spawn().await;
    for path in ["/healthz", "/readyz"] {
        for method in ["POST", "TRACE", "DELETE", "PURGE"] {
            let url = format!("{}{path}", app.endpoints.api);
            let response = app.endpoints.http.request(method.parse().unwrap(), url).send().await.unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            assert_eq!(response.headers()["allow"], "GET", "{method} {path}");
            let body: Value = response.json().await.unwrap();
            assert_schema("failure-response.schema.json", &body);
            assert_eq!(body["data"]["error_code"], "METHOD_NOT_ALLOWED");
        }
    }
    app.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_a_documented_path_does_not_answer_is_a_405_allowing_the_documented_ones() {
    let app = Embedded::spawn().await;
    let http = &app.endpoints.http;
    let doc: Value =
        http.get(format!("{}/api/openapi.json", app.endpoints.api)).send().await.unwrap().json().await.unwrap();
    let admin = token(1, Role::Admin, "admin");
    for (path, item) in doc["paths"].as_object().unwrap() {
        let mut documented: Vec<String> =
            METHODS.iter().filter(|m| item.get(**m).is_some()).map(|m| m.to_uppercase()).collect();
        documented.sort();
        let url = format!("{}{}", app.endpoints.api, path.replace("{message_id}", "1706335800123456789-abc12345"));
        let response = http.request("TRACE".parse().unwrap(), url).bearer_auth(&admin).send().await.unwrap();
        let status = response.status().as_u16();
        let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        assert_schema("failure-response.schema.json", &body);
        assert_eq!(status, 405, "TRACE {path}: {body}");
        let mut allowed: Vec<String> = allow.unwrap().split(',').map(|m| m.trim().to_owned()).collect();
        allowed.sort();
        assert_eq!(allowed, documented, "TRACE {path}: Allow differs from the documented methods");
        assert_eq!(body["data"]["error_code"], "METHOD_NOT_ALLOWED");
    }
    app.shutdown.cancel();
}
