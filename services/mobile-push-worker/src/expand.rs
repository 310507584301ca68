//! Turning an alarm or a notice into sends: one [`PushSend`] per active device of its audience,
//! each published on the mobile exchange before the alarm or notice is acked. One redelivered
//! after a crash publishes them again under the same send ids (`<message id>:<device id>`),
//! which the log takes once each.
//!
//! Whose devices a notice with the mobile channel goes to:
//! - `custom` (and `user`): the addressed users', exclusions applied;
//! - `admin`: the directory's admins', exclusions applied (as their offline copies);
//! - `all`: every active device's, exclusions applied. Unlike the WebSocket channel, which
//!   reaches only who is online, a phone is reached whether or not its app is running: that is
//!   what the channel is for.
//!
//! A WebSocket notice with a `fallback` goes to phones later, and only to whom it did not reach:
//! the worker publishes the envelope again on the mobile exchange (key `fallback`) delayed
//! until `mobile_after_secs` after the notice was accepted ([`Bus::publish_delayed`]: a TTL
//! queue on RabbitMQ, so a worker restarted meanwhile loses no timer; journaled in process).
//! When it comes back, the same recipients as above, less those who acknowledged it by then
//! (the receipt ledger, [`ReceiptLedger::acknowledged`]), get it on their active devices.

use crate::metrics::SendMetrics;
use crate::send::PushSend;
use bus::{Bus, Incoming};
use mobile::{Device, DeviceScope, MobileStore};
use model::{AlarmJob, MessageId, NoticeChannel, NotificationMessage, Target, UserId};
use state::{ReceiptLedger, UserDirectory};
use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::Instrument;

/// Devices read at a time.
const PAGE: u64 = 200;
/// Users asked for at a time (one `IN` list).
const USERS_PER_QUERY: usize = 500;
/// How long a delivery waits before it is requeued when the database or the bus is unavailable.
pub(crate) const PAUSE: Duration = Duration::from_secs(1);

/// What each device's send carries, but the device.
struct Template {
    message_id: String,
    message_type: String,
    title: String,
    content: String,
    alarm_id: Option<String>,
    category: Option<String>,
    priority: model::Priority,
}

impl Template {
    fn send_to(&self, device: &Device) -> PushSend {
        PushSend {
            send_id: format!("{}:{}", self.message_id, device.id),
            attempt: 1,
            message_id: self.message_id.clone(),
            user_id: device.user_id,
            push_id: device.push_id.clone(),
            message_type: self.message_type.clone(),
            title: self.title.clone(),
            content: self.content.clone(),
            alarm_id: self.alarm_id.clone(),
            category: self.category.clone(),
            priority: self.priority,
        }
    }
}

/// The title of a notice on a phone: its `data.title` when that is a non-blank string, else its
/// type (`system_notice`, `order_completed`, ...).
pub fn notice_title(message: &NotificationMessage) -> String {
    match message.data.as_ref().and_then(|data| data.get("title")).and_then(|title| title.as_str()) {
        Some(title) if !title.trim().is_empty() => title.to_owned(),
        _ => message.notification_type.as_str().to_owned(),
    }
}

/// An alarm job: to every active device of its tenant.
pub(crate) async fn alarm(bus: &Bus, store: &MobileStore, incoming: Incoming) {
    let job: AlarmJob = match serde_json::from_slice(&incoming.payload) {
        Ok(job) => job,
        Err(err) => return bus.dead_letter(incoming, &format!("not an alarm job: {err}")).await,
    };
    let template = Template {
        message_id: job.job_id.clone(),
        message_type: "alarm".to_owned(),
        title: job.title,
        content: job.content,
        alarm_id: Some(job.alarm_id),
        category: None,
        priority: model::Priority::High,
    };
    match publish_to(bus, store, DeviceScope::Tenant(&job.tenant_id), &[], None, &template).await {
        Ok(Expanded { sent: sends, .. }) => {
            tracing::info!(job_id = %job.job_id, tenant = %job.tenant_id, sends, "alarm expanded");
            incoming.ack().await;
        }
        Err(why) => requeue(incoming, "alarm", &why).await,
    }
}

