"""Every command and flag of `django-migrator`, run as a user runs it, against a real cluster.

Each JSON report a test produces is validated against docs/report.schema.json. Text reports of a
few typical runs are compared with golden files in tests/e2e/snapshots/ after the volatile parts
(timings, Django and PostgreSQL versions, timestamps, database name prefixes) are normalised;
`UPDATE_SNAPSHOTS=1` rewrites the golden files instead of comparing.

Run from the repository root: `.venv/bin/python -m pytest tests/e2e/test_commands.py -q`.
"""

import contextlib
import difflib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from conftest import BIN, MANAGE, ROOT, TIMEOUT, Run

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "commands"
SNAPSHOTS = HERE / "snapshots"
SCHEMA_PATH = ROOT / "docs" / "report.schema.json"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
SHOP_DIR = ROOT / "examples" / "shop"

ALIASES = ["default", "analytics", "replica"]
ALL_CLEAN = "all 3 clean"
REPLICA_SKIPPED = "skipped: same database as default"

# What plain `manage.py migrate` applies on an empty database of each alias (Django records every
# migration everywhere, whatever the router says).
ALL_MIGRATIONS = 31


# --- JSON reports ------------------------------------------------------------------------------

_validator = None


def schema_validator():
    global _validator
    if _validator is None:
        schema = json.loads(SCHEMA_PATH.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        _validator = jsonschema.Draft202012Validator(schema)
    return _validator


def schema_errors(document):
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in schema_validator().iter_errors(document)]


def validated(run):
    """The run's JSON report, after checking it against docs/report.schema.json."""
    report = run.json()
    errors = schema_errors(report)
    assert not errors, "report does not match docs/report.schema.json:\n" + "\n".join(
        errors[:20]) + f"\n{run}"
    return report


def cli_json(shop, *args, env=None):
    run = shop.cli(*args, "--format", "json", env=env)
    return run, validated(run)


def by_alias(report):
    return {entry["alias"]: entry for entry in report["aliases"]}


def guard(entry, name):
    matches = [g for g in entry["guards"] if g["name"] == name]
    assert len(matches) == 1, f"{entry['alias']}: expected one {name} guard in {entry['guards']}"
    return matches[0]


def error_kinds(entry):
    return [(f"{r['app']}.{r['name']}", r["kind"]) for r in entry["drift"]
            if r["kind"] != "orphan_record"]


def assert_clean(entry):
    assert entry["status"] == "clean", entry
    assert error_kinds(entry) == [], entry
    assert entry["pending"] == [] and entry["errors"] == [], entry
    assert all(g["ok"] for g in entry["guards"]), entry["guards"]


def assert_replica_skipped(entry):
    assert entry["status"] == "skipped", entry
    assert entry["warnings"][:1] == [REPLICA_SKIPPED], entry
    assert entry["migrated"] == [] and entry["errors"] == [], entry


# --- databases ---------------------------------------------------------------------------------

def make_drift(shop):
    """Drift that Django's own history checks cannot see, on both aliases:

    - default: the index of catalog.0004 dropped by hand (recorded_missing; its recorded dependent
      0005 has no effect and is rewound with it), plus a history row without a migration file;
    - analytics: the row of metrics.0002 deleted (unrecorded_present; nothing depends on it).
    """
    shop.sql("default", "DROP INDEX catalog_product_cat_price")
    shop.sql("default", "INSERT INTO django_migrations (app, name, applied) "
                        "VALUES ('catalog', '9999_deleted_file', now())")
    shop.sql("analytics", "DELETE FROM django_migrations "
                          "WHERE app = 'metrics' AND name = '0002_pageview_referrer'")


def history(shop, alias):
    return shop.sql(alias, "SELECT coalesce(string_agg(app || '.' || name || '@' || applied, "
                           "',' ORDER BY id), '') FROM django_migrations")


def journal_size(shop, alias):
    return int(shop.sql(alias, "SELECT count(*) FROM django_migrator.repairs"))


def stored_manifests(shop, alias):
    return int(shop.sql(alias, "SELECT count(*) FROM django_migrator.manifest"))


def column_exists(shop, alias, table, column):
    return shop.sql(alias, "SELECT count(*) FROM information_schema.columns "
                           f"WHERE table_name = '{table}' AND column_name = '{column}'") == "1"


@contextlib.contextmanager
def lock_held(shop, alias, holder):
    """The migration lock of `alias`, held by another session for the duration."""
    session = shop.cluster.psql_session(shop.db[alias])
    try:
        session.stdin.write(f"SELECT django_migrator.try_lock('{holder}');\n")
        session.stdin.flush()
        assert session.stdout.readline().strip() == "t", session.stderr.read()
        yield
    finally:
        session.stdin.close()
        try:
            session.wait(timeout=10)
        except subprocess.TimeoutExpired:
            session.kill()
            session.wait()


@contextlib.contextmanager
def silent_server():
    """A TCP port whose kernel completes the handshake but that never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


# --- processes without the --manage/--python the Shop helper always passes ---------------------

def run_bare(shop, args, cwd, env=None, drop_env=()):
    """Runs the binary with exactly `args`, from `cwd`, with the example project's environment."""
    full_env = shop.env(**(env or {}))
    for key in drop_env:
        full_env.pop(key, None)
    argv = [str(BIN), *args]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    return Run(argv, proc, time.monotonic() - started)


def python_wrapper(path):
    """An interpreter that leaves a mark next to itself each time it runs, then is the venv's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = path.parent / f"{path.name}.used"
    path.write_text(f'#!/bin/sh\necho "$*" >> "{marker}"\nexec "{VENV_PYTHON}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return marker


def manage_wrapper(directory):
    """A manage.py in `directory` that leaves a mark there, then runs the example project's."""
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / "manage.used"
    (directory / "manage.py").write_text(
        "import runpy, sys\n"
        f"with open({str(marker)!r}, 'a') as mark:\n"
        "    mark.write(' '.join(sys.argv[1:2]) + '\\n')\n"
        f"sys.path.insert(0, {str(SHOP_DIR)!r})\n"
        f"runpy.run_path({str(SHOP_DIR / 'manage.py')!r}, run_name='__main__')\n")
    return marker


# --- the makemigrations fixture app -----------------------------------------------------------

