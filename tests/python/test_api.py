"""The Python API of django_migrator against canned CLI reports and a fake CLI binary.

No database and no real binary: the reports below have the exact shape `django-migrator
--format json` writes (README, "The JSON report"), with every drift kind, repair action, alias
status and makemigrations status. The fake binary is a script found through DJANGO_MIGRATOR_BIN.
"""

import copy
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON_SRC = ROOT / "python"
if str(PYTHON_SRC) not in sys.path:
    sys.path.insert(0, str(PYTHON_SRC))

import django_migrator  # noqa: E402
from django_migrator import (  # noqa: E402
    DbReport,
    DriftReport,
    DriftRow,
    Guard,
    MakeMigrations,
    MigrationReport,
    Migrator,
    MigratorError,
    MigratorLogger,
    MigratorOptions,
    RepairStep,
    ReportFormatError,
    TextReportFormatter,
    register_fake_detector,
)
from django_migrator import detectors, runner  # noqa: E402
from django_migrator.errors import BinaryNotFound  # noqa: E402

# Building blocks of the canned reports.

GUARDS_OK = [
    {"name": "connection_live", "ok": True,
     "detail": "PostgreSQL 15.20 (Debian 15.20-0+deb12u1) · database shop"},
    {"name": "test_mirror_isolation", "ok": True, "detail": "its own database"},
    {"name": "not_standby", "ok": True, "detail": "primary"},
    {"name": "no_concurrent_migration", "ok": True, "detail": "the migration lock is free"},
]


def alias(name, status, **fields):
    entry = {
        "alias": name, "status": status, "guards": copy.deepcopy(GUARDS_OK), "drift": [],
        "repairs": [], "migrated": [], "pending": [], "warnings": [], "errors": [],
        "timings_ms": {"connect": 3, "scan": 7},
    }
    entry.update(fields)
    return entry


def row(app, name, kind, recorded, present, missing, detail, objects=()):
    return {"app": app, "name": name, "kind": kind, "recorded": recorded, "present": present,
            "missing": missing, "detail": detail, "objects": list(objects)}


def obj(kind, name, expected, ok):
    return {"expected": expected, "name": name, "object": kind, "ok": ok}


def step(action, app, name, reason, applied):
    return {"action": action, "app": app, "name": name, "reason": reason, "applied": applied}


HALF_APPLIED = row(
    "taggit", "0001_initial", "half_applied", True, 8, 1,
    "recorded, column taggit_tag.slug is missing: 8 of 9 checkable effects present; "
    "manual recovery needed",
    [obj("table", "taggit_tag", "present", True), obj("column", "taggit_tag.slug", "present", False)],
)
UNRECORDED_PRESENT = row(
    "catalog", "0002_product_sku", "unrecorded_present", False, 1, 0,
    "not recorded, but column catalog_product.sku is present",
    [obj("column", "catalog_product.sku", "present", True)],
)
ORPHAN_RECORD = row("ghost", "0001_initial", "orphan_record", True, 0, 0,
                    "recorded, but no migration file exists for it")
RECORDED_MISSING = row(
    "metrics", "0001_initial", "recorded_missing", True, 0, 1,
    "recorded, but table metrics_pageview is missing",
    [obj("table", "metrics_pageview", "present", False)],
)
INCONSISTENT_HISTORY = row(
    "metrics", "0003_pageview_session", "inconsistent_history", True, 1, 0,
    "recorded, but its dependency metrics.0002_pageview_referrer is neither recorded nor present",
    [obj("column", "metrics_pageview.session", "present", True),
     obj("index", "metrics_pageview_session_idx", "absent", True)],
)
ALL_KINDS = [HALF_APPLIED, UNRECORDED_PRESENT, ORPHAN_RECORD, RECORDED_MISSING,
             INCONSISTENT_HISTORY]