/// A notice from the notifications exchange: to its recipients' devices when its channels
/// include mobile, else nothing.
pub(crate) async fn notice(
    bus: &Bus,
    store: &MobileStore,
    directory: &UserDirectory,
    ledger: &ReceiptLedger,
    metrics: &SendMetrics,
    incoming: Incoming,
) {
    let Some((message, incoming)) = envelope(bus, incoming).await else { return };
    if !message.channels.has(NoticeChannel::Mobile) {
        return match message.fallback {
            Some(fallback) => {
                let acks = Acks { ledger, metrics, message_id: &message.message_id.clone() };
                schedule_or_fall_back(bus, store, directory, acks, message, fallback, incoming).await
            }
            None => incoming.ack().await,
        };
    }
    // Only notices for phones get a span: most notices the worker sees are for sockets alone.
    let span = tracing::info_span!("mobile_notice", trace_id = tracing::field::Empty);
    let span = runtime::trace::continued(span, incoming.traceparent.as_deref());
    to_devices(bus, store, directory, message, None, incoming).instrument(span).await;
}

/// The envelope `incoming` carries, or `None` once a delivery that is none is dead-lettered.
async fn envelope(bus: &Bus, incoming: Incoming) -> Option<(NotificationMessage, Incoming)> {
    match serde_json::from_slice(&incoming.payload) {
        Ok(message) => Some((message, incoming)),
        Err(err) => {
            bus.dead_letter(incoming, &format!("malformed envelope: {err}")).await;
            None
        }
    }
}

/// A notice with a fallback, seen on the notifications exchange or back from a timer: published
/// again to come back after the next hop of its wait, or, once the wait is over, to the devices
/// of its recipients who have not acknowledged it.
async fn schedule_or_fall_back(
    bus: &Bus,
    store: &MobileStore,
    directory: &UserDirectory,
    acks: Acks<'_>,
    message: NotificationMessage,
    fallback: model::Fallback,
    incoming: Incoming,
) {
    let Some(hop) = next_hop(message.message_id.unix_nanos(), fallback.mobile_after_secs, SystemTime::now()) else {
        return to_devices(bus, store, directory, message, Some(acks), incoming).await;
    };
    match bus.publish_delayed(bus::Exchange::Mobile, crate::worker::FALLBACK_KEY, incoming.payload.clone(), hop).await {
        Ok(()) => {
            tracing::debug!(message_id = %message.message_id, ?hop, "mobile fallback waits");
            incoming.ack().await;
        }
        Err(err) => requeue(incoming, "fallback", &format!("the bus refused the fallback's timer: {err}")).await,
    }
}

/// The longest hop of a fallback's wait: 2^16 s, past the longest wait (a day).
const MAX_HOP_SECS: u64 = 1 << 16;

/// The next hop of the wait until `after_secs` past the notice's acceptance (its id's instant),
/// or `None` once it is over. The wait left, rounded up to whole seconds, is taken in hops of
/// the largest power of two seconds that fits: a timer never fires early and at most a second
/// late, and however many fallbacks and waits there are, the broker holds at most 17 delay
/// queues (1 s to 2^16 s) for them. An id without an instant is due at once.
fn next_hop(accepted_nanos: u64, after_secs: u32, now: SystemTime) -> Option<Duration> {
    if accepted_nanos == 0 {
        return None;
    }
    let due = UNIX_EPOCH + Duration::from_nanos(accepted_nanos) + Duration::from_secs(u64::from(after_secs));
    let left = due.duration_since(now).ok().filter(|left| !left.is_zero())?;
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    let hop = 1_u64 << (u64::BITS - 1 - secs.leading_zeros());
    Some(Duration::from_secs(hop.min(MAX_HOP_SECS)))
}

