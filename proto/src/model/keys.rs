//! Client keys as a data plane holds them: each key once, small, and
//! indexed by its hash in shards that a delta replaces one at a time.
//!
//! A data plane may hold hundreds of thousands of keys, so the layout is
//! chosen for memory: a key is its hash, one allocation for its id and name,
//! its expiry, and a pointer to what only some keys have (an allow-list,
//! limits, budgets). Keys that have the same such settings share one copy,
//! and most keys have none. The table is 256 sorted shards (by the first
//! byte of the hash): a lookup is a binary search in one shard, and a delta
//! that changes one key copies one shard (a few hundred keys at 100,000)
//! while the others are shared with the table it was made from, which keeps
//! serving until the new one is swapped in.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message as _;

use super::Glob;
use super::budget::Limits;
use super::snapshot::{InvalidSnapshot, checked_globs};
use crate::pb::config as pb;

/// Longest id or name a key may have in a snapshot (the control plane
/// allows far less); keeps the packed layout's offsets small.
pub const MAX_KEY_TEXT: usize = 1024;

/// One client key.
#[derive(Clone, PartialEq)]
pub struct ClientKey {
    key_hash: [u8; 32],
    /// The id, then the name: one allocation for both.
    text: Box<str>,
    id_len: u32,
    /// Milliseconds since the epoch; 0: never expires.
    expires_at_ms: i64,
    /// None for a key without an allow-list, limits or budgets.
    extra: Option<Arc<KeyExtra>>,
}

/// What only some keys have. Shared between the keys that have the same.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyExtra {
    /// Empty: every model is allowed.
    pub models: Vec<Glob>,
    /// The key's own budget.
    pub limits: Limits,
    /// Ids of the user's and team's budgets the key also counts toward.
    pub budgets: Vec<String>,
    /// The key's own tokens and cost limits are global (leases).
    pub global: bool,
}

static NO_LIMITS: Limits = Limits::NONE;

/// Never prints the hash (an offline guessing aid) beyond its first bytes.
impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("expires_at_ms", &self.expires_at_ms())
            .field("extra", &self.extra)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    pub fn id(&self) -> &str {
        self.text.get(..self.id_len as usize).unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.text.get(self.id_len as usize..).unwrap_or_default()
    }

    /// SHA-256 of the key the app presents.
    pub fn key_hash(&self) -> &[u8; 32] {
        &self.key_hash
    }

    /// Milliseconds since the epoch; `None` never expires.
    pub fn expires_at_ms(&self) -> Option<i64> {
        (self.expires_at_ms > 0).then_some(self.expires_at_ms)
    }

    /// The allow-list; empty: every model.
    pub fn models(&self) -> &[Glob] {
        self.extra.as_deref().map_or(&[], |e| &e.models)
    }

    /// The key's own budget.
    pub fn limits(&self) -> &Limits {
        self.extra.as_deref().map_or(&NO_LIMITS, |e| &e.limits)
    }

    /// The user's and team's budgets the key also counts toward.
    pub fn budgets(&self) -> &[String] {
        self.extra.as_deref().map_or(&[], |e| &e.budgets)
    }

    pub fn global(&self) -> bool {
        self.extra.as_deref().is_some_and(|e| e.global)
    }

    pub fn allows(&self, model: &str) -> bool {
        let models = self.models();
        models.is_empty() || models.iter().any(|g| g.matches(model))
    }

    /// Validates one key from a snapshot or a delta. `extras` shares the
    /// settings of keys converted with it.
    pub fn from_pb(k: pb::ClientKey, extras: &mut Extras) -> Result<Self, InvalidSnapshot> {
        let key_hash: [u8; 32] =
            k.key_hash
                .as_slice()
                .try_into()
                .map_err(|_| InvalidSnapshot::BadKeyHash {
                    name: clip(&k.name),
                    len: k.key_hash.len(),
                })?;
        if k.id.len() > MAX_KEY_TEXT || k.name.len() > MAX_KEY_TEXT {
            return Err(InvalidSnapshot::KeyTextTooLong(clip(&k.name)));
        }
        let extra = extras.get(&k.name, k.models, k.limits, k.budgets, k.global)?;
        let id_len = k.id.len() as u32;
        let mut text = k.id;
        text.push_str(&k.name);
        Ok(Self {
            key_hash,
            text: text.into_boxed_str(),
            id_len,
            expires_at_ms: k.expires_at_ms.max(0),
            extra,
        })
    }

    /// The key as the control plane sent it (for the disk copy): limits are
    /// always present, as the control plane compiles them.
    pub fn to_pb(&self) -> pb::ClientKey {
        let limits = self.limits();
        pb::ClientKey {
            id: self.id().to_string(),
            name: self.name().to_string(),
            key_hash: self.key_hash.to_vec(),
            models: self
                .models()
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            limits: Some(limits.to_pb()),
            expires_at_ms: self.expires_at_ms,
            budgets: self.budgets().to_vec(),
            global: self.global(),
        }
    }
}

