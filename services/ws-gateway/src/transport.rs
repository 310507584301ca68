//! The WebSocket protocol on a session's socket: reading client frames (actix-http's codec,
//! behind a gate that enforces the frame limit on the length a frame *declares*, before its
//! payload is read), aggregating fragmented messages, mapping protocol errors to close codes, and
//! encoding the server's frames.
//!
//! A session reads its socket itself (see `session.rs`), into a buffer that exists only while a
//! frame is partly received, so an idle connection holds no read buffer at all. The gate watches
//! the frame headers as the bytes arrive (it never copies them): a data frame, or a fragmented
//! message in total, declared over the limit ends the session with 1009 at once, so what one
//! connection can make the gateway hold is bounded by the limit plus one read.

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{Codec, Frame, Item, Message, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use model::CloseCode;

/// The longest control frame payload (RFC 6455 5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// What a client's socket yielded, as the session machine sees it.
#[derive(Debug)]
pub enum ClientEvent {
    /// A text message (a whole one, fragments aggregated).
    Text(ByteString),
    /// A binary message: Herald speaks JSON text only.
    Binary,
    /// A WebSocket ping with its payload.
    Ping(Bytes),
    /// A WebSocket pong.
    Pong,
    /// The client's close frame.
    Close,
    /// The stream broke the protocol; the code says how (1007, 1009, 4002).
    Broken(CloseCode),
    /// The stream ended without a close frame: the socket is gone.
    Ended,
}

/// The close code for a protocol error of the client's stream.
pub fn close_code(err: &ProtocolError) -> CloseCode {
    match err {
        ProtocolError::Overflow => CloseCode::MESSAGE_TOO_BIG,
        _ => CloseCode::PROTOCOL_ERROR,
    }
}

/// Decodes what a client sends: its bytes in, whole messages out.
#[derive(Debug)]
pub struct ClientReader {
    /// Received bytes not decoded yet; empty (and unallocated) between frames.
    buf: BytesMut,
    gate: FrameGate,
    codec: Codec,
    /// A fragmented message being put together: whether it is text, and its bytes so far.
    fragments: Option<(bool, BytesMut)>,
    max_message_bytes: usize,
    /// The client sent something that ended the session; nothing more is decoded.
    failed: bool,
}

impl ClientReader {
    /// A reader of messages up to `max_message_bytes`, starting with what the client already
    /// sent (`initial`: the bytes that followed its handshake).
    pub fn new(initial: BytesMut, max_message_bytes: usize) -> Self {
        let mut reader = Self {
            buf: BytesMut::new(),
            gate: FrameGate::new(max_message_bytes as u64),
            codec: Codec::new().max_size(max_message_bytes),
            fragments: None,
            max_message_bytes,
            failed: false,
        };
        if !initial.is_empty() {
            reader.buf.extend_from_slice(&initial);
            reader.filled(initial.len());
        }
        reader
    }

    /// Room for the next read: the buffer the socket is read into.
    pub fn buffer(&mut self, read_size: usize) -> &mut BytesMut {
        self.buf.reserve(read_size);
        &mut self.buf
    }

    /// Notes that the last `n` bytes of the buffer were just read: they pass the gate.
    pub fn filled(&mut self, n: usize) {
        let start = self.buf.len().saturating_sub(n);
        if !self.failed && self.gate.observe(&self.buf[start..]).is_err() {
            self.failed = true;
        }
    }

    /// The next whole message decoded from what was read, if there is one.
    pub fn next_event(&mut self) -> Option<ClientEvent> {
        if self.failed {
            self.buf = BytesMut::new();
            return Some(ClientEvent::Broken(CloseCode::MESSAGE_TOO_BIG));
        }
        loop {
            let frame = match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    if self.buf.is_empty() {
                        // Between frames: give the allocation back.
                        self.buf = BytesMut::new();
                    }
                    return None;
                }
                Err(err) => return Some(self.fail(close_code(&err))),
            };
            let event = match frame {
                Frame::Text(bytes) => text(bytes),
                Frame::Binary(_) => ClientEvent::Binary,
                Frame::Ping(payload) => ClientEvent::Ping(payload),
                Frame::Pong(_) => ClientEvent::Pong,
                Frame::Close(_) => ClientEvent::Close,
                Frame::Continuation(item) => match self.aggregate(item) {
                    Ok(Some(event)) => event,
                    Ok(None) => continue,
                    Err(code) => ClientEvent::Broken(code),
                },
            };
            if let ClientEvent::Broken(code) = event {
                return Some(self.fail(code));
            }
            return Some(event);
        }
    }

    fn fail(&mut self, code: CloseCode) -> ClientEvent {
        self.failed = true;
        self.buf = BytesMut::new();
        self.fragments = None;
        ClientEvent::Broken(code)
    }

    /// Adds a fragment to the open message; the whole message once its last fragment came.
    fn aggregate(&mut self, item: Item) -> Result<Option<ClientEvent>, CloseCode> {
        let (is_text, last) = match item {
            Item::FirstText(bytes) => {
                self.fragments = Some((true, BytesMut::from(&bytes[..])));
                return Ok(None);
            }
            Item::FirstBinary(bytes) => {
                self.fragments = Some((false, BytesMut::from(&bytes[..])));
                return Ok(None);
            }
            Item::Continue(bytes) => {
                let (_, so_far) = self.fragments.as_mut().ok_or(CloseCode::PROTOCOL_ERROR)?;
                so_far.extend_from_slice(&bytes);
                if so_far.len() > self.max_message_bytes {
                    return Err(CloseCode::MESSAGE_TOO_BIG);
                }
                return Ok(None);
            }
            Item::Last(bytes) => {
                let (is_text, mut so_far) = self.fragments.take().ok_or(CloseCode::PROTOCOL_ERROR)?;
                so_far.extend_from_slice(&bytes);
                (is_text, so_far)
            }
        };
        if last.len() > self.max_message_bytes {
            return Err(CloseCode::MESSAGE_TOO_BIG);
        }
        Ok(Some(if is_text { text(last.freeze()) } else { ClientEvent::Binary }))
    }
}

