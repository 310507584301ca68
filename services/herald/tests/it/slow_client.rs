//! A client that stops reading is disconnected; the others on the gateway are not held up.

use crate::helpers::{Embedded, TokenVia, token};
use runtime::Role;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads a server's byte stream after the handshake; returns the close code if a close frame
/// came, `None` if the connection ended without one.
async fn drain_until_closed(socket: &mut tokio::net::TcpStream) -> Option<u16> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), socket.read(&mut chunk)).await.expect("stream stalled");
        match n {
            Ok(0) | Err(_) => return close_code(&bytes),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
        if let Some(code) = close_code(&bytes) {
            return Some(code);
        }
    }
}

/// The code of the first close frame in a server stream (after the HTTP head), if complete.
fn close_code(bytes: &[u8]) -> Option<u16> {
    let start = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut rest = &bytes[start..];
    while rest.len() >= 2 {
        let opcode = rest[0] & 0x0f;
        let (len, header) = match rest[1] & 0x7f {
            126 if rest.len() >= 4 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 if rest.len() >= 10 => (u64::from_be_bytes(rest[2..10].try_into().ok()?) as usize, 10),
            126 | 127 => return None,
            short => (usize::from(short), 2),
        };
        if rest.len() < header + len {
            return None;
        }
        if opcode == 0x8 && len >= 2 {
            return Some(u16::from_be_bytes([rest[header], rest[header + 1]]));
        }
        rest = &rest[header + len..];
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_as_slow_while_others_keep_receiving() {
    let app = Embedded::spawn_with(|s| {
        s.ws.send_buffer = 16;
        s.ws.write_timeout_ms = 500;
        // Long enough that only slowness can explain a disconnect.
        s.ws.heartbeat_interval_secs = 300;
        s.ws.heartbeat_timeout_secs = 600;
    })
    .await;
    let admin = token(1, Role::Admin, "admin");
    let mut normal = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;

    // The slow client: a tiny receive window, and it reads nothing until the end.
    let addr: std::net::SocketAddr = app.endpoints.api.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(addr).await.unwrap();
    let handshake = format!(
        "GET /ws?token={} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        token(3, Role::User, "slow")
    );
    slow.write_all(handshake.as_bytes()).await.unwrap();

    // About 3 KB a frame, 2000 frames: more than the kernel's socket buffers can absorb (loopback
    // autotunes the send buffer up to 4 MB), so the gateway has to deal with the backlog.
    const NOTICES: usize = 2000;
    let body = json!({"content": "慢".repeat(500), "data": {"pad": "p".repeat(1000)}});
    let reader = tokio::spawn(async move {
        let mut received = 0;
        while received < NOTICES {
            if normal.next_text().await.contains("慢慢慢") {
                received += 1;
            }
        }
        normal.send_text(r#"{"type":"ping"}"#).await;
        let pong = normal.next_text().await;
        (received, pong)
    });
    for _ in 0..NOTICES {
        app.endpoints.notice(&admin, body.clone()).await;
    }
    // The normal client got every notice and is still connected.
    let (received, pong) = reader.await.unwrap();
    assert_eq!(received, NOTICES);
    assert!(pong.contains("pong"), "{pong}");

    // The slow one was cut off: with 4001 when the close frame could still be written, or with
    // the connection simply closed when even that could not get through.
    let code = drain_until_closed(&mut slow).await;
    assert!(code.is_none() || code == Some(4001), "closed with {code:?}");
}
