//! The last applied snapshot on disk, so a restarted data plane serves while
//! the control plane is unreachable. It holds upstream secrets, so it is
//! sealed with AES-256-GCM under a key derived from the node token: a copied
//! file is useless without the token, and no secret sits on disk in clear.

use std::fs;
use std::io;
use std::path::PathBuf;

use aigw_proto::pb::config::Snapshot;
use prost::Message;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const MAGIC: &[u8; 8] = b"AIGWSNP1";
const AAD: &[u8] = b"aigw data-plane snapshot v1";

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the snapshot file is not ours or was sealed with another node token")]
    Unsealable,
    #[error("the snapshot file does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

pub struct DiskCache {
    path: PathBuf,
    key: LessSafeKey,
    rng: SystemRandom,
}

impl DiskCache {
    pub fn new(path: PathBuf, node_token: &str) -> Self {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("aigw-snapshot-key-v1:{node_token}").as_bytes(),
        );
        // A SHA-256 digest is always 32 bytes, the AES-256 key length.
        let unbound = UnboundKey::new(&AES_256_GCM, digest.as_ref())
            .unwrap_or_else(|_| unreachable!("SHA-256 output is an AES-256 key"));
        Self {
            path,
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        }
    }

    /// Writes atomically (temp file + rename), readable by the owner only.
    pub fn store(&self, encoded: &[u8]) -> Result<(), DiskError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| DiskError::Unsealable)?;
        let mut sealed = encoded.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut sealed,
            )
            .map_err(|_| DiskError::Unsealable)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        if let Some(dir) = self.path.parent() {
            crate::state_dir::create(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        {
            use std::io::Write as _;
            let _ = fs::remove_file(&tmp);
            let mut f = crate::state_dir::private_file(&tmp)?;
            f.write_all(&out)?;
        }
        fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    pub fn load(&self) -> Result<Option<Snapshot>, DiskError> {
        let data = match fs::read(&self.path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let rest = data
            .strip_prefix(MAGIC.as_slice())
            .ok_or(DiskError::Unsealable)?;
        if rest.len() < NONCE_LEN {
            return Err(DiskError::Unsealable);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| DiskError::Unsealable)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(AAD), &mut sealed)
            .map_err(|_| DiskError::Unsealable)?;
        Ok(Some(Snapshot::decode(&*plain)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_proto::pb::config::{Provider, ProviderKey};

    #[test]
    fn roundtrip_and_no_secret_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.bin");
        let snap = Snapshot {
            version: "v1".into(),
            providers: vec![Provider {
                name: "p".into(),
                kind: "openai".into(),
                keys: vec![ProviderKey {
                    name: "k".into(),
                    secret: "sk-very-secret-upstream".into(),
                    weight: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let cache = DiskCache::new(path.clone(), "node-token");
        cache.store(&snap.encode_to_vec()).unwrap();
        let raw = fs::read(&path).unwrap();
        assert!(!raw.windows(11).any(|w| w == b"very-secret"));
        assert_eq!(cache.load().unwrap().unwrap(), snap);
        let other = DiskCache::new(path, "another-token");
        assert!(matches!(other.load(), Err(DiskError::Unsealable)));
    }
}
