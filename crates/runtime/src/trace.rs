//! Trace context across the bus: a span's W3C `traceparent`, written into a message's headers
//! when it is published and read back as the parent of the consumer's span, so that one trace
//! covers a notice from the API request to the socket write, the record write and the provider
//! send.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (AMQP) a message's trace context travels in.
pub const TRACEPARENT: &str = "traceparent";

/// The current span's `traceparent`, if it belongs to a trace (the OpenTelemetry layer is
/// installed and the span is recorded).
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// `span`'s `traceparent`, if it belongs to a trace.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `traceparent` (a message's) the parent of `span`, which must not have started yet (a
/// span just created and not entered). A malformed value is ignored: the span starts a trace.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else { return };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

/// `span` (just created) continuing `traceparent`'s trace, with its `trace_id` field recorded:
/// what a consumer wraps a message's handling in.
pub fn continued(span: tracing::Span, traceparent: Option<&str>) -> tracing::Span {
    continue_trace(&span, traceparent);
    record_trace_id(&span);
    span
}

/// The trace id of `span` (32 hex digits), if it has one: what log lines carry as `trace_id`.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Records `span`'s trace id in its `trace_id` field (declared `tracing::field::Empty`), so
/// that every log line inside it carries the id.
pub fn record_trace_id(span: &tracing::Span) {
    if let Some(id) = trace_id_of(span) {
        span.record("trace_id", id.as_str());
    }
}
