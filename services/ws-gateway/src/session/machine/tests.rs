//! The session machine under tokio's paused clock: every deadline is reached by advancing the
//! clock, never by sleeping.

use super::*;
use bytestring::ByteString;
use model::{PushChannel, Target};

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

/// The defaults of `[ws]`: a ping every 20 s, closed after 60 s of silence, 20 frames a second
/// in bursts of 300.
fn timing() -> Timing {
    Timing::from_settings(&crate::settings::WsSettings::default())
}

/// A session opening now whose token is valid for `token_valid_for`.
fn session(timing: Timing, token_valid_for: Duration) -> SessionMachine {
    let now = Instant::now();
    SessionMachine::new(now, timing, now + token_valid_for, TimeFormat::default())
}

/// Moves the paused clock forward to `at`.
async fn advance_to(at: Instant) {
    tokio::time::advance(at.saturating_duration_since(Instant::now())).await;
}

/// Advances to the machine's next deadline and hands it the tick.
async fn tick_at_deadline(session: &mut SessionMachine) -> Option<Action> {
    advance_to(session.next_deadline()).await;
    session.handle(Instant::now(), Input::Tick)
}

fn client(session: &mut SessionMachine, event: ClientEvent) -> Option<Action> {
    session.handle(Instant::now(), Input::Client(event))
}

fn text(session: &mut SessionMachine, frame: &str) -> Option<Action> {
    client(session, ClientEvent::Text(ByteString::from(frame)))
}

fn close_code(action: Option<Action>) -> u16 {
    match action {
        Some(Action::Close(code)) => code.code,
        other => panic!("expected a close, got {other:?}"),
    }
}

fn is_ping(action: &Option<Action>) -> bool {
    matches!(action, Some(Action::Ping))
}

fn id(raw: &str) -> MessageId {
    MessageId::parse(raw).unwrap()
}

/// An inbox entry as the offline inbox stores it (spec 5.1).
fn inbox_entry(message_id: &str) -> String {
    serde_json::json!({
        "type": "system_notice",
        "content": "maintenance tonight",
        "data": {"priority": 1, "need_confirm": false, "original_push_time": "2025-01-27 10:30:00"},
        "message_id": message_id,
        "created_at": 1_706_335_800,
        "expire_at": 1_706_940_600,
    })
    .to_string()
}

const A: &str = "1706335800123456789-abc12345";
const B: &str = "1706335800123456790-def67890";

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_pinged_every_interval_then_closed_with_4000_past_the_timeout() {
    let start = Instant::now();
    let mut session = session(timing(), HOUR);
    assert_eq!(session.next_deadline(), start + 20 * SECOND);
    assert!(session.handle(Instant::now(), Input::Tick).is_none(), "an early tick does nothing");
    // At 60 s the silence equals the timeout, which is not past it yet.
    for at in [20, 40, 60] {
        assert!(is_ping(&tick_at_deadline(&mut session).await), "a ping at {at} s");
        assert_eq!(Instant::now(), start + at * SECOND);
    }
    let close = tick_at_deadline(&mut session).await;
    assert_eq!(Instant::now(), start + 80 * SECOND);
    assert_eq!(close_code(close), 4000);
    assert!(session.is_closed());
    assert!(session.handle(Instant::now(), Input::Tick).is_none(), "a closed session does nothing more");
}

