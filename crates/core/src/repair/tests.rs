use serde_json::json;

use super::*;
use crate::catalog::{Catalog, Relation};
use crate::evaluate::{evaluate, Recorded};

fn t(name: &str) -> serde_json::Value {
    json!({"schema": null, "name": name})
}

/// a.0001 creates a_t(id, x); a.0002 adds y; b.0001 (another app) depends on a.0002 and
/// creates b_t; a.0003 is data only.
fn manifest() -> Manifest {
    let m = json!({"format_version": 1, "alias": "default", "migrations": [
        {"app": "a", "name": "0001", "effects": [
            {"kind": "create_table", "table": t("a_t"), "columns": ["id", "x"]}]},
        {"app": "a", "name": "0002", "dependencies": [["a", "0001"]], "effects": [
            {"kind": "add_column", "table": t("a_t"), "column": "y"}]},
        {"app": "b", "name": "0001", "dependencies": [["a", "0002"]], "effects": [
            {"kind": "create_table", "table": t("b_t"), "columns": ["id"]}]},
        {"app": "a", "name": "0003", "dependencies": [["a", "0002"]], "effects": [
            {"kind": "opaque", "reason": "RunPython"}]},
    ]});
    Manifest::parse(&m.to_string()).unwrap()
}

fn catalog(tables: &[(&str, &[&str])]) -> Catalog {
    Catalog::new(
        vec!["public".into()],
        tables
            .iter()
            .map(|(name, columns)| Relation {
                schema: "public".into(),
                name: (*name).into(),
                columns: columns.iter().map(|c| c.to_string()).collect(),
                ..Relation::default()
            })
            .collect(),
    )
}

fn recorded(rows: &[&str]) -> Recorded {
    Recorded::new(rows.iter().map(|k| {
        let (a, n) = k.split_once('.').unwrap();
        (a.to_owned(), n.to_owned(), Some(0))
    }))
}

fn steps(cat: &Catalog, rows: &[&str]) -> (Vec<String>, Plan) {
    let m = manifest();
    let plan = plan(&m, &evaluate(&m, cat, &recorded(rows)));
    let steps = plan
        .steps
        .iter()
        .map(|s| format!("{} {}.{}", s.action.as_str(), s.app, s.name))
        .collect();
    (steps, plan)
}

fn pairs(rows: &[(String, String)]) -> Vec<String> {
    rows.iter().map(|(a, n)| format!("{a}.{n}")).collect()
}

const ALL: &[&str] = &["a.0001", "a.0002", "b.0001", "a.0003"];

#[test]
fn a_clean_history_needs_nothing() {
    let cat = catalog(&[("a_t", &["id", "x", "y"]), ("b_t", &["id"])]);
    let (steps, plan) = steps(&cat, ALL);
    assert!(steps.is_empty());
    assert!(!plan.writes());
}

#[test]
fn a_deleted_row_is_fake_applied() {
    let cat = catalog(&[("a_t", &["id", "x", "y"]), ("b_t", &["id"])]);
    let (steps, plan) = steps(&cat, &["a.0001", "b.0001", "a.0003"]);
    assert_eq!(steps, ["fake_apply a.0002"]);
    assert_eq!(pairs(&plan.insert), ["a.0002"]);
    assert!(plan.delete.is_empty());
}

#[test]
fn a_missing_table_is_rewound_with_its_effectless_dependents() {
    // b_t is gone and b.0001 has no dependents: a plain rewind.
    let cat = catalog(&[("a_t", &["id", "x", "y"])]);
    let (steps, plan) = steps(&cat, ALL);
    assert_eq!(steps, ["fake_rewind b.0001"]);
    assert_eq!(pairs(&plan.delete), ["b.0001"]);
}

