//! A connection's outbox: the encoded frames waiting for its socket, shared by the worker hub
//! that fans out to it and the session that writes them.
//!
//! Both run on the worker thread that owns the connection, so the outbox is a `RefCell` behind
//! an `Rc`: queueing a notice's frame is a reference count taken and a wake of the session on
//! the same thread, with no lock, no atomic operation on the queue and, once the queue has its
//! first few slots, no allocation. The queue is bounded (`ws.send_buffer`): a connection whose
//! queue is full is a slow client, asked to close with 4001 (it replays on reconnect).
//!
//! The worker hub writes what it queued itself, once it has handed out a batch of notices
//! ([`Outbox::flush`]): every frame a connection got in that batch in one vectored write, and
//! the session's task is not even woken. Only what the socket does not take waits in the queue,
//! for the session to write when the socket is writable again.
//!
//! Until the session has replayed the user's offline inbox, live frames wait behind the replay;
//! a live copy of a message the replay already sent is dropped.

use crate::metrics::DeliveryMetrics;
use actix_web::rt::net::TcpStream;
use bytes::Bytes;
use model::{CloseCode, MessageId};
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

/// Slots an outbox keeps once it has had frames: enough for the steady case (a frame or two at
/// a time) never to allocate again, little enough for ten thousand idle connections.
const KEPT_SLOTS: usize = 2;

/// A notice's frame, encoded once and shared by every connection it goes to.
#[derive(Debug)]
pub struct SharedFrame {
    /// The notice's id, so that a session can drop the live copy of what it just replayed.
    pub message_id: MessageId,
    /// The WebSocket frame (header and the spec 3.2 JSON), as written to every socket.
    pub bytes: Bytes,
}

/// A frame in an outbox.
#[derive(Debug)]
pub enum Frame {
    /// A notice's frame, shared with the other connections it goes to.
    Shared(Arc<SharedFrame>),
    /// A frame of this connection's own (a replayed entry, a pong, a sync, a ping).
    Own(Bytes),
}

impl Frame {
    /// The frame's bytes on the wire.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Frame::Shared(shared) => &shared.bytes,
            Frame::Own(bytes) => bytes,
        }
    }
}

/// What became of a frame offered to an outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Queued.
    Queued,
    /// Not needed: the live copy of a message the replay sent.
    Replayed,
    /// The queue was full: the connection is asked to close as a slow client.
    Full,
    /// The connection is closing; nothing more goes to it.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    /// What the session writes next, in order.
    queue: VecDeque<Frame>,
    /// Live frames that came while the replay was being read; they follow it.
    held: VecDeque<Frame>,
    replaying: bool,
    /// Replayed ids whose live copy has not come yet: that copy is dropped.
    awaiting_live_copy: HashSet<MessageId>,
    close: Option<CloseCode>,
    /// The session, when it waits for something to do.
    waker: Option<Waker>,
    /// The socket does not take more right now: the session is waiting for it, not for frames.
    write_blocked: bool,
    /// How much of the queue's front frame is written already.
    offset: usize,
    /// A worker hub will flush this outbox after its batch.
    flush_claimed: bool,
}

/// One connection's outbox.
#[derive(Debug)]
pub struct Outbox {
    state: RefCell<State>,
    limit: usize,
    /// The connection's socket, for the worker hub's flush.
    socket: Option<Rc<TcpStream>>,
    /// What a written notice's frame records.
    metrics: Option<DeliveryMetrics>,
}

impl Outbox {
    /// An outbox holding at most `limit` frames, replaying first (see [`Outbox::replay_done`]),
    /// which a worker hub may flush to `socket`.
    pub fn new(limit: usize, socket: Option<Rc<TcpStream>>) -> Self {
        Self { state: RefCell::new(State { replaying: true, ..State::default() }), limit, socket, metrics: None }
    }

    /// The outbox recording each notice's frame it writes in `metrics`.
    pub fn with_metrics(mut self, metrics: DeliveryMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Queues a notice's frame, unless it is the live copy of one the replay sent.
    pub fn offer(&self, frame: &Arc<SharedFrame>) -> Offered {
        let mut state = self.state.borrow_mut();
        if !state.awaiting_live_copy.is_empty() && state.awaiting_live_copy.remove(&frame.message_id) {
            return Offered::Replayed;
        }
        self.push(&mut state, Frame::Shared(frame.clone()))
    }

    /// Queues a frame of the connection's own; refused (not queued) when the queue is full.
    pub fn offer_own(&self, bytes: Bytes) -> Offered {
        self.push(&mut self.state.borrow_mut(), Frame::Own(bytes))
    }

    fn push(&self, state: &mut State, frame: Frame) -> Offered {
        if state.close.is_some() {
            return Offered::Closed;
        }
        let limit = self.limit;
        let target = if state.replaying { &mut state.held } else { &mut state.queue };
        if target.len() >= limit {
            return Offered::Full;
        }
        if target.capacity() == 0 {
            target.reserve_exact(KEPT_SLOTS);
        }
        target.push_back(frame);
        Offered::Queued
    }

    /// Whether the caller is to flush this outbox (it queued a frame the socket may take now,
    /// and nobody claimed the flush yet). A worker hub claims it while it hands out a batch,
    /// then calls [`Outbox::flush`].
    pub fn claim_flush(&self) -> bool {
        let mut state = self.state.borrow_mut();
        if state.flush_claimed || state.replaying || state.write_blocked || self.socket.is_none() {
            return false;
        }
        state.flush_claimed = true;
        true
    }

    /// Writes what is queued to the socket, as much as it takes in one vectored write; what it
    /// does not take (or a failing socket) is left to the session, which is woken for it.
    pub fn flush(&self) {
        self.state.borrow_mut().flush_claimed = false;
        let Some(socket) = &self.socket else { return };
        if self.close_requested().is_some() {
            return;
        }
        match self.write_with(|queue, offset| write_vectored(socket, queue, offset)) {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                if let Some(waker) = &self.state.borrow().waker {
                    waker.wake_by_ref();
                }
            }
        }
    }