class Widgets:
    """The `widgets` app copied into a temporary directory, and the settings that install it."""

    settings = ("--settings", "settings_widgets")

    def __init__(self, tmp_path):
        self.template = FIXTURES / "widgets_app" / "widgets"
        apps = tmp_path / "apps"
        shutil.copytree(self.template, apps / "widgets")
        self.migrations = apps / "widgets" / "migrations"
        self.env = {"PYTHONPATH": os.pathsep.join([str(apps), str(FIXTURES)])}

    def migration_files(self):
        return sorted(p.name for p in self.migrations.glob("0*.py"))

    def template_files(self):
        return sorted(str(p.relative_to(self.template)) for p in self.template.rglob("*"))


@pytest.fixture
def widgets(tmp_path):
    app = Widgets(tmp_path)
    before = app.template_files()
    yield app
    assert app.template_files() == before, "a test wrote into tests/e2e/fixtures"


# --- snapshots --------------------------------------------------------------------------------

def normalise(text, shop, tmp_path=None):
    """The text report without what changes from one run to the next."""
    if tmp_path is not None:
        text = text.replace(str(tmp_path), "<tmp>")
    text = text.replace(shop.prefix + "shop", "<prefix>shop")
    text = re.sub(r"\b\d+ ms\b", "<N> ms", text)
    text = re.sub(r"\bDjango \d+\.\d+(\.\d+)?\S*", "Django <version>", text)
    text = re.sub(r"PostgreSQL \d+(\.\d+)?( \([^)]*\))?", "PostgreSQL <version>", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:\d{2})?)?",
                  "<timestamp>", text)
    text = re.sub(r"\bpid \d+", "pid <pid>", text)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def snapshot_mismatch(name, actual):
    """None when `actual` equals the golden file `name` (or UPDATE_SNAPSHOTS=1 rewrote it), else
    a diff to show."""
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(actual)
        return None
    if not path.is_file():
        return f"{name}: no golden file {path} (run with UPDATE_SNAPSHOTS=1 to write it)"
    expected = path.read_text()
    if expected == actual:
        return None
    diff = difflib.unified_diff(expected.splitlines(keepends=True),
                                actual.splitlines(keepends=True),
                                f"snapshots/{name}", "this run")
    return "".join(diff)


def assert_snapshots(pairs):
    mismatches = [m for m in (snapshot_mismatch(name, text) for name, text in pairs) if m]
    assert not mismatches, ("text reports differ from the golden files "
                            "(UPDATE_SNAPSHOTS=1 rewrites them):\n" + "\n".join(mismatches))


def summary_line(out):
    return out.rstrip("\n").splitlines()[-1]


# === the report schema ========================================================================

def test_the_schema_is_draft_2020_12_and_rejects_what_the_cli_never_writes(migrated_shop):
    assert json.loads(SCHEMA_PATH.read_text())["$schema"] == (
        "https://json-schema.org/draft/2020-12/schema")
    run, report = cli_json(migrated_shop, "check", "--repair")
    assert run.code == 0, str(run)
    status_run, status = cli_json(migrated_shop, "status")
    assert status_run.code == 0, str(status_run)

    def broken(document, change):
        copy = json.loads(json.dumps(document))
        change(copy)
        return schema_errors(copy)

    default = 0
    mutations = {
        "an unknown top-level field": lambda r: r.update(extra=1),
        "a missing all_clean": lambda r: r.pop("all_clean"),
        "another format_version": lambda r: r.update(format_version=2),
        "an unknown command": lambda r: r.update(command="migrate"),
        "an unknown alias status": lambda r: r["aliases"][default].update(status="ok"),
        "an unknown alias field": lambda r: r["aliases"][default].update(notes=[]),
        "an unknown guard": lambda r: r["aliases"][default]["guards"].append(
            {"name": "disk_space", "ok": True, "detail": ""}),
        "a guard without detail": lambda r: r["aliases"][default]["guards"][0].pop("detail"),
        "an unknown drift kind": lambda r: r["aliases"][default]["drift"].append(
            {"app": "a", "name": "0001", "kind": "missing", "recorded": True, "present": 0,
             "missing": 1, "detail": "d", "objects": []}),
        "an unknown repair action": lambda r: r["aliases"][default]["repairs"].append(
            {"action": "delete", "app": "a", "name": "0001", "reason": "r", "applied": True}),
        "an unknown makemigrations status": lambda r: r["makemigrations"].update(status="ok"),
        "an unknown step timing": lambda r: r["aliases"][default]["timings_ms"].update(nap=1),
        "a negative timing": lambda r: r["timings_ms"].update(total=-1),
        "all_clean true next to a failed alias": lambda r: r["aliases"][default].update(
            status="failed", errors=["x"]),
        "a check without its makemigrations step": lambda r: r.pop("makemigrations"),
    }
    for what, change in mutations.items():
        assert broken(report, change), f"the schema accepts {what}"
    status_mutations = {
        "a migration with an unknown state": lambda r: r["aliases"][0]["migrations"][0].update(
            state="done"),
        "a status alias with guards": lambda r: r["aliases"][0].update(guards=[]),
        "a recorded migration without applied_at": lambda r: r["aliases"][0]["migrations"][0]
        .update(applied_at=None),
        "a status report with makemigrations": lambda r: r.update(
            makemigrations={"status": "skipped", "output": ""}),
    }
    for what, change in status_mutations.items():
        assert broken(status, change), f"the schema accepts {what}"


# === status ===================================================================================

