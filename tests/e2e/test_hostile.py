"""End-to-end tests with hostile identifiers and a hostile search_path, through the real CLI and
the real extension.

The fixture apps under tests/e2e/fixtures/hostile/ give Django models whose tables, columns,
indexes and constraints are named with quotes, spaces, mixed case, non-ASCII letters and emoji,
a backslash, SQL-looking text, exactly 63 bytes and more than 63 bytes (which PostgreSQL cuts,
sometimes inside a character), names that Django shortens itself, tables in other schemas, and
schemas and tables named like the extension's own. Every hostile object is the only effect of
its migration, so dropping it by hand must give exactly one `recorded_missing` row naming that
migration, and deleting that migration's history row exactly one `unrecorded_present` row.

Also: every table of an alias in a schema that DATABASES OPTIONS put on the connection's
search_path; a schema `evil` put first on the search_path of every session, with functions,
operators, an aggregate, types and views that shadow pg_catalog's and record every call, which
neither the CLI nor the extension may ever call; and, last, names with double quotes inside
(the `hostile_quotes` app).

Run from the repository root: `.venv/bin/python -m pytest tests/e2e/test_hostile.py -q`.
"""

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from conftest import PG_BIN, TIMEOUT, Shop, _base_env

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hostile"
# The fixture apps and settings live in fixtures/hostile; manage.py itself puts the example
# project's directory first on sys.path, so `shop.settings` stays importable.
ENV = {"PYTHONPATH": str(FIXTURES)}
HOSTILE = ("--settings", "settings_hostile")
QUOTES = ("--settings", "settings_hostile_quotes")
TENANT = ("--settings", "settings_hostile_tenant")
TENANT_SCHEMA = "Mandant Süd"

_prefixes = (f"h{n}_" for n in itertools.count(1))


# --- names ------------------------------------------------------------------------------------


def pg_name(name):
    """The name PostgreSQL stores for `name`: its first 63 bytes, never half a character."""
    data = name.encode()[:63]
    while True:
        try:
            return data.decode()
        except UnicodeDecodeError:
            data = data[:-1]


