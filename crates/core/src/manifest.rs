//! The manifest: what one database must look like, migration by migration.
//!
//! The format is documented in `docs/manifest.md`. It is produced by the exporter inside the
//! user's Django project and loaded with `django_migrator.load_manifest(jsonb)`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest format this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// Upper bounds that keep a hostile or broken manifest from exhausting a backend.
pub const MAX_MIGRATIONS: usize = 200_000;
pub const MAX_NAME_BYTES: usize = 1_024;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("manifest format_version {found} is not supported (this build reads version {FORMAT_VERSION}); upgrade django-migrator and the extension together")]
    Version { found: u64 },
    #[error("manifest has no format_version; it was not produced by the django-migrator exporter")]
    MissingVersion,
    #[error("manifest alias must be a non-empty name")]
    EmptyAlias,
    #[error("manifest has {0} migrations, more than the limit of {MAX_MIGRATIONS}")]
    TooLarge(usize),
    #[error("migration {app}.{name} is listed twice")]
    Duplicate { app: String, name: String },
    #[error(
        "migration {app}.{name} depends on {dep_app}.{dep_name}, which is not in the manifest"
    )]
    UnknownDependency {
        app: String,
        name: String,
        dep_app: String,
        dep_name: String,
    },
    #[error("migration {app}.{name} depends on {dep_app}.{dep_name}, which comes later: migrations must be in dependency order (is there a cycle?)")]
    DependencyOrder {
        app: String,
        name: String,
        dep_app: String,
        dep_name: String,
    },
    #[error("{what} in migration {app}.{name} is empty, too long or contains a NUL byte")]
    BadName {
        what: &'static str,
        app: String,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u64,
    pub alias: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub django_version: Option<String>,
    pub migrations: Vec<Migration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub app: String,
    pub name: String,
    #[serde(default)]
    pub dependencies: Vec<(String, String)>,
    #[serde(default)]
    pub replaces: Vec<(String, String)>,
    #[serde(default = "default_true")]
    pub atomic: bool,
    /// Every operation is claimed by a fake detector of a companion app: the migration is
    /// recorded without running when its effects are present.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub companion: bool,
    #[serde(default)]
    pub effects: Vec<Effect>,
}

fn default_true() -> bool {
    true
}