#[tokio::test(start_paused = true)]
async fn any_client_frame_resets_the_heartbeat_timeout() {
    let frames = [
        ClientEvent::Pong,
        ClientEvent::Ping(Bytes::from_static(b"hi")),
        ClientEvent::Text(ByteString::from_static(r#"{"type":"ping"}"#)),
        ClientEvent::Text(ByteString::from_static("not even json")),
    ];
    for frame in frames {
        let start = Instant::now();
        let mut session = session(timing(), HOUR);
        assert!(is_ping(&tick_at_deadline(&mut session).await));
        assert!(is_ping(&tick_at_deadline(&mut session).await));
        advance_to(start + 50 * SECOND).await;
        let described = format!("{frame:?}");
        client(&mut session, frame);
        // Silent since 50 s: 10, 30 and 50 s of silence at the next pings, 70 s at 120 s.
        for at in [60, 80, 100] {
            assert!(is_ping(&tick_at_deadline(&mut session).await), "a ping at {at} s after {described}");
        }
        assert_eq!(close_code(tick_at_deadline(&mut session).await), 4000);
        assert_eq!(Instant::now(), start + 120 * SECOND, "{described}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_session_closes_with_1008_when_its_token_expires() {
    let start = Instant::now();
    let mut session = session(timing(), 30 * SECOND);
    assert!(is_ping(&tick_at_deadline(&mut session).await));
    assert_eq!(session.next_deadline(), start + 30 * SECOND);
    advance_to(start + 30 * SECOND - Duration::from_millis(1)).await;
    assert!(session.handle(Instant::now(), Input::Tick).is_none(), "still valid a moment before");
    let close = tick_at_deadline(&mut session).await;
    assert_eq!(Instant::now(), start + 30 * SECOND);
    assert_eq!(close_code(close), CloseCode::POLICY_VIOLATION.code);
    assert_eq!(CloseCode::POLICY_VIOLATION, CloseCode { code: 1008, reason: "token expired" });

    let mut expired = session_with_token(0);
    assert_eq!(close_code(tick_at_deadline(&mut expired).await), 1008, "a token that expired already");
}

fn session_with_token(valid_secs: u64) -> SessionMachine {
    session(timing(), Duration::from_secs(valid_secs))
}

#[test]
fn a_token_is_valid_until_its_exp_and_not_before_it() {
    assert_eq!(until_expiry(1_000, 970), 30 * SECOND);
    assert_eq!(until_expiry(1_000, 1_000), Duration::ZERO);
    assert_eq!(until_expiry(1_000, 2_000), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_replayed_entry_names_its_message_and_an_entry_that_is_not_json_names_none() {
    let mut session = session(timing(), HOUR);
    assert_eq!(session.replayed(&inbox_entry(A)), Some(id(A)));
    assert_eq!(session.replayed("an entry that is not JSON is replayed but remembered for nothing"), None);
}

#[tokio::test(start_paused = true)]
async fn receipt_frames_name_their_event_message_and_how_it_arrived() {
    let mut session = session(timing(), HOUR);
    assert!(session.replayed(&inbox_entry(A)).is_some());
    for (frame, event_type, message_id, push_channel) in [
        (format!(r#"{{"type":"ack","message_id":"{A}"}}"#), DeliveryEventType::Delivered, A, PushChannel::Offline),
        (format!(r#"{{"type":"read","message_id":"{B}"}}"#), DeliveryEventType::Read, B, PushChannel::Websocket),
        (format!(r#"{{"type":"confirm","message_id":"{A}"}}"#), DeliveryEventType::Confirmed, A, PushChannel::Offline),
    ] {
        match text(&mut session, &frame) {
            Some(Action::RecordReceipt(report)) => {
                assert_eq!(report, ReceiptReport { event_type, message_id: id(message_id), push_channel }, "{frame}")
            }
            other => panic!("{frame}: {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_ping_frame_gets_a_pong_and_a_bad_frame_an_invalid_frame_error_without_closing() {
    let mut session = session(timing(), HOUR);
    let Some(Action::Reply(pong)) = text(&mut session, r#"{"type":"ping"}"#) else { panic!("no pong") };
    assert_eq!(pong.message_type, "pong");
    for bad in [
        "not json",
        r#"{"type":"dance"}"#,
        "[]",
        r#"{"message_id":"1-abcdefgh"}"#,
        r#"{"type":"ack","message_id":"nope"}"#,
        r#"{"type":"ack"}"#,
    ] {
        let Some(Action::Reply(reply)) = text(&mut session, bad) else { panic!("{bad} was accepted") };
        assert_eq!(reply.message_type, "error", "{bad}");
        assert_eq!(reply.data["code"], "INVALID_FRAME", "{bad}");
    }
    assert!(!session.is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_refused_receipt_gets_an_error_frame_with_its_code_and_reason() {
    let mut session = session(timing(), HOUR);
    for code in [ErrorCode::Forbidden, ErrorCode::NotFound, ErrorCode::PushFailed] {
        let refusal = ReceiptRefusal { code, reason: "why".to_owned() };
        let Some(Action::Reply(frame)) = session.handle(Instant::now(), Input::ReceiptRefused(refusal)) else {
            panic!("no error frame for {code:?}")
        };
        assert_eq!((frame.message_type.as_str(), frame.content.as_str()), ("error", "why"));
        assert_eq!(frame.data["code"], code.as_str());
    }
    assert!(!session.is_closed());
}

#[test]
fn receipts_are_checked_against_the_notice_audience() {
    let notice = id(A);
    let for_user_2 =
        || Ok::<_, String>(Some(Audience { target: Target::Custom, target_ids: vec![2], exclude_ids: vec![] }));
    let verdict = |lookup, user| audience_verdict(lookup, DeliveryEventType::Read, &notice, user, false);
    assert_eq!(verdict(for_user_2(), 2), Ok(()));
    let forbidden = verdict(for_user_2(), 3).unwrap_err();
    assert_eq!(forbidden.code, ErrorCode::Forbidden);
    assert!(forbidden.reason.contains(A), "{}", forbidden.reason);
    assert_eq!(verdict(Ok(None), 2).unwrap_err().code, ErrorCode::NotFound);
    let unavailable = verdict(Err("the store is down".to_owned()), 2).unwrap_err();
    assert_eq!(unavailable, ReceiptRefusal::not_recorded(DeliveryEventType::Read));
    assert_eq!(unavailable.code, ErrorCode::PushFailed);
}

#[tokio::test(start_paused = true)]
async fn close_requests_and_closing_frames_close_with_their_codes() {
    let requested = [
        (Input::CloseRequested(CloseCode::SLOW_CLIENT), 4001),
        (Input::CloseRequested(CloseCode::GOING_AWAY), 1001),
        (Input::Client(ClientEvent::Close), 1000),
        (Input::Client(ClientEvent::Binary), 1003),
        (Input::Client(ClientEvent::Broken(CloseCode::INVALID_PAYLOAD)), 1007),
        (Input::Client(ClientEvent::Broken(CloseCode::MESSAGE_TOO_BIG)), 1009),
        (Input::Client(ClientEvent::Broken(CloseCode::PROTOCOL_ERROR)), 4002),
    ];
    for (input, code) in requested {
        let mut session = session(timing(), HOUR);
        let described = format!("{input:?}");
        assert_eq!(close_code(session.handle(Instant::now(), input)), code, "{described}");
        assert!(session.is_closed());
        assert!(session.handle(Instant::now(), Input::Tick).is_none(), "nothing after a close");
    }
    let mut gone = session(timing(), HOUR);
    assert!(matches!(client(&mut gone, ClientEvent::Ended), Some(Action::Disconnect)));
    assert!(gone.is_closed());
}

#[tokio::test(start_paused = true)]
async fn a_websocket_ping_is_answered_with_its_payload() {
    let mut session = session(timing(), HOUR);
    let Some(Action::Pong(payload)) = client(&mut session, ClientEvent::Ping(Bytes::from_static(b"are you there")))
    else {
        panic!("no pong")
    };
    assert_eq!(&payload[..], b"are you there");
    assert!(client(&mut session, ClientEvent::Pong).is_none(), "a pong needs no answer");
}

#[tokio::test(start_paused = true)]
async fn past_its_burst_a_connection_is_read_no_faster_than_its_allowance() {
    // Two frames a second (one every 500 ms), bursts of three.
    let start = Instant::now();
    let mut session = session(Timing { frames_per_second: 2, frame_burst: 3, ..timing() }, HOUR);
    for _ in 0..3 {
        client(&mut session, ClientEvent::Pong);
        assert_eq!(session.reads_paused_until(), None);
    }
    // The frame that finds the allowance spent was read: it is served, then reading pauses.
    let Some(Action::Reply(pong)) = text(&mut session, r#"{"type":"ping"}"#) else { panic!("not served") };
    assert_eq!(pong.message_type, "pong");
    let room = start + Duration::from_millis(500);
    assert_eq!(session.reads_paused_until(), Some(room));
    assert_eq!(session.next_deadline(), room, "the pause ends before the heartbeat");

    advance_to(room - Duration::from_millis(1)).await;
    assert!(session.handle(Instant::now(), Input::Tick).is_none());
    assert_eq!(session.reads_paused_until(), Some(room), "still paused a moment before");
    assert!(tick_at_deadline(&mut session).await.is_none());
    assert_eq!(Instant::now(), room);
    assert_eq!(session.reads_paused_until(), None, "the read frame took the cell that came free");

    client(&mut session, ClientEvent::Pong);
    assert_eq!(session.reads_paused_until(), Some(start + SECOND), "one frame per 500 ms from now on");
    assert_eq!(session.next_deadline(), start + SECOND);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_continue_while_reads_are_paused() {
    let start = Instant::now();
    let mut session = session(Timing { frames_per_second: 1, frame_burst: 1, ..timing() }, HOUR);
    client(&mut session, ClientEvent::Pong);
    client(&mut session, ClientEvent::Pong);
    assert_eq!(session.reads_paused_until(), Some(start + SECOND));
    assert!(tick_at_deadline(&mut session).await.is_none());
    assert_eq!(session.next_deadline(), start + 20 * SECOND);
    assert!(is_ping(&tick_at_deadline(&mut session).await));
}

#[tokio::test(start_paused = true)]
async fn the_end_of_a_pause_is_a_tick_of_its_own_so_a_waiting_frame_is_read_before_the_heartbeat() {
    let start = Instant::now();
    let fast =
        Timing { heartbeat_interval: SECOND, heartbeat_timeout: 2 * SECOND, frames_per_second: 1, frame_burst: 1 };
    let mut session = session(fast, HOUR);
    client(&mut session, ClientEvent::Pong);
    client(&mut session, ClientEvent::Pong);
    assert_eq!(session.reads_paused_until(), Some(start + SECOND));
    assert_eq!(session.next_deadline(), start + SECOND, "the pause and the heartbeat end together");
    assert!(tick_at_deadline(&mut session).await.is_none(), "reads resume first");
    assert_eq!(session.reads_paused_until(), None);
    assert_eq!(session.next_deadline(), start + SECOND, "the heartbeat is still due");
    assert!(is_ping(&session.handle(Instant::now(), Input::Tick)));
}
