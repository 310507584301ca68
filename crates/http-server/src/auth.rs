//! Bearer-token extractors: `BearerClaims` for any valid token, `AdminClaims` for admins.

use crate::Failure;
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use model::ErrorCode;
use runtime::{AuthError, Claims, JwtVerifier};
use std::future::{Ready, ready};

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn verify(req: &HttpRequest) -> Result<Claims, Failure> {
    let verifier = req.app_data::<web::Data<JwtVerifier>>().ok_or_else(|| {
        tracing::error!("no JwtVerifier in app data");
        Failure::new(ErrorCode::InternalError, "authentication is not configured")
    })?;
    let token = bearer_token(req).ok_or(AuthError::Missing).map_err(unauthorized)?;
    let claims = verifier.verify(token).map_err(unauthorized)?;
    crate::check_claims(&claims)?;
    Ok(claims)
}

fn unauthorized(err: AuthError) -> Failure {
    Failure::new(ErrorCode::Unauthorized, err.to_string())
}

/// The claims of a valid bearer token; 401 otherwise.
#[derive(Debug, Clone)]
pub struct BearerClaims(pub Claims);

impl FromRequest for BearerClaims {
    type Error = Failure;
    type Future = Ready<Result<Self, Failure>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(verify(req).map(BearerClaims))
    }
}

/// The claims of a valid admin token; 401 without a valid token, 403 for a non-admin.
#[derive(Debug, Clone)]
pub struct AdminClaims(pub Claims);

impl FromRequest for AdminClaims {
    type Error = Failure;
    type Future = Ready<Result<Self, Failure>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(verify(req).and_then(|claims| {
            if claims.is_admin() {
                Ok(AdminClaims(claims))
            } else {
                Err(Failure::new(ErrorCode::Forbidden, "this endpoint needs the admin role"))
            }
        }))
    }
}
