//! Buyer capabilities: `/buy` answers a `buyerToken` beside the transaction
//! id, and only its holder may ask where the transaction stands, leave it,
//! or join its live room. A token is HMAC-SHA256 of the transaction id
//! under a server key (256 bits): unguessable from the id, checked in
//! constant time, and stored nowhere — a server with the same key accepts
//! it after a restart. Derive the key from configuration
//! ([`TokenKey::derive`]) wherever the journal outlives the process.

use std::sync::Arc;

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use flashsale_core::TxId;

use crate::error::{ApiError, ErrorCode};
use crate::signature::{hmac_hex, verify_hex};

/// The server key behind buyer tokens. Cheap to clone.
#[derive(Clone)]
pub struct TokenKey(Arc<[u8]>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key of 256 random bits: tokens die with the process.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        // The OS's randomness; without it no secret can be made at all.
        getrandom::fill(&mut key).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
        TokenKey(Arc::new(key))
    }

    /// The key derived from a configured secret: the same secret gives the
    /// same tokens, in every process and after every restart.
    pub fn derive(secret: &[u8]) -> Self {
        let key = hmac_hex(secret, b"flashsale buyer token key v1");
        TokenKey(Arc::from(key.as_bytes()))
    }

    /// The token for `tx`: 64 hex characters.
    pub fn token(&self, tx: TxId) -> String {
        hmac_hex(&self.0, &tx.bytes())
    }

    /// Whether `token` is `tx`'s (constant time).
    pub fn verify(&self, tx: TxId, token: &str) -> bool {
        verify_hex(&self.0, &tx.bytes(), token.trim())
    }

    /// `Ok` if the request's `Authorization: Bearer <token>` is `tx`'s,
    /// else the 401 answer.
    pub fn check(&self, tx: TxId, headers: &HeaderMap) -> Result<(), ApiError> {
        match bearer(headers) {
            Some(token) if self.verify(tx, token) => Ok(()),
            _ => Err(bad_token()),
        }
    }
}

/// The operator's credential: `Authorization: Bearer <ADMIN_TOKEN>` on
/// sale creation and every operator route. Only a keyed digest of it is
/// kept, and a presented token is compared in constant time.
#[derive(Clone)]
pub struct AdminToken {
    key: Arc<[u8; 32]>,
    digest: Arc<str>,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// The credential `token`.
    pub fn new(token: &str) -> Self {
        let mut key = [0u8; 32];
        // The OS's randomness; without it no secret can be made at all.
        getrandom::fill(&mut key).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
        let digest = hmac_hex(&key, token.as_bytes());
        AdminToken {
            key: Arc::new(key),
            digest: Arc::from(digest),
        }
    }

    /// A random credential (32 hex characters, 128 bits), and the token to
    /// tell the operator.
    pub fn random() -> (Self, String) {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        (AdminToken::new(&token), token)
    }

    /// `Ok` if the request carries the credential, else the 401 answer.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let presented = bearer(headers).unwrap_or_default();
        if verify_hex(&self.key[..], presented.as_bytes(), &self.digest) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::BadAdminToken,
                "missing or invalid operator token (Authorization: Bearer <ADMIN_TOKEN>)",
            ))
        }
    }
}

fn bad_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::BadToken,
        "missing or invalid buyer token (Authorization: Bearer <buyerToken>)",
    )
}

/// The token of a request's `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_per_transaction_and_per_key() {
        let tx: TxId = "65a1b2c3d4e5f60718293a4b"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let other: TxId = "65a1b2c3d4e5f60718293a4c"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let key = TokenKey::derive(b"s3cret");
        let token = key.token(tx);
        assert_eq!(token.len(), 64);
        assert!(key.verify(tx, &token));
        assert!(!key.verify(other, &token));
        assert!(!TokenKey::derive(b"other").verify(tx, &token));
        assert!(!TokenKey::random().verify(tx, &token));
        // Stable: the same secret gives the same token after a restart.
        assert_eq!(TokenKey::derive(b"s3cret").token(tx), token);
        for bad in [
            "",
            "00",
            &token[..63],
            &token.to_uppercase().replace('A', "G"),
        ] {
            assert!(!key.verify(tx, bad), "{bad:?}");
        }
    }
}
