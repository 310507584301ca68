//! One WebSocket session: writes the frames the hub queues, answers client frames, keeps the
//! heartbeat, and closes with a typed close code.

use crate::hub::{Hub, Registration};
use crate::settings::WsSettings;
use actix_ws::{AggregatedMessage, AggregatedMessageStream};
use bus::Bus;
use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use model::{CloseCode, DeliveryEvent, DeliveryEventType, ErrorCode, MessageId, TimeFormat, WsMessage};
use runtime::Claims;
use serde::Deserialize;
use state::{AudienceStore, OfflineInbox, ReceiptLedger};
use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a session needs besides its socket.
pub struct SessionContext {
    /// The hub the connection is registered in.
    pub hub: Arc<Hub>,
    /// The offline inboxes: replayed on connect, emptied by receipts.
    pub inbox: OfflineInbox,
    /// Who each notice was for: receipts about others' notices are refused.
    pub audience: AudienceStore,
    /// Receipts already recorded: a repeat from this connection is no new event.
    pub receipts: ReceiptLedger,
    /// Where receipts are published as delivery events.
    pub bus: Bus,
    /// The connection's id across replicas, `<replica>-<n>`.
    pub connection_id: String,
    /// The registration: id, frame queue, close requests.
    pub registration: Registration,
    /// The token's claims.
    pub claims: Claims,
    /// The client's address and `User-Agent`, for receive records.
    pub client: ClientInfo,
    /// How to render times in the gateway's own frames.
    pub time: TimeFormat,
    /// Heartbeat and write limits.
    pub settings: WsSettings,
    /// Fires at shutdown: the session closes with 1001.
    pub shutdown: CancellationToken,
}

/// What the gateway saw of a client when it connected.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// The client's address (the peer, or `X-Forwarded-For` from a trusted proxy).
    pub ip: String,
    /// The `User-Agent` header, cut to `model::MAX_USER_AGENT_CHARS`.
    pub user_agent: String,
}

/// A frame a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientCommand {
    /// An application-level heartbeat for clients that cannot send WebSocket pings.
    Ping,
    /// The client received a message: it leaves the user's offline inbox.
    Ack {
        /// The received message's id.
        message_id: String,
    },
    /// The user read a message.
    Read {
        /// The message's id.
        message_id: String,
    },
    /// The user confirmed a message that asked for it.
    Confirm {
        /// The message's id.
        message_id: String,
    },
}

/// What the session does about a client frame.
#[derive(Debug, PartialEq)]
enum ClientAction {
    /// Send this frame back.
    Reply(WsMessage),
    /// Record a receipt: clear the inbox entry and publish the delivery event.
    Receipt(DeliveryEventType, MessageId),
}

/// Parses a client's text frame into what to do about it.
fn interpret(text: &str, time: &TimeFormat) -> ClientAction {
    let error =
        |message: String| ClientAction::Reply(WsMessage::error(ErrorCode::InvalidFrame.as_str(), message, time.now()));
    let receipt = |event: DeliveryEventType, raw: &str| match MessageId::parse(raw) {
        Ok(id) => ClientAction::Receipt(event, id),
        Err(err) => error(format!("{event}: {err}")),
    };
    match serde_json::from_str::<ClientCommand>(text) {
        Ok(ClientCommand::Ping) => ClientAction::Reply(WsMessage::pong(time.now())),
        Ok(ClientCommand::Ack { message_id }) => receipt(DeliveryEventType::Delivered, &message_id),
        Ok(ClientCommand::Read { message_id }) => receipt(DeliveryEventType::Read, &message_id),
        Ok(ClientCommand::Confirm { message_id }) => receipt(DeliveryEventType::Confirmed, &message_id),
        Err(err) => error(format!(
            "unsupported frame: {err}; send {{\"type\":\"ping\"}} or {{\"type\":\"ack|read|confirm\",\"message_id\":\"...\"}}"
        )),
    }
}

/// Refuses a receipt about a notice that was not addressed to the user, or is unknown.
async fn check_audience(
    audience: &AudienceStore,
    event: &DeliveryEvent,
    is_admin: bool,
) -> Result<(), (ErrorCode, String)> {
    match audience.lookup(&event.message_id).await {
        Ok(Some(audience)) if audience.includes(event.user_id, is_admin) => Ok(()),
        Ok(Some(_)) => Err((
            ErrorCode::Forbidden,
            format!("{}: notification {} was not addressed to you", event.event_type, event.message_id),
        )),
        Ok(None) => {
            Err((ErrorCode::NotFound, format!("{}: no notification {} is known", event.event_type, event.message_id)))
        }
        Err(err) => {
            tracing::warn!(error = %err, "audience unavailable; receipt not checked");
            Err((ErrorCode::PushFailed, format!("{} not recorded: try again shortly", event.event_type)))
        }
    }
}

