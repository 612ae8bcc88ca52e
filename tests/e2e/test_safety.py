"""End-to-end tests of what keeps `migrate-all` from doing harm: the migration lock and the guards
no_concurrent_migration, not_standby and test_mirror_isolation.

Run from the repository root: `.venv/bin/python -m pytest tests/e2e/test_safety.py -q`. Settings
variants of the example project live in tests/e2e/fixtures (see its README).
"""

import os
import pwd
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import CLUSTER_SH, PG_BIN, PYTHON, ROOT, _free_port

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ALIASES = ["default", "analytics", "replica"]
LOCK_GUARD = "no_concurrent_migration"
GATED = "gated.0001_wait_at_gate"
# Steps of an alias that the lock guards; none of them may run when a guard refuses.
LOCKED_STEPS = {"scan", "repair", "migrate", "verify"}


def by_alias(report):
    return {entry["alias"]: entry for entry in report["aliases"]}


def guard(entry, name):
    matches = [g for g in entry["guards"] if g["name"] == name]
    assert len(matches) == 1, f"{entry['alias']}: expected one {name} guard in {entry['guards']}"
    return matches[0]


def assert_clean(entry):
    assert entry["status"] == "clean", entry
    assert entry["drift"] == [] or all(r["kind"] == "orphan_record" for r in entry["drift"]), entry
    assert entry["pending"] == [], entry
    assert entry["errors"] == [], entry
    assert all(g["ok"] for g in entry["guards"]), entry["guards"]


def assert_skipped_as_same_database(entry, first="default"):
    assert entry["status"] == "skipped", entry
    assert f"skipped: same database as {first}" in entry["warnings"], entry["warnings"]
    assert guard(entry, "test_mirror_isolation")["ok"] is True, entry["guards"]
    assert entry["migrated"] == [], entry
    assert entry["errors"] == [], entry


def assert_refused_before_locked_steps(entry):
    """The alias failed on a guard, and nothing after the guards was attempted."""
    assert entry["status"] == "failed", entry
    assert entry["migrated"] == [], entry
    assert entry["repairs"] == [], entry
    assert not LOCKED_STEPS & set(entry["timings_ms"]), entry["timings_ms"]


def settings_env(**extra):
    """Environment for a settings variant from tests/e2e/fixtures."""
    return {"PYTHONPATH": str(FIXTURES), **extra}


def duplicate_history_rows(shop, alias):
    return shop.sql(alias, "SELECT app || '.' || name || ' x' || count(*) FROM django_migrations "
                           "GROUP BY app, name HAVING count(*) > 1")


def lock_holder_rows(shop, alias):
    """django_migrator.lock_holder() from a session of its own, as dicts."""
    out = shop.sql(alias, "SELECT pid, coalesce(holder, ''), coalesce(application_name, ''), "
                          "coalesce(host(client_addr), ''), backend_start, state, waiting "
                          "FROM django_migrator.lock_holder()")
    keys = ("pid", "holder", "application_name", "client_addr", "backend_start", "state",
            "waiting")
    rows = []
    for line in out.splitlines():
        row = dict(zip(keys, line.split("|")))
        row["pid"] = int(row["pid"])
        row["waiting"] = int(row["waiting"])
        rows.append(row)
    return rows


def backend(shop, alias, pid):
    """The pg_stat_activity facts of one backend, formatted as lock_holder_rows formats them."""
    out = shop.sql(alias, "SELECT coalesce(application_name, ''), "
                          "coalesce(host(client_addr), ''), backend_start "
                          f"FROM pg_stat_activity WHERE pid = {int(pid)}")
    assert out, f"no backend with pid {pid}"
    application_name, client_addr, backend_start = out.split("|")
    return {"application_name": application_name, "client_addr": client_addr,
            "backend_start": backend_start}


def assert_lock_released(shop, alias):
    """The lock is free once the sessions of finished runs have ended (a moment at most)."""
    wait_for(lambda: lock_holder_rows(shop, alias) == [], f"free lock on {alias}", 3)


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