def ident(name):
    """`name` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def qualified(schema, name):
    return f"{ident(schema)}.{ident(name)}" if schema else ident(name)


# --- the hostile objects, each the only effect of its migration --------------------------------

BASE = "Bestellung Größe"
MERGE = "hostile.0034_merge_branches"
QUOTES_MERGE = "hostile_quotes.0009_merge_branches"


class Hostile:
    """One hostile object: the migration that creates it, where it lives physically, and how
    the drift rows must name it (as PostgreSQL stores it)."""

    def __init__(self, migration, kind, name, table=BASE, schema=None, columns=("id",),
                 merge=MERGE):
        self.migration = migration
        self.kind = kind  # table, column, index or constraint
        self.name = name  # as PostgreSQL stores it
        self.table = table if kind != "table" else name
        self.schema = schema
        self.columns = columns  # of a table
        self.merge = merge
        self.app, self.migration_name = migration.split(".")

    def __repr__(self):
        return self.migration

    @property
    def table_display(self):
        return f"{self.schema}.{self.table}" if self.schema else self.table

    @property
    def display(self):
        """How drift rows name the object: schema.table, table.column, table.index."""
        if self.kind == "table":
            return self.table_display
        return f"{self.table_display}.{self.name}"

    def drop_sql(self):
        table = qualified(self.schema, self.table)
        if self.kind == "table":
            return f"DROP TABLE {table}"
        if self.kind == "column":
            return f"ALTER TABLE {table} DROP COLUMN {ident(self.name)}"
        if self.kind == "index":
            return f"DROP INDEX {qualified(self.schema, self.name)}"
        return f"ALTER TABLE {table} DROP CONSTRAINT {ident(self.name)}"

    def exists_sql(self):
        """A query that prints t when the object is there under its physical name."""
        schema = literal(self.schema or "public")
        table = literal(self.table)
        relation = (f"SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    f" WHERE n.nspname = {schema} AND c.relname = {table}")
        if self.kind == "table":
            return f"SELECT EXISTS ({relation})"
        if self.kind == "column":
            return (f"SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = ({relation}) "
                    f"AND attname = {literal(self.name)} AND NOT attisdropped)")
        if self.kind == "index":
            return (f"SELECT EXISTS (SELECT 1 FROM pg_index x JOIN pg_class i ON i.oid = "
                    f"x.indexrelid WHERE x.indrelid = ({relation}) "
                    f"AND i.relname = {literal(self.name)})")
        return (f"SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = ({relation}) "
                f"AND conname = {literal(self.name)})")

    def checks(self):
        """The checkable effects of its migration, as scan() lists them."""
        if self.kind == "table":
            return [("table", self.display)] + [
                ("column", f"{self.display}.{column}") for column in self.columns]
        return [(self.kind, self.display)]

    def missing_row(self):
        """The one drift row when the object is dropped. A dropped table's columns are not
        counted: a claim about a column counts only when its table is there."""
        detail = f"recorded, but {self.kind} {self.display} is missing"
        return drift_row(self.migration, "recorded_missing", True, 0, 1, detail,
                         [check(self.kind, self.display, False)])

    def unrecorded_row(self):
        """The one drift row when its history row is deleted."""
        checks = self.checks()
        shown = "; ".join(f"{kind} {name} is present" for kind, name in checks[:3])
        if len(checks) > 3:
            shown += f"; and {len(checks) - 3} more"
        return drift_row(self.migration, "unrecorded_present", False, len(checks), 0,
                         f"not recorded, but {shown}",
                         [check(kind, name, True) for kind, name in checks])


def table(migration, name, **kw):
    return Hostile(f"hostile.{migration}", "table", pg_name(name), **kw)


def column(migration, name):
    return Hostile(f"hostile.{migration}", "column", pg_name(name))


HOSTILE_OBJECTS = [
    table("0002_apostrophe", "O'Brien's orders"),
    table("0003_backslash", "back\\slash\\table"),
    table("0004_sql_text", "robert'); DROP TABLE django_migrations;--"),
    table("0005_einhorn", "🦄 Einhorn"),
    # Case twins: dropping one must never be blamed on the other.
    table("0006_kunde_upper", "Kunde"),
    table("0007_kunde_lower", "kunde"),
    table("0008_exactly_63_bytes", "Exactly 63 bytes " + "x" * 46),
    # Cut by PostgreSQL to 63 bytes; Django does not shorten an explicit db_table.
    table("0009_over_63_bytes", "Over 63 bytes, cut by PostgreSQL " + "y" * 37),
    # Byte 63 falls inside "é": PostgreSQL keeps 62 bytes.
    table("0010_cut_inside_a_character", "z" * 62 + "é after the cut"),
    # Django shortens a generated name to 63 characters with a hash suffix...
    table("0011_long_model_name",
          "hostile_hostilemodelwithanextremelylongnamethatdjangomustsh71ec"),
    # ...and for this one, 63 characters are 69 bytes: PostgreSQL cuts Django's hash off.
    table("0012_long_unicode_model_name",
          "hostile_größeüberäußerstlangemodellbezeichnungmitumlauten"),
    # Django sends a name already between double quotes as it is.
    table("0013_wrapped_table", "Wrapped Table"),
    # In public, named like the extension's own table.
    table("0014_dotted_manifest", "django_migrator.manifest"),
    column("0015_column_apostrophe", "it's"),
    column("0016_column_backslash", "back\\slash"),
    column("0017_column_sql_text", "x; DROP TABLE django_migrations; --"),
    column("0018_column_mixed_case", "MixedCase"),
    column("0019_column_lower_case", "mixedcase"),
    column("0020_column_emoji", "🧾 Beleg"),
    column("0021_column_exactly_63_bytes", "Spalte mit genau 63 Bytes: Größe " + "g" * 29),
    column("0022_column_over_63_bytes",
           "Spalte über 63 Bytes, von PostgreSQL gekürzt: " + "ü" * 20),
    # A field name of 58 characters (Django's own limit is 63 characters) and 64 bytes.
    column("0023_column_long_unicode_field_name",
           "größenänderungsüberprüfungsbenachrichtigungsempfängerinnen"),
    # The many-to-many table: Django shortens its name to 63 characters (66 bytes), PostgreSQL
    # to 63 bytes, which keeps one character of Django's hash.
    table("0024_long_many_to_many",
          "Bestellung Größe_ähnliche_bestellungen_mit_einem_sehr_lange5",
          columns=("id", "from_bestellung_id", "to_bestellung_id")),
    Hostile("hostile.0025_index_emoji", "index", "Größe idx 📦"),
    # 20 characters (Django allows 30), 80 bytes: PostgreSQL keeps 15 of them.
    Hostile("hostile.0026_index_over_63_bytes", "index", pg_name("📦" * 20)),
    Hostile("hostile.0027_constraint_sql_text", "constraint", "Menge ≥ 0; DROP TABLE x; --'"),
    Hostile("hostile.0028_constraint_over_63_bytes", "constraint",
            pg_name("Eindeutig " + "ü" * 30)),
    # Schemas named like the extension's (0029 creates them), and another one.
    table("0030_schema_like_extension_manifest", "manifest", schema="Django_Migrator"),
    table("0031_schema_like_extension_migrations", "django_migrations",
          schema="Django_Migrator"),
    table("0032_schema_like_extension_scan", "scan", schema="django_migrator2"),
    table("0033_other_schema", "Tabelle", schema="Other Schema"),
]
BY_MIGRATION = {obj.migration: obj for obj in HOSTILE_OBJECTS}
BASE_TABLE_CHECKS = 3  # table, id, "Menge 📦"
# Django's plan, which is also the graph order of the manifest and of scan(): after 0001 and
# 0029, the merged branches come last one first.
HOSTILE_PLAN = (["hostile.0001_initial", "hostile.0029_schemas"]
                + [obj.migration for obj in reversed(HOSTILE_OBJECTS)] + [MERGE])

# Double quotes inside names, as Django lets them through, and Django's schema form without the
# outer quotes (`'Anderes Schema"."Tabelle'`). Each as PostgreSQL stores it.
QUOTED_BASE = "Zitat"


def quoted(migration, kind, name, **kw):
    table = kw.pop("table", QUOTED_BASE)
    return Hostile(f"hostile_quotes.{migration}", kind, name, table=table, merge=QUOTES_MERGE,
                   **kw)


QUOTES_OBJECTS = [
    quoted("0002_column_doubled_quotes", "column", 'say "cheese"'),
    quoted("0003_column_wrapped_in_quotes", "column", "Wrapped Column"),
    quoted("0004_index_doubled_quotes", "index", 'idx "q"'),
    quoted("0005_constraint_doubled_quotes", "constraint", 'check "quoted"'),
    quoted("0007_table_in_schema", "table", "Tabelle", schema="Anderes Schema"),
    quoted("0008_table_doubled_quotes", "table", 'Bestellung "Spezial"'),
]


def drift_row(migration, kind, recorded, present, missing, detail, objects):
    app, name = migration.split(".")
    return {"app": app, "name": name, "kind": kind, "recorded": recorded, "present": present,
            "missing": missing, "detail": detail, "objects": objects}


def check(kind, name, ok):
    return {"object": kind, "name": name, "expected": "present", "ok": ok}


def step(action, migration, reason, applied):
    app, name = migration.split(".")
    return {"action": action, "app": app, "name": name, "reason": reason, "applied": applied}


# --- databases --------------------------------------------------------------------------------


def cli_json(shop, settings, *args):
    run = shop.cli(*settings, *args, "--format", "json", env=ENV)
    return run, run.json()


def by_alias(report):
    return {entry["alias"]: entry for entry in report["aliases"]}


def history(shop, alias, schema="public"):
    """Every row of django_migrations, exactly, ordered by id."""
    return json.loads(shop.sql(alias, f"""
        SELECT coalesce(json_agg(json_build_object('id', id, 'app', app, 'name', name,
                                                   'applied', applied) ORDER BY id), '[]')
          FROM {ident(schema)}.django_migrations"""))


def journal(shop, alias):
    return json.loads(shop.sql(alias, """
        SELECT coalesce(json_agg(json_build_object(
                   'plan', plan, 'inserted', inserted, 'deleted', deleted) ORDER BY id), '[]')
          FROM django_migrator.repairs"""))


def keys(rows):
    return [row["app"] + "." + row["name"] for row in rows]


def psql_scan(shop, alias):
    """What `SELECT * FROM django_migrator.scan()` returns, as the CLI reports it."""
    return json.loads(shop.sql(
        alias, "SELECT coalesce(json_agg(s), '[]') FROM django_migrator.scan() s"))


def delete_row(migration, schema="public"):
    app, name = migration.split(".")
    return (f"DELETE FROM {ident(schema)}.django_migrations "
            f"WHERE app = {literal(app)} AND name = {literal(name)}")


def assert_untouched_clean(entry):
    assert entry["status"] == "clean", entry
    assert entry["drift"] == [] and entry["repairs"] == [], entry
    assert entry["migrated"] == [] and entry["pending"] == [] and entry["errors"] == [], entry


def assert_clean_report(run, report):
    assert run.code == 0, str(run)
    assert report["all_clean"] is True, report
    aliases = by_alias(report)
    for alias in ("default", "analytics"):
        assert_untouched_clean(aliases[alias])
    assert aliases["replica"]["status"] == "skipped", aliases["replica"]


def build_template(cluster, prefix, settings):
    """Databases that plain `manage.py migrate` brought up to date on default and analytics,
    with the manifest of each alias stored by one `migrate-all` (which has nothing to migrate)."""
    shop = Shop(cluster, prefix)
    cluster.create_databases(prefix)
    for alias in ("default", "analytics"):
        run = shop.manage("migrate", "--database", alias, *settings, "--noinput", "-v", "0",
                          env=ENV)
        assert run.code == 0, str(run)
    run, report = cli_json(shop, settings, "migrate-all", "--non-interactive",
                           "--skip-makemigrations")
    for alias in ("default", "analytics"):
        assert by_alias(report)[alias]["migrated"] == [], str(run)
        assert shop.sql(alias, "SELECT count(*) FROM django_migrator.manifest_info()") == "1"
    return shop, run, report


@pytest.fixture(scope="module")
def hostile_template(cluster):
    shop, run, report = build_template(cluster, "hst_", HOSTILE)
    assert_clean_report(run, report)
    return shop.prefix


@pytest.fixture(scope="module")
def quotes_template(cluster):
    return build_template(cluster, "hqt_", QUOTES)[0].prefix


def clone(cluster, template_prefix):
    prefix = next(_prefixes)
    cluster.create_databases(prefix, template_prefix=template_prefix)
    return Shop(cluster, prefix)


@pytest.fixture
def hostile_shop(cluster, hostile_template):
    """Databases with the `hostile` app migrated by plain Django, manifests stored."""
    shop = clone(cluster, hostile_template)
    try:
        yield shop
    finally:
        cluster.drop_databases(shop.prefix)


@pytest.fixture
def quotes_shop(cluster, quotes_template):
    """Databases with the `hostile_quotes` app migrated by plain Django, manifests stored."""
    shop = clone(cluster, quotes_template)
    try:
        yield shop
    finally:
        cluster.drop_databases(shop.prefix)


# --- a freshly migrated database is clean -----------------------------------------------------


def test_migrate_all_on_empty_databases_creates_every_hostile_name_and_is_clean(shop):
    run, report = cli_json(shop, HOSTILE, "migrate-all", "--non-interactive")

    assert run.code == 0, str(run)
    assert report["all_clean"] is True
    assert report["makemigrations"]["status"] == "no_changes", report["makemigrations"]
    aliases = by_alias(report)
    for alias in ("default", "analytics"):
        entry = aliases[alias]
        assert entry["status"] == "clean" and entry["drift"] == [], entry
        assert entry["pending"] == [] and entry["errors"] == [], entry
        # Django records the hostile migrations on analytics too (the router keeps their
        # tables on default).
        hostile = [m for m in entry["migrated"] if m.startswith("hostile.")]
        assert hostile == HOSTILE_PLAN, entry["migrated"]
    # Every object is where PostgreSQL put it, under the name the drift rows use.
    for obj in HOSTILE_OBJECTS:
        assert shop.sql("default", obj.exists_sql()) == "t", obj
        assert shop.sql("analytics", obj.exists_sql()) == "f", obj

    run, report = cli_json(shop, HOSTILE, "check")

    assert_clean_report(run, report)
    assert report["makemigrations"]["status"] == "no_changes"
    assert psql_scan(shop, "default") == [] and psql_scan(shop, "analytics") == []


def test_check_on_freshly_migrated_database_is_clean_and_status_counts_every_effect(
        hostile_shop):
    shop = hostile_shop
    run, report = cli_json(shop, HOSTILE, "check")

    assert_clean_report(run, report)
    for alias in ("default", "analytics"):
        assert psql_scan(shop, alias) == []
        assert shop.sql(alias, "SELECT kind, count FROM django_migrator.drift_summary "
                               "ORDER BY kind") == "\n".join(
            f"{kind}|0" for kind in sorted(["half_applied", "inconsistent_history",
                                             "orphan_record", "recorded_missing",
                                             "unrecorded_present"]))

    status = shop.sql("default", "SELECT name, state, present, missing "
                                 "FROM django_migrator.status() WHERE app = 'hostile'")
    expected = {"0001_initial": ("applied", BASE_TABLE_CHECKS, 0),
                "0029_schemas": ("applied", 0, 0), "0034_merge_branches": ("applied", 0, 0)}
    for obj in HOSTILE_OBJECTS:
        expected[obj.migration_name] = ("applied", len(obj.checks()), 0)
    rows = {}
    for line in status.splitlines():
        name, state, present, missing = line.split("|")
        rows[name] = (state, int(present), int(missing))
    assert rows == expected


# --- one object dropped by hand, or one history row deleted ------------------------------------


def dropped_round_trip(shop, settings, obj):
    """Drops `obj`; check must blame its migration alone; check --repair plans the rewind of
    it and the merge; migrate-all --repair rewinds both and Django builds the object again."""
    shop.sql("default", obj.drop_sql())
    assert shop.sql("default", obj.exists_sql()) == "f"
    before = history(shop, "default")
    analytics_before = history(shop, "analytics")
    row = obj.missing_row()

    run, report = cli_json(shop, settings, "check")
    assert run.code == 1, str(run)
    aliases = by_alias(report)
    assert aliases["default"]["status"] == "drift", aliases["default"]
    assert aliases["default"]["drift"] == [row]
    assert_untouched_clean(aliases["analytics"])
    assert psql_scan(shop, "default") == [row]

    plan = [step("fake_rewind", obj.migration,
                 f"{row['detail']}; migrate will apply it again", False),
            step("fake_rewind", obj.merge,
                 f"depends on {obj.migration}, which is rewound, and none of its effects is "
                 "present", False)]
    run, report = cli_json(shop, settings, "check", "--repair")
    assert run.code == 1, str(run)
    assert by_alias(report)["default"]["repairs"] == plan
    assert history(shop, "default") == before

    run, report = cli_json(shop, settings, "migrate-all", "--repair", "--non-interactive")

    assert run.code == 0, str(run)
    assert report["all_clean"] is True
    aliases = by_alias(report)
    default = aliases["default"]
    assert default["repairs"] == [dict(s, applied=True) for s in plan]
    assert default["status"] == "clean" and default["drift"] == [], default
    assert default["migrated"] == [obj.migration, obj.merge]
    assert_untouched_clean(aliases["analytics"])
    assert shop.sql("default", obj.exists_sql()) == "t"
    after = history(shop, "default")
    rewound = {obj.migration, obj.merge}
    kept = [r for r in before if keys([r])[0] not in rewound]
    assert after[:len(kept)] == kept
    assert keys(after[len(kept):]) == [obj.migration, obj.merge]
    assert after[len(kept)]["id"] > before[-1]["id"]
    assert journal(shop, "default") == [{
        "plan": [{k: v for k, v in s.items() if k != "applied"} for s in plan],
        "inserted": [], "deleted": [r for r in before if keys([r])[0] in rewound]}]
    assert history(shop, "analytics") == analytics_before
    assert psql_scan(shop, "default") == []


def deleted_row_round_trip(shop, settings, obj):
    """Deletes the history row of `obj`'s migration; check must report it unrecorded and
    present; migrate-all --repair records it again, marked, and migrates nothing."""
    shop.sql("default", delete_row(obj.migration))
    before = history(shop, "default")
    row = obj.unrecorded_row()

    run, report = cli_json(shop, settings, "check", "--repair")
    assert run.code == 1, str(run)
    aliases = by_alias(report)
    assert aliases["default"]["drift"] == [row]
    plan = [step("fake_apply", obj.migration, row["detail"], False)]
    assert aliases["default"]["repairs"] == plan
    assert aliases["default"]["pending"] == [], aliases["default"]
    assert_untouched_clean(aliases["analytics"])
    assert psql_scan(shop, "default") == [row]

    run, report = cli_json(shop, settings, "migrate-all", "--repair", "--non-interactive")

    assert run.code == 0, str(run)
    default = by_alias(report)["default"]
    assert default["repairs"] == [dict(plan[0], applied=True)]
    assert default["status"] == "clean" and default["drift"] == [], default
    assert default["migrated"] == [], default
    after = history(shop, "default")
    assert after[:len(before)] == before
    assert keys(after[len(before):]) == [obj.migration]
    assert after[-1]["applied"].endswith(".999999+00:00"), after[-1]
    assert journal(shop, "default") == [{
        "plan": [{k: v for k, v in s.items() if k != "applied"} for s in plan],
        "inserted": [after[-1]], "deleted": []}]
    assert psql_scan(shop, "default") == []


@pytest.mark.parametrize("obj", HOSTILE_OBJECTS, ids=repr)
def test_dropped_hostile_object_is_recorded_missing_and_rebuilt(hostile_shop, obj):
    dropped_round_trip(hostile_shop, HOSTILE, obj)


@pytest.mark.parametrize("obj", HOSTILE_OBJECTS, ids=repr)
def test_deleted_history_row_of_hostile_object_is_unrecorded_present(hostile_shop, obj):
    deleted_row_round_trip(hostile_shop, HOSTILE, obj)


def test_dropped_hostile_base_table_is_refused_naming_a_dependent_with_effects(hostile_shop):
    shop = hostile_shop
    # CASCADE drops only the many-to-many table's foreign keys, not the table.
    shop.sql("default", f"DROP TABLE {ident(BASE)} CASCADE")
    before = history(shop, "default")
    detail = f"recorded, but table {BASE} is missing"

    run, report = cli_json(shop, HOSTILE, "check", "--repair")
    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    # The columns, indexes and constraints added to it later are not blamed: they count only
    # where their table is.
    assert default["drift"] == [drift_row("hostile.0001_initial", "recorded_missing", True, 0,
                                          1, detail, [check("table", BASE, False)])]
    refusal = step("refuse", "hostile.0001_initial",
                   f"{detail}; rewinding it would also rewind hostile.0033_other_schema, whose "
                   "effects are present (Other Schema.Tabelle, Other Schema.Tabelle.id)", False)
    assert default["repairs"] == [refusal]

    run, report = cli_json(shop, HOSTILE, "migrate-all", "--repair", "--non-interactive")

    assert run.code == 1, str(run)
    default = by_alias(report)["default"]
    assert default["status"] == "drift" and default["repairs"] == [refusal], default
    assert default["migrated"] == [], default
    assert history(shop, "default") == before
    assert journal(shop, "default") == []


# --- a schema on the connection's search_path (DATABASES OPTIONS) ------------------------------


def test_tables_in_a_search_path_schema_from_database_options(shop):
    tenant = ident(TENANT_SCHEMA)
    shop.sql("default", f"CREATE SCHEMA {tenant}")

    run, report = cli_json(shop, TENANT, "migrate-all", "--non-interactive")

    assert run.code == 0, str(run)
    assert report["all_clean"] is True
    default = by_alias(report)["default"]
    assert default["status"] == "clean" and default["drift"] == [], default
    assert len(default["migrated"]) == 65, default["migrated"]
    assert [m for m in default["migrated"] if m.startswith("hostile.")] == HOSTILE_PLAN
    # Django put every table of default, django_migrations included, in the tenant schema.
    assert shop.sql("default", "SELECT search_path, migrations_schema "
                               "FROM django_migrator.manifest") == (
        f'{{"{TENANT_SCHEMA}",public}}|{TENANT_SCHEMA}')
    assert shop.sql("default", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") \
        == "0"
    einhorn = BY_MIGRATION["hostile.0005_einhorn"]
    in_tenant = Hostile(einhorn.migration, "table", einhorn.name, schema=TENANT_SCHEMA)
    assert shop.sql("default", in_tenant.exists_sql()) == "t"

    run, report = cli_json(shop, TENANT, "check")
    assert_clean_report(run, report)

    apostrophe = BY_MIGRATION["hostile.0002_apostrophe"]
    shop.sql("default", in_tenant.drop_sql())
    shop.sql("default", delete_row(apostrophe.migration, schema=TENANT_SCHEMA))
    before = history(shop, "default", schema=TENANT_SCHEMA)
    # Unqualified names are reported as Django names them, whatever schema they resolve to.
    # Graph order: Django's plan puts the later branches first.
    rows = [einhorn.missing_row(), apostrophe.unrecorded_row()]

    run, report = cli_json(shop, TENANT, "check")
    assert run.code == 1, str(run)
    assert by_alias(report)["default"]["drift"] == rows
    assert psql_scan(shop, "default") == rows

    run, report = cli_json(shop, TENANT, "migrate-all", "--repair", "--non-interactive")

    assert run.code == 0, str(run)
    default = by_alias(report)["default"]
    assert default["repairs"] == [
        step("fake_rewind", einhorn.migration,
             f"{rows[0]['detail']}; migrate will apply it again", True),
        step("fake_apply", apostrophe.migration, rows[1]["detail"], True),
        step("fake_rewind", MERGE, f"depends on {einhorn.migration}, which is rewound, and "
                                   "none of its effects is present", True)]
    assert default["status"] == "clean" and default["drift"] == [], default
    assert default["migrated"] == [einhorn.migration, MERGE]
    assert shop.sql("default", in_tenant.exists_sql()) == "t"
    assert shop.sql("default", einhorn.exists_sql()) == "f"  # not in public
    after = keys(history(shop, "default", schema=TENANT_SCHEMA))
    assert after[-3:] == [apostrophe.migration, einhorn.migration, MERGE]
    assert len(after) == len(before) + 1


# --- a malicious search_path -------------------------------------------------------------------

EVIL_ROLE = "hostile_evil"
EVIL_SEARCH_PATH = "evil, pg_catalog, public"
EVIL_MARK = "django_migrator hostile test: evil."

# pg_catalog functions that the extension's and the CLI's SQL use, shadowed in `evil`:
# (signature, return type, the real call).
EVIL_FUNCTIONS = [
    ("now()", "timestamptz", "pg_catalog.now()"),
    ("clock_timestamp()", "timestamptz", "pg_catalog.clock_timestamp()"),
    ("current_schemas(boolean)", "name[]", "pg_catalog.current_schemas($1)"),
    ("current_schema()", "name", "pg_catalog.current_schema()"),
    ("current_database()", "name", "pg_catalog.current_database()"),
    ("current_setting(text)", "text", "pg_catalog.current_setting($1)"),
    ("set_config(text, text, boolean)", "text", "pg_catalog.set_config($1, $2, $3)"),
    ("to_regclass(text)", "regclass", "pg_catalog.to_regclass($1)"),
    ("pg_backend_pid()", "integer", "pg_catalog.pg_backend_pid()"),
    ("pg_is_in_recovery()", "boolean", "pg_catalog.pg_is_in_recovery()"),
    ("pg_try_advisory_lock(bigint)", "boolean", "pg_catalog.pg_try_advisory_lock($1)"),
    ("pg_try_advisory_xact_lock(bigint)", "boolean",
     "pg_catalog.pg_try_advisory_xact_lock($1)"),
    ("pg_advisory_lock(bigint)", "void", "pg_catalog.pg_advisory_lock($1)"),
    ("pg_advisory_unlock(bigint)", "boolean", "pg_catalog.pg_advisory_unlock($1)"),
    ("jsonb_build_object(VARIADIC text[])", "jsonb", "pg_catalog.jsonb_object($1)"),
    ("json_build_object(VARIADIC text[])", "json", "pg_catalog.json_object($1)"),
    ("array_to_json(anyarray)", "json", "pg_catalog.array_to_json($1)"),
    ("unnest(anyarray)", "SETOF anyelement", "pg_catalog.unnest($1)"),
    ("jsonb_array_elements(jsonb)", "SETOF jsonb", "pg_catalog.jsonb_array_elements($1)"),
    ("date_trunc(text, timestamptz)", "timestamptz", "pg_catalog.date_trunc($1, $2)"),
    ("make_interval(years integer DEFAULT 0, months integer DEFAULT 0, weeks integer DEFAULT 0, "
     "days integer DEFAULT 0, hours integer DEFAULT 0, mins integer DEFAULT 0, "
     "secs double precision DEFAULT 0.0)", "interval",
     "pg_catalog.make_interval($1, $2, $3, $4, $5, $6, $7)"),
    ("to_char(timestamp, text)", "text", "pg_catalog.to_char($1, $2)"),
    ("left(text, integer)", "text", "pg_catalog.left($1, $2)"),
    ("lower(text)", "text", "pg_catalog.lower($1)"),
    ("upper(text)", "text", "pg_catalog.upper($1)"),
    ("quote_ident(text)", "text", "pg_catalog.quote_ident($1)"),
    ("inet_server_port()", "integer", "pg_catalog.inet_server_port()"),
    ("inet_client_addr()", "inet", "pg_catalog.inet_client_addr()"),
    ("nextval(regclass)", "bigint", "pg_catalog.nextval($1)"),
    ("ceil(numeric)", "numeric", "pg_catalog.ceil($1)"),
    ("pg_get_userbyid(oid)", "name", "pg_catalog.pg_get_userbyid($1)"),
]

# Operators: (operator, left, right, result).
EVIL_OPERATORS = [
    ("=", "text", "text", "boolean"),
    ("=", "name", "name", "boolean"),
    ("=", "name", "text", "boolean"),
    ("=", "bigint", "bigint", "boolean"),
    ("=", "integer", "integer", "boolean"),
    ("=", "smallint", "smallint", "boolean"),
    ("=", "oid", "oid", "boolean"),
    ("=", '"char"', '"char"', "boolean"),
    ("=", "boolean", "boolean", "boolean"),
    ("<>", "text", "text", "boolean"),
    ("<>", "integer", "integer", "boolean"),
    ("<>", "oid", "oid", "boolean"),
    (">", "smallint", "integer", "boolean"),
    ("<=", "integer", "integer", "boolean"),
    ("~~", "text", "text", "boolean"),
    ("||", "text", "text", "text"),
    ("-", "timestamptz", "timestamptz", "interval"),
    ("+", "timestamptz", "interval", "timestamptz"),
    (">>", "bigint", "integer", "bigint"),
    ("&", "bigint", "bigint", "bigint"),
    ("->>", "jsonb", "text", "text"),
]

# Type names that a query resolves along the search path when it does not qualify them
# (`::text`, `::jsonb`); keywords such as `bigint` or `boolean` always mean pg_catalog's.
EVIL_DOMAINS = ["text", "name", "jsonb", "float8", "int8", "int4", "timestamptz", "oid",
                "regclass"]

# Catalog relations, shadowed by views.
EVIL_VIEWS = ["pg_class", "pg_namespace", "pg_attribute", "pg_index", "pg_constraint",
              "pg_locks", "pg_stat_activity", "pg_database", "pg_extension", "pg_type",
              "pg_roles"]


def evil_schema_sql():
    """The schema `evil`, owned by EVIL_ROLE: each object does what pg_catalog's does, after
    recording the call three ways, so that a call inside a transaction that is rolled back (as
    `check` rolls its work back) is seen too: a row in evil.calls, the advance of the sequence
    evil.calls_id_seq (which no rollback undoes), and a line in the server log."""
    sql = [
        f"CREATE SCHEMA evil AUTHORIZATION {EVIL_ROLE}",
        f"SET ROLE {EVIL_ROLE}",
        "CREATE SEQUENCE evil.calls_id_seq",
        "CREATE TABLE evil.calls (id bigint PRIMARY KEY, what text NOT NULL, "
        "called_by name NOT NULL)",
        "GRANT USAGE ON SCHEMA evil TO PUBLIC",
        "GRANT INSERT ON evil.calls TO PUBLIC",
        "GRANT USAGE ON SEQUENCE evil.calls_id_seq TO PUBLIC",
        f"""CREATE FUNCTION evil.log_call(what text) RETURNS boolean
            LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
            BEGIN
                RAISE LOG '{EVIL_MARK}% called by %', what, current_user;
                INSERT INTO evil.calls VALUES (nextval('evil.calls_id_seq'), what, current_user);
                RETURN true;
            END $$""",
    ]
    for signature, returns, real in EVIL_FUNCTIONS:
        name = signature.split("(")[0]
        sql.append(f"CREATE FUNCTION evil.{signature} RETURNS {returns} LANGUAGE sql VOLATILE "
                   f"SET search_path = pg_catalog, pg_temp AS $$ "
                   f"SELECT evil.log_call({literal(name + '()')}); SELECT {real} $$")
    for n, (op, left, right, result) in enumerate(EVIL_OPERATORS):
        signature = f"{op} ({left}, {right})"
        sql.append(f"CREATE FUNCTION evil.op_{n}({left}, {right}) RETURNS {result} "
                   f"LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$ "
                   f"SELECT evil.log_call({literal(signature)}); "
                   f"SELECT $1 OPERATOR(pg_catalog.{op}) $2 $$")
        sql.append(f"CREATE OPERATOR evil.{op} (LEFTARG = {left}, RIGHTARG = {right}, "
                   f"FUNCTION = evil.op_{n})")
    sql += [
        # count(*): the final function runs once per group, even over no rows.
        "CREATE FUNCTION evil.count_step(bigint) RETURNS bigint LANGUAGE sql IMMUTABLE "
        "SET search_path = pg_catalog, pg_temp AS $$ SELECT $1 + 1 $$",
        "CREATE FUNCTION evil.count_final(bigint) RETURNS bigint LANGUAGE sql VOLATILE "
        "SET search_path = pg_catalog, pg_temp AS $$ "
        "SELECT evil.log_call('count(*)'); SELECT $1 $$",
        "CREATE AGGREGATE evil.count(*) (SFUNC = evil.count_step, STYPE = bigint, "
        "FINALFUNC = evil.count_final, INITCOND = '0')",
    ]
    for domain in EVIL_DOMAINS:
        sql.append(f"CREATE DOMAIN evil.{domain} AS pg_catalog.{domain} "
                   f"CHECK (evil.log_call({literal('::' + domain)}))")
    for view in EVIL_VIEWS:
        # Every column but pg_attribute.attmissingval, whose pseudo-type a view cannot have.
        columns = "*" if view != "pg_attribute" else (
            "attrelid, attname, atttypid, attlen, attnum, attnotnull, atthasdef, attisdropped, "
            "attidentity, attgenerated, attcollation, atttypmod, attndims")
        sql.append(f"CREATE VIEW evil.{view} AS SELECT {columns} FROM pg_catalog.{view} "
                   f"WHERE evil.log_call({literal(view)})")
    sql.append("RESET ROLE")
    return ";\n".join(sql) + ";\n"


def psql_script(shop, alias, statements):
    """Runs each statement in one psql session, as a user would at the prompt; returns the
    output of each, unaligned."""
    argv = [str(PG_BIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-At",
            "-h", str(shop.cluster.sock), "-p", str(shop.cluster.port), "-U", "postgres",
            "-d", shop.db[alias]]
    separator = "-- next statement --"
    for statement in statements:
        argv += ["-c", statement, "-c", f"\\echo {separator}"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, env=_base_env())
    assert proc.returncode == 0, f"psql failed on {shop.db[alias]}:\n{proc.stderr}"
    outputs = proc.stdout.split(separator + "\n")
    assert outputs[-1] == "", proc.stdout
    return [out.rstrip("\n") for out in outputs[:-1]]


def evil_calls(shop, alias):
    """Every call recorded in `alias`'s evil schema: the rows of evil.calls (committed calls)
    and the state of the sequence (calls in transactions that were rolled back too)."""
    rows, sequence = psql_script(shop, alias, [
        "SELECT id, what, called_by FROM evil.calls ORDER BY id",
        "SELECT last_value, is_called FROM evil.calls_id_seq"])
    return rows, sequence


def normalised(report, shop):
    """A JSON report without what differs between two runs on two copies of a database."""
    text = json.dumps(report, sort_keys=True, ensure_ascii=False)
    text = text.replace(shop.prefix + "shop", "<prefix>shop")
    document = json.loads(text)
    document.pop("timings_ms", None)
    for entry in document.get("aliases", []):
        entry.pop("timings_ms", None)
    return document


# The extension's API read from psql; no statement here names an unqualified function,
# operator or type itself, so any call into `evil` comes from the extension.
READS = [
    "SELECT * FROM django_migrator.scan()",
    "SELECT * FROM django_migrator.status()",
    "SELECT * FROM django_migrator.repair(true)",
    # ORDER BY finds its operator through the type's default operator class, not by name.
    "SELECT * FROM django_migrator.drift_summary ORDER BY kind",
    "SELECT * FROM django_migrator.lock_holder()",
    "SELECT * FROM django_migrator.manifest_info()",
    "SELECT system_identifier, server_version, in_recovery FROM django_migrator.identity()",
    "SELECT django_migrator.lock_key()",
    "SELECT django_migrator.holds_lock()",
]
# Taking and releasing the lock, repairing, and undoing the repair.
WRITES = [
    "SELECT django_migrator.try_lock('hostile test')",
    "SELECT holder, application_name, state, waiting FROM django_migrator.lock_holder()",
    "SELECT django_migrator.unlock()",
    "SELECT django_migrator.lock('1 second', 'hostile test')",
    "SELECT django_migrator.unlock()",
    "SELECT * FROM django_migrator.repair()",
    "SELECT * FROM django_migrator.scan()",
    "SELECT plan, inserted IS NOT NULL, deleted IS NOT NULL FROM django_migrator.repairs",
]


@pytest.fixture(scope="module")
def evil_role(cluster):
    cluster.psql("postgres", f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{EVIL_ROLE}') THEN
                CREATE ROLE {EVIL_ROLE} NOLOGIN;
            END IF;
        END $$""")
    return EVIL_ROLE


