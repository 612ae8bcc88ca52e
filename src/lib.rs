//! The `django_migrator` PostgreSQL extension: a thin adapter around `django_migrator_core`.
//!
//! It gathers facts through SPI (the stored manifest, `django_migrations`, one catalog
//! snapshot), hands them to the pure crate, and converts the verdicts into rows.

use pgrx::prelude::*;

mod error;
mod facts;
mod repair;

use django_migrator_core::Manifest;
use error::ExtError;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/lock.sql", name = "lock", requires = [lock_key]);
extension_sql_file!(
    "../sql/repair.sql",
    name = "repair_journal",
    requires = ["schema"]
);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// The documented key of the migration lock (the ASCII text `djmigrat` as a bigint).
#[pg_extern(immutable, parallel_safe)]
fn lock_key() -> i64 {
    django_migrator_core::LOCK_KEY
}

/// 0.1.0's `load_manifest(jsonb)`, which resolved names with the caller's search_path. Kept
/// only so that a database still at 0.1.0 keeps working with this library until `ALTER
/// EXTENSION django_migrator UPDATE`; the SQL of 0.2.0 does not refer to it.
#[pg_extern(sql = false)]
fn load_manifest(manifest: pgrx::JsonB) -> String {
    let manifest = parse_manifest(&manifest.0.to_string());
    let session = facts::session_resolution().unwrap_or_else(|e| e.raise());
    facts::store_manifest(&manifest, session).unwrap_or_else(|e| e.raise())
}

/// The work of `load_manifest(jsonb)` (a SQL function, see sql/load.sql): replaces this
/// database's expectations with `manifest`, atomically, and returns its digest.
///
/// The manifest arrives as the text of the jsonb value, so that every JSON document PostgreSQL
/// accepts (any depth, any number) is judged by the manifest parser, which rejects what it
/// cannot read with a clear error rather than failing in a datum conversion.
///
/// Pinned to `pg_catalog`: the caller's name resolution arrives as arguments instead —
/// `search_path` is the caller's `current_schemas(false)` (what Django's unqualified names
/// resolve against) and `migrations_schema` the schema where `django_migrations` is or will be.
#[pg_extern(volatile, parallel_unsafe, name = "_load_manifest")]
#[search_path(pg_catalog, pg_temp)]
fn load_manifest_resolved(
    manifest: &str,
    search_path: Vec<String>,
    migrations_schema: Option<String>,
) -> String {
    let manifest = parse_manifest(manifest);
    let migrations_schema = migrations_schema.unwrap_or_else(|| ExtError::NoSchema.raise());
    facts::store_manifest(&manifest, (search_path, migrations_schema)).unwrap_or_else(|e| e.raise())
}

fn parse_manifest(text: &str) -> Manifest {
    Manifest::parse(text).unwrap_or_else(|e| ExtError::from(e).raise())
}

extension_sql_file!(
    "../sql/load.sql",
    name = "load_manifest",
    requires = [load_manifest_resolved]
);

type ScanRow = (
    name!(app, String),
    name!(name, String),
    name!(kind, String),
    name!(recorded, bool),
    name!(present, i32),
    name!(missing, i32),
    name!(detail, String),
    name!(objects, pgrx::JsonB),
);

/// Drift rows only, in graph order, then orphan records. Read-only.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
// pgrx reads the column names from the literal tuple, so it cannot be a type alias here.
#[allow(clippy::type_complexity)]
fn scan() -> TableIterator<
    'static,
    (
        name!(app, String),
        name!(name, String),
        name!(kind, String),
        name!(recorded, bool),
        name!(present, i32),
        name!(missing, i32),
        name!(detail, String),
        name!(objects, pgrx::JsonB),
    ),
> {
    let evaluation = evaluate_now().unwrap_or_else(|e| e.raise());
    let rows: Vec<ScanRow> = evaluation
        .drift()
        .map(|v| {
            (
                v.app.clone(),
                v.name.clone(),
                v.state.as_str().to_owned(),
                v.recorded,
                v.present,
                v.missing,
                v.detail.clone(),
                pgrx::JsonB(serde_json::to_value(&v.objects).expect("checks serialise")),
            )
        })
        .collect();
    TableIterator::new(rows)
}

type StatusRow = (
    name!(app, String),
    name!(name, String),
    name!(recorded, bool),
    name!(applied_at, Option<pgrx::datum::TimestampWithTimeZone>),
    name!(state, String),
    name!(present, i32),
    name!(missing, i32),
);

/// One row per manifest migration, like `showmigrations`, with the physical truth.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
// pgrx reads the column names from the literal tuple, so it cannot be a type alias here.
#[allow(clippy::type_complexity)]
fn status() -> TableIterator<
    'static,
    (
        name!(app, String),
        name!(name, String),
        name!(recorded, bool),
        name!(applied_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(state, String),
        name!(present, i32),
        name!(missing, i32),
    ),
> {
    let evaluation = evaluate_now().unwrap_or_else(|e| e.raise());
    let rows: Vec<StatusRow> = evaluation
        .migrations
        .into_iter()
        .map(|v| {
            let applied_at = v
                .applied_at
                .and_then(|micros| pgrx::datum::TimestampWithTimeZone::try_from(micros).ok());
            (
                v.app,
                v.name,
                v.recorded,
                applied_at,
                v.state.as_str().to_owned(),
                v.present,
                v.missing,
            )
        })
        .collect();
    TableIterator::new(rows)
}

fn evaluate_now() -> Result<django_migrator_core::Evaluation, ExtError> {
    facts::gather().map(|(_, evaluation)| evaluation)
}

/// Records or un-records migrations where the catalog proves it, in one transaction under the
/// migration lock, journaled. With `dry_run`, only the plan.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn repair(
    dry_run: default!(bool, false),
) -> TableIterator<
    'static,
    (
        name!(action, String),
        name!(app, String),
        name!(name, String),
        name!(reason, String),
    ),
> {
    TableIterator::new(
        repair::repair(dry_run, django_migrator_core::plan).unwrap_or_else(|e| e.raise()),
    )
}

/// The companion step: records, without running them, the unrecorded migrations whose every
/// operation a fake detector claims and whose effects are all present. Same lock, checks and
/// journal as `repair()`.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn record_companions(
    dry_run: default!(bool, false),
) -> TableIterator<
    'static,
    (
        name!(action, String),
        name!(app, String),
        name!(name, String),
        name!(reason, String),
    ),
> {
    TableIterator::new(
        repair::repair(dry_run, django_migrator_core::plan_companions)
            .unwrap_or_else(|e| e.raise()),
    )
}

/// Restores `django_migrations` exactly as it was before repair `repair_id`, refusing if the
/// rows have changed since.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn undo_repair(
    repair_id: i64,
) -> TableIterator<
    'static,
    (
        name!(action, String),
        name!(app, String),
        name!(name, String),
    ),
> {
    TableIterator::new(repair::undo(repair_id).unwrap_or_else(|e| e.raise()))
}

// pgrx runs `#[pg_test]`s from the `tests` schema, and `#[pg_schema]` cannot take a file
// module, so the tests are included textually.
#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("tests.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