def test_status_groups_migrations_by_app_with_their_marks_and_drift_state(migrated_shop):
    shop = migrated_shop
    # RunPython only: with its row gone it is simply pending again.
    shop.sql("default", "DELETE FROM django_migrations "
                        "WHERE app = 'catalog' AND name = '0005_fill_sku'")
    shop.sql("analytics", "DELETE FROM django_migrations "
                          "WHERE app = 'metrics' AND name = '0002_pageview_referrer'")
    before = {alias: history(shop, alias) for alias in ("default", "analytics")}

    code, out, err = run = shop.cli("status", "--color", "never")

    assert code == 1, str(run)
    assert "\x1b" not in out + err
    lines = out.splitlines()
    assert re.fullmatch(r"django-migrator status · Django 5\.2\.\d+", lines[0]), lines[0]
    headers = [line.split() for line in lines if line and not line.startswith(" ")][1:]
    assert headers == [["default", "clean"], ["analytics", "DRIFT"], ["replica", "skipped"]], out

    sections = {}
    current = None
    for line in lines[1:]:
        if line and not line.startswith(" "):
            current = sections.setdefault(line.split()[0], {})
            app = None
        elif line.startswith("    "):
            current[app].append(line.strip())
        elif line.startswith("  ") and current is not None:
            if line.strip().startswith("skipped:"):
                current["(warning)"] = [line.strip()]
            else:
                app = line.strip()
                current[app] = []
    for alias in ("default", "analytics"):
        # Apps alphabetically, as showmigrations does; graph order within each app.
        apps = list(sections[alias])
        assert apps == sorted(apps) == ["admin", "auth", "catalog", "contenttypes", "metrics",
                                        "sessions", "taggit"], apps
        assert sum(len(m) for m in sections[alias].values()) == ALL_MIGRATIONS
        catalog = [line[4:].split()[0] for line in sections[alias]["catalog"]]
        assert catalog == ["0001_initial", "0002_product_sku", "0003_rename_price_unit_price",
                           "0004_product_cat_price_index", "0005_fill_sku"], catalog
    timestamp = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"
    default, analytics = sections["default"], sections["analytics"]
    assert re.fullmatch(r"\[X\] 0001_initial +" + timestamp, default["catalog"][0]), default
    assert re.fullmatch(r"\[ \] 0005_fill_sku +pending", default["catalog"][4]), default
    assert re.fullmatch(r"\[X\] 0001_initial +" + timestamp, analytics["metrics"][0]), analytics
    assert re.fullmatch(r"\[!\] 0002_pageview_referrer +unrecorded_present "
                        r"\(1 present, 0 missing\)", analytics["metrics"][1]), analytics
    assert not [line for line in default["metrics"] if not line.startswith("[X]")], default
    assert sections["replica"] == {"(warning)": [REPLICA_SKIPPED]}, sections["replica"]
    # status reads; it writes nothing, not even the manifest.
    for alias in ("default", "analytics"):
        assert history(shop, alias) == before[alias]
        assert stored_manifests(shop, alias) == 0


def test_status_json_and_its_database_flag(migrated_shop):
    shop = migrated_shop
    run, report = cli_json(shop, "status")
    assert run.code == 0, str(run)
    assert report["command"] == "status" and report["all_clean"] is True
    assert [(a["alias"], a["status"]) for a in report["aliases"]] == [
        ("default", "clean"), ("analytics", "clean"), ("replica", "skipped")]
    default = by_alias(report)["default"]
    assert len(default["migrations"]) == ALL_MIGRATIONS
    assert {m["state"] for m in default["migrations"]} == {"applied"}
    assert all(m["recorded"] and m["applied_at"] for m in default["migrations"])

    shop.sql("analytics", "DELETE FROM django_migrations "
                          "WHERE app = 'metrics' AND name = '0002_pageview_referrer'")
    run, report = cli_json(shop, "status", "--database", "analytics")

    assert run.code == 1, str(run)
    assert report["all_clean"] is False
    assert [a["alias"] for a in report["aliases"]] == ["analytics"]
    rows = {(m["app"], m["name"]): m for m in report["aliases"][0]["migrations"]}
    assert report["aliases"][0]["status"] == "drift"
    assert rows["metrics", "0002_pageview_referrer"] == {
        "app": "metrics", "name": "0002_pageview_referrer", "recorded": False,
        "applied_at": None, "state": "unrecorded_present", "present": 1, "missing": 0}
    assert rows["metrics", "0001_initial"]["state"] == "applied"

    # Repeatable, and always in DATABASES order: default first.
    run, report = cli_json(shop, "status", "--database", "analytics", "--database", "default")
    assert run.code == 1, str(run)
    assert [a["alias"] for a in report["aliases"]] == ["default", "analytics"]

    run = shop.cli("status", "--database", "nope")
    assert run.code == 2, str(run)
    assert '"nope"' in run.err and run.out == "", str(run)


def test_status_of_empty_databases_shows_everything_pending_and_is_clean(shop):
    code, out, err = run = shop.cli("status", "--database", "default", "--color", "never")

    assert code == 0, str(run)
    migrations = [line for line in out.splitlines() if line.startswith("    ")]
    assert len(migrations) == ALL_MIGRATIONS, out
    assert all(re.fullmatch(r"    \[ \] \S+ +pending", line) for line in migrations), out
    assert out.count("[ ] ") == ALL_MIGRATIONS and "[X]" not in out and "[!]" not in out, out
    assert not shop.table_exists("default", "django_migrations")


# === manifest =================================================================================

def test_manifest_prints_the_expectations_of_default_unless_told(shop):
    run = shop.cli("manifest")

    assert run.code == 0, str(run)
    manifest = run.json()
    assert manifest["alias"] == "default"
    by_key = {(m["app"], m["name"]): m for m in manifest["migrations"]}
    assert len(by_key) == ALL_MIGRATIONS
    assert [e["kind"] for e in by_key["catalog", "0002_product_sku"]["effects"]] == ["add_column"]
    # The router keeps metrics off default: listed (Django records it) with no effect.
    assert by_key["metrics", "0001_initial"]["effects"] == []

    run = shop.cli("manifest", "--database", "replica")
    assert run.code == 0, str(run)
    replica = run.json()
    assert replica["alias"] == "replica"
    assert all(m["effects"] == [] for m in replica["migrations"]), "the router allows nothing"

    run = shop.cli("manifest", "--database", "nope")
    assert run.code == 2, str(run)
    assert '"nope"' in run.err and run.out == "", str(run)


# === install ==================================================================================

def test_install_creates_the_extension_where_missing_and_reports_it(migrated_shop):
    shop = migrated_shop
    shop.sql("analytics", "DROP EXTENSION django_migrator")
    version = shop.sql("analytics", "SELECT default_version FROM pg_available_extensions "
                                    "WHERE name = 'django_migrator'")

    code, out, err = run = shop.cli("install", "--database", "analytics", "--color", "never")

    assert code == 0, str(run)
    assert out.splitlines()[0].startswith("django-migrator install · Django 5.2."), out
    assert re.search(rf"^analytics +clean +installed django_migrator {re.escape(version)}$",
                     out, re.M), out
    assert "default" not in out, out
    assert summary_line(out) == "all 1 clean", out
    assert shop.sql("analytics", "SELECT extversion FROM pg_extension "
                                 "WHERE extname = 'django_migrator'") == version

    run, report = cli_json(shop, "install")

    assert run.code == 0, str(run)
    assert report["command"] == "install" and report["all_clean"] is True
    assert "makemigrations" not in report
    aliases = by_alias(report)
    for alias in ("default", "analytics"):
        assert aliases[alias]["status"] == "clean", aliases[alias]
        assert aliases[alias]["warnings"] == [
            f"django_migrator {version} already installed"], aliases[alias]
        assert guard(aliases[alias], "connection_live")["ok"]
    assert_replica_skipped(aliases["replica"])


