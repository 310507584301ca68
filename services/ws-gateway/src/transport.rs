//! What stands between a client's bytes and actix-ws: a gate that enforces the frame limit on
//! the length a frame *declares*, before its payload is read, and the mapping of protocol errors
//! to close codes.
//!
//! actix-ws checks `ws.max_frame_bytes` only once a whole frame is buffered, and reads whatever
//! the socket has before decoding: a client declaring a 256 MiB frame made the process buffer
//! 253 MiB before its 1009, and one declaring 2^40 bytes and then falling silent was dropped only
//! by the heartbeat. The gate watches the frame headers as the bytes pass (it never copies
//! them): a data frame, or a fragmented message in total, declared over the limit ends the
//! stream with an error at once, so what one connection can make the gateway hold is bounded by
//! the limit plus one read.

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use actix_ws::ProtocolError;
use bytes::Bytes;
use futures_util::Stream;
use model::CloseCode;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The longest control frame payload (RFC 6455 5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// The request's payload behind a frame gate, as the `web::Payload` actix-ws takes.
pub fn gated_payload(
    req: &HttpRequest,
    body: web::Payload,
    max_message_bytes: usize,
) -> Result<web::Payload, actix_web::Error> {
    let gate = FrameGate::new(body.into_inner(), max_message_bytes as u64);
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(gate);
    let mut gated = Payload::Stream { payload: stream };
    // `web::Payload` has no public constructor; extracting one takes the payload it is given.
    web::Payload::from_request(req, &mut gated).into_inner()
}

/// The close code for a protocol error of the client's stream.
pub fn close_code(err: &ProtocolError) -> CloseCode {
    match err {
        ProtocolError::Overflow => CloseCode::MESSAGE_TOO_BIG,
        ProtocolError::Io(io) => {
            let gated = io.get_ref().and_then(|inner| inner.downcast_ref::<PayloadError>());
            if matches!(gated, Some(PayloadError::Overflow)) || io.to_string().contains("maximum continuation size") {
                CloseCode::MESSAGE_TOO_BIG
            } else if io.kind() == std::io::ErrorKind::InvalidData && io.to_string().contains("utf-8") {
                CloseCode::INVALID_PAYLOAD
            } else {
                CloseCode::PROTOCOL_ERROR
            }
        }
        _ => CloseCode::PROTOCOL_ERROR,
    }
}

/// Where the gate is in the byte stream.
#[derive(Debug)]
enum Position {
    /// Reading a frame header: `have` of its bytes so far.
    Header { have: usize },
    /// Inside a frame's payload: this many bytes to go.
    Payload { remaining: u64 },
}

/// Passes a client's bytes through unchanged, failing as soon as a frame header declares more
/// than the limit.
struct FrameGate {
    inner: Payload,
    max: u64,
    header: [u8; 14],
    position: Position,
    /// The length so far of a fragmented message, while one is open.
    fragments: Option<u64>,
    failed: bool,
}

impl FrameGate {
    fn new(inner: Payload, max: u64) -> Self {
        Self { inner, max, header: [0; 14], position: Position::Header { have: 0 }, fragments: None, failed: false }
    }

    /// Follows `chunk` through the frame structure; `Err` when a frame declares too much.
    fn observe(&mut self, mut chunk: &[u8]) -> Result<(), PayloadError> {
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
    fn check(&mut self, length: u64) -> Result<(), PayloadError> {
        let first = self.header[0];
        let (fin, opcode) = (first & 0x80 != 0, first & 0x0F);
        let total = match opcode {
            // Continuation: adds to the open message.
            0x0 => self.fragments.unwrap_or(0).saturating_add(length),
            // Text or binary: starts a message.
            0x1 | 0x2 => length,
            // Control frames are short by definition.
            _ if length > MAX_CONTROL_PAYLOAD => return Err(PayloadError::Overflow),
            _ => return Ok(()),
        };
        if total > self.max {
            return Err(PayloadError::Overflow);
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

impl Stream for FrameGate {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match this.observe(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(err) => {
                    this.failed = true;
                    Poll::Ready(Some(Err(err)))
                }
            },
            other => other,
        }
    }
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

    fn gate(max: u64) -> FrameGate {
        FrameGate::new(Payload::None, max)
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
    fn errors_map_to_their_close_codes() {
        let gated = ProtocolError::Io(std::io::Error::other(PayloadError::Overflow));
        assert_eq!(close_code(&gated).code, 1009);
        let invalid = vec![0xff_u8];
        let utf8 = std::str::from_utf8(&invalid).unwrap_err();
        let text = ProtocolError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, utf8));
        assert_eq!(close_code(&text).code, 1007);
        let continuation = ProtocolError::Io(std::io::Error::other("Exceeded maximum continuation size"));
        assert_eq!(close_code(&continuation).code, 1009);
        assert_eq!(close_code(&ProtocolError::UnmaskedFrame).code, 4002);
    }
}
