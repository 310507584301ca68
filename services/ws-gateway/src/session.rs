//! One WebSocket session: a thin adapter between actix-ws and the session's state machine.
//!
//! [`machine::SessionMachine`] decides (which frames go out, what a client frame means, when to
//! ping, when and how to close); [`run`] owns the socket, the client's stream, the hub's queue
//! and the stores, feeds the machine what happens, and carries out the actions it answers: it
//! writes frames (a queued one within `ws.write_timeout_ms`), replays the offline inbox on
//! connect, checks receipts against their notice's audience and records them. One timer serves
//! the whole session, re-armed at the machine's next deadline; a queued frame costs the session
//! no allocation (its text is shared, the machine only looks its id up).

mod machine;

use crate::hub::{Hub, Registration};
use crate::settings::WsSettings;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, ProtocolError};
use bus::Bus;
use machine::{Action, ClientEvent, Input, ReceiptRefusal, ReceiptReport, SessionMachine, Timing};
use model::{CloseCode, DeliveryEvent, ReportChannel, TimeFormat, WsMessage};
use runtime::Claims;
use state::{AudienceStore, OfflineInbox, ReceiptLedger};
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

/// How a session ends: with a close frame carrying this code, or (`None`) without one because
/// the socket is gone.
type Ending = Option<CloseCode>;

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
    let now = Instant::now();
    let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let token_expires_at = now + machine::until_expiry(claims.exp, unix_now);
    let mut machine = SessionMachine::new(now, Timing::from_settings(&settings), token_expires_at, time);
    let mut effects = Effects {
        session: &mut session,
        write_timeout,
        time,
        receipts: ReceiptPipeline { inbox: &inbox, audience: &audience, ledger: &receipts, bus: &bus },
        event_source: EventSource { claims: &claims, client: &client, connection_id: &connection_id },
    };
    tracing::debug!("session open");
    // The connection is registered before the replay, so nothing published meanwhile is missed;
    // a message may then arrive twice (replayed and live), with the same id: the machine drops
    // the live copy of what was replayed. Client frames are read only after the replay.
    if effects.replay(&inbox, claims.sub, &mut machine).await.is_none() {
        hub.unregister(claims.sub, id);
        return;
    }
    // The session's one timer, reset to whatever the machine needs next.
    let timer = tokio::time::sleep_until(machine.next_deadline());
    tokio::pin!(timer);

    let ending: Ending = 'session: loop {
        // Re-armed only when the deadline moved (or the timer fired), not for every frame.
        let deadline = machine.next_deadline();
        if timer.deadline() != deadline || timer.is_elapsed() {
            timer.as_mut().reset(deadline);
        }
        let reading = machine.reads_paused_until().is_none();
        let input = tokio::select! {
            biased;
            () = shutdown.cancelled() => Input::CloseRequested(CloseCode::GOING_AWAY),
            code = control.closed() => Input::CloseRequested(code),
            frame = frames.recv() => match frame {
                Some(frame) => Input::Outbound(frame),
                None => Input::QueueClosed,
            },
            message = stream.recv(), if reading => Input::Client(client_event(message)),
            () = &mut timer => Input::Tick,
        };
        // An action's outcome may be news for the machine (a refused receipt, a write that
        // timed out), which may answer with another action.
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let Some(action) = machine.handle(Instant::now(), input) else { break };
            match effects.perform(action).await {
                Ok(news) => next = news,
                Err(ending) => break 'session ending,
            }
        }
    };

    hub.unregister(claims.sub, id);
    if let Some(code) = ending {
        tracing::debug!(code = code.code, reason = code.reason, "closing session");
        let reason = actix_ws::CloseReason { code: code.code.into(), description: Some(code.reason.to_owned()) };
        let _ = tokio::time::timeout(write_timeout, session.close(Some(reason))).await;
    }
}

/// What the client's stream yielded, as the machine sees it.
fn client_event(message: Option<Result<AggregatedMessage, ProtocolError>>) -> ClientEvent {
    match message {
        Some(Ok(AggregatedMessage::Text(text))) => ClientEvent::Text(text),
        Some(Ok(AggregatedMessage::Binary(_))) => ClientEvent::Binary,
        Some(Ok(AggregatedMessage::Ping(payload))) => ClientEvent::Ping(payload),
        Some(Ok(AggregatedMessage::Pong(_))) => ClientEvent::Pong,
        Some(Ok(AggregatedMessage::Close(_))) => ClientEvent::Close,
        Some(Err(err)) => {
            tracing::debug!(error = %err, "protocol error");
            ClientEvent::Broken(crate::transport::close_code(&err))
        }
        None => ClientEvent::Ended,
    }
}

/// The stores and the bus a receipt goes through.
struct ReceiptPipeline<'a> {
    inbox: &'a OfflineInbox,
    audience: &'a AudienceStore,
    ledger: &'a ReceiptLedger,
    bus: &'a Bus,
}

