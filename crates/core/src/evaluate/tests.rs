use serde_json::json;

use super::*;
use crate::catalog::Relation;
use crate::manifest::Migration;

/// A manifest from `(app, name, dependencies, effects)` in plan order.
fn manifest(migrations: serde_json::Value) -> Manifest {
    let text = json!({"format_version": 1, "alias": "default", "migrations": migrations});
    Manifest::parse(&text.to_string()).unwrap()
}

fn t(name: &str) -> serde_json::Value {
    json!({"schema": null, "name": name})
}

fn catalog(relations: &[(&str, &[&str], &[&str])]) -> Catalog {
    Catalog::new(
        vec!["public".into()],
        relations
            .iter()
            .map(|(name, columns, objects)| Relation {
                schema: "public".into(),
                name: (*name).into(),
                columns: columns.iter().map(|c| c.to_string()).collect(),
                objects: objects.iter().map(|c| c.to_string()).collect(),
                indexes: vec![],
            })
            .collect(),
    )
}

fn recorded(rows: &[&str]) -> Recorded {
    Recorded::new(rows.iter().map(|key| {
        let (app, name) = key.split_once('.').unwrap();
        (app.to_owned(), name.to_owned(), Some(0))
    }))
}

/// `app.name=kind` for every drift row, in order.
fn drift(manifest: &Manifest, catalog: &Catalog, recorded: &Recorded) -> Vec<String> {
    evaluate(manifest, catalog, recorded)
        .drift()
        .map(|v| format!("{}.{}={}", v.app, v.name, v.state.as_str()))
        .collect()
}

/// shop.0001 creates shop_item(id, title); 0002 adds price; 0003 renames title to name;
/// 0004 is data only.
fn shop() -> Manifest {
    manifest(json!([
        {"app": "shop", "name": "0001", "effects": [
            {"kind": "create_table", "table": t("shop_item"), "columns": ["id", "title"]}]},
        {"app": "shop", "name": "0002", "dependencies": [["shop", "0001"]], "effects": [
            {"kind": "add_column", "table": t("shop_item"), "column": "price"}]},
        {"app": "shop", "name": "0003", "dependencies": [["shop", "0002"]], "effects": [
            {"kind": "rename_column", "table": t("shop_item"), "old": "title", "new": "name"}]},
        {"app": "shop", "name": "0004", "dependencies": [["shop", "0003"]], "effects": [
            {"kind": "opaque", "op": "RunPython", "reason": "RunPython"}]},
    ]))
}

const ALL: &[&str] = &["shop.0001", "shop.0002", "shop.0003", "shop.0004"];

#[test]
fn a_migrated_database_is_clean() {
    let cat = catalog(&[("shop_item", &["id", "name", "price"], &[])]);
    let eval = evaluate(&shop(), &cat, &recorded(ALL));
    assert_eq!(eval.drift().count(), 0);
    let states: Vec<_> = eval.migrations.iter().map(|v| v.state).collect();
    assert_eq!(states, vec![State::Applied; 4]);
    // The creator's claim on `title` is superseded by the rename; the rename owns `name`.
    assert_eq!(eval.migrations[0].present, 2);
    assert_eq!(eval.migrations[2].present, 1);
    assert_eq!(eval.migrations[3].detail, "recorded; no checkable effect");
}

#[test]
fn an_empty_database_is_pending_not_drifted() {
    let eval = evaluate(&shop(), &catalog(&[]), &recorded(&[]));
    assert_eq!(eval.drift().count(), 0);
    assert!(eval.migrations.iter().all(|v| v.state == State::Pending));
}

#[test]
fn a_dropped_table_is_blamed_on_its_creator_only() {
    let eval = evaluate(&shop(), &catalog(&[]), &recorded(ALL));
    let rows: Vec<_> = eval.drift().collect();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].name, "0001");
    assert_eq!(rows[0].state, State::RecordedMissing);
    assert_eq!((rows[0].present, rows[0].missing), (0, 1));
    assert_eq!(rows[0].detail, "recorded, but table shop_item is missing");
}

