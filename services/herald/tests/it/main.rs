//! Herald's system tests: the services over HTTP and WebSocket, distributed over the real
//! RabbitMQ, embedded in-process, and as the all-in-one binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod all_in_one;
mod backpressure;
mod bad_input;
mod directory;
mod distributed;
mod durability;
mod failover;
mod fallback;
mod helpers;
mod idempotency;
mod janitor_cli;
mod limits;
mod metrics;
mod mobile;
mod offline;
mod openapi;
mod poison;
mod providers;
mod receipts;
mod records;
mod redelivery;
mod replicas;
mod roles;
mod scenario;
mod slow_client;
mod traces;
mod websocket;
mod ws_limits;