    /// Asks the session to close with `code`; the first reason wins. What is queued is not
    /// written any more.
    pub fn close(&self, code: CloseCode) {
        let mut state = self.state.borrow_mut();
        if state.close.is_none() {
            state.close = Some(code);
            state.queue = VecDeque::new();
            state.held = VecDeque::new();
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
    }

    /// The close asked for, if any.
    pub fn close_requested(&self) -> Option<CloseCode> {
        self.state.borrow().close
    }

    /// Ends the replay: `frames` (the overflow notice and the inbox's entries) go first, then
    /// the live frames that came meanwhile, except the copies of `replayed` messages; later
    /// copies of those are dropped too, once each.
    pub fn replay_done(&self, frames: Vec<Bytes>, mut replayed: HashSet<MessageId>) {
        let mut state = self.state.borrow_mut();
        let held = std::mem::take(&mut state.held);
        // Nothing to send: no slots yet (the first frame takes them).
        let mut queue = VecDeque::with_capacity(frames.len() + held.len());
        queue.extend(frames.into_iter().map(Frame::Own));
        for frame in held {
            if let Frame::Shared(shared) = &frame
                && replayed.remove(&shared.message_id)
            {
                continue;
            }
            queue.push_back(frame);
        }
        queue.append(&mut state.queue);
        state.queue = queue;
        state.awaiting_live_copy = replayed;
        state.replaying = false;
    }

    /// Runs `write` over the queued frames, front first, with how much of the front frame an
    /// earlier write took already; it answers how many bytes it wrote, and the frames written
    /// whole leave the queue. `Ok(true)` once the queue is empty.
    pub fn write_with(
        &self,
        write: impl FnOnce(&VecDeque<Frame>, usize) -> std::io::Result<usize>,
    ) -> std::io::Result<bool> {
        let mut state = self.state.borrow_mut();
        if state.queue.is_empty() {
            return Ok(true);
        }
        let offset = state.offset;
        let mut written = write(&state.queue, offset)? + offset;
        let mut done = 0;
        for frame in &state.queue {
            let len = frame.bytes().len();
            if written < len {
                break;
            }
            written -= len;
            done += 1;
        }
        if let Some(metrics) = &self.metrics {
            metrics.written(state.queue.iter().take(done).filter_map(|frame| match frame {
                Frame::Shared(shared) => Some(&shared.message_id),
                Frame::Own(_) => None,
            }));
        }
        state.queue.drain(..done);
        state.offset = written;
        let empty = state.queue.is_empty();
        if empty && state.queue.capacity() > KEPT_SLOTS {
            // A burst (or the replay) is over: keep a few slots, not the burst's.
            state.queue.shrink_to(KEPT_SLOTS);
        }
        Ok(empty)
    }

    /// Whether frames wait to be written.
    pub fn has_frames(&self) -> bool {
        !self.state.borrow().queue.is_empty()
    }

    /// Notes whether the socket is full (then queued frames do not wake the session) and which
    /// task to wake for new frames and close requests.
    pub fn park(&self, waker: &Waker, write_blocked: bool) {
        let mut state = self.state.borrow_mut();
        state.write_blocked = write_blocked;
        match &state.waker {
            Some(current) if current.will_wake(waker) => {}
            _ => state.waker = Some(waker.clone()),
        }
    }

    /// Frames queued and held, for tests.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        let state = self.state.borrow();
        state.queue.len() + state.held.len()
    }
}

/// The most frames one vectored write carries.
const MAX_IOVECS: usize = 64;