#[test]
fn a_deleted_history_row_is_unrecorded_present_and_nothing_else() {
    let cat = catalog(&[("shop_item", &["id", "name", "price"], &[])]);
    for deleted in ALL {
        let rows: Vec<&str> = ALL.iter().copied().filter(|r| r != deleted).collect();
        let got = drift(&shop(), &cat, &recorded(&rows));
        if *deleted == "shop.0004" {
            // No checkable effect: it is simply pending.
            assert_eq!(got, Vec::<String>::new());
        } else {
            assert_eq!(got, vec![format!("{deleted}=unrecorded_present")]);
        }
    }
}

#[test]
fn a_deleted_row_without_evidence_makes_its_dependents_inconsistent() {
    let m = manifest(json!([
        {"app": "a", "name": "0001", "effects": [{"kind": "opaque", "reason": "RunSQL"}]},
        {"app": "a", "name": "0002", "dependencies": [["a", "0001"]]},
    ]));
    let eval = evaluate(&m, &catalog(&[]), &recorded(&["a.0002"]));
    let rows: Vec<_> = eval.drift().collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, State::InconsistentHistory);
    assert_eq!(rows[0].detail, "recorded, but its dependency a.0001 is not");
}

#[test]
fn a_dropped_column_is_blamed_on_the_migration_that_added_it() {
    let cat = catalog(&[("shop_item", &["id", "name"], &[])]);
    assert_eq!(
        drift(&shop(), &cat, &recorded(ALL)),
        vec!["shop.0002=recorded_missing"]
    );
    // A dropped renamed column is blamed on the rename, not on the creator.
    let cat = catalog(&[("shop_item", &["id", "price"], &[])]);
    assert_eq!(
        drift(&shop(), &cat, &recorded(ALL)),
        vec!["shop.0003=recorded_missing"]
    );
}

#[test]
fn a_rename_not_yet_run_expects_the_old_name() {
    let cat = catalog(&[("shop_item", &["id", "title", "price"], &[])]);
    let eval = evaluate(&shop(), &cat, &recorded(&["shop.0001", "shop.0002"]));
    assert_eq!(eval.drift().count(), 0);
    assert_eq!(eval.migrations[2].state, State::Pending);
}

#[test]
fn a_rename_applied_by_hand_is_unrecorded_present_and_does_not_blame_the_creator() {
    let cat = catalog(&[("shop_item", &["id", "name", "price"], &[])]);
    assert_eq!(
        drift(&shop(), &cat, &recorded(&["shop.0001", "shop.0002"])),
        vec!["shop.0003=unrecorded_present"]
    );
}

#[test]
fn a_removed_column_must_be_gone_once_the_removal_is_recorded() {
    let m = manifest(json!([
        {"app": "ct", "name": "0001", "effects": [
            {"kind": "create_table", "table": t("ct"), "columns": ["id", "name", "model"]}]},
        {"app": "ct", "name": "0002", "dependencies": [["ct", "0001"]], "effects": [
            {"kind": "alter_column", "table": t("ct"), "column": "name"},
            {"kind": "drop_column", "table": t("ct"), "column": "name"}]},
    ]));
    let gone = catalog(&[("ct", &["id", "model"], &[])]);
    let still = catalog(&[("ct", &["id", "name", "model"], &[])]);
    assert!(drift(&m, &gone, &recorded(&["ct.0001", "ct.0002"])).is_empty());
    assert!(drift(&m, &still, &recorded(&["ct.0001"])).is_empty());
    assert_eq!(
        drift(&m, &gone, &recorded(&["ct.0001"])),
        vec!["ct.0002=unrecorded_present"]
    );
    assert_eq!(
        drift(&m, &still, &recorded(&["ct.0001", "ct.0002"])),
        vec!["ct.0002=recorded_missing"]
    );
    // Without its table, the removal proves nothing; the creator owns the missing table.
    assert_eq!(
        drift(&m, &catalog(&[]), &recorded(&["ct.0001", "ct.0002"])),
        vec!["ct.0001=recorded_missing"]
    );
}

