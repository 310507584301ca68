//! ingest-api's own settings: the rate limits on sending (`[limits]`). The API also reads the
//! shared sections (`[http]`, `[jwt]`, `[time]`), and what it publishes to and reads from is
//! configured where those live (`bus`, `state`, `records`).

use runtime::ConfigError;
use serde::{Deserialize, Serialize};

/// Rate limits on sending (`[limits]`, `HERALD_LIMITS_*`), enforced by each ingest-api replica.
/// Urgent notices are exempt (spec 8.2). A rate of 0 turns that limit off.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Notices per second one sender (token `sub`) may post, sustained.
    pub sender_per_second: u32,
    /// Notices one sender may post in a burst.
    pub sender_burst: u32,
    /// Notices per second one client IP may post, sustained.
    pub ip_per_second: u32,
    /// Notices one client IP may post in a burst.
    pub ip_burst: u32,
    /// Urgent notices (exempt from the rate limits and the backlog) one ingest-api replica
    /// carries at once; past it they are refused with QUEUE_FULL. Bounds the work and memory a
    /// burst of urgent notices to large audiences can take.
    pub urgent_in_flight: u32,
    /// Receipts per second one user may report over REST (mark-read, confirm), sustained; 0
    /// turns the limit off. On the WebSocket, frames are limited per connection (`ws.*`).
    pub receipts_per_second: u32,
    /// Receipts one user may report over REST in a burst.
    pub receipts_burst: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            sender_per_second: 50,
            sender_burst: 100,
            ip_per_second: 100,
            ip_burst: 200,
            urgent_in_flight: 64,
            receipts_per_second: 20,
            receipts_burst: 200,
        }
    }
}

impl LimitSettings {
    /// Rejects a burst smaller than its rate.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sender_per_second > 0 && self.sender_burst == 0 {
            return Err(ConfigError::invalid(
                "limits.sender_burst",
                "must be positive when limits.sender_per_second is",
            ));
        }
        if self.ip_per_second > 0 && self.ip_burst == 0 {
            return Err(ConfigError::invalid("limits.ip_burst", "must be positive when limits.ip_per_second is"));
        }
        if self.urgent_in_flight == 0 {
            return Err(ConfigError::invalid("limits.urgent_in_flight", "must be positive"));
        }
        if self.receipts_per_second > 0 && self.receipts_burst == 0 {
            return Err(ConfigError::invalid(
                "limits.receipts_burst",
                "must be positive when limits.receipts_per_second is",
            ));
        }
        Ok(())
    }
}
