//! ws-gateway's own settings (`[ws]`). The gateway also reads the shared sections (`[http]`,
//! `[jwt]`, `[time]`); what it consumes and reads is configured where those live (`bus`,
//! `state`).

use runtime::ConfigError;
use serde::{Deserialize, Serialize};

/// WebSocket behaviour (`[ws]`, `HERALD_WS_*`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsSettings {
    /// Frames a connection may have queued before it counts as a slow client and is closed
    /// with 4001.
    pub send_buffer: usize,
    /// Seconds between server pings.
    pub heartbeat_interval_secs: u64,
    /// Seconds without any frame from the client before it is closed with 4000.
    pub heartbeat_timeout_secs: u64,
    /// The largest frame a client may send, in bytes; larger ones close the connection with 1009.
    pub max_frame_bytes: usize,
    /// Milliseconds one write may wait on a client that does not read before it is closed.
    pub write_timeout_ms: u64,
    /// Connections one user may hold on one replica; one more is closed with 4003.
    pub max_connections_per_user: usize,
    /// Frames per second one connection may send, sustained; past its burst the gateway reads
    /// its frames no faster (the client's socket fills up; nothing is buffered here).
    pub client_frames_per_second: u32,
    /// Frames one connection may send in a burst (an ack for each of a full inbox's replay fits).
    pub client_frame_burst: u32,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            send_buffer: 256,
            heartbeat_interval_secs: 20,
            heartbeat_timeout_secs: 60,
            max_frame_bytes: 16 * 1024,
            write_timeout_ms: 5000,
            max_connections_per_user: 16,
            client_frames_per_second: 20,
            client_frame_burst: 300,
        }
    }
}

impl WsSettings {
    /// Rejects unusable values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.send_buffer == 0 {
            return Err(ConfigError::invalid("ws.send_buffer", "must be positive"));
        }
        if self.heartbeat_interval_secs == 0 || self.heartbeat_timeout_secs <= self.heartbeat_interval_secs {
            return Err(ConfigError::invalid(
                "ws.heartbeat_timeout_secs",
                "must be greater than ws.heartbeat_interval_secs, which must be positive",
            ));
        }
        if self.max_connections_per_user == 0 {
            return Err(ConfigError::invalid("ws.max_connections_per_user", "must be positive"));
        }
        if self.client_frames_per_second == 0 || self.client_frame_burst == 0 {
            return Err(ConfigError::invalid(
                "ws.client_frames_per_second",
                "must be positive (ws.client_frame_burst too)",
            ));
        }
        if self.max_frame_bytes < 256 || self.write_timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "ws.max_frame_bytes",
                "must be at least 256 (and ws.write_timeout_ms positive)",
            ));
        }
        Ok(())
    }
}
