//! One WebSocket session: writes the frames the hub queues, answers client frames, keeps the
//! heartbeat, and closes with a typed close code.

use crate::hub::{Hub, Registration};
use crate::settings::WsSettings;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, ProtocolError};
use model::{CloseCode, ErrorCode, TimeFormat, WsMessage};
use runtime::Claims;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a session needs besides its socket.
pub struct SessionContext {
    /// The hub the connection is registered in.
    pub hub: Arc<Hub>,
    /// The registration: id, frame queue, close requests.
    pub registration: Registration,
    /// The token's claims.
    pub claims: Claims,
    /// How to render times in the gateway's own frames.
    pub time: TimeFormat,
    /// Heartbeat and write limits.
    pub settings: WsSettings,
    /// Fires at shutdown: the session closes with 1001.
    pub shutdown: CancellationToken,
}

/// A frame a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientCommand {
    /// An application-level heartbeat for clients that cannot send WebSocket pings.
    Ping,
}

/// Runs the session until either side closes it.
#[tracing::instrument(name = "ws_session", skip_all, fields(user_id = ctx.claims.sub, conn = ctx.registration.id))]
pub async fn run(
    mut session: actix_ws::Session,
    mut stream: AggregatedMessageStream,
    ctx: SessionContext,
) {
    let SessionContext {
        hub,
        registration,
        claims,
        time,
        settings,
        shutdown,
    } = ctx;
    let Registration {
        id,
        mut frames,
        control,
    } = registration;
    let write_timeout = Duration::from_millis(settings.write_timeout_ms);
    let heartbeat_timeout = Duration::from_secs(settings.heartbeat_timeout_secs);
    let mut heartbeat =
        tokio::time::interval(Duration::from_secs(settings.heartbeat_interval_secs));
    heartbeat.tick().await;
    let token_expiry = tokio::time::sleep(until_expiry(claims.exp));
    tokio::pin!(token_expiry);
    let mut last_seen = Instant::now();
    tracing::debug!("session open");

    let close: Option<CloseCode> = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break Some(CloseCode::GOING_AWAY),
            code = control.closed() => break Some(code),
            frame = frames.recv() => match frame {
                Some(frame) => match tokio::time::timeout(write_timeout, session.text(frame)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    Err(_) => break Some(CloseCode::SLOW_CLIENT),
                },
                None => break Some(CloseCode::SLOW_CLIENT),
            },
            message = stream.recv() => {
                last_seen = Instant::now();
                match message {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        let reply = answer(&text, &time);
                        if session.text(reply).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => break Some(CloseCode::UNSUPPORTED_DATA),
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(_))) => break Some(CloseCode::NORMAL),
                    Some(Err(ProtocolError::Overflow)) => break Some(CloseCode::MESSAGE_TOO_BIG),
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "protocol error");
                        break Some(CloseCode::PROTOCOL_ERROR);
                    }
                    None => break None,
                }
            }
            _ = heartbeat.tick() => {
                if last_seen.elapsed() > heartbeat_timeout {
                    break Some(CloseCode::HEARTBEAT_TIMEOUT);
                }
                if session.ping(b"").await.is_err() {
                    break None;
                }
            }
            _ = &mut token_expiry => break Some(CloseCode::POLICY_VIOLATION),
        }
    };

    hub.unregister(claims.sub, id);
    if let Some(code) = close {
        tracing::debug!(code = code.code, reason = code.reason, "closing session");
        let reason = actix_ws::CloseReason {
            code: code.code.into(),
            description: Some(code.reason.to_owned()),
        };
        let _ = tokio::time::timeout(write_timeout, session.close(Some(reason))).await;
    }
}

/// The gateway's answer to a client's text frame.
fn answer(text: &str, time: &TimeFormat) -> String {
    let reply = match serde_json::from_str::<ClientCommand>(text) {
        Ok(ClientCommand::Ping) => WsMessage::pong(time.now()),
        Err(err) => WsMessage::error(
            ErrorCode::InvalidFrame.as_str(),
            format!("unsupported frame: {err}; send {{\"type\":\"ping\"}}"),
            time.now(),
        ),
    };
    serde_json::to_string(&reply).unwrap_or_default()
}

fn until_expiry(exp: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Duration::from_secs(exp.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_frame_gets_a_pong_and_anything_else_an_error_frame() {
        let time = TimeFormat::default();
        let pong: WsMessage = serde_json::from_str(&answer(r#"{"type":"ping"}"#, &time)).unwrap();
        assert_eq!(pong.message_type, "pong");
        for bad in [
            "not json",
            r#"{"type":"dance"}"#,
            "[]",
            r#"{"message_id":"1-abcdefgh"}"#,
        ] {
            let reply: WsMessage = serde_json::from_str(&answer(bad, &time)).unwrap();
            assert_eq!(reply.message_type, "error", "{bad}");
            assert_eq!(reply.data["code"], "INVALID_FRAME");
        }
    }
}
