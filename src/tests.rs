// In-database tests of the SQL surface. Each runs in its own rolled-back transaction.

use pgrx::prelude::*;
use serde_json::json;

fn setup_django_schema() {
    Spi::run(
        "CREATE TABLE public.django_migrations (
             id bigserial PRIMARY KEY, app varchar(255) NOT NULL,
             name varchar(255) NOT NULL, applied timestamptz NOT NULL);
         CREATE TABLE public.shop_item (id bigint PRIMARY KEY, title text, price numeric);
         INSERT INTO public.django_migrations (app, name, applied)
         VALUES ('shop', '0001_initial', now()), ('shop', '0002_price', now()),
                ('gone', '0001_initial', now());",
    )
    .unwrap();
}

/// `#[pg_test]`s run concurrently in separate backends, and the lock tests and repair tests all
/// use the one migration lock key: wait for it (until this test's transaction ends) first.
fn serialize_on_the_lock() {
    Spi::run("SELECT pg_advisory_xact_lock(django_migrator.lock_key())").unwrap();
}

/// Creates `django_migrator_test_refused(sql)`: true when `sql` fails with
/// insufficient_privilege (run in a subtransaction, so the test goes on).
fn create_refusal_probe() {
    Spi::run(
        "CREATE OR REPLACE FUNCTION pg_temp.django_migrator_test_refused(sql text) RETURNS boolean
         LANGUAGE plpgsql AS $$
         BEGIN
             EXECUTE sql;
             RETURN false;
         EXCEPTION WHEN insufficient_privilege THEN
             RETURN true;
         END $$",
    )
    .unwrap();
}

fn load(manifest: serde_json::Value) -> String {
    Spi::get_one_with_args::<String>(
        "SELECT django_migrator.load_manifest($1)",
        &[pgrx::JsonB(manifest).into()],
    )
    .unwrap()
    .unwrap()
}

fn shop_manifest() -> serde_json::Value {
    json!({
        "format_version": 1,
        "alias": "default",
        "migrations": [
            {"app": "shop", "name": "0001_initial", "effects": [
                {"kind": "create_table", "op": "CreateModel",
                 "table": {"schema": null, "name": "shop_item"}, "columns": ["id", "title"]}]},
            {"app": "shop", "name": "0002_price", "dependencies": [["shop", "0001_initial"]],
             "effects": [{"kind": "add_column", "op": "AddField",
                          "table": {"schema": null, "name": "shop_item"}, "column": "price"}]},
            {"app": "shop", "name": "0003_stock", "dependencies": [["shop", "0002_price"]],
             "effects": [{"kind": "add_column", "op": "AddField",
                          "table": {"schema": null, "name": "shop_item"}, "column": "stock"}]}
        ]
    })
}

/// `app.name=kind` for every scan row.
fn scan_rows() -> Vec<String> {
    Spi::connect(|client| {
        client
            .select("SELECT app, name, kind FROM django_migrator.scan()", None, &[])
            .unwrap()
            .map(|row| {
                format!(
                    "{}.{}={}",
                    row.get::<String>(1).unwrap().unwrap(),
                    row.get::<String>(2).unwrap().unwrap(),
                    row.get::<String>(3).unwrap().unwrap()
                )
            })
            .collect()
    })
}

#[pg_test]
fn lock_key_is_the_documented_constant() {
    assert_eq!(crate::lock_key(), 0x646a_6d69_6772_6174);
}

#[pg_test]
fn load_manifest_returns_its_digest_and_manifest_info_reports_it() {
    setup_django_schema();
    let digest = load(shop_manifest());
    assert_eq!(digest.len(), 64);
    let info = Spi::get_three::<String, String, i32>(
        "SELECT alias, digest, migrations FROM django_migrator.manifest_info()",
    )
    .unwrap();
    assert_eq!(info, (Some("default".into()), Some(digest.clone()), Some(3)));
    // Loading again replaces, never adds.
    assert_eq!(load(shop_manifest()), digest);
    assert_eq!(
        Spi::get_one::<i64>("SELECT count(*) FROM django_migrator.manifest").unwrap(),
        Some(1)
    );
}