class HandSession:
    """A psql session kept open, as an operator's terminal would be; results are read on a
    thread so that every wait is bounded."""

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
        # Command tags (BEGIN, LOCK TABLE, INSERT 0 1) come before the value of the last query.
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
def hand_sessions(cluster):
    """hand_session(db) opens a psql session kept open until the end of the test."""
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


# --- the migration lock -------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(3))
def test_two_runs_started_together_migrate_each_alias_once(shop, start_cli, attempt):
    args = ("--format", "json", "migrate-all", "--non-interactive", "--lock-timeout", "30")
    first = start_cli(shop, *args)
    second = start_cli(shop, *args)
    runs = [first.finish(timeout=60), second.finish(timeout=60)]

    reports = [run.json() for run in runs]
    for run in runs:
        assert run.code in (0, 1), str(run)
    for alias in ("default", "analytics"):
        entries = [by_alias(report)[alias] for report in reports]
        migrating = [entry for entry in entries if entry["migrated"]]
        assert len(migrating) == 1, (
            f"{alias}: expected exactly one run to migrate, got "
            f"{[(e['status'], len(e['migrated'])) for e in entries]}")
        winner = migrating[0]
        assert_clean(winner)
        assert set(winner["migrated"]) == shop.recorded(alias), winner["migrated"]
        other = next(entry for entry in entries if entry is not winner)
        assert other["migrated"] == [], other
        if other["status"] == "clean":
            # It waited for the lock, then found nothing to do.
            assert_clean(other)
            assert guard(other, LOCK_GUARD)["ok"] is True, other["guards"]
        else:
            assert other["status"] == "failed", other
            lock = guard(other, LOCK_GUARD)
            assert lock["ok"] is False, lock
            assert "django-migrator" in lock["detail"], lock
        assert duplicate_history_rows(shop, alias) == "", alias
    for report, run in zip(reports, runs):
        aliases = by_alias(report)
        assert_skipped_as_same_database(aliases["replica"])
        expected = 0 if all(aliases[a]["status"] in ("clean", "skipped") for a in ALIASES) else 1
        assert run.code == expected, str(run)


HOLDER_SCRIPT = textwrap.dedent("""
    import sys, time
    import psycopg
    host, port, dbname = sys.argv[1:4]
    conn = psycopg.connect(host=host, port=port, dbname=dbname, user="postgres",
                           application_name="doomed deploy", autocommit=True)
    locked = conn.execute("SELECT django_migrator.try_lock('doomed deploy')").fetchone()[0]
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    print(f"{locked} {pid}", flush=True)
    time.sleep(120)
""")


def test_a_killed_holder_process_releases_the_lock_at_once(shop):
    holder = subprocess.Popen(
        [str(ROOT / PYTHON), "-c", HOLDER_SCRIPT, str(shop.cluster.sock),
         str(shop.cluster.port), shop.db["default"]],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=shop.env())
    try:
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(holder.stdout.readline()), daemon=True).start()
        try:
            first_line = lines.get(timeout=15)
        except queue.Empty:
            pytest.fail("the holder process did not report its lock within 15 s")
        assert first_line.split()[:1] == ["True"], first_line
        holder_pid = int(first_line.split()[1])
        rows = lock_holder_rows(shop, "default")
        assert [(r["pid"], r["holder"]) for r in rows] == [(holder_pid, "doomed deploy")], rows

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    run, report = shop.cli_json("migrate-all", "--non-interactive", "--lock-timeout", "30")

    assert run.code == 0, str(run)
    default = by_alias(report)["default"]
    assert_clean(default)
    assert default["migrated"], default
    assert guard(default, LOCK_GUARD)["ok"] is True
    # At once: nothing near the 30 s it was allowed to wait.
    assert default["timings_ms"]["lock"] < 2000, default["timings_ms"]
    assert run.elapsed < 15, f"took {run.elapsed:.1f}s"


