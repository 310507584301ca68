//! HS256 JWT verification and issuing (brief section 5).

use crate::JwtSettings;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use model::UserId;
use secrecy::ExposeSecret;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A token holder's role: the one set `model` defines, so events and records carry it too.
pub use model::Role;

/// The claims Herald reads from a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id: a positive integer, sent as a number or a numeric string.
    #[serde(deserialize_with = "user_id_from_number_or_string")]
    pub sub: UserId,
    /// The display name.
    #[serde(default)]
    pub name: String,
    /// The role; `user` when absent.
    #[serde(default = "default_role")]
    pub role: Role,
    /// The tenant, if the deployment has tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Group memberships.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

impl Claims {
    /// Claims for `sub` with `role`, valid for `ttl` from now.
    pub fn new(sub: UserId, name: impl Into<String>, role: Role, ttl: Duration) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            sub,
            name: name.into(),
            role,
            tenant_id: None,
            groups: Vec::new(),
            exp: (now + ttl).as_secs(),
            iat: Some(now.as_secs()),
            iss: None,
            aud: None,
        }
    }

    /// Whether the holder is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

fn default_role() -> Role {
    Role::User
}

fn user_id_from_number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<UserId, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(i64),
        Text(String),
    }
    let id = match Raw::deserialize(d)? {
        Raw::Number(n) => n,
        Raw::Text(s) => s.parse().map_err(|_| de::Error::custom("sub must be a positive integer user id"))?,
    };
    if id <= 0 {
        return Err(de::Error::custom("sub must be a positive integer user id"));
    }
    Ok(id)
}

/// Why a token was refused. The messages are safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("a bearer token is required")]
    Missing,
    /// The token's `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// The token's `nbf` is still ahead (beyond the leeway).
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// The token names a role Herald does not know.
    #[error("the token's role {0:?} is unknown; Herald knows admin and user")]
    UnknownRole(String),
    /// The token is signed with an algorithm Herald does not accept (including `none`).
    #[error("the token's algorithm is not accepted; Herald accepts HS256")]
    Algorithm,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    Signature,
    /// The token is not a JWT, or its claims are wrong.
    #[error("the token is invalid: {0}")]
    Malformed(String),
}

/// Verifies HS256 tokens against the configured secret.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    /// A verifier for `settings`.
    pub fn new(settings: &JwtSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = settings.leeway_secs;
        // A token may be minted ahead of its use; it is refused until `nbf` (give or take the
        // leeway), like an expired one after `exp`.
        validation.validate_nbf = true;
        // `sub` is an integer here, which the library's string check would call missing; the
        // claims type requires it instead.
        validation.set_required_spec_claims(&["exp"]);
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &settings.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Self { key: DecodingKey::from_secret(settings.secret.expose_secret().as_bytes()), validation }
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        // The header first, on its own: a header that fails to parse is almost always one naming
        // an algorithm the library does not know (`none`), and must not be confused with a bad
        // claim (an unknown role also fails as an "unknown variant").
        jsonwebtoken::decode_header(token).map_err(|err| match err.kind() {
            ErrorKind::Json(inner) if inner.to_string().contains("unknown variant") => AuthError::Algorithm,
            other => refusal(other),
        })?;
        // The claims as JSON first, so that the signature, `exp` and `nbf` are checked before any
        // claim is read, and a claim Herald cannot take gets its own message.
        let raw = jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation)
            .map_err(|err| refusal(err.kind()))?
            .claims;
        if let Some(role) = raw.get("role")
            && serde_json::from_value::<Role>(role.clone()).is_err()
        {
            let role = role.as_str().map_or_else(|| role.to_string(), str::to_owned);
            return Err(AuthError::UnknownRole(role.chars().take(64).collect()));
        }
        serde_json::from_value(raw).map_err(|err| AuthError::Malformed(err.to_string()))
    }
}

/// Why the library refused a token, in Herald's terms.
fn refusal(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::Signature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => AuthError::Algorithm,
        ErrorKind::InvalidIssuer => AuthError::Malformed("wrong issuer".into()),
        ErrorKind::InvalidAudience => AuthError::Malformed("wrong audience".into()),
        ErrorKind::MissingRequiredClaim(claim) => AuthError::Malformed(format!("the {claim} claim is missing")),
        ErrorKind::Json(inner) => AuthError::Malformed(inner.to_string()),
        _ => AuthError::Malformed("not a well-formed JWT".into()),
    }
}

/// Signs tokens with the configured secret (the `herald token` command and tests).
#[derive(Clone)]
pub struct JwtIssuer {
    key: EncodingKey,
}

impl JwtIssuer {
    /// An issuer for `settings`.
    pub fn new(settings: &JwtSettings) -> Self {
        Self { key: EncodingKey::from_secret(settings.secret.expose_secret().as_bytes()) }
    }

    /// A signed HS256 token carrying `claims`.
    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;
    use serde_json::json;

    fn settings(secret: &str) -> JwtSettings {
        JwtSettings { secret: SecretString::from(secret), ..JwtSettings::default() }
    }