# `check --repair` with every drift kind, every repair action, every alias status and model
# changes without migrations.
CHECK_EVERYTHING = {
    "format_version": 1,
    "command": "check",
    "all_clean": False,
    "django_version": "5.2.19",
    "makemigrations": {"status": "changes_detected",
                       "output": "Migrations for 'catalog':\n  catalog/migrations/0006_x.py\n"
                                 "    + Add field colour to product"},
    "aliases": [
        alias("default", "drift",
              drift=[HALF_APPLIED, UNRECORDED_PRESENT, ORPHAN_RECORD],
              repairs=[step("warn", "taggit", "0001_initial", HALF_APPLIED["detail"], False),
                       step("fake_apply", "catalog", "0002_product_sku",
                            UNRECORDED_PRESENT["detail"], False)],
              timings_ms={"connect": 11, "scan": 13}),
        alias("analytics", "drift",
              drift=[RECORDED_MISSING, INCONSISTENT_HISTORY],
              repairs=[step("fake_rewind", "metrics", "0001_initial",
                            "recorded, but table metrics_pageview is missing; migrate will "
                            "apply it again", False),
                       step("refuse", "metrics", "0003_pageview_session",
                            "nothing in the catalog proves metrics.0002_pageview_referrer ran",
                            False)],
              timings_ms={"connect": 9, "scan": 18}),
        alias("replica", "skipped",
              guards=GUARDS_OK[:1] + [{"name": "test_mirror_isolation", "ok": True,
                                       "detail": "same database as default; the router "
                                                 "neither migrates nor writes here"}],
              warnings=["skipped: same database as default"],
              timings_ms={"connect": 2}),
        alias("archive", "failed",
              guards=[{"name": "connection_live", "ok": False,
                       "detail": "no answer within 10 s from /run/pg:5433"}],
              errors=["guard connection_live failed: no answer within 10 s from /run/pg:5433"],
              timings_ms={"connect": 10001}),
        alias("reports", "pending",
              pending=[f"reports.{n:04d}_step" for n in range(1, 13)],
              timings_ms={"connect": 1, "scan": 2}),
        alias("legacy", "not_run", guards=[], timings_ms={},
              warnings=["not run: --fail-fast stopped at archive"]),
        alias("events", "clean", timings_ms={"connect": 1, "scan": 1}),
    ],
    "timings_ms": {"export": 520, "total": 640},
}

# `migrate-all --repair` that wrote its repairs and migrated.
MIGRATE_REPAIRED = {
    "format_version": 1,
    "command": "migrate-all",
    "all_clean": True,
    "django_version": "4.2.27",
    "makemigrations": {"status": "no_changes", "output": "No changes detected"},
    "aliases": [
        alias("default", "clean",
              repairs=[step("fake_apply", "catalog", "0002_product_sku",
                            UNRECORDED_PRESENT["detail"], True)],
              migrated=["catalog.0003_rename_price_unit_price", "catalog.0004_product_cat_price_index"],
              timings_ms={"connect": 4, "lock": 13, "repair": 16, "scan": 6, "migrate": 900,
                          "verify": 5}),
        alias("analytics", "clean",
              repairs=[step("fake_rewind", "metrics", "0001_initial",
                            "recorded, but table metrics_pageview is missing; migrate will "
                            "apply it again", True),
                       step("fake_rewind", "metrics", "0002_pageview_referrer",
                            "depends on metrics.0001_initial, which is rewound, and none of its "
                            "effects is present", True)],
              migrated=["metrics.0001_initial", "metrics.0002_pageview_referrer"],
              timings_ms={"connect": 4, "lock": 9, "migrate": 986, "repair": 9, "scan": 3,
                          "verify": 4}),
    ],
    "timings_ms": {"export": 480, "total": 3100},
}

# `install` has no makemigrations step.
INSTALL = {
    "format_version": 1,
    "command": "install",
    "all_clean": True,
    "django_version": "5.2.19",
    "aliases": [alias("default", "clean", guards=GUARDS_OK[:1],
                      warnings=["django_migrator 0.1.0 installed"], timings_ms={"connect": 2})],
    "timings_ms": {"export": 400, "total": 420},
}

# A real `check --repair` of the example project and the CLI's text for it (--color never).
CLI_CHECK = {
    "format_version": 1,
    "command": "check",
    "all_clean": False,
    "django_version": "5.2.19",
    "makemigrations": {"status": "no_changes", "output": "No changes detected"},
    "aliases": [
        alias("default", "drift", drift=[HALF_APPLIED, ORPHAN_RECORD],
              repairs=[step("warn", "taggit", "0001_initial", HALF_APPLIED["detail"], False)],
              timings_ms={"connect": 11, "scan": 13}),
        alias("analytics", "clean", timings_ms={"connect": 9, "scan": 18}),
        alias("replica", "skipped", warnings=["skipped: same database as default"],
              timings_ms={"connect": 2}),
    ],
    "timings_ms": {"export": 510, "total": 560},
}
CLI_CHECK_TEXT = """\
django-migrator check · Django 5.2.19 · 3 databases
makemigrations: no model changes

default    DRIFT     1 drifted · 0 pending · 24 ms
    half_applied (1)
      taggit.0001_initial: recorded, column taggit_tag.slug is missing: 8 of 9 checkable effects present; manual recovery needed
    orphan_record (1)
      ghost.0001_initial: recorded, but no migration file exists for it
    repair (plan, not applied):
      warn        taggit.0001_initial: recorded, column taggit_tag.slug is missing: 8 of 9 checkable effects present; manual recovery needed

analytics  clean     0 pending · 27 ms

replica    skipped   skipped: same database as default

1 of 3 not clean: default (drift)
"""

