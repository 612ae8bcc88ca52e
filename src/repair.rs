//! `repair()` and `undo_repair()`: the only functions that write `django_migrations`.
//!
//! Both run in the caller's transaction and take the migration lock at transaction level
//! (`pg_try_advisory_xact_lock`), which conflicts with another session's `lock()` and is held
//! until commit or rollback, so no deploy can read the history half-written. An error anywhere
//! rolls back every row written.

use django_migrator_core::{Action, Evaluation, Manifest, Plan, State};
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, SpiClient};
use pgrx::JsonB;
use serde_json::{json, Value};

use crate::error::ExtError;
use crate::facts::{self, StoredManifest};

/// The microseconds of `applied` in rows that repair inserts, so that a human reading
/// `django_migrations` can tell them from rows Django wrote.
pub const APPLIED_MARK: &str = "0.999999 second";

type RepairRow = (String, String, String, String);

/// Plans with `planner` (the repair rules, or the companion step) and, unless `dry_run`,
/// applies the plan: one write path and one journal for both.
pub fn repair(
    dry_run: bool,
    planner: fn(&Manifest, &Evaluation) -> Plan,
) -> Result<Vec<RepairRow>, ExtError> {
    if !dry_run {
        take_xact_lock()?;
    }
    let (stored, before) = facts::gather()?;
    let plan = planner(stored.manifest(), &before);
    if !dry_run && plan.writes() {
        apply(&stored, &before, &plan)?;
    }
    Ok(plan
        .steps
        .into_iter()
        .map(|s| (s.action.as_str().to_owned(), s.app, s.name, s.reason))
        .collect())
}

fn take_xact_lock() -> Result<(), ExtError> {
    let got = Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.pg_try_advisory_xact_lock($1)",
        &[django_migrator_core::LOCK_KEY.into()],
    )?
    .unwrap_or(false);
    if got {
        return Ok(());
    }
    let holder = Spi::get_one::<String>(
        "SELECT 'pid ' || h.pid || COALESCE(' (' || h.holder || ')', '')
           FROM django_migrator.lock_holder() h LIMIT 1",
    )?;
    Err(ExtError::LockHeld(
        holder.unwrap_or_else(|| "another session".into()),
    ))
}

fn migrations_table(schema: &str) -> String {
    // Identifiers cannot be parameters; this one is quoted, never interpolated raw.
    format!("{}.django_migrations", quote_identifier(schema))
}

fn apply(stored: &StoredManifest, before: &Evaluation, plan: &Plan) -> Result<(), ExtError> {
    let schema = &stored.migrations_schema;
    if !facts::migrations_table_exists(schema)? {
        return Err(ExtError::NoMigrationsTable(schema.clone()));
    }
    let table = migrations_table(schema);
    let (inserted, deleted) = Spi::connect_mut(|client| -> Result<_, ExtError> {
        let mut deleted = vec![];
        for (app, name) in &plan.delete {
            let query = format!(
                "DELETE FROM {table} WHERE app = $1 AND name = $2
                 RETURNING pg_catalog.jsonb_build_object('id', id, 'app', app, 'name', name, 'applied', applied)"
            );
            deleted.extend(returned_rows(
                client,
                &query,
                &[app.as_str().into(), name.as_str().into()],
            )?);
        }
        let mut inserted = vec![];
        for (app, name) in &plan.insert {
            let query = format!(
                "INSERT INTO {table} (app, name, applied)
                 SELECT $1, $2, pg_catalog.date_trunc('second', pg_catalog.now()) + interval '{APPLIED_MARK}'
                  WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE app = $1 AND name = $2)
                 RETURNING pg_catalog.jsonb_build_object('id', id, 'app', app, 'name', name, 'applied', applied)"
            );
            inserted.extend(returned_rows(
                client,
                &query,
                &[app.as_str().into(), name.as_str().into()],
            )?);
        }
        Ok((inserted, deleted))
    })?;

    // The plan promised a consistent history; check it on the rows as written, and roll
    // everything back if the promise does not hold.
    let (_, after) = facts::gather()?;
    let inconsistent = |e: &Evaluation| {
        e.migrations
            .iter()
            .filter(|v| v.state == State::InconsistentHistory)
            .map(|v| format!("{}.{}", v.app, v.name))
            .collect::<Vec<_>>()
    };
    let new: Vec<String> = inconsistent(&after)
        .into_iter()
        .filter(|k| !inconsistent(before).contains(k))
        .collect();
    if !new.is_empty() {
        return Err(ExtError::Inconsistent(new.join(", ")));
    }

    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|s| json!({"action": s.action.as_str(), "app": s.app, "name": s.name, "reason": s.reason}))
        .collect();
    let id = Spi::get_one_with_args::<i64>(
        "SELECT django_migrator._journal_append($1, $2, $3, $4, $5, $6)",
        &[
            stored.manifest().alias.as_str().into(),
            stored.digest.as_str().into(),
            schema.as_str().into(),
            JsonB(Value::Array(steps)).into(),
            JsonB(Value::Array(inserted)).into(),
            JsonB(Value::Array(deleted)).into(),
        ],
    )?
    .unwrap_or_default();
    let writes = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::FakeApply | Action::FakeRewind))
        .count();
    pgrx::notice!(
        "django_migrator: repair {id} wrote {writes} change(s) to django_migrations; undo with SELECT * FROM django_migrator.undo_repair({id})"
    );
    Ok(())
}

