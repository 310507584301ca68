//! Offline inboxes end to end: in the embedded mode and over RabbitMQ and Redis.

use crate::helpers::{Distributed, Embedded};
use crate::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_users_get_their_notices_on_connect_until_they_ack_embedded() {
    let app = Embedded::spawn().await;
    scenario::offline_users_get_their_notices_on_connect_until_they_ack(&app.endpoints).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_users_get_their_notices_on_connect_until_they_ack_over_rabbitmq_and_redis() {
    let app = Distributed::spawn().await;
    scenario::offline_users_get_their_notices_on_connect_until_they_ack(&app.endpoints).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_inbox_keeps_the_newest_hundred_embedded() {
    let app = Embedded::spawn().await;
    scenario::an_overflowing_inbox_replays_the_newest_hundred_and_says_how_many_were_dropped(&app.endpoints).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_inbox_keeps_the_newest_hundred_over_rabbitmq_and_redis() {
    let app = Distributed::spawn().await;
    scenario::an_overflowing_inbox_replays_the_newest_hundred_and_says_how_many_were_dropped(&app.endpoints).await;
    app.stop().await;
}
