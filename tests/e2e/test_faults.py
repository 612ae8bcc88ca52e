"""End-to-end tests of faults in the middle of a run: the database restarted while Django
migrates, the connection cut while repair waits, the project's Python crashing, hanging or
speaking garbage, a database that does not exist, a dropped django_migrations, and an extension
of another version than the CLI.

Each test pins what must survive the fault (django_migrations and the user's tables exactly as
expected, no half-written repair), what the JSON report and the exit status say (1 for a failed
alias, 2 for a project that cannot be read), and that the next ordinary run recovers.

Run from the repository root: `.venv/bin/python -m pytest tests/e2e/test_faults.py -q`.
Fixtures: tests/e2e/fixtures/faults (see tests/e2e/fixtures/README.md).
"""

import json
import os
import queue
import re
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from conftest import BIN, MANAGE, PG_BIN, PYTHON, ROOT, BackgroundRun

FAULTS = Path(__file__).resolve().parent / "fixtures" / "faults"
SCHEMA_PATH = ROOT / "docs" / "report.schema.json"
# Settings variants and apps of tests/e2e/fixtures/faults; manage.py puts the example project's
# directory first on sys.path, so `shop.settings` stays importable.
FAULTS_ENV = {"PYTHONPATH": str(FAULTS)}
WITH_FAULTS = ("--settings", "settings_faults")
MISSING_DB = ("--settings", "settings_missing_db")
PARCEL = "faultgate.0001_initial"
LOCK_GUARD = "no_concurrent_migration"
TERMINATED = "terminating connection due to administrator command"
# How a client library reports a connection the server cut: with the server's last word, or,
# when the socket's end is seen first, without it.
CUT = re.compile(f"{TERMINATED}|connection closed")


# --- helpers -----------------------------------------------------------------------------------

_validator = None


def validated(run):
    """The run's JSON report, after checking it against docs/report.schema.json."""
    global _validator
    if _validator is None:
        _validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    report = run.json()
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
              for e in _validator.iter_errors(report)]
    assert not errors, "report does not match docs/report.schema.json:\n" + "\n".join(
        errors[:20]) + f"\n{run}"
    return report


def by_alias(report):
    return {entry["alias"]: entry for entry in report["aliases"]}


def guard(entry, name):
    matches = [g for g in entry["guards"] if g["name"] == name]
    assert len(matches) == 1, f"{entry['alias']}: expected one {name} guard in {entry['guards']}"
    return matches[0]


def assert_clean(entry, migrated=()):
    assert entry["status"] == "clean", entry
    assert [r for r in entry["drift"] if r["kind"] != "orphan_record"] == [], entry
    assert entry["pending"] == [] and entry["errors"] == [], entry
    assert all(g["ok"] for g in entry["guards"]), entry["guards"]
    assert entry["migrated"] == list(migrated), entry


def assert_replica_skipped(entry):
    assert entry["status"] == "skipped", entry
    assert "skipped: same database as default" in entry["warnings"], entry["warnings"]
    assert entry["migrated"] == [] and entry["errors"] == [], entry


def cli_json(shop, *args, env=None):
    run = shop.cli(*args, "--format", "json", env={**FAULTS_ENV, **(env or {})})
    return run, validated(run)


def history(shop, alias):
    """Every row of django_migrations, exactly, ordered by id; None when there is no table."""
    if shop.sql(alias, "SELECT to_regclass('public.django_migrations') IS NULL") == "t":
        return None
    return json.loads(shop.sql(alias, """
        SELECT coalesce(json_agg(json_build_object('id', id, 'app', app, 'name', name,
                                                   'applied', applied) ORDER BY id), '[]')
          FROM django_migrations"""))


def keys(rows):
    return [row["app"] + "." + row["name"] for row in rows]


def tables(shop, alias):
    """The user's tables: every ordinary table of the public schema."""
    out = shop.sql(alias, "SELECT relname FROM pg_class WHERE relkind = 'r' "
                          "AND relnamespace = 'public'::regnamespace ORDER BY relname")
    return out.splitlines()


