//! The spec 6.2 failure envelope as an actix error, and the handlers and middleware that give
//! it to requests actix refuses on its own (bad JSON, wrong content type, oversize body, no
//! route, a method the resource does not answer).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
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

/// The error code of a refusal that carries only an HTTP status: the generic codes of the table.
/// Statuses without one (a 408 or 414, say) are left as they are.
fn code_for_status(status: StatusCode) -> Option<ErrorCode> {
    Some(match status {
        StatusCode::BAD_REQUEST => ErrorCode::InvalidRequest,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::INTERNAL_SERVER_ERROR => ErrorCode::InternalError,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::ServiceUnavailable,
        _ => return None,
    })
}

/// Whether an answer's body is JSON (the envelope, or `/readyz`'s report), by its content type.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json") || mime.to_ascii_lowercase().ends_with("+json")
        })
}

/// Middleware that gives every refusal the spec's envelope: an answer of 400 or more whose body
/// is not JSON (actix's own 405 with its `Allow` header, an extractor's plain-text error, an
/// empty error from a library) is rebuilt as a [`Failure`] with the table's code for its status,
/// keeping its status and its other headers (`Allow`, `Retry-After`, `WWW-Authenticate`).
///
/// Answers that actix-http gives before any app runs (a request line or header it cannot parse:
/// 400; a request head too large: 431; a request too slow: 408) never reach it; see
/// ARCHITECTURE.md.
pub async fn failure_envelope(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // A handler's error is already an answer here (actix turns it into one with the error
    // attached); only a failing middleware inside would be an `Err`, and there is none.
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(res.headers()) {
        return Ok(res);
    }
    let Some(code) = code_for_status(status) else { return Ok(res) };
    let message = match res.response().error() {
        Some(err) if !err.to_string().is_empty() => err.to_string(),
        _ if status == StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = res.headers().get(header::ALLOW).and_then(|value| value.to_str().ok()).unwrap_or_default();
            format!("{} is not allowed on {}; allowed: {allowed}", res.request().method(), res.request().path())
        }
        _ => format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("refused").to_lowercase()),
    };
    let mut rebuilt = Failure::new(code, message).error_response();
    *rebuilt.status_mut() = status;
    // The original's headers that the envelope does not set itself, every value of each.
    let set_by_envelope: Vec<header::HeaderName> = rebuilt.headers().keys().cloned().collect();
    for (name, value) in res.headers() {
        if name != header::CONTENT_LENGTH && !set_by_envelope.contains(name) {
            rebuilt.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(res.into_response(rebuilt))
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, call_service, init_service, read_body_json};
    use actix_web::{App, http::Method};
    use serde_json::Value;

    async fn answer(app_req: TestRequest) -> (StatusCode, HeaderMap, Value) {
        let app = init_service(
            App::new()
                .wrap(from_fn(failure_envelope))
                .service(web::resource("/things").get(|| async { "listed" }).put(|| async { "stored" }))
                .service(web::resource("/things/{id}").get(|id: web::Path<u32>| async move { id.to_string() }))
                .route(
                    "/broken",
                    web::get().to(|| async { Err::<String, _>(actix_web::error::ErrorBadRequest("no good")) }),
                )
                .route("/empty", web::get().to(|| async { HttpResponse::ServiceUnavailable().finish() }))
                .route(
                    "/report",
                    web::get().to(|| async {
                        HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "unavailable"}))
                    }),
                )
                .default_service(web::to(not_found)),
        )
        .await;
        let res = call_service(&app, app_req.to_request()).await;
        let (status, headers) = (res.status(), res.headers().clone());
        (status, headers, read_body_json(res).await)
    }

    fn assert_envelope(body: &Value, code: ErrorCode) {
        assert_eq!(body["code"], code.numeric(), "{body}");
        assert_eq!(body["data"]["error_code"], code.as_str(), "{body}");
        assert_eq!(body["data"]["success"], false, "{body}");
        assert!(!body["message"].as_str().unwrap_or_default().is_empty(), "{body}");
    }

    #[actix_web::test]
    async fn a_method_the_resource_does_not_answer_is_a_405_in_the_envelope_with_allow() {
        for method in [Method::POST, Method::DELETE, Method::TRACE, Method::from_bytes(b"BREW").unwrap()] {
            let (status, headers, body) = answer(TestRequest::default().method(method.clone()).uri("/things")).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
            let allow = headers.get(header::ALLOW).unwrap().to_str().unwrap();
            let mut allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
            allowed.sort_unstable();
            assert_eq!(allowed, ["GET", "PUT"], "{method}");
            assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), "application/json");
            assert_envelope(&body, ErrorCode::MethodNotAllowed);
            assert!(body["message"].as_str().unwrap().contains(method.as_str()), "{body}");
        }
    }

    #[actix_web::test]
    async fn an_extractor_or_handler_error_in_plain_text_gets_the_envelope() {
        let (status, _, body) = answer(TestRequest::get().uri("/things/not-a-number")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_envelope(&body, ErrorCode::NotFound);
        let (status, _, body) = answer(TestRequest::get().uri("/broken")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_envelope(&body, ErrorCode::InvalidRequest);
        assert_eq!(body["message"], "no good");
        let (status, _, body) = answer(TestRequest::get().uri("/empty")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_envelope(&body, ErrorCode::ServiceUnavailable);
    }

    #[actix_web::test]
    async fn json_answers_and_statuses_without_a_code_are_left_alone() {
        let (status, _, body) = answer(TestRequest::get().uri("/report")).await;
        assert_eq!((status, body), (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"status": "unavailable"})));
        let app = init_service(App::new().wrap(from_fn(failure_envelope)).route(
            "/teapot",
            web::get().to(|| async { HttpResponse::build(StatusCode::IM_A_TEAPOT).body("short and stout") }),
        ))
        .await;
        let res = call_service(&app, TestRequest::get().uri("/teapot").to_request()).await;
        assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(actix_web::test::read_body(res).await, "short and stout");
    }

    #[actix_web::test]
    async fn no_route_is_a_404_in_the_envelope() {
        let (status, _, body) = answer(TestRequest::get().uri("/nothing/here")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_envelope(&body, ErrorCode::NotFound);
    }
}