#[pg_test]
fn scan_reports_exactly_the_drift() {
    setup_django_schema();
    load(shop_manifest());
    // Clean apart from the orphan row: 0003 is pending, not drift.
    assert_eq!(scan_rows(), vec!["gone.0001_initial=orphan_record"]);

    Spi::run("DELETE FROM public.django_migrations WHERE name = '0002_price'").unwrap();
    assert_eq!(
        scan_rows(),
        vec!["shop.0002_price=unrecorded_present", "gone.0001_initial=orphan_record"]
    );

    Spi::run("DROP TABLE public.shop_item").unwrap();
    assert_eq!(
        scan_rows(),
        vec!["shop.0001_initial=recorded_missing", "gone.0001_initial=orphan_record"]
    );
    let (detail, objects) = Spi::get_two::<String, pgrx::JsonB>(
        "SELECT detail, objects FROM django_migrator.scan() WHERE kind = 'recorded_missing'",
    )
    .unwrap();
    assert_eq!(detail.unwrap(), "recorded, but table shop_item is missing");
    assert_eq!(
        objects.unwrap().0,
        json!([{"object": "table", "name": "shop_item", "expected": "present", "ok": false}])
    );
}

#[pg_test]
fn status_lists_every_migration_with_its_state() {
    setup_django_schema();
    load(shop_manifest());
    let states: Vec<(String, bool, String, bool)> = Spi::connect(|client| {
        client
            .select(
                "SELECT name, recorded, state, applied_at IS NOT NULL FROM django_migrator.status()",
                None,
                &[],
            )
            .unwrap()
            .map(|r| {
                (
                    r.get(1).unwrap().unwrap(),
                    r.get(2).unwrap().unwrap(),
                    r.get(3).unwrap().unwrap(),
                    r.get(4).unwrap().unwrap(),
                )
            })
            .collect()
    });
    assert_eq!(
        states,
        vec![
            ("0001_initial".into(), true, "applied".into(), true),
            ("0002_price".into(), true, "applied".into(), true),
            ("0003_stock".into(), false, "pending".into(), false),
        ]
    );
}

#[pg_test]
fn drift_summary_counts_every_kind() {
    setup_django_schema();
    load(shop_manifest());
    let orphans = Spi::get_one::<i64>(
        "SELECT count FROM django_migrator.drift_summary WHERE kind = 'orphan_record'",
    )
    .unwrap();
    assert_eq!(orphans, Some(1));
    assert_eq!(
        Spi::get_one::<i64>("SELECT count(*) FROM django_migrator.drift_summary").unwrap(),
        Some(5)
    );
}

#[pg_test]
fn a_database_without_django_migrations_is_all_pending() {
    load(shop_manifest());
    assert_eq!(scan_rows(), Vec::<String>::new());
}

#[pg_test(error = "django_migrator: no manifest is loaded in this database")]
fn scan_without_manifest_fails_loudly() {
    scan_rows();
}

#[pg_test(error = "django_migrator: manifest format_version 2 is not supported (this build reads version 1); upgrade django-migrator and the extension together")]
fn a_newer_manifest_version_is_refused() {
    load(json!({"format_version": 2, "alias": "default", "migrations": []}));
}

#[pg_test(error = "django_migrator: migration shop.0002 depends on shop.0009, which is not in the manifest")]
fn an_unknown_dependency_is_refused() {
    load(json!({"format_version": 1, "alias": "default", "migrations": [
        {"app": "shop", "name": "0002", "dependencies": [["shop", "0009"]]}]}));
}

