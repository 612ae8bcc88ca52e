"""End-to-end tests of the `django-migrator` CLI on the example shop project and a real cluster.

Run from the repository root: `.venv/bin/python -m pytest tests/e2e -q`. The binary comes from
DJANGO_MIGRATOR_BIN (default target/release/django-migrator); the extension must be installed
into the system PostgreSQL 15.
"""

import socket
import subprocess
import time

import pytest

ALIASES = ["default", "analytics", "replica"]
PASSWORD = "S3cr3t-pw-sentinel"
WRONG_PASSWORD = "Wr0ng-pw-sentinel"
GUARDS = {"connection_live", "not_standby", "test_mirror_isolation", "no_concurrent_migration"}
DRIFT_KEYS = {"app", "name", "kind", "recorded", "present", "missing", "detail", "objects"}
ALIAS_KEYS = {"alias", "status", "guards", "drift", "repairs", "migrated", "pending", "warnings",
              "errors", "timings_ms"}


def by_alias(report):
    return {entry["alias"]: entry for entry in report["aliases"]}


def guard(entry, name):
    matches = [g for g in entry["guards"] if g["name"] == name]
    assert len(matches) == 1, f"{entry['alias']}: expected one {name} guard in {entry['guards']}"
    return matches[0]


def assert_report_shape(report, command):
    assert report["format_version"] == 1
    assert report["command"] == command
    assert isinstance(report["all_clean"], bool)
    assert report["django_version"].startswith("5.2.")
    assert [entry["alias"] for entry in report["aliases"]] == ALIASES
    assert isinstance(report["timings_ms"], dict)
    for entry in report["aliases"]:
        assert ALIAS_KEYS <= set(entry), entry
        for g in entry["guards"]:
            assert g["name"] in GUARDS, g
            assert isinstance(g["ok"], bool) and isinstance(g["detail"], str), g
        for row in entry["drift"]:
            assert DRIFT_KEYS <= set(row), row
        assert all(isinstance(v, int) for v in entry["timings_ms"].values()), entry["timings_ms"]
    statuses = {entry["status"] for entry in report["aliases"]}
    assert statuses <= {"clean", "drift", "pending", "failed", "skipped", "not_run"}, statuses
    if statuses & {"drift", "pending", "failed"}:
        assert report["all_clean"] is False, statuses
    if statuses <= {"clean", "skipped"}:
        assert report["all_clean"] is True, statuses


def assert_clean(entry):
    assert entry["status"] == "clean", entry
    assert entry["drift"] == [], entry
    assert entry["pending"] == [], entry
    assert entry["errors"] == [], entry
    assert all(g["ok"] for g in entry["guards"]), entry["guards"]
    assert guard(entry, "connection_live")["ok"]


def assert_replica_skipped(entry):
    assert entry["status"] == "skipped", entry
    assert "skipped: same database as default" in entry["warnings"], entry["warnings"]
    assert guard(entry, "test_mirror_isolation")["ok"], entry["guards"]
    assert entry["migrated"] == [], entry
    assert entry["errors"] == [], entry


def drift_rows(entry):
    """Drift rows that make an alias unclean (orphan records are information only)."""
    return [row for row in entry["drift"] if row["kind"] != "orphan_record"]


def test_check_is_clean_after_plain_django_migrate(shop):
    shop.django_migrate("default", "analytics")

    run, report = shop.cli_json("check")

    assert run.code == 0, str(run)
    assert_report_shape(report, "check")
    assert report["all_clean"] is True
    aliases = by_alias(report)
    assert_clean(aliases["default"])
    assert_clean(aliases["analytics"])
    assert aliases["default"]["migrated"] == []
    assert aliases["analytics"]["migrated"] == []
    assert_replica_skipped(aliases["replica"])
    # check scans with the manifest loaded in a transaction it rolls back.
    for alias in ("default", "analytics"):
        assert shop.sql(alias, "SELECT count(*) FROM django_migrator.manifest") == "0"


