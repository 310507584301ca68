//! ingest-api and ws-gateway as separate services over the real RabbitMQ.

use crate::helpers::{Distributed, token};
use crate::scenario;
use runtime::Role;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_reach_exactly_the_addressed_connections_over_rabbitmq() {
    let app = Distributed::spawn().await;
    scenario::each_connection_receives_exactly_its_frames(&app.endpoints).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_reports_ready_only_with_its_queue_bound() {
    let app = Distributed::spawn().await;
    let ready: serde_json::Value =
        app.endpoints.http.get(format!("{}/readyz", app.gateway_base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["checks"]["bus_subscription"], "ok");
    assert_eq!(ready["checks"]["bus"], "ok");
    // The API accepts only once the broker confirmed.
    let (status, _, _) =
        app.endpoints.post_notice(Some(&token(1, Role::Admin, "admin")), &json!({"content": "x"})).await;
    assert_eq!(status, 200);
    app.stop().await;
}