fn returned_rows(
    client: &mut SpiClient<'_>,
    query: &str,
    args: &[pgrx::datum::DatumWithOid<'_>],
) -> Result<Vec<Value>, ExtError> {
    let mut rows = vec![];
    for row in client.update(query, None, args)? {
        if let Some(JsonB(value)) = row.get::<JsonB>(1)? {
            rows.push(value);
        }
    }
    Ok(rows)
}

type UndoRow = (String, String, String);

pub fn undo(repair_id: i64) -> Result<Vec<UndoRow>, ExtError> {
    take_xact_lock()?;
    let entry = Spi::connect(|client| -> Result<_, ExtError> {
        let table = client.select(
            "SELECT j.migrations_schema, j.inserted, j.deleted, j.undone_at::text
               FROM django_migrator.repair_journal j WHERE j.id = $1 FOR UPDATE",
            Some(1),
            &[repair_id.into()],
        )?;
        if table.is_empty() {
            return Err(ExtError::RepairNotFound(repair_id));
        }
        let row = table.first();
        let undone: Option<String> = row.get(4)?;
        if let Some(at) = undone {
            return Err(ExtError::UndoRefused(format!(
                "repair {repair_id} was already undone at {at}"
            )));
        }
        let schema: String = row.get(1)?.unwrap_or_default();
        let inserted = row.get::<JsonB>(2)?.map(|j| j.0).unwrap_or(Value::Null);
        let deleted = row.get::<JsonB>(3)?.map(|j| j.0).unwrap_or(Value::Null);
        Ok((schema, inserted, deleted))
    })?;
    let (schema, inserted, deleted) = entry;
    let table = migrations_table(&schema);
    let rows = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let text = |r: &Value, k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };

    let mut out = vec![];
    Spi::connect_mut(|client| -> Result<(), ExtError> {
        // Refuse unless the rows the repair wrote are still exactly as it wrote them, and the
        // rows it deleted have not come back: otherwise someone changed the history since.
        for r in rows(&inserted) {
            let still = client
                .select(
                    &format!(
                        "SELECT pg_catalog.count(*) FROM {table}
                          WHERE id = ($1::pg_catalog.jsonb ->> 'id')::bigint
                            AND app = $1::pg_catalog.jsonb ->> 'app' AND name = $1::pg_catalog.jsonb ->> 'name'
                            AND applied = ($1::pg_catalog.jsonb ->> 'applied')::timestamptz"
                    ),
                    Some(1),
                    &[JsonB(r.clone()).into()],
                )?
                .first()
                .get::<i64>(1)?
                .unwrap_or(0);
            if still != 1 {
                return Err(ExtError::UndoRefused(format!(
                    "the row it inserted for {}.{} has changed or is gone since repair {repair_id}",
                    text(&r, "app"),
                    text(&r, "name")
                )));
            }
        }
        for r in rows(&deleted) {
            let back = client
                .select(
                    &format!(
                        "SELECT pg_catalog.count(*) FROM {table}
                          WHERE (app = $1::pg_catalog.jsonb ->> 'app' AND name = $1::pg_catalog.jsonb ->> 'name')
                             OR id = ($1::pg_catalog.jsonb ->> 'id')::bigint"
                    ),
                    Some(1),
                    &[JsonB(r.clone()).into()],
                )?
                .first()
                .get::<i64>(1)?
                .unwrap_or(0);
            if back != 0 {
                return Err(ExtError::UndoRefused(format!(
                    "{}.{} (or its row id) is recorded again since repair {repair_id}",
                    text(&r, "app"),
                    text(&r, "name")
                )));
            }
        }
        for r in rows(&inserted) {
            client.update(
                &format!("DELETE FROM {table} WHERE id = ($1::pg_catalog.jsonb ->> 'id')::bigint"),
                None,
                &[JsonB(r.clone()).into()],
            )?;
            out.push(("delete".to_owned(), text(&r, "app"), text(&r, "name")));
        }
        for r in rows(&deleted) {
            client.update(
                &format!(
                    "INSERT INTO {table} (id, app, name, applied)
                     VALUES (($1::pg_catalog.jsonb ->> 'id')::bigint, $1::pg_catalog.jsonb ->> 'app',
                             $1::pg_catalog.jsonb ->> 'name', ($1::pg_catalog.jsonb ->> 'applied')::timestamptz)"
                ),
                None,
                &[JsonB(r.clone()).into()],
            )?;
            out.push(("restore".to_owned(), text(&r, "app"), text(&r, "name")));
        }
        client.update(
            "SELECT django_migrator._journal_mark_undone($1)",
            None,
            &[repair_id.into()],
        )?;
        Ok(())
    })?;
    Ok(out)
}
