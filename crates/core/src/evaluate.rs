//! Classifies every migration of a manifest against `django_migrations` and the catalog.
//!
//! Each effect of a migration becomes *claims* about named objects (a table, a column, an
//! index or constraint): "present under this name" or "absent under this name". Objects keep
//! their identity through renames, so a claim follows its object:
//!
//! - a claim is **superseded** when a later event on the same object (a rename or a drop) belongs
//!   to a migration that is effectively applied; then the later migration owns the evidence;
//! - a claim about a column, index or constraint counts only when its table is there: a missing
//!   table is the fault of whoever owns the table, not of every migration that touched it;
//! - only a dropped object proves something by its absence, and only where it is known to have
//!   existed: a dropped column, index or constraint when its table is there; a dropped table when
//!   the migration that last named it is recorded. The old name of a renamed object counts only
//!   against the rename (it should be gone but is there), never for it: a name that is not there
//!   may never have existed;
//! - migrations are decided in reverse graph order, because whether a claim is superseded depends
//!   on whether *later* migrations are effectively applied. One drifted migration therefore never
//!   makes its neighbours look drifted.
//!
//! A migration is effectively applied when it is recorded, or when it is unrecorded but some of
//! its effects are present. A recorded rename whose new name is missing still supersedes the
//! creator's claim: the history says the rename happened, so the rename is what drifted.

use std::collections::HashMap;

use serde::Serialize;

use crate::catalog::Catalog;
use crate::ident::physical_name;
use crate::manifest::{Effect, Manifest, TableRef};

/// The rows of `django_migrations`: (app, name) → `applied`, as an opaque ordered number (the
/// extension passes PostgreSQL's `TimestampTz` microseconds through unchanged).
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    rows: HashMap<(String, String), Option<i64>>,
}

impl Recorded {
    pub fn new(rows: impl IntoIterator<Item = (String, String, Option<i64>)>) -> Recorded {
        Recorded {
            rows: rows
                .into_iter()
                .map(|(app, name, applied)| ((app, name), applied))
                .collect(),
        }
    }

    fn get(&self, app: &str, name: &str) -> Option<&Option<i64>> {
        self.rows.get(&(app.to_owned(), name.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Applied,
    Pending,
    UnrecordedPresent,
    HalfApplied,
    RecordedMissing,
    InconsistentHistory,
    OrphanRecord,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::UnrecordedPresent => "unrecorded_present",
            State::HalfApplied => "half_applied",
            State::RecordedMissing => "recorded_missing",
            State::InconsistentHistory => "inconsistent_history",
            State::OrphanRecord => "orphan_record",
        }
    }

    /// Whether `scan()` reports this state as a drift row.
    pub fn is_drift(self) -> bool {
        !matches!(self, State::Applied | State::Pending)
    }
}

/// One object that a migration's effects were checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectCheck {
    /// `table`, `column`, `index` or `constraint`.
    pub object: &'static str,
    /// `table`, or `table.child` for columns, indexes and constraints.
    pub name: String,
    /// `present` or `absent`: what the migration's effect leaves behind.
    pub expected: &'static str,
    /// Whether the catalog agrees.
    pub ok: bool,
}

