//! Every service's `/metrics` after known traffic, over RabbitMQ, Redis and PostgreSQL: the
//! documented series, with the values the traffic makes. (The all-in-one serves the same series
//! once, merged: `all_in_one_serves_every_series_once`.)

use crate::helpers::{Distributed, Embedded, Endpoints, TokenVia, token};
use runtime::Role;
use runtime::testing::{eventually, holds};
use serde_json::json;
use std::time::Duration;

pub async fn scrape(app: &Endpoints, base: &str) -> String {
    let response = app.http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.unwrap()
}

/// The value of the series `series` (name and labels exactly as written), if it is there.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn expect(text: &str, series: &str, want: f64) {
    assert_eq!(value(text, series), Some(want), "{series} in\n{text}");
}

/// Waits until `series` at `base` reads `want`.
async fn until(app: &Endpoints, base: &str, series: &str, want: f64) {
    eventually(&format!("{series} to be {want}"), Duration::from_secs(15), || async {
        let got = value(&scrape(app, base).await, series);
        holds(got == Some(want), format_args!("{got:?}"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_serves_its_metrics_after_known_traffic() {
    let mut app = Distributed::spawn().await;
    let api = app.endpoints.api.clone();
    let (gateway, writer, worker) = (app.gateway_base.clone(), app.writer_base.clone(), app.worker_base.clone());
    let e = &app.endpoints;
    let admin = token(1, Role::Admin, "root");

    // User 70 online gets three notices live; user 71, offline, two, replayed when they connect.
    let mut online = e.ws(&token(70, Role::User, "u70"), TokenVia::Query).await;
    let mut ids = Vec::new();
    for priority in ["normal", "high", "urgent"] {
        ids.push(
            e.notice(&admin, json!({"content": "live", "target": "custom", "user_ids": [70], "priority": priority}))
                .await,
        );
    }
    for accepted in &ids {
        online.frames_until(&accepted.message_id).await;
    }
    for _ in 0..2 {
        e.notice(&admin, json!({"content": "later", "target": "custom", "user_ids": [71]})).await;
    }
    // Two refused: a content over the limit, and no content.
    let (status, _, _) = e.post_notice(Some(&admin), &json!({"content": "x".repeat(501)})).await;
    assert_eq!(status, 400);
    let (status, _, _) = e.post_notice(Some(&admin), &json!({"type": "system_notice"})).await;
    assert_eq!(status, 400);
    let mut later = e.ws(&token(71, Role::User, "u71"), TokenVia::Query).await;
    for _ in 0..2 {
        later.next_text().await;
    }
    drop(later);

    let text = scrape(e, &api).await;
    expect(&text, "herald_notices_accepted_total{priority=\"normal\"}", 3.0);
    expect(&text, "herald_notices_accepted_total{priority=\"high\"}", 1.0);
    expect(&text, "herald_notices_accepted_total{priority=\"urgent\"}", 1.0);
    expect(&text, "herald_notices_accepted_total{priority=\"low\"}", 0.0);
    expect(&text, "herald_notices_refused_total{code=\"CONTENT_TOO_LONG\"}", 1.0);
    expect(&text, "herald_notices_refused_total{code=\"MISSING_CONTENT\"}", 1.0);
    expect(&text, "herald_notices_refused_total{code=\"QUEUE_FULL\"}", 0.0);
    assert!(value(&text, "herald_queue_messages{queue=\"ingress\"}").is_some(), "{text}");

    until(e, &gateway, "herald_ws_connections", 1.0).await;
    let text = scrape(e, &gateway).await;
    expect(&text, "herald_ws_connections_total", 2.0);
    expect(&text, "herald_deliveries_total{channel=\"live\"}", 3.0);
    expect(&text, "herald_deliveries_total{channel=\"offline\"}", 2.0);
    expect(&text, "herald_delivery_latency_seconds_count", 3.0);
    assert!(value(&text, "herald_delivery_latency_seconds_bucket{le=\"30\"}") == Some(3.0), "{text}");
    // Two replays: user 70's (empty) and user 71's (two entries).
    expect(&text, "herald_offline_replay_size_count", 2.0);
    expect(&text, "herald_offline_replay_size_sum", 2.0);

    until(e, &writer, "herald_records_written_total{kind=\"notices\"}", 5.0).await;
    let text = scrape(e, &writer).await;
    expect(&text, "herald_record_lag_seconds_count", 5.0);
    expect(&text, "herald_record_batch_size_sum{kind=\"notices\"}", 5.0);
    for queue in ["records", "records-events"] {
        assert!(value(&text, &format!("herald_queue_messages{{queue=\"{queue}\"}}")).is_some(), "{text}");
    }

    let text = scrape(e, &worker).await;
    expect(&text, "herald_deliveries_total{channel=\"mobile\"}", 0.0);
    expect(&text, "herald_mobile_push_sends_total{outcome=\"sent\",reason=\"none\"}", 0.0);
    for queue in ["mobile-push-worker", "mobile-push-notices"] {
        assert!(value(&text, &format!("herald_queue_messages{{queue=\"{queue}\"}}")).is_some(), "{text}");
    }
    // Each process serves its own series only.
    assert!(!text.contains("herald_ws_connections"), "{text}");

    // A janitor starting catches up on each job's last slot: one run each.
    let janitor = app.spawn_janitor().await;
    let e = &app.endpoints;
    for job in ["device-rules", "retention", "inbox-trim"] {
        until(e, &janitor, &format!("herald_janitor_runs_total{{job=\"{job}\",outcome=\"ran\"}}"), 1.0).await;
    }
    let text = scrape(e, &janitor).await;
    expect(&text, "herald_janitor_runs_total{job=\"retention\",outcome=\"failed\"}", 0.0);
    expect(&text, "herald_janitor_changes_total{job=\"device-rules\",change=\"failing\"}", 0.0);
    drop(online);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_in_one_serves_every_series_once() {
    let app = Embedded::spawn().await;
    let e = &app.endpoints;
    let admin = token(1, Role::Admin, "root");
    let mut online = e.ws(&token(72, Role::User, "u72"), TokenVia::Query).await;
    let accepted = e.notice(&admin, json!({"content": "hello", "target": "custom", "user_ids": [72]})).await;
    online.frames_until(&accepted.message_id).await;
    until(e, &e.api, "herald_records_written_total{kind=\"notices\"}", 1.0).await;
    let text = scrape(e, &e.api).await;
    expect(&text, "herald_notices_accepted_total{priority=\"normal\"}", 1.0);
    expect(&text, "herald_deliveries_total{channel=\"live\"}", 1.0);
    expect(&text, "herald_deliveries_total{channel=\"mobile\"}", 0.0);
    expect(&text, "herald_ws_connections", 1.0);
    // One family per name: every TYPE line once.
    let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let all = types.len();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types.len(), all, "a metric family is written twice:\n{text}");
    for name in [
        "herald_janitor_runs_total",
        "herald_mobile_push_sends_total",
        "herald_queue_messages",
        "herald_record_lag_seconds",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "no {name} in\n{text}");
    }
    drop(online);
    app.shutdown.cancel();
}