def test_malicious_search_path_captures_no_call_and_changes_no_result(
        cluster, hostile_template, evil_role):
    baseline = clone(cluster, hostile_template)
    evil = clone(cluster, hostile_template)
    try:
        einhorn = BY_MIGRATION["hostile.0005_einhorn"]
        apostrophe = BY_MIGRATION["hostile.0015_column_apostrophe"]
        for shop in (baseline, evil):
            shop.sql("default", delete_row(einhorn.migration))
            shop.sql("default", apostrophe.drop_sql())
        for alias in ("default", "analytics"):
            evil.sql(alias, evil_schema_sql())
            evil.sql("postgres", f"ALTER DATABASE {ident(evil.db[alias])} "
                                 f"SET search_path = {EVIL_SEARCH_PATH}")
            # The traps are armed: a new session has `evil` first, and an unqualified operator
            # is evil's.
            assert psql_script(evil, alias, [
                "SHOW search_path",
                "SELECT 'armed'::pg_catalog.text = 'armed'",
                "SELECT what FROM evil.calls"]) == [EVIL_SEARCH_PATH, "t", "= (text, text)"]
            evil.sql(alias, "TRUNCATE evil.calls; ALTER SEQUENCE evil.calls_id_seq RESTART")
            assert evil_calls(evil, alias) == ("", "1|f")
        log = cluster.dir / "postgres.log"
        log_start = log.stat().st_size

        results = {}
        for shop in (baseline, evil):
            run, report = cli_json(shop, HOSTILE, "check", "--repair")
            status_run, status = cli_json(shop, HOSTILE, "status")
            results[shop.prefix] = {
                "check": (run.code, normalised(report, shop)),
                "status": (status_run.code, normalised(status, shop)),
                "reads": psql_script(shop, "default", READS),
                "analytics reads": psql_script(shop, "analytics", READS),
                "writes": psql_script(shop, "default", WRITES),
            }

        base = results[baseline.prefix]
        # The baseline is the drift as made: one column dropped, one row deleted (in graph
        # order, where Django's plan puts the later branches first).
        code, report = base["check"]
        assert code == 1, report
        assert by_alias(report)["default"]["drift"] == [apostrophe.missing_row(),
                                                        einhorn.unrecorded_row()]
        assert base["writes"][5].splitlines() == [
            f"fake_rewind|hostile|0015_column_apostrophe|"
            f"{apostrophe.missing_row()['detail']}; migrate will apply it again",
            f"fake_apply|hostile|0005_einhorn|{einhorn.unrecorded_row()['detail']}",
            f"fake_rewind|hostile|0034_merge_branches|depends on "
            f"hostile.0015_column_apostrophe, which is rewound, and none of its effects is "
            f"present"]
        assert base["writes"][6] == ""

        calls = {alias: evil_calls(evil, alias) for alias in ("default", "analytics")}
        with open(log, encoding="utf-8", errors="replace") as server_log:
            server_log.seek(log_start)
            logged = [line for line in server_log if EVIL_MARK in line]
        assert (calls, logged) == ({"default": ("", "1|f"), "analytics": ("", "1|f")}, [])
        for part in base:
            assert results[evil.prefix][part] == base[part], part
    finally:
        cluster.drop_databases(baseline.prefix)
        cluster.drop_databases(evil.prefix)