/// A table as Django names it: `schema` only when `db_table` spells one out.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TableRef {
    #[serde(default)]
    pub schema: Option<String>,
    pub name: String,
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One schema change that a migration makes on this alias (see `docs/manifest.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Effect {
    CreateTable {
        #[serde(default)]
        op: String,
        table: TableRef,
        #[serde(default)]
        columns: Vec<String>,
    },
    DropTable {
        #[serde(default)]
        op: String,
        table: TableRef,
    },
    RenameTable {
        #[serde(default)]
        op: String,
        old: TableRef,
        new: TableRef,
    },
    AddColumn {
        #[serde(default)]
        op: String,
        table: TableRef,
        column: String,
    },
    DropColumn {
        #[serde(default)]
        op: String,
        table: TableRef,
        column: String,
    },
    RenameColumn {
        #[serde(default)]
        op: String,
        table: TableRef,
        old: String,
        new: String,
    },
    AlterColumn {
        #[serde(default)]
        op: String,
        table: TableRef,
        column: String,
    },
    AddIndex {
        #[serde(default)]
        op: String,
        table: TableRef,
        name: String,
        #[serde(default)]
        columns: Vec<String>,
    },
    DropIndex {
        #[serde(default)]
        op: String,
        table: TableRef,
        name: String,
    },
    RenameIndex {
        #[serde(default)]
        op: String,
        table: TableRef,
        old: String,
        new: String,
    },
    AddConstraint {
        #[serde(default)]
        op: String,
        table: TableRef,
        name: String,
    },
    DropConstraint {
        #[serde(default)]
        op: String,
        table: TableRef,
        name: String,
    },
    AlterUniqueTogether {
        #[serde(default)]
        op: String,
        table: TableRef,
        #[serde(default)]
        old: Vec<Vec<String>>,
        #[serde(default)]
        new: Vec<Vec<String>>,
    },
    AlterIndexTogether {
        #[serde(default)]
        op: String,
        table: TableRef,
        #[serde(default)]
        old: Vec<Vec<String>>,
        #[serde(default)]
        new: Vec<Vec<String>>,
    },
    Opaque {
        #[serde(default)]
        op: String,
        #[serde(default)]
        reason: String,
    },
}

impl Manifest {
    /// Parses and validates a manifest. Every error names what is wrong and where.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        // Check the version before the shape, so that a newer format gets a version error
        // rather than a confusing complaint about a field.
        let probe: VersionProbe = serde_json::from_str(text)?;
        match probe.format_version {
            None => return Err(ManifestError::MissingVersion),
            Some(FORMAT_VERSION) => {}
            Some(found) => return Err(ManifestError::Version { found }),
        }
        let manifest: Manifest = serde_json::from_str(text)?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        if self.alias.trim().is_empty() {
            return Err(ManifestError::EmptyAlias);
        }
        if self.migrations.len() > MAX_MIGRATIONS {
            return Err(ManifestError::TooLarge(self.migrations.len()));
        }
        let mut position: HashMap<(&str, &str), usize> = HashMap::new();
        for (index, migration) in self.migrations.iter().enumerate() {
            migration.validate_names()?;
            let key = (migration.app.as_str(), migration.name.as_str());
            if position.insert(key, index).is_some() {
                return Err(ManifestError::Duplicate {
                    app: migration.app.clone(),
                    name: migration.name.clone(),
                });
            }
        }
        for (index, migration) in self.migrations.iter().enumerate() {
            for (dep_app, dep_name) in &migration.dependencies {
                let error_fields = || {
                    (
                        migration.app.clone(),
                        migration.name.clone(),
                        dep_app.clone(),
                        dep_name.clone(),
                    )
                };
                match position.get(&(dep_app.as_str(), dep_name.as_str())) {
                    None => {
                        let (app, name, dep_app, dep_name) = error_fields();
                        return Err(ManifestError::UnknownDependency {
                            app,
                            name,
                            dep_app,
                            dep_name,
                        });
                    }
                    Some(&dep_index) if dep_index >= index => {
                        let (app, name, dep_app, dep_name) = error_fields();
                        return Err(ManifestError::DependencyOrder {
                            app,
                            name,
                            dep_app,
                            dep_name,
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// A stable digest of the manifest's content (hex SHA-256 of its canonical JSON).
    pub fn digest(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a manifest always serialises");
        let hash = Sha256::digest(&canonical);
        hash.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// How many effects the manifest expects, over all migrations.
    pub fn effect_count(&self) -> usize {
        self.migrations.iter().map(|m| m.effects.len()).sum()
    }

    /// Schemas named explicitly by a `db_table` (the `'"schema"."table"'` form).
    pub fn explicit_schemas(&self) -> Vec<String> {
        let mut schemas: Vec<String> = self
            .migrations
            .iter()
            .flat_map(|m| m.effects.iter())
            .flat_map(Effect::tables)
            .filter_map(|t| t.schema.clone())
            .collect();
        schemas.sort();
        schemas.dedup();
        schemas
    }
}

impl Migration {
    fn validate_names(&self) -> Result<(), ManifestError> {
        let bad = |what: &'static str| ManifestError::BadName {
            what,
            app: self.app.clone(),
            name: self.name.clone(),
        };
        let ok = |s: &str| !s.is_empty() && s.len() <= MAX_NAME_BYTES && !s.contains('\0');
        if !ok(&self.app) {
            return Err(bad("the app label"));
        }
        if !ok(&self.name) {
            return Err(bad("the migration name"));
        }
        for effect in &self.effects {
            for table in effect.tables() {
                if !ok(&table.name) || table.schema.as_deref().is_some_and(|s| !ok(s)) {
                    return Err(bad("a table name"));
                }
            }
            if effect.names().any(|n| !ok(n)) {
                return Err(bad("a column, index or constraint name"));
            }
        }
        Ok(())
    }
}

impl Effect {
    /// The tables this effect names.
    pub fn tables(&self) -> Vec<&TableRef> {
        use Effect::*;
        match self {
            CreateTable { table, .. }
            | DropTable { table, .. }
            | AddColumn { table, .. }
            | DropColumn { table, .. }
            | RenameColumn { table, .. }
            | AlterColumn { table, .. }
            | AddIndex { table, .. }
            | DropIndex { table, .. }
            | RenameIndex { table, .. }
            | AddConstraint { table, .. }
            | DropConstraint { table, .. }
            | AlterUniqueTogether { table, .. }
            | AlterIndexTogether { table, .. } => vec![table],
            RenameTable { old, new, .. } => vec![old, new],
            Opaque { .. } => vec![],
        }
    }

    /// The column, index and constraint names this effect names.
    fn names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        use Effect::*;
        match self {
            CreateTable { columns, .. } => Box::new(columns.iter().map(String::as_str)),
            AddColumn { column, .. } | DropColumn { column, .. } | AlterColumn { column, .. } => {
                Box::new(std::iter::once(column.as_str()))
            }
            RenameColumn { old, new, .. } | RenameIndex { old, new, .. } => {
                Box::new([old.as_str(), new.as_str()].into_iter())
            }
            AddIndex { name, .. }
            | DropIndex { name, .. }
            | AddConstraint { name, .. }
            | DropConstraint { name, .. } => Box::new(std::iter::once(name.as_str())),
            _ => Box::new(std::iter::empty()),
        }
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    format_version: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(migrations: &str) -> String {
        format!(r#"{{"format_version": 1, "alias": "default", "migrations": {migrations}}}"#)
    }

    #[test]
    fn parses_a_minimal_manifest() {
        let text = manifest(
            r#"[{"app": "shop", "name": "0001_initial", "effects": [
                {"kind": "create_table", "op": "CreateModel",
                 "table": {"schema": null, "name": "shop_item"}, "columns": ["id", "name"]}]}]"#,
        );
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.migrations.len(), 1);
        assert_eq!(m.effect_count(), 1);
        assert!(m.migrations[0].atomic);
    }

    #[test]
    fn digest_is_stable_and_content_sensitive() {
        let a = Manifest::parse(&manifest(r#"[{"app": "a", "name": "0001"}]"#)).unwrap();
        let b = Manifest::parse(&manifest(r#"[{"app": "a", "name": "0001"}]"#)).unwrap();
        let c = Manifest::parse(&manifest(r#"[{"app": "a", "name": "0002"}]"#)).unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
        assert_eq!(a.digest().len(), 64);
    }

    #[test]
    fn rejects_bad_input_naming_the_cause() {
        let cases: &[(&str, &str)] = &[
            ("not json", "manifest is not valid"),
            (r#"{"alias": "x", "migrations": []}"#, "no format_version"),
            (
                r#"{"format_version": 9, "alias": "x", "migrations": []}"#,
                "format_version 9 is not supported",
            ),
            (
                r#"{"format_version": 1, "alias": " ", "migrations": []}"#,
                "alias must be a non-empty",
            ),
            (
                &manifest(r#"[{"app": "a", "name": "1"}, {"app": "a", "name": "1"}]"#),
                "a.1 is listed twice",
            ),
            (
                &manifest(r#"[{"app": "a", "name": "1", "dependencies": [["b", "1"]]}]"#),
                "depends on b.1, which is not in the manifest",
            ),
            (
                &manifest(
                    r#"[{"app": "a", "name": "1", "dependencies": [["a", "2"]]}, {"app": "a", "name": "2"}]"#,
                ),
                "which comes later",
            ),
            (
                &manifest(r#"[{"app": "a", "name": "1", "dependencies": [["a", "1"]]}]"#),
                "which comes later",
            ),
            (
                &manifest(r#"[{"app": "a", "name": "1", "effects": [{"kind": "explode"}]}]"#),
                "unknown variant `explode`",
            ),
            (
                &manifest(r#"[{"app": "", "name": "1"}]"#),
                "the app label in migration .1",
            ),
            (
                &manifest(
                    r#"[{"app": "a", "name": "1", "effects": [{"kind": "add_column", "table": {"name": "t"}, "column": "a\u0000b"}]}]"#,
                ),
                "column, index or constraint name",
            ),
        ];
        for (input, expected) in cases {
            let error = Manifest::parse(input).expect_err(input).to_string();
            assert!(
                error.contains(expected),
                "{input}: got {error:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn explicit_schemas_are_collected_once() {
        let m = Manifest::parse(&manifest(
            r#"[{"app": "a", "name": "1", "effects": [
                {"kind": "create_table", "table": {"schema": "audit", "name": "t1"}},
                {"kind": "rename_table", "old": {"schema": "audit", "name": "t1"}, "new": {"schema": "archive", "name": "t2"}}]}]"#,
        ))
        .unwrap();
        assert_eq!(m.explicit_schemas(), vec!["archive", "audit"]);
    }
}