/// Checks one key as [`ClientKey::from_pb`] would, without keeping it (the
/// control plane, before it publishes a key).
pub fn check_client_key(k: &pb::ClientKey) -> Result<(), InvalidSnapshot> {
    ClientKey::from_pb(k.clone(), &mut Extras::default()).map(drop)
}

fn clip(name: &str) -> String {
    name.chars().take(128).collect()
}

/// Settings shared between keys: the keys of one snapshot that have the
/// same allow-list, limits and budgets point to one copy.
#[derive(Default)]
pub struct Extras {
    seen: HashMap<Vec<u8>, Arc<KeyExtra>>,
}

impl Extras {
    fn get(
        &mut self,
        name: &str,
        models: Vec<String>,
        limits: Option<pb::Limits>,
        budgets: Vec<String>,
        global: bool,
    ) -> Result<Option<Arc<KeyExtra>>, InvalidSnapshot> {
        let owner = || format!("client key {:?}", clip(name));
        let limits = Limits::from_pb(&owner(), limits)?;
        if models.is_empty() && limits == Limits::NONE && budgets.is_empty() && !global {
            return Ok(None);
        }
        // The settings' own encoding identifies them exactly.
        let id = pb::ClientKey {
            models,
            limits: Some(limits.to_pb()),
            budgets,
            global,
            ..Default::default()
        };
        let bytes = id.encode_to_vec();
        if let Some(e) = self.seen.get(&bytes) {
            return Ok(Some(e.clone()));
        }
        let extra = Arc::new(KeyExtra {
            models: checked_globs(&owner(), id.models)?,
            limits,
            budgets: id.budgets,
            global,
        });
        self.seen.insert(bytes, extra.clone());
        Ok(Some(extra))
    }
}

/// Shards of the table: by the first byte of the hash.
const SHARDS: usize = 256;

/// Every key of a snapshot, by hash. Cloning shares the shards.
#[derive(Clone)]
pub struct KeyTable {
    shards: Vec<Arc<[ClientKey]>>,
    len: usize,
}

impl Default for KeyTable {
    fn default() -> Self {
        let empty: Arc<[ClientKey]> = Arc::from(Vec::new());
        Self {
            shards: vec![empty; SHARDS],
            len: 0,
        }
    }
}

impl std::fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyTable")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Why a delta's key changes do not apply to a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyChangeError {
    #[error("two keys have the same hash")]
    DuplicateHash,
    #[error("a removed key is not in this node's snapshot")]
    UnknownRemoved,
    #[error("a removed key hash is not 32 bytes")]
    BadRemovedHash,
}

fn shard_of(hash: &[u8; 32]) -> usize {
    usize::from(hash[0])
}