# === check and migrate-all ====================================================================

def test_check_and_its_repair_plan_write_nothing(migrated_shop):
    shop = migrated_shop
    make_drift(shop)
    before = {alias: history(shop, alias) for alias in ("default", "analytics")}

    for args in (("check",), ("check", "--repair"), ("migrate-all", "--check"),
                 ("migrate-all", "--check", "--repair")):
        run, report = cli_json(shop, *args)

        assert run.code == 1, str(run)
        assert report["command"] == "check", report
        aliases = by_alias(report)
        assert error_kinds(aliases["default"]) == [
            ("catalog.0004_product_cat_price_index", "recorded_missing")], aliases["default"]
        assert error_kinds(aliases["analytics"]) == [
            ("metrics.0002_pageview_referrer", "unrecorded_present")], aliases["analytics"]
        repairs = [(s["action"], f"{s['app']}.{s['name']}", s["applied"])
                   for s in aliases["analytics"]["repairs"]]
        if "--repair" in args:
            assert repairs == [("fake_apply", "metrics.0002_pageview_referrer", False)], repairs
            assert [s["action"] for s in aliases["default"]["repairs"]] == [
                "fake_rewind", "fake_rewind"], aliases["default"]
        else:
            assert repairs == [] and aliases["default"]["repairs"] == []
        for alias in ("default", "analytics"):
            assert history(shop, alias) == before[alias], args
            assert journal_size(shop, alias) == 0, args
            assert stored_manifests(shop, alias) == 0, args


def test_migrate_all_repair_writes_the_plan_and_migrates(migrated_shop):
    shop = migrated_shop
    make_drift(shop)

    # Not a terminal, so --repair applies without asking even without --non-interactive.
    run, report = cli_json(shop, "migrate-all", "--repair")

    assert run.code == 0, str(run)
    assert "[y/N]" not in run.err, str(run)
    assert report["all_clean"] is True
    aliases = by_alias(report)
    default, analytics = aliases["default"], aliases["analytics"]
    assert_clean(default)
    assert_clean(analytics)
    assert [(s["action"], s["name"], s["applied"]) for s in default["repairs"]] == [
        ("fake_rewind", "0004_product_cat_price_index", True),
        ("fake_rewind", "0005_fill_sku", True)], default
    assert default["migrated"] == ["catalog.0004_product_cat_price_index",
                                   "catalog.0005_fill_sku"]
    assert [(s["action"], s["name"], s["applied"]) for s in analytics["repairs"]] == [
        ("fake_apply", "0002_pageview_referrer", True)], analytics
    assert analytics["migrated"] == []
    assert {"lock", "scan", "repair", "migrate", "verify"} <= set(default["timings_ms"])
    assert journal_size(shop, "default") == 1 and journal_size(shop, "analytics") == 1
    assert "metrics.0002_pageview_referrer" in shop.recorded("analytics")
    assert shop.sql("default", "SELECT to_regclass('public.catalog_product_cat_price') "
                               "IS NOT NULL") == "t"
    # The orphan row is information only: still there, still reported.
    assert [r["kind"] for r in default["drift"]] == ["orphan_record"]

    run, report = cli_json(shop, "check")
    assert run.code == 0, str(run)


def test_non_interactive_migrate_all_migrates_every_alias(shop):
    run, report = cli_json(shop, "migrate-all", "--non-interactive")

    assert run.code == 0, str(run)
    assert report["command"] == "migrate-all" and report["all_clean"] is True
    assert report["makemigrations"] == {"status": "no_changes", "output": "No changes detected"}
    aliases = by_alias(report)
    for alias in ("default", "analytics"):
        assert_clean(aliases[alias])
        assert len(aliases[alias]["migrated"]) == ALL_MIGRATIONS, aliases[alias]
    assert_replica_skipped(aliases["replica"])
    assert shop.table_exists("default", "catalog_product")
    assert shop.table_exists("analytics", "metrics_pageview")
    # No terminal: no spinner, nothing on stderr.
    assert run.err == "", str(run)


def test_database_is_repeatable_and_keeps_databases_order(shop):
    run, report = cli_json(shop, "migrate-all", "--non-interactive", "--skip-makemigrations",
                           "--database", "analytics", "--database", "default")

    assert run.code == 0, str(run)
    assert [a["alias"] for a in report["aliases"]] == ["default", "analytics"]
    for entry in report["aliases"]:
        assert_clean(entry)
        assert len(entry["migrated"]) == ALL_MIGRATIONS

    run = shop.cli("migrate-all", "--database", "analytics", "--database", "nope")
    assert run.code == 2, str(run)
    assert '"nope"' in run.err and run.out == "", str(run)


def test_lock_timeout_bounds_the_wait_for_the_migration_lock(migrated_shop):
    shop = migrated_shop
    with lock_held(shop, "default", "a deploy elsewhere"):
        started = time.monotonic()
        run, report = cli_json(shop, "migrate-all", "--non-interactive", "--skip-makemigrations",
                               "--database", "default", "--lock-timeout", "0")
        elapsed = time.monotonic() - started

    assert run.code == 1, str(run)
    default = report["aliases"][0]
    assert default["status"] == "failed", default
    lock = guard(default, "no_concurrent_migration")
    assert lock["ok"] is False, lock
    assert "a deploy elsewhere" in lock["detail"] and "waited 0 s" in lock["detail"], lock
    assert elapsed < 20, f"took {elapsed:.1f}s with --lock-timeout 0"

    for value in ("-1", "soon"):
        run = shop.cli("migrate-all", f"--lock-timeout={value}")
        assert run.code == 2, str(run)
        assert run.out == "", str(run)


def test_fail_fast_leaves_the_following_aliases_not_run(migrated_shop):
    shop = migrated_shop
    make_drift(shop)

    run, report = cli_json(shop, "check", "--fail-fast")

    assert run.code == 1, str(run)
    aliases = by_alias(report)
    assert aliases["default"]["status"] == "drift"
    for alias in ("analytics", "replica"):
        entry = aliases[alias]
        assert entry["status"] == "not_run", entry
        assert entry["guards"] == [] and entry["drift"] == [], entry
        assert entry["warnings"] == ["not run: --fail-fast stopped at an earlier alias"], entry

    code, out, _ = run = shop.cli("migrate-all", "--non-interactive", "--fail-fast",
                                  "--color", "never")
    assert code == 1, str(run)
    assert re.search(r"^analytics +not run +", out, re.M), out
    assert "metrics.0002_pageview_referrer" not in shop.recorded("analytics")


