//! Everything the extension reads from or writes to the database, through SPI.
//!
//! Every statement is parameterised and schema-qualified, with one exception that cannot be a
//! parameter: the schema of `django_migrations`, which is quoted with `quote_identifier`.

use std::cell::RefCell;
use std::rc::Rc;

use django_migrator_core::{
    Catalog, Evaluation, IndexShape, Manifest, Prepared, Recorded, Relation,
};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, SpiClient};

use crate::error::ExtError;

pub struct StoredManifest {
    pub prepared: Rc<Prepared>,
    pub digest: String,
    pub search_path: Vec<String>,
    pub migrations_schema: String,
}

/// How the calling session resolves Django's unqualified names: its `current_schemas(false)`
/// and the schema holding (or about to hold) `django_migrations`. Only for 0.1.0's entry
/// point; 0.2.0's SQL wrapper passes both in.
pub fn session_resolution() -> Result<(Vec<String>, String), ExtError> {
    Spi::connect(|client| {
        let session = client
            .select(
                "SELECT pg_catalog.current_schemas(false)::text[],
                        (SELECT n.nspname::text
                           FROM pg_catalog.pg_class c
                           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE c.oid = pg_catalog.to_regclass('django_migrations')),
                        pg_catalog.current_schema()::text",
                Some(1),
                &[],
            )?
            .first();
        let search_path: Vec<String> = session.get(1)?.unwrap_or_default();
        let migrations_schema: String = match session.get::<String>(2)? {
            Some(schema) => schema,
            None => session.get::<String>(3)?.ok_or(ExtError::NoSchema)?,
        };
        Ok((search_path, migrations_schema))
    })
}

pub fn store_manifest(
    manifest: &Manifest,
    (search_path, migrations_schema): (Vec<String>, String),
) -> Result<String, ExtError> {
    let digest = manifest.digest();
    let body = serde_json::to_string(manifest).expect("a manifest always serialises");
    Spi::connect_mut(|client| {
        client.update(
            "INSERT INTO django_migrator.manifest AS m
                    (singleton, alias, digest, loaded_at, loaded_by, migrations, effects,
                     search_path, migrations_schema, body)
             VALUES (true, $1, $2, pg_catalog.now(), CURRENT_USER, $3, $4, $5, $6, $7::pg_catalog.jsonb)
             ON CONFLICT (singleton) DO UPDATE
                SET alias = excluded.alias, digest = excluded.digest,
                    loaded_at = excluded.loaded_at, loaded_by = excluded.loaded_by,
                    migrations = excluded.migrations, effects = excluded.effects,
                    search_path = excluded.search_path,
                    migrations_schema = excluded.migrations_schema, body = excluded.body",
            None,
            &[
                manifest.alias.clone().into(),
                digest.clone().into(),
                (manifest.migrations.len() as i32).into(),
                (manifest.effect_count() as i32).into(),
                search_path.into(),
                migrations_schema.into(),
                body.into(),
            ],
        )?;
        Ok(digest)
    })
}

impl StoredManifest {
    pub fn manifest(&self) -> &Manifest {
        self.prepared.manifest()
    }
}

thread_local! {
    /// The last manifest this backend parsed, with its object model, by digest. Parsing and
    /// modelling a large manifest costs more than the catalog read; monitoring scans the same
    /// manifest again and again. The digest is of the content, and only load_manifest() writes
    /// the table, so an equal digest means an equal manifest.
    static PREPARED: RefCell<Option<(String, Rc<Prepared>)>> = const { RefCell::new(None) };
}

pub fn load_stored_manifest() -> Result<StoredManifest, ExtError> {
    Spi::connect(|client| {
        let table = client.select(
            "SELECT m.digest, m.search_path, m.migrations_schema FROM django_migrator.manifest m",
            Some(1),
            &[],
        )?;
        if table.is_empty() {
            return Err(ExtError::NoManifest);
        }
        let row = table.first();
        let digest: String = row.get(1)?.unwrap_or_default();
        let search_path: Vec<String> = row.get(2)?.unwrap_or_default();
        let migrations_schema: String = row.get(3)?.ok_or(ExtError::NoManifest)?;
        let cached = PREPARED.with_borrow(|cache| {
            cache
                .as_ref()
                .filter(|(d, _)| *d == digest)
                .map(|(_, prepared)| Rc::clone(prepared))
        });
        let prepared = match cached {
            Some(prepared) => prepared,
            None => {
                let body: String = client
                    .select(
                        "SELECT m.body::text FROM django_migrator.manifest m",
                        Some(1),
                        &[],
                    )?
                    .first()
                    .get(1)?
                    .ok_or(ExtError::NoManifest)?;
                let manifest = Manifest::parse(&body).map_err(ExtError::StoredManifest)?;
                let prepared = Rc::new(Prepared::new(manifest));
                PREPARED.set(Some((digest.clone(), Rc::clone(&prepared))));
                prepared
            }
        };
        Ok(StoredManifest {
            prepared,
            digest,
            search_path,
            migrations_schema,
        })
    })
}