/// Sends what the user's inbox holds, oldest first, preceded by an overflow notice when older
/// messages were dropped. Returns the replayed ids, or `None` if the socket closed meanwhile.
async fn replay(
    session: &mut actix_ws::Session,
    inbox: &OfflineInbox,
    user: model::UserId,
    time: &TimeFormat,
) -> Option<HashSet<MessageId>> {
    let replay = match inbox.replay(user).await {
        Ok(replay) => replay,
        Err(err) => {
            // Live delivery still works; the entries stay and replay on the next connect.
            tracing::warn!(error = %err, "offline replay unavailable");
            return Some(HashSet::new());
        }
    };
    if replay.dropped > 0 {
        send_frame(session, &WsMessage::offline_overflow(replay.dropped, time.now())).await.ok()?;
    }
    tracing::debug!(entries = replay.entries.len(), dropped = replay.dropped, "replaying offline messages");
    let mut replayed = HashSet::with_capacity(replay.entries.len());
    for entry in replay.entries {
        if let Ok(OfflineId { message_id }) = serde_json::from_str(&entry) {
            replayed.insert(message_id);
        }
        session.text(entry).await.ok()?;
    }
    Some(replayed)
}

/// Writes one of the gateway's own frames. `Err` ends the session: with 1011 if the frame could
/// not be serialised (a bug, logged), without a close frame if the socket is gone.
async fn send_frame(session: &mut actix_ws::Session, frame: &WsMessage) -> Result<(), Option<CloseCode>> {
    let text = frame.to_json().map_err(|err| {
        tracing::error!(error = %err, kind = frame.message_type, "a gateway frame could not be serialised");
        Some(CloseCode::INTERNAL_ERROR)
    })?;
    session.text(text).await.map_err(|_| None)
}

/// The one field of a replayed entry the session needs.
#[derive(Deserialize)]
struct OfflineId {
    message_id: MessageId,
}