# === global flags =============================================================================

def test_manage_defaults_to_the_working_directory_and_python_to_virtual_env(shop, tmp_path):
    venv_python = tmp_path / "venv" / "bin" / "python"
    marker = python_wrapper(venv_python)

    run = run_bare(shop, ["--format", "json", "status"], cwd=SHOP_DIR,
                   env={"VIRTUAL_ENV": str(tmp_path / "venv")})

    assert run.code == 0, str(run)
    assert validated(run)["command"] == "status"
    assert marker.is_file(), "$VIRTUAL_ENV/bin/python was not used"

    # No virtualenv: python3 from PATH.
    python3 = tmp_path / "bin" / "python3"
    marker = python_wrapper(python3)
    run = run_bare(shop, ["--format", "json", "status"], cwd=SHOP_DIR,
                   env={"PATH": f"{python3.parent}{os.pathsep}{os.environ['PATH']}"},
                   drop_env=("VIRTUAL_ENV",))

    assert run.code == 0, str(run)
    validated(run)
    assert marker.is_file(), "python3 from PATH was not used"

    # Elsewhere, without --manage: no manage.py, a usage error.
    run = run_bare(shop, ["status"], cwd=tmp_path)
    assert run.code == 2, str(run)
    assert "manage.py" in run.err and run.out == "", str(run)


def test_manage_and_python_flags_are_used(shop, tmp_path):
    manage_marker = manage_wrapper(tmp_path / "project")
    python_marker = python_wrapper(tmp_path / "bin" / "python")

    run = run_bare(shop, ["--manage", str(tmp_path / "project" / "manage.py"),
                          "--python", str(tmp_path / "bin" / "python"),
                          "--format", "json", "status"], cwd=ROOT)

    assert run.code == 0, str(run)
    validated(run)
    assert "shell" in manage_marker.read_text().split()
    assert python_marker.is_file()

    run = run_bare(shop, ["--manage", MANAGE, "--python", str(tmp_path / "no" / "python"),
                          "status"], cwd=ROOT)
    assert run.code == 2, str(run)
    assert str(tmp_path / "no" / "python") in run.err and run.out == "", str(run)


def test_settings_selects_the_settings_module(migrated_shop, widgets):
    shop = migrated_shop
    run, report = cli_json(shop, *widgets.settings, "check", "--skip-makemigrations",
                           env=widgets.env)
    assert run.code == 1, str(run)
    assert "widgets.0001_initial" in by_alias(report)["default"]["pending"], report

    run, report = cli_json(shop, "check", "--skip-makemigrations", env=widgets.env)
    assert run.code == 0, str(run)
    assert not [p for p in by_alias(report)["default"]["pending"] if p.startswith("widgets.")]


def test_format_selects_text_or_json(migrated_shop):
    shop = migrated_shop
    text = shop.cli("check", "--format", "text", "--color", "never")
    assert text.code == 0, str(text)
    assert text.out.startswith("django-migrator check · Django 5.2."), text.out
    assert summary_line(text.out) == ALL_CLEAN

    run, report = cli_json(shop, "check")
    assert run.code == 0, str(run)
    assert report["all_clean"] is True

    run = shop.cli("check", "--format", "yaml")
    assert run.code == 2, str(run)
    assert "yaml" in run.err and run.out == "", str(run)


@pytest.mark.parametrize("command", [("check",), ("status",)])
def test_color_is_used_when_asked_and_never_in_json_or_off_a_terminal(migrated_shop, command):
    shop = migrated_shop
    always = shop.cli(*command, "--color", "always")
    never = shop.cli(*command, "--color", "never")
    auto = shop.cli(*command, "--color", "auto")
    json_run = shop.cli(*command, "--color", "always", "--format", "json")

    for run in (always, never, auto, json_run):
        assert run.code == 0, str(run)
    assert "\x1b[32m" in always.out, always.out
    plain = re.sub(r"\x1b\[[0-9;]*m", "", always.out)
    assert normalise(plain, shop) == normalise(never.out, shop)
    assert "\x1b" not in never.out + never.err
    assert "\x1b" not in auto.out + auto.err, "--color auto is plain off a terminal"
    assert normalise(auto.out, shop) == normalise(never.out, shop)
    assert "\x1b" not in json_run.out
    validated(json_run)

    run = shop.cli(*command, "--color", "sometimes")
    assert run.code == 2, str(run)


def test_verbose_shows_djangos_migrate_output_on_stderr(shop):
    code, out, err = run = shop.cli("-v", "migrate-all", "--non-interactive", "--color", "never")

    assert code == 0, str(run)
    assert "Applying catalog.0001_initial... OK" in err, err
    assert "Applying metrics.0001_initial... OK" in err, err
    assert "Applying" not in out, out
    # The report also gets Django's makemigrations output and the full lists.
    assert "    No changes detected" in out.splitlines(), out
    applied = [line for line in out.splitlines() if line.startswith("    applied: ")]
    assert len(applied) == 2, out
    assert all(line.count(", ") == ALL_MIGRATIONS - 1 for line in applied), out
    assert summary_line(out) == ALL_CLEAN


def test_without_verbose_django_stays_quiet_and_long_lists_are_counted(shop):
    code, out, err = run = shop.cli("check", "--database", "default", "--color", "never")
    assert code == 1, str(run)
    assert f"    pending: {ALL_MIGRATIONS} migrations (-v lists them)" in out.splitlines(), out

    code, out, err = run = shop.cli("-v", "check", "--database", "default", "--color", "never")
    assert code == 1, str(run)
    pending = [line for line in out.splitlines() if line.startswith("    pending: ")]
    assert len(pending) == 1 and pending[0].count(", ") == ALL_MIGRATIONS - 1, out

    code, out, err = run = shop.cli("migrate-all", "--non-interactive", "--color", "never")
    assert code == 0, str(run)
    assert err == "", err
    assert "No changes detected" not in out and "    applied: " not in out, out
    assert re.search(rf"^default +clean +{ALL_MIGRATIONS} applied · 0 pending · \d+ ms$", out,
                     re.M), out