def _children(pid):
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_django_dies_with_a_killed_cli_and_never_migrates_without_the_lock(
        migrated_shop, start_cli, tmp_path):
    shop = migrated_shop
    env = settings_env(SHOP_GATE_DIR=str(tmp_path))
    doomed = start_cli(shop, "--settings", "settings_gated", "--format", "json",
                       "migrate-all", "--non-interactive", env=env)
    wait_for(lambda: (tmp_path / "entered").exists(), "Django's migrate at the gate", 15,
             while_running=doomed)
    django = _children(doomed.pid)
    assert django, "the CLI runs Django as its child"

    # Only the CLI is killed (not its process group): Django must not go on on its own.
    os.kill(doomed.pid, signal.SIGKILL)
    wait_for(lambda: not any(_alive(pid) for pid in django), "Django to die with the CLI", 10)
    assert "gated.0001_wait_at_gate" not in shop.recorded("default")

    run, report = shop.cli_json("--settings", "settings_gated", "migrate-all",
                                "--non-interactive", "--lock-timeout", "30",
                                env=settings_env())
    assert run.code == 0, str(run)
    assert "gated.0001_wait_at_gate" in by_alias(report)["default"]["migrated"]


def test_a_run_killed_inside_djangos_migrate_leaves_no_stale_lock(migrated_shop, start_cli,
                                                                   tmp_path):
    shop = migrated_shop
    env = settings_env(SHOP_GATE_DIR=str(tmp_path))
    doomed = start_cli(shop, "--settings", "settings_gated", "--format", "json",
                       "migrate-all", "--non-interactive", env=env)
    wait_for(lambda: (tmp_path / "entered").exists(), "Django's migrate at the gate", 15,
             while_running=doomed)
    rows = lock_holder_rows(shop, "default")
    assert len(rows) == 1 and f"pid {doomed.pid}" in rows[0]["holder"], rows

    # The deploy job is cancelled: the CLI and its Django child die without cleaning up.
    doomed.kill_group()

    run, report = shop.cli_json("--settings", "settings_gated", "migrate-all",
                                "--non-interactive", "--lock-timeout", "30",
                                env=settings_env())

    assert run.code == 0, str(run)
    aliases = by_alias(report)
    default = aliases["default"]
    assert_clean(default)
    assert guard(default, LOCK_GUARD)["ok"] is True
    assert default["timings_ms"]["lock"] < 2000, default["timings_ms"]
    # The killed run's migration was rolled back with its session, so this run applies it.
    assert default["migrated"] == [GATED], default
    assert duplicate_history_rows(shop, "default") == ""
    assert run.elapsed < 15, f"took {run.elapsed:.1f}s"


def test_a_lock_held_from_psql_bounds_the_wait_by_lock_timeout(migrated_shop, hand_sessions,
                                                                start_cli):
    shop = migrated_shop
    hand = hand_sessions(shop.db["default"])
    assert hand.query("SELECT django_migrator.try_lock('psql hand')") == "t"

    run, report = shop.cli_json("migrate-all", "--non-interactive", "--database", "default",
                                "--skip-makemigrations", "--lock-timeout", "2")

    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    assert_refused_after_waiting(default, hand.pid)
    # The wall clock covers Django's start-up (export) too; makemigrations is skipped above.
    waited = default["timings_ms"]["lock"] / 1000
    assert 2.0 <= waited < 4.0, default["timings_ms"]
    startup = report["timings_ms"]["export"] / 1000
    assert 2.0 <= run.elapsed < 4.0 + startup, f"took {run.elapsed:.1f}s ({startup:.1f}s start-up)"

    run, report = shop.cli_json("migrate-all", "--non-interactive", "--database", "default",
                                "--skip-makemigrations", "--lock-timeout", "0")

    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    assert_refused_after_waiting(default, hand.pid)
    assert default["timings_ms"]["lock"] < 500, default["timings_ms"]
    startup = report["timings_ms"]["export"] / 1000
    assert run.elapsed < 1.0 + startup, f"took {run.elapsed:.1f}s ({startup:.1f}s start-up)"

    # A run that waits shows in lock_holder() from a third session...
    waiter = start_cli(shop, "--format", "json", "migrate-all", "--non-interactive",
                       "--database", "default", "--lock-timeout", "15")
    rows = wait_for(lambda: [r for r in lock_holder_rows(shop, "default") if r["waiting"] == 1],
                    "waiting = 1 in lock_holder()", 10, while_running=waiter)
    assert len(rows) == 1, rows
    row = rows[0]
    psql = backend(shop, "default", hand.pid)
    assert row == {"pid": hand.pid, "holder": "psql hand", "application_name": "psql",
                   "client_addr": "", "backend_start": psql["backend_start"],
                   "state": "idle", "waiting": 1}, row
    waiting_pids = shop.sql("default", "SELECT a.application_name FROM pg_locks l "
                                       "JOIN pg_stat_activity a USING (pid) "
                                       "WHERE l.locktype = 'advisory' AND NOT l.granted")
    assert waiting_pids == "django-migrator", waiting_pids

    # ...and takes the lock as soon as it is released.
    assert hand.query("SELECT django_migrator.unlock()") == "t"
    released = time.monotonic()
    run = waiter.finish(timeout=30)
    assert run.code == 0, str(run)
    default = by_alias(run.json())["default"]
    assert_clean(default)
    assert guard(default, LOCK_GUARD)["detail"] == "lock acquired", default["guards"]
    assert time.monotonic() - released < 5, "the waiting run did not go on once released"
    assert_lock_released(shop, "default")