/// A text message, once its bytes are known to be UTF-8 (1007 otherwise).
fn text(bytes: Bytes) -> ClientEvent {
    match ByteString::try_from(bytes) {
        Ok(text) => ClientEvent::Text(text),
        Err(_) => ClientEvent::Broken(CloseCode::INVALID_PAYLOAD),
    }
}

/// A server frame, encoded (servers do not mask, so the bytes are the same for every
/// connection).
fn encode(message: Message) -> Bytes {
    let mut bytes = BytesMut::new();
    // Encoding a server frame into memory cannot fail: the codec only refuses oversized
    // control payloads, which the callers cut first.
    let _ = Codec::new().encode(message, &mut bytes);
    bytes.freeze()
}

/// A text frame carrying `text`.
pub fn text_frame(text: impl Into<ByteString>) -> Bytes {
    encode(Message::Text(text.into()))
}

/// A ping frame with no payload: the heartbeat.
pub fn ping_frame() -> Bytes {
    Bytes::from_static(&[0x89, 0x00])
}

/// A pong frame answering a ping with `payload`.
pub fn pong_frame(payload: &Bytes) -> Bytes {
    encode(Message::Pong(payload.slice(..payload.len().min(MAX_CONTROL_PAYLOAD as usize))))
}

/// A close frame with `code` and its reason.
pub fn close_frame(code: CloseCode) -> Bytes {
    let mut reason = code.reason;
    // A close payload is at most 125 bytes: the 2-byte code and the reason.
    while reason.len() > MAX_CONTROL_PAYLOAD as usize - 2 {
        let mut end = MAX_CONTROL_PAYLOAD as usize - 2;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason = &reason[..end];
    }
    encode(Message::Close(Some(actix_http::ws::CloseReason {
        code: code.code.into(),
        description: Some(reason.to_owned()),
    })))
}

/// Where the gate is in the byte stream.
#[derive(Debug)]
enum Position {
    /// Reading a frame header: `have` of its bytes so far.
    Header { have: usize },
    /// Inside a frame's payload: this many bytes to go.
    Payload { remaining: u64 },
}