#[pg_test]
fn a_rejected_manifest_leaves_the_stored_one_unchanged() {
    let digest = load(shop_manifest());
    Spi::run(
        "DO $$ BEGIN
             PERFORM django_migrator.load_manifest('{\"format_version\": 1, \"alias\": \"x\"}');
             RAISE EXCEPTION 'a bad manifest was accepted';
         EXCEPTION WHEN invalid_json_text THEN NULL;
         END $$",
    )
    .unwrap();
    assert_eq!(
        Spi::get_one::<String>("SELECT digest FROM django_migrator.manifest_info()").unwrap(),
        Some(digest)
    );
}

#[pg_test]
fn the_lock_is_held_labelled_and_released() {
    // Other tests may hold the key for a moment: lock() waits for them in the lock manager.
    assert_eq!(
        Spi::get_one::<bool>("SELECT django_migrator.lock('60 seconds', 'deploy 42')").unwrap(),
        Some(true)
    );
    // Taking it again in the same session does not stack.
    assert_eq!(
        Spi::get_one::<bool>("SELECT django_migrator.try_lock('deploy 42')").unwrap(),
        Some(true)
    );
    // `waiting` counts other tests queued on the key right now, so only its presence is fixed.
    let (holder, waiting) = Spi::get_two::<String, i32>(
        "SELECT holder, waiting FROM django_migrator.lock_holder() WHERE pid = pg_backend_pid()",
    )
    .unwrap();
    assert_eq!(holder.as_deref(), Some("deploy 42"));
    assert!(waiting.is_some_and(|w| w >= 0));
    assert_eq!(Spi::get_one::<bool>("SELECT django_migrator.unlock()").unwrap(), Some(true));
    assert_eq!(Spi::get_one::<bool>("SELECT django_migrator.unlock()").unwrap(), Some(false));
    assert_eq!(
        Spi::get_one::<i64>(
            "SELECT count(*) FROM django_migrator.lock_holder() WHERE pid = pg_backend_pid()"
        )
        .unwrap(),
        Some(0)
    );
}

#[pg_test]
fn identity_names_this_database() {
    let (sysid, name) = Spi::get_two::<i64, String>(
        "SELECT system_identifier, database_name FROM django_migrator.identity()",
    )
    .unwrap();
    assert!(sysid.unwrap() != 0);
    assert_eq!(
        name,
        Spi::get_one::<String>("SELECT current_database()::text").unwrap()
    );
}

#[pg_test]
fn unique_together_is_judged_by_the_columns_an_index_covers() {
    Spi::run(
        "CREATE TABLE public.pair (id bigint PRIMARY KEY, a int, b int);
         CREATE UNIQUE INDEX pair_generated_name_1 ON public.pair (b, a);",
    )
    .unwrap();
    load(json!({"format_version": 1, "alias": "default", "migrations": [
        {"app": "p", "name": "0001", "effects": [
            {"kind": "create_table", "table": {"name": "pair"}, "columns": ["id", "a", "b"]},
            {"kind": "alter_unique_together", "table": {"name": "pair"}, "old": [], "new": [["a", "b"]]}]}]}));
    // Not recorded, everything present.
    assert_eq!(scan_rows(), vec!["p.0001=unrecorded_present"]);
    Spi::run("DROP INDEX public.pair_generated_name_1; CREATE INDEX pair_plain ON public.pair (a, b);")
        .unwrap();
    assert_eq!(scan_rows(), vec!["p.0001=half_applied"]);
}

fn repair_rows(sql: &str) -> Vec<String> {
    Spi::connect(|client| {
        client
            .select(sql, None, &[])
            .unwrap()
            .map(|row| {
                format!(
                    "{} {}.{}",
                    row.get::<String>(1).unwrap().unwrap(),
                    row.get::<String>(2).unwrap().unwrap(),
                    row.get::<String>(3).unwrap().unwrap()
                )
            })
            .collect()
    })
}

fn history() -> Vec<String> {
    Spi::connect(|client| {
        client
            .select(
                "SELECT id || ' ' || app || '.' || name || ' ' || applied::text
                   FROM public.django_migrations ORDER BY id",
                None,
                &[],
            )
            .unwrap()
            .map(|row| row.get::<String>(1).unwrap().unwrap())
            .collect()
    })
}