def assert_refused_after_waiting(entry, holder_pid):
    assert_refused_before_locked_steps(entry)
    lock = guard(entry, LOCK_GUARD)
    assert lock["ok"] is False, lock
    assert f"pid {holder_pid} (psql hand)" in lock["detail"], lock


@pytest.fixture
def tcp_role(migrated_shop):
    """A login role with a password, so that the CLI connects over TCP (client_addr is set)."""
    shop = migrated_shop
    password = "safety-" + secrets.token_hex(8)
    role = "safety_deployer"
    shop.sql("postgres", f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
    try:
        yield {"SHOP_PGHOST": "127.0.0.1", "SHOP_PGUSER": role, "SHOP_PGPASSWORD": password}
    finally:
        shop.sql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             f"WHERE usename = '{role}'")
        # Sessions of the role may take a moment to end.
        for _ in range(50):
            if shop.sql("postgres", "SELECT count(*) FROM pg_stat_activity "
                                    f"WHERE usename = '{role}'") == "0":
                break
            time.sleep(0.05)
        shop.sql("postgres", f"DROP ROLE {role}")


def test_the_holder_label_names_the_deploy_and_its_commit(migrated_shop, tcp_role, start_cli,
                                                           tmp_path):
    shop = migrated_shop
    sha = secrets.token_hex(20)
    user = pwd.getpwuid(os.geteuid()).pw_name
    holder = start_cli(shop, "--settings", "settings_gated", "--format", "json", "migrate-all",
                       "--non-interactive", "--database", "default",
                       env=settings_env(SHOP_GATE_DIR=str(tmp_path), GITHUB_SHA=sha, USER=user,
                                        **tcp_role))
    wait_for(lambda: (tmp_path / "entered").exists(), "Django's migrate at the gate", 15,
             while_running=holder)

    rows = lock_holder_rows(shop, "default")
    assert len(rows) == 1, rows
    row = rows[0]
    label = row["holder"]
    assert label.startswith("django-migrator "), label
    assert f" on {socket.gethostname()} " in label, label
    assert f" pid {holder.pid} " in label, label
    assert f" user {user} " in label, label
    assert f"GITHUB_SHA={sha}" in label, label
    cli_backend = backend(shop, "default", row["pid"])
    assert row["application_name"] == "django-migrator", row
    assert row["client_addr"] == "127.0.0.1" == cli_backend["client_addr"], row
    assert row["backend_start"] == cli_backend["backend_start"], row
    # The CLI's own session is idle while Django's migrate runs in another one.
    assert row["state"] == "idle", row
    assert row["waiting"] == 0, row

    # A second deploy that gives up names the first one, commit included.
    run, report = shop.cli_json("--settings", "settings_gated", "migrate-all",
                                "--non-interactive", "--database", "default",
                                "--lock-timeout", "1", env=settings_env())
    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    assert_refused_before_locked_steps(default)
    lock = guard(default, LOCK_GUARD)
    assert lock["ok"] is False, lock
    assert f" pid {holder.pid} " in lock["detail"], lock
    assert f"GITHUB_SHA={sha}" in lock["detail"], lock

    (tmp_path / "open").touch()
    run = holder.finish(timeout=30)
    assert run.code == 0, str(run)
    default = by_alias(run.json())["default"]
    assert_clean(default)
    assert default["migrated"] == [GATED], default
    assert_lock_released(shop, "default")


