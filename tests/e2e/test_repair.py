"""End-to-end tests of repair: `migrate-all --repair`, `check --repair`, and the SQL functions
`django_migrator.repair()` / `django_migrator.undo_repair(id)` with their journal.

Each drift kind is produced the way it happens in life (a hand-applied hotfix, a partial
restore, an interrupted non-atomic migration, a router rule that changed after the first
migrate), and the tests pin the exact plan, the exact `django_migrations` rows before and after,
and the exit codes.

Run from the repository root: `.venv/bin/python -m pytest tests/e2e/test_repair.py -q`.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import BIN, MANAGE, PYTHON, ROOT, Shop

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Settings variants and the `stock` app live under fixtures/; manage.py itself puts the example
# project's directory first on sys.path, so `shop.settings` stays importable.
FIXTURE_ENV = {"PYTHONPATH": str(FIXTURES)}
WITH_STOCK = ("--settings", "shop_variants.with_stock")
METRICS_NOWHERE = ("--settings", "shop_variants.metrics_nowhere")

CATALOG = ["catalog.0001_initial", "catalog.0002_product_sku",
           "catalog.0003_rename_price_unit_price", "catalog.0004_product_cat_price_index",
           "catalog.0005_fill_sku"]
CATALOG_TABLES = "catalog_product_related_categories, catalog_product, catalog_category"
CATALOG_MISSING = ("recorded, but table catalog_category is missing; table catalog_product is "
                   "missing; table catalog_product_related_categories is missing")
SESSIONS_PRESENT = ("not recorded, but table django_session is present; column "
                    "django_session.session_key is present; column django_session.session_data "
                    "is present; and 1 more")


def step(action, migration, reason, applied):
    app, name = migration.split(".")
    return {"action": action, "app": app, "name": name, "reason": reason, "applied": applied}


def unapplied(steps):
    """A plan as the journal stores it: the steps without the report's `applied` flag."""
    return [{k: v for k, v in s.items() if k != "applied"} for s in steps]


def rewound_with(root, reason):
    """The steps of rewinding `root` (first in the list) and the dependents after it."""
    first, *dependents = root
    return [step("fake_rewind", first, f"{reason}; migrate will apply it again", True)] + [
        step("fake_rewind", d,
             f"depends on {first}, which is rewound, and none of its effects is present", True)
        for d in dependents
    ]


def by_alias(report):
    return {entry["alias"]: entry for entry in report["aliases"]}


def drift_kinds(entry):
    return [(r["app"] + "." + r["name"], r["kind"]) for r in entry["drift"]]


def assert_untouched_clean(entry):
    assert entry["status"] == "clean", entry
    assert entry["drift"] == [] and entry["repairs"] == [], entry
    assert entry["migrated"] == [] and entry["pending"] == [] and entry["errors"] == [], entry


def history(shop, alias):
    """Every row of django_migrations, exactly, ordered by id."""
    return json.loads(shop.sql(alias, """
        SELECT coalesce(json_agg(json_build_object('id', id, 'app', app, 'name', name,
                                                   'applied', applied) ORDER BY id), '[]')
          FROM django_migrations"""))


def journal(shop, alias):
    return json.loads(shop.sql(alias, """
        SELECT coalesce(json_agg(json_build_object(
                   'id', id, 'alias', alias, 'plan', plan, 'inserted', inserted,
                   'deleted', deleted, 'undone', undone_at IS NOT NULL) ORDER BY id), '[]')
          FROM django_migrator.repairs"""))


def keys(rows):
    return [row["app"] + "." + row["name"] for row in rows]


def marked_rows(shop, alias, repair_id):
    """(rows repair `repair_id` inserted, how many of them carry its mark): `applied` is the
    second of the repair's transaction plus .999999."""
    counts = shop.sql(alias, f"""
        SELECT count(*), count(*) FILTER (
                   WHERE m.applied = date_trunc('second', j.repaired_at)
                                     + interval '0.999999 second'
                     AND to_char(m.applied, 'US') = '999999')
          FROM django_migrator.repairs j
          CROSS JOIN LATERAL jsonb_array_elements(j.inserted) i
          JOIN django_migrations m ON m.id = (i ->> 'id')::bigint
         WHERE j.id = {int(repair_id)}""")
    total, marked = counts.split("|")
    return int(total), int(marked)