def test_quiet_prints_only_the_summary_line(migrated_shop):
    shop = migrated_shop
    run = shop.cli("-q", "check")
    assert run.code == 0, str(run)
    assert run.out == f"{ALL_CLEAN}\n" and run.err == "", str(run)

    make_drift(shop)
    run = shop.cli("-q", "check", "--color", "never")
    assert run.code == 1, str(run)
    assert run.out == "2 of 3 not clean: default (drift), analytics (drift)\n", str(run)

    # JSON is the whole report whatever -q says.
    run, report = cli_json(shop, "-q", "check")
    assert run.code == 1 and len(report["aliases"]) == 3, str(run)

    run = shop.cli("-q", "-v", "check")
    assert run.code == 2, str(run)
    assert run.out == "", str(run)


def test_connect_timeout_bounds_a_database_that_never_answers(shop):
    with silent_server() as port:
        run, report = cli_json(shop, "--connect-timeout", "1", "status",
                               env={"SHOP_PGHOST": "127.0.0.1", "SHOP_PGPORT": str(port)})

    assert run.code == 1, str(run)
    assert run.elapsed < 30, f"took {run.elapsed:.1f}s"
    for entry in report["aliases"]:
        assert entry["status"] == "failed", entry
        assert entry["migrations"] == [], entry
        assert [e for e in entry["errors"] if "connection_live" in e], entry

    run = shop.cli("--connect-timeout", "soon", "status")
    assert run.code == 2, str(run)


# === the makemigrations step ==================================================================

def test_check_reports_model_changes_without_writing_a_migration(migrated_shop, widgets):
    shop = migrated_shop
    run, report = cli_json(shop, *widgets.settings, "check", env=widgets.env)

    assert run.code == 1, str(run)
    assert report["all_clean"] is False
    step = report["makemigrations"]
    assert step["status"] == "changes_detected", step
    assert "0002_gadget_colour" in step["output"] and "colour" in step["output"], step
    assert widgets.migration_files() == ["0001_initial.py"]

    code, out, err = run = shop.cli(*widgets.settings, "check", "--color", "never",
                                    env=widgets.env)
    assert code == 1, str(run)
    assert "makemigrations: MODEL CHANGES WITHOUT MIGRATIONS" in out.splitlines(), out
    assert summary_line(out).startswith("3 of 3 not clean: makemigrations, "), out
    assert widgets.migration_files() == ["0001_initial.py"]


def test_migrate_all_creates_the_migration_and_applies_it(migrated_shop, widgets):
    shop = migrated_shop
    run, report = cli_json(shop, *widgets.settings, "migrate-all", "--non-interactive",
                           env=widgets.env)

    assert run.code == 0, str(run)
    assert report["all_clean"] is True
    step = report["makemigrations"]
    assert step["status"] == "created", step
    assert str(widgets.migrations / "0002_gadget_colour.py") in step["output"], step
    assert widgets.migration_files() == ["0001_initial.py", "0002_gadget_colour.py"]
    default = by_alias(report)["default"]
    assert default["migrated"] == ["widgets.0001_initial", "widgets.0002_gadget_colour"]
    assert column_exists(shop, "default", "widgets_gadget", "colour")
    # Recorded on analytics too (Django records everywhere), without the table.
    assert {"widgets.0001_initial", "widgets.0002_gadget_colour"} <= shop.recorded("analytics")
    assert not shop.table_exists("analytics", "widgets_gadget")

    run, report = cli_json(shop, *widgets.settings, "migrate-all", "--non-interactive",
                           env=widgets.env)
    assert run.code == 0, str(run)
    assert report["makemigrations"]["status"] == "no_changes"


def test_skip_makemigrations_skips_the_step(migrated_shop, widgets):
    shop = migrated_shop
    run, report = cli_json(shop, *widgets.settings, "check", "--skip-makemigrations",
                           env=widgets.env)
    assert run.code == 1, str(run)
    assert report["makemigrations"] == {"status": "skipped", "output": ""}
    assert by_alias(report)["default"]["pending"] == ["widgets.0001_initial"]

    run, report = cli_json(shop, *widgets.settings, "migrate-all", "--non-interactive",
                           "--skip-makemigrations", env=widgets.env)

    assert run.code == 0, str(run)
    assert report["makemigrations"] == {"status": "skipped", "output": ""}
    assert widgets.migration_files() == ["0001_initial.py"]
    assert by_alias(report)["default"]["migrated"] == ["widgets.0001_initial"]
    assert shop.table_exists("default", "widgets_gadget")
    assert not column_exists(shop, "default", "widgets_gadget", "colour")

    code, out, _ = run = shop.cli(*widgets.settings, "check", "--skip-makemigrations",
                                  "--color", "never", env=widgets.env)
    assert code == 0, str(run)
    assert "makemigrations: skipped" in out.splitlines(), out


def test_a_history_django_calls_inconsistent_is_not_reported_as_model_changes(migrated_shop):
    # A deleted row under a recorded dependent: Django's makemigrations raises
    # InconsistentMigrationHistory before it compares any model, so no model change was found.
    shop = migrated_shop
    shop.sql("default", "DELETE FROM django_migrations "
                        "WHERE app = 'catalog' AND name = '0002_product_sku'")

    run, report = cli_json(shop, "check")

    assert run.code == 1, str(run)
    assert error_kinds(by_alias(report)["default"]) == [
        ("catalog.0002_product_sku", "unrecorded_present")]
    assert report["makemigrations"]["status"] != "changes_detected", report["makemigrations"]
    code, out, _ = run = shop.cli("check", "--color", "never")
    assert "MODEL CHANGES WITHOUT MIGRATIONS" not in out, str(run)


def test_migrate_all_repair_of_a_deleted_history_row_under_a_recorded_dependent_exits_0(
        migrated_shop):
    shop = migrated_shop
    shop.sql("default", "DELETE FROM django_migrations "
                        "WHERE app = 'catalog' AND name = '0002_product_sku'")

    run, report = cli_json(shop, "migrate-all", "--repair", "--non-interactive")

    default = by_alias(report)["default"]
    assert [(s["action"], s["name"], s["applied"]) for s in default["repairs"]] == [
        ("fake_apply", "0002_product_sku", True)], default
    assert_clean(default)
    assert report["makemigrations"]["status"] == "no_changes", report["makemigrations"]
    assert report["all_clean"] is True, report
    assert run.code == 0, str(run)