#[test]
fn renamed_tables_are_followed_and_blamed_on_the_latest_rename() {
    let m = manifest(json!([
        {"app": "a", "name": "0001", "effects": [
            {"kind": "create_table", "table": t("a_old"), "columns": ["id", "x"]}]},
        {"app": "a", "name": "0002", "dependencies": [["a", "0001"]], "effects": [
            {"kind": "rename_table", "old": t("a_old"), "new": t("a_new")}]},
        {"app": "a", "name": "0003", "dependencies": [["a", "0002"]], "effects": [
            {"kind": "add_column", "table": t("a_new"), "column": "y"}]},
    ]));
    let all = recorded(&["a.0001", "a.0002", "a.0003"]);
    assert!(drift(&m, &catalog(&[("a_new", &["id", "x", "y"], &[])]), &all).is_empty());
    assert_eq!(
        drift(&m, &catalog(&[]), &all),
        vec!["a.0002=recorded_missing"]
    );
    // A column created before the rename is looked for under the new table name.
    assert_eq!(
        drift(&m, &catalog(&[("a_new", &["id", "y"], &[])]), &all),
        vec!["a.0001=half_applied"]
    );
    // The rename never ran although recorded: the old table is still there.
    assert_eq!(
        drift(
            &m,
            &catalog(&[("a_old", &["id", "x"], &[])]),
            &recorded(&["a.0001", "a.0002"])
        ),
        vec!["a.0002=recorded_missing"]
    );
}

#[test]
fn a_dropped_table_that_is_still_there_is_drift_but_an_absent_one_proves_nothing() {
    let m = manifest(json!([
        {"app": "a", "name": "0001", "effects": [{"kind": "create_table", "table": t("a_t"), "columns": ["id"]}]},
        {"app": "a", "name": "0002", "dependencies": [["a", "0001"]], "effects": [{"kind": "drop_table", "table": t("a_t")}]},
    ]));
    let both = recorded(&["a.0001", "a.0002"]);
    assert!(drift(&m, &catalog(&[]), &both).is_empty());
    assert!(drift(&m, &catalog(&[]), &recorded(&[])).is_empty());
    // The creator is recorded, so the table existed; its absence is the drop's evidence, and
    // the creator is not blamed for a table that a later migration was meant to drop.
    assert_eq!(
        drift(&m, &catalog(&[]), &recorded(&["a.0001"])),
        vec!["a.0002=unrecorded_present"]
    );
    assert_eq!(
        drift(&m, &catalog(&[("a_t", &["id"], &[])]), &both),
        vec!["a.0002=recorded_missing"]
    );
}

#[test]
fn a_table_name_reused_after_a_rename_is_not_held_against_the_rename() {
    let m = manifest(json!([
        {"app": "a", "name": "0001", "effects": [{"kind": "create_table", "table": t("a_x"), "columns": ["id"]}]},
        {"app": "a", "name": "0002", "dependencies": [["a", "0001"]], "effects": [{"kind": "rename_table", "old": t("a_x"), "new": t("a_y")}]},
        {"app": "a", "name": "0003", "dependencies": [["a", "0002"]], "effects": [{"kind": "create_table", "table": t("a_x"), "columns": ["id", "z"]}]},
    ]));
    let cat = catalog(&[("a_x", &["id", "z"], &[]), ("a_y", &["id"], &[])]);
    assert!(drift(&m, &cat, &recorded(&["a.0001", "a.0002", "a.0003"])).is_empty());
}

