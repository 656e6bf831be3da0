//! Secrets at rest and key material. Upstream secrets are sealed with
//! AES-256-GCM under AIGW_MASTER_KEY (the database alone never reveals them);
//! client keys and tokens are stored as SHA-256 only. Everything goes through
//! `ring`, the crate's one crypto stack.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

/// The AES-256-GCM key for upstream secrets. Cheap to clone; never printed.
#[derive(Clone)]
pub struct MasterKey {
    key: Arc<LessSafeKey>,
    rng: SystemRandom,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Parses 64 hex characters (32 bytes), as made by `openssl rand -hex 32`.
    pub fn from_hex(hex_key: &str) -> Result<Self> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| {
            Error::Settings(
                "AIGW_MASTER_KEY must be 64 hex characters (openssl rand -hex 32)".into(),
            )
        })?;
        if bytes.len() != 32 {
            return Err(Error::Settings(format!(
                "AIGW_MASTER_KEY must be 32 bytes (64 hex characters), got {} bytes",
                bytes.len()
            )));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| Error::internal("AES-256-GCM key setup failed"))?;
        Ok(Self {
            key: Arc::new(LessSafeKey::new(unbound)),
            rng: SystemRandom::new(),
        })
    }

    /// Seals `plaintext`; `context` is bound as associated data so a sealed
    /// value copied onto another row does not decrypt there.
    /// Returns base64(nonce || ciphertext || tag).
    pub fn encrypt(&self, plaintext: &str, context: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::internal("system random generator failed"))?;
        let mut buf = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| Error::internal("encryption failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }

    /// Opens a value made by [`encrypt`](Self::encrypt) with the same context.
    pub fn decrypt(&self, sealed: &str, context: &str) -> Result<String> {
        let fail = || Error::Decrypt(context.to_string());
        let raw = STANDARD.decode(sealed).map_err(|_| fail())?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(fail());
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| fail())?;
        String::from_utf8(plain.to_vec()).map_err(|_| fail())
    }
}

/// SHA-256 of a key or token, as sent in snapshots.
pub fn sha256(data: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data.as_bytes()).as_ref());
    out
}

/// Hex SHA-256, as stored in the database.
pub fn sha256_hex(data: &str) -> String {
    hex::encode(sha256(data))
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::internal("system random generator failed"))?;
    Ok(b)
}

/// A random number (jitter, sampling).
pub fn random_u64() -> Result<u64> {
    Ok(u64::from_le_bytes(random_bytes::<8>()?))
}

/// A fresh row id: 128 random bits in hex.
pub fn new_id() -> Result<String> {
    Ok(hex::encode(random_bytes::<16>()?))
}

/// A nonce for one snapshot push.
pub fn new_nonce() -> Result<String> {
    Ok(hex::encode(random_bytes::<8>()?))
}

/// `prefix` + 32 URL-safe characters (192 random bits).
pub fn new_secret(prefix: &str) -> Result<String> {
    Ok(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<24>()?)
    ))
}

/// A display form that identifies a secret without revealing it: up to
/// `prefix_max` leading characters (never more than a quarter of the secret)
/// and the last four, e.g. `sk-…a1b2`. Short secrets are fully masked.
pub fn mask(secret: &str, prefix_max: usize) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "…".into();
    }
    let head: String = chars[..prefix_max.min(chars.len() / 4)].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Compares a presented token with the expected one by their digests, so
/// the comparison's timing says nothing about the token.
pub fn token_matches(presented: &str, expected_hash: &[u8; 32]) -> bool {
    sha256(presented) == *expected_hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_hex(&"11".repeat(32)).unwrap()
    }

    #[test]
    fn roundtrip_is_randomized() {
        let k = key();
        let a = k.encrypt("sk-secret-value", "p/k").unwrap();
        let b = k.encrypt("sk-secret-value", "p/k").unwrap();
        assert_ne!(a, b, "each seal uses a fresh nonce");
        assert_eq!(k.decrypt(&a, "p/k").unwrap(), "sk-secret-value");
        assert_eq!(k.decrypt(&b, "p/k").unwrap(), "sk-secret-value");
    }

    #[test]
    fn tampering_and_wrong_key_or_context_are_detected() {
        let k = key();
        let sealed = k.encrypt("sk-secret-value", "p/k").unwrap();
        let mut raw = STANDARD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(matches!(
            k.decrypt(&STANDARD.encode(&raw), "p/k"),
            Err(Error::Decrypt(_))
        ));
        assert!(k.decrypt(&sealed, "other/k").is_err());
        let other = MasterKey::from_hex(&"22".repeat(32)).unwrap();
        assert!(other.decrypt(&sealed, "p/k").is_err());
        assert!(k.decrypt("not base64!", "p/k").is_err());
        assert!(k.decrypt("AAAA", "p/k").is_err());
    }

    #[test]
    fn master_key_must_be_32_hex_bytes() {
        assert!(MasterKey::from_hex("abcd").is_err());
        assert!(MasterKey::from_hex(&"zz".repeat(32)).is_err());
        assert!(MasterKey::from_hex(&"ab".repeat(32)).is_ok());
    }

    #[test]
    fn masks_and_secrets() {
        assert_eq!(mask("sk-proj-abcdefghijklmnop1234", 3), "sk-…1234");
        let k = new_secret("sk-aigw-").unwrap();
        assert_eq!(k.len(), 8 + 32);
        assert!(
            k[8..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(mask(&k, 8), format!("sk-aigw-…{}", &k[k.len() - 4..]));
        assert_eq!(mask("short", 8), "…");
        assert_eq!(sha256_hex("abc").len(), 64);
        assert!(token_matches("t", &sha256("t")));
        assert!(!token_matches("u", &sha256("t")));
    }
}