/// A notice back from its fallback's timer (the mobile exchange, key `fallback`).
pub(crate) async fn fallback(
    bus: &Bus,
    store: &MobileStore,
    directory: &UserDirectory,
    ledger: &ReceiptLedger,
    metrics: &SendMetrics,
    incoming: Incoming,
) {
    let Some((message, incoming)) = envelope(bus, incoming).await else { return };
    let Some(fallback) = message.fallback else {
        return bus.dead_letter(incoming, "a notice without a fallback on the fallback key").await;
    };
    let span = tracing::info_span!("mobile_fallback", trace_id = tracing::field::Empty);
    let span = runtime::trace::continued(span, incoming.traceparent.as_deref());
    let message_id = message.message_id.clone();
    let acks = Acks { ledger, metrics, message_id: &message_id };
    schedule_or_fall_back(bus, store, directory, acks, message, fallback, incoming).instrument(span).await;
}

/// Whose acknowledgement spares their devices: those who acknowledged `message_id` (and where
/// what a fallback pushed and spared is counted).
#[derive(Clone, Copy)]
struct Acks<'a> {
    ledger: &'a ReceiptLedger,
    metrics: &'a SendMetrics,
    message_id: &'a MessageId,
}

impl Acks<'_> {
    /// Which of `users` acknowledged the notice.
    async fn of(&self, users: &[UserId]) -> Result<HashSet<UserId>, String> {
        self.ledger
            .acknowledged(self.message_id, users)
            .await
            .map_err(|err| format!("the receipt ledger is unavailable: {err}"))
    }
}

/// `message` to its recipients' devices (those of who did not acknowledge it, with `acks`);
/// acks `incoming` once every send is published.
async fn to_devices(
    bus: &Bus,
    store: &MobileStore,
    directory: &UserDirectory,
    message: NotificationMessage,
    acks: Option<Acks<'_>>,
    incoming: Incoming,
) {
    let template = Template {
        message_id: message.message_id.to_string(),
        message_type: message.notification_type.as_str().to_owned(),
        title: notice_title(&message),
        content: message.content.clone(),
        alarm_id: None,
        category: Some(message.notification_type.as_str().to_owned()),
        priority: message.priority,
    };
    let published = match message.target {
        Target::All => publish_to(bus, store, DeviceScope::Everyone, &message.exclude_ids, acks, &template).await,
        _ => publish_to_recipients(bus, store, directory, &message, acks, &template).await,
    };
    let what = if acks.is_some() { "fallback" } else { "notice" };
    match published {
        Ok(Expanded { sent: sends, spared }) => {
            tracing::info!(message_id = %message.message_id, target = %message.target, sends, spared, "{what} sent to devices");
            if let Some(acks) = acks {
                acks.metrics.fallback_due(sends, spared);
            }
            incoming.ack().await;
        }
        Err(why) => requeue(incoming, what, &why).await,
    }
}

/// Publishes `template` to the devices of the users `message` addresses by id (or as admins).
async fn publish_to_recipients(
    bus: &Bus,
    store: &MobileStore,
    directory: &UserDirectory,
    message: &NotificationMessage,
    acks: Option<Acks<'_>>,
    template: &Template,
) -> Result<Expanded, String> {
    let users =
        directory.recipients(message).await.map_err(|err| format!("the user directory is unavailable: {err}"))?;
    let mut done = Expanded::default();
    for chunk in users.chunks(USERS_PER_QUERY) {
        done += publish_to(bus, store, DeviceScope::Users(chunk), &[], acks, template).await?;
    }
    Ok(done)
}

/// What an expansion came to: sends published, and devices spared because their user
/// acknowledged the notice (fallbacks only).
#[derive(Clone, Copy, Debug, Default)]
struct Expanded {
    sent: u64,
    spared: u64,
}

impl std::ops::AddAssign for Expanded {
    fn add_assign(&mut self, other: Self) {
        self.sent += other.sent;
        self.spared += other.spared;
    }
}