def psql_error(shop, alias, sql):
    """Runs `sql`, which must fail; returns psql's verbose error (with the SQLSTATE)."""
    code, error = shop.cluster.psql_failure(shop.db[alias], sql)
    assert code != 0, f"{sql!r} succeeded"
    return error


def stock_cli_json(shop, *args):
    run = shop.cli(*WITH_STOCK, *args, "--format", "json", env=FIXTURE_ENV)
    return run, run.json()


def stock_manage(shop, *args):
    run = shop.manage(*args, *WITH_STOCK, "--noinput", "-v", "0", env=FIXTURE_ENV)
    assert run.code == 0, str(run)


# --- each drift kind, end to end ---------------------------------------------------------------


def test_hand_applied_hotfix_is_fake_applied_and_migrate_goes_on(migrated_shop):
    shop = migrated_shop
    # A hotfix: catalog.0002's SQL (as `sqlmigrate` prints it) run by hand in psql, without
    # the row; 0003 to 0005 have not been deployed yet.
    run = shop.manage("migrate", "catalog", "0001", "--database", "default", "-v", "0")
    assert run.code == 0, str(run)
    sql = shop.manage("sqlmigrate", "catalog", "0002", "--database", "default")
    assert sql.code == 0 and 'ADD COLUMN "sku"' in sql.out, str(sql)
    shop.sql("default", sql.out)
    before = history(shop, "default")
    assert not {"catalog.0002_product_sku", "catalog.0003_rename_price_unit_price"} & set(
        keys(before))
    analytics_before = history(shop, "analytics")

    plan = [step("fake_apply", "catalog.0002_product_sku",
                 "not recorded, but column catalog_product.sku is present", False)]
    run, report = shop.cli_json("check", "--repair")
    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    assert drift_kinds(default) == [("catalog.0002_product_sku", "unrecorded_present")]
    assert default["repairs"] == plan
    assert default["pending"] == CATALOG[2:], default

    run, report = shop.cli_json("migrate-all", "--repair")

    assert run.code == 0, str(run)
    assert report["all_clean"] is True
    aliases = by_alias(report)
    default = aliases["default"]
    assert default["status"] == "clean", default
    assert default["repairs"] == [dict(plan[0], applied=True)]
    assert default["drift"] == [] and default["errors"] == [], default
    # Repair first, then Django's migrate applies what follows the hotfix.
    assert default["migrated"] == CATALOG[2:]
    assert_untouched_clean(aliases["analytics"])
    assert aliases["replica"]["status"] == "skipped"

    after = history(shop, "default")
    assert after[:len(before)] == before
    new = after[len(before):]
    assert keys(new) == ["catalog.0002_product_sku", *CATALOG[2:]]
    assert new[0]["id"] > before[-1]["id"]
    assert new[0]["applied"].endswith(".999999+00:00"), new[0]
    entries = journal(shop, "default")
    assert entries == [{"id": entries[0]["id"], "alias": "default", "plan": unapplied(plan),
                        "inserted": [new[0]], "deleted": [], "undone": False}]
    assert marked_rows(shop, "default", entries[0]["id"]) == (1, 1)
    assert history(shop, "analytics") == analytics_before
    assert journal(shop, "analytics") == []


