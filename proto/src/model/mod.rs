//! Validated configuration: what a snapshot means once checked. Built from
//! `pb` types with `TryFrom`, so an invalid snapshot is refused as a whole
//! (and NACKed) instead of half-applied.

mod glob;
mod snapshot;

pub use glob::Glob;
pub use snapshot::{
    ClientKey, InvalidSnapshot, Limits, Price, Provider, ProviderKey, ProviderKind, Route,
    Snapshot, Strategy,
};
