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

use crate::send::PushSend;
use bus::{Bus, Incoming};
use mobile::{Device, DeviceScope, MobileStore};
use model::{AlarmJob, NoticeChannel, NotificationMessage, Target, UserId};
use state::UserDirectory;
use std::time::Duration;
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
    match publish_to(bus, store, DeviceScope::Tenant(&job.tenant_id), &[], &template).await {
        Ok(sends) => {
            tracing::info!(job_id = %job.job_id, tenant = %job.tenant_id, sends, "alarm expanded");
            incoming.ack().await;
        }
        Err(why) => requeue(incoming, "alarm", &why).await,
    }
}

/// A notice from the notifications exchange: to its recipients' devices when its channels
/// include mobile, else nothing.
pub(crate) async fn notice(bus: &Bus, store: &MobileStore, directory: &UserDirectory, incoming: Incoming) {
    let message: NotificationMessage = match serde_json::from_slice(&incoming.payload) {
        Ok(message) => message,
        Err(err) => return bus.dead_letter(incoming, &format!("malformed envelope: {err}")).await,
    };
    if !message.channels.has(NoticeChannel::Mobile) {
        return incoming.ack().await;
    }
    // Only notices for phones get a span: most notices the worker sees are for sockets alone.
    let span = tracing::info_span!("mobile_notice", trace_id = tracing::field::Empty);
    let span = runtime::trace::continued(span, incoming.traceparent.as_deref());
    notice_to_devices(bus, store, directory, message, incoming).instrument(span).await;
}

/// A notice with the mobile channel, to its recipients' devices.
async fn notice_to_devices(
    bus: &Bus,
    store: &MobileStore,
    directory: &UserDirectory,
    message: NotificationMessage,
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
        Target::All => publish_to(bus, store, DeviceScope::Everyone, &message.exclude_ids, &template).await,
        _ => publish_to_recipients(bus, store, directory, &message, &template).await,
    };
    match published {
        Ok(sends) => {
            tracing::info!(message_id = %message.message_id, target = %message.target, sends, "notice sent to devices");
            incoming.ack().await;
        }
        Err(why) => requeue(incoming, "notice", &why).await,
    }
}

/// Publishes `template` to the devices of the users `message` addresses by id (or as admins).
async fn publish_to_recipients(
    bus: &Bus,
    store: &MobileStore,
    directory: &UserDirectory,
    message: &NotificationMessage,
    template: &Template,
) -> Result<u64, String> {
    let users =
        directory.recipients(message).await.map_err(|err| format!("the user directory is unavailable: {err}"))?;
    let mut sends = 0;
    for chunk in users.chunks(USERS_PER_QUERY) {
        sends += publish_to(bus, store, DeviceScope::Users(chunk), &[], template).await?;
    }
    Ok(sends)
}

/// Publishes `template` to every active device in `scope` whose user is not `excluded`;
/// returns how many sends went out, or why it stopped.
async fn publish_to(
    bus: &Bus,
    store: &MobileStore,
    scope: DeviceScope<'_>,
    excluded: &[UserId],
    template: &Template,
) -> Result<u64, String> {
    let (mut after, mut sent) = (None::<String>, 0_u64);
    loop {
        let devices = store
            .active_devices_after(scope, after.as_deref(), PAGE)
            .await
            .map_err(|err| format!("the database is unavailable: {err}"))?;
        for device in devices.iter().filter(|device| !excluded.contains(&device.user_id)) {
            crate::worker::publish(bus, &template.send_to(device))
                .await
                .map_err(|err| format!("the bus refused a send: {err}"))?;
            sent += 1;
        }
        match devices.last() {
            Some(last) if devices.len() as u64 == PAGE => after = Some(last.id.clone()),
            _ => return Ok(sent),
        }
    }
}

async fn requeue(incoming: Incoming, what: &str, why: &str) {
    tracing::warn!(%why, "{what} not expanded to devices; requeued");
    tokio::time::sleep(PAUSE).await;
    incoming.reject(true).await;
}