    fn b64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    #[test]
    fn a_token_it_issued_verifies_with_its_claims() {
        let s = settings("0123456789abcdef0123");
        let claims = Claims::new(42, "alice", Role::Admin, Duration::from_secs(60));
        let token = JwtIssuer::new(&s).issue(&claims).unwrap();
        assert_eq!(JwtVerifier::new(&s).verify(&token).unwrap(), claims);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let s = settings("0123456789abcdef0123");
        let mut claims = Claims::new(1, "a", Role::User, Duration::ZERO);
        claims.exp -= 3600;
        let token = JwtIssuer::new(&s).issue(&claims).unwrap();
        assert_eq!(JwtVerifier::new(&s).verify(&token), Err(AuthError::Expired));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let claims = Claims::new(1, "a", Role::Admin, Duration::from_secs(60));
        let token = JwtIssuer::new(&settings("another-secret-of-16")).issue(&claims).unwrap();
        assert_eq!(JwtVerifier::new(&settings("0123456789abcdef0123")).verify(&token), Err(AuthError::Signature));
    }

    #[test]
    fn an_alg_none_token_is_refused() {
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64(json!({"sub": 1, "role": "admin", "exp": 4_000_000_000u64}).to_string().as_bytes());
        let verifier = JwtVerifier::new(&settings("0123456789abcdef0123"));
        assert_eq!(verifier.verify(&format!("{header}.{body}.")), Err(AuthError::Algorithm));
    }

    #[test]
    fn an_hs512_token_is_refused() {
        let s = settings("0123456789abcdef0123");
        let claims = Claims::new(1, "a", Role::Admin, Duration::from_secs(60));
        let key = EncodingKey::from_secret(b"0123456789abcdef0123");
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).unwrap();
        assert_eq!(JwtVerifier::new(&s).verify(&token), Err(AuthError::Algorithm));
    }

    #[test]
    fn garbage_and_empty_tokens_are_refused() {
        let verifier = JwtVerifier::new(&settings("0123456789abcdef0123"));
        assert_eq!(verifier.verify(""), Err(AuthError::Missing));
        assert!(matches!(verifier.verify("abc.def"), Err(AuthError::Malformed(_))));
    }

    fn sign(claims: &serde_json::Value) -> String {
        let key = EncodingKey::from_secret(b"0123456789abcdef0123");
        jsonwebtoken::encode(&Header::default(), claims, &key).unwrap()
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn a_token_with_an_unknown_role_is_refused_for_its_role() {
        let verifier = JwtVerifier::new(&settings("0123456789abcdef0123"));
        let token = sign(&json!({"sub": 1, "role": "superuser", "exp": 4_000_000_000u64}));
        let refused = verifier.verify(&token).unwrap_err();
        assert_eq!(refused, AuthError::UnknownRole("superuser".into()));
        assert!(refused.to_string().contains("role \"superuser\" is unknown"), "{refused}");
        assert!(!refused.to_string().contains("algorithm"), "{refused}");
        let numeric = sign(&json!({"sub": 1, "role": 7, "exp": 4_000_000_000u64}));
        assert_eq!(verifier.verify(&numeric), Err(AuthError::UnknownRole("7".into())));
    }

    #[test]
    fn a_role_left_out_means_user_but_a_null_role_is_refused() {
        let verifier = JwtVerifier::new(&settings("0123456789abcdef0123"));
        let no_role = sign(&json!({"sub": 1, "exp": 4_000_000_000u64}));
        assert_eq!(verifier.verify(&no_role).unwrap().role, Role::User);
        let null_role = sign(&json!({"sub": 1, "role": null, "exp": 4_000_000_000u64}));
        assert_eq!(verifier.verify(&null_role), Err(AuthError::UnknownRole("null".into())));
    }

    #[test]
    fn a_token_not_yet_valid_is_refused_beyond_the_leeway() {
        let verifier = JwtVerifier::new(&settings("0123456789abcdef0123"));
        let later = sign(&json!({"sub": 1, "exp": 4_000_000_000u64, "nbf": now() + 3600}));
        assert_eq!(verifier.verify(&later), Err(AuthError::NotYetValid));
        assert_eq!(AuthError::NotYetValid.to_string(), "the token is not valid yet (nbf)");
        // Clocks drift: a token valid a few seconds from now (inside the 30 s leeway) is taken.
        let soon = sign(&json!({"sub": 1, "exp": 4_000_000_000u64, "nbf": now() + 10}));
        assert_eq!(verifier.verify(&soon).unwrap().sub, 1);
        let past = sign(&json!({"sub": 1, "exp": 4_000_000_000u64, "nbf": now() - 10}));
        assert_eq!(verifier.verify(&past).unwrap().sub, 1);
    }

    #[test]
    fn an_expired_token_with_an_unknown_role_is_refused_as_expired() {
        let verifier = JwtVerifier::new(&settings("0123456789abcdef0123"));
        let token = sign(&json!({"sub": 1, "role": "root", "exp": now() - 3600}));
        assert_eq!(verifier.verify(&token), Err(AuthError::Expired));
    }

    #[test]
    fn sub_may_be_a_numeric_string_but_not_a_name() {
        let s = settings("0123456789abcdef0123");
        let key = EncodingKey::from_secret(b"0123456789abcdef0123");
        let sign = |sub: serde_json::Value| {
            jsonwebtoken::encode(&Header::default(), &json!({"sub": sub, "exp": 4_000_000_000u64}), &key).unwrap()
        };
        let claims = JwtVerifier::new(&s).verify(&sign(json!("17"))).unwrap();
        assert_eq!((claims.sub, claims.role), (17, Role::User));
        assert!(matches!(JwtVerifier::new(&s).verify(&sign(json!("bob"))), Err(AuthError::Malformed(_))));
        assert!(matches!(JwtVerifier::new(&s).verify(&sign(json!(0))), Err(AuthError::Malformed(_))));
    }
}