def test_the_holder_label_names_the_os_user_when_USER_is_unset(migrated_shop, start_cli,
                                                                tmp_path):
    # Containers, cron and `docker exec` often run without USER in the environment.
    shop = migrated_shop
    user = pwd.getpwuid(os.geteuid()).pw_name
    holder = start_cli(shop, "--settings", "settings_gated", "--format", "json", "migrate-all",
                       "--non-interactive", "--database", "default",
                       env=settings_env(SHOP_GATE_DIR=str(tmp_path)),
                       drop_env=("USER", "LOGNAME"))
    wait_for(lambda: (tmp_path / "entered").exists(), "Django's migrate at the gate", 15,
             while_running=holder)
    rows = lock_holder_rows(shop, "default")
    (tmp_path / "open").touch()
    run = holder.finish(timeout=30)

    assert len(rows) == 1, rows
    assert f" user {user}" in rows[0]["holder"], rows[0]["holder"]
    assert run.code == 0, str(run)


# --- no_concurrent_migration: a migration running without the lock -----------------------------

UNLOCKED_CHANGES = {
    # A plain `manage.py migrate` mid-way through a schema change.
    "ddl": ("LOCK TABLE catalog_product IN ACCESS EXCLUSIVE MODE",
            "AccessExclusiveLock", "catalog_product"),
    # A plain `manage.py migrate` recording a migration.
    "history": ("INSERT INTO django_migrations (app, name, applied) "
                "VALUES ('catalog', '0005_fill_sku', now())",
                "RowExclusiveLock", "django_migrations"),
}


@pytest.mark.parametrize("change", sorted(UNLOCKED_CHANGES))
def test_a_session_changing_the_database_without_the_lock_is_refused(migrated_shop, hand_sessions,
                                                                     start_cli, change):
    statement, mode, relation = UNLOCKED_CHANGES[change]
    shop = migrated_shop
    # Something to do on default, so that a run that went ahead would write.
    shop.sql("default", "DELETE FROM django_migrations "
                        "WHERE app = 'catalog' AND name = '0005_fill_sku'")
    history_before = shop.recorded("default")
    manifests_before = shop.sql("default", "SELECT count(*) FROM django_migrator.manifest")
    hand = hand_sessions(shop.db["default"])
    hand.query(f"BEGIN; {statement}; SELECT 1")

    cli = start_cli(shop, "--format", "json", "migrate-all", "--non-interactive",
                    "--lock-timeout", "5")
    run = cli.finish(timeout=30)

    assert run.code == 1, str(run)
    aliases = by_alias(run.json())
    default = aliases["default"]
    assert_refused_before_locked_steps(default)
    lock = guard(default, LOCK_GUARD)
    assert lock["ok"] is False, lock
    for evidence in (f"pid {hand.pid}", mode, relation):
        assert evidence in lock["detail"], (evidence, lock)
    # Another database is not concerned.
    assert_clean(aliases["analytics"])
    assert_skipped_as_same_database(aliases["replica"])
    assert_lock_released(shop, "default")

    hand.query("ROLLBACK; SELECT 1")
    assert shop.recorded("default") == history_before
    assert shop.sql("default", "SELECT count(*) FROM django_migrator.manifest") == manifests_before
    assert shop.sql("default", "SELECT count(*) FROM django_migrator.repairs") == "0"


# --- not_standby ---------------------------------------------------------------------------------