#[test]
fn a_rewind_whose_dependent_has_present_effects_is_refused() {
    // y is gone: rewinding a.0002 would rewind b.0001, whose table is present.
    let cat = catalog(&[("a_t", &["id", "x"]), ("b_t", &["id"])]);
    let (steps, plan) = steps(&cat, ALL);
    assert_eq!(steps, ["refuse a.0002"]);
    assert!(!plan.writes());
    assert!(
        plan.steps[0]
            .reason
            .contains("b.0001, whose effects are present (b_t, b_t.id)"),
        "{}",
        plan.steps[0].reason
    );
}

#[test]
fn a_rewind_takes_recorded_dependents_without_effects_along() {
    // Partial restore: b_t never existed; y missing. a.0002, b.0001 and a.0003 (data only) go.
    let cat = catalog(&[("a_t", &["id", "x"])]);
    let (steps, plan) = steps(&cat, ALL);
    assert_eq!(
        steps,
        [
            "fake_rewind a.0002",
            "fake_rewind b.0001",
            "fake_rewind a.0003"
        ]
    );
    assert_eq!(pairs(&plan.delete), ["a.0002", "b.0001", "a.0003"]);
}

#[test]
fn a_fake_apply_needs_its_dependencies_recorded() {
    // b_t exists (hand-made) but a.0002's column is missing and unrecorded: no evidence for it.
    let cat = catalog(&[("a_t", &["id", "x"]), ("b_t", &["id"])]);
    let (steps, plan) = steps(&cat, &["a.0001"]);
    assert_eq!(steps, ["refuse b.0001"]);
    assert!(!plan.writes());
}

#[test]
fn a_chain_of_unrecorded_present_migrations_is_applied_in_order() {
    let cat = catalog(&[("a_t", &["id", "x", "y"]), ("b_t", &["id"])]);
    let (steps, plan) = steps(&cat, &[]);
    assert_eq!(
        steps,
        [
            "fake_apply a.0001",
            "fake_apply a.0002",
            "fake_apply b.0001"
        ]
    );
    assert_eq!(pairs(&plan.insert), ["a.0001", "a.0002", "b.0001"]);
}

#[test]
fn half_applied_is_recorded_with_a_warning_and_inconsistent_history_is_refused() {
    let m = Manifest::parse(
        &json!({"format_version": 1, "alias": "default", "migrations": [
            {"app": "a", "name": "0001", "effects": [
                {"kind": "create_table", "table": t("a_t"), "columns": ["id", "x"]}]},
            {"app": "a", "name": "0002", "dependencies": [["a", "0001"]], "effects": [
                {"kind": "add_column", "table": t("a_t"), "column": "y"},
                {"kind": "add_column", "table": t("a_t"), "column": "z"}]},
            {"app": "c", "name": "0001", "effects": [{"kind": "opaque", "reason": "RunSQL"}]},
            {"app": "c", "name": "0002", "dependencies": [["c", "0001"]]},
        ]})
        .to_string(),
    )
    .unwrap();
    let cat = catalog(&[("a_t", &["id", "x", "y"])]);
    let plan = plan(&m, &evaluate(&m, &cat, &recorded(&["a.0001", "c.0002"])));
    let got: Vec<_> = plan
        .steps
        .iter()
        .map(|s| format!("{} {}.{}", s.action.as_str(), s.app, s.name))
        .collect();
    assert_eq!(got, ["fake_apply a.0002", "warn a.0002", "refuse c.0002"]);
    assert!(
        plan.steps[1].reason.contains("column a_t.z is missing"),
        "{}",
        plan.steps[1].reason
    );
    assert_eq!(pairs(&plan.insert), ["a.0002"]);
}