REPORTS = {
    "check_everything": CHECK_EVERYTHING,
    "migrate_repaired": MIGRATE_REPAIRED,
    "install": INSTALL,
    "cli_check": CLI_CHECK,
    "no_aliases": {"format_version": 1, "command": "check", "all_clean": True,
                   "django_version": "6.0.1",
                   "makemigrations": {"status": "skipped", "output": ""},
                   "aliases": [], "timings_ms": {"export": 300, "total": 301}},
}
SCHEMA = ROOT / "docs" / "report.schema.json"


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_canned_reports_follow_the_documented_schema(name):
    """The canned reports are reports the CLI could print (docs/report.schema.json)."""
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.is_file():
        pytest.skip(f"{SCHEMA} is missing")
    jsonschema.validate(REPORTS[name], json.loads(SCHEMA.read_text()),
                        cls=jsonschema.Draft202012Validator)


# Parsing and the round trip.

@pytest.mark.parametrize("name", sorted(REPORTS))
def test_round_trip(name):
    doc = copy.deepcopy(REPORTS[name])
    report = MigrationReport.from_dict(doc)
    assert report.to_dict() == REPORTS[name]
    # Through JSON text too, as the CLI writes it.
    assert MigrationReport.from_json(json.dumps(doc)).to_dict() == REPORTS[name]
    assert json.loads(report.to_json()) == REPORTS[name]


def test_round_trip_keeps_fields_a_newer_cli_adds():
    doc = copy.deepcopy(CLI_CHECK)
    doc["run_id"] = "abc"
    doc["makemigrations"]["elapsed_ms"] = 700
    doc["aliases"][0]["schema"] = "public"
    doc["aliases"][0]["guards"][0]["took_ms"] = 3
    doc["aliases"][0]["drift"][0]["hint"] = "restore the column"
    doc["aliases"][0]["repairs"][0]["journal_id"] = 7
    report = MigrationReport.from_dict(copy.deepcopy(doc))
    assert report.to_dict() == doc
    assert report.extra == {"run_id": "abc"}
    assert report.db_reports[0].drift.rows[0].extra == {"hint": "restore the column"}


def test_every_field_is_typed():
    report = MigrationReport.from_dict(copy.deepcopy(CHECK_EVERYTHING))
    assert report.format_version == 1
    assert report.command == "check"
    assert report.all_clean is False
    assert report.django_version == "5.2.19"
    assert report.timings_ms == {"export": 520, "total": 640}
    assert isinstance(report.makemigrations, MakeMigrations)
    assert report.makemigrations.status == "changes_detected"
    assert "Add field colour" in report.makemigrations.output
    assert report.makemigrations.is_clean is False
    assert report.aliases == ["default", "analytics", "replica", "archive", "reports", "legacy",
                              "events"]
    assert all(isinstance(db, DbReport) for db in report.db_reports)

    default = report["default"]
    assert default.status == "drift"
    assert [g.name for g in default.guards] == [
        "connection_live", "test_mirror_isolation", "not_standby", "no_concurrent_migration"]
    assert all(isinstance(g, Guard) and g.ok for g in default.guards)
    assert isinstance(default.drift, DriftReport)
    first = default.drift.rows[0]
    assert isinstance(first, DriftRow)
    assert (first.app, first.name, first.kind, first.recorded, first.present, first.missing) == (
        "taggit", "0001_initial", "half_applied", True, 8, 1)
    assert first.migration == "taggit.0001_initial"
    assert first.objects[1] == {"expected": "present", "name": "taggit_tag.slug",
                                "object": "column", "ok": False}
    assert [r.action for r in default.repairs] == ["warn", "fake_apply"]
    assert all(isinstance(r, RepairStep) and r.applied is False for r in default.repairs)
    assert default.timings_ms == {"connect": 11, "scan": 13}

    archive = report["archive"]
    assert archive.failed_guards() == [Guard("connection_live", False,
                                             "no answer within 10 s from /run/pg:5433")]
    assert archive.errors == ["guard connection_live failed: no answer within 10 s from /run/pg:5433"]
    assert report["reports"].pending[0] == "reports.0001_step"
    assert report["replica"].warnings == ["skipped: same database as default"]
    assert report.get("nope") is None
    with pytest.raises(KeyError):
        report["nope"]

    migrated = MigrationReport.from_dict(copy.deepcopy(MIGRATE_REPAIRED))
    assert migrated["analytics"].migrated == ["metrics.0001_initial",
                                              "metrics.0002_pageview_referrer"]
    assert [r.applied for r in migrated["analytics"].repairs] == [True, True]
    assert [r.action for r in migrated["analytics"].repairs] == ["fake_rewind", "fake_rewind"]
    assert migrated.makemigrations.is_clean