def test_partial_restore_is_rewound_and_migrate_rebuilds_the_tables(migrated_shop):
    shop = migrated_shop
    # A restore that brought back django_migrations but not the catalog tables.
    shop.sql("default", f"DROP TABLE {CATALOG_TABLES}")
    before = history(shop, "default")
    catalog_rows = [row for row in before if row["app"] == "catalog"]
    assert keys(catalog_rows) == CATALOG

    run, report = shop.cli_json("check")
    assert run.code == 1, str(run)
    assert drift_kinds(by_alias(report)["default"]) == [
        ("catalog.0001_initial", "recorded_missing")]

    run, report = shop.cli_json("migrate-all", "--repair")

    assert run.code == 0, str(run)
    assert report["all_clean"] is True
    aliases = by_alias(report)
    default = aliases["default"]
    plan = rewound_with(CATALOG, CATALOG_MISSING)
    assert default["repairs"] == plan
    assert default["status"] == "clean" and default["drift"] == [], default
    assert default["migrated"] == CATALOG
    assert_untouched_clean(aliases["analytics"])

    for table in ("catalog_category", "catalog_product", "catalog_product_related_categories"):
        assert shop.table_exists("default", table), table
    after = history(shop, "default")
    kept = [row for row in before if row["app"] != "catalog"]
    assert after[:len(kept)] == kept
    assert keys(after[len(kept):]) == CATALOG
    assert after[len(kept)]["id"] > before[-1]["id"]
    entries = journal(shop, "default")
    assert entries == [{"id": entries[0]["id"], "alias": "default", "plan": unapplied(plan),
                        "inserted": [], "deleted": catalog_rows, "undone": False}]


def test_rewind_is_refused_when_a_dependent_has_present_effects(migrated_shop):
    shop = migrated_shop
    # taggit's tables are gone, but catalog.0001 (which depends on taggit) has its tables.
    shop.sql("default", "DROP TABLE taggit_taggeditem, taggit_tag")
    before = history(shop, "default")

    run, report = shop.cli_json("migrate-all", "--repair")

    assert run.code == 1, str(run)
    assert report["all_clean"] is False
    aliases = by_alias(report)
    default = aliases["default"]
    assert default["status"] == "drift", default
    assert default["repairs"] == [step(
        "refuse", "taggit.0001_initial",
        "recorded, but table taggit_tag is missing; table taggit_taggeditem is missing; "
        "rewinding it would also rewind catalog.0001_initial, whose effects are present "
        "(catalog_category, catalog_category.id, catalog_category.name)", False)]
    assert drift_kinds(default) == [("taggit.0001_initial", "recorded_missing")]
    assert default["migrated"] == [], default
    assert len(default["errors"]) == 1 and "not migrating" in default["errors"][0], default
    assert aliases["analytics"]["status"] == "clean", aliases["analytics"]

    assert history(shop, "default") == before
    assert journal(shop, "default") == []
    assert not shop.table_exists("default", "taggit_tag")


def stock_databases(shop):
    """analytics fully migrated with the stock app in INSTALLED_APPS (the router keeps its
    tables off analytics), default at stock.0001."""
    stock_manage(shop, "migrate", "--database", "analytics")
    stock_manage(shop, "migrate", "stock", "0001", "--database", "default")


def test_interrupted_non_atomic_migration_is_recorded_with_a_warning_and_not_migrated(
        migrated_shop):
    shop = migrated_shop
    stock_databases(shop)
    # stock.0002 is `atomic = False`: a deploy killed between its two AddFields leaves the first
    # column (the first statement of `sqlmigrate stock 0002`) and no row.
    shop.sql("default", 'ALTER TABLE "stock_item" ADD COLUMN "on_hand" integer NULL')
    before = history(shop, "default")
    assert keys(before)[-1] == "stock.0001_initial"

    run, report = stock_cli_json(shop, "check", "--repair")
    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    detail = ("not recorded, column stock_item.reserved is missing: 1 of 2 checkable effects "
              "present; manual recovery needed")
    assert [(r["kind"], r["recorded"], r["present"], r["missing"], r["detail"])
            for r in default["drift"]] == [("half_applied", False, 1, 1, detail)]
    plan = [step("fake_apply", "stock.0002_item_counts", detail, False),
            step("warn", "stock.0002_item_counts", detail, False)]
    assert default["repairs"] == plan
    assert default["pending"] == ["stock.0003_supplier"], default

    run, report = stock_cli_json(shop, "migrate-all", "--repair")

    assert run.code == 1, str(run)
    assert report["all_clean"] is False
    aliases = by_alias(report)
    default = aliases["default"]
    assert default["status"] == "drift", default
    assert default["repairs"] == [dict(plan[0], applied=True), plan[1]]
    # Recorded now, still half applied: only a human can add the missing column.
    assert [(r["app"] + "." + r["name"], r["kind"], r["recorded"]) for r in default["drift"]] == [
        ("stock.0002_item_counts", "half_applied", True)]
    assert default["migrated"] == [], default
    assert len(default["errors"]) == 1 and "not migrating" in default["errors"][0], default
    assert_untouched_clean(aliases["analytics"])

    after = history(shop, "default")
    assert after[:len(before)] == before
    assert keys(after[len(before):]) == ["stock.0002_item_counts"]
    assert after[-1]["applied"].endswith(".999999+00:00"), after[-1]
    entries = journal(shop, "default")
    assert entries == [{"id": entries[0]["id"], "alias": "default", "plan": unapplied(plan),
                        "inserted": [after[-1]], "deleted": [], "undone": False}]
    assert marked_rows(shop, "default", entries[0]["id"]) == (1, 1)
    # Not migrated: stock.0003 neither ran nor was recorded.
    assert not shop.table_exists("default", "stock_supplier")
    assert "stock.0003_supplier" not in keys(after)