/// Runs the session until either side closes it.
#[tracing::instrument(name = "ws_session", skip_all, fields(user_id = ctx.claims.sub, conn = ctx.registration.id))]
pub async fn run(mut session: actix_ws::Session, mut stream: AggregatedMessageStream, ctx: SessionContext) {
    let SessionContext {
        hub,
        inbox,
        audience,
        receipts,
        bus,
        connection_id,
        registration,
        claims,
        client,
        time,
        settings,
        shutdown,
    } = ctx;
    let Registration { id, mut frames, control } = registration;
    let write_timeout = Duration::from_millis(settings.write_timeout_ms);
    let heartbeat_timeout = Duration::from_secs(settings.heartbeat_timeout_secs);
    let mut heartbeat = tokio::time::interval(Duration::from_secs(settings.heartbeat_interval_secs));
    heartbeat.tick().await;
    let token_expiry = tokio::time::sleep(until_expiry(claims.exp));
    tokio::pin!(token_expiry);
    let mut last_seen = Instant::now();
    let frame_allowance = RateLimiter::direct(frame_quota(&settings));
    let throttle = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(throttle);
    let mut throttled = false;
    tracing::debug!("session open");
    // The connection is registered before the replay, so nothing published meanwhile is missed;
    // a message may then arrive twice (replayed and live), with the same id.
    // Ids replayed here are skipped when their live copy follows (the notice was published
    // while this session was starting).
    let Some(mut replayed) = replay(&mut session, &inbox, claims.sub, &time).await else {
        hub.unregister(claims.sub, id);
        return;
    };
    // What reached this connection from the inbox rather than live (at most an inbox's worth).
    let offline: HashSet<MessageId> = replayed.clone();

    let close: Option<CloseCode> = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break Some(CloseCode::GOING_AWAY),
            code = control.closed() => break Some(code),
            frame = frames.recv() => match frame {
                Some(frame) if frame.message_id.as_ref().is_some_and(|id| replayed.remove(id)) => {}
                Some(frame) => match tokio::time::timeout(write_timeout, session.text(frame.text.clone())).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    Err(_) => break Some(CloseCode::SLOW_CLIENT),
                },
                None => break Some(CloseCode::SLOW_CLIENT),
            },
            // The frame that found the allowance spent was read already: it takes the first
            // cell that comes free, and reading resumes after that.
            _ = &mut throttle, if throttled => match frame_allowance.check() {
                Ok(()) => throttled = false,
                Err(not_until) => throttle.as_mut().reset(room_at(&not_until)),
            },
            message = stream.recv(), if !throttled => {
                last_seen = Instant::now();
                // Each client frame takes one from the connection's allowance; once it is spent
                // the next frame is read only when there is room again (the client's socket
                // buffers meanwhile, not the gateway).
                if let Err(not_until) = frame_allowance.check() {
                    throttled = true;
                    throttle.as_mut().reset(room_at(&not_until));
                }
                match message {
                    Some(Ok(AggregatedMessage::Text(text))) => match interpret(&text, &time) {
                        ClientAction::Reply(reply) => {
                            if let Err(close) = send_frame(&mut session, &reply).await {
                                break close;
                            }
                        }
                        ClientAction::Receipt(event_type, message_id) => {
                            let push_channel = if offline.contains(&message_id) { "offline" } else { "websocket" };
                            let event = DeliveryEvent {
                                event_id: DeliveryEvent::new_event_id(),
                                event_type,
                                message_id,
                                user_id: claims.sub,
                                username: claims.name.clone(),
                                channel: "websocket".to_owned(),
                                connection_id: connection_id.clone(),
                                timestamp: time.now(),
                                user_role: claims.role.as_str().to_owned(),
                                push_channel: push_channel.to_owned(),
                                client_ip: client.ip.clone(),
                                user_agent: client.user_agent.clone(),
                            };
                            let recorded = match check_audience(&audience, &event, claims.is_admin()).await {
                                Ok(()) => {
                                    let recorded =
                                        state::receipts::record(&inbox, &receipts, &bus, &event, &connection_id).await;
                                    recorded.map_err(|err| {
                                        tracing::warn!(error = %err, message_id = %event.message_id, "receipt not recorded");
                                        let reason = format!("{} not recorded: try again shortly", event.event_type);
                                        (ErrorCode::PushFailed, reason)
                                    })
                                }
                                Err(refusal) => Err(refusal),
                            };
                            if let Err((code, reason)) = recorded {
                                let frame = WsMessage::error(code.as_str(), reason, time.now());
                                if let Err(close) = send_frame(&mut session, &frame).await {
                                    break close;
                                }
                            }
                        }
                    },
                    Some(Ok(AggregatedMessage::Binary(_))) => break Some(CloseCode::UNSUPPORTED_DATA),
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(_))) => break Some(CloseCode::NORMAL),
                    Some(Err(err)) => {
                        tracing::debug!(error = %err, "protocol error");
                        break Some(crate::transport::close_code(&err));
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
        let reason = actix_ws::CloseReason { code: code.code.into(), description: Some(code.reason.to_owned()) };
        let _ = tokio::time::timeout(write_timeout, session.close(Some(reason))).await;
    }
}

/// How many frames a connection may send: `ws.client_frames_per_second`, in bursts of
/// `ws.client_frame_burst`.
fn frame_quota(settings: &WsSettings) -> Quota {
    let rate = NonZeroU32::new(settings.client_frames_per_second).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(NonZeroU32::new(settings.client_frame_burst).unwrap_or(rate))
}

/// When a spent frame allowance has room again.
fn room_at(not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> Instant {
    Instant::now() + not_until.wait_time_from(DefaultClock::default().now())
}

fn until_expiry(exp: u64) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    Duration::from_secs(exp.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_frame_gets_a_pong_and_anything_else_an_error_frame() {
        let time = TimeFormat::default();
        let ClientAction::Reply(pong) = interpret(r#"{"type":"ping"}"#, &time) else { panic!("no reply") };
        assert_eq!(pong.message_type, "pong");
        for bad in [
            "not json",
            r#"{"type":"dance"}"#,
            "[]",
            r#"{"message_id":"1-abcdefgh"}"#,
            r#"{"type":"ack","message_id":"nope"}"#,
            r#"{"type":"ack"}"#,
        ] {
            let ClientAction::Reply(reply) = interpret(bad, &time) else { panic!("{bad} was accepted") };
            assert_eq!(reply.message_type, "error", "{bad}");
            assert_eq!(reply.data["code"], "INVALID_FRAME");
        }
    }

    #[test]
    fn receipt_frames_name_their_event_and_message() {
        let id = MessageId::parse("1706335800123456789-abc12345").unwrap();
        for (kind, event) in [
            ("ack", DeliveryEventType::Delivered),
            ("read", DeliveryEventType::Read),
            ("confirm", DeliveryEventType::Confirmed),
        ] {
            let frame = format!(r#"{{"type":"{kind}","message_id":"1706335800123456789-abc12345"}}"#);
            assert_eq!(interpret(&frame, &TimeFormat::default()), ClientAction::Receipt(event, id.clone()));
        }
    }
}