def test_a_dropped_table_is_recorded_missing_and_blocks_migrate(migrated_shop):
    shop = migrated_shop
    shop.sql("analytics", "DROP TABLE metrics_pageview")

    run, report = shop.cli_json("check")

    assert run.code == 1, str(run)
    assert_report_shape(report, "check")
    assert report["all_clean"] is False
    aliases = by_alias(report)
    assert_clean(aliases["default"])
    assert_replica_skipped(aliases["replica"])
    analytics = aliases["analytics"]
    assert analytics["status"] == "drift", analytics
    rows = drift_rows(analytics)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["app"], row["name"], row["kind"]) == ("metrics", "0001_initial", "recorded_missing")
    assert (row["recorded"], row["present"], row["missing"]) == (True, 0, 1), row
    assert row["objects"] == [
        {"object": "table", "name": "metrics_pageview", "expected": "present", "ok": False}
    ], row["objects"]

    # migrate-all refuses to migrate over the drift, and says so.
    run, report = shop.cli_json("migrate-all", "--non-interactive")

    assert run.code == 1, str(run)
    assert_report_shape(report, "migrate-all")
    aliases = by_alias(report)
    assert_clean(aliases["default"])
    analytics = aliases["analytics"]
    assert analytics["status"] == "drift", analytics
    assert analytics["migrated"] == [], analytics
    assert analytics["errors"], analytics
    assert "drift" in " ".join(analytics["errors"]).lower(), analytics["errors"]
    assert not shop.table_exists("analytics", "metrics_pageview")
    assert "metrics.0001_initial" in shop.recorded("analytics")


def test_an_orphan_record_is_reported_but_keeps_the_alias_clean(migrated_shop):
    shop = migrated_shop
    shop.sql("default", "INSERT INTO django_migrations (app, name, applied) "
                        "VALUES ('catalog', '9999_deleted_file', now())")

    run, report = shop.cli_json("check")

    assert run.code == 0, str(run)
    assert report["all_clean"] is True
    default = by_alias(report)["default"]
    assert default["status"] == "clean", default
    assert [(r["app"], r["name"], r["kind"]) for r in default["drift"]] == [
        ("catalog", "9999_deleted_file", "orphan_record")], default["drift"]
    assert default["errors"] == [], default


def test_a_deleted_record_is_unrecorded_present(migrated_shop):
    shop = migrated_shop
    shop.sql("default", "DELETE FROM django_migrations "
                        "WHERE app = 'catalog' AND name = '0002_product_sku'")

    run, report = shop.cli_json("check")

    assert run.code == 1, str(run)
    assert_report_shape(report, "check")
    aliases = by_alias(report)
    assert_clean(aliases["analytics"])
    default = aliases["default"]
    assert default["status"] == "drift", default
    rows = drift_rows(default)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["app"], row["name"], row["kind"]) == (
        "catalog", "0002_product_sku", "unrecorded_present")
    assert (row["recorded"], row["present"], row["missing"]) == (False, 1, 0), row
    assert row["objects"] == [
        {"object": "column", "name": "catalog_product.sku", "expected": "present", "ok": True}
    ], row["objects"]
    # check changed nothing.
    assert "catalog.0002_product_sku" not in shop.recorded("default")


def test_a_dropped_column_is_blamed_on_the_migration_that_added_it(migrated_shop):
    # catalog.0002_product_sku adds `sku`; no later migration renames or drops it.
    shop = migrated_shop
    shop.sql("default", "ALTER TABLE catalog_product DROP COLUMN sku")

    run, report = shop.cli_json("check")

    assert run.code == 1, str(run)
    assert_report_shape(report, "check")
    aliases = by_alias(report)
    assert_clean(aliases["analytics"])
    default = aliases["default"]
    assert default["status"] == "drift", default
    rows = drift_rows(default)
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["app"], row["name"], row["kind"]) == (
        "catalog", "0002_product_sku", "recorded_missing")
    assert (row["recorded"], row["present"], row["missing"]) == (True, 0, 1), row
    assert row["objects"] == [
        {"object": "column", "name": "catalog_product.sku", "expected": "present", "ok": False}
    ], row["objects"]


