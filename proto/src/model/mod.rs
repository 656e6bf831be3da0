//! Validated configuration: what a snapshot means once checked. Built from
//! `pb` types with `TryFrom`, so an invalid snapshot is refused as a whole
//! (and NACKed) instead of half-applied.

pub mod budget;
mod glob;
mod keys;
pub mod names;
mod provider;
mod snapshot;

pub use budget::{Budget, Lease, Leases, Limits, StoreDown};
pub use glob::Glob;
pub use keys::{
    ClientKey, Extras, KeyChangeError, KeyExtra, KeyTable, MAX_KEY_TEXT, check_client_key,
};
pub use provider::{
    Affinity, KeyHealth, MAX_KEY_HEADERS, Provider, ProviderKey, ProviderKind, Strategy,
    check_key_header,
};
pub use snapshot::{
    InvalidSnapshot, MAX_SECRET, MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_MESSAGE, Price, Route, Snapshot,
};
