"""Fixtures for the end-to-end tests of the `django-migrator` CLI against a real PostgreSQL.

One throwaway cluster per session (scripts/cluster.sh, under /var/tmp so the postgres user can
reach it); fresh databases per test, named with a unique SHOP_DB_PREFIX so that the example
project's aliases point at them:

    default   -> <prefix>shop
    analytics -> <prefix>shop_analytics
    replica   -> <prefix>shop (TEST MIRROR of default, the router allows nothing)

Every database gets `CREATE EXTENSION django_migrator`. Tests that need a project already
migrated by plain Django get a copy of template databases that `manage.py migrate` built once per
session; test_cli.py runs that same plain migrate itself where the migrate is what is tested.
"""

import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "scripts" / "cluster.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
BIN = Path(os.environ.get("DJANGO_MIGRATOR_BIN", ROOT / "target" / "release" / "django-migrator"))
# Relative to ROOT, the working directory of every command: what a user would type there.
MANAGE = "examples/shop/manage.py"
PYTHON = ".venv/bin/python"
TIMEOUT = 300
ALIASES = ["default", "analytics", "replica"]
# The database behind each alias, without the prefix.
DATABASE_OF = {"default": "shop", "analytics": "shop_analytics", "replica": "shop"}

_prefixes = (f"t{n}_" for n in itertools.count(1))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _base_env():
    """The caller's environment without anything that could redirect a connection or Django."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SHOP_", "PG", "DJANGO_"))
        and key not in ("VIRTUAL_ENV", "PYTHONPATH", "NO_COLOR", "CLICOLOR_FORCE")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Cluster:
    def __init__(self, directory, port):
        self.dir = Path(directory)
        self.sock = self.dir / "sock"
        self.port = port

    def psql(self, db, sql, check=True):
        """Runs `sql` as postgres over the socket; returns psql's unaligned, tuples-only output."""
        proc = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.sock), "-p", str(self.port), "-U", "postgres", "-d", db,
             "-Atqc", sql],
            capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
            env=_base_env(),
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"psql on {db} failed for {sql!r}:\n{proc.stderr}")
        return proc.stdout.strip()

    def psql_failure(self, db, sql):
        """Runs `sql` as postgres, for statements expected to fail; returns (exit code, stderr)
        with psql's verbose errors, which include the SQLSTATE."""
        proc = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.sock), "-p", str(self.port), "-U", "postgres", "-d", db,
             "-Atq", "-c", "\\set VERBOSITY verbose", "-c", sql],
            capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
            env=_base_env(),
        )
        return proc.returncode, proc.stderr

    def psql_session(self, db):
        """An interactive psql kept open: feed it statements on stdin, read results from stdout."""
        return subprocess.Popen(
            [str(PG_BIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-At",
             "-h", str(self.sock), "-p", str(self.port), "-U", "postgres", "-d", db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, env=_base_env(),
        )

    def create_databases(self, prefix, template_prefix=None):
        for name in ("shop", "shop_analytics"):
            if template_prefix is None:
                self.psql("postgres", f'CREATE DATABASE "{prefix}{name}"')
                self.psql(prefix + name, "CREATE EXTENSION django_migrator")
            else:
                self._clone(template_prefix + name, prefix + name)

    def _clone(self, template, target):
        # A backend of a process that just exited may still be closing its session.
        for _ in range(50):
            proc_out = subprocess.run(
                [str(PG_BIN / "psql"), "-X", "-h", str(self.sock), "-p", str(self.port),
                 "-U", "postgres", "-d", "postgres", "-Atqc",
                 f'CREATE DATABASE "{target}" TEMPLATE "{template}"'],
                capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                env=_base_env(),
            )
            if proc_out.returncode == 0:
                return
            if "being accessed by other users" not in proc_out.stderr:
                raise AssertionError(f"cannot copy {template} to {target}:\n{proc_out.stderr}")
            time.sleep(0.2)
        raise AssertionError(f"{template} stays in use; cannot copy it to {target}")

    def drop_databases(self, prefix):
        for name in ("shop", "shop_analytics"):
            self.psql("postgres", f'DROP DATABASE IF EXISTS "{prefix}{name}" WITH (FORCE)')


class Run:
    """What a finished command printed, unpackable as (exit code, stdout, stderr)."""

    def __init__(self, argv, proc, elapsed):
        self.argv = argv
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.elapsed = elapsed

    def __iter__(self):
        return iter((self.code, self.out, self.err))

    def __str__(self):
        return (f"$ {' '.join(self.argv)}\nexit status {self.code}\n"
                f"--- stdout\n{self.out}\n--- stderr\n{self.err}")

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as error:
            raise AssertionError(f"stdout is not one JSON document ({error}):\n{self}") from None


class Shop:
    """The example project pointed at this test's databases."""

    def __init__(self, cluster, prefix):
        self.cluster = cluster
        self.prefix = prefix
        self.db = {alias: prefix + name for alias, name in DATABASE_OF.items()}

    def env(self, **overrides):
        env = _base_env()
        env.update(
            SHOP_PGHOST=str(self.cluster.sock),
            SHOP_PGPORT=str(self.cluster.port),
            SHOP_PGUSER="postgres",
            SHOP_PGPASSWORD="",
            SHOP_DB_PREFIX=self.prefix,
            # Every run starts Django, so that each report is the same however often a test
            # runs a command; test_cache.py turns the project cache on.
            DJANGO_MIGRATOR_CACHE="0",
            DJANGO_MIGRATOR_CACHE_DIR=str(self.cluster.dir / "project-cache"),
        )
        env.update(overrides)
        return env

    def _run(self, argv, env, timeout=TIMEOUT):
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        return Run(argv, proc, time.monotonic() - started)

    def cli(self, *args, env=None, manage=MANAGE, timeout=TIMEOUT):
        """Runs the CLI on the example project; returns a Run (exit code, stdout, stderr)."""
        if not BIN.is_file():
            pytest.fail(f"no django-migrator binary at {BIN} (build it or set DJANGO_MIGRATOR_BIN)")
        argv = [str(BIN), "--manage", manage, "--python", PYTHON, *args]
        return self._run(argv, self.env(**(env or {})), timeout)

    def cli_json(self, *args, env=None):
        """Runs the CLI with --format json; returns (Run, parsed report)."""
        run = self.cli(*args, "--format", "json", env=env)
        return run, run.json()

    def manage(self, *args, env=None):
        """Runs plain `python manage.py ...` of the example project."""
        return self._run([PYTHON, MANAGE, *args], self.env(**(env or {})))

    def django_migrate(self, *aliases):
        for alias in aliases or ("default", "analytics"):
            run = self.manage("migrate", "--database", alias, "--noinput", "-v", "0")
            assert run.code == 0, str(run)

    def sql(self, alias_or_db, query):
        return self.cluster.psql(self.db.get(alias_or_db, alias_or_db), query)

    def table_exists(self, alias, table):
        return self.sql(alias, f"SELECT to_regclass('public.{table}') IS NOT NULL") == "t"

    def recorded(self, alias):
        """The rows of django_migrations as "app.name"."""
        rows = self.sql(alias, "SELECT app || '.' || name FROM django_migrations")
        return set(rows.splitlines())


@pytest.fixture(scope="session")
def cluster():
    if not (PG_BIN / "postgres").is_file():
        pytest.fail(f"PostgreSQL 15 is not installed ({PG_BIN}/postgres is missing)")
    last_error = ""
    for _ in range(3):
        directory = Path("/var/tmp") / f"django-migrator-e2e-{os.getpid()}-{secrets.token_hex(4)}"
        port = _free_port()
        proc = subprocess.run(["bash", str(CLUSTER_SH), "start", str(directory), str(port)],
                              capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL)
        if proc.returncode == 0:
            break
        last_error = proc.stdout + proc.stderr
        subprocess.run(["bash", str(CLUSTER_SH), "stop", str(directory)], capture_output=True,
                       stdin=subprocess.DEVNULL)
        if directory.exists():
            shutil.rmtree(directory, ignore_errors=True)
    else:
        pytest.fail(f"cannot start a PostgreSQL cluster:\n{last_error}")
    try:
        yield Cluster(directory, port)
    finally:
        subprocess.run(["bash", str(CLUSTER_SH), "stop", str(directory)],
                       stdin=subprocess.DEVNULL, timeout=TIMEOUT)


@pytest.fixture(scope="session")
def migrated_template(cluster):
    """Prefix of databases that plain `manage.py migrate` brought up to date (built once)."""
    shop = Shop(cluster, "tpl_")
    cluster.create_databases(shop.prefix)
    shop.django_migrate("default", "analytics")
    return shop.prefix


@pytest.fixture
def shop(cluster):
    """Fresh, empty databases (extension installed) for the example project."""
    prefix = next(_prefixes)
    project = Shop(cluster, prefix)
    cluster.create_databases(prefix)
    try:
        yield project
    finally:
        cluster.drop_databases(prefix)


@pytest.fixture
def migrated_shop(cluster, migrated_template):
    """Databases as plain `manage.py migrate` on default and analytics leaves them."""
    prefix = next(_prefixes)
    project = Shop(cluster, prefix)
    cluster.create_databases(prefix, template_prefix=migrated_template)
    try:
        yield project
    finally:
        cluster.drop_databases(prefix)


# Background runs: the CLI started without waiting for it, for tests that act while it runs.

class BackgroundRun:
    """A CLI run in its own process group (the CLI and the Django commands it starts), with its
    output in files so that a long run never blocks on a full pipe."""

    def __init__(self, argv, env, cwd=ROOT):
        import tempfile

        self.argv = [str(arg) for arg in argv]
        self._out = tempfile.TemporaryFile(mode="w+")
        self._err = tempfile.TemporaryFile(mode="w+")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=self._err, text=True,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.run = None

    def running(self):
        return self.proc.poll() is None

    def output(self):
        """What it printed so far, for failure messages."""
        self._out.seek(0)
        self._err.seek(0)
        return f"--- stdout\n{self._out.read()}\n--- stderr\n{self._err.read()}"

    def finish(self, timeout=TIMEOUT):
        """Waits for the run (killing its process group after `timeout` s); returns a Run."""
        if self.run is None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()
                raise AssertionError(
                    f"$ {' '.join(self.argv)}\nstill running after {timeout} s; killed\n"
                    f"{self.output()}") from None
            elapsed = time.monotonic() - self.started
            self._out.seek(0)
            self._err.seek(0)
            done = subprocess.CompletedProcess(self.argv, self.proc.returncode,
                                               self._out.read(), self._err.read())
            self.run = Run(self.argv, done, elapsed)
        return self.run

    def kill_group(self):
        """SIGKILL to the run's own process group, as a cancelled deploy job gets it."""
        import signal

        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=TIMEOUT)
        # The Django child may outlive the CLI by a moment; the group id is still ours.
        for _ in range(100):
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)

    def close(self):
        self.kill_group()
        self._out.close()
        self._err.close()


@pytest.fixture
def start_cli():
    """start_cli(shop, *args, env=None, drop_env=()) starts the CLI on the example project in the
    background and returns a BackgroundRun; whatever still runs at the end of the test is killed."""
    runs = []

    def start(shop, *args, env=None, drop_env=()):
        if not BIN.is_file():
            pytest.fail(f"no django-migrator binary at {BIN} (build it or set DJANGO_MIGRATOR_BIN)")
        argv = [str(BIN), "--manage", MANAGE, "--python", PYTHON, *args]
        full_env = shop.env(**(env or {}))
        for key in drop_env:
            full_env.pop(key, None)
        run = BackgroundRun(argv, full_env)
        runs.append(run)
        return run

    try:
        yield start
    finally:
        for run in runs:
            run.close()
