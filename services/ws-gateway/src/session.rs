//! One WebSocket session: the connection's task, on the socket itself, driving the session's
//! state machine.
//!
//! [`machine::SessionMachine`] decides (what a client frame means, when to ping, when and how to
//! close); [`run`] owns the socket and carries out what the machine answers. It writes what the
//! connection's [`Outbox`] holds (notices the worker hub queued, shared with every connection
//! they go to, and the session's own frames) with vectored writes, as much as the socket takes
//! in one call; reads client frames only when the machine allows it, into a buffer that exists
//! only while a frame is partly received; replays the offline inbox on connect; and checks
//! receipts against their notice's audience and records them.
//!
//! The task is woken by exactly what concerns it (a queued frame, a readable or writable
//! socket, its one timer, a close request) and polls the same few things each time; nothing is
//! rebuilt or allocated for a queued frame. A write that stays blocked longer than
//! `ws.write_timeout_ms` closes the connection as a slow client (4001), as does a full outbox.

mod machine;

use crate::hub::{Admission, ConnId, Hub, WorkerHub};
use crate::outbox::{Offered, Outbox};
use crate::settings::WsSettings;
use crate::transport::{self, ClientEvent, ClientReader};
use actix_web::rt::net::TcpStream;
use bus::Bus;
use bytes::Bytes;
use http_server::Upgraded;
use machine::{Action, Input, ReceiptRefusal, ReceiptReport, SessionMachine, Timing};
use model::{CloseCode, DeliveryEvent, MessageId, ReportChannel, TimeFormat, WsMessage};
use runtime::Claims;
use state::{AudienceStore, OfflineInbox, ReceiptLedger};
use std::collections::HashSet;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::{Instant, Sleep};

/// How much a session reads from its socket at a time.
const READ_SIZE: usize = 4096;

/// What a session needs besides its socket: what every session of the replica shares, and
/// what this connection's client presented.
pub struct SessionContext {
    /// The replica's stores, bus and settings.
    pub shared: Arc<Shared>,
    /// The token's claims.
    pub claims: Claims,
    /// The client's address and `User-Agent`, for receive records.
    pub client: ClientInfo,
}

/// What every session of a replica uses: one copy, behind an `Arc`.
pub struct Shared {
    /// The replica's connections.
    pub hub: Arc<Hub>,
    /// The offline inboxes: replayed on connect, emptied by receipts.
    pub inbox: OfflineInbox,
    /// The replica's metrics.
    pub metrics: crate::metrics::GatewayMetrics,
    /// Who each notice was for: receipts about others' notices are refused.
    pub audience: AudienceStore,
    /// Receipts already recorded: a repeat from this connection is no new event.
    pub receipts: ReceiptLedger,
    /// Where receipts are published as delivery events.
    pub bus: Bus,
    /// The replica's id, the prefix of connection ids (`<replica>-<n>`).
    pub replica: Arc<str>,
    /// How to render times in the gateway's own frames.
    pub time: TimeFormat,
    /// Heartbeat and write limits.
    pub settings: WsSettings,
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

/// Takes the registration out of the worker hub when the session ends, however it ends.
struct Registered {
    worker: Rc<WorkerHub>,
    id: ConnId,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.worker.unregister(self.id);
    }
}

/// Runs the session on `upgraded` until either side closes it. `admission` is the connection's
/// place under its user's limit; without one it is closed at once with 4003.
pub async fn run(upgraded: Upgraded, ctx: SessionContext, admission: Option<Admission>) {
    // The listener sets TCP_NODELAY (`http_server::serve`), which the socket inherits: frames are
    // pushed as they come, none held back by Nagle's algorithm.
    let Upgraded { io, read_buf } = upgraded;
    let io = Rc::new(io);
    let shared = &*ctx.shared;
    let write_timeout = Duration::from_millis(shared.settings.write_timeout_ms);
    let Some(admission) = admission else {
        tracing::warn!(user_id = ctx.claims.sub, "connection refused: too many connections for this user");
        close(io, CloseCode::TOO_MANY_CONNECTIONS, write_timeout).await;
        return;
    };
    let outbox =
        Rc::new(Outbox::new(shared.hub.send_buffer(), Some(io.clone())).with_metrics(shared.metrics.delivery.clone()));
    shared.metrics.connections.increment(1.0);
    shared.metrics.connected.increment(1);
    let worker = WorkerHub::current(&shared.hub);
    worker.register(admission.id(), ctx.claims.sub, ctx.claims.is_admin(), outbox.clone());
    let registered = Registered { worker, id: admission.id() };
    let mut connection = Connection {
        io,
        reader: ClientReader::new(read_buf, shared.settings.max_frame_bytes),
        outbox,
        blocked_since: None,
        write_timeout,
    };
    let ending = serve(&mut connection, &ctx, admission.id()).await;
    shared.metrics.connections.decrement(1.0);
    drop(registered);
    drop(admission);
    if let Some(code) = ending {
        tracing::debug!(code = code.code, reason = code.reason, "closing session");
        close(connection.io, code, write_timeout).await;
    }
}

