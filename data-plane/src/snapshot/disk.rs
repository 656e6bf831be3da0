//! The last applied snapshot on disk, so a restarted data plane serves while
//! the control plane is unreachable. It holds upstream secrets, so it is
//! sealed with AES-256-GCM under a key derived from the node token: a copied
//! file is useless without the token, and no secret sits on disk in clear.
//! The file holds an encoded whole `Snapshot` (sealed in place: no second
//! copy of a large snapshot is made to write or read it).

use std::fs;
use std::io::{self, Write as _};
use std::path::PathBuf;

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

    /// Seals `encoded` (an encoded whole snapshot) in place and writes it
    /// atomically (temp file + rename), readable by the owner only.
    pub fn store(&self, mut encoded: Vec<u8>) -> Result<(), DiskError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| DiskError::Unsealable)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut encoded,
            )
            .map_err(|_| DiskError::Unsealable)?;
        if let Some(dir) = self.path.parent() {
            crate::state_dir::create(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        {
            let _ = fs::remove_file(&tmp);
            let mut f = io::BufWriter::new(crate::state_dir::private_file(&tmp)?);
            f.write_all(MAGIC)?;
            f.write_all(&nonce)?;
            f.write_all(&encoded)?;
            f.write_all(tag.as_ref())?;
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    /// The encoded whole snapshot kept on disk, if any.
    pub fn load(&self) -> Result<Option<Vec<u8>>, DiskError> {
        let mut data = match fs::read(&self.path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if !data.starts_with(MAGIC) || data.len() < MAGIC.len() + NONCE_LEN {
            return Err(DiskError::Unsealable);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[MAGIC.len()..MAGIC.len() + NONCE_LEN]);
        let plain_len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut data[MAGIC.len() + NONCE_LEN..],
            )
            .map_err(|_| DiskError::Unsealable)?
            .len();
        data.drain(..MAGIC.len() + NONCE_LEN);
        data.truncate(plain_len);
        Ok(Some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aigw_proto::pb::config::{Provider, ProviderKey, Snapshot};
    use prost::Message as _;

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
        cache.store(snap.encode_to_vec()).unwrap();
        let raw = fs::read(&path).unwrap();
        assert!(!raw.windows(11).any(|w| w == b"very-secret"));
        let back = cache.load().unwrap().unwrap();
        assert_eq!(Snapshot::decode(back.as_slice()).unwrap(), snap);
        let other = DiskCache::new(path, "another-token");
        assert!(matches!(other.load(), Err(DiskError::Unsealable)));
    }
}