/// One vectored write of the queued frames, the first from `offset` on.
pub fn write_vectored(io: &TcpStream, queue: &VecDeque<Frame>, offset: usize) -> std::io::Result<usize> {
    if queue.len() == 1 {
        return io.try_write(&queue[0].bytes()[offset..]);
    }
    let mut slices = [std::io::IoSlice::new(&[]); MAX_IOVECS];
    let mut count = 0;
    for (index, frame) in queue.iter().take(MAX_IOVECS).enumerate() {
        let bytes = frame.bytes();
        slices[index] = std::io::IoSlice::new(if index == 0 { &bytes[offset..] } else { bytes });
        count += 1;
    }
    io.try_write_vectored(&slices[..count])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(id: &str) -> Arc<SharedFrame> {
        Arc::new(SharedFrame { message_id: MessageId::parse(id).unwrap(), bytes: Bytes::from(id.to_owned()) })
    }

    /// Everything the outbox would write now, as text.
    fn drain(outbox: &Outbox) -> Vec<String> {
        let mut written = Vec::new();
        outbox
            .write_with(|queue, _| {
                written.extend(queue.iter().map(|f| String::from_utf8_lossy(f.bytes()).into_owned()));
                Ok(queue.iter().map(|f| f.bytes().len()).sum())
            })
            .unwrap();
        written
    }

    const A: &str = "1706335800123456789-abc12345";
    const B: &str = "1706335800123456790-def67890";
    const C: &str = "1706335800123456791-00000000";

    #[test]
    fn live_frames_wait_behind_the_replay_and_replayed_copies_are_dropped_once() {
        let outbox = Outbox::new(16, None);
        assert_eq!(outbox.offer(&shared(A)), Offered::Queued);
        assert_eq!(outbox.offer(&shared(B)), Offered::Queued);
        assert!(drain(&outbox).is_empty(), "nothing goes out before the replay");
        let replayed: HashSet<MessageId> = [A, C].iter().map(|id| MessageId::parse(id).unwrap()).collect();
        outbox.replay_done(vec![Bytes::from_static(b"overflow"), Bytes::from_static(b"entry-A")], replayed);
        assert_eq!(outbox.offer(&shared(C)), Offered::Replayed, "a live copy that came after the replay");
        assert_eq!(outbox.offer(&shared(C)), Offered::Queued, "a second copy is a redelivery");
        assert_eq!(drain(&outbox), ["overflow", "entry-A", B, C]);
    }

    #[test]
    fn a_full_queue_refuses_and_a_closed_outbox_takes_nothing() {
        let outbox = Outbox::new(2, None);
        outbox.replay_done(Vec::new(), HashSet::new());
        assert_eq!(outbox.offer(&shared(A)), Offered::Queued);
        assert_eq!(outbox.offer_own(Bytes::from_static(b"pong")), Offered::Queued);
        assert_eq!(outbox.offer(&shared(B)), Offered::Full);
        outbox.close(CloseCode::SLOW_CLIENT);
        outbox.close(CloseCode::GOING_AWAY);
        assert_eq!(outbox.close_requested(), Some(CloseCode::SLOW_CLIENT), "the first reason wins");
        assert_eq!(outbox.offer(&shared(C)), Offered::Closed);
        assert_eq!(outbox.queued(), 0, "what was queued is not written after a close");
    }

    #[test]
    fn a_partial_write_keeps_its_place_in_the_front_frame() {
        let outbox = Outbox::new(8, None);
        outbox.replay_done(Vec::new(), HashSet::new());
        outbox.offer_own(Bytes::from_static(b"abcd"));
        outbox.offer_own(Bytes::from_static(b"efgh"));
        let mut seen = Vec::new();
        for step in [3, 3, 2] {
            let empty = outbox
                .write_with(|queue, at| {
                    let all: Vec<u8> = queue.iter().flat_map(|f| f.bytes().to_vec()).collect();
                    seen.extend_from_slice(&all[at..at + step]);
                    Ok(step)
                })
                .unwrap();
            assert_eq!(empty, step == 2);
        }
        assert_eq!(seen, b"abcdefgh");
        assert_eq!(outbox.state.borrow().offset, 0);
    }

    /// A connected pair of sockets: the server's end for an outbox, the client's to read.
    async fn socket_pair() -> (Rc<TcpStream>, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        server.writable().await.unwrap();
        (Rc::new(server), client)
    }

    #[tokio::test]
    async fn a_flush_writes_every_queued_frame_at_once_and_leaves_what_the_socket_does_not_take() {
        use tokio::io::AsyncReadExt;
        let (server, mut client) = socket_pair().await;
        let outbox = Outbox::new(1_000_000, Some(server));
        outbox.offer_own(Bytes::from_static(b"early"));
        assert!(!outbox.claim_flush(), "nothing is written during the replay");
        outbox.replay_done(vec![Bytes::from_static(b"replayed-")], HashSet::new());
        for id in [A, B] {
            assert_eq!(outbox.offer(&shared(id)), Offered::Queued);
        }
        assert!(outbox.claim_flush());
        assert!(!outbox.claim_flush(), "claimed once per batch");
        outbox.flush();
        assert_eq!(outbox.queued(), 0, "written, not queued");
        let expected = format!("replayed-early{A}{B}");
        let mut buf = vec![0; expected.len()];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), expected, "in order");

        // A client that reads nothing: the socket fills, and the rest waits for the session.
        let big = Bytes::from(vec![b'x'; 1 << 16]);
        for _ in 0..1000 {
            outbox.offer_own(big.clone());
            assert!(outbox.claim_flush());
            outbox.flush();
            if outbox.queued() > 0 {
                return;
            }
        }
        panic!("the socket never filled");
    }
}