#[test]
fn squashed_migrations_write_their_replaced_rows_too() {
    let m = Manifest::parse(
        &json!({"format_version": 1, "alias": "default", "migrations": [
            {"app": "a", "name": "0001_squashed_0002", "replaces": [["a", "0001"], ["a", "0002"]],
             "effects": [{"kind": "create_table", "table": t("a_t"), "columns": ["id"]}]},
        ]})
        .to_string(),
    )
    .unwrap();
    let present = catalog(&[("a_t", &["id"])]);
    let p = plan(&m, &evaluate(&m, &present, &recorded(&[])));
    assert_eq!(
        pairs(&p.insert),
        ["a.0001_squashed_0002", "a.0001", "a.0002"]
    );
    let p = plan(
        &m,
        &evaluate(&m, &catalog(&[]), &recorded(&["a.0001", "a.0002"])),
    );
    assert_eq!(
        pairs(&p.delete),
        ["a.0001_squashed_0002", "a.0001", "a.0002"]
    );
}

/// After any plan, no recorded migration depends on an unrecorded one, unless that
/// inconsistency was there before and the plan refused it.
#[test]
fn every_plan_leaves_the_history_consistent() {
    let m = manifest();
    let tables: [&[(&str, &[&str])]; 4] = [
        &[("a_t", &["id", "x", "y"]), ("b_t", &["id"])],
        &[("a_t", &["id", "x"]), ("b_t", &["id"])],
        &[("a_t", &["id", "x"])],
        &[],
    ];
    for cat in tables {
        let cat = catalog(cat);
        // Every subset of recorded rows.
        for mask in 0..16u32 {
            let rows: Vec<&str> = ALL
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, r)| *r)
                .collect();
            let before = evaluate(&m, &cat, &recorded(&rows));
            let plan = plan(&m, &before);
            let mut after: HashSet<String> = rows.iter().map(|r| r.to_string()).collect();
            for r in pairs(&plan.delete) {
                after.remove(&r);
            }
            after.extend(pairs(&plan.insert));
            for migration in &m.migrations {
                let me = format!("{}.{}", migration.app, migration.name);
                if !after.contains(&me) {
                    continue;
                }
                for (a, n) in &migration.dependencies {
                    let dep = format!("{a}.{n}");
                    let was_refused = plan.steps.iter().any(|s| s.action == Action::Refuse);
                    assert!(
                        after.contains(&dep)
                            || (was_refused
                                && rows.contains(&me.as_str())
                                && !rows.contains(&dep.as_str())),
                        "rows {rows:?}: {me} recorded but {dep} not after {:?}",
                        plan.steps
                    );
                }
            }
        }
    }
}

#[test]
fn the_companion_step_records_only_claimed_migrations_with_their_effects_present() {
    let m = Manifest::parse(
        &json!({"format_version": 1, "alias": "default", "migrations": [
            {"app": "a", "name": "0001", "effects": [
                {"kind": "create_table", "table": t("a_t"), "columns": ["id", "price"]}]},
            {"app": "a", "name": "0002", "dependencies": [["a", "0001"]], "companion": true, "effects": [
                {"kind": "add_column", "table": t("a_t"), "column": "price_currency"}]},
            {"app": "a", "name": "0003", "dependencies": [["a", "0002"]], "effects": [
                {"kind": "add_column", "table": t("a_t"), "column": "note"}]},
        ]})
        .to_string(),
    )
    .unwrap();
    let cat = catalog(&[("a_t", &["id", "price", "price_currency", "note"])]);
    // 0002 is a companion with its column present; 0003 is ordinary drift, left to repair.
    let plan = plan_companions(&m, &evaluate(&m, &cat, &recorded(&["a.0001"])));
    assert_eq!(pairs(&plan.insert), ["a.0002"]);
    assert_eq!(plan.steps.len(), 1);
    // Its column missing: nothing to record, migrate will run it.
    let bare = catalog(&[("a_t", &["id", "price"])]);
    assert!(!plan_companions(&m, &evaluate(&m, &bare, &recorded(&["a.0001"]))).writes());
    // Its dependency unrecorded and unproven: refused.
    let none = plan_companions(
        &m,
        &evaluate(
            &m,
            &catalog(&[("a_t", &["id", "price_currency"])]),
            &recorded(&[]),
        ),
    );
    assert_eq!(none.steps[0].action, Action::Refuse);
    assert!(!none.writes());
}