def test_a_dropped_renamed_column_is_blamed_on_the_rename(migrated_shop):
    # 0001 creates `price`, 0003 renames it to `unit_price`. The index of 0004 covers the column,
    # so 0004 (and 0005 after it) are taken back first: the rename alone is to blame.
    shop = migrated_shop
    shop.sql("default", "DROP INDEX catalog_product_cat_price")
    shop.sql("default", "DELETE FROM django_migrations "
                        "WHERE app = 'catalog' AND name IN ('0004_product_cat_price_index', "
                        "'0005_fill_sku')")
    shop.sql("default", "ALTER TABLE catalog_product DROP COLUMN unit_price")

    run, report = shop.cli_json("check")

    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    assert default["status"] == "drift", default
    rows = drift_rows(default)
    assert [(r["app"], r["name"], r["kind"]) for r in rows] == [
        ("catalog", "0003_rename_price_unit_price", "recorded_missing")], rows
    assert set(default["pending"]) == {
        "catalog.0004_product_cat_price_index", "catalog.0005_fill_sku"}, default


def test_migrate_all_migrates_every_alias_where_the_router_says(shop):
    run, report = shop.cli_json("migrate-all", "--non-interactive")

    assert run.code == 0, str(run)
    assert_report_shape(report, "migrate-all")
    assert report["all_clean"] is True
    aliases = by_alias(report)
    assert_replica_skipped(aliases["replica"])
    for alias in ("default", "analytics"):
        entry = aliases[alias]
        assert_clean(entry)
        assert entry["migrated"], entry
        assert len(entry["migrated"]) == len(set(entry["migrated"])), entry["migrated"]
        # Everything Django recorded on an empty database was migrated by this run.
        assert set(entry["migrated"]) == shop.recorded(alias), entry["migrated"]
        assert guard(entry, "no_concurrent_migration")["ok"]
        # The manifest stays loaded for later scans.
        assert shop.sql(alias, "SELECT alias FROM django_migrator.manifest_info()") == alias
    assert "catalog.0001_initial" in aliases["default"]["migrated"]
    assert "metrics.0001_initial" in aliases["analytics"]["migrated"]

    assert shop.table_exists("default", "catalog_product")
    assert not shop.table_exists("analytics", "catalog_product")
    assert shop.table_exists("analytics", "metrics_pageview")
    assert not shop.table_exists("default", "metrics_pageview")
    assert shop.table_exists("default", "django_migrations")
    assert shop.table_exists("analytics", "django_migrations")

    run, report = shop.cli_json("migrate-all", "--non-interactive")

    assert run.code == 0, str(run)
    aliases = by_alias(report)
    for alias in ALIASES:
        assert aliases[alias]["migrated"] == [], aliases[alias]
    assert_clean(aliases["default"])
    assert_clean(aliases["analytics"])


