//! Validated configuration: what a snapshot means once checked. Built from
//! `pb` types with `TryFrom`, so an invalid snapshot is refused as a whole
//! (and NACKed) instead of half-applied.

pub mod budget;
mod glob;
pub mod names;
mod snapshot;

pub use budget::{Budget, Lease, Leases, Limits, StoreDown};
pub use glob::Glob;
pub use snapshot::{
    Affinity, ClientKey, InvalidSnapshot, KeyHealth, MAX_KEY_HEADERS, MAX_SECRET,
    MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_MESSAGE, Price, Provider, ProviderKey, ProviderKind, Route,
    Snapshot, Strategy, check_key_header,
};
