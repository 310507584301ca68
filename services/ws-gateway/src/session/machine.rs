//! The session as a state machine: what one connection does about each thing that happens to
//! it (a client frame, a deadline, a close request), with no I/O.
//!
//! The machine is handed an [`Input`] and the time, and answers with at most one [`Action`] for
//! the adapter in `session.rs` to carry out; an action's outcome that matters to the session (a
//! receipt refused, a write that timed out) comes back as another input. Time enters only as
//! `tokio::time::Instant` values: the heartbeat, the token's expiry and the frame allowance all
//! run on the instants the machine is handed, so a test under tokio's paused clock drives a
//! session deterministically. The frames the hub queues never pass through here: they go
//! from the connection's outbox to its socket (see `outbox.rs`).

use crate::transport::ClientEvent;
use bytes::Bytes;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};
use model::{Audience, CloseCode, DeliveryEventType, ErrorCode, MessageId, PushChannel, TimeFormat, UserId, WsMessage};
use serde::Deserialize;
use std::cell::Cell;
use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::Duration;
use tokio::time::Instant;

/// The timing and allowance a session runs with (from `[ws]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Time between server pings.
    pub heartbeat_interval: Duration,
    /// Time without any client frame after which a heartbeat closes the session with 4000.
    pub heartbeat_timeout: Duration,
    /// Client frames per second, sustained.
    pub frames_per_second: u32,
    /// Client frames in a burst.
    pub frame_burst: u32,
}

impl Timing {
    /// The timing `[ws]` configures.
    pub fn from_settings(settings: &crate::settings::WsSettings) -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(settings.heartbeat_interval_secs),
            heartbeat_timeout: Duration::from_secs(settings.heartbeat_timeout_secs),
            frames_per_second: settings.client_frames_per_second,
            frame_burst: settings.client_frame_burst,
        }
    }

    /// How many frames a connection may send: `frames_per_second`, in bursts of `frame_burst`.
    fn frame_quota(&self) -> Quota {
        let rate = NonZeroU32::new(self.frames_per_second).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(rate).allow_burst(NonZeroU32::new(self.frame_burst).unwrap_or(rate))
    }
}

/// Something that happened to a session.
#[derive(Debug)]
pub enum Input {
    /// The client sent something.
    Client(ClientEvent),
    /// The instant [`SessionMachine::next_deadline`] named has come (or passed).
    Tick,
    /// The session is asked to close: by the hub (4001 slow client), at shutdown (1001), or
    /// because a write to the client blocked too long (4001).
    CloseRequested(CloseCode),
    /// A receipt the client sent was not recorded, for this reason.
    ReceiptRefused(ReceiptRefusal),
}

/// What the adapter is to do.
#[derive(Debug)]
pub enum Action {
    /// Write one of the gateway's own frames (`pong`, `error`).
    Reply(WsMessage),
    /// Answer the client's WebSocket ping with this payload.
    Pong(Bytes),
    /// Send a WebSocket ping: the heartbeat.
    Ping,
    /// Check the receipt against the notice's audience and record it.
    RecordReceipt(ReceiptReport),
    /// Close the connection with this code and its reason.
    Close(CloseCode),
    /// End the session without a close frame: the socket is gone.
    Disconnect,
}

/// A receipt a client reported on its socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptReport {
    /// What the client reports: delivered (`ack`), `read` or `confirmed`.
    pub event_type: DeliveryEventType,
    /// The notice it is about.
    pub message_id: MessageId,
    /// How the notice reached this connection: `offline` (replayed from the inbox) or
    /// `websocket` (live).
    pub push_channel: PushChannel,
}

/// Why a receipt was not recorded: the code and text of the error frame the client gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRefusal {
    /// The error code (`FORBIDDEN`, `NOT_FOUND`, `PUSH_FAILED`).
    pub code: ErrorCode,
    /// What the client is told.
    pub reason: String,
}

impl ReceiptRefusal {
    /// The receipt could not be stored or published: the client should send it again.
    pub fn not_recorded(event_type: DeliveryEventType) -> Self {
        Self { code: ErrorCode::PushFailed, reason: format!("{event_type} not recorded: try again shortly") }
    }
}