/// Publishes `template` to every active device in `scope` whose user is not `excluded` (nor,
/// with `acks`, acknowledged the notice: asked a page of devices at a time); returns what went
/// out, or why it stopped.
async fn publish_to(
    bus: &Bus,
    store: &MobileStore,
    scope: DeviceScope<'_>,
    excluded: &[UserId],
    acks: Option<Acks<'_>>,
    template: &Template,
) -> Result<Expanded, String> {
    let (mut after, mut done) = (None::<String>, Expanded::default());
    loop {
        let devices = store
            .active_devices_after(scope, after.as_deref(), PAGE)
            .await
            .map_err(|err| format!("the database is unavailable: {err}"))?;
        let acknowledged = match acks {
            Some(acks) => {
                let mut users: Vec<UserId> = devices.iter().map(|device| device.user_id).collect();
                users.sort_unstable();
                users.dedup();
                acks.of(&users).await?
            }
            None => HashSet::new(),
        };
        let due = |device: &&Device| !excluded.contains(&device.user_id) && !acknowledged.contains(&device.user_id);
        let addressed = devices.iter().filter(|device| !excluded.contains(&device.user_id));
        done.spared += addressed.filter(|device| acknowledged.contains(&device.user_id)).count() as u64;
        for device in devices.iter().filter(due) {
            crate::worker::publish(bus, &template.send_to(device))
                .await
                .map_err(|err| format!("the bus refused a send: {err}"))?;
            done.sent += 1;
        }
        match devices.last() {
            Some(last) if devices.len() as u64 == PAGE => after = Some(last.id.clone()),
            _ => return Ok(done),
        }
    }
}

async fn requeue(incoming: Incoming, what: &str, why: &str) {
    tracing::warn!(%why, "{what} not expanded to devices; requeued");
    tokio::time::sleep(PAUSE).await;
    incoming.reject(true).await;
}

#[cfg(test)]
mod tests {
    use super::next_hop;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_fallback_waits_in_hops_of_whole_powers_of_two_seconds_until_it_is_due() {
        let accepted = Duration::from_secs(1_800_000_000);
        let nanos = accepted.as_nanos() as u64;
        let at = |secs_later: f64| match secs_later < 0.0 {
            true => UNIX_EPOCH + accepted - Duration::from_secs_f64(-secs_later),
            false => UNIX_EPOCH + accepted + Duration::from_secs_f64(secs_later),
        };
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(next_hop(nanos, 2, at(0.0)), secs(2));
        assert_eq!(next_hop(nanos, 2, at(0.001)), secs(2), "1.999 s left rounds up, never early");
        assert_eq!(next_hop(nanos, 2, at(1.5)), secs(1));
        assert_eq!(next_hop(nanos, 2, at(2.0)), None);
        assert_eq!(next_hop(nanos, 2, at(5.0)), None, "seen late: due at once");
        assert_eq!(next_hop(nanos, 5, at(0.0)), secs(4));
        assert_eq!(next_hop(nanos, 5, at(4.0)), secs(1));
        // A day: 65536 s, then 16384, 4096, 256, 128 (86400 = 65536 + 16384 + 4096 + 256 + 128).
        let mut now = 0.0;
        let mut hops = Vec::new();
        while let Some(hop) = next_hop(nanos, 86_400, at(now)) {
            hops.push(hop.as_secs());
            now += hop.as_secs_f64();
        }
        assert_eq!(hops, [65_536, 16_384, 4_096, 256, 128]);
        // A clock behind the id's: the wait from the id's instant, in hops no longer than 2^16 s.
        assert_eq!(next_hop(nanos, 2, at(-3.0)), secs(4));
        assert_eq!(next_hop(nanos, 86_400, at(-100_000.0)), secs(65_536));
        // An id without an instant: at once.
        assert_eq!(next_hop(0, 7, at(0.0)), None);
    }
}