#[pg_test]
fn repair_fake_applies_with_a_marked_timestamp_and_undo_restores_exactly() {
    serialize_on_the_lock();
    setup_django_schema();
    load(shop_manifest());
    Spi::run("DELETE FROM public.django_migrations WHERE name = '0002_price'").unwrap();
    let before = history();

    // A dry run plans and writes nothing.
    assert_eq!(
        repair_rows("SELECT * FROM django_migrator.repair(dry_run => true)"),
        vec!["fake_apply shop.0002_price"]
    );
    assert_eq!(history(), before);

    assert_eq!(
        repair_rows("SELECT * FROM django_migrator.repair()"),
        vec!["fake_apply shop.0002_price"]
    );
    assert_eq!(scan_rows(), vec!["gone.0001_initial=orphan_record"]);
    let micros = Spi::get_one::<f64>(
        "SELECT (extract(microseconds FROM applied)::bigint % 1000000)::float8
           FROM public.django_migrations WHERE name = '0002_price'",
    )
    .unwrap();
    assert_eq!(micros, Some(999999.0));
    let (id, inserted) = Spi::get_two::<i64, i64>(
        "SELECT id, jsonb_array_length(inserted)::bigint FROM django_migrator.repairs",
    )
    .unwrap();
    assert_eq!(inserted, Some(1));

    let undone = repair_rows(&format!(
        "SELECT action, app, name FROM django_migrator.undo_repair({})",
        id.unwrap()
    ));
    assert_eq!(undone, vec!["delete shop.0002_price"]);
    assert_eq!(history(), before);
    assert_eq!(
        Spi::get_one::<bool>("SELECT undone_at IS NOT NULL FROM django_migrator.repairs").unwrap(),
        Some(true)
    );
}

#[pg_test]
fn repair_rewinds_a_missing_table_with_its_dependents_and_undo_restores_ids() {
    serialize_on_the_lock();
    setup_django_schema();
    load(shop_manifest());
    Spi::run("DROP TABLE public.shop_item").unwrap();
    let before = history();
    assert_eq!(
        repair_rows("SELECT * FROM django_migrator.repair()"),
        vec!["fake_rewind shop.0001_initial", "fake_rewind shop.0002_price"]
    );
    assert_eq!(scan_rows(), vec!["gone.0001_initial=orphan_record"]);
    let id = Spi::get_one::<i64>("SELECT max(id) FROM django_migrator.repairs").unwrap().unwrap();
    repair_rows(&format!("SELECT action, app, name FROM django_migrator.undo_repair({id})"));
    assert_eq!(history(), before);
}

#[pg_test]
fn a_refused_rewind_writes_nothing() {
    serialize_on_the_lock();
    setup_django_schema();
    load(shop_manifest());
    // The price column is gone, but 0003 (recorded by hand here) has its column present.
    Spi::run(
        "ALTER TABLE public.shop_item DROP COLUMN price, ADD COLUMN stock int;
         INSERT INTO public.django_migrations (app, name, applied) VALUES ('shop', '0003_stock', now());",
    )
    .unwrap();
    let before = history();
    assert_eq!(
        repair_rows("SELECT * FROM django_migrator.repair()"),
        vec!["refuse shop.0002_price"]
    );
    assert_eq!(history(), before);
    assert_eq!(
        Spi::get_one::<i64>("SELECT count(*) FROM django_migrator.repairs").unwrap(),
        Some(0)
    );
}

