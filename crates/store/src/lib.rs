//! Herald's storage: the relational tables (sea-orm: push config, device registrations, push
//! logs, the user directory), push records (MongoDB, and SQL for the embedded mode) and offline
//! inboxes (Redis, and in-process for the embedded mode).
//!
//! Empty until the issues that need storage land; the crate exists now so the workspace has
//! its final shape and nothing else grows a storage module in the meantime.