impl KeyTable {
    /// Indexes `keys`; two keys with one hash are refused.
    pub fn new(mut keys: Vec<ClientKey>) -> Result<Self, KeyChangeError> {
        keys.sort_unstable_by_key(|k| k.key_hash);
        if keys.windows(2).any(|w| w[0].key_hash == w[1].key_hash) {
            return Err(KeyChangeError::DuplicateHash);
        }
        let len = keys.len();
        let mut shards = Vec::with_capacity(SHARDS);
        let mut rest = keys.into_iter().peekable();
        for s in 0..SHARDS {
            let mut shard = Vec::new();
            while let Some(k) = rest.next_if(|k| shard_of(&k.key_hash) == s) {
                shard.push(k);
            }
            shards.push(Arc::from(shard));
        }
        Ok(Self { shards, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<&ClientKey> {
        let shard = self.shards.get(shard_of(hash))?;
        shard
            .binary_search_by(|k| k.key_hash.cmp(hash))
            .ok()
            .and_then(|i| shard.get(i))
    }

    /// Every key, in hash order.
    pub fn iter(&self) -> impl Iterator<Item = &ClientKey> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// A new table: this one without the keys `removed` names (each must be
    /// here), then with `upserted` put in (replacing a key of the same
    /// hash). Only the shards they touch are copied.
    pub fn with_changes(
        &self,
        removed: &[Vec<u8>],
        upserted: Vec<ClientKey>,
    ) -> Result<Self, KeyChangeError> {
        // Copies of the shards this delta touches, made on first touch.
        let mut work: HashMap<usize, Vec<ClientKey>> = HashMap::new();
        let copy = |s: usize| self.shards.get(s).map(|x| x.to_vec()).unwrap_or_default();
        for h in removed {
            let hash: &[u8; 32] = h
                .as_slice()
                .try_into()
                .map_err(|_| KeyChangeError::BadRemovedHash)?;
            let s = shard_of(hash);
            let keys = work.entry(s).or_insert_with(|| copy(s));
            let at = keys
                .binary_search_by(|k| k.key_hash.cmp(hash))
                .map_err(|_| KeyChangeError::UnknownRemoved)?;
            keys.remove(at);
        }
        let mut seen = std::collections::HashSet::with_capacity(upserted.len());
        for k in upserted {
            if !seen.insert(k.key_hash) {
                return Err(KeyChangeError::DuplicateHash);
            }
            let s = shard_of(&k.key_hash);
            let keys = work.entry(s).or_insert_with(|| copy(s));
            match keys.binary_search_by(|x| x.key_hash.cmp(&k.key_hash)) {
                Ok(at) => keys[at] = k,
                Err(at) => keys.insert(at, k),
            }
        }
        let mut shards = self.shards.clone();
        for (s, keys) in work {
            if let Some(slot) = shards.get_mut(s) {
                *slot = Arc::from(keys);
            }
        }
        let len = shards.iter().map(|s| s.len()).sum();
        Ok(Self { shards, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8, name: &str) -> pb::ClientKey {
        pb::ClientKey {
            id: format!("id-{name}"),
            name: name.into(),
            key_hash: vec![i; 32],
            limits: Some(pb::Limits::default()),
            ..Default::default()
        }
    }

    #[test]
    fn packed_fields_read_back_and_round_trip() {
        let mut extras = Extras::default();
        let plain = ClientKey::from_pb(key(1, "plain"), &mut extras).unwrap();
        assert_eq!((plain.id(), plain.name()), ("id-plain", "plain"));
        assert!(plain.extra.is_none() && plain.allows("anything"));
        assert_eq!(plain.limits(), &Limits::NONE);
        assert_eq!(plain.to_pb(), key(1, "plain"));

        let rich_pb = |i: u8, name: &str| pb::ClientKey {
            models: vec!["gpt-4o*".into()],
            limits: Some(pb::Limits {
                rpm: Some(60),
                cost_per_day: Some(2.5),
                when_store_down: "refuse".into(),
                ..Default::default()
            }),
            expires_at_ms: 99,
            budgets: vec!["user:u1".into()],
            global: true,
            ..key(i, name)
        };
        let a = ClientKey::from_pb(rich_pb(2, "a"), &mut extras).unwrap();
        let b = ClientKey::from_pb(rich_pb(3, "b"), &mut extras).unwrap();
        assert_eq!(a.to_pb(), rich_pb(2, "a"));
        assert!(a.allows("gpt-4o-mini") && !a.allows("claude"));
        assert_eq!((a.expires_at_ms(), a.global()), (Some(99), true));
        // The same settings are one copy.
        assert!(Arc::ptr_eq(
            a.extra.as_ref().unwrap(),
            b.extra.as_ref().unwrap()
        ));
    }

    #[test]
    fn bad_keys_are_refused() {
        let mut extras = Extras::default();
        let mut short = key(1, "short");
        short.key_hash.pop();
        assert!(matches!(
            ClientKey::from_pb(short, &mut extras),
            Err(InvalidSnapshot::BadKeyHash { len: 31, .. })
        ));
        let long = pb::ClientKey {
            name: "n".repeat(MAX_KEY_TEXT + 1),
            ..key(1, "x")
        };
        assert!(ClientKey::from_pb(long, &mut extras).is_err());
        let bad_glob = pb::ClientKey {
            models: vec!["a b".into()],
            ..key(1, "x")
        };
        assert!(ClientKey::from_pb(bad_glob, &mut extras).is_err());
    }

    #[test]
    fn table_lookups_and_changes_share_untouched_shards() {
        let mut extras = Extras::default();
        let keys: Vec<ClientKey> = (0..=255u8)
            .flat_map(|i| [(i, 0u8), (i, 1u8)])
            .map(|(i, j)| {
                let mut k = key(i, &format!("k{i}-{j}"));
                k.key_hash[31] = i.wrapping_add(j);
                ClientKey::from_pb(k, &mut extras).unwrap()
            })
            .collect();
        let t = KeyTable::new(keys.clone()).unwrap();
        assert_eq!(t.len(), 512);
        for k in &keys {
            assert_eq!(t.get(k.key_hash()).map(ClientKey::name), Some(k.name()));
        }
        assert!(t.get(&[7; 32]).is_some_and(|k| k.name() == "k7-0"));
        let mut missing = [7; 32];
        missing[31] = 2;
        assert!(t.get(&missing).is_none());

        let mut changed = key(9, "renamed");
        changed.key_hash[31] = 10;
        let changed = ClientKey::from_pb(changed, &mut extras).unwrap();
        let new = ClientKey::from_pb(key(9, "new"), &mut extras);
        // k9-0 has hash [9; 32]: removing it then adding "new" with it is fine.
        let t2 = t
            .with_changes(&[vec![9; 32]], vec![changed, new.unwrap()])
            .unwrap();
        assert_eq!(t2.len(), 512);
        assert_eq!(t2.get(&[9; 32]).unwrap().name(), "new");
        let mut h = [9; 32];
        h[31] = 10;
        assert_eq!(t2.get(&h).unwrap().name(), "renamed");
        assert!(Arc::ptr_eq(&t.shards[8], &t2.shards[8]));
        assert!(!Arc::ptr_eq(&t.shards[9], &t2.shards[9]));
        // The old table is untouched.
        assert_eq!(t.get(&[9; 32]).unwrap().name(), "k9-0");

        assert_eq!(
            t.with_changes(&[missing.to_vec()], vec![]).unwrap_err(),
            KeyChangeError::UnknownRemoved
        );
        assert_eq!(
            t.with_changes(&[vec![1; 3]], vec![]).unwrap_err(),
            KeyChangeError::BadRemovedHash
        );
        let dup = vec![keys[0].clone(), keys[0].clone()];
        assert_eq!(
            KeyTable::new(dup.clone()).unwrap_err(),
            KeyChangeError::DuplicateHash
        );
        assert_eq!(
            t.with_changes(&[], dup).unwrap_err(),
            KeyChangeError::DuplicateHash
        );
    }
}