#[test]
fn indexes_and_constraints_are_checked_by_name_on_their_table() {
    let m = manifest(json!([
        {"app": "a", "name": "0001", "effects": [{"kind": "create_table", "table": t("a_t"), "columns": ["id"]}]},
        {"app": "a", "name": "0002", "dependencies": [["a", "0001"]], "effects": [
            {"kind": "add_index", "table": t("a_t"), "name": "a_t_idx", "columns": ["id"]},
            {"kind": "add_constraint", "table": t("a_t"), "name": "a_t_positive"}]},
        {"app": "a", "name": "0003", "dependencies": [["a", "0002"]], "effects": [
            {"kind": "rename_index", "table": t("a_t"), "old": "a_t_idx", "new": "a_t_id_idx"}]},
    ]));
    let all = recorded(&["a.0001", "a.0002", "a.0003"]);
    let good = catalog(&[("a_t", &["id"], &["a_t_id_idx", "a_t_positive"])]);
    assert!(drift(&m, &good, &all).is_empty());
    let no_constraint = catalog(&[("a_t", &["id"], &["a_t_id_idx"])]);
    assert_eq!(
        drift(&m, &no_constraint, &all),
        vec!["a.0002=recorded_missing"]
    );
    let not_renamed = catalog(&[("a_t", &["id"], &["a_t_idx", "a_t_positive"])]);
    assert_eq!(
        drift(&m, &not_renamed, &all),
        vec!["a.0003=recorded_missing"]
    );
}

#[test]
fn squashed_migrations_count_as_recorded_through_their_replaced_rows() {
    let m = manifest(json!([
        {"app": "a", "name": "0001_squashed_0002", "replaces": [["a", "0001"], ["a", "0002"]], "effects": [
            {"kind": "create_table", "table": t("a_t"), "columns": ["id"]}]},
    ]));
    let cat = catalog(&[("a_t", &["id"], &[])]);
    let eval = evaluate(&m, &cat, &recorded(&["a.0001", "a.0002"]));
    assert_eq!(eval.drift().count(), 0);
    assert!(eval.migrations[0].recorded);
    // Only part of the replaced set recorded: not applied as a whole.
    assert_eq!(
        drift(&m, &cat, &recorded(&["a.0001"])),
        vec!["a.0001_squashed_0002=unrecorded_present"]
    );
}

#[test]
fn rows_without_a_migration_are_orphans_listed_last() {
    let cat = catalog(&[("shop_item", &["id", "name", "price"], &[])]);
    let mut rows = ALL.to_vec();
    rows.extend(["gone.0001_initial", "shop.0099_deleted"]);
    assert_eq!(
        drift(&shop(), &cat, &recorded(&rows)),
        vec![
            "gone.0001_initial=orphan_record",
            "shop.0099_deleted=orphan_record"
        ]
    );
}

#[test]
fn objects_list_what_was_checked() {
    let cat = catalog(&[("shop_item", &["id"], &[])]);
    let eval = evaluate(&shop(), &cat, &recorded(&["shop.0001"]));
    let first = &eval.migrations[0];
    // `title` was renamed away by 0003, which is neither recorded nor present: still expected.
    assert_eq!(first.state, State::HalfApplied);
    assert_eq!(
        first.objects,
        vec![
            ObjectCheck {
                object: "table",
                name: "shop_item".into(),
                expected: "present",
                ok: true
            },
            ObjectCheck {
                object: "column",
                name: "shop_item.id".into(),
                expected: "present",
                ok: true
            },
            ObjectCheck {
                object: "column",
                name: "shop_item.title".into(),
                expected: "present",
                ok: false
            },
        ]
    );
    assert_eq!(
        first.detail,
        "recorded, column shop_item.title is missing: 2 of 3 checkable effects present; manual recovery needed"
    );
}