# === migrator =================================================================================

def test_migrator_auto_runs_the_full_migration(shop):
    run, report = cli_json(shop, "migrator", "--auto")

    assert run.code == 0, str(run)
    assert report["command"] == "migrate-all" and report["all_clean"] is True
    aliases = by_alias(report)
    for alias in ("default", "analytics"):
        assert_clean(aliases[alias])
        assert len(aliases[alias]["migrated"]) == ALL_MIGRATIONS
    assert_replica_skipped(aliases["replica"])


def test_migrator_without_a_terminal_behaves_as_auto(shop):
    code, out, err = run = shop.cli("migrator", "--color", "never")

    assert code == 0, str(run)
    assert out.startswith("django-migrator migrate-all · Django 5.2."), out
    assert "what now?" not in out + err
    assert summary_line(out) == ALL_CLEAN
    assert shop.table_exists("default", "catalog_product")
    assert shop.table_exists("analytics", "metrics_pageview")


def test_migrator_without_a_terminal_repairs_without_asking(migrated_shop):
    shop = migrated_shop
    make_drift(shop)

    code, out, err = run = shop.cli("migrator", "--repair", "--color", "never")

    assert code == 0, str(run)
    assert "[y/N]" not in out + err
    assert "repair (applied):" in out, out
    assert "metrics.0002_pageview_referrer" in shop.recorded("analytics")


def test_migrator_database_runs_one_alias(shop):
    run, report = cli_json(shop, "migrator", "--database", "analytics")

    assert run.code == 0, str(run)
    assert [a["alias"] for a in report["aliases"]] == ["analytics"]
    assert_clean(report["aliases"][0])
    assert len(report["aliases"][0]["migrated"]) == ALL_MIGRATIONS
    assert shop.table_exists("analytics", "metrics_pageview")
    assert not shop.table_exists("default", "django_migrations")


def test_migrator_app_migrates_one_app_where_the_router_allows_it(shop):
    run, report = cli_json(shop, "migrator", "--app", "metrics")

    assert run.code == 0, str(run)
    aliases = by_alias(report)
    for alias in ("default", "replica"):
        entry = aliases[alias]
        assert entry["status"] == "skipped", entry
        assert entry["warnings"] == ["skipped: the router does not migrate metrics here"], entry
        assert entry["guards"] == [] and entry["migrated"] == [], entry
    analytics = aliases["analytics"]
    assert_clean(analytics)
    assert analytics["migrated"] == ["metrics.0001_initial", "metrics.0002_pageview_referrer"]
    assert shop.recorded("analytics") == {"metrics.0001_initial",
                                          "metrics.0002_pageview_referrer"}
    assert not shop.table_exists("default", "django_migrations")

    code, out, _ = run = shop.cli("migrator", "--app", "metrics", "--color", "never")
    assert code == 0, str(run)
    assert re.search(r"^default +skipped +skipped: the router does not migrate metrics here$",
                     out, re.M), out
    assert re.search(r"^replica +skipped +skipped: the router does not migrate metrics here$",
                     out, re.M), out


def test_migrator_unknown_app_is_a_usage_error(shop):
    run = shop.cli("migrator", "--app", "nope")

    assert run.code == 2, str(run)
    assert '"nope"' in run.err and run.out == "", str(run)
    assert not shop.table_exists("default", "django_migrations")
    assert not shop.table_exists("analytics", "django_migrations")


def test_migrator_unknown_app_is_refused_before_makemigrations_writes(shop, widgets):
    run = shop.cli(*widgets.settings, "migrator", "--app", "nope", env=widgets.env)

    assert run.code == 2, str(run)
    assert '"nope"' in run.err, str(run)
    assert widgets.migration_files() == ["0001_initial.py"], (
        "a usage error left a new migration file behind")


# === the mirror guard does not depend on which aliases run ====================================

def test_a_read_only_mirror_run_alone_is_still_skipped(shop):
    run, report = cli_json(shop, "migrate-all", "--non-interactive", "--skip-makemigrations",
                           "--database", "replica")

    assert [a["alias"] for a in report["aliases"]] == ["replica"]
    assert_replica_skipped(report["aliases"][0])
    # Django would record every migration into default's django_migrations without a table.
    assert not shop.table_exists("default", "django_migrations"), shop.recorded("default")
    assert run.code == 0, str(run)


def test_a_read_only_mirror_of_a_skipped_alias_is_still_skipped(shop):
    run, report = cli_json(shop, "migrate-all", "--non-interactive", "--skip-makemigrations",
                           env={"DJANGO_MIGRATOR_SKIP_ALIASES": "default"})

    aliases = by_alias(report)
    assert aliases["default"]["warnings"] == ["skipped: listed in skip_aliases"]
    assert aliases["replica"]["status"] == "skipped", aliases["replica"]
    assert aliases["replica"]["migrated"] == [], aliases["replica"]
    assert not shop.table_exists("default", "django_migrations"), shop.recorded("default")


# === configuration layers: flags > environment > pyproject.toml ===============================

class Layers:
    """Three complete settings (manage.py and interpreter, each leaving a mark when used): one in
    pyproject.toml, one in the environment, one in flags."""

    def __init__(self, tmp_path):
        self.project = tmp_path / "project"
        self.cwd = self.project / "src" / "deploy"
        self.cwd.mkdir(parents=True)
        self.marks = {}
        for layer in ("pyproject", "env", "flag"):
            base = tmp_path / "project" / "layers" / layer
            self.marks[layer] = (manage_wrapper(base), python_wrapper(base / "python"))
        self.manage = {layer: self.project / "layers" / layer / "manage.py"
                       for layer in self.marks}
        self.python = {layer: self.project / "layers" / layer / "python" for layer in self.marks}

    def write_pyproject(self, table):
        (self.project / "pyproject.toml").write_text(
            "[project]\nname = 'shop-deploy'\nversion = '1'\n\n"
            "[tool.other]\nkey = 'ignored'\n\n"
            f"[tool.django-migrator]\n{table}")

    def env(self):
        return {"DJANGO_MIGRATOR_MANAGE": str(self.manage["env"]),
                "DJANGO_MIGRATOR_PYTHON": str(self.python["env"])}

    def used(self):
        """The layers whose manage.py and interpreter ran, then forgets them."""
        used = {}
        for layer, (manage_mark, python_mark) in self.marks.items():
            used[layer] = (manage_mark.is_file(), python_mark.is_file())
            manage_mark.unlink(missing_ok=True)
            python_mark.unlink(missing_ok=True)
        return {layer for layer, marks in used.items() if any(marks)}, used