def journal(shop, alias):
    return json.loads(shop.sql(alias, """
        SELECT coalesce(json_agg(json_build_object(
                   'id', id, 'alias', alias, 'plan', plan, 'inserted', inserted,
                   'deleted', deleted, 'undone', undone_at IS NOT NULL) ORDER BY id), '[]')
          FROM django_migrator.repairs"""))


def snapshot(shop, alias):
    """Everything a run could write on an alias: the history, the user's tables, the stored
    manifest, the repair journal."""
    manifests = json.loads(shop.sql(alias, "SELECT coalesce(json_agg(m), '[]') "
                                           "FROM django_migrator.manifest_info() m"))
    return {"history": history(shop, alias), "tables": tables(shop, alias),
            "manifests": manifests, "journal": journal(shop, alias)}


def snapshots(shop):
    return {alias: snapshot(shop, alias) for alias in ("default", "analytics")}


def lock_holders(shop, alias):
    return shop.sql(alias, "SELECT count(*) FROM django_migrator.lock_holder()")


def wait_for(condition, what, timeout, while_running=None):
    """Polls `condition` until it returns something truthy; fails after `timeout` s, or as soon
    as `while_running` (a BackgroundRun) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if while_running is not None and not while_running.running():
            pytest.fail(f"the CLI exited while waiting for {what}:\n{while_running.finish()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.05)


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cli_version():
    out = subprocess.run([str(BIN), "--version"], capture_output=True, text=True, check=True,
                         stdin=subprocess.DEVNULL, timeout=30).stdout
    return out.split()[-1]


@pytest.fixture
def spawn():
    """spawn(argv, env, cwd=ROOT) starts a command in the background; returns a BackgroundRun."""
    runs = []

    def start(argv, env, cwd=ROOT):
        if not BIN.is_file():
            pytest.fail(f"no django-migrator binary at {BIN} (build it or set DJANGO_MIGRATOR_BIN)")
        run = BackgroundRun(argv, env, cwd)
        runs.append(run)
        return run

    try:
        yield start
    finally:
        for run in runs:
            run.close()


class HandSession:
    """A psql session kept open, as an operator's terminal would be; every wait is bounded."""

    def __init__(self, cluster, db):
        self.proc = cluster.psql_session(db)
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.pid = int(self.query("SELECT pg_backend_pid()"))

    def _pump(self):
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def query(self, sql, timeout=10):
        """Runs statements ending with a query of one value; returns that value."""
        marker = f"ready-{secrets.token_hex(4)}:"
        self.proc.stdin.write(f"{sql.rstrip().rstrip(';')};\nSELECT '{marker}';\n")
        self.proc.stdin.flush()
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"psql gave no answer to {sql!r} within {timeout} s")
            if line is None:
                self.proc.wait(timeout=10)
                pytest.fail(f"psql ended on {sql!r}:\n{self.proc.stderr.read()}")
            if line == marker:
                break
            lines.append(line)
        return lines[-1] if lines else ""

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def hand_session(cluster):
    sessions = []

    def open_session(db):
        session = HandSession(cluster, db)
        sessions.append(session)
        return session

    try:
        yield open_session
    finally:
        for session in sessions:
            session.close()