/// Whether a receipt (`event_type` about `message_id`, from `user_id`) may be recorded, given
/// what the audience store answered: refused with `FORBIDDEN` when the notice was addressed to
/// others, `NOT_FOUND` when it is unknown or expired, `PUSH_FAILED` when the store could not say.
pub fn audience_verdict<E: std::fmt::Display>(
    lookup: Result<Option<Audience>, E>,
    event_type: DeliveryEventType,
    message_id: &MessageId,
    user_id: UserId,
    is_admin: bool,
) -> Result<(), ReceiptRefusal> {
    match lookup {
        Ok(Some(audience)) if audience.includes(user_id, is_admin) => Ok(()),
        Ok(Some(_)) => Err(ReceiptRefusal {
            code: ErrorCode::Forbidden,
            reason: format!("{event_type}: notification {message_id} was not addressed to you"),
        }),
        Ok(None) => Err(ReceiptRefusal {
            code: ErrorCode::NotFound,
            reason: format!("{event_type}: no notification {message_id} is known"),
        }),
        Err(err) => {
            tracing::warn!(error = %err, "audience unavailable; receipt not checked");
            Err(ReceiptRefusal::not_recorded(event_type))
        }
    }
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

/// The one field of a replayed inbox entry the session needs.
#[derive(Deserialize)]
struct OfflineId {
    message_id: MessageId,
}

/// The frame allowance's clock: the instant the machine was last handed, as the time since the
/// session started, so that governor counts on the same (tokio) clock as the rest of the session.
#[derive(Debug)]
struct HandedClock(Cell<Duration>);

impl Clock for HandedClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.get()
    }
}

/// How many client frames the connection may still send, and when it may send more.
type FrameAllowance = RateLimiter<NotKeyed, InMemoryState, HandedClock, NoOpMiddleware<Duration>>;

/// One connection's state: the heartbeat, the token's expiry, the frame allowance, and which
/// messages it got from the offline inbox.
pub struct SessionMachine {
    timing: Timing,
    time: TimeFormat,
    started: Instant,
    /// When the last client frame arrived.
    last_seen: Instant,
    /// When the next heartbeat is due.
    next_heartbeat: Instant,
    /// When the token expires.
    token_expires_at: Instant,
    allowance: FrameAllowance,
    /// While the allowance is spent: when to check it again. No client frame is read meanwhile.
    reads_paused_until: Option<Instant>,
    /// Everything replayed: receipts for these came from the inbox (`offline`), not live.
    from_inbox: HashSet<MessageId>,
    closed: bool,
}

impl SessionMachine {
    /// A session opening at `now`, whose token expires at `token_expires_at`; it renders the
    /// times of its own frames with `time`.
    pub fn new(now: Instant, timing: Timing, token_expires_at: Instant, time: TimeFormat) -> Self {
        let allowance = RateLimiter::direct_with_clock(timing.frame_quota(), HandedClock(Cell::new(Duration::ZERO)));
        Self {
            timing,
            time,
            started: now,
            last_seen: now,
            next_heartbeat: now + timing.heartbeat_interval,
            token_expires_at,
            allowance,
            reads_paused_until: None,
            from_inbox: HashSet::new(),
            closed: false,
        }
    }

    /// Notes an inbox entry (spec 5.1 JSON) that was replayed to the client: receipts for it
    /// came through the inbox. Returns its message id, whose live copy need not go out again.
    pub fn replayed(&mut self, entry: &str) -> Option<MessageId> {
        let OfflineId { message_id } = serde_json::from_str(entry).ok()?;
        self.from_inbox.insert(message_id.clone());
        Some(message_id)
    }

    /// When the adapter must hand the machine an [`Input::Tick`] at the latest: the next
    /// heartbeat, the token's expiry, or the end of a read pause, whichever comes first.
    pub fn next_deadline(&self) -> Instant {
        let due = self.next_heartbeat.min(self.token_expires_at);
        self.reads_paused_until.map_or(due, |until| due.min(until))
    }

    /// Until when the adapter must not read client frames (the frame allowance is spent); the
    /// frames wait in the client's socket meanwhile, not in the gateway.
    pub fn reads_paused_until(&self) -> Option<Instant> {
        self.reads_paused_until
    }

