//! Herald's live state: what the services know about notices in flight and the users they are
//! for. Offline inboxes ([`inbox`]), notice audiences ([`audience`]), idempotency keys
//! ([`idempotency`]), receipts already recorded ([`receipts`]) and presence ([`presence`]) are
//! kept in Redis, in the relational database ([`live`], one process: the all-in-one) or in
//! process (tests), as `redis.url` says ([`StateBackend`]); [`Stores`] opens the set once per
//! process. The user directory ([`directory`]) is in the relational database. Push records
//! are another crate's (`records`), so a process that only delivers links no MongoDB driver.

pub mod audience;
pub mod directory;
pub mod idempotency;
pub mod inbox;
pub mod live;
pub mod presence;
pub mod receipts;
mod redis;
mod settings;
mod stores;

pub use redis::purge_prefix;

pub use audience::{AudienceError, AudienceStore};
pub use database::DbError;
pub use directory::{DirectoryEntry, SeenRecorder, Source, UserDirectory, UserPage, UserProfile, UserQuery};
pub use idempotency::{Claim, IdempotencyError, IdempotencyStore};
pub use inbox::{InboxError, OfflineInbox, Replay, Trimmed};
pub use live::LiveState;
pub use presence::PresenceError;
pub use presence::{OnlineUser, Presence};
pub use receipts::{Receipt, ReceiptError, ReceiptLedger};
pub use settings::{OfflineSettings, PresenceSettings, RedisSettings, StateBackend};
pub use stores::{StoreSettings, Stores};