def test_recorded_half_applied_migration_gets_only_a_warning(migrated_shop):
    shop = migrated_shop
    stock_databases(shop)
    stock_manage(shop, "migrate", "stock", "0002", "--database", "default")
    shop.sql("default", "ALTER TABLE stock_item DROP COLUMN reserved")
    before = history(shop, "default")

    run, report = stock_cli_json(shop, "migrate-all", "--repair")

    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    assert default["status"] == "drift", default
    assert default["repairs"] == [step(
        "warn", "stock.0002_item_counts",
        "recorded, column stock_item.reserved is missing: 1 of 2 checkable effects present; "
        "manual recovery needed", False)]
    assert drift_kinds(default) == [("stock.0002_item_counts", "half_applied")]
    assert default["migrated"] == [], default
    assert history(shop, "default") == before
    assert journal(shop, "default") == []
    assert not shop.table_exists("default", "stock_supplier")


# --- a router rule that changed after the first migrate ----------------------------------------


def test_router_rule_changed_after_first_migrate_is_rewound_and_migrated(shop):
    # The first deploy's router kept metrics off every database: Django still recorded metrics'
    # migrations on analytics, without creating a table.
    for alias in ("default", "analytics"):
        run = shop.manage("migrate", "--database", alias, *METRICS_NOWHERE, "--noinput",
                          "-v", "0", env=FIXTURE_ENV)
        assert run.code == 0, str(run)
    assert not shop.table_exists("analytics", "metrics_pageview")
    before = history(shop, "analytics")
    metrics_rows = [row for row in before if row["app"] == "metrics"]
    assert keys(metrics_rows) == ["metrics.0001_initial", "metrics.0002_pageview_referrer"]
    default_before = history(shop, "default")

    # Today's router sends metrics to analytics.
    run, report = shop.cli_json("check")
    assert run.code == 1, str(run)
    aliases = by_alias(report)
    assert drift_kinds(aliases["analytics"]) == [("metrics.0001_initial", "recorded_missing")]
    assert aliases["analytics"]["drift"][0]["detail"] == (
        "recorded, but table metrics_pageview is missing")
    assert aliases["default"]["status"] == "clean", aliases["default"]

    run, report = shop.cli_json("migrate-all", "--repair")

    assert run.code == 0, str(run)
    assert report["all_clean"] is True
    aliases = by_alias(report)
    analytics = aliases["analytics"]
    plan = rewound_with(["metrics.0001_initial", "metrics.0002_pageview_referrer"],
                        "recorded, but table metrics_pageview is missing")
    assert analytics["repairs"] == plan
    assert analytics["status"] == "clean" and analytics["drift"] == [], analytics
    assert analytics["migrated"] == ["metrics.0001_initial", "metrics.0002_pageview_referrer"]
    assert_untouched_clean(aliases["default"])

    assert shop.table_exists("analytics", "metrics_pageview")
    assert not shop.table_exists("default", "metrics_pageview")
    after = history(shop, "analytics")
    kept = [row for row in before if row["app"] != "metrics"]
    assert after[:len(kept)] == kept
    assert keys(after[len(kept):]) == ["metrics.0001_initial", "metrics.0002_pageview_referrer"]
    entries = journal(shop, "analytics")
    assert entries == [{"id": entries[0]["id"], "alias": "analytics", "plan": unapplied(plan),
                        "inserted": [], "deleted": metrics_rows, "undone": False}]
    assert history(shop, "default") == default_before
    assert journal(shop, "default") == []


