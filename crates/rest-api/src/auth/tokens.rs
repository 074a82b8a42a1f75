//! Access tokens: HS256-signed JWTs carrying the user, the role, an id (to revoke it) and an
//! expiry. Every api-server of a cluster signs and checks them with the same secret.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Principal, Role};
use crate::ApiError;

/// The smallest secret accepted: HS256 keys shorter than the hash are easy to guess.
const MIN_SECRET_LEN: usize = 32;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    pub role: Role,
    /// The token's id.
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

/// Who signs the tokens.
const ISSUER: &str = "updraft";

pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl TokenService {
    pub fn new(secret: &str, lifetime: Duration) -> Result<Self, ApiError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(ApiError::WeakJwtSecret);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 0;
        Ok(TokenService {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            lifetime,
        })
    }

    /// A new token for `username` acting as `role`.
    pub fn issue(&self, username: &str, role: Role) -> Result<(String, Claims), TokenError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: username.to_string(),
            role,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + self.lifetime.as_secs() as i64,
            iss: ISSUER.to_string(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok((token, claims))
    }

    /// The principal of a token with a valid signature that has not expired. Revocation is
    /// checked by the caller, against the database.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Invalid(e.to_string()),
                }
            })?;
        let claims = data.claims;
        Ok(Principal {
            username: claims.sub,
            role: claims.role,
            token_id: claims.jti,
            expires_at: claims.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_round_trips() {
        let service = TokenService::new(SECRET, Duration::from_secs(60)).unwrap();
        let (token, claims) = service.issue("alice", Role::Op).unwrap();
        let principal = service.verify(&token).unwrap();
        assert_eq!(principal.username, "alice");
        assert_eq!(principal.role, Role::Op);
        assert_eq!(principal.token_id, claims.jti);
    }

    #[test]
    fn another_secret_rejects_the_token() {
        let a = TokenService::new(SECRET, Duration::from_secs(60)).unwrap();
        let b = TokenService::new(&SECRET.repeat(2), Duration::from_secs(60)).unwrap();
        let (token, _) = a.issue("alice", Role::Admin).unwrap();
        assert!(matches!(b.verify(&token), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let service = TokenService::new(SECRET, Duration::from_secs(0)).unwrap();
        let (token, _) = service.issue("alice", Role::Admin).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(service.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            TokenService::new("short", Duration::from_secs(60)),
            Err(ApiError::WeakJwtSecret)
        ));
    }
}
