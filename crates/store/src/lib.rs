//! Herald's storage. Today: offline inboxes ([`inbox`]) and idempotency keys ([`idempotency`]),
//! each in Redis or in process. Coming with later issues: the relational tables (sea-orm) and
//! push records (MongoDB, and SQL).

pub mod audience;
pub mod idempotency;
pub mod inbox;
mod redis;

pub use redis::purge_prefix;

pub use audience::{AudienceError, AudienceStore};
pub use idempotency::{Claim, IdempotencyError, IdempotencyStore};
pub use inbox::{InboxError, OfflineInbox, Replay};
