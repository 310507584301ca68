//! What one WebSocket client can make the gateway hold: frames over the limit are refused on
//! their declared length (1009 at once, memory unchanged), fragmented messages count whole,
//! invalid UTF-8 closes with 1007, one user may hold only so many connections (4003), a
//! client's frames are read no faster than its allowance, and a token is never echoed back.
//!
//! Frames are written by hand on a raw socket here: a client library would refuse to send them.

use crate::all_in_one::herald;
use crate::helpers::{Embedded, Endpoints, TokenVia, WsClient, free_addr, token};
use runtime::Role;
use runtime::testing::eventually;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A WebSocket whose frames the test writes byte by byte.
struct RawSocket {
    stream: TcpStream,
    /// The handshake's response head.
    head: String,
}

impl RawSocket {
    /// Upgrades `GET /ws` at `addr` with `token` in the query and `protocols` offered.
    async fn open(addr: std::net::SocketAddr, token: &str, protocols: Option<&str>) -> Self {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let offered = protocols.map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n")).unwrap_or_default();
        let request = format!(
            "GET /ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offered}\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(stream.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Self { stream, head }
    }

    /// Writes a masked client frame header declaring `length` bytes.
    async fn header(&mut self, fin: bool, opcode: u8, length: u64) {
        let mut bytes = vec![(u8::from(fin) << 7) | opcode];
        match length {
            0..=125 => bytes.push(0x80 | length as u8),
            126..=0xFFFF => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(length as u16).to_be_bytes());
            }
            _ => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&length.to_be_bytes());
            }
        }
        bytes.extend_from_slice(&[0, 0, 0, 0]); // a zero mask leaves the payload as written
        self.stream.write_all(&bytes).await.unwrap();
    }

    /// Writes a whole frame.
    async fn frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.header(fin, opcode, payload.len() as u64).await;
        self.stream.write_all(payload).await.unwrap();
    }

    /// The close code of the server's close frame, skipping other frames; `None` if the
    /// connection ends without one.
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            let first = tokio::time::timeout(Duration::from_secs(10), self.stream.read_u8()).await.ok()?.ok()?;
            let second = self.stream.read_u8().await.ok()?;
            let length = match second & 0x7F {
                126 => u64::from(self.stream.read_u16().await.ok()?),
                127 => self.stream.read_u64().await.ok()?,
                short => u64::from(short),
            };
            let mut payload = vec![0; length as usize];
            self.stream.read_exact(&mut payload).await.ok()?;
            if first & 0x0F == 0x8 {
                return payload.get(..2).map(|code| u16::from_be_bytes([code[0], code[1]]));
            }
        }
    }
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_declared_over_the_limit_closes_at_once_and_costs_no_memory() {
    let addr = free_addr();
    let mut child = herald()
        .env("HERALD_DATABASE_URL", "sqlite::memory:")
        .env("HERALD_HTTP_ADDR", addr.to_string())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let endpoints = Endpoints::new(addr, addr);
    endpoints.wait_ready(&endpoints.api.clone()).await;
    let pid = child.id().unwrap();
    let alice = token(2, Role::User, "alice");

    // A header declaring 2^40 bytes, then silence: closed at once, not by the heartbeat.
    let mut silent = RawSocket::open(addr, &alice, None).await;
    let started = Instant::now();
    silent.header(true, 0x1, 1 << 40).await;
    assert_eq!(silent.close_code().await, Some(1009));
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

    // Three clients each pushing a 256 MiB frame as fast as they can: each is closed after the
    // header, and the process does not grow by what they send.
    let before = rss_kib(pid);
    let floods: Vec<_> = (0..3)
        .map(|_| {
            let alice = alice.clone();
            tokio::spawn(async move {
                let mut flood = RawSocket::open(addr, &alice, None).await;
                flood.header(true, 0x1, 256 << 20).await;
                let chunk = vec![b'x'; 1 << 20];
                let mut sent = 0_usize;
                for _ in 0..256 {
                    if flood.stream.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                (flood.close_code().await, sent)
            })
        })
        .collect();
    for flood in floods {
        let (code, _sent) = flood.await.unwrap();
        assert!(matches!(code, Some(1009) | None), "closed with {code:?}");
    }
    let grown = rss_kib(pid).saturating_sub(before);
    assert!(grown < 32 * 1024, "the process grew by {grown} KiB while clients sent 768 MiB of refused frames");

    let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragmented_message_over_the_limit_closes_with_1009_and_bad_utf8_with_1007() {
    let app = Embedded::spawn().await;
    let addr = app.endpoints.api.trim_start_matches("http://").parse().unwrap();
    let alice = token(2, Role::User, "alice");

    let mut fragmented = RawSocket::open(addr, &alice, None).await;
    let piece = vec![b'a'; 10 * 1024];
    fragmented.frame(false, 0x1, &piece).await;
    fragmented.frame(true, 0x0, &piece).await;
    assert_eq!(fragmented.close_code().await, Some(1009));

    let mut invalid = RawSocket::open(addr, &alice, None).await;
    invalid.frame(true, 0x1, &[0x7b, 0xff, 0xfe, 0x7d]).await;
    assert_eq!(invalid.close_code().await, Some(1007));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_past_the_connection_limit_is_closed_with_4003() {
    let app = Embedded::spawn_with(|settings| settings.ws.max_connections_per_user = 3).await;
    let alice = token(2, Role::User, "alice");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(app.endpoints.ws(&alice, TokenVia::Query).await);
    }
    let mut fourth = WsClient::connect(&app.endpoints.ws, &alice, TokenVia::Query).await.unwrap();
    assert_eq!(u16::from(fourth.closed().await.unwrap().code), 4003);
    app.endpoints.ws(&token(3, Role::User, "bob"), TokenVia::Query).await;
    // One closes: there is room again.
    drop(held.pop());
    eventually("room for a connection after one closed", Duration::from_secs(10), || async {
        let mut again = WsClient::connect(&app.endpoints.ws, &alice, TokenVia::Query).await.unwrap();
        again.send_text(r#"{"type":"ping"}"#).await;
        match again.try_next_text().await {
            Some(frame) if frame.contains("pong") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_its_frame_allowance_is_read_no_faster() {
    let app = Embedded::spawn_with(|settings| {
        settings.ws.client_frames_per_second = 4;
        settings.ws.client_frame_burst = 4;
    })
    .await;
    let mut ws = app.endpoints.ws(&token(2, Role::User, "alice"), TokenVia::Query).await;
    let started = Instant::now();
    for _ in 0..12 {
        ws.send_text(r#"{"type":"ping"}"#).await;
    }
    for _ in 0..12 {
        assert!(ws.next_text().await.contains("pong"));
    }
    // The first few within the burst (one went on going live), the rest at 4 per second.
    assert!(started.elapsed() >= Duration::from_millis(1500), "12 frames read in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_offered_as_a_subprotocol_is_never_echoed() {
    let app = Embedded::spawn().await;
    let addr = app.endpoints.api.trim_start_matches("http://").parse().unwrap();
    let alice = token(2, Role::User, "alice");
    let with_bearer = RawSocket::open(addr, "", Some(&format!("bearer, {alice}"))).await;
    let protocol = |head: &str| {
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("sec-websocket-protocol:"))
            .map(|l| l.split_once(':').unwrap().1.trim().to_owned())
    };
    assert_eq!(protocol(&with_bearer.head).as_deref(), Some("bearer"));
    let token_only = RawSocket::open(addr, "", Some(&alice)).await;
    assert_eq!(protocol(&token_only.head), None, "{}", token_only.head);
    assert!(!token_only.head.contains(&alice));
}
