//! Herald's storage. Today: offline inboxes ([`inbox`]), in Redis or in process. Coming with
//! later issues: the relational tables (sea-orm) and push records (MongoDB, and SQL).

pub mod inbox;

pub use inbox::{InboxError, OfflineInbox, Replay};
