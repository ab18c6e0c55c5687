//! Signed payment callbacks: with a shared secret, the payment service signs
//! each `/paid` body with HMAC-SHA256 and the transaction service refuses
//! unsigned or wrongly signed ones, so nobody marks a transaction paid by
//! posting its id. A replayed signed body is harmless: `paid` is idempotent.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "x-flashsale-signature";

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

/// HMAC-SHA256 of `data` under `secret`, as 64 lower-case hex characters.
pub(crate) fn hmac_hex(secret: &[u8], data: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(data);
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `hex` is [`hmac_hex`] of `data` under `secret`, compared in
/// constant time.
pub(crate) fn verify_hex(secret: &[u8], data: &[u8], hex: &str) -> bool {
    if hex.len() != 64 || !hex.is_ascii() {
        return false;
    }
    let bytes: Option<Vec<u8>> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    let Some(bytes) = bytes else { return false };
    let mut m = mac(secret);
    m.update(data);
    m.verify_slice(&bytes).is_ok()
}

/// The header value that signs `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret, body))
}

/// Whether `header` is a valid signature of `body` (compared in constant
/// time).
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    header
        .trim()
        .strip_prefix("sha256=")
        .is_some_and(|hex| verify_hex(secret, body, hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_forgeries_do_not() {
        let body = br#"{"transactionId":"0000000000000000000000aa"}"#;
        let good = sign(b"s3cret", body);
        assert!(good.starts_with("sha256=") && good.len() == 7 + 64);
        assert!(verify(b"s3cret", body, &good));
        assert!(!verify(b"other", body, &good));
        assert!(!verify(b"s3cret", b"{}", &good));
        for bad in [
            "",
            "sha256=",
            "sha1=00",
            &good[..good.len() - 1],
            &good.replace("sha256=", ""),
        ] {
            assert!(!verify(b"s3cret", body, bad), "{bad:?}");
        }
    }

    #[test]
    fn matches_a_known_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