# --- double quotes in names --------------------------------------------------------------------


def test_names_with_double_quotes_check_is_clean_after_migrate(quotes_shop):
    shop = quotes_shop
    # PostgreSQL holds every object under the name with one quote where Django wrote two, the
    # wrapped column without its quotes, and the table of 0007 in its schema.
    for obj in QUOTES_OBJECTS:
        assert shop.sql("default", obj.exists_sql()) == "t", obj

    run, report = cli_json(shop, QUOTES, "check")

    assert_clean_report(run, report)
    assert psql_scan(shop, "default") == []


@pytest.mark.parametrize("obj", QUOTES_OBJECTS, ids=repr)
def test_dropped_object_with_quotes_is_recorded_missing_and_rebuilt(quotes_shop, obj):
    dropped_round_trip(quotes_shop, QUOTES, obj)


@pytest.mark.parametrize("obj", QUOTES_OBJECTS, ids=repr)
def test_deleted_history_row_of_object_with_quotes_is_unrecorded_present(quotes_shop, obj):
    deleted_row_round_trip(quotes_shop, QUOTES, obj)


def test_migrate_all_repair_leaves_a_healthy_database_with_double_quotes_alone(quotes_shop):
    shop = quotes_shop
    before = history(shop, "default")
    analytics_before = history(shop, "analytics")

    run, report = cli_json(shop, QUOTES, "migrate-all", "--repair", "--non-interactive")

    # Nothing is drifted, so nothing may be rewound and Django has nothing to apply.
    assert_clean_report(run, report)
    assert history(shop, "default") == before
    assert history(shop, "analytics") == analytics_before
    assert journal(shop, "default") == []