def test_every_drift_kind_parses():
    report = MigrationReport.from_dict(copy.deepcopy(CHECK_EVERYTHING))
    kinds = {row.kind for db in report.db_reports if db.drift for row in db.drift}
    assert kinds == {"unrecorded_present", "half_applied", "recorded_missing",
                     "inconsistent_history", "orphan_record"}


def test_every_status_value():
    report = MigrationReport.from_dict(copy.deepcopy(CHECK_EVERYTHING))
    status = {db.alias: db.status for db in report.db_reports}
    assert status == {"default": "drift", "analytics": "drift", "replica": "skipped",
                      "archive": "failed", "reports": "pending", "legacy": "not_run",
                      "events": "clean"}
    assert {db.alias for db in report.db_reports if db.is_clean} == {"replica", "events"}
    assert [db.alias for db in report.unclean()] == ["default", "analytics", "archive", "reports",
                                                    "legacy"]


def test_makemigrations_statuses():
    for status, clean in [("skipped", True), ("no_changes", True), ("created", True),
                          ("changes_detected", False), ("failed", False)]:
        assert MakeMigrations(status, "").is_clean is clean
    report = MigrationReport.from_dict(copy.deepcopy(INSTALL))
    assert report.makemigrations is None
    assert "makemigrations" not in report.to_dict()


def test_total_drift_count_leaves_out_orphan_records():
    report = MigrationReport.from_dict(copy.deepcopy(CHECK_EVERYTHING))
    default = report["default"].drift
    assert len(default) == 3
    assert default.total_drift_count() == 2
    assert [r.migration for r in default.orphans] == ["ghost.0001_initial"]
    assert report["analytics"].drift.total_drift_count() == 2
    assert report["events"].drift.total_drift_count() == 0
    assert report.total_drift_count() == 4
    only_orphan = DriftReport.from_list([ORPHAN_RECORD])
    assert only_orphan.total_drift_count() == 0


def test_by_kind_groups_in_kind_order_keeping_scan_order():
    drift = DriftReport.from_list(ALL_KINDS + [dict(UNRECORDED_PRESENT, name="0009_more")])
    groups = drift.by_kind()
    assert list(groups) == sorted(groups)
    assert set(groups) == {"half_applied", "inconsistent_history", "orphan_record",
                           "recorded_missing", "unrecorded_present"}
    assert [r.name for r in groups["unrecorded_present"]] == ["0002_product_sku", "0009_more"]
    assert drift.total_drift_count() == 5


def test_drift_is_none_only_without_the_key():
    doc = alias("default", "not_run")
    del doc["drift"]
    db = DbReport.from_dict(doc)
    assert db.drift is None
    assert db.drift_count() == 0
    assert "drift" not in db.to_dict()
    assert DbReport.from_dict(alias("default", "clean")).drift == DriftReport([])


def test_exit_status_follows_all_clean_unless_given():
    assert MigrationReport.from_dict(copy.deepcopy(CHECK_EVERYTHING)).exit_status == 1
    assert MigrationReport.from_dict(copy.deepcopy(MIGRATE_REPAIRED)).exit_status == 0
    assert MigrationReport.from_dict(copy.deepcopy(CLI_CHECK), exit_status=1).exit_status == 1


def test_unknown_format_version_is_refused_by_number():
    doc = dict(copy.deepcopy(CLI_CHECK), format_version=2)
    with pytest.raises(ReportFormatError, match="format_version 2"):
        MigrationReport.from_dict(doc)


@pytest.mark.parametrize("path, field", [
    ((), "aliases"),
    (("aliases", 0), "status"),
    (("aliases", 0, "drift", 0), "kind"),
    (("aliases", 0, "repairs", 0), "applied"),
    (("aliases", 0, "guards", 0), "ok"),
])
def test_missing_field_is_named(path, field):
    doc = copy.deepcopy(CLI_CHECK)
    target = doc
    for key in path:
        target = target[key]
    del target[field]
    with pytest.raises(ReportFormatError, match=field):
        MigrationReport.from_dict(doc)


