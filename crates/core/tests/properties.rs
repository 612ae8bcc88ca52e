//! Properties over generated input: hostile manifests never panic the parser, and for any
//! history, catalog and set of recorded rows, evaluation never panics and a repair plan never
//! leaves a recorded migration with an unrecorded dependency it did not already have.

use std::collections::HashSet;

use django_migrator_core::{evaluate, plan, Catalog, Manifest, Recorded, Relation};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z_0-9\\u{0}-\\u{7f}é]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("format_version".to_owned()),
                    Just("alias".to_owned()),
                    Just("migrations".to_owned()),
                    Just("app".to_owned()),
                    Just("name".to_owned()),
                    Just("dependencies".to_owned()),
                    Just("effects".to_owned()),
                    Just("kind".to_owned()),
                    Just("table".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_parser_never_panics_on_text(text in "\\PC{0,200}") {
        let _ = Manifest::parse(&text);
    }

    #[test]
    fn the_parser_never_panics_on_json_and_errors_say_why(value in arbitrary_json()) {
        if let Err(error) = Manifest::parse(&value.to_string()) {
            prop_assert!(!error.to_string().is_empty());
        }
    }
}

const TABLES: [&str; 3] = ["t0", "t1", "t2"];
const COLUMNS: [&str; 3] = ["a", "b", "c"];

/// One effect over a small pool of names, so that renames, drops and re-creations collide.
fn effect() -> impl Strategy<Value = Value> {
    let table = prop::sample::select(TABLES.to_vec());
    let column = prop::sample::select(COLUMNS.to_vec());
    prop_oneof![
        (table.clone(), prop::collection::vec(column.clone(), 0..3)).prop_map(|(t, cols)| json!(
            {"kind": "create_table", "table": {"name": t}, "columns": cols})),
        table.clone().prop_map(|t| json!({"kind": "drop_table", "table": {"name": t}})),
        (table.clone(), table.clone()).prop_map(|(a, b)| json!(
            {"kind": "rename_table", "old": {"name": a}, "new": {"name": b}})),
        (table.clone(), column.clone()).prop_map(|(t, c)| json!(
            {"kind": "add_column", "table": {"name": t}, "column": c})),
        (table.clone(), column.clone()).prop_map(|(t, c)| json!(
            {"kind": "drop_column", "table": {"name": t}, "column": c})),
        (table.clone(), column.clone(), column.clone()).prop_map(|(t, a, b)| json!(
            {"kind": "rename_column", "table": {"name": t}, "old": a, "new": b})),
        (table.clone(), column.clone()).prop_map(|(t, c)| json!(
            {"kind": "add_index", "table": {"name": t}, "name": format!("{t}_{c}_idx"), "columns": [c]})),
        (table.clone(), column.clone()).prop_map(|(t, c)| json!(
            {"kind": "drop_index", "table": {"name": t}, "name": format!("{t}_{c}_idx")})),
        (table.clone(), prop::collection::vec(column.clone(), 1..3)).prop_map(|(t, cols)| json!(
            {"kind": "alter_unique_together", "table": {"name": t}, "old": [], "new": [cols]})),
        Just(json!({"kind": "opaque", "reason": "RunPython"})),
    ]
}

/// A linear-ish history: each migration depends on some earlier ones.
fn history() -> impl Strategy<Value = Manifest> {
    prop::collection::vec((prop::collection::vec(effect(), 0..4), any::<u8>()), 1..7).prop_map(
        |migrations| {
            let items: Vec<Value> = migrations
                .iter()
                .enumerate()
                .map(|(i, (effects, deps))| {
                    let dependencies: Vec<Value> = (0..i)
                        .filter(|j| deps & (1 << (j % 8)) != 0 || *j + 1 == i)
                        .map(|j| json!(["app", format!("{j:04}")]))
                        .collect();
                    json!({"app": "app", "name": format!("{i:04}"), "dependencies": dependencies,
                           "effects": effects})
                })
                .collect();
            let text = json!({"format_version": 1, "alias": "default", "migrations": items});
            Manifest::parse(&text.to_string()).expect("generated manifests are valid")
        },
    )
}

fn catalog() -> impl Strategy<Value = Catalog> {
    prop::collection::vec(
        (
            prop::sample::select(TABLES.to_vec()),
            prop::sample::subsequence(COLUMNS.to_vec(), 0..=3),
            prop::sample::subsequence(vec!["t0_a_idx", "t1_b_idx", "t2_c_idx"], 0..=3),
        ),
        0..4,
    )
    .prop_map(|tables| {
        let mut seen = HashSet::new();
        let relations = tables
            .into_iter()
            .filter(|(name, _, _)| seen.insert(*name))
            .map(|(name, columns, objects)| Relation {
                schema: "public".into(),
                name: name.into(),
                columns: columns.into_iter().map(str::to_owned).collect(),
                objects: objects.into_iter().map(str::to_owned).collect(),
                ..Relation::default()
            })
            .collect();
        Catalog::new(vec!["public".into()], relations)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn every_repair_plan_keeps_the_history_consistent(
        manifest in history(),
        catalog in catalog(),
        mask in any::<u8>(),
    ) {
        let rows: Vec<String> = manifest
            .migrations
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, m)| format!("{}.{}", m.app, m.name))
            .collect();
        let recorded = Recorded::new(rows.iter().map(|r| {
            let (app, name) = r.split_once('.').unwrap();
            (app.to_owned(), name.to_owned(), Some(0))
        }));
        let evaluation = evaluate(&manifest, &catalog, &recorded);
        prop_assert_eq!(evaluation.migrations.len(), manifest.migrations.len());
        let plan = plan(&manifest, &evaluation);

        let before: HashSet<String> = rows.iter().cloned().collect();
        let mut after = before.clone();
        for (app, name) in &plan.delete {
            after.remove(&format!("{app}.{name}"));
        }
        for (app, name) in &plan.insert {
            after.insert(format!("{app}.{name}"));
        }
        for migration in &manifest.migrations {
            let me = format!("{}.{}", migration.app, migration.name);
            if !after.contains(&me) {
                continue;
            }
            for (app, name) in &migration.dependencies {
                let dep = format!("{app}.{name}");
                // Allowed only as an inconsistency that was there before and was left alone.
                let old = before.contains(&me) && !before.contains(&dep);
                prop_assert!(after.contains(&dep) || old,
                    "{} recorded without {} after {:?}", me, dep, plan.steps);
            }
        }
        // A plan never both inserts and deletes the same row.
        let inserted: HashSet<_> = plan.insert.iter().collect();
        prop_assert!(plan.delete.iter().all(|row| !inserted.contains(row)));
    }
}
