//! The one table of error codes: the spec's section 9 codes plus Herald's own, each with its
//! numeric envelope `code` and the HTTP status it answers with.

use serde::{Serialize, Serializer};
use std::fmt;

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = ($name:literal, $numeric:literal, $status:literal), )*) => {
        /// An error code: its name goes in `data.error_code`, its number in the envelope's `code`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $(#[$doc])* $variant, )* }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The code's name, e.g. `CONTENT_TOO_LONG`.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $name, )* }
            }

            /// The numeric code of the response envelope.
            pub fn numeric(self) -> i32 {
                match self { $( ErrorCode::$variant => $numeric, )* }
            }

            /// The HTTP status the code is answered with.
            pub fn http_status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )* }
            }
        }
    };
}

error_codes! {
    /// The request is malformed: not JSON, an unknown field, a wrong type.
    InvalidRequest = ("INVALID_REQUEST", 10001, 400),
    /// No valid token: missing, expired, not yet valid, forged, of an unaccepted algorithm or
    /// naming an unknown role.
    Unauthorized = ("UNAUTHORIZED", 10002, 401),
    /// The token is valid but its role may not do this.
    Forbidden = ("FORBIDDEN", 10003, 403),
    /// No such endpoint or resource.
    NotFound = ("NOT_FOUND", 10004, 404),
    /// The endpoint exists but not with this method.
    MethodNotAllowed = ("METHOD_NOT_ALLOWED", 10005, 405),
    /// The body is over the size limit.
    PayloadTooLarge = ("PAYLOAD_TOO_LARGE", 10006, 413),
    /// The body is not `application/json`.
    UnsupportedMediaType = ("UNSUPPORTED_MEDIA_TYPE", 10007, 415),
    /// Something failed on Herald's side; the cause is in the server log.
    InternalError = ("INTERNAL_ERROR", 10008, 500),
    /// A request with the same `Idempotency-Key` is still being carried out.
    RequestInProgress = ("REQUEST_IN_PROGRESS", 10009, 409),
    /// The `Idempotency-Key` was already used for a different request.
    IdempotencyKeyReused = ("IDEMPOTENCY_KEY_REUSED", 10010, 422),
    /// A store the request needs (database, Redis) is unavailable; retry shortly.
    ServiceUnavailable = ("SERVICE_UNAVAILABLE", 10011, 503),
    /// The notification could not be handed to the bus (spec 9).
    PushFailed = ("PUSH_FAILED", 20001, 503),
    /// `target` is not one of the accepted targets (spec 9).
    InvalidTarget = ("INVALID_TARGET", 20002, 400),
    /// A custom target came without `user_ids` (spec 9).
    MissingUserIds = ("MISSING_USER_IDS", 20003, 400),
    /// `content` is over 500 characters (spec 9).
    ContentTooLong = ("CONTENT_TOO_LONG", 20004, 400),
    /// Too many requests; retry after the `Retry-After` header (spec 9).
    RateLimitExceeded = ("RATE_LIMIT_EXCEEDED", 20005, 429),
    /// The normal-priority backlog is full; retry later (spec 9).
    QueueFull = ("QUEUE_FULL", 20006, 503),
    /// `content` is missing or blank.
    MissingContent = ("MISSING_CONTENT", 20007, 400),
    /// A user id list holds a non-positive id or a duplicate, or is given where not allowed.
    InvalidUserIds = ("INVALID_USER_IDS", 20008, 400),
    /// A user id list is longer than 1000.
    TooManyUserIds = ("TOO_MANY_USER_IDS", 20009, 400),
    /// `data` is over 1 KiB once serialised.
    DataTooLarge = ("DATA_TOO_LARGE", 20010, 400),
    /// `data` is not a JSON object or uses a reserved key.
    InvalidData = ("INVALID_DATA", 20011, 400),
    /// `type` is not a lower_snake_case name.
    InvalidType = ("INVALID_TYPE", 20012, 400),
    /// `priority` is not 0-3 or a priority name.
    InvalidPriority = ("INVALID_PRIORITY", 20013, 400),
    /// A client frame on the WebSocket is malformed or unknown.
    InvalidFrame = ("INVALID_FRAME", 20014, 400),
    /// A text (in the body, a query parameter or a token claim) holds a character Herald's
    /// stores cannot keep: U+0000.
    InvalidText = ("INVALID_TEXT", 20015, 400),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_and_numbers_are_unique() {
        let names: HashSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let numbers: HashSet<_> = ErrorCode::ALL.iter().map(|c| c.numeric()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert_eq!(numbers.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn the_spec_codes_are_present_with_the_spec_push_failure_number() {
        for name in [
            "PUSH_FAILED",
            "INVALID_TARGET",
            "MISSING_USER_IDS",
            "CONTENT_TOO_LONG",
            "RATE_LIMIT_EXCEEDED",
            "QUEUE_FULL",
        ] {
            assert!(ErrorCode::ALL.iter().any(|c| c.as_str() == name), "{name}");
        }
        assert_eq!(ErrorCode::PushFailed.numeric(), 20001);
    }

    #[test]
    fn no_client_error_maps_to_a_server_status() {
        for code in ErrorCode::ALL {
            let server_side = matches!(
                code,
                ErrorCode::InternalError | ErrorCode::ServiceUnavailable | ErrorCode::PushFailed | ErrorCode::QueueFull
            );
            assert_eq!(code.http_status() >= 500, server_side, "{code}");
        }
    }
}