# --- check --repair ----------------------------------------------------------------------------


def test_check_repair_shows_the_plan_and_writes_nothing(migrated_shop):
    shop = migrated_shop
    shop.sql("default", f"DROP TABLE {CATALOG_TABLES}")
    shop.sql("default", "DELETE FROM django_migrations WHERE app = 'sessions'")
    shop.sql("analytics", "DROP TABLE metrics_pageview")

    def snapshot():
        return {alias: (history(shop, alias), journal(shop, alias),
                        shop.sql(alias, "SELECT count(*) FROM django_migrator.manifest"))
                for alias in ("default", "analytics")}

    before = snapshot()

    run, report = shop.cli_json("check", "--repair")

    assert run.code == 1, str(run)
    assert report["command"] == "check"
    aliases = by_alias(report)
    default_plan = [dict(s, applied=False) for s in rewound_with(CATALOG, CATALOG_MISSING)] + [
        step("fake_apply", "sessions.0001_initial", SESSIONS_PRESENT, False)]
    assert aliases["default"]["repairs"] == default_plan
    assert aliases["analytics"]["repairs"] == [
        dict(s, applied=False) for s in rewound_with(
            ["metrics.0001_initial", "metrics.0002_pageview_referrer"],
            "recorded, but table metrics_pageview is missing")]
    for alias in ("default", "analytics"):
        assert aliases[alias]["status"] == "drift", aliases[alias]
        assert aliases[alias]["migrated"] == [], aliases[alias]

    code, out, _ = run = shop.cli("check", "--repair", "--color", "never")
    assert code == 1, str(run)
    assert out.count("repair (plan, not applied):") == 2, out
    lines = [line.strip() for line in out.splitlines()]
    assert f"fake_apply  sessions.0001_initial: {SESSIONS_PRESENT}" in lines, out
    assert ("fake_rewind catalog.0005_fill_sku: depends on catalog.0001_initial, which is "
            "rewound, and none of its effects is present") in lines, out

    assert snapshot() == before
    assert not shop.table_exists("default", "catalog_product")
    assert not shop.table_exists("analytics", "metrics_pageview")


# --- undo_repair -------------------------------------------------------------------------------


def undo_sql(repair_id):
    return f"SELECT * FROM django_migrator.undo_repair({int(repair_id)})"


def undo(shop, alias, repair_id):
    rows = shop.sql(alias, undo_sql(repair_id))
    return [tuple(line.split("|")) for line in rows.splitlines()]