def restart_cluster(cluster):
    """`pg_ctl restart -m fast` of the session's cluster: every backend is terminated, then the
    server comes back with the options it had (postmaster.opts)."""
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    proc = subprocess.run(
        [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(cluster.dir / "data"),
         "-l", str(cluster.dir / "postgres.log"), "-m", "fast", "-w", "-t", "60", "restart"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        timeout=120)
    assert proc.returncode == 0, f"pg_ctl restart failed:\n{proc.stderr}"
    wait_for(lambda: subprocess.run(
        [str(PG_BIN / "pg_isready"), "-q", "-h", str(cluster.sock), "-p", str(cluster.port),
         "-U", "postgres"], stdin=subprocess.DEVNULL).returncode == 0,
        "server accepting connections after the restart", 60)


# === 1. the database restarted while Django migrates =============================================


def test_a_database_restarted_during_djangos_migrate_fails_that_alias_and_the_rerun_finishes(
        migrated_shop, spawn, tmp_path):
    shop = migrated_shop
    gate = tmp_path / "gate"
    gate.mkdir()
    before = snapshots(shop)
    run = spawn([BIN, "--manage", MANAGE, "--python", PYTHON, *WITH_FAULTS, "--format", "json",
                 "migrate-all", "--non-interactive"],
                shop.env(**FAULTS_ENV, FAULTS_GATE_DIR=str(gate)))
    # Django is inside faultgate's migration, its table created in the open transaction.
    wait_for(lambda: (gate / "entered").exists(), "Django's migrate at the gate", 30,
             while_running=run)
    assert lock_holders(shop, "default") == "1"

    restart_cluster(shop.cluster)
    (gate / "open").touch()
    run = run.finish(timeout=60)

    assert run.code == 1, str(run)
    report = validated(run)
    assert report["all_clean"] is False
    aliases = by_alias(report)
    default = aliases["default"]
    assert default["status"] == "failed", default
    assert guard(default, LOCK_GUARD)["ok"] is True, default["guards"]
    # The migration was rolled back with the lost transaction: Django applied nothing.
    assert default["migrated"] == [], (
        f"the report claims {default['migrated']} migrated, but the restart rolled it back")
    assert default["repairs"] == [], default
    assert [e for e in default["errors"]
            if e.startswith("Django's migrate --database default --noinput failed:")
            and TERMINATED in e], default["errors"]
    # The aliases after it ran on the restarted server.
    assert_clean(aliases["analytics"], migrated=[PARCEL])
    assert_replica_skipped(aliases["replica"])

    # Nothing half-done on default: neither the table nor its history row, and no lock left.
    after = snapshots(shop)
    assert after["default"]["history"] == before["default"]["history"]
    assert after["default"]["tables"] == before["default"]["tables"]
    assert "faultgate_parcel" not in after["default"]["tables"]
    assert after["default"]["journal"] == []
    assert keys(after["analytics"]["history"]) == keys(before["analytics"]["history"]) + [PARCEL]
    assert after["analytics"]["tables"] == before["analytics"]["tables"]
    assert lock_holders(shop, "default") == "0"

    run, report = cli_json(shop, *WITH_FAULTS, "migrate-all", "--non-interactive")

    assert run.code == 0, str(run)
    aliases = by_alias(report)
    assert_clean(aliases["default"], migrated=[PARCEL])
    assert_clean(aliases["analytics"])
    assert keys(history(shop, "default")) == keys(before["default"]["history"]) + [PARCEL]
    assert tables(shop, "default") == sorted(before["default"]["tables"] + ["faultgate_parcel"])


# === 2. the connection cut while repair waits ====================================================


def test_a_connection_cut_during_repair_writes_nothing_and_the_rerun_repairs(
        migrated_shop, spawn, hand_session):
    shop = migrated_shop
    shop.sql("default", "DELETE FROM django_migrations WHERE app = 'sessions'")
    before = snapshots(shop)
    # SHARE lets the scan read django_migrations, and is not what the no_concurrent_migration
    # guard looks for (a writer's lock), but repair's INSERT has to wait for it.
    hand = hand_session(shop.db["default"])
    assert hand.query("BEGIN; LOCK TABLE django_migrations IN SHARE MODE; SELECT 1") == "1"

    run = spawn([BIN, "--manage", MANAGE, "--python", PYTHON, "--format", "json", "migrate-all",
                 "--repair", "--non-interactive", "--skip-makemigrations"], shop.env())
    waiting = wait_for(lambda: shop.sql("default", f"""
        SELECT pid FROM pg_stat_activity
         WHERE datname = '{shop.db["default"]}' AND application_name = 'django-migrator'
           AND wait_event_type = 'Lock' AND query LIKE '%django_migrator.repair(%'"""),
        "the CLI's repair waiting for django_migrations", 30, while_running=run)
    assert shop.sql("default", f"SELECT pg_terminate_backend({int(waiting)})") == "t"
    run = run.finish(timeout=60)

    assert run.code == 1, str(run)
    report = validated(run)
    aliases = by_alias(report)
    default = aliases["default"]
    # The repair could not run to its end: the alias failed; it did not just "drift".
    assert default["status"] == "failed", default
    assert default["repairs"] == [], default
    assert default["migrated"] == [], default
    # default's entry says that its connection was cut, why, and in which step: after a cut
    # during repair, whether the repair was written is what the operator needs to know.
    cut = [e for e in default["errors"] if CUT.search(e)]
    assert cut, default["errors"]
    assert [e for e in cut if "repair" in e], (
        f"the error does not say that the repair was interrupted: {cut}")
    assert_clean(aliases["analytics"])
    assert_replica_skipped(aliases["replica"])

    # No half-written repair: the history and the journal are as they were, before and after
    # the hand session lets go.
    assert snapshot(shop, "default")["history"] == before["default"]["history"]
    assert journal(shop, "default") == []
    assert hand.query("ROLLBACK; SELECT 1") == "1"
    assert snapshot(shop, "default")["history"] == before["default"]["history"]
    assert journal(shop, "default") == []
    assert lock_holders(shop, "default") == "0"

    run, report = cli_json(shop, "migrate-all", "--repair", "--non-interactive",
                           "--skip-makemigrations")

    assert run.code == 0, str(run)
    default = by_alias(report)["default"]
    assert_clean(default)
    assert [(s["action"], s["app"] + "." + s["name"], s["applied"])
            for s in default["repairs"]] == [("fake_apply", "sessions.0001_initial", True)]
    [entry] = journal(shop, "default")
    assert keys(entry["inserted"]) == ["sessions.0001_initial"]
    assert entry["deleted"] == []
    repaired = history(shop, "default")
    assert repaired[:-1] == before["default"]["history"]
    assert keys(repaired[-1:]) == ["sessions.0001_initial"]


# === 3. the project's Python crashing or speaking garbage ========================================


def run_with_python(shop, python, *args, env=None, timeout=60):
    argv = [str(BIN), "--manage", MANAGE, "--python", str(python), *args]
    try:
        return shop._run(argv, shop.env(**FAULTS_ENV, **(env or {})), timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"$ {' '.join(argv)}\nstill running after {timeout} s")


def assert_configuration_error(run):
    assert run.code == 2, str(run)
    assert run.out == "", str(run)
    assert run.err.startswith("django-migrator: error: "), str(run)


@pytest.mark.parametrize("skip", [False, True], ids=["in-makemigrations", "in-export"])
def test_django_dying_mid_run_is_a_configuration_error_and_writes_nothing(shop, skip):
    before = snapshots(shop)
    args = ("--skip-makemigrations",) if skip else ()

    run = shop.cli(*WITH_FAULTS, "--format", "json", "migrate-all", "--non-interactive", *args,
                   env={**FAULTS_ENV, "FAULTS_BREAK": "die-graph"})

    assert_configuration_error(run)
    assert "the project's Python process ended unexpectedly" in run.err, run.err
    # What the process said before dying, and how it ended.
    assert "faults_hooks: the project's process dies at graph" in run.err, run.err
    assert "exit status 70" in run.err, run.err
    assert snapshots(shop) == before

    run, report = cli_json(shop, *WITH_FAULTS, "migrate-all", "--non-interactive", *args)
    assert run.code == 0, str(run)
    assert PARCEL in by_alias(report)["default"]["migrated"], report


FAKES = {
    # (FAULTS_FAKE, what stderr must say)
    "exits-babbling": ("babble", ["Django could not start or read the migration graph "
                                  "(exit status 3)", "fake_python: not a Python for Django"]),
    "garbage-reply": ("garbage-reply", ["unreadable reply from the session"]),
    "garbage-export": ("garbage-export", ["the exporter's output is not valid JSON"]),
    "not-an-export": ("wrong-export", ["the exporter's output has no export_version"]),
}


@pytest.mark.parametrize("fake", sorted(FAKES))
def test_a_python_speaking_garbage_is_a_configuration_error_and_writes_nothing(
        migrated_shop, tmp_path, fake):
    shop = migrated_shop
    behaviour, messages = FAKES[fake]
    shim = tmp_path / "python"
    shim.write_text(f'#!/bin/sh\nexec "{ROOT / PYTHON}" "{FAULTS / "fake_python.py"}" "$@"\n')
    shim.chmod(0o755)
    shop.sql("default", "DELETE FROM django_migrations WHERE app = 'sessions'")
    before = snapshots(shop)

    for args in (("check",), ("migrate-all", "--repair", "--non-interactive")):
        run = run_with_python(shop, shim, "--format", "json", *args,
                              env={"FAULTS_FAKE": behaviour})

        assert_configuration_error(run)
        for message in messages:
            assert message in run.err, (message, str(run))
        assert snapshots(shop) == before

    run, report = cli_json(shop, "migrate-all", "--repair", "--non-interactive")
    assert run.code == 0, str(run)
    assert [s["app"] + "." + s["name"] for s in by_alias(report)["default"]["repairs"]] == [
        "sessions.0001_initial"]


# === 4. a project that hangs ===================================================================

HANGS = {
    # place of the hang: (FAULTS_BREAK, CLI arguments, words of stderr naming the step)
    "startup": ("hang-startup", (), ("start",)),
    "makemigrations": ("hang-graph", (), ("makemigrations",)),
    "export": ("hang-graph", ("--skip-makemigrations",), ("export", "migration graph")),
}


def hang_case(shop, place, tmp_path):
    breaks, args, _ = HANGS[place]
    pids = tmp_path / "pids"
    pids.mkdir()
    env = shop.env(**FAULTS_ENV, FAULTS_BREAK=breaks, FAULTS_PID_DIR=str(pids),
                   FAULTS_HANG_SECONDS="120")
    return pids, env, args


def assert_timed_out(shop, place, run, pids, seconds, before):
    _, _, steps = HANGS[place]
    assert run.code == 2, str(run)
    assert run.out == "", str(run)
    assert f"did not answer within {seconds} s" in run.err, str(run)
    assert any(re.search(step, run.err, re.IGNORECASE) for step in steps), (
        f"stderr does not name the step ({' or '.join(steps)}): {run.err}")
    assert seconds <= run.elapsed < seconds + 10, f"took {run.elapsed:.1f}s"
    # The project's process and the child it started are gone with the run.
    hung = {name: int((pids / f"{name}.pid").read_text()) for name in ("django", "child")}
    deadline = time.monotonic() + 2
    while any(alive(pid) for pid in hung.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not [name for name, pid in hung.items() if alive(pid)], (
        f"still running after the CLI exited: {hung}")
    assert snapshots(shop) == before


def kill_leftovers(pids):
    for path in pids.glob("*.pid"):
        pid = int(path.read_text())
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("place", sorted(HANGS))
def test_django_timeout_bounds_a_hanging_project(shop, spawn, tmp_path, place):
    pids, env, args = hang_case(shop, place, tmp_path)
    before = snapshots(shop)
    try:
        run = spawn([BIN, "--manage", MANAGE, "--python", PYTHON, *WITH_FAULTS,
                     "--django-timeout", "2", "--format", "json", "migrate-all",
                     "--non-interactive", *args],
                    {**env, "DJANGO_MIGRATOR_DJANGO_TIMEOUT": "600"}).finish(timeout=30)
        assert_timed_out(shop, place, run, pids, 2, before)
    finally:
        kill_leftovers(pids)


@pytest.mark.parametrize("source", ["environment", "pyproject"])
def test_django_timeout_from_the_environment_and_pyproject(shop, spawn, tmp_path, source):
    pids, env, args = hang_case(shop, "startup", tmp_path)
    project = tmp_path / "deploy"
    project.mkdir()
    timeout = "2" if source == "pyproject" else "600"
    (project / "pyproject.toml").write_text(
        "[tool.django-migrator]\n"
        f'manage = "{ROOT / MANAGE}"\n'
        f'python = "{ROOT / PYTHON}"\n'
        f"django_timeout = {timeout}\n")
    if source == "environment":
        env["DJANGO_MIGRATOR_DJANGO_TIMEOUT"] = "2"
    before = snapshots(shop)
    try:
        run = spawn([BIN, *WITH_FAULTS, "--format", "json", "check", *args], env,
                    cwd=project).finish(timeout=30)
        assert_timed_out(shop, "startup", run, pids, 2, before)
    finally:
        kill_leftovers(pids)


# === 5. an alias whose database does not exist ===================================================


def test_an_alias_whose_database_does_not_exist_fails_alone(shop):
    missing = shop.db["analytics"] + "_missing"

    run, report = cli_json(shop, *MISSING_DB, "migrate-all", "--non-interactive")

    assert run.code == 1, str(run)
    aliases = by_alias(report)
    analytics = aliases["analytics"]
    assert analytics["status"] == "failed", analytics
    live = guard(analytics, "connection_live")
    assert live["ok"] is False, live
    assert '"analytics"' in live["detail"] and missing in live["detail"], live
    assert f"guard connection_live failed: {live['detail']}" in analytics["errors"], analytics
    assert [g["name"] for g in analytics["guards"]] == ["connection_live"], analytics["guards"]
    assert analytics["migrated"] == [] and analytics["repairs"] == [], analytics
    assert not {"scan", "migrate", "verify"} & set(analytics["timings_ms"]), analytics
    # The others ran.
    default = aliases["default"]
    assert_clean(default, migrated=default["migrated"])
    assert len(default["migrated"]) == 31, default["migrated"]
    assert set(default["migrated"]) == {f"{r['app']}.{r['name']}"
                                        for r in history(shop, "default")}
    assert_replica_skipped(aliases["replica"])
    # Nothing was created for the missing database, and the real analytics database was not
    # touched by a settings file that does not point at it.
    assert shop.sql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{missing}'") \
        == "0"
    assert history(shop, "analytics") is None

    shop.sql("postgres", f'CREATE DATABASE "{missing}"')
    try:
        shop.cluster.psql(missing, "CREATE EXTENSION django_migrator")
        run, report = cli_json(shop, *MISSING_DB, "migrate-all", "--non-interactive")

        assert run.code == 0, str(run)
        aliases = by_alias(report)
        assert_clean(aliases["default"])
        analytics = aliases["analytics"]
        assert_clean(analytics, migrated=analytics["migrated"])
        assert len(analytics["migrated"]) == 31, analytics["migrated"]
        assert shop.cluster.psql(missing, "SELECT to_regclass('metrics_pageview') IS NOT NULL") \
            == "t"
    finally:
        shop.sql("postgres", f'DROP DATABASE IF EXISTS "{missing}" WITH (FORCE)')


# === 6. django_migrations dropped on a database that has tables ==================================

# What check reports on default once django_migrations is gone: every migration with a checkable
# effect is unrecorded_present (its effects are all there), the others are pending.
UNRECORDED_PRESENT = [
    "contenttypes.0001_initial", "auth.0001_initial", "admin.0001_initial",
    "contenttypes.0002_remove_content_type_name", "taggit.0001_initial",
    "taggit.0002_auto_20150616_2121", "taggit.0003_taggeditem_add_unique_index",
    "catalog.0001_initial", "catalog.0002_product_sku", "catalog.0003_rename_price_unit_price",
    "catalog.0004_product_cat_price_index", "sessions.0001_initial"]
PENDING = [
    "admin.0002_logentry_remove_auto_add", "admin.0003_logentry_add_action_flag_choices",
    "auth.0002_alter_permission_name_max_length", "auth.0003_alter_user_email_max_length",
    "auth.0004_alter_user_username_opts", "auth.0005_alter_user_last_login_null",
    "auth.0006_require_contenttypes_0002", "auth.0007_alter_validators_add_error_messages",
    "auth.0008_alter_user_username_max_length", "auth.0009_alter_user_last_name_max_length",
    "auth.0010_alter_group_name_max_length", "auth.0011_update_proxy_permissions",
    "auth.0012_alter_user_first_name_max_length",
    "taggit.0004_alter_taggeditem_content_type_alter_taggeditem_tag",
    "taggit.0005_auto_20220424_2025",
    "taggit.0006_rename_taggeditem_content_type_object_id_taggit_tagg_content_8fc721_idx",
    "catalog.0005_fill_sku", "metrics.0001_initial", "metrics.0002_pageview_referrer"]
# Their dependency taggit.0006 has no checkable effect: nothing proves it ran.
CATALOG_REFUSED = ["catalog.0001_initial", "catalog.0002_product_sku",
                   "catalog.0003_rename_price_unit_price", "catalog.0004_product_cat_price_index"]
NO_HISTORY_TABLE = ("django_migrator: public.django_migrations does not exist; nothing can be "
                    "recorded before Django has created it")


def drift_keys(entry):
    return [(r["app"] + "." + r["name"], r["kind"]) for r in entry["drift"]]


def test_a_dropped_django_migrations_is_reported_and_repair_recreates_nothing(migrated_shop):
    shop = migrated_shop
    rows = history(shop, "default")
    user_tables = [t for t in tables(shop, "default") if t != "django_migrations"]
    shop.sql("default", "DROP TABLE django_migrations")
    before = snapshots(shop)

    run, report = cli_json(shop, "check")

    assert run.code == 1, str(run)
    aliases = by_alias(report)
    default = aliases["default"]
    assert default["status"] == "drift", default
    assert drift_keys(default) == [(key, "unrecorded_present") for key in UNRECORDED_PRESENT]
    assert all(r["recorded"] is False and r["missing"] == 0 and r["present"] > 0
               for r in default["drift"]), default["drift"]
    assert default["pending"] == PENDING, default["pending"]
    assert_clean(aliases["analytics"])
    assert snapshots(shop) == before

    # Without --repair: drift stops the alias before Django's migrate could create the table
    # again and fail on every existing one.
    run, report = cli_json(shop, "migrate-all", "--non-interactive")
    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    assert default["status"] == "drift" and default["migrated"] == [], default
    assert default["errors"] == [
        '12 migrations drifted from the schema; not migrating alias "default" '
        "(see the drift rows; `check --repair` shows what --repair would do)"], default
    assert snapshot(shop, "default")["history"] is None
    assert snapshot(shop, "default")["tables"] == user_tables

    # With --repair: the extension refuses to record anything without the table, and creates
    # nothing itself.
    run, report = cli_json(shop, "migrate-all", "--repair", "--non-interactive")
    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    assert default["migrated"] == [] and default["repairs"] == [], default
    assert [e for e in default["errors"] if NO_HISTORY_TABLE in e], default["errors"]
    after = snapshot(shop, "default")
    assert after["history"] is None
    assert after["tables"] == user_tables
    assert after["journal"] == []

    # The operator lets Django create its empty table again; repair then records exactly what
    # the catalog proves, and refuses what depends on an unproven migration.
    made = shop.manage("shell", "-c",
                       "from django.db import connections; "
                       "from django.db.migrations.recorder import MigrationRecorder; "
                       "MigrationRecorder(connections['default']).ensure_schema()")
    assert made.code == 0, str(made)
    run, report = cli_json(shop, "migrate-all", "--repair", "--non-interactive")
    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    assert [(s["action"], s["app"] + "." + s["name"], s["applied"])
            for s in default["repairs"]] == [
        ("refuse" if key in CATALOG_REFUSED else "fake_apply", key, key not in CATALOG_REFUSED)
        for key in UNRECORDED_PRESENT]
    refused = [s for s in default["repairs"] if s["action"] == "refuse"]
    assert refused[0]["reason"].endswith(
        "but it depends on taggit.0006_rename_taggeditem_content_type_object_id_taggit_tagg_"
        "content_8fc721_idx, which is neither recorded nor proven present"), refused[0]
    assert default["migrated"] == [], default
    proven = [key for key in UNRECORDED_PRESENT if key not in CATALOG_REFUSED]
    assert keys(history(shop, "default")) == proven
    [entry] = journal(shop, "default")
    assert keys(entry["inserted"]) == proven
    assert tables(shop, "default") == sorted(user_tables + ["django_migrations"])

    # Recording taggit's remaining migrations by hand (they changed nothing checkable) lets the
    # next run prove catalog and migrate the rest.
    faked = shop.manage("migrate", "taggit", "--fake", "--database", "default", "--noinput",
                        "-v", "0")
    assert faked.code == 0, str(faked)
    run, report = cli_json(shop, "migrate-all", "--repair", "--non-interactive")
    assert run.code == 0, str(run)
    default = by_alias(report)["default"]
    assert default["status"] == "clean", default
    assert [(s["action"], s["app"] + "." + s["name"]) for s in default["repairs"]] == [
        ("fake_apply", key) for key in CATALOG_REFUSED]
    assert sorted(keys(history(shop, "default"))) == sorted(keys(rows))
    assert tables(shop, "default") == sorted(user_tables + ["django_migrations"])


# === 7. an extension of another version than the CLI ==========================================


def set_extension_version(shop, alias, version):
    shop.sql(alias, f"UPDATE pg_catalog.pg_extension SET extversion = '{version}' "
                    "WHERE extname = 'django_migrator'")


def version_errors(entry, version):
    return [e for e in entry["errors"]
            if f'the django_migrator extension in the database of alias "{entry["alias"]}" is '
               f"version {version}" in e]


@pytest.mark.parametrize("command", ["check", "migrate-all"])
def test_an_older_extension_fails_the_alias_and_names_the_install_command(shop, command):
    wanted = cli_version()
    set_extension_version(shop, "analytics", "0.0.1")
    try:
        run, report = cli_json(shop, command, "--non-interactive")

        assert run.code == 1, str(run)
        aliases = by_alias(report)
        analytics = aliases["analytics"]
        assert analytics["status"] == "failed", analytics
        message = (f'the django_migrator extension in the database of alias "analytics" is '
                   f"version 0.0.1, this django-migrator needs {wanted}: run "
                   f"`django-migrator install --database analytics`")
        assert [e for e in analytics["errors"] if message in e], analytics["errors"]
        assert analytics["migrated"] == [] and analytics["repairs"] == [], analytics
        # Nothing reached the analytics database; default went on.
        assert history(shop, "analytics") is None
        assert shop.sql("analytics", "SELECT count(*) FROM django_migrator.manifest") == "0"
        default = aliases["default"]
        if command == "migrate-all":
            assert_clean(default, migrated=default["migrated"])
            assert len(default["migrated"]) == 31, default
        else:
            assert default["status"] == "pending", default
        assert_replica_skipped(aliases["replica"])
    finally:
        set_extension_version(shop, "analytics", wanted)

    run, report = cli_json(shop, command, "--non-interactive")
    assert run.code == (0 if command == "migrate-all" else 1), str(run)
    assert by_alias(report)["analytics"]["errors"] == []


def test_a_newer_extension_fails_the_alias_and_asks_for_a_newer_cli(migrated_shop):
    shop = migrated_shop
    wanted = cli_version()
    newer = "99.0.0"
    set_extension_version(shop, "analytics", newer)
    before = snapshots(shop)
    try:
        for command in ("check", "migrate-all"):
            run, report = cli_json(shop, command, "--non-interactive")

            assert run.code == 1, str(run)
            aliases = by_alias(report)
            analytics = aliases["analytics"]
            assert analytics["status"] == "failed", analytics
            [error] = version_errors(analytics, newer)
            assert wanted in error, error
            assert re.search(r"(upgrade|install) django-migrator", error), error
            assert_clean(aliases["default"])
            assert snapshot(shop, "analytics") == before["analytics"]
    finally:
        set_extension_version(shop, "analytics", wanted)

    run, report = cli_json(shop, "check")
    assert run.code == 0, str(run)


def test_install_updates_an_older_extension_when_the_server_has_an_update_path(shop):
    wanted = cli_version()
    older = shop.sql("postgres", f"""
        SELECT source FROM pg_extension_update_paths('django_migrator')
         WHERE target = '{wanted}' AND path IS NOT NULL AND source <> '{wanted}'
         ORDER BY source DESC LIMIT 1""")
    if not older:
        pytest.skip(f"the server offers no update path of django_migrator to {wanted}")
    shop.sql("analytics", "DROP EXTENSION django_migrator")
    shop.sql("analytics", f"CREATE EXTENSION django_migrator VERSION '{older}'")

    run, report = cli_json(shop, "check")
    assert run.code == 1, str(run)
    assert version_errors(by_alias(report)["analytics"], older), report

    run, report = cli_json(shop, "install", "--database", "analytics")
    assert run.code == 0, str(run)
    assert f"updated django_migrator {older} → {wanted}" in by_alias(report)["analytics"][
        "warnings"], report
    assert shop.sql("analytics", "SELECT extversion FROM pg_extension "
                                 "WHERE extname = 'django_migrator'") == wanted

    run, report = cli_json(shop, "migrate-all", "--non-interactive")
    assert run.code == 0, str(run)
    assert by_alias(report)["analytics"]["errors"] == []