pub fn migrations_table_exists(schema: &str) -> Result<bool, ExtError> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = $1 AND c.relname = 'django_migrations'
                           AND c.relkind IN ('r', 'p', 'v', 'f'))",
        &[schema.into()],
    )?
    .unwrap_or(false))
}

/// Everything a scan needs, and its verdicts.
pub fn gather() -> Result<(StoredManifest, Evaluation), ExtError> {
    let stored = load_stored_manifest()?;
    let recorded = read_recorded(&stored.migrations_schema)?;
    let mut schemas = stored.search_path.clone();
    schemas.extend(stored.manifest().explicit_schemas());
    let catalog = read_catalog(stored.search_path.clone(), &schemas)?;
    let evaluation = stored.prepared.evaluate(&catalog, &recorded);
    Ok((stored, evaluation))
}

/// The rows of `django_migrations`; none when Django has not created the table yet.
pub fn read_recorded(schema: &str) -> Result<Recorded, ExtError> {
    if !migrations_table_exists(schema)? {
        return Ok(Recorded::default());
    }
    Spi::connect(|client| {
        // The one name that cannot be a parameter; quoted, never interpolated raw.
        let query = format!(
            "SELECT app::text, name::text, applied::timestamptz FROM {}.django_migrations",
            quote_identifier(schema)
        );
        let mut rows = Vec::new();
        for row in client.select(query.as_str(), None, &[])? {
            let app: Option<String> = row.get(1)?;
            let name: Option<String> = row.get(2)?;
            let applied: Option<TimestampWithTimeZone> = row.get(3)?;
            if let (Some(app), Some(name)) = (app, name) {
                rows.push((app, name, applied.map(i64::from)));
            }
        }
        Ok(Recorded::new(rows))
    })
}

/// One set-based read of every relation, column, index and constraint in `schemas`.
pub fn read_catalog(search_path: Vec<String>, schemas: &[String]) -> Result<Catalog, ExtError> {
    Spi::connect(|client| {
        let relations = catalog_rows(client, schemas)?;
        Ok(Catalog::new(search_path, relations))
    })
}

fn catalog_rows(client: &SpiClient<'_>, schemas: &[String]) -> Result<Vec<Relation>, ExtError> {
    let table = client.select(
        "SELECT n.nspname::text, c.relname::text,
                ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                       ORDER BY a.attnum),
                ARRAY(SELECT i.relname::text FROM pg_catalog.pg_index x
                        JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
                       WHERE x.indrelid = c.oid
                      UNION
                      SELECT k.conname::text FROM pg_catalog.pg_constraint k
                       WHERE k.conrelid = c.oid),
                -- Plain indexes by key columns: 'u' or 'i', then the columns as a JSON array.
                ARRAY(SELECT CASE WHEN x.indisunique THEN 'u' ELSE 'i' END
                             || pg_catalog.array_to_json(ARRAY(
                                    SELECT a.attname::text
                                      FROM pg_catalog.unnest((x.indkey::pg_catalog.int2[])[0:x.indnkeyatts - 1])
                                           WITH ORDINALITY AS k(attnum, ord)
                                      JOIN pg_catalog.pg_attribute a
                                        ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                                     ORDER BY k.ord))::text
                        FROM pg_catalog.pg_index x
                       WHERE x.indrelid = c.oid AND x.indpred IS NULL AND x.indexprs IS NULL)
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ANY ($1::pg_catalog.name[])
            AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
        None,
        &[schemas.to_vec().into()],
    )?;
    let mut relations = Vec::with_capacity(table.len());
    for row in table {
        relations.push(Relation {
            schema: row.get(1)?.unwrap_or_default(),
            name: row.get(2)?.unwrap_or_default(),
            columns: row.get(3)?.unwrap_or_default(),
            objects: row.get(4)?.unwrap_or_default(),
            indexes: row
                .get::<Vec<String>>(5)?
                .unwrap_or_default()
                .iter()
                .filter_map(|encoded| index_shape(encoded))
                .collect(),
        });
    }
    Ok(relations)
}

/// Decodes `u["a","b"]` / `i["c"]` from the catalog query.
fn index_shape(encoded: &str) -> Option<IndexShape> {
    let unique = match encoded.as_bytes().first()? {
        b'u' => true,
        b'i' => false,
        _ => return None,
    };
    let columns = serde_json::from_str(&encoded[1..]).ok()?;
    Some(IndexShape { unique, columns })
}
