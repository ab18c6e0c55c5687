//! Verified buyer identity (optional): with a key configured, `/buy` and
//! `/eligible` need `Authorization: Bearer <jwt>` from the shop's own login,
//! and the buyer is the token's `sub` — one place per account, whatever
//! name is typed. `exp` is required and checked, `nbf` checked when
//! present, and `aud` and `iss` required and checked when configured
//! (60 s of leeway for clocks). A missing or bad token: 401 `bad_jwt`.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::{ApiError, ErrorCode};
use crate::tokens::bearer;

/// What a buyer's JWT is checked against. Cheap to clone: one `Arc` (the
/// routes' state is cloned for every request).
#[derive(Clone)]
pub struct BuyerAuth(Arc<Checks>);

struct Checks {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for BuyerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuyerAuth")
            .field("algorithms", &self.0.validation.algorithms)
            .field("aud", &self.0.validation.aud)
            .field("iss", &self.0.validation.iss)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

impl BuyerAuth {
    /// Tokens signed with HS256 under `secret`.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// Tokens signed with RS256 or ES256, checked with the PEM public key
    /// `pem`.
    pub fn public_key(pem: &[u8]) -> Result<Self, String> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Self::with(key, Algorithm::RS256));
        }
        DecodingKey::from_ec_pem(pem)
            .map(|key| Self::with(key, Algorithm::ES256))
            .map_err(|e| format!("not an RSA or EC public key in PEM: {e}"))
    }

    fn with(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        BuyerAuth(Arc::new(Checks { key, validation }))
    }

    /// Requires and checks the `aud` claim.
    pub fn with_audience(self, audience: &str) -> Self {
        self.with_validation(|v| {
            v.set_audience(&[audience]);
            v.validate_aud = true;
            v.required_spec_claims.insert("aud".to_owned());
        })
    }

    /// Requires and checks the `iss` claim.
    pub fn with_issuer(self, issuer: &str) -> Self {
        self.with_validation(|v| {
            v.set_issuer(&[issuer]);
            v.required_spec_claims.insert("iss".to_owned());
        })
    }

    fn with_validation(self, change: impl FnOnce(&mut Validation)) -> Self {
        let mut validation = self.0.validation.clone();
        change(&mut validation);
        BuyerAuth(Arc::new(Checks {
            key: self.0.key.clone(),
            validation,
        }))
    }

    /// The account (`sub`) of the request's valid token, or the 401 answer.
    pub fn account(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let token =
            bearer(headers).ok_or_else(|| bad_jwt("a signed-in buyer's token is required"))?;
        jsonwebtoken::decode::<Claims>(token, &self.0.key, &self.0.validation)
            .map(|data| data.claims.sub)
            .map_err(|e| bad_jwt(&format!("the buyer's token is not valid: {e}")))
    }
}

fn bad_jwt(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::BadJwt, message)
}