#[test]
fn names_are_compared_as_postgresql_stores_them() {
    let long = "t".repeat(70);
    let m = manifest(json!([
        {"app": "a", "name": "0001", "effects": [{"kind": "create_table", "table": t(&long), "columns": ["Id"]}]},
    ]));
    let cat = catalog(&[(&"t".repeat(63), &["Id"], &[])]);
    assert!(drift(&m, &cat, &recorded(&["a.0001"])).is_empty());
    let lower = catalog(&[(&"t".repeat(63), &["id"], &[])]);
    assert_eq!(
        drift(&m, &lower, &recorded(&["a.0001"])),
        vec!["a.0001=half_applied"]
    );
}

fn with_indexes(
    mut catalog_relations: Vec<Relation>,
    indexes: &[(&str, bool, &[&str])],
) -> Catalog {
    for (table, unique, columns) in indexes {
        let relation = catalog_relations
            .iter_mut()
            .find(|r| r.name == *table)
            .unwrap();
        relation.indexes.push(crate::catalog::IndexShape {
            unique: *unique,
            columns: columns.iter().map(|c| c.to_string()).collect(),
        });
    }
    Catalog::new(vec!["public".into()], catalog_relations)
}

fn rel(name: &str, columns: &[&str]) -> Relation {
    Relation {
        schema: "public".into(),
        name: name.into(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        ..Relation::default()
    }
}

/// t(a, b, c); 0002 makes (a, b) unique; 0003 renames b to bb; 0004 replaces it with (a, c).
fn together() -> Manifest {
    manifest(json!([
        {"app": "a", "name": "0001", "effects": [
            {"kind": "create_table", "table": t("t"), "columns": ["id", "a", "b", "c"]}]},
        {"app": "a", "name": "0002", "dependencies": [["a", "0001"]], "effects": [
            {"kind": "alter_unique_together", "table": t("t"), "old": [], "new": [["a", "b"]]}]},
        {"app": "a", "name": "0003", "dependencies": [["a", "0002"]], "effects": [
            {"kind": "rename_column", "table": t("t"), "old": "b", "new": "bb"}]},
    ]))
}

#[test]
fn unique_together_is_judged_by_columns_and_follows_renames() {
    let all = recorded(&["a.0001", "a.0002", "a.0003"]);
    let columns: &[&str] = &["id", "a", "bb", "c"];
    let good = with_indexes(vec![rel("t", columns)], &[("t", true, &["bb", "a"])]);
    assert!(drift(&together(), &good, &all).is_empty());
    // A plain index does not make a unique constraint.
    let plain = with_indexes(vec![rel("t", columns)], &[("t", false, &["a", "bb"])]);
    assert_eq!(
        drift(&together(), &plain, &all),
        vec!["a.0002=recorded_missing"]
    );
    let eval = evaluate(&together(), &plain, &all);
    assert_eq!(
        eval.migrations[1].objects[0].name, "t(a, bb)",
        "the claim follows the rename"
    );
}

#[test]
fn a_removed_unique_together_is_no_longer_expected() {
    let mut m = together();
    let extra = manifest(json!([
        {"app": "a", "name": "0004", "effects": [
            {"kind": "alter_unique_together", "table": t("t"), "old": [["a", "bb"]], "new": [["a", "c"]]}]},
    ]));
    m.migrations.push(Migration {
        dependencies: vec![("a".into(), "0003".into())],
        ..extra.migrations[0].clone()
    });
    let all = recorded(&["a.0001", "a.0002", "a.0003", "a.0004"]);
    let cat = with_indexes(
        vec![rel("t", &["id", "a", "bb", "c"])],
        &[("t", true, &["a", "c"])],
    );
    assert!(drift(&m, &cat, &all).is_empty());
    // Not yet run: the old set is still expected and the new one is pending.
    let old = with_indexes(
        vec![rel("t", &["id", "a", "bb", "c"])],
        &[("t", true, &["a", "bb"])],
    );
    assert!(drift(&m, &old, &recorded(&["a.0001", "a.0002", "a.0003"])).is_empty());
}