/// Replays the inbox, then serves the connection until the session ends.
#[tracing::instrument(name = "ws_session", skip_all, fields(user_id = ctx.claims.sub, conn = id))]
async fn serve(connection: &mut Connection, ctx: &SessionContext, id: ConnId) -> Ending {
    let shared = &*ctx.shared;
    let now = Instant::now();
    let unix_now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let token_expires_at = now + machine::until_expiry(ctx.claims.exp, unix_now);
    let mut machine = SessionMachine::new(now, Timing::from_settings(&shared.settings), token_expires_at, shared.time);
    tracing::debug!("session open");
    // The connection is registered before the replay, so nothing published meanwhile is missed;
    // a message may then come twice (replayed and live), with the same id: the outbox drops the
    // live copy of what was replayed. Client frames are read only after the replay.
    let (frames, replayed) = Box::pin(replay(ctx, &mut machine)).await;
    connection.outbox.replay_done(frames, replayed);
    let connection_id = format!("{}-{id}", shared.replica);
    let receipts = Receipts { ctx, connection_id: &connection_id };

    // The session's one timer, reset to whatever is due next.
    let timer = tokio::time::sleep_until(machine.next_deadline());
    tokio::pin!(timer);
    loop {
        let deadline = connection.deadline(&machine);
        if timer.deadline() != deadline || timer.is_elapsed() {
            timer.as_mut().reset(deadline);
        }
        let reading = machine.reads_paused_until().is_none();
        let input = poll_fn(|cx| connection.poll_input(cx, timer.as_mut(), reading)).await;
        // An action's outcome may be news for the machine (a refused receipt), which may answer
        // with another action.
        let mut next = Some(input);
        while let Some(input) = next.take() {
            let Some(action) = machine.handle(Instant::now(), input) else { break };
            match action {
                Action::Reply(frame) => match frame.to_json() {
                    Ok(text) => connection.queue(transport::text_frame(text)),
                    Err(err) => {
                        tracing::error!(error = %err, kind = frame.message_type, "a gateway frame could not be serialised");
                        return Some(CloseCode::INTERNAL_ERROR);
                    }
                },
                Action::Pong(payload) => connection.queue(transport::pong_frame(&payload)),
                Action::Ping => connection.queue(transport::ping_frame()),
                Action::RecordReceipt(report) => {
                    next = Box::pin(receipts.record(report)).await.err().map(Input::ReceiptRefused);
                }
                Action::Close(code) => return Some(code),
                Action::Disconnect => return None,
            }
        }
    }
}

/// Reads what the user's inbox holds and tells the machine what was replayed: the frames to
/// send first (an overflow notice when older messages were dropped, then the entries, oldest
/// first) and the ids replayed, whose live copies are not sent again.
async fn replay(ctx: &SessionContext, machine: &mut SessionMachine) -> (Vec<Bytes>, HashSet<MessageId>) {
    let shared = &*ctx.shared;
    let replay = match shared.inbox.replay(ctx.claims.sub).await {
        Ok(replay) => {
            shared.metrics.replay_size.record(replay.entries.len() as f64);
            shared.metrics.offline.increment(replay.entries.len() as u64);
            replay
        }
        Err(err) => {
            // Live delivery still works; the entries stay and replay on the next connect.
            tracing::warn!(error = %err, "offline replay unavailable");
            return (Vec::new(), HashSet::new());
        }
    };
    if replay.entries.is_empty() && replay.dropped == 0 {
        return (Vec::new(), HashSet::new());
    }
    tracing::debug!(entries = replay.entries.len(), dropped = replay.dropped, "replaying offline messages");
    let mut frames = Vec::with_capacity(replay.entries.len() + 1);
    if replay.dropped > 0 {
        match WsMessage::offline_overflow(replay.dropped, shared.time.now()).to_json() {
            Ok(text) => frames.push(transport::text_frame(text)),
            Err(err) => tracing::error!(error = %err, "the overflow notice could not be serialised"),
        }
    }
    let mut replayed = HashSet::with_capacity(replay.entries.len());
    for entry in replay.entries {
        if let Some(id) = machine.replayed(&entry) {
            replayed.insert(id);
        }
        frames.push(transport::text_frame(entry));
    }
    (frames, replayed)
}

