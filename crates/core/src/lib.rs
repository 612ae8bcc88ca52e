//! Drift classification for Django migration histories.
//!
//! This crate is pure: it never talks to a database. The PostgreSQL extension gathers three
//! facts (the stored [`Manifest`], one [`Catalog`] snapshot, the rows of `django_migrations`)
//! and asks [`evaluate`] what they mean. Everything here is tested with plain `cargo test`.

pub mod catalog;
pub mod evaluate;
pub mod ident;
pub mod manifest;
pub mod repair;

pub use catalog::{Catalog, IndexShape, Relation};
pub use evaluate::{evaluate, Evaluation, ObjectCheck, Prepared, Recorded, State, Verdict};
pub use manifest::{Effect, Manifest, ManifestError, Migration, TableRef};
pub use repair::{plan, plan_companions, Action, Plan, Step};

/// The key of the session-level advisory lock that serialises deploys on one database.
///
/// It is the ASCII text `djmigrat` read as a big-endian integer, so that it is easy to
/// recognise in `pg_locks` (classid `0x646a6d69`, objid `0x67726174`) and unlikely to collide
/// with application keys. Documented in the README; never change it, or two versions of the
/// tool would stop excluding each other.
pub const LOCK_KEY: i64 = i64::from_be_bytes(*b"djmigrat");

#[cfg(test)]
mod tests {
    #[test]
    fn lock_key_spells_its_name() {
        assert_eq!(super::LOCK_KEY, 0x646a_6d69_6772_6174);
        assert_eq!(&super::LOCK_KEY.to_be_bytes(), b"djmigrat");
    }
}
