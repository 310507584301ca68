//! Bundles: several notices moved on from the ingress queue as one RabbitMQ message.
//!
//! Under load the dispatcher holds many ingress deliveries at once; consecutive ones with the
//! same routing key go on to the notifications exchange as one message (their payloads one
//! after another, the lengths and trace contexts in headers), so the broker routes, stores,
//! delivers and forgets one message for them instead of one each, in every consumer queue.
//! Consumers never see a bundle: the subscription takes it apart into one [`crate::Incoming`]
//! per notice, in order, sharing the delivery's acknowledgement, which goes to the broker once
//! every part is settled. A part requeued requeues the whole bundle when the last part is
//! settled (the parts already processed come again, as after any redelivery: consumers are
//! idempotent); a part dead-lettered goes to the dead-letter queue on its own.

use bytes::{Bytes, BytesMut};
use lapin::types::{AMQPValue, FieldArray, FieldTable};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The header with the length of each part, in order.
const PARTS_HEADER: &str = "x-herald-bundle";
/// The header with each part's trace context (`traceparent`, empty for none), in order.
const TRACES_HEADER: &str = "x-herald-bundle-traces";
/// The most bytes of payload one bundle carries (a part larger than that goes on its own).
pub(crate) const MAX_BUNDLE_BYTES: usize = 64 * 1024;

/// One part of a bundle: its payload and trace context.
#[derive(Debug, PartialEq)]
pub(crate) struct Part {
    pub payload: Bytes,
    pub traceparent: Option<String>,
}

/// The payload and headers of the message that carries `parts` (at least two).
pub(crate) fn encode<'a>(parts: impl Iterator<Item = (&'a Bytes, Option<&'a str>)>) -> (Bytes, FieldTable) {
    let (mut payload, mut lengths, mut traces) = (BytesMut::new(), Vec::new(), Vec::new());
    for (part, traceparent) in parts {
        payload.extend_from_slice(part);
        lengths.push(AMQPValue::LongLongInt(part.len() as i64));
        traces.push(AMQPValue::LongString(traceparent.unwrap_or_default().into()));
    }
    let mut headers = FieldTable::default();
    headers.insert(PARTS_HEADER.into(), AMQPValue::FieldArray(FieldArray::from(lengths)));
    headers.insert(TRACES_HEADER.into(), AMQPValue::FieldArray(FieldArray::from(traces)));
    (payload.freeze(), headers)
}

/// The parts of a delivery that is a bundle; `None` for a message of its own, or for a bundle
/// whose headers do not add up (it is then handed on whole, and its consumer dead-letters it as
/// a message it cannot read).
pub(crate) fn decode(headers: Option<&FieldTable>, payload: &Bytes) -> Option<Vec<Part>> {
    let headers = headers?.inner();
    let Some(AMQPValue::FieldArray(lengths)) = headers.get(PARTS_HEADER) else { return None };
    let traces = match headers.get(TRACES_HEADER) {
        Some(AMQPValue::FieldArray(traces)) => traces.as_slice(),
        _ => &[],
    };
    let mut parts = Vec::with_capacity(lengths.as_slice().len());
    let mut offset = 0usize;
    for (index, length) in lengths.as_slice().iter().enumerate() {
        let length = match length {
            AMQPValue::LongLongInt(length) => usize::try_from(*length).ok()?,
            _ => return None,
        };
        let end = offset.checked_add(length).filter(|end| *end <= payload.len())?;
        let traceparent = match traces.get(index) {
            Some(AMQPValue::LongString(trace)) if !trace.as_bytes().is_empty() => Some(trace.to_string()),
            _ => None,
        };
        parts.push(Part { payload: payload.slice(offset..end), traceparent });
        offset = end;
    }
    (offset == payload.len() && !parts.is_empty()).then_some(parts)
}

/// The acknowledgement a bundle's parts share: the delivery is acked (or requeued) once each
/// part is settled.
#[derive(Debug)]
pub(crate) struct SharedAcker {
    acker: lapin::Acker,
    unsettled: AtomicUsize,
    requeue: AtomicBool,
}

impl SharedAcker {
    pub(crate) fn new(acker: lapin::Acker, parts: usize) -> Arc<Self> {
        Arc::new(Self { acker, unsettled: AtomicUsize::new(parts), requeue: AtomicBool::new(false) })
    }

    /// Settles one part: done with (`requeue` false) or to be delivered again (`true`). The
    /// last part settled acks the delivery, or requeues it if any part asked for that.
    pub(crate) async fn settle(&self, requeue: bool) {
        if requeue {
            self.requeue.store(true, Ordering::Release);
        }
        if self.unsettled.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if !self.requeue.load(Ordering::Acquire) {
            crate::amqp::ack_in_background(self.acker.clone());
            return;
        }
        if let Err(err) = self.acker.reject(lapin::options::BasicRejectOptions { requeue: true }).await {
            // The channel closed: the broker redelivers the bundle to the next consumer.
            tracing::warn!(error = %err, "requeueing a bundle failed; it will be redelivered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_comes_apart_into_its_parts_with_their_traces() {
        let parts = [Bytes::from_static(b"{\"a\":1}"), Bytes::from_static(b""), Bytes::from_static(b"{\"c\":3}")];
        let traces = [Some("00-aa-bb-01"), None, Some("00-cc-dd-01")];
        let (payload, headers) = encode(parts.iter().zip(traces));
        assert_eq!(payload.as_ref(), b"{\"a\":1}{\"c\":3}");
        let decoded = decode(Some(&headers), &payload).unwrap();
        let expected: Vec<Part> = parts
            .iter()
            .zip(traces)
            .map(|(payload, trace)| Part { payload: payload.clone(), traceparent: trace.map(str::to_owned) })
            .collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn a_message_of_its_own_or_a_bundle_that_does_not_add_up_is_not_taken_apart() {
        let payload = Bytes::from_static(b"{\"a\":1}");
        assert_eq!(decode(None, &payload), None);
        assert_eq!(decode(Some(&FieldTable::default()), &payload), None);
        let (_, headers) = encode([(&payload, None), (&payload, None)].into_iter());
        assert_eq!(decode(Some(&headers), &payload), None, "shorter than the lengths say");
        let longer = Bytes::from_static(b"{\"a\":1}{\"a\":1}!");
        assert_eq!(decode(Some(&headers), &longer), None, "longer than the lengths say");
        let mut negative = FieldTable::default();
        negative.insert(PARTS_HEADER.into(), AMQPValue::FieldArray(vec![AMQPValue::LongLongInt(-1)].into()));
        assert_eq!(decode(Some(&negative), &payload), None);
    }
}