def test_not_json_is_a_report_format_error():
    with pytest.raises(ReportFormatError, match="not JSON"):
        MigrationReport.from_json("Traceback (most recent call last):")


# The text formatter.

def test_text_formatter_matches_the_cli_text_report():
    report = MigrationReport.from_dict(copy.deepcopy(CLI_CHECK))
    assert TextReportFormatter().render(report) == CLI_CHECK_TEXT


def test_text_formatter_renders_every_part():
    text = TextReportFormatter().render(MigrationReport.from_dict(copy.deepcopy(CHECK_EVERYTHING)))
    lines = text.splitlines()
    assert lines[0] == "django-migrator check · Django 5.2.19 · 7 databases"
    assert lines[1] == "makemigrations: MODEL CHANGES WITHOUT MIGRATIONS"
    # Django's output is shown when makemigrations is not clean.
    assert "    Migrations for 'catalog':" in lines
    assert "default    DRIFT     2 drifted · 0 pending · 24 ms" in lines
    assert "analytics  DRIFT     2 drifted · 0 pending · 27 ms" in lines
    assert "replica    skipped   skipped: same database as default" in lines
    assert "archive    FAILED    0 pending · 10001 ms" in lines
    assert "reports    PENDING   12 pending · 3 ms" in lines
    assert "legacy     not run   0 pending · 0 ms" in lines
    assert "events     clean     0 pending · 2 ms" in lines
    for kind, count in [("half_applied", 1), ("unrecorded_present", 1), ("orphan_record", 1),
                        ("recorded_missing", 1), ("inconsistent_history", 1)]:
        assert f"    {kind} ({count})" in lines
    assert "      metrics.0001_initial: recorded, but table metrics_pageview is missing" in lines
    assert lines.count("    repair (plan, not applied):") == 2
    assert any(line.startswith("      fake_rewind metrics.0001_initial: ") for line in lines)
    assert any(line.startswith("      refuse      metrics.0003_pageview_session: ") for line in lines)
    assert any(line.startswith("      fake_apply  catalog.0002_product_sku: ") for line in lines)
    assert "    pending: 12 migrations (-v lists them)" in lines
    assert ("    error: guard connection_live failed: no answer within 10 s from /run/pg:5433"
            in lines)
    assert "    warning: not run: --fail-fast stopped at archive" in lines
    # Kinds are grouped in alphabetical order within an alias, as the CLI does.
    default_block = text.split("\n\n")[1]
    assert default_block.index("half_applied") < default_block.index("orphan_record") < \
        default_block.index("unrecorded_present")
    assert lines[-1] == ("6 of 7 not clean: makemigrations, default (drift), analytics (drift), "
                         "archive (failed), reports (pending), legacy (not run)")


def test_text_formatter_applied_repairs_and_migrations():
    text = TextReportFormatter().render(MigrationReport.from_dict(copy.deepcopy(MIGRATE_REPAIRED)))
    assert "default    clean     2 applied · 0 pending · 944 ms" in text
    assert "    repair (applied):" in text
    assert "    applied: metrics.0001_initial, metrics.0002_pageview_referrer" in text
    assert text.endswith("all 2 clean\n")


def test_text_formatter_verbose_quiet_and_color():
    report = MigrationReport.from_dict(copy.deepcopy(CHECK_EVERYTHING))
    verbose = TextReportFormatter(verbose=True).render(report)
    assert "    pending: reports.0001_step, reports.0002_step" in verbose
    quiet = TextReportFormatter(quiet=True).render(report)
    assert quiet.count("\n") == 1 and quiet.startswith("6 of 7 not clean")
    colored = TextReportFormatter(color=True).render(report)
    assert "\x1b[1;31mDRIFT   \x1b[0m" in colored
    assert "\x1b[" not in TextReportFormatter().render(report)
    install = TextReportFormatter().render(MigrationReport.from_dict(copy.deepcopy(INSTALL)))
    # An install's alias line says what happened, from its first warning.
    assert "default   clean     django_migrator 0.1.0 installed" in install.splitlines()


# Running the CLI: a fake binary.

