//! The WebSocket endpoint's handshake, client frames, limits and close codes.

use crate::helpers::{Embedded, TokenVia, WsClient, assert_schema, jwt_settings, token};
use runtime::{Claims, Role};
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_without_a_valid_token_is_refused_with_401() {
    let app = Embedded::spawn().await;
    let expired = {
        let mut claims = Claims::new(2, "alice", Role::User, Duration::ZERO);
        claims.exp -= 3600;
        runtime::JwtIssuer::new(&jwt_settings()).issue(&claims).unwrap()
    };
    for bad in ["", "garbage", expired.as_str()] {
        match WsClient::connect(&app.endpoints.ws, bad, TokenVia::Query).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401);
                let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
                assert_schema("failure-response.schema.json", &body);
                assert_eq!(body["data"]["error_code"], "UNAUTHORIZED");
            }
            Ok(_) => panic!("token {bad:?} was accepted"),
            Err(other) => panic!("unexpected error {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_frame_gets_a_pong_and_a_bad_frame_an_error_frame_without_closing() {
    let app = Embedded::spawn().await;
    let mut ws = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;
    ws.send_text("this is not json").await;
    let error: Value = serde_json::from_str(&ws.next_text().await).unwrap();
    assert_schema("ws-message.schema.json", &error);
    assert_eq!((error["type"].as_str(), error["data"]["code"].as_str()), (Some("error"), Some("INVALID_FRAME")));
    ws.send_text(r#"{"type":"ping"}"#).await;
    let pong: Value = serde_json::from_str(&ws.next_text().await).unwrap();
    assert_schema("ws-message.schema.json", &pong);
    assert_eq!(pong["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_frame_closes_with_1003() {
    let app = Embedded::spawn().await;
    let mut ws = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;
    ws.send(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(u16::from(ws.closed().await.unwrap().code), 1003);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_frame_closes_with_1009() {
    let app = Embedded::spawn().await;
    let mut ws = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;
    ws.send_text(&"x".repeat(64 * 1024)).await;
    assert_eq!(u16::from(ws.closed().await.unwrap().code), 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_answers_pings_is_closed_for_heartbeat_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = Embedded::spawn_with(|s| {
        s.ws.heartbeat_interval_secs = 1;
        s.ws.heartbeat_timeout_secs = 2;
    })
    .await;
    // A raw client: it completes the handshake, then never reads or answers a ping, the way a
    // vanished peer behaves. (tungstenite would answer pings by itself.)
    let addr = app.endpoints.api.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let handshake = format!(
        "GET /ws?token={} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        token(2, Role::User, "alice")
    );
    socket.write_all(handshake.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let started = std::time::Instant::now();
    let close_code = loop {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "connection dropped without a close frame");
        received.extend_from_slice(&chunk[..n]);
        if let Some(code) = close_code_in(&received) {
            break code;
        }
    };
    assert_eq!(close_code, 4000);
    assert!(started.elapsed() >= Duration::from_secs(2), "closed before the timeout");
}

/// The close code of the first close frame in a server byte stream after the HTTP 101 head.
fn close_code_in(bytes: &[u8]) -> Option<u16> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut frames = &bytes[head_end..];
    while frames.len() >= 2 {
        let (opcode, len) = (frames[0] & 0x0f, usize::from(frames[1] & 0x7f));
        // Server frames are unmasked, and these control frames are short.
        if frames.len() < 2 + len {
            return None;
        }
        if opcode == 0x8 && len >= 2 {
            return Some(u16::from_be_bytes([frames[2], frames[3]]));
        }
        frames = &frames[2 + len..];
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_connections_with_1001() {
    let app = Embedded::spawn().await;
    let mut ws = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Subprotocol).await;
    app.shutdown.cancel();
    assert_eq!(u16::from(ws.closed().await.unwrap().code), 1001);
}