/// Follows a client's bytes through the frame structure, failing as soon as a frame header
/// declares more than the limit.
#[derive(Debug)]
struct FrameGate {
    max: u64,
    header: [u8; 14],
    position: Position,
    /// The length so far of a fragmented message, while one is open.
    fragments: Option<u64>,
}

/// A frame, or a fragmented message, declared over the limit.
#[derive(Debug)]
struct Oversized;

impl FrameGate {
    fn new(max: u64) -> Self {
        Self { max, header: [0; 14], position: Position::Header { have: 0 }, fragments: None }
    }

    /// Follows `chunk` through the frame structure; `Err` when a frame declares too much.
    fn observe(&mut self, mut chunk: &[u8]) -> Result<(), Oversized> {
        while !chunk.is_empty() {
            match &mut self.position {
                Position::Payload { remaining } => {
                    let skip = (*remaining).min(chunk.len() as u64);
                    *remaining -= skip;
                    chunk = &chunk[skip as usize..];
                    if *remaining == 0 {
                        self.position = Position::Header { have: 0 };
                    }
                }
                Position::Header { have } => {
                    self.header[*have] = chunk[0];
                    *have += 1;
                    chunk = &chunk[1..];
                    let have = *have;
                    if let Some(length) = declared_length(&self.header[..have]) {
                        self.check(length)?;
                        self.position = if length == 0 {
                            Position::Header { have: 0 }
                        } else {
                            Position::Payload { remaining: length }
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks a complete header declaring `length` payload bytes.
    fn check(&mut self, length: u64) -> Result<(), Oversized> {
        let first = self.header[0];
        let (fin, opcode) = (first & 0x80 != 0, first & 0x0F);
        let total = match opcode {
            // Continuation: adds to the open message.
            0x0 => self.fragments.unwrap_or(0).saturating_add(length),
            // Text or binary: starts a message.
            0x1 | 0x2 => length,
            // Control frames are short by definition.
            _ if length > MAX_CONTROL_PAYLOAD => return Err(Oversized),
            _ => return Ok(()),
        };
        if total > self.max {
            return Err(Oversized);
        }
        self.fragments = if fin { None } else { Some(total) };
        Ok(())
    }
}

/// The payload length a frame header declares, once all of the header is there.
fn declared_length(header: &[u8]) -> Option<u64> {
    if header.len() < 2 {
        return None;
    }
    let masked = header[1] & 0x80 != 0;
    let extended = match header[1] & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let needed = 2 + extended + if masked { 4 } else { 0 };
    if header.len() < needed {
        return None;
    }
    Some(match header[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => {
            u64::from_be_bytes([header[2], header[3], header[4], header[5], header[6], header[7], header[8], header[9]])
        }
        short => u64::from(short),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header declaring `length` payload bytes.
    fn header(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
        let mut bytes = vec![u8::from(fin) << 7 | opcode];
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
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        bytes
    }

    /// A whole masked client frame (mask 1,2,3,4) carrying `payload`.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = header(fin, opcode, payload.len() as u64);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]));
        bytes
    }

    fn reader(max: usize, bytes: &[u8]) -> ClientReader {
        ClientReader::new(BytesMut::from(bytes), max)
    }

    fn gate(max: u64) -> FrameGate {
        FrameGate::new(max)
    }

    #[test]
    fn frames_within_the_limit_pass_byte_by_byte_and_in_one_piece() {
        let mut stream = header(true, 0x1, 5);
        stream.extend_from_slice(b"hello");
        stream.extend(header(true, 0x9, 0));
        stream.extend(header(true, 0x2, 300));
        stream.extend(vec![0; 300]);
        let mut whole = gate(300);
        assert!(whole.observe(&stream).is_ok());
        let mut bytewise = gate(300);
        assert!(stream.iter().all(|b| bytewise.observe(&[*b]).is_ok()));
        assert!(matches!(bytewise.position, Position::Header { have: 0 }));
    }

    #[test]
    fn a_declared_length_over_the_limit_fails_on_the_header_alone() {
        assert!(gate(16 * 1024).observe(&header(true, 0x1, 1 << 40)).is_err());
        assert!(gate(16 * 1024).observe(&header(true, 0x2, 16 * 1024 + 1)).is_err());
        assert!(gate(16 * 1024).observe(&header(true, 0x9, 126)).is_err(), "an oversized ping");
        let mut declared = reader(16 * 1024, &header(true, 0x1, 1 << 40));
        assert!(matches!(declared.next_event(), Some(ClientEvent::Broken(code)) if code.code == 1009));
    }

    #[test]
    fn a_fragmented_message_is_limited_in_total() {
        let mut fragmented = gate(100);
        let mut stream = header(false, 0x1, 60);
        stream.extend(vec![0; 60]);
        stream.extend(header(true, 0x9, 0));
        assert!(fragmented.observe(&stream).is_ok(), "a ping may come between fragments");
        assert!(fragmented.observe(&header(true, 0x0, 41)).is_err());

        let mut within = gate(100);
        let mut stream = header(false, 0x1, 60);
        stream.extend(vec![0; 60]);
        stream.extend(header(true, 0x0, 40));
        stream.extend(vec![0; 40]);
        stream.extend(header(true, 0x1, 100));
        assert!(within.observe(&stream).is_ok(), "each message counts from zero");
    }

    #[test]
    fn messages_are_decoded_whole_from_frames_and_fragments_read_in_any_pieces() {
        let mut stream = frame(true, 0x1, br#"{"type":"ping"}"#);
        stream.extend(frame(false, 0x1, "部分".as_bytes()));
        stream.extend(frame(true, 0x9, b"are you there"));
        stream.extend(frame(true, 0x0, "消息".as_bytes()));
        stream.extend(frame(true, 0xA, b""));
        stream.extend(frame(true, 0x2, b"\x00\x01"));
        stream.extend(frame(true, 0x8, &1000u16.to_be_bytes()));
        for piece in [1, 3, stream.len()] {
            let mut reader = ClientReader::new(BytesMut::new(), 1024);
            let mut events = Vec::new();
            for chunk in stream.chunks(piece) {
                reader.buffer(chunk.len()).extend_from_slice(chunk);
                reader.filled(chunk.len());
                events.extend(std::iter::from_fn(|| reader.next_event()).map(|e| format!("{e:?}")));
            }
            assert_eq!(
                events,
                [
                    r#"Text("{\"type\":\"ping\"}")"#,
                    r#"Ping(b"are you there")"#,
                    r#"Text("部分消息")"#,
                    "Pong",
                    "Binary",
                    "Close",
                ],
                "read {piece} bytes at a time"
            );
            assert_eq!(reader.buf.capacity(), 0, "nothing is held between frames");
        }
    }

    #[test]
    fn bad_frames_close_with_their_codes() {
        let code = |bytes: &[u8]| match reader(1024, bytes).next_event() {
            Some(ClientEvent::Broken(code)) => code.code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(&frame(true, 0x1, &[0xff, 0xfe])), 1007, "text that is not UTF-8");
        let mut split = frame(false, 0x1, &[0xe6, 0x96]);
        split.extend(frame(true, 0x0, &[0xff]));
        assert_eq!(code(&split), 1007, "fragments that are not UTF-8 together");
        assert_eq!(code(&[0x81, 0x02, b'h', b'i']), 4002, "an unmasked client frame");
        assert_eq!(code(&frame(true, 0x0, b"x")), 4002, "a continuation with nothing to continue");
        assert_eq!(code(&header(true, 0x1, 2000)), 1009, "declared over the limit");
    }

    #[test]
    fn server_frames_are_encoded_as_actix_encodes_them() {
        assert_eq!(&text_frame("hi")[..], &[0x81, 0x02, b'h', b'i']);
        assert_eq!(&ping_frame()[..], &[0x89, 0x00]);
        assert_eq!(&pong_frame(&Bytes::from_static(b"x"))[..], &[0x8A, 0x01, b'x']);
        let close = close_frame(CloseCode::SLOW_CLIENT);
        assert_eq!(&close[..4], &[0x88, 2 + CloseCode::SLOW_CLIENT.reason.len() as u8, 0x0F, 0xA1]);
        let long = "x".repeat(200);
        assert_eq!(text_frame(long.clone()).len(), 4 + 200, "a 16-bit length");
    }
}
