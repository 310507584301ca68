//! Request rules (spec 1.1, 1.2, 8.1) and the one validation error type.
//!
//! A request body is parsed into a [`SystemNoticeRequest`] and turned into a [`NoticeDraft`]
//! with `TryFrom`: every rule lives in that conversion, and each violation is one
//! [`ValidationError`] with a spec error code and a message that names the field.

pub mod mobile;
mod notice;
pub mod providers;
mod text;

pub use notice::{NoticeDraft, SystemNoticeRequest, parse_notice};
pub use text::{check_storable, check_storable_json};

use model::ErrorCode;

/// The most characters `content` may hold (spec 8.1). Characters are Unicode scalar values, as
/// the original counted runes: a CJK character or a simple emoji is one.
pub const MAX_CONTENT_CHARS: usize = 500;
/// The most ids `user_ids` or `exclude_user_ids` may hold (spec 8.1).
pub const MAX_USER_IDS: usize = 1000;
/// The most bytes `data` may take once serialised as JSON (spec 8.1).
pub const MAX_DATA_BYTES: usize = 1024;
/// Keys of `data` that Herald sets itself in the client frame (spec 3.2).
pub const RESERVED_DATA_KEYS: [&str; 2] = ["priority", "need_confirm"];

/// A request that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    /// The spec error code.
    pub code: ErrorCode,
    /// The request field at fault, if one is.
    pub field: Option<String>,
    /// A message for a person, naming the field.
    pub message: String,
}

impl ValidationError {
    /// An error about `field`.
    pub fn new(code: ErrorCode, field: &str, message: impl Into<String>) -> Self {
        Self { code, field: Some(field.to_owned()), message: message.into() }
    }

    /// An error about the request as a whole.
    pub fn request(message: impl Into<String>) -> Self {
        Self { code: ErrorCode::InvalidRequest, field: None, message: message.into() }
    }
}
