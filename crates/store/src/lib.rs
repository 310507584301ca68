//! Herald's storage. In Redis or in process: offline inboxes ([`inbox`]), notice audiences
//! ([`audience`]), idempotency keys ([`idempotency`]) and presence ([`presence`]). In the
//! relational database (sea-orm, [`sql`]): the user directory ([`directory`]). Coming with later
//! issues: push records (MongoDB, and SQL).

pub mod audience;
pub mod directory;
pub mod idempotency;
pub mod inbox;
pub mod live;
pub mod presence;
pub mod receipts;
pub mod records;
mod redis;
pub mod sql;
mod stores;

pub use redis::purge_prefix;

pub use audience::{AudienceError, AudienceStore};
pub use directory::{DirectoryEntry, SeenRecorder, Source, UserDirectory, UserPage, UserProfile, UserQuery};
pub use idempotency::{Claim, IdempotencyError, IdempotencyStore};
pub use inbox::{InboxError, OfflineInbox, Replay};
pub use live::LiveState;
pub use presence::PresenceError;
pub use presence::{OnlineUser, Presence};
pub use receipts::{Receipt, ReceiptError, ReceiptLedger};
pub use records::{RecordStore, RecordsError};
pub use sql::DbError;
pub use stores::{StoreSettings, Stores};
