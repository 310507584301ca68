//! The spec 6.2 failure envelope as an actix error, and the handlers that produce it for
//! requests actix refuses on its own (bad JSON, wrong content type, oversize body, no route).

use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use model::{ApiResponse, ErrorCode, FailureData};
use std::fmt;

/// A refused request: an error code and the spec 6.2 data that goes with it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The code, which also decides the HTTP status.
    pub code: ErrorCode,
    /// The envelope's data (boxed: it is large for an `Err` that travels through every extractor).
    pub data: Box<FailureData>,
    /// Seconds to send as `Retry-After`, for 429 and 503 answers.
    pub retry_after: Option<u64>,
}

impl Failure {
    /// A failure with `code` and a message for the client.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, data: Box::new(FailureData::new(code, message)), retry_after: None }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.data.error)
    }
}

impl ResponseError for Failure {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        if self.code == ErrorCode::Unauthorized {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(ApiResponse::failure(self.code, (*self.data).clone()))
    }
}

/// JSON body handling with a size limit, answering bad bodies with the spec's envelope:
/// 415 for a content type other than JSON, 413 over the limit, 400 for malformed JSON.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).content_type_required(true).error_handler(move |err, _req| {
        let failure = match &err {
            JsonPayloadError::ContentType => Failure::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be JSON: send Content-Type: application/json",
            ),
            JsonPayloadError::OverflowKnownLength { length, limit } => {
                Failure::new(ErrorCode::PayloadTooLarge, format!("the body is {length} bytes; the limit is {limit}"))
            }
            JsonPayloadError::Overflow { limit } => {
                Failure::new(ErrorCode::PayloadTooLarge, format!("the body is over the limit of {limit} bytes"))
            }
            JsonPayloadError::Deserialize(inner) => {
                Failure::new(ErrorCode::InvalidRequest, format!("the body is not valid JSON: {inner}"))
            }
            other => Failure::new(ErrorCode::InvalidRequest, format!("the body could not be read: {other}")),
        };
        failure.into()
    })
}

/// The default service: no such route.
pub async fn not_found(req: HttpRequest) -> Failure {
    Failure::new(ErrorCode::NotFound, format!("no endpoint at {} {}", req.method(), req.path()))
}

/// The default of a resource: the route exists, not with this method.
pub async fn method_not_allowed(req: HttpRequest) -> Failure {
    Failure::new(ErrorCode::MethodNotAllowed, format!("{} is not allowed on {}", req.method(), req.path()))
}

impl actix_web::Responder for Failure {
    type Body = actix_web::body::BoxBody;
    fn respond_to(self, _req: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}

/// Parses a request's query string into `T`, refusing a malformed or unknown parameter with a
/// 400 `INVALID_REQUEST` that names it (actix's own `Query` answers in plain text).
pub fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, Failure> {
    crate::text::check_query(req.query_string())?;
    let parameters = serde_urlencoded::Deserializer::new(form_urlencoded::parse(req.query_string().as_bytes()));
    serde_path_to_error::deserialize(parameters).map_err(|err| {
        let at = err.path().to_string();
        let message = match at.as_str() {
            "." | "" => format!("invalid query parameters: {}", err.inner()),
            _ => format!("invalid query parameter {at}: {}", err.inner()),
        };
        Failure::new(ErrorCode::InvalidRequest, message)
    })
}
