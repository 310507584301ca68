//! Bus tests against the real RabbitMQ at `HERALD_TEST_AMQP_URL` (default: the local broker),
//! each under its own exchange prefix, deleted afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod amqp;
