//! User-facing errors of the extension, each with a real SQLSTATE.

use django_migrator_core::ManifestError;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ExtError {
    #[error("django_migrator: {0}")]
    Manifest(#[from] ManifestError),
    #[error("django_migrator: no manifest is loaded in this database")]
    NoManifest,
    #[error(
        "django_migrator: the session has no schema in its search_path to hold django_migrations"
    )]
    NoSchema,
    #[error("django_migrator: stored manifest is unreadable: {0}")]
    StoredManifest(ManifestError),
    #[error("django_migrator: the migration lock is held by {0}; no change was made")]
    LockHeld(String),
    #[error("django_migrator: {0}.django_migrations does not exist; nothing can be recorded before Django has created it")]
    NoMigrationsTable(String),
    #[error("django_migrator: repair would leave {0} recorded without a recorded dependency; nothing was changed")]
    Inconsistent(String),
    #[error("django_migrator: there is no repair {0} in django_migrator.repairs")]
    RepairNotFound(i64),
    #[error("django_migrator: cannot undo: {0}; nothing was changed")]
    UndoRefused(String),
    #[error("django_migrator: {0}")]
    Spi(#[from] pgrx::spi::SpiError),
}

/// At most this many characters of a message: a parser error quotes the offending value, which
/// may be megabytes long.
const MAX_MESSAGE_CHARS: usize = 1000;

fn shortened(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}… (message shortened)", &message[..cut]),
        None => message,
    }
}

impl ExtError {
    fn code(&self) -> PgSqlErrorCode {
        match self {
            ExtError::Manifest(ManifestError::Json(_)) => PgSqlErrorCode::ERRCODE_INVALID_JSON_TEXT,
            ExtError::Manifest(ManifestError::Version { .. }) => {
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED
            }
            ExtError::Manifest(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            ExtError::NoManifest => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            ExtError::NoSchema => PgSqlErrorCode::ERRCODE_INVALID_SCHEMA_NAME,
            ExtError::StoredManifest(_) => PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            ExtError::LockHeld(_) => PgSqlErrorCode::ERRCODE_LOCK_NOT_AVAILABLE,
            ExtError::NoMigrationsTable(_) => PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            ExtError::Inconsistent(_) => PgSqlErrorCode::ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION,
            ExtError::RepairNotFound(_) => PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
            ExtError::UndoRefused(_) => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            ExtError::Spi(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            ExtError::NoManifest | ExtError::StoredManifest(_) => Some(
                "Run `django-migrator check` in the Django project, which loads the manifest, \
                 or SELECT django_migrator.load_manifest(...) with the exporter's output.",
            ),
            ExtError::NoSchema => Some("Set search_path to the schema Django uses, e.g. public."),
            _ => None,
        }
    }

    /// Raises this error as a PostgreSQL ERROR; never returns.
    pub fn raise(self) -> ! {
        let mut report =
            ErrorReport::new(self.code(), shortened(self.to_string()), "django_migrator");
        if let Some(hint) = self.hint() {
            report = report.set_hint(hint);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("an ERROR report does not return")
    }
}