/// Who and where a connection's receipts come from, for their delivery events.
struct EventSource<'a> {
    claims: &'a Claims,
    client: &'a ClientInfo,
    connection_id: &'a str,
}

impl EventSource<'_> {
    /// The delivery event a receipt from this connection becomes.
    fn event(&self, report: ReceiptReport, time: &TimeFormat) -> DeliveryEvent {
        DeliveryEvent {
            event_id: DeliveryEvent::new_event_id(),
            event_type: report.event_type,
            message_id: report.message_id,
            user_id: self.claims.sub,
            username: self.claims.name.clone(),
            channel: ReportChannel::Websocket,
            connection_id: self.connection_id.to_owned(),
            timestamp: time.now(),
            user_role: Some(self.claims.role),
            push_channel: Some(report.push_channel),
            client_ip: self.client.ip.clone(),
            user_agent: self.client.user_agent.clone(),
        }
    }
}

/// The I/O the machine's actions stand for.
struct Effects<'a> {
    session: &'a mut actix_ws::Session,
    write_timeout: Duration,
    time: TimeFormat,
    receipts: ReceiptPipeline<'a>,
    event_source: EventSource<'a>,
}

impl Effects<'_> {
    /// Carries out `action`: `Ok` with any news for the machine, `Err` when the session ends.
    async fn perform(&mut self, action: Action) -> Result<Option<Input>, Ending> {
        match action {
            Action::Deliver(frame) => {
                match tokio::time::timeout(self.write_timeout, self.session.text(frame.text.clone())).await {
                    Ok(Ok(())) => Ok(None),
                    Ok(Err(_)) => Err(None),
                    // A client that does not read is a slow client.
                    Err(_) => Ok(Some(Input::CloseRequested(CloseCode::SLOW_CLIENT))),
                }
            }
            Action::Reply(frame) => self.send_frame(&frame).await.map(|()| None),
            Action::Pong(payload) => self.session.pong(&payload).await.map(|()| None).map_err(|_| None),
            Action::Ping => self.session.ping(b"").await.map(|()| None).map_err(|_| None),
            Action::RecordReceipt(report) => Ok(self.record_receipt(report).await.err().map(Input::ReceiptRefused)),
            Action::Close(code) => Err(Some(code)),
            Action::Disconnect => Err(None),
        }
    }

    /// Checks a receipt against its notice's audience, then records it: the inbox entry goes,
    /// and the first report from this connection is published as a delivery event.
    async fn record_receipt(&self, report: ReceiptReport) -> Result<(), ReceiptRefusal> {
        let claims = self.event_source.claims;
        let event = self.event_source.event(report, &self.time);
        let lookup = self.receipts.audience.lookup(&event.message_id).await;
        machine::audience_verdict(lookup, event.event_type, &event.message_id, claims.sub, claims.is_admin())?;
        let pipeline = &self.receipts;
        let device = self.event_source.connection_id;
        state::receipts::record(pipeline.inbox, pipeline.ledger, pipeline.bus, &event, device).await.map_err(|err| {
            tracing::warn!(error = %err, message_id = %event.message_id, "receipt not recorded");
            ReceiptRefusal::not_recorded(event.event_type)
        })
    }

    /// Sends what the user's inbox holds, oldest first, preceded by an overflow notice when
    /// older messages were dropped, and tells the machine what was replayed. `None` if the
    /// socket closed meanwhile.
    async fn replay(&mut self, inbox: &OfflineInbox, user: model::UserId, machine: &mut SessionMachine) -> Option<()> {
        let replay = match inbox.replay(user).await {
            Ok(replay) => replay,
            Err(err) => {
                // Live delivery still works; the entries stay and replay on the next connect.
                tracing::warn!(error = %err, "offline replay unavailable");
                return Some(());
            }
        };
        if replay.dropped > 0 {
            self.send_frame(&WsMessage::offline_overflow(replay.dropped, self.time.now())).await.ok()?;
        }
        tracing::debug!(entries = replay.entries.len(), dropped = replay.dropped, "replaying offline messages");
        for entry in replay.entries {
            machine.replayed(&entry);
            self.session.text(entry).await.ok()?;
        }
        Some(())
    }

    /// Writes one of the gateway's own frames. `Err` ends the session: with 1011 if the frame
    /// could not be serialised (a bug, logged), without a close frame if the socket is gone.
    async fn send_frame(&mut self, frame: &WsMessage) -> Result<(), Ending> {
        let text = frame.to_json().map_err(|err| {
            tracing::error!(error = %err, kind = frame.message_type, "a gateway frame could not be serialised");
            Some(CloseCode::INTERNAL_ERROR)
        })?;
        self.session.text(text).await.map_err(|_| None)
    }
}