@pytest.fixture
def standby(shop):
    """A hot standby of the session cluster, streaming from it (pg_basebackup -R), with its own
    socket directory and port. Yields (socket directory, port)."""
    cluster = shop.cluster
    directory = Path("/var/tmp") / f"django-migrator-standby-{os.getpid()}-{secrets.token_hex(4)}"
    directory.mkdir()
    shutil.chown(directory, "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    try:
        # Marks the directory as cluster.sh's own, so that cluster.sh starts and removes it.
        subprocess.run([*as_postgres, "touch", str(directory / ".throwaway-postgres-cluster")],
                       check=True, stdin=subprocess.DEVNULL, timeout=30)
        backup = subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_basebackup"), "-h", str(cluster.sock),
             "-p", str(cluster.port), "-U", "postgres", "-D", str(directory / "data"),
             "-R", "-X", "stream", "-c", "fast"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        assert backup.returncode == 0, f"pg_basebackup failed:\n{backup.stderr}"
        port = _free_port()
        started = subprocess.run(["bash", str(CLUSTER_SH), "start", str(directory), str(port)],
                                 capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                 timeout=120)
        assert started.returncode == 0, f"the standby did not start:\n{started.stderr}"
        sock = directory / "sock"
        in_recovery = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-h", str(sock), "-p", str(port), "-U", "postgres",
             "-d", shop.db["analytics"], "-Atqc", "SELECT pg_is_in_recovery()"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
        assert in_recovery.stdout.strip() == "t", in_recovery.stdout + in_recovery.stderr
        yield sock, port
    finally:
        # Nothing on the standby is worth a shutdown checkpoint; cluster.sh then removes it.
        if (directory / "data" / "postmaster.pid").exists():
            subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(directory / "data"),
                            "-m", "immediate", "-w", "-t", "60", "stop"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        subprocess.run(["bash", str(CLUSTER_SH), "stop", str(directory)],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        shutil.rmtree(directory, ignore_errors=True)


def test_a_hot_standby_is_refused(shop, standby):
    sock, port = standby
    env = settings_env(SHOP_ANALYTICS_PGHOST=str(sock), SHOP_ANALYTICS_PGPORT=str(port))

    run = shop.cli("--settings", "settings_split", "--format", "json", "migrate-all",
                   "--non-interactive", env=env, timeout=60)

    assert run.code == 1, str(run)
    aliases = by_alias(run.json())
    analytics = aliases["analytics"]
    assert_refused_before_locked_steps(analytics)
    assert guard(analytics, "connection_live")["ok"] is True, analytics["guards"]
    not_standby = guard(analytics, "not_standby")
    assert not_standby["ok"] is False, not_standby
    assert "standby" in not_standby["detail"], not_standby
    assert LOCK_GUARD not in {g["name"] for g in analytics["guards"]}, analytics["guards"]
    # The primary behind default is migrated as usual; nothing reached analytics' database.
    assert_clean(aliases["default"])
    assert guard(aliases["default"], "not_standby")["ok"] is True
    assert_skipped_as_same_database(aliases["replica"])
    assert not shop.table_exists("analytics", "django_migrations")
    assert shop.sql("analytics", "SELECT count(*) FROM django_migrator.manifest") == "0"


# --- test_mirror_isolation -----------------------------------------------------------------------


def test_the_read_only_replica_alias_is_skipped(migrated_shop):
    run, report = migrated_shop.cli_json("migrate-all", "--non-interactive")

    assert run.code == 0, str(run)
    replica = by_alias(report)["replica"]
    assert_skipped_as_same_database(replica)
    assert {g["name"] for g in replica["guards"]} == {"connection_live", "test_mirror_isolation"}
    assert not LOCKED_STEPS & set(replica["timings_ms"]), replica["timings_ms"]


@pytest.mark.parametrize("allows", ["migrate", "write"])
def test_an_alias_colliding_with_default_is_refused_unless_in_test_mode(migrated_shop, allows):
    shop = migrated_shop
    env = settings_env(SHOP_MIRROR_ALLOWS=allows)

    run = shop.cli("--settings", "settings_mirror", "--format", "json", "migrate-all",
                   "--non-interactive", env=env)

    assert run.code == 1, str(run)
    aliases = by_alias(run.json())
    assert [entry["alias"] for entry in run.json()["aliases"]] == [
        "default", "analytics", "archive", "replica"]
    archive = aliases["archive"]
    assert_refused_before_locked_steps(archive)
    mirror = guard(archive, "test_mirror_isolation")
    assert mirror["ok"] is False, mirror
    assert "default" in mirror["detail"] and "same database" in mirror["detail"], mirror
    assert_clean(aliases["default"])
    assert_clean(aliases["analytics"])
    assert_skipped_as_same_database(aliases["replica"])
    # Had archive been migrated, the metrics table would now be in default's database.
    assert not shop.table_exists("default", "metrics_pageview")

    run = shop.cli("--settings", "settings_mirror", "--format", "json", "migrate-all",
                   "--non-interactive", env={**env, "DJANGO_MIGRATOR_TEST_MODE": "1"})

    assert run.code == 0, str(run)
    aliases = by_alias(run.json())
    assert_skipped_as_same_database(aliases["archive"])
    assert_skipped_as_same_database(aliases["replica"])
    assert not shop.table_exists("default", "metrics_pageview")


# --- transaction pooling -------------------------------------------------------------------------

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").is_file() else None)


@pytest.fixture
def pgbouncer(shop):
    """PgBouncer in transaction pool mode in front of the session cluster, on 127.0.0.1.
    Yields its port."""
    if PGBOUNCER is None:
        pytest.skip("PgBouncer is not installed (Debian: apt-get install pgbouncer)")
    cluster = shop.cluster
    directory = Path("/var/tmp") / f"django-migrator-pgbouncer-{os.getpid()}-{secrets.token_hex(4)}"
    directory.mkdir()
    port = _free_port()
    (directory / "users.txt").write_text('"postgres" ""\n')
    (directory / "pgbouncer.ini").write_text(textwrap.dedent(f"""\
        [databases]
        * = host={cluster.sock} port={cluster.port}

        [pgbouncer]
        listen_addr = 127.0.0.1
        listen_port = {port}
        unix_socket_dir =
        auth_type = trust
        auth_file = {directory}/users.txt
        pool_mode = transaction
        ignore_startup_parameters = extra_float_digits,options
        logfile = {directory}/pgbouncer.log
        """))
    shutil.chown(directory, "postgres", "postgres")
    for path in directory.iterdir():
        shutil.chown(path, "postgres", "postgres")
    # PgBouncer refuses to run as root.
    user = {"user": "postgres"} if os.geteuid() == 0 else {}
    proc = subprocess.Popen([PGBOUNCER, str(directory / "pgbouncer.ini")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **user)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = directory / "pgbouncer.log"
                    pytest.fail("PgBouncer did not start:\n" + proc.stderr.read()
                                + (log.read_text() if log.exists() else ""))
                time.sleep(0.05)
        yield port
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_transaction_pooled_connection_is_refused(shop, pgbouncer):
    env = settings_env(SHOP_ANALYTICS_PGHOST="127.0.0.1", SHOP_ANALYTICS_PGPORT=str(pgbouncer))

    run = shop.cli("--settings", "settings_split", "--format", "json", "migrate-all",
                   "--non-interactive", env=env, timeout=60)

    aliases = by_alias(run.json())
    analytics = aliases["analytics"]
    assert guard(analytics, "connection_live")["ok"] is True, analytics["guards"]
    lock = guard(analytics, LOCK_GUARD)
    assert lock["ok"] is False, (
        f"a session lock taken through PgBouncer in transaction mode was trusted: {lock}")
    detail = lock["detail"].lower()
    assert "transaction" in detail and "pgbouncer" in detail, lock
    assert_refused_before_locked_steps(analytics)
    assert run.code == 1, str(run)
    assert not shop.table_exists("analytics", "django_migrations")
    assert_clean(aliases["default"])