#[pg_test(error = "django_migrator: cannot undo: the row it inserted for shop.0002_price has changed or is gone since repair 1; nothing was changed")]
fn undo_refuses_when_the_history_changed_since() {
    serialize_on_the_lock();
    // Sequences are not transactional: other tests' repairs moved it.
    Spi::run("ALTER SEQUENCE django_migrator.repair_journal_id_seq RESTART").unwrap();
    setup_django_schema();
    load(shop_manifest());
    Spi::run("DELETE FROM public.django_migrations WHERE name = '0002_price'").unwrap();
    Spi::run("SELECT * FROM django_migrator.repair()").unwrap();
    Spi::run("DELETE FROM public.django_migrations WHERE name = '0002_price'").unwrap();
    let id = Spi::get_one::<i64>("SELECT max(id) FROM django_migrator.repairs").unwrap().unwrap();
    assert_eq!(id, 1, "the error message names repair 1");
    Spi::run("SELECT * FROM django_migrator.undo_repair(1)").unwrap();
}

#[pg_test(error = "django_migrator: there is no repair 42 in django_migrator.repairs")]
fn undo_of_an_unknown_repair_is_an_error() {
    serialize_on_the_lock();
    Spi::run("SELECT * FROM django_migrator.undo_repair(42)").unwrap();
}

#[pg_test]
fn record_companions_records_only_companion_migrations_with_effects_present() {
    serialize_on_the_lock();
    setup_django_schema();
    let mut manifest = shop_manifest();
    manifest["migrations"][2]["companion"] = json!(true);
    load(manifest);
    // 0003 (a companion) has its column, 0002 (not one) lost its row: only 0003 is recorded.
    Spi::run(
        "ALTER TABLE public.shop_item ADD COLUMN stock int;
         DELETE FROM public.django_migrations WHERE name = '0002_price';",
    )
    .unwrap();
    assert_eq!(
        repair_rows("SELECT * FROM django_migrator.record_companions()"),
        vec!["refuse shop.0003_stock"],
        "its dependency 0002 is not recorded"
    );
    Spi::run("INSERT INTO public.django_migrations (app, name, applied) VALUES ('shop', '0002_price', now())")
        .unwrap();
    assert_eq!(
        repair_rows("SELECT * FROM django_migrator.record_companions()"),
        vec!["fake_apply shop.0003_stock"]
    );
    assert_eq!(scan_rows(), vec!["gone.0001_initial=orphan_record"]);
}

#[pg_test]
fn a_monitoring_role_can_scan_but_cannot_change_anything() {
    setup_django_schema();
    load(shop_manifest());
    create_refusal_probe();
    Spi::run(
        "CREATE ROLE dm_monitor NOLOGIN;
         GRANT SELECT ON public.django_migrations TO dm_monitor;
         SET LOCAL ROLE dm_monitor;",
    )
    .unwrap();
    assert_eq!(scan_rows(), vec!["gone.0001_initial=orphan_record"]);
    assert_eq!(
        Spi::get_one::<i64>("SELECT count(*) FROM django_migrator.status()").unwrap(),
        Some(3)
    );
    assert_eq!(
        Spi::get_one::<i64>("SELECT sum(count)::bigint FROM django_migrator.drift_summary").unwrap(),
        Some(1)
    );
    assert_eq!(
        Spi::get_one::<i64>("SELECT count(*) FROM django_migrator.lock_holder()").unwrap(),
        Some(0)
    );
    // Every writer is refused with insufficient_privilege, and nothing changes.
    for call in [
        "SELECT django_migrator.load_manifest('{}'::jsonb)",
        "SELECT django_migrator._load_manifest('{}', ARRAY['public'], 'public')",
        "SELECT * FROM django_migrator.repair()",
        "SELECT * FROM django_migrator.record_companions()",
        "SELECT * FROM django_migrator.undo_repair(1)",
        "SELECT django_migrator._journal_append('a', 'b', 'c', '[]', '[]', '[]')",
        "INSERT INTO django_migrator.lock_labels VALUES (1, now(), 'x', now())",
        "UPDATE django_migrator.manifest SET alias = 'x'",
    ] {
        let refused = Spi::get_one::<bool>(&format!(
            "SELECT pg_temp.django_migrator_test_refused($q${call}$q$)"
        ))
        .unwrap();
        assert_eq!(refused, Some(true), "{call}");
    }
}
