//! Keyed blind indexes: equality lookups on encrypted values without storing plaintext.
//!
//! The index of a value is HMAC-SHA256 under a key derived (HKDF) from the deployment's
//! index secret, with a per-purpose label, so equal inputs give equal indexes but nobody
//! without the key can test a guess. Inputs are normalised by the caller (emails case-folded).

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// A derived index key for one purpose.
pub struct IndexKey(Zeroizing<[u8; 32]>);

impl IndexKey {
    /// Derives the key for `purpose` (such as `email`) from the index secret.
    pub fn derive(secret: &[u8], purpose: &str) -> IndexKey {
        let hk = Hkdf::<Sha256>::new(Some(b"concord-blind-index-v1"), secret);
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(purpose.as_bytes(), out.as_mut());
        IndexKey(out)
    }

    /// The index of a normalised value, as lowercase hex.
    pub fn index(&self, normalised: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(normalised.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::IndexKey;

    #[test]
    fn is_deterministic_keyed_and_purpose_bound() {
        let a = IndexKey::derive(&[1; 32], "email");
        assert_eq!(a.index("ann@example.org"), a.index("ann@example.org"));
        assert_ne!(a.index("ann@example.org"), a.index("bo@example.org"));
        let other_key = IndexKey::derive(&[2; 32], "email");
        assert_ne!(
            a.index("ann@example.org"),
            other_key.index("ann@example.org")
        );
        let other_purpose = IndexKey::derive(&[1; 32], "invitation");
        assert_ne!(a.index("x"), other_purpose.index("x"));
    }
}
