"""The Django app: `manage.py migrate_all` / `manage.py migrator` and the Python API, on the example
project with `django_migrator` in INSTALLED_APPS, against a real PostgreSQL cluster and the real
CLI binary (target/release/django-migrator, or $DJANGO_MIGRATOR_BIN).

The interpreter running pytest is the project's interpreter, so running this directory under
another virtualenv (scripts/test-django-versions.sh) checks another Django version. The cluster
and the database fixtures come from the end-to-end tests (tests/e2e/conftest.py).
"""

import copy
import importlib.util
import itertools
import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON_SRC = ROOT / "python"
if str(PYTHON_SRC) not in sys.path:
    sys.path.insert(0, str(PYTHON_SRC))

from django_migrator import MigrationReport, TextReportFormatter  # noqa: E402


def _load_e2e_support():
    spec = importlib.util.spec_from_file_location(
        "django_migrator_e2e_support", ROOT / "tests" / "e2e" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


e2e = _load_e2e_support()
cluster = e2e.cluster  # the session's throwaway PostgreSQL 15 cluster (a pytest fixture)

BIN = e2e.BIN
MANAGE = e2e.MANAGE
SETTINGS_MODULE = "djm_app_settings"
SETTINGS_SOURCE = """\
from shop.settings import *  # noqa: F401,F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_migrator"]
"""

_prefixes = (f"app{n}_" for n in itertools.count(1))


class AppShop:
    """The example project with django_migrator installed, on this test's databases, run with
    the interpreter running the tests."""

    def __init__(self, shop, settings_dir):
        self.shop = shop
        self.settings_dir = settings_dir

    def env(self, **overrides):
        env = self.shop.env(
            PYTHONPATH=os.pathsep.join([str(PYTHON_SRC), str(self.settings_dir)]),
            DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
            DJANGO_MIGRATOR_BIN=str(BIN),
        )
        env.update(overrides)
        return {key: value for key, value in env.items() if value is not None}

    def manage(self, *args, env=None):
        """`python examples/shop/manage.py ...` from the repository root."""
        return self.shop._run([sys.executable, MANAGE, *args], self.env(**(env or {})))

    def cli(self, *args, env=None):
        """The CLI itself on the same project, interpreter and settings."""
        return self.shop._run([str(BIN), "--manage", MANAGE, "--python", sys.executable, *args],
                              self.env(**(env or {})))

    def python(self, code, env=None):
        return self.shop._run([sys.executable, "-c", code], self.env(**(env or {})))

    def django_migrate(self):
        for alias in ("default", "analytics"):
            run = self.manage("migrate", "--database", alias, "--noinput", "-v", "0")
            assert run.code == 0, str(run)

    def sql(self, alias, query):
        return self.shop.sql(alias, query)


@pytest.fixture(scope="session")
def settings_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("app-settings")
    (directory / f"{SETTINGS_MODULE}.py").write_text(SETTINGS_SOURCE)
    return directory


@pytest.fixture
def project(settings_dir):
    """No database: for what is decided before the CLI connects anywhere."""
    shop = e2e.Shop(e2e.Cluster("/nonexistent", 1), "none_")
    return AppShop(shop, settings_dir)


@pytest.fixture
def app(cluster, settings_dir):
    """Fresh, empty databases (extension installed) for the example project."""
    if not BIN.is_file():
        pytest.fail(f"no django-migrator binary at {BIN} (make build, or set DJANGO_MIGRATOR_BIN)")
    prefix = next(_prefixes)
    cluster.create_databases(prefix)
    try:
        yield AppShop(e2e.Shop(cluster, prefix), settings_dir)
    finally:
        cluster.drop_databases(prefix)


def without_timings(doc):
    doc = copy.deepcopy(doc)
    doc.pop("timings_ms", None)
    for alias in doc.get("aliases", []):
        alias.pop("timings_ms", None)
    return doc


def inject_drift(app):
    """Drift of three kinds and a pending migration, without upsetting makemigrations."""
    app.sql("default", "ALTER TABLE taggit_tag DROP COLUMN slug")                 # half_applied
    app.sql("analytics", "DROP TABLE metrics_pageview CASCADE")                  # recorded_missing
    app.sql("default", "INSERT INTO django_migrations (app, name, applied) "
                       "VALUES ('ghost', '0001_initial', now())")                # orphan_record
    app.sql("default", "DELETE FROM django_migrations "
                       "WHERE app = 'catalog' AND name = '0005_fill_sku'")       # pending


@pytest.mark.parametrize("state", ["empty", "drifted"])
def test_migrate_all_check_is_the_cli_check(app, state):
    if state == "drifted":
        app.django_migrate()
        inject_drift(app)
    via_django = app.manage("migrate_all", "--check", "--format", "json")
    via_cli = app.cli("check", "--format", "json")
    assert via_django.code == via_cli.code == 1, f"{via_django}\n{via_cli}"
    ours, theirs = via_django.json(), via_cli.json()
    assert without_timings(ours) == without_timings(theirs)
    report = MigrationReport.from_dict(copy.deepcopy(ours))
    assert report.to_dict() == ours
    assert report.aliases == ["default", "analytics", "replica"]
    if state == "empty":
        assert [db.status for db in report.db_reports] == ["pending", "pending", "skipped"]
        return
    assert [db.status for db in report.db_reports] == ["drift", "drift", "skipped"]
    kinds = {db.alias: sorted(row.kind for row in db.drift) for db in report.db_reports}
    assert kinds == {"default": ["half_applied", "orphan_record"],
                     "analytics": ["recorded_missing"], "replica": []}
    assert report["default"].drift.total_drift_count() == 1
    assert report["default"].pending == ["catalog.0005_fill_sku"]

    # The text report through the app, and the API's rendering of the JSON one, agree (but
    # for the milliseconds, which differ between runs).
    text = app.manage("migrate_all", "--check", "--color", "never")
    assert text.code == 1, str(text)

    def ms(s):
        return re.sub(r"\b\d+ ms\b", "N ms", s)

    assert ms(TextReportFormatter().render(report)) == ms(text.out)


def test_settings_flag_reaches_the_cli(app):
    """`--settings` alone (no DJANGO_SETTINGS_MODULE) picks the settings that install the app,
    and the CLI's Django runs with them too."""
    run = app.manage("migrate_all", "--check", "--format", "json", "--settings", SETTINGS_MODULE,
                     env={"DJANGO_SETTINGS_MODULE": None})
    assert run.code == 1, str(run)
    assert run.json()["aliases"][0]["status"] == "pending"


def test_migrate_all_migrates_empty_databases(app):
    run = app.manage("migrate_all", "--non-interactive")
    assert run.code == 0, str(run)
    assert "all 3 clean" in run.out
    assert app.shop.table_exists("default", "catalog_product")
    assert app.shop.table_exists("analytics", "metrics_pageview")
    check = app.manage("migrate_all", "--check", "--format", "json")
    assert check.code == 0, str(check)
    assert check.json()["all_clean"] is True


def test_migrator_auto(app):
    run = app.manage("migrator", "--auto", "--format", "json")
    assert run.code == 0, str(run)
    report = MigrationReport.from_dict(run.json())
    assert report.all_clean
    assert {db.alias: db.status for db in report.db_reports} == {
        "default": "clean", "analytics": "clean", "replica": "skipped"}
    assert "catalog.0001_initial" in report["default"].migrated
    assert app.shop.recorded("analytics") >= {"metrics.0001_initial", "metrics.0002_pageview_referrer"}


def test_migrator_one_database(app):
    run = app.manage("migrator", "--database", "analytics", "--format", "json")
    assert run.code == 0, str(run)
    assert [db["alias"] for db in run.json()["aliases"]] == ["analytics"]
    assert not app.shop.table_exists("default", "catalog_product")


def test_quiet_verbosity(app):
    run = app.manage("migrate_all", "--check", "-v", "0", "--no-color")
    assert run.code == 1, str(run)
    # -q: the summary line only.
    assert run.out == "2 of 3 not clean: default (pending), analytics (pending)\n"


def test_python_api_from_a_plain_process(app):
    """Migrator().check() from a script with DJANGO_SETTINGS_MODULE set (not under manage.py,
    not in the project directory): manage.py is found beside the settings package."""
    app.django_migrate()
    inject_drift(app)
    code = """if True:
        import json
        from django_migrator import Migrator, MigratorOptions, MigratorLogger
        report = Migrator(options=MigratorOptions(verbosity=1), log=MigratorLogger()).check()
        print(json.dumps({"aliases": report.aliases, "exit": report.exit_status,
                          "drift": {db.alias: db.drift.total_drift_count() if db.drift else 0
                                    for db in report.db_reports},
                          "command": report.command}))
    """
    run = app.python(code, env={
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "PYTHONPATH": os.pathsep.join([str(PYTHON_SRC), str(ROOT / "examples" / "shop")]),
    })
    assert run.code == 0, str(run)
    result = json.loads(run.out)
    assert result == {"aliases": ["default", "analytics", "replica"], "exit": 1,
                      "drift": {"default": 1, "analytics": 1, "replica": 0},
                      "command": "check"}


def test_python_api_raises_on_configuration_errors(app):
    code = """if True:
        from django_migrator import Migrator, MigratorError
        try:
            Migrator().check()
        except MigratorError as error:
            print("status", error.exit_status)
            print(error.stderr.strip().splitlines()[-1])
    """
    run = app.python(code, env={"DJANGO_SETTINGS_MODULE": "no_such_settings_module",
                                "DJANGO_MIGRATOR_MANAGE": str(ROOT / MANAGE)})
    assert run.code == 0, str(run)
    assert run.out.splitlines()[0] == "status 2"
    assert "no_such_settings_module" in run.out


# What the commands decide before any database is involved.

def test_unknown_flag_is_a_usage_error(project):
    for command in ("migrate_all", "migrator"):
        run = project.manage(command, "--no-such-flag")
        assert run.code == 2, str(run)
        assert "unrecognized arguments: --no-such-flag" in run.err


def test_help_lists_the_cli_flags(project):
    run = project.manage("migrate_all", "--help")
    assert run.code == 0, str(run)
    for flag in ("--check", "--repair", "--non-interactive", "--skip-makemigrations", "--database",
                 "--lock-timeout", "--fail-fast", "--format", "--color", "--connect-timeout"):
        assert flag in run.out
    run = project.manage("migrator", "--help")
    for flag in ("--auto", "--repair", "--database", "--app", "--non-interactive",
                 "--lock-timeout", "--skip-makemigrations", "--format", "--color"):
        assert flag in run.out


FAKE_CLI = """\
#!{python}
import json, os, sys
with open(os.environ["FAKE_ARGV_FILE"], "w") as f:
    json.dump(sys.argv, f)
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


@pytest.fixture
def fake(project, tmp_path):
    """The commands pointed at a fake binary that records its argv and exits as told."""
    if (Path(sys.executable).parent / "django-migrator").exists():
        pytest.skip("a django-migrator binary is installed next to this interpreter; it takes "
                    "precedence over DJANGO_MIGRATOR_BIN, so a fake binary cannot be used")
    script = tmp_path / "django-migrator"
    script.write_text(FAKE_CLI.format(python=sys.executable))
    script.chmod(0o755)
    argv_file = tmp_path / "argv.json"

    def run(*args, exit=0, env=None):
        result = project.manage(*args, env={"DJANGO_MIGRATOR_BIN": str(script),
                                            "FAKE_ARGV_FILE": str(argv_file),
                                            "FAKE_EXIT": str(exit), **(env or {})})
        argv = json.loads(argv_file.read_text()) if argv_file.exists() else None
        if argv_file.exists():
            argv_file.unlink()
        return result, argv

    return run


def test_migrate_all_forwards_every_flag(fake):
    run, argv = fake("migrate_all", "--check", "--repair", "--non-interactive",
                     "--skip-makemigrations", "--database", "default", "--database", "analytics",
                     "--lock-timeout", "5", "--fail-fast", "--format", "json",
                     "--connect-timeout", "3", "-v", "0", "--no-color",
                     "--settings", SETTINGS_MODULE)
    assert run.code == 0, str(run)
    assert argv[1:] == [
        "--manage", str(ROOT / MANAGE), "--python", sys.executable,
        "--settings", SETTINGS_MODULE, "--format", "json", "--color", "never",
        "--connect-timeout", "3", "-q",
        "migrate-all", "--check", "--repair", "--non-interactive", "--skip-makemigrations",
        "--fail-fast", "--database", "default", "--database", "analytics",
        "--lock-timeout", "5.0",
    ]


def test_migrator_forwards_every_flag(fake):
    run, argv = fake("migrator", "--auto", "--repair", "--database", "analytics", "--app",
                     "catalog", "--non-interactive", "--lock-timeout", "2.5",
                     "--skip-makemigrations", "--format", "text", "--color", "always", "-v", "2")
    assert run.code == 0, str(run)
    assert argv[1:] == [
        "--manage", str(ROOT / MANAGE), "--python", sys.executable,
        "--format", "text", "--color", "always", "-v",
        "migrator", "--auto", "--repair", "--non-interactive", "--skip-makemigrations",
        "--database", "analytics", "--app", "catalog", "--lock-timeout", "2.5",
    ]


def test_color_flags(fake):
    _, argv = fake("migrate_all", "--force-color")
    assert argv[argv.index("--color") + 1] == "always"
    _, argv = fake("migrate_all", "--no-color")
    assert argv[argv.index("--color") + 1] == "never"
    _, argv = fake("migrate_all", "--no-color", "--color", "always")
    assert argv[argv.index("--color") + 1] == "always"
    _, argv = fake("migrate_all")
    assert "--color" not in argv and "-q" not in argv and "-v" not in argv
    assert argv[-1] == "migrate-all"


@pytest.mark.parametrize("status", [0, 1, 2, 3])
def test_exit_status_is_the_cli_status(fake, status):
    run, argv = fake("migrate_all", "--check", exit=status)
    assert run.code == status, str(run)
    assert argv[-2:] == ["migrate-all", "--check"]


def test_no_binary_is_a_clear_error(project, tmp_path):
    if (Path(sys.executable).parent / "django-migrator").exists():
        pytest.skip("a django-migrator binary is installed next to this interpreter")
    run = project.manage("migrate_all", "--check",
                         env={"DJANGO_MIGRATOR_BIN": None, "PATH": str(tmp_path)})
    assert run.code == 2, str(run)
    assert "cannot find the django-migrator binary" in run.err
    assert "DJANGO_MIGRATOR_BIN" in run.err


def test_bad_detector_path_fails_the_system_check(project, tmp_path):
    (tmp_path / "djm_bad_detectors.py").write_text(
        "from djm_app_settings import *  # noqa: F401,F403\n\n"
        'DJANGO_MIGRATOR_FAKE_DETECTORS = ["no_such_module_xyz.claims"]\n')
    run = project.manage("check", env={
        "DJANGO_SETTINGS_MODULE": "djm_bad_detectors",
        "PYTHONPATH": os.pathsep.join([str(PYTHON_SRC), str(project.settings_dir), str(tmp_path)]),
    })
    assert run.code == 1, str(run)
    assert "django_migrator.E001" in run.err
    assert "no_such_module_xyz.claims" in run.err