/// Writes a close frame with `code` (giving up after `limit`); the socket closes when the last
/// reference to it goes.
async fn close(io: Rc<TcpStream>, code: CloseCode, limit: Duration) {
    let frame = transport::close_frame(code);
    let _ = tokio::time::timeout(limit, async {
        let mut written = 0;
        while written < frame.len() {
            io.writable().await?;
            match io.try_write(&frame[written..]) {
                Ok(n) => written += n,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    })
    .await;
}

/// The socket, what the client sent, and what waits to be written.
struct Connection {
    /// Shared with the outbox, which the worker hub flushes to it directly.
    io: Rc<TcpStream>,
    reader: ClientReader,
    outbox: Rc<Outbox>,
    /// Since when the socket has not taken what is queued.
    blocked_since: Option<Instant>,
    write_timeout: Duration,
}

impl Connection {
    /// Queues one of the session's own frames; a full outbox closes the session as slow.
    fn queue(&self, frame: Bytes) {
        if self.outbox.offer_own(frame) == Offered::Full {
            self.outbox.close(CloseCode::SLOW_CLIENT);
        }
    }

    /// When the timer must fire: the machine's next deadline, or sooner the end of the time a
    /// blocked write may take.
    fn deadline(&self, machine: &SessionMachine) -> Instant {
        let due = machine.next_deadline();
        self.blocked_since.map_or(due, |since| due.min(since + self.write_timeout))
    }

    /// Writes what is queued, reads the client, watches the timer; returns the first thing the
    /// machine must hear about.
    fn poll_input(&mut self, cx: &mut Context<'_>, timer: Pin<&mut Sleep>, reading: bool) -> Poll<Input> {
        if let Some(code) = self.outbox.close_requested() {
            return Poll::Ready(Input::CloseRequested(code));
        }
        if self.poll_flush(cx).is_err() {
            return Poll::Ready(Input::Client(ClientEvent::Ended));
        }
        if reading && let Poll::Ready(event) = self.poll_read(cx) {
            return Poll::Ready(Input::Client(event));
        }
        if timer.poll(cx).is_ready() {
            if self.blocked_since.is_some_and(|since| since.elapsed() >= self.write_timeout) {
                // A client that does not read is a slow client.
                return Poll::Ready(Input::CloseRequested(CloseCode::SLOW_CLIENT));
            }
            return Poll::Ready(Input::Tick);
        }
        self.outbox.park(cx.waker(), self.blocked_since.is_some());
        Poll::Pending
    }

    /// Writes queued frames until the outbox is empty or the socket is full (then the socket's
    /// readiness will wake the task). `Err` when the socket is gone.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        loop {
            let io = &*self.io;
            let written = self.outbox.write_with(|queue, offset| crate::outbox::write_vectored(io, queue, offset));
            match written {
                Ok(true) => {
                    self.blocked_since = None;
                    return Ok(());
                }
                Ok(false) => {}
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => match self.io.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(err)) => return Err(err),
                    Poll::Pending => {
                        self.blocked_since.get_or_insert_with(Instant::now);
                        return Ok(());
                    }
                },
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// The next client message, reading the socket when what was read holds none.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<ClientEvent> {
        loop {
            if let Some(event) = self.reader.next_event() {
                return Poll::Ready(event);
            }
            match self.io.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(ClientEvent::Ended),
                Poll::Pending => return Poll::Pending,
            }
            match self.io.try_read_buf(self.reader.buffer(READ_SIZE)) {
                Ok(0) => return Poll::Ready(ClientEvent::Ended),
                Ok(n) => self.reader.filled(n),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Poll::Ready(ClientEvent::Ended),
            }
        }
    }
}

/// Records a connection's receipts: checked against the notice's audience, the inbox entry
/// removed, the first report from this connection published as a delivery event.
struct Receipts<'a> {
    ctx: &'a SessionContext,
    connection_id: &'a str,
}

impl Receipts<'_> {
    /// The delivery event a receipt from this connection becomes.
    fn event(&self, report: ReceiptReport) -> DeliveryEvent {
        let (claims, client) = (&self.ctx.claims, &self.ctx.client);
        DeliveryEvent {
            event_id: DeliveryEvent::new_event_id(),
            event_type: report.event_type,
            message_id: report.message_id,
            user_id: claims.sub,
            username: claims.name.clone(),
            channel: ReportChannel::Websocket,
            connection_id: self.connection_id.to_owned(),
            timestamp: self.ctx.shared.time.now(),
            user_role: Some(claims.role),
            push_channel: Some(report.push_channel),
            client_ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        }
    }

    async fn record(&self, report: ReceiptReport) -> Result<(), ReceiptRefusal> {
        let (shared, claims) = (&*self.ctx.shared, &self.ctx.claims);
        let event = self.event(report);
        let lookup = shared.audience.lookup(&event.message_id).await;
        machine::audience_verdict(lookup, event.event_type, &event.message_id, claims.sub, claims.is_admin())?;
        state::receipts::record(&shared.inbox, &shared.receipts, &shared.bus, &event, self.connection_id).await.map_err(
            |err| {
                tracing::warn!(error = %err, message_id = %event.message_id, "receipt not recorded");
                ReceiptRefusal::not_recorded(event.event_type)
            },
        )
    }
}