    /// Whether the session has closed (an [`Action::Close`] or [`Action::Disconnect`] was
    /// given); it answers nothing after that. The adapter stops at the close itself.
    #[cfg(test)]
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// What to do about `input`, which happened at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) -> Option<Action> {
        if self.closed {
            return None;
        }
        let action = match input {
            Input::Client(event) => self.on_client(now, event),
            Input::Tick => self.on_tick(now),
            Input::CloseRequested(code) => Some(Action::Close(code)),
            Input::ReceiptRefused(refusal) => {
                Some(Action::Reply(WsMessage::error(refusal.code.as_str(), refusal.reason, self.time.now())))
            }
        };
        if matches!(action, Some(Action::Close(_) | Action::Disconnect)) {
            self.closed = true;
        }
        action
    }

    fn on_client(&mut self, now: Instant, event: ClientEvent) -> Option<Action> {
        self.last_seen = now;
        // Each client frame takes one from the connection's allowance; once it is spent the next
        // frame is read only when there is room again. The frame that found the allowance spent
        // was read already: it is served now and takes the first cell that comes free.
        if let Err(not_until) = self.check_allowance(now) {
            self.reads_paused_until = Some(self.room_at(&not_until));
        }
        match event {
            ClientEvent::Text(text) => Some(self.interpret(&text)),
            ClientEvent::Binary => Some(Action::Close(CloseCode::UNSUPPORTED_DATA)),
            ClientEvent::Ping(payload) => Some(Action::Pong(payload)),
            ClientEvent::Pong => None,
            ClientEvent::Close => Some(Action::Close(CloseCode::NORMAL)),
            ClientEvent::Broken(code) => Some(Action::Close(code)),
            ClientEvent::Ended => Some(Action::Disconnect),
        }
    }

    fn on_tick(&mut self, now: Instant) -> Option<Action> {
        if let Some(until) = self.reads_paused_until
            && now >= until
        {
            self.reads_paused_until = match self.check_allowance(now) {
                Ok(()) => None,
                Err(not_until) => Some(self.room_at(&not_until)),
            };
            // The end of a pause is a tick of its own: a frame waiting in the client's socket is
            // read before an overdue heartbeat judges the silence.
            return None;
        }
        if now >= self.next_heartbeat {
            // Like a tokio interval that bursts: a late heartbeat does not shift the next ones.
            self.next_heartbeat += self.timing.heartbeat_interval;
            if now.duration_since(self.last_seen) > self.timing.heartbeat_timeout {
                return Some(Action::Close(CloseCode::HEARTBEAT_TIMEOUT));
            }
            return Some(Action::Ping);
        }
        if now >= self.token_expires_at {
            return Some(Action::Close(CloseCode::POLICY_VIOLATION));
        }
        None
    }

    fn check_allowance(&self, now: Instant) -> Result<(), NotUntil<Duration>> {
        self.allowance.clock().0.set(now.duration_since(self.started));
        self.allowance.check()
    }

    /// When a spent frame allowance has room again.
    fn room_at(&self, not_until: &NotUntil<Duration>) -> Instant {
        self.started + not_until.earliest_possible()
    }

    /// Parses a client's text frame into what to do about it.
    fn interpret(&self, text: &str) -> Action {
        let error = |message: String| {
            Action::Reply(WsMessage::error(ErrorCode::InvalidFrame.as_str(), message, self.time.now()))
        };
        let receipt = |event_type: DeliveryEventType, raw: &str| match MessageId::parse(raw) {
            Ok(message_id) => {
                let push_channel =
                    if self.from_inbox.contains(&message_id) { PushChannel::Offline } else { PushChannel::Websocket };
                Action::RecordReceipt(ReceiptReport { event_type, message_id, push_channel })
            }
            Err(err) => error(format!("{event_type}: {err}")),
        };
        match serde_json::from_str::<ClientCommand>(text) {
            Ok(ClientCommand::Ping) => Action::Reply(WsMessage::pong(self.time.now())),
            Ok(ClientCommand::Ack { message_id }) => receipt(DeliveryEventType::Delivered, &message_id),
            Ok(ClientCommand::Read { message_id }) => receipt(DeliveryEventType::Read, &message_id),
            Ok(ClientCommand::Confirm { message_id }) => receipt(DeliveryEventType::Confirmed, &message_id),
            Err(err) => error(format!(
                "unsupported frame: {err}; send {{\"type\":\"ping\"}} or {{\"type\":\"ack|read|confirm\",\"message_id\":\"...\"}}"
            )),
        }
    }
}

/// How long a token expiring at `exp` (Unix seconds) is still valid at `now_unix` (Unix seconds).
pub fn until_expiry(exp: u64, now_unix: u64) -> Duration {
    Duration::from_secs(exp.saturating_sub(now_unix))
}

#[cfg(test)]
mod tests;