FAKE_CLI = """\
#!{python}
import json, os, sys
with open(os.environ["FAKE_ARGV_FILE"], "w") as f:
    json.dump(sys.argv, f)
sys.stderr.write(os.environ.get("FAKE_STDERR", ""))
sys.stdout.write(os.environ.get("FAKE_STDOUT", ""))
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""


@pytest.fixture
def fake_cli(tmp_path, monkeypatch):
    """A fake `django-migrator` found through DJANGO_MIGRATOR_BIN; returns a helper that sets its
    output and exit status and reads back the argv it was run with."""
    script = tmp_path / "fake-bin" / "django-migrator"
    script.parent.mkdir()
    script.write_text(FAKE_CLI.format(python=sys.executable))
    script.chmod(0o755)
    argv_file = tmp_path / "argv.json"
    # An interpreter path with no binary beside it, so that the lookup reaches the environment.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "bin" / "python"))
    monkeypatch.setenv("DJANGO_MIGRATOR_BIN", str(script))
    monkeypatch.setenv("FAKE_ARGV_FILE", str(argv_file))
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    monkeypatch.chdir(tmp_path)

    class Fake:
        path = script

        def respond(self, stdout="", stderr="", exit=0):
            monkeypatch.setenv("FAKE_STDOUT", stdout)
            monkeypatch.setenv("FAKE_STDERR", stderr)
            monkeypatch.setenv("FAKE_EXIT", str(exit))

        def argv(self):
            return json.loads(argv_file.read_text())

    return Fake()


def test_check_runs_check_json_non_interactive(fake_cli, tmp_path):
    (tmp_path / "manage.py").write_text("")
    fake_cli.respond(stdout=json.dumps(CLI_CHECK), exit=1)
    report = Migrator(options=MigratorOptions(), log=MigratorLogger()).check()
    assert report.to_dict() == CLI_CHECK
    assert report.exit_status == 1
    argv = fake_cli.argv()
    assert argv[0] == str(fake_cli.path)
    assert argv[1:] == ["--manage", str(tmp_path / "manage.py"), "--python", sys.executable,
                        "--format", "json", "--color", "never", "check", "--non-interactive"]


def test_check_never_mutates_whatever_the_options(fake_cli):
    fake_cli.respond(stdout=json.dumps(CLI_CHECK), exit=1)
    Migrator(options=MigratorOptions(repair=True, dry_run=False, skip_makemigrations=True)).check()
    argv = fake_cli.argv()
    command = argv[argv.index("check"):]
    assert command == ["check", "--repair", "--non-interactive", "--skip-makemigrations"]
    assert "migrate-all" not in argv


def test_migrate_all_maps_every_option(fake_cli):
    fake_cli.respond(stdout=json.dumps(MIGRATE_REPAIRED), exit=0)
    options = MigratorOptions(repair=True, dry_run=True, interactive=False,
                              skip_makemigrations=True, verbosity=0,
                              databases=["default", "analytics"], lock_timeout=5,
                              connect_timeout=3, fail_fast=True, manage="/srv/app/manage.py",
                              python="/srv/venv/bin/python", settings="app.settings.prod")
    report = Migrator(options=options).migrate_all()
    assert report.all_clean and report.exit_status == 0
    assert fake_cli.argv()[1:] == [
        "--manage", "/srv/app/manage.py", "--python", "/srv/venv/bin/python",
        "--settings", "app.settings.prod", "--format", "json", "--color", "never",
        "--connect-timeout", "3", "-q",
        "migrate-all", "--check", "--repair", "--non-interactive", "--skip-makemigrations",
        "--database", "default", "--database", "analytics", "--lock-timeout", "5.0",
        "--fail-fast",
    ]


def test_migrate_all_without_dry_run_and_verbose(fake_cli):
    fake_cli.respond(stdout=json.dumps(MIGRATE_REPAIRED))
    Migrator(options=MigratorOptions(verbosity=2)).migrate_all()
    argv = fake_cli.argv()
    assert "-v" in argv and "-q" not in argv
    assert argv[argv.index("migrate-all"):] == ["migrate-all", "--non-interactive"]


def test_exit_status_2_raises_migrator_error_with_stderr(fake_cli, caplog):
    fake_cli.respond(stderr="django-migrator: error: Django cannot start: No module named "
                            "'shop'\n", exit=2)
    with caplog.at_level(logging.INFO, logger="django_migrator"):
        with pytest.raises(MigratorError) as raised:
            Migrator(options=MigratorOptions(), log=MigratorLogger()).migrate_all()
    error = raised.value
    assert error.exit_status == 2
    assert "Django cannot start: No module named 'shop'" in str(error)
    assert error.stderr == "django-migrator: error: Django cannot start: No module named 'shop'\n"
    assert error.argv[0] == str(fake_cli.path)
    # The logger got the CLI's stderr line, at error level.
    logged = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.ERROR, "django-migrator: error: Django cannot start: No module named "
                           "'shop'") in logged


def test_stderr_lines_reach_the_logger_by_level(fake_cli, caplog):
    fake_cli.respond(stdout=json.dumps(CLI_CHECK), exit=1,
                     stderr="exporting the project\nwarning: replica is a mirror\n")
    with caplog.at_level(logging.INFO, logger="django_migrator"):
        Migrator().check()
    logged = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.INFO, "exporting the project") in logged
    assert (logging.WARNING, "warning: replica is a mirror") in logged
    # And the run's outcome.
    assert (logging.WARNING, "check: not clean: default (drift)") in logged


def test_a_custom_logger_is_used(fake_cli):
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("test_api.custom")
    logger.addHandler(Collect())
    logger.setLevel(logging.INFO)
    fake_cli.respond(stdout=json.dumps(MIGRATE_REPAIRED), stderr="progress\n")
    Migrator(log=MigratorLogger(logger)).migrate_all()
    assert "progress" in records
    assert "migrate-all: all clean" in records


def test_unreadable_report_is_a_migrator_error(fake_cli):
    fake_cli.respond(stdout="not json", exit=0)
    with pytest.raises(MigratorError, match="cannot be read"):
        Migrator().check()
    fake_cli.respond(stdout="", stderr="thread 'main' panicked\n", exit=101)
    with pytest.raises(MigratorError) as raised:
        Migrator().check()
    assert raised.value.exit_status == 101 and "panicked" in str(raised.value)


def test_interactive_does_not_pass_non_interactive(fake_cli):
    fake_cli.respond(stdout=json.dumps(CLI_CHECK), exit=1)
    Migrator(options=MigratorOptions(interactive=True)).migrate_all()
    assert "--non-interactive" not in fake_cli.argv()


# Finding the binary and the project.

def test_binary_beside_the_interpreter_comes_first(tmp_path, monkeypatch, fake_cli):
    beside = Path(sys.executable).parent / "django-migrator"
    beside.parent.mkdir(parents=True)
    beside.write_text("#!/bin/sh\n")
    beside.chmod(0o755)
    assert runner.find_binary() == str(beside)
    beside.unlink()
    assert runner.find_binary() == str(fake_cli.path)


def test_binary_from_path_last(tmp_path, monkeypatch, fake_cli):
    monkeypatch.delenv("DJANGO_MIGRATOR_BIN")
    monkeypatch.setenv("PATH", str(fake_cli.path.parent))
    assert runner.find_binary() == str(fake_cli.path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BinaryNotFound, match="DJANGO_MIGRATOR_BIN") as raised:
        runner.find_binary()
    assert raised.value.exit_status == 2
    with pytest.raises(MigratorError):
        Migrator().check()


def test_binary_env_must_be_executable(tmp_path, monkeypatch, fake_cli):
    monkeypatch.setenv("DJANGO_MIGRATOR_BIN", str(tmp_path / "missing"))
    with pytest.raises(BinaryNotFound, match="not an executable"):
        runner.find_binary()


def test_manage_py_lookup(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "proj").mkdir(parents=True)
    (project / "proj" / "__init__.py").write_text("")
    (project / "manage.py").write_text("")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    # The script being run, when it is a manage.py (relative to the directory it was run from).
    monkeypatch.setattr(sys, "argv", ["../project/manage.py", "migrate_all"])
    assert runner.find_manage() == project / "manage.py"
    # Otherwise ./manage.py.
    monkeypatch.setattr(sys, "argv", ["/usr/bin/django-admin", "migrate_all"])
    assert runner.find_manage() is None
    monkeypatch.chdir(project)
    assert runner.find_manage() == project / "manage.py"
    # Otherwise beside the settings module's package.
    monkeypatch.chdir(elsewhere)
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "proj.settings")
    assert runner.find_manage() == project / "manage.py"


def test_verbosity_flags():
    assert runner.verbosity_flags(0) == ["-q"]
    assert runner.verbosity_flags(1) == []
    assert runner.verbosity_flags(2) == ["-v"]
    assert runner.verbosity_flags(3) == ["-v"]
    assert runner.exit_status(-9) == 137


# Fake detectors.

@pytest.fixture
def detector_registry(monkeypatch):
    monkeypatch.setattr(detectors, "_registered", [])


@pytest.fixture
def django_settings():
    """Minimal settings in this process (the other tests of this directory use subprocesses)."""
    from django.conf import settings

    if not settings.configured:
        settings.configure(INSTALLED_APPS=[], DATABASES={})
    return settings


def claims_currency(operation):
    return getattr(operation, "name", "").endswith("_currency")


def claims_nothing(operation):
    return False


NOT_CALLABLE = 42


def test_register_fake_detector_is_a_decorator(detector_registry):
    @register_fake_detector
    def detector(operation):
        return True

    assert detector(None) is True
    assert register_fake_detector(detector) is detector
    assert detectors.registered_detectors() == [detector]
    with pytest.raises(TypeError):
        register_fake_detector("not callable")
    detectors.unregister_fake_detector(detector)
    assert detectors.registered_detectors() == []


def test_all_detectors_adds_settings_paths(detector_registry, django_settings):
    from django.test.utils import override_settings

    @register_fake_detector
    def registered(operation):
        return False

    path = f"{__name__}.claims_currency"
    with override_settings(DJANGO_MIGRATOR_FAKE_DETECTORS=[path, f"{__name__}.claims_nothing"]):
        found = django_migrator.all_detectors()
    assert [fn.__name__ for fn in found] == ["registered", "claims_currency", "claims_nothing"]
    # A callable both registered and listed appears once.
    register_fake_detector(found[1])
    with override_settings(DJANGO_MIGRATOR_FAKE_DETECTORS=[path]):
        assert len(detectors.all_detectors()) == 2
    with override_settings(DJANGO_MIGRATOR_FAKE_DETECTORS=[]):
        assert detectors.all_detectors() == [registered, found[1]]


@pytest.mark.parametrize("value, message", [
    (["no_such_module_xyz.detector"], "cannot import 'no_such_module_xyz.detector'"),
    ([f"{__name__}.no_such_name"], f"cannot import '{__name__}.no_such_name'"),
    ([f"{__name__}.NOT_CALLABLE"], "is not callable"),
    (f"{__name__}.claims_currency", "must be a list"),
    ([42], "is not a string"),
])
def test_bad_detector_setting_is_improperly_configured(detector_registry, django_settings,
                                                       value, message):
    from django.core.exceptions import ImproperlyConfigured
    from django.test.utils import override_settings

    from django_migrator.checks import check_fake_detectors

    with override_settings(DJANGO_MIGRATOR_FAKE_DETECTORS=value):
        with pytest.raises(ImproperlyConfigured, match="DJANGO_MIGRATOR_FAKE_DETECTORS") as raised:
            detectors.all_detectors()
        assert message in str(raised.value)
        errors = check_fake_detectors()
    assert [e.id for e in errors] == ["django_migrator.E001"]
    assert message in errors[0].msg


def test_package_imports_without_django_settings(tmp_path):
    """The exporter may import the package before (or without) configured settings."""
    code = textwrap.dedent("""
        import sys
        import django_migrator
        from django_migrator import (Migrator, MigratorOptions, MigratorLogger,
                                     TextReportFormatter, register_fake_detector, all_detectors,
                                     MigrationReport)
        assert "django.conf" not in sys.modules, "django.conf imported"
        fn = register_fake_detector(lambda op: True)
        import django_migrator.detectors as d
        assert sys.modules["django_migrator.detectors"] is d
        assert d.all_detectors() == [fn]
        print("ok", django_migrator.__version__)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["PYTHONPATH"] = str(PYTHON_SRC)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok 0.2.0"


def test_public_names():
    for name in ["Migrator", "MigratorOptions", "MigratorLogger", "TextReportFormatter",
                 "register_fake_detector", "MigrationReport", "MigratorError"]:
        assert name in django_migrator.__all__
        assert getattr(django_migrator, name)
    with pytest.raises(AttributeError):
        django_migrator.nope  # noqa: B018


def test_the_formatter_says_when_the_project_came_from_the_cache():
    import time

    data = copy.deepcopy(CHECK_EVERYTHING)
    data["project"] = {"source": "cache", "written_at": int(time.time()) - 300}
    report = MigrationReport.from_dict(data)
    assert report.to_dict()["project"] == data["project"]
    lines = TextReportFormatter().render(report).splitlines()
    assert lines[1] == ("project: from the cache of a run 5 min ago; nothing Django read has "
                        "changed since (--no-cache starts Django)")
    data["project"] = {"source": "django"}
    assert not any(line.startswith("project:") for line in
                   TextReportFormatter().render(MigrationReport.from_dict(data)).splitlines())