def test_undo_repair_restores_what_migrate_all_repair_wrote(migrated_shop):
    shop = migrated_shop
    shop.sql("default", "DELETE FROM django_migrations WHERE (app, name) IN ("
                        "('sessions', '0001_initial'), ('catalog', '0002_product_sku'), "
                        "('taggit', '0003_taggeditem_add_unique_index'))")
    before = history(shop, "default")

    run, report = shop.cli_json("migrate-all", "--repair")

    assert run.code == 0, str(run)
    default = by_alias(report)["default"]
    assert [(s["action"], s["app"] + "." + s["name"], s["applied"])
            for s in default["repairs"]] == [
        ("fake_apply", "taggit.0003_taggeditem_add_unique_index", True),
        ("fake_apply", "catalog.0002_product_sku", True),
        ("fake_apply", "sessions.0001_initial", True)]
    assert default["migrated"] == [], default
    repaired = history(shop, "default")
    assert repaired[:len(before)] == before
    assert len(repaired) == len(before) + 3
    [entry] = journal(shop, "default")
    assert entry["inserted"] == repaired[len(before):]

    assert undo(shop, "default", entry["id"]) == [
        ("delete", "taggit", "0003_taggeditem_add_unique_index"),
        ("delete", "catalog", "0002_product_sku"),
        ("delete", "sessions", "0001_initial")]

    assert history(shop, "default") == before
    assert journal(shop, "default") == [dict(entry, undone=True)]

    error = psql_error(shop, "default", undo_sql(entry["id"]))
    assert "55000" in error, error
    assert f"cannot undo: repair {entry['id']} was already undone at " in error, error
    assert "nothing was changed" in error, error
    assert history(shop, "default") == before

    error = psql_error(shop, "default", undo_sql(999))
    assert "there is no repair 999 in django_migrator.repairs" in error, error


def test_undo_repair_puts_rewound_rows_back_with_their_ids(migrated_shop):
    shop = migrated_shop
    run = shop.cli("migrate-all", "--database", "default")  # loads default's manifest
    assert run.code == 0, str(run)
    shop.sql("default", f"DROP TABLE {CATALOG_TABLES}")
    shop.sql("default", "DELETE FROM django_migrations WHERE app = 'sessions'")
    before = history(shop, "default")

    steps = shop.sql("default", "SELECT action, app || '.' || name FROM django_migrator.repair()")
    assert [tuple(line.split("|")) for line in steps.splitlines()] == [
        *[("fake_rewind", key) for key in CATALOG], ("fake_apply", "sessions.0001_initial")]
    repaired = history(shop, "default")
    assert "catalog.0001_initial" not in keys(repaired)
    [entry] = journal(shop, "default")
    assert entry["deleted"] == [row for row in before if row["app"] == "catalog"]

    assert undo(shop, "default", entry["id"]) == [
        ("delete", "sessions", "0001_initial"),
        *[("restore", *key.split(".")) for key in CATALOG]]
    assert history(shop, "default") == before


def test_undo_repair_is_refused_after_the_history_changed(migrated_shop):
    shop = migrated_shop
    shop.sql("default", f"DROP TABLE {CATALOG_TABLES}")
    run = shop.cli("migrate-all", "--repair")
    assert run.code == 0, str(run)
    [rewind] = journal(shop, "default")
    # Since the rewind, Django's migrate has recorded catalog again (with new ids).
    changed = history(shop, "default")

    error = psql_error(shop, "default", undo_sql(rewind["id"]))

    assert "55000" in error, error
    assert (f"cannot undo: catalog.0001_initial (or its row id) is recorded again since repair "
            f"{rewind['id']}; nothing was changed") in error, error
    assert history(shop, "default") == changed
    assert journal(shop, "default") == [rewind]

    # A row that a repair inserted and someone edited afterwards.
    shop.sql("default", "DELETE FROM django_migrations WHERE app = 'sessions'")
    run = shop.cli("migrate-all", "--repair")
    assert run.code == 0, str(run)
    insert = journal(shop, "default")[-1]
    assert keys(insert["inserted"]) == ["sessions.0001_initial"]
    shop.sql("default", "UPDATE django_migrations SET applied = applied - interval '1 hour' "
                        "WHERE app = 'sessions'")
    changed = history(shop, "default")

    error = psql_error(shop, "default", undo_sql(insert["id"]))

    assert (f"cannot undo: the row it inserted for sessions.0001_initial has changed or is gone "
            f"since repair {insert['id']}; nothing was changed") in error, error
    assert history(shop, "default") == changed
    assert journal(shop, "default") == [rewind, insert]


# --- kill -9 during repair ---------------------------------------------------------------------