def test_check_on_empty_databases_reports_pending_and_writes_nothing(shop):
    run, report = shop.cli_json("check")

    assert run.code == 1, str(run)
    assert_report_shape(report, "check")
    assert report["all_clean"] is False
    aliases = by_alias(report)
    assert_replica_skipped(aliases["replica"])
    firsts = {"default": "catalog.0001_initial", "analytics": "metrics.0001_initial"}
    for alias, first in firsts.items():
        entry = aliases[alias]
        assert entry["status"] == "pending", entry
        assert first in entry["pending"], entry["pending"]
        assert entry["drift"] == [], entry
        assert entry["migrated"] == [], entry
    # Every migration is pending on both aliases: Django records all of them everywhere.
    assert set(aliases["default"]["pending"]) == set(aliases["analytics"]["pending"])

    for alias in ("default", "analytics"):
        assert shop.sql(alias, "SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                               "ON n.oid = c.relnamespace WHERE n.nspname = 'public'") == "0"
        assert not shop.table_exists(alias, "django_migrations")
        assert shop.sql(alias, "SELECT count(*) FROM django_migrator.manifest") == "0"


def test_check_lists_an_unapplied_migration_and_migrate_all_applies_exactly_it(migrated_shop):
    shop = migrated_shop
    shop.sql("analytics", "ALTER TABLE metrics_pageview DROP COLUMN referrer")
    shop.sql("analytics", "DELETE FROM django_migrations "
                          "WHERE app = 'metrics' AND name = '0002_pageview_referrer'")

    run, report = shop.cli_json("check")

    assert run.code == 1, str(run)
    assert_report_shape(report, "check")
    aliases = by_alias(report)
    assert_clean(aliases["default"])
    analytics = aliases["analytics"]
    assert analytics["status"] == "pending", analytics
    assert analytics["pending"] == ["metrics.0002_pageview_referrer"], analytics
    assert analytics["drift"] == [], analytics

    run, report = shop.cli_json("migrate-all", "--non-interactive")

    assert run.code == 0, str(run)
    aliases = by_alias(report)
    assert_clean(aliases["analytics"])
    assert aliases["analytics"]["migrated"] == ["metrics.0002_pageview_referrer"]
    assert aliases["default"]["migrated"] == []
    assert shop.sql("analytics", "SELECT count(*) FROM information_schema.columns "
                                 "WHERE table_name = 'metrics_pageview' "
                                 "AND column_name = 'referrer'") == "1"


def test_migrate_all_check_is_check(shop):
    run, report = shop.cli_json("migrate-all", "--check")

    assert run.code == 1, str(run)
    assert [e["status"] for e in report["aliases"]] == ["pending", "pending", "skipped"]
    assert not shop.table_exists("default", "django_migrations")
    assert shop.sql("default", "SELECT count(*) FROM django_migrator.manifest") == "0"


def test_database_flag_limits_the_run(shop):
    run, report = shop.cli_json("migrate-all", "--non-interactive", "--database", "analytics")

    assert run.code == 0, str(run)
    aliases = by_alias(report)
    assert aliases["analytics"]["status"] == "clean", aliases["analytics"]
    assert aliases["analytics"]["migrated"], aliases["analytics"]
    # Aliases left out are either not reported or reported as not run.
    for alias in ("default", "replica"):
        assert aliases.get(alias, {"status": "not_run"})["status"] == "not_run", aliases[alias]
    assert shop.table_exists("analytics", "metrics_pageview")
    assert not shop.table_exists("default", "django_migrations")


def test_fail_fast_stops_after_the_first_unclean_alias(migrated_shop):
    shop = migrated_shop
    shop.sql("default", "DELETE FROM django_migrations "
                        "WHERE app = 'catalog' AND name = '0002_product_sku'")

    run, report = shop.cli_json("migrate-all", "--non-interactive", "--fail-fast")

    assert run.code == 1, str(run)
    assert_report_shape(report, "migrate-all")
    aliases = by_alias(report)
    assert aliases["default"]["status"] == "drift", aliases["default"]
    assert aliases["analytics"]["status"] == "not_run", aliases["analytics"]
    assert aliases["analytics"]["migrated"] == [], aliases["analytics"]


def test_text_report_names_each_alias(migrated_shop):
    code, out, err = run = migrated_shop.cli("check", "--color", "never")

    assert code == 0, str(run)
    for alias in ALIASES:
        assert alias in out, out
    assert "clean" in out, out
    assert "\x1b" not in out + err


def test_color_auto_is_plain_when_not_a_terminal_and_always_colours(migrated_shop):
    code, out, err = run = migrated_shop.cli("check")
    assert code == 0, str(run)
    assert "\x1b" not in out + err

    code, out, _ = run = migrated_shop.cli("check", "--color", "always")
    assert code == 0, str(run)
    assert "\x1b[" in out, out


def test_json_report_has_no_colour(migrated_shop):
    run = migrated_shop.cli("check", "--format", "json", "--color", "always")
    assert run.code == 0, str(run)
    assert "\x1b" not in run.out
    run.json()


def test_missing_manage_py_is_a_usage_error(shop):
    run = shop.cli("check", manage="examples/nowhere/manage.py")

    assert run.code == 2, str(run)
    assert "manage.py" in run.err, run.err
    assert run.out == ""


def test_unknown_alias_is_a_usage_error(shop):
    run = shop.cli("check", "--database", "nope")

    assert run.code == 2, str(run)
    assert "nope" in run.err, run.err
    assert run.out == ""


def test_unknown_flag_is_a_usage_error(shop):
    run = shop.cli("check", "--no-such-flag")

    assert run.code == 2, str(run)
    assert "--no-such-flag" in run.err, run.err
    assert run.out == ""


def test_django_that_cannot_start_is_a_configuration_error(shop):
    run = shop.cli("--settings", "shop.no_such_settings", "check")

    assert run.code == 2, str(run)
    assert "shop.no_such_settings" in run.err, run.err
    assert run.out == ""


def test_missing_extension_fails_the_alias_and_install_fixes_it(migrated_shop):
    shop = migrated_shop
    shop.sql("analytics", "DROP EXTENSION django_migrator")

    run, report = shop.cli_json("check")

    assert run.code == 1, str(run)
    assert_report_shape(report, "check")
    aliases = by_alias(report)
    assert_clean(aliases["default"])
    analytics = aliases["analytics"]
    assert analytics["status"] == "failed", analytics
    assert [e for e in analytics["errors"]
            if "django-migrator install" in e and "analytics" in e], analytics["errors"]

    code, out, err = run = shop.cli("check", "--color", "never")
    assert code == 1, str(run)
    assert [line for line in (out + err).splitlines()
            if "django-migrator install" in line and "analytics" in line], str(run)

    run, report = shop.cli_json("install")

    assert run.code == 0, str(run)
    assert report["format_version"] == 1
    assert report["command"] == "install"
    assert report["all_clean"] is True
    assert by_alias(report)["analytics"]["errors"] == [], report
    assert shop.sql("analytics", "SELECT count(*) FROM pg_extension "
                                 "WHERE extname = 'django_migrator'") == "1"
    run, report = shop.cli_json("check")
    assert run.code == 0, str(run)
    assert_clean(by_alias(report)["analytics"])


def test_a_lock_held_elsewhere_fails_the_alias_quickly(migrated_shop):
    shop = migrated_shop
    holder = shop.cluster.psql_session(shop.db["default"])
    try:
        holder.stdin.write("SELECT django_migrator.try_lock('other deploy');\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "t", holder.stderr.read()

        started = time.monotonic()
        run, report = shop.cli_json("migrate-all", "--non-interactive", "--lock-timeout", "1")
        elapsed = time.monotonic() - started

        assert run.code == 1, str(run)
        assert_report_shape(report, "migrate-all")
        aliases = by_alias(report)
        default = aliases["default"]
        assert default["status"] == "failed", default
        assert default["migrated"] == [], default
        lock = guard(default, "no_concurrent_migration")
        assert lock["ok"] is False, lock
        assert "other deploy" in lock["detail"], lock
        # The lock of one database does not stop the others.
        assert_clean(aliases["analytics"])
        assert_replica_skipped(aliases["replica"])
        # Well below the 60 s default lock timeout: the 1 s timeout was used.
        assert elapsed < 30, f"took {elapsed:.1f}s"
        # The holder still has it.
        holder.stdin.write("SELECT django_migrator.unlock();\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "t"
    finally:
        holder.stdin.close()
        try:
            holder.wait(timeout=10)
        except Exception:
            holder.kill()
            holder.wait()


def test_connect_timeout_bounds_a_server_that_never_answers(shop):
    # The kernel completes the TCP handshake for a listening socket that never accepts, so the
    # server looks reachable and then stays silent.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        try:
            run = shop.cli("--connect-timeout", "2", "--format", "json", "check",
                           env={"SHOP_PGHOST": "127.0.0.1", "SHOP_PGPORT": str(port)},
                           timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("check --connect-timeout 2 against a server that never answers "
                        "was still running after 60 s (libpq gives up after 2 s)")

    assert run.code == 1, str(run)
    aliases = by_alias(run.json())
    for alias in ("default", "analytics"):
        assert aliases[alias]["status"] == "failed", aliases[alias]
        assert guard(aliases[alias], "connection_live")["ok"] is False
    assert run.elapsed < 60, f"took {run.elapsed:.1f}s"


@pytest.fixture
def password_role(migrated_shop):
    shop = migrated_shop
    shop.sql("postgres", f"CREATE ROLE shop_pw LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    for alias in ("default", "analytics"):
        shop.sql("postgres", f'ALTER DATABASE "{shop.db[alias]}" OWNER TO shop_pw')
    try:
        yield shop
    finally:
        for alias in ("default", "analytics"):
            shop.sql("postgres", f'ALTER DATABASE "{shop.db[alias]}" OWNER TO postgres')
        shop.sql("postgres", "DROP ROLE shop_pw")


def tcp_env(password):
    return {"SHOP_PGHOST": "127.0.0.1", "SHOP_PGUSER": "shop_pw", "SHOP_PGPASSWORD": password}


def test_password_authentication_works_and_the_password_is_never_printed(password_role):
    shop = password_role
    env = tcp_env(PASSWORD)

    run, report = shop.cli_json("check", env=env)
    assert run.code == 0, str(run)
    assert report["all_clean"] is True
    assert PASSWORD not in run.out + run.err

    for args in (("check", "--color", "never"), ("check", "-v", "--color", "never"),
                 ("migrate-all", "--non-interactive", "-v", "--color", "never")):
        run = shop.cli(*args, env=env)
        assert run.code == 0, str(run)
        assert PASSWORD not in run.out + run.err


def test_a_wrong_password_fails_the_guard_without_printing_it(password_role):
    shop = password_role
    env = tcp_env(WRONG_PASSWORD)

    run, report = shop.cli_json("check", env=env)

    assert run.code == 1, str(run)
    for secret in (WRONG_PASSWORD, PASSWORD):
        assert secret not in run.out + run.err
    aliases = by_alias(report)
    for alias in ("default", "analytics"):
        entry = aliases[alias]
        assert entry["status"] == "failed", entry
        live = guard(entry, "connection_live")
        assert live["ok"] is False, live
        assert live["detail"], live

    run = shop.cli("check", "-v", "--color", "never", env=env)
    assert run.code == 1, str(run)
    for secret in (WRONG_PASSWORD, PASSWORD):
        assert secret not in run.out + run.err


def test_manifest_prints_the_expectations_of_one_alias(shop):
    run = shop.cli("manifest", "--database", "analytics", env={"SHOP_PGPASSWORD": PASSWORD})

    assert run.code == 0, str(run)
    assert PASSWORD not in run.out + run.err
    manifest = run.json()
    assert manifest["alias"] == "analytics"
    assert manifest["format_version"] == 1
    migrations = {(m["app"], m["name"]): m for m in manifest["migrations"]}
    metrics = {key: m for key, m in migrations.items() if key[0] == "metrics"}
    assert set(metrics) == {("metrics", "0001_initial"), ("metrics", "0002_pageview_referrer")}
    assert all(m["effects"] for m in metrics.values()), metrics
    assert [e["kind"] for e in metrics["metrics", "0001_initial"]["effects"]] == ["create_table"]
    # The router keeps catalog off analytics, yet its migrations are listed (Django records them).
    assert migrations["catalog", "0001_initial"]["effects"] == []
