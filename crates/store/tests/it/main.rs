//! Store tests: the offline inbox against the real Redis at `HERALD_TEST_REDIS_URL` (default: the
//! local server) under a unique key prefix, and the same cases against the in-process twin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audience;
mod idempotency;
mod inbox;