# Every migration of default with a checkable effect: deleting their rows makes a plan of
# twelve fake-applies and nothing left for Django's migrate to do.
EFFECTFUL = ["contenttypes.0001_initial", "auth.0001_initial", "admin.0001_initial",
             "contenttypes.0002_remove_content_type_name", "taggit.0001_initial",
             "taggit.0002_auto_20150616_2121", "taggit.0003_taggeditem_add_unique_index",
             *CATALOG[:4], "sessions.0001_initial"]
# With log_statement = 'all' on the copy, the server log shows how far each killed run got.
REPAIR_STATEMENT = "django_migrator.repair(dry_run => $1)"
OPEN_TRANSACTION_LOST = "unexpected EOF on client connection with an open transaction"


def backends(shop, alias):
    return int(shop.sql("postgres", "SELECT count(*) FROM pg_stat_activity "
                                    f"WHERE datname = '{shop.db[alias]}'"))


def wait_for_no_backend(shop, alias, timeout=15):
    deadline = time.monotonic() + timeout
    while backends(shop, alias):
        assert time.monotonic() < deadline, (
            f"a backend of {shop.db[alias]} is still there {timeout} s after the kill")
        time.sleep(0.02)


def test_kill_9_during_repair_leaves_the_history_before_or_after_never_between(
        migrated_shop, tmp_path):
    source = migrated_shop
    pairs = ", ".join("('{}', '{}')".format(*key.split(".")) for key in EFFECTFUL)
    source.sql("default", f"DELETE FROM django_migrations WHERE (app, name) IN ({pairs})")
    before = history(source, "default")
    cluster = source.cluster
    log = cluster.dir / "postgres.log"
    # A killed CLI leaves its export directory behind; keep it out of the system's /tmp.
    env = {"TMPDIR": str(tmp_path)}
    # makemigrations has nothing to do here; skipping it keeps each run short.
    argv_tail = ("migrate-all", "--repair", "--non-interactive", "--skip-makemigrations",
                 "--database", "default")

    def clone(prefix):
        cluster.create_databases(prefix, template_prefix=source.prefix)
        return Shop(cluster, prefix)

    complete = {}

    def assert_after(shop):
        """django_migrations exactly as a complete repair leaves it: the same rows kept, the
        same rows added with the same ids in every copy (each starts from the same sequence),
        each marked with the second of its own repair."""
        [entry] = journal(shop, "default")
        assert [s["action"] for s in entry["plan"]] == ["fake_apply"] * len(EFFECTFUL)
        after = history(shop, "default")
        assert after[:len(before)] == before
        new = after[len(before):]
        assert keys(new) == EFFECTFUL
        ids = [row["id"] for row in new]
        assert ids == list(range(ids[0], ids[0] + len(EFFECTFUL)))
        assert ids[0] > max(row["id"] for row in before)
        assert ids == complete.setdefault("ids", ids)
        assert entry["inserted"] == new
        assert marked_rows(shop, "default", entry["id"]) == (len(EFFECTFUL), len(EFFECTFUL))

    def server_log_since(offset):
        with open(log, encoding="utf-8", errors="replace") as server_log:
            server_log.seek(offset)
            return server_log.read()

    def wait_for_logged(markers, offset, timeout=30):
        """Waits until the server has logged each of `markers`, in that order."""
        deadline = time.monotonic() + timeout
        while True:
            logged, found = server_log_since(offset), 0
            for marker in markers:
                found = logged.find(marker, found)
                if found < 0:
                    break
            if found >= 0:
                return
            assert time.monotonic() < deadline, f"{markers!r} never reached the server log"
            time.sleep(0.0005)

    # Kills at fixed steps across the whole run, and at steps after the server logs a statement
    # of the run: loading the manifest just before the scan and the repair, the repair
    # transaction's own statements (those land inside it unless the repair outruns the kill),
    # and its COMMIT (which the server carries out even when the client is gone).
    load_manifest = ("SELECT django_migrator.load_manifest($1)",)
    schedule = [((), d) for d in (0.05, 0.3, 0.6, 1.0)]
    schedule += [(load_manifest, d) for d in (0.0, 0.005, 0.01, 0.02)]
    schedule += [(("statement: START TRANSACTION",), 0.0), ((REPAIR_STATEMENT,), 0.0),
                 ((REPAIR_STATEMENT,), 0.002), ((REPAIR_STATEMENT, "statement: COMMIT"), 0.0)]
    outcomes = []
    resumed = False
    for n, (anchor, delay) in enumerate(schedule, start=1):
        when = f"{delay * 1000:.0f} ms after " + (
            " then ".join(anchor) + " was logged" if anchor else "start")
        prefix = f"kill{n}_"
        shop = clone(prefix)
        try:
            shop.sql("postgres",
                     f"ALTER DATABASE \"{shop.db['default']}\" SET log_statement = 'all'")
            log_start = log.stat().st_size
            proc = subprocess.Popen(
                [str(BIN), "--manage", MANAGE, "--python", PYTHON, *argv_tail],
                cwd=ROOT, env=shop.env(**env),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            if anchor:
                wait_for_logged(anchor, log_start)
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            # The CLI's own children (Django's shell or migrate) must not outlive it here.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
            wait_for_no_backend(shop, "default")

            assert shop.sql("default", "SELECT count(*) FROM django_migrator.lock_holder()") \
                == "0", f"kill {when} left the migration lock held"
            logged = server_log_since(log_start)
            if journal(shop, "default"):
                assert_after(shop)
                outcome = "after"
            else:
                assert history(shop, "default") == before, (
                    f"kill {when} left django_migrations between before and after")
                # The CLI's only transaction on this database is the repair's.
                began = "statement: START TRANSACTION" in logged or REPAIR_STATEMENT in logged
                outcome = "during" if began else "before"
                assert began or OPEN_TRANSACTION_LOST not in logged, (
                    f"kill {when}: the server saw a transaction that is not the repair's")
            outcomes.append((when, outcome))

            if outcome != "after" and not resumed:
                # The next deploy, right after the killed one, goes through.
                run = shop.cli(*argv_tail, env=env)
                assert run.code == 0, str(run)
                assert_after(shop)
                resumed = True
        finally:
            cluster.drop_databases(prefix)

    counts = {kind: sum(1 for _, o in outcomes if o == kind)
              for kind in ("before", "during", "after")}
    print(f"\nkill -9 of migrate-all --repair: {counts}; {outcomes}")
    assert len(outcomes) >= 10
    assert resumed, outcomes
    assert counts["before"] >= 1 and counts["after"] >= 1, outcomes


# --- the lock ----------------------------------------------------------------------------------


def test_repair_fails_while_another_session_holds_the_lock_and_writes_nothing(migrated_shop):
    shop = migrated_shop
    run = shop.cli("migrate-all", "--database", "default")  # loads default's manifest
    assert run.code == 0, str(run)
    shop.sql("default", "DELETE FROM django_migrations WHERE app = 'sessions'")
    before = history(shop, "default")
    holder = shop.cluster.psql_session(shop.db["default"])
    try:
        holder.stdin.write("SELECT pg_backend_pid(), django_migrator.try_lock('other');\n")
        holder.stdin.flush()
        pid, locked = holder.stdout.readline().strip().split("|")
        assert locked == "t", holder.stderr.read()

        error = psql_error(shop, "default", "SELECT * FROM django_migrator.repair()")

        assert "55P03" in error, error
        assert (f"django_migrator: the migration lock is held by pid {pid} (other); "
                "no change was made") in error, error
        assert history(shop, "default") == before
        assert journal(shop, "default") == []
        # The plan alone needs no lock.
        assert shop.sql("default", "SELECT action, app, name FROM django_migrator.repair(true)") \
            == "fake_apply|sessions|0001_initial"

        holder.stdin.write("SELECT django_migrator.unlock();\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "t"
    finally:
        holder.stdin.close()
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()

    # Once the lock is free, the same call repairs.
    assert shop.sql("default", "SELECT action, app, name FROM django_migrator.repair()") \
        == "fake_apply|sessions|0001_initial"
    assert keys(history(shop, "default")) == keys(before) + ["sessions.0001_initial"]