impl ObjectCheck {
    fn describe(&self) -> String {
        match (self.expected, self.ok) {
            ("present", true) => format!("{} {} is present", self.object, self.name),
            ("present", false) => format!("{} {} is missing", self.object, self.name),
            (_, true) => format!("{} {} is gone", self.object, self.name),
            (_, false) => format!("{} {} still exists", self.object, self.name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub app: String,
    pub name: String,
    pub recorded: bool,
    pub applied_at: Option<i64>,
    pub state: State,
    /// Checkable effects that are as the migration leaves them.
    pub present: i32,
    /// Checkable effects that are not.
    pub missing: i32,
    pub detail: String,
    pub objects: Vec<ObjectCheck>,
}

#[derive(Debug, Default)]
pub struct Evaluation {
    /// One verdict per manifest migration, in graph order.
    pub migrations: Vec<Verdict>,
    /// `django_migrations` rows with no migration in the manifest, sorted by app and name.
    pub orphans: Vec<Verdict>,
}

impl Evaluation {
    /// The rows of `scan()`: drifted migrations in graph order, then orphan records.
    pub fn drift(&self) -> impl Iterator<Item = &Verdict> {
        self.migrations
            .iter()
            .filter(|v| v.state.is_drift())
            .chain(self.orphans.iter())
    }
}

/// Classifies every migration of `manifest`.
pub fn evaluate(manifest: &Manifest, catalog: &Catalog, recorded: &Recorded) -> Evaluation {
    Prepared::new(manifest.clone()).evaluate(catalog, recorded)
}

/// A manifest with its object model built: everything about a scan that depends on the
/// manifest alone, so that repeated scans (monitoring polls) skip it.
pub struct Prepared {
    manifest: Manifest,
    model: Model,
}

impl Prepared {
    pub fn new(manifest: Manifest) -> Prepared {
        let model = Model::build(&manifest);
        Prepared { manifest, model }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Classifies every migration against one catalog snapshot and history.
    pub fn evaluate(&self, catalog: &Catalog, recorded: &Recorded) -> Evaluation {
        evaluate_prepared(&self.manifest, &self.model, catalog, recorded)
    }
}

fn evaluate_prepared(
    manifest: &Manifest,
    model: &Model,
    catalog: &Catalog,
    recorded: &Recorded,
) -> Evaluation {
    let count = manifest.migrations.len();

    let mut is_recorded = Vec::with_capacity(count);
    let mut applied_at = Vec::with_capacity(count);
    for migration in &manifest.migrations {
        let own = recorded.get(&migration.app, &migration.name);
        // Django records a squashed migration's replaced names when it applies the squash, and
        // the squash itself once all of them are recorded: either form means "applied".
        let replaced: Option<Vec<&Option<i64>>> = if migration.replaces.is_empty() {
            None
        } else {
            migration
                .replaces
                .iter()
                .map(|(app, name)| recorded.get(app, name))
                .collect()
        };
        is_recorded.push(own.is_some() || replaced.is_some());
        applied_at.push(match (own, replaced) {
            (Some(at), _) => *at,
            (None, Some(ats)) => ats.into_iter().flatten().max().copied(),
            (None, None) => None,
        });
    }

    // Reverse graph order: a claim's fate depends only on migrations after it.
    let mut effective = vec![false; count];
    let mut verdicts: Vec<Option<Verdict>> = vec![None; count];
    for index in (0..count).rev() {
        let checks = model.check_migration(index, catalog, &effective, &is_recorded);
        let present = checks.iter().filter(|c| c.ok).count() as i32;
        let missing = checks.len() as i32 - present;
        let state = match (is_recorded[index], present, missing) {
            (true, _, 0) => State::Applied,
            (true, 0, _) => State::RecordedMissing,
            (true, _, _) => State::HalfApplied,
            (false, 0, _) => State::Pending,
            (false, _, 0) => State::UnrecordedPresent,
            (false, _, _) => State::HalfApplied,
        };
        effective[index] = is_recorded[index] || present > 0;
        let migration = &manifest.migrations[index];
        verdicts[index] = Some(Verdict {
            app: migration.app.clone(),
            name: migration.name.clone(),
            recorded: is_recorded[index],
            applied_at: applied_at[index],
            state,
            present,
            missing,
            detail: String::new(),
            objects: checks,
        });
    }
    let mut migrations: Vec<Verdict> = verdicts.into_iter().map(Option::unwrap).collect();

    // A recorded migration whose dependency is neither recorded nor proven present is what
    // Django reports as InconsistentMigrationHistory. A dependency that is present but
    // unrecorded is already reported itself; repairing it repairs this one too.
    let position: HashMap<(&str, &str), usize> = manifest
        .migrations
        .iter()
        .enumerate()
        .map(|(i, m)| ((m.app.as_str(), m.name.as_str()), i))
        .collect();
    for (index, migration) in manifest.migrations.iter().enumerate() {
        if migrations[index].state != State::Applied {
            continue;
        }
        let unmet: Vec<String> = migration
            .dependencies
            .iter()
            .filter(|(app, name)| {
                let dep = position[&(app.as_str(), name.as_str())];
                !is_recorded[dep] && !effective[dep]
            })
            .map(|(app, name)| format!("{app}.{name}"))
            .collect();
        if !unmet.is_empty() {
            let verdict = &mut migrations[index];
            verdict.state = State::InconsistentHistory;
            verdict.detail = format!("recorded, but its dependency {} is not", unmet.join(", "));
        }
    }
    for verdict in &mut migrations {
        if verdict.detail.is_empty() {
            verdict.detail = describe(verdict);
        }
    }

    Evaluation {
        orphans: orphans(manifest, recorded),
        migrations,
    }
}

fn describe(verdict: &Verdict) -> String {
    // Lead with what is wrong; the full list is in `objects`.
    let list = |ok: bool| {
        let items: Vec<String> = verdict
            .objects
            .iter()
            .filter(|c| c.ok == ok)
            .map(ObjectCheck::describe)
            .collect();
        match items.len() {
            0..=3 => items.join("; "),
            n => format!("{}; and {} more", items[..3].join("; "), n - 3),
        }
    };
    match verdict.state {
        State::RecordedMissing => format!("recorded, but {}", list(false)),
        State::UnrecordedPresent => format!("not recorded, but {}", list(true)),
        State::HalfApplied => format!(
            "{}, {}: {} of {} checkable effects present; manual recovery needed",
            if verdict.recorded {
                "recorded"
            } else {
                "not recorded"
            },
            list(false),
            verdict.present,
            verdict.present + verdict.missing,
        ),
        State::Applied if verdict.objects.is_empty() => "recorded; no checkable effect".into(),
        State::Applied => "recorded and present".into(),
        State::Pending if verdict.objects.is_empty() => "not recorded; no checkable effect".into(),
        State::Pending => "not recorded and not present".into(),
        State::InconsistentHistory | State::OrphanRecord => String::new(),
    }
}

fn orphans(manifest: &Manifest, recorded: &Recorded) -> Vec<Verdict> {
    let mut known: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    for migration in &manifest.migrations {
        known.insert((&migration.app, &migration.name));
        for (app, name) in &migration.replaces {
            known.insert((app, name));
        }
    }
    let mut rows: Vec<Verdict> = recorded
        .rows
        .iter()
        .filter(|((app, name), _)| !known.contains(&(app.as_str(), name.as_str())))
        .map(|((app, name), applied)| Verdict {
            app: app.clone(),
            name: name.clone(),
            recorded: true,
            applied_at: *applied,
            state: State::OrphanRecord,
            present: 0,
            missing: 0,
            detail: "recorded, but no migration file exists for it".into(),
            objects: vec![],
        })
        .collect();
    rows.sort_by(|a, b| (&a.app, &a.name).cmp(&(&b.app, &b.name)));
    rows
}

// ---------------------------------------------------------------------------------------------
// The object model: identities, their naming events, and the claims migrations make.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ChildKind {
    Column,
    Index,
    Constraint,
}

impl ChildKind {
    fn label(self) -> &'static str {
        match self {
            ChildKind::Column => "column",
            ChildKind::Index => "index",
            ChildKind::Constraint => "constraint",
        }
    }

    /// Indexes and constraints share one namespace per table (see `Relation::objects`).
    fn namespace(self) -> u8 {
        match self {
            ChildKind::Column => 0,
            ChildKind::Index | ChildKind::Constraint => 1,
        }
    }
}

/// One naming event: the object takes a name (`Some`) or is dropped (`None`).
#[derive(Debug)]
struct Event<N> {
    seq: usize,
    migration: usize,
    to: Option<N>,
}

#[derive(Debug)]
struct TableObject {
    initial: TableRef,
    events: Vec<Event<TableRef>>,
}

#[derive(Debug)]
struct ChildObject {
    table: usize,
    kind: ChildKind,
    initial: String,
    events: Vec<Event<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum NameKey {
    Table(TableRef),
    Child(usize, u8, String),
}

#[derive(Debug)]
enum Target {
    Table {
        id: usize,
        name: TableRef,
    },
    Child {
        id: usize,
        name: String,
    },
    /// A `unique_together` / `index_together` entry: an index over these column identities.
    ColumnSet {
        key: SetKey,
    },
}

/// (table identity, unique, sorted column identities).
type SetKey = (usize, bool, Vec<usize>);

#[derive(Debug)]
struct Claim {
    seq: usize,
    target: Target,
    present: bool,
    /// Whether a satisfied absence claim is evidence (see the module documentation).
    absence_proves: bool,
    /// For a dropped table: the migration that last named it. The table's absence is evidence
    /// of the drop only when that migration is recorded, i.e. the table is known to have existed.
    existed_after: Option<usize>,
}

#[derive(Default)]
struct Model {
    tables: Vec<TableObject>,
    children: Vec<ChildObject>,
    table_ids: HashMap<TableRef, usize>,
    child_ids: HashMap<(usize, u8, String), usize>,
    /// Every event that gives a name to something, by name: an absence claim on that name is
    /// void once something else effectively takes the name.
    name_takers: HashMap<NameKey, Vec<(usize, usize)>>,
    /// When each together-set was removed again, as (seq, migration).
    set_removals: HashMap<SetKey, Vec<(usize, usize)>>,
    claims: Vec<Vec<Claim>>,
    seq: usize,
}

fn normal(table: &TableRef) -> TableRef {
    TableRef {
        schema: table.schema.as_deref().map(|s| physical_name(s).to_owned()),
        name: physical_name(&table.name).to_owned(),
    }
}

impl Model {
    fn build(manifest: &Manifest) -> Model {
        let mut model = Model {
            claims: Vec::with_capacity(manifest.migrations.len()),
            ..Model::default()
        };
        for (index, migration) in manifest.migrations.iter().enumerate() {
            model.claims.push(Vec::new());
            for effect in &migration.effects {
                model.seq += 1;
                model.apply(index, effect);
            }
        }
        model
    }

    fn apply(&mut self, m: usize, effect: &Effect) {
        use Effect::*;
        match effect {
            CreateTable { table, columns, .. } => {
                let id = self.create_table(m, table);
                for column in columns {
                    self.create_child(m, id, ChildKind::Column, column);
                }
            }
            DropTable { table, .. } => {
                let id = self.table_id(table);
                let named_by = self.tables[id].events.last().map(|e| e.migration);
                self.table_event(m, id, None);
                self.table_ids.remove(&normal(table));
                let name = normal(table);
                self.claim(m, Target::Table { id, name }, false);
                if let Some(claim) = self.claims[m].last_mut() {
                    claim.existed_after = named_by;
                }
            }
            RenameTable { old, new, .. } => {
                let id = self.table_id(old);
                self.table_ids.remove(&normal(old));
                self.table_ids.insert(normal(new), id);
                self.table_event(m, id, Some(normal(new)));
                self.claim(
                    m,
                    Target::Table {
                        id,
                        name: normal(new),
                    },
                    true,
                );
                self.claim(
                    m,
                    Target::Table {
                        id,
                        name: normal(old),
                    },
                    false,
                );
            }
            AddColumn { table, column, .. } => {
                let table = self.table_id(table);
                self.create_child(m, table, ChildKind::Column, column);
            }
            DropColumn { table, column, .. } => {
                let table = self.table_id(table);
                self.drop_child(m, table, ChildKind::Column, column);
            }
            RenameColumn {
                table, old, new, ..
            } => {
                let table = self.table_id(table);
                self.rename_child(m, table, ChildKind::Column, old, new);
            }
            AddIndex { table, name, .. } => {
                let table = self.table_id(table);
                self.create_child(m, table, ChildKind::Index, name);
            }
            DropIndex { table, name, .. } => {
                let table = self.table_id(table);
                self.drop_child(m, table, ChildKind::Index, name);
            }
            RenameIndex {
                table, old, new, ..
            } => {
                let table = self.table_id(table);
                self.rename_child(m, table, ChildKind::Index, old, new);
            }
            AddConstraint { table, name, .. } => {
                let table = self.table_id(table);
                self.create_child(m, table, ChildKind::Constraint, name);
            }
            DropConstraint { table, name, .. } => {
                let table = self.table_id(table);
                self.drop_child(m, table, ChildKind::Constraint, name);
            }
            AlterUniqueTogether {
                table, old, new, ..
            } => self.alter_together(m, table, old, new, true),
            AlterIndexTogether {
                table, old, new, ..
            } => self.alter_together(m, table, old, new, false),
            // Not judged: no claim, so they can never make a migration look drifted.
            AlterColumn { .. } | Opaque { .. } => {}
        }
    }

    /// Sets added by this migration are claimed; sets it removes end earlier claims. Removal
    /// is not itself evidence: another constraint may cover the same columns.
    fn alter_together(
        &mut self,
        m: usize,
        table: &TableRef,
        old: &[Vec<String>],
        new: &[Vec<String>],
        unique: bool,
    ) {
        let table = self.table_id(table);
        let keys = |sets: &[Vec<String>], model: &mut Model| -> Vec<SetKey> {
            sets.iter()
                .map(|set| {
                    let mut ids: Vec<usize> = set
                        .iter()
                        .map(|c| model.child_id(table, ChildKind::Column, c))
                        .collect();
                    ids.sort_unstable();
                    (table, unique, ids)
                })
                .collect()
        };
        let old = keys(old, self);
        let new = keys(new, self);
        for key in old.iter().filter(|k| !new.contains(k)) {
            self.set_removals
                .entry(key.clone())
                .or_default()
                .push((self.seq, m));
        }
        for key in new.into_iter().filter(|k| !old.contains(k)) {
            self.claim(m, Target::ColumnSet { key }, true);
        }
    }

    fn claim(&mut self, m: usize, target: Target, present: bool) {
        self.claims[m].push(Claim {
            seq: self.seq,
            target,
            present,
            absence_proves: false,
            existed_after: None,
        });
    }

    fn create_table(&mut self, m: usize, table: &TableRef) -> usize {
        let name = normal(table);
        let id = self.tables.len();
        self.tables.push(TableObject {
            initial: name.clone(),
            events: vec![],
        });
        self.table_event(m, id, Some(name.clone()));
        self.table_ids.insert(name.clone(), id);
        self.claim(m, Target::Table { id, name }, true);
        id
    }

    /// The identity behind a table name at this point of history; a table that no migration
    /// created (an unmanaged or external table) gets an identity on first mention.
    fn table_id(&mut self, table: &TableRef) -> usize {
        let name = normal(table);
        if let Some(&id) = self.table_ids.get(&name) {
            return id;
        }
        let id = self.tables.len();
        self.tables.push(TableObject {
            initial: name.clone(),
            events: vec![],
        });
        self.table_ids.insert(name, id);
        id
    }

    fn table_event(&mut self, m: usize, id: usize, to: Option<TableRef>) {
        if let Some(name) = &to {
            self.name_takers
                .entry(NameKey::Table(name.clone()))
                .or_default()
                .push((self.seq, m));
        }
        self.tables[id].events.push(Event {
            seq: self.seq,
            migration: m,
            to,
        });
    }

    fn child_key(table: usize, kind: ChildKind, name: &str) -> (usize, u8, String) {
        (table, kind.namespace(), physical_name(name).to_owned())
    }

    fn child_event(&mut self, m: usize, id: usize, to: Option<&str>) {
        let child = &self.children[id];
        if let Some(name) = to {
            let (table, ns, name) = Self::child_key(child.table, child.kind, name);
            self.name_takers
                .entry(NameKey::Child(table, ns, name))
                .or_default()
                .push((self.seq, m));
        }
        self.children[id].events.push(Event {
            seq: self.seq,
            migration: m,
            to: to.map(|n| physical_name(n).to_owned()),
        });
    }

    fn child_id(&mut self, table: usize, kind: ChildKind, name: &str) -> usize {
        let key = Self::child_key(table, kind, name);
        if let Some(&id) = self.child_ids.get(&key) {
            return id;
        }
        let id = self.children.len();
        self.children.push(ChildObject {
            table,
            kind,
            initial: key.2.clone(),
            events: vec![],
        });
        self.child_ids.insert(key, id);
        id
    }

    fn create_child(&mut self, m: usize, table: usize, kind: ChildKind, name: &str) {
        let key = Self::child_key(table, kind, name);
        let id = self.children.len();
        self.children.push(ChildObject {
            table,
            kind,
            initial: key.2.clone(),
            events: vec![],
        });
        self.child_ids.insert(key.clone(), id);
        self.child_event(m, id, Some(name));
        self.claim(m, Target::Child { id, name: key.2 }, true);
    }

    fn drop_child(&mut self, m: usize, table: usize, kind: ChildKind, name: &str) {
        let id = self.child_id(table, kind, name);
        let key = Self::child_key(table, kind, name);
        self.child_ids.remove(&key);
        self.child_event(m, id, None);
        self.claim(m, Target::Child { id, name: key.2 }, false);
        if let Some(claim) = self.claims[m].last_mut() {
            claim.absence_proves = true;
        }
    }

    fn rename_child(&mut self, m: usize, table: usize, kind: ChildKind, old: &str, new: &str) {
        let id = self.child_id(table, kind, old);
        let old_key = Self::child_key(table, kind, old);
        let new_key = Self::child_key(table, kind, new);
        self.child_ids.remove(&old_key);
        self.child_ids.insert(new_key.clone(), id);
        self.child_event(m, id, Some(new));
        self.claim(
            m,
            Target::Child {
                id,
                name: new_key.2,
            },
            true,
        );
        self.claim(
            m,
            Target::Child {
                id,
                name: old_key.2,
            },
            false,
        );
    }

    // -----------------------------------------------------------------------------------------
    // Evaluation of one migration's claims, given which later migrations are effective.

    fn check_migration(
        &self,
        m: usize,
        catalog: &Catalog,
        effective: &[bool],
        recorded: &[bool],
    ) -> Vec<ObjectCheck> {
        // Later effects of the same migration always count: they are part of what it does.
        let applies = |event_migration: usize| event_migration == m || effective[event_migration];
        let mut checks = Vec::new();
        for claim in &self.claims[m] {
            if let Some(check) = self.check_claim(claim, catalog, &applies, recorded) {
                checks.push(check);
            }
        }
        checks
    }

    fn check_claim(
        &self,
        claim: &Claim,
        catalog: &Catalog,
        applies: &dyn Fn(usize) -> bool,
        recorded: &[bool],
    ) -> Option<ObjectCheck> {
        match &claim.target {
            Target::Table { id, name } => {
                let superseded = if claim.present {
                    let events = self.tables[*id].events.iter().map(|e| (e.seq, e.migration));
                    applied_after(claim.seq, events, applies)
                } else {
                    applied_after(
                        claim.seq,
                        self.takers(&NameKey::Table(name.clone())),
                        applies,
                    )
                };
                if superseded {
                    return None;
                }
                let found = catalog.resolve(name).is_some();
                let existed = claim.existed_after.is_some_and(|m| recorded[m]);
                if !claim.present && !found && !claim.absence_proves && !existed {
                    return None;
                }
                Some(ObjectCheck {
                    object: "table",
                    name: name.to_string(),
                    expected: if claim.present { "present" } else { "absent" },
                    ok: found == claim.present,
                })
            }
            Target::Child { id, name } => {
                let child = &self.children[*id];
                let superseded = if claim.present {
                    let events = child.events.iter().map(|e| (e.seq, e.migration));
                    applied_after(claim.seq, events, applies)
                } else {
                    let key = NameKey::Child(child.table, child.kind.namespace(), name.clone());
                    applied_after(claim.seq, self.takers(&key), applies)
                };
                if superseded {
                    return None;
                }
                let table = self.table_location(child.table, claim.seq, applies)?;
                let relation = catalog.resolve(&table)?;
                let found = match child.kind {
                    ChildKind::Column => relation.has_column(name),
                    ChildKind::Index | ChildKind::Constraint => relation.has_object(name),
                };
                if !claim.present && !found && !claim.absence_proves {
                    return None;
                }
                Some(ObjectCheck {
                    object: child.kind.label(),
                    name: format!("{table}.{name}"),
                    expected: if claim.present { "present" } else { "absent" },
                    ok: found == claim.present,
                })
            }
            Target::ColumnSet { key } => {
                let (table_id, unique, columns) = key;
                let removals = self.set_removals.get(key).into_iter().flatten().copied();
                if applied_after(claim.seq, removals, applies) {
                    return None;
                }
                let table = self.table_location(*table_id, claim.seq, applies)?;
                let relation = catalog.resolve(&table)?;
                // Columns are followed through renames; a dropped column took the index along.
                let names: Vec<String> = columns
                    .iter()
                    .map(|&id| self.child_location(id, claim.seq, applies))
                    .collect::<Option<_>>()?;
                let mut shown = names.clone();
                shown.sort();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                Some(ObjectCheck {
                    object: if *unique {
                        "unique_together"
                    } else {
                        "index_together"
                    },
                    name: format!("{table}({})", shown.join(", ")),
                    expected: "present",
                    ok: relation.has_index_on(&refs, *unique),
                })
            }
        }
    }

    /// A child's name for a claim made at `seq`: its name then, through later applied renames.
    fn child_location(
        &self,
        id: usize,
        seq: usize,
        applies: &dyn Fn(usize) -> bool,
    ) -> Option<String> {
        let child = &self.children[id];
        let mut name = Some(child.initial.clone());
        for event in &child.events {
            if event.seq <= seq || applies(event.migration) {
                name = event.to.clone();
            }
        }
        name
    }

    /// Every event that gave `key`'s name to something, as (seq, migration).
    fn takers(&self, key: &NameKey) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.name_takers.get(key).into_iter().flatten().copied()
    }

    /// Where a table is expected to be for a claim made at `seq`: its name then, carried
    /// through the later renames that apply. `None` when an applied later migration dropped it.
    fn table_location(
        &self,
        id: usize,
        seq: usize,
        applies: &dyn Fn(usize) -> bool,
    ) -> Option<TableRef> {
        let table = &self.tables[id];
        let mut name = Some(table.initial.clone());
        for event in &table.events {
            if event.seq <= seq || applies(event.migration) {
                name = event.to.clone();
            }
        }
        name
    }
}

/// Whether any of `events` (seq, migration) comes after `seq` and belongs to a migration that
/// applies.
fn applied_after(
    seq: usize,
    mut events: impl Iterator<Item = (usize, usize)>,
    applies: &dyn Fn(usize) -> bool,
) -> bool {
    events.any(|(event_seq, migration)| event_seq > seq && applies(migration))
}

#[cfg(test)]
mod tests;