@pytest.fixture
def layers(tmp_path):
    layer_set = Layers(tmp_path)
    # Relative paths in pyproject.toml are relative to the file's directory.
    layer_set.write_pyproject("manage = 'layers/pyproject/manage.py'\n"
                              "python = 'layers/pyproject/python'\n"
                              "lock_timeout = 1\n"
                              "skip_aliases = ['analytics']\n")
    return layer_set


def lock_detail(report):
    default = by_alias(report)["default"]
    assert default["status"] == "failed", default
    lock = guard(default, "no_concurrent_migration")
    assert lock["ok"] is False, lock
    return lock["detail"]


def test_pyproject_table_configures_a_run_from_a_subdirectory(migrated_shop, layers):
    shop = migrated_shop
    with lock_held(shop, "default", "layered"):
        run = run_bare(shop, ["--format", "json", "migrate-all", "--non-interactive",
                              "--skip-makemigrations"], cwd=layers.cwd)

    assert run.code == 1, str(run)
    report = validated(run)
    used, marks = layers.used()
    assert used == {"pyproject"}, marks
    assert marks["pyproject"] == (True, True), marks
    assert "waited 1 s" in lock_detail(report), report
    aliases = by_alias(report)
    assert aliases["analytics"]["status"] == "skipped", aliases["analytics"]
    assert aliases["analytics"]["warnings"] == ["skipped: listed in skip_aliases"]
    assert_replica_skipped(aliases["replica"])


def test_environment_overrides_pyproject(migrated_shop, layers):
    shop = migrated_shop
    env = {**layers.env(), "DJANGO_MIGRATOR_LOCK_TIMEOUT": "2",
           "DJANGO_MIGRATOR_SKIP_ALIASES": "replica"}
    with lock_held(shop, "default", "layered"):
        run = run_bare(shop, ["--format", "json", "migrate-all", "--non-interactive",
                              "--skip-makemigrations"], cwd=layers.cwd, env=env)

    assert run.code == 1, str(run)
    report = validated(run)
    used, marks = layers.used()
    assert used == {"env"}, marks
    assert marks["env"] == (True, True), marks
    assert "waited 2 s" in lock_detail(report), report
    aliases = by_alias(report)
    assert_clean(aliases["analytics"])
    assert aliases["replica"]["status"] == "skipped", aliases["replica"]
    assert aliases["replica"]["warnings"] == ["skipped: listed in skip_aliases"]


def test_flags_override_environment_and_pyproject(migrated_shop, layers):
    shop = migrated_shop
    env = {**layers.env(), "DJANGO_MIGRATOR_LOCK_TIMEOUT": "2"}
    with lock_held(shop, "default", "layered"):
        run = run_bare(shop, ["--manage", str(layers.manage["flag"]),
                              "--python", str(layers.python["flag"]),
                              "--format", "json", "migrate-all", "--non-interactive",
                              "--skip-makemigrations", "--lock-timeout", "0.5"],
                       cwd=layers.cwd, env=env)

    assert run.code == 1, str(run)
    report = validated(run)
    used, marks = layers.used()
    assert used == {"flag"}, marks
    assert marks["flag"] == (True, True), marks
    assert "waited 0.5 s" in lock_detail(report), report
    # skip_aliases has no flag: the pyproject value still applies.
    assert by_alias(report)["analytics"]["warnings"] == ["skipped: listed in skip_aliases"]


def test_an_unknown_key_in_the_pyproject_table_is_a_configuration_error(shop, layers):
    layers.write_pyproject("manage = 'layers/pyproject/manage.py'\nlock_timout = 5\n")

    run = run_bare(shop, ["check"], cwd=layers.cwd)

    assert run.code == 2, str(run)
    assert "lock_timout" in run.err, run.err
    assert str(layers.project / "pyproject.toml") in run.err, run.err
    assert run.out == ""
    assert layers.used()[0] == set(), "nothing may run after a configuration error"

    layers.write_pyproject("lock_timeout = 'soon'\n")
    run = run_bare(shop, ["check"], cwd=layers.cwd)
    assert run.code == 2, str(run)
    assert run.out == ""


# === text report snapshots ====================================================================

def test_text_report_of_a_clean_check_matches_its_snapshot(migrated_shop):
    shop = migrated_shop
    run = shop.cli("check", "--color", "never")
    assert run.code == 0, str(run)
    status = shop.cli("status", "--database", "analytics", "--color", "never")
    assert status.code == 0, str(status)

    assert_snapshots([("check_clean.txt", normalise(run.out, shop)),
                      ("status_clean_analytics.txt", normalise(status.out, shop))])


def test_text_reports_of_drift_repair_plan_and_repair_match_their_snapshots(migrated_shop):
    shop = migrated_shop
    make_drift(shop)

    check = shop.cli("check", "--color", "never")
    plan = shop.cli("migrate-all", "--check", "--repair", "--color", "never")
    status = shop.cli("status", "--database", "analytics", "--color", "never")
    repair = shop.cli("migrate-all", "--repair", "--non-interactive", "--color", "never")
    after = shop.cli("check", "--color", "never")

    for run, code in ((check, 1), (plan, 1), (status, 1), (repair, 0), (after, 0)):
        assert run.code == code, str(run)
        assert "\x1b" not in run.out + run.err
    assert_snapshots([
        ("check_drift.txt", normalise(check.out, shop)),
        ("repair_plan.txt", normalise(plan.out, shop)),
        ("status_drift_analytics.txt", normalise(status.out, shop)),
        ("migrate_all_repair.txt", normalise(repair.out, shop)),
        ("check_after_repair.txt", normalise(after.out, shop)),
    ])


def test_text_report_of_model_changes_matches_its_snapshot(migrated_shop, widgets, tmp_path):
    shop = migrated_shop
    check = shop.cli(*widgets.settings, "check", "--color", "never", env=widgets.env)
    migrate = shop.cli(*widgets.settings, "migrate-all", "--non-interactive", "--color", "never",
                       env=widgets.env)

    assert check.code == 1, str(check)
    assert migrate.code == 0, str(migrate)
    assert_snapshots([
        ("check_model_changes.txt", normalise(check.out, shop, tmp_path)),
        ("migrate_all_makemigrations.txt", normalise(migrate.out, shop, tmp_path)),
    ])
