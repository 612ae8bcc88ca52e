"""The extension's upgrade path, the CLI/extension version check, and who may do what.

- A database created at the previous version (0.1.0, whose install script `make build` installs
  next to the current one) with a journal written by that version is updated with `ALTER
  EXTENSION django_migrator UPDATE` (through `django-migrator install`): the journal, the stored
  manifest and the history survive, the pre-update repair can still be undone, and the objects
  are exactly those of a fresh install of the current version.
- The extension is trusted: the owner of a database (not a superuser) installs it and deploys.
- A role given the grants the README documents can deploy; a monitoring role can read and
  nothing more.
"""

import json
import secrets

import psycopg
import pytest

CURRENT = "0.2.0"
PREVIOUS = "0.1.0"
ROW = ("catalog", "0002_product_sku")

# Every member object of the extension with what defines it: function language, body, settings,
# security, volatility, strictness, privileges and signature; relation kind, privileges, columns
# and view definition.
FINGERPRINT = """
SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS obj,
       CASE d.classid
         WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN (
           SELECT pg_catalog.concat_ws(' | ', l.lanname, p.prosrc, p.proconfig::text, p.prosecdef,
                    p.provolatile, p.proisstrict, p.proparallel, p.proacl::text,
                    pg_catalog.pg_get_function_arguments(p.oid),
                    pg_catalog.pg_get_function_result(p.oid),
                    CASE WHEN p.prokind = 'f' THEN pg_catalog.pg_get_functiondef(p.oid) END)
             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid = p.prolang
            WHERE p.oid = d.objid)
         WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN (
           SELECT pg_catalog.concat_ws(' | ', c.relkind, c.relacl::text,
                    (SELECT pg_catalog.string_agg(a.attname || ':'
                              || pg_catalog.format_type(a.atttypid, a.atttypmod) || ':'
                              || a.attnotnull, ',' ORDER BY a.attnum)
                       FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                    CASE WHEN c.relkind = 'v' THEN pg_catalog.pg_get_viewdef(c.oid) END)
             FROM pg_catalog.pg_class c WHERE c.oid = d.objid)
         ELSE '' END AS shape
  FROM pg_catalog.pg_depend d
 WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
   AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'django_migrator')
   AND d.deptype = 'e'
 ORDER BY 1
"""


def connect(shop, alias_or_db, user="postgres"):
    dbname = shop.db.get(alias_or_db, alias_or_db)
    return psycopg.connect(host=str(shop.cluster.sock), port=shop.cluster.port, user=user,
                           dbname=dbname, autocommit=True)


def query(shop, alias_or_db, sql, params=(), user="postgres"):
    with connect(shop, alias_or_db, user) as conn:
        return conn.execute(sql, params).fetchall()


def by_alias(report):
    return {entry["alias"]: entry for entry in report["aliases"]}


def manifest_of(shop, alias):
    run = shop.cli("manifest", "--database", alias)
    assert run.code == 0, str(run)
    return json.loads(run.out)


def journal(shop, alias):
    return query(shop, alias, "SELECT id, role, alias, manifest_digest, plan, inserted, deleted, "
                              "undone_at FROM django_migrator.repairs ORDER BY id")


def test_update_from_the_previous_version_keeps_the_journal_and_equals_a_fresh_install(
        migrated_shop):
    shop = migrated_shop
    # The same migrated database, but with the extension as the previous release installed it.
    shop.sql("default", "DROP EXTENSION django_migrator")
    shop.sql("default", f"CREATE EXTENSION django_migrator VERSION '{PREVIOUS}'")
    shop.sql("default", f"DELETE FROM django_migrations WHERE app = '{ROW[0]}' AND name = '{ROW[1]}'")
    manifest = manifest_of(shop, "default")
    # A repair written by the previous version, through its own functions.
    with connect(shop, "default") as conn:
        digest = conn.execute("SELECT django_migrator.load_manifest(%s::jsonb)",
                              (json.dumps(manifest),)).fetchone()[0]
        steps = conn.execute("SELECT action, app, name FROM django_migrator.repair()").fetchall()
    assert steps == [("fake_apply", *ROW)], steps
    before_journal = journal(shop, "default")
    assert len(before_journal) == 1 and before_journal[0][3] == digest, before_journal
    before_history = shop.recorded("default")

    # This CLI refuses to work with the old SQL objects, and says how to fix it.
    run, report = shop.cli_json("check", "--skip-makemigrations", "--database", "default")
    assert run.code == 1, str(run)
    assert by_alias(report)["default"]["errors"] == [
        f'the django_migrator extension in the database of alias "default" is version '
        f"{PREVIOUS}, this django-migrator needs {CURRENT}: run `django-migrator install "
        f"--database default` (ALTER EXTENSION django_migrator UPDATE)"
    ], report

    run, report = shop.cli_json("install", "--database", "default")
    assert run.code == 0, str(run)
    assert by_alias(report)["default"]["warnings"] == [
        f"updated django_migrator {PREVIOUS} → {CURRENT}"], report

    assert shop.sql("default", "SELECT extversion FROM pg_extension "
                               "WHERE extname = 'django_migrator'") == CURRENT
    assert journal(shop, "default") == before_journal
    assert query(shop, "default", "SELECT digest FROM django_migrator.manifest_info()") == [
        (digest,)]
    assert shop.recorded("default") == before_history
    # Exactly the objects, definitions and privileges of a fresh install (analytics has one).
    assert query(shop, "default", FINGERPRINT) == query(shop, "analytics", FINGERPRINT)

    # The history repaired before the update is clean after it, and its repair can be undone.
    run, report = shop.cli_json("check", "--skip-makemigrations")
    assert run.code == 0, str(run)
    undone = query(shop, "default", "SELECT action, app, name FROM django_migrator.undo_repair(%s)",
                   (before_journal[0][0],))
    assert undone == [("delete", *ROW)], undone
    assert f"{ROW[0]}.{ROW[1]}" not in shop.recorded("default")
    kinds = query(shop, "default", "SELECT app, name, kind FROM django_migrator.scan()")
    assert kinds == [(*ROW, "unrecorded_present")], kinds


def test_an_extension_newer_than_the_cli_asks_for_a_newer_cli(migrated_shop):
    shop = migrated_shop
    shop.sql("default", "UPDATE pg_catalog.pg_extension SET extversion = '99.0.0' "
                        "WHERE extname = 'django_migrator'")

    run, report = shop.cli_json("check", "--skip-makemigrations")

    assert run.code == 1, str(run)
    aliases = by_alias(report)
    assert aliases["default"]["status"] == "failed"
    assert aliases["default"]["errors"] == [
        'the django_migrator extension in the database of alias "default" is version 99.0.0, '
        f"newer than this django-migrator ({CURRENT}): install django-migrator 99.0.0"]
    assert aliases["analytics"]["status"] == "clean", aliases["analytics"]


@pytest.fixture
def owned_by(shop):
    """Makes a non-superuser role own the test's databases, without the extension installed."""
    role = f"{shop.prefix}owner"
    shop.sql("postgres", f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
    for alias in ("default", "analytics"):
        shop.sql(alias, "DROP EXTENSION django_migrator")
        shop.sql("postgres", f'ALTER DATABASE "{shop.db[alias]}" OWNER TO "{role}"')
    try:
        yield role
    finally:
        shop.cluster.drop_databases(shop.prefix)
        shop.sql("postgres", f'DROP ROLE "{role}"')


def test_a_database_owner_installs_the_extension_and_deploys_without_superuser(shop, owned_by):
    env = {"SHOP_PGUSER": owned_by}

    run, report = shop.cli_json("install", env=env)
    assert run.code == 0, str(run)
    for alias in ("default", "analytics"):
        assert by_alias(report)[alias]["warnings"] == [f"installed django_migrator {CURRENT}"]
        assert shop.sql(alias, "SELECT r.rolname FROM pg_extension e JOIN pg_roles r "
                               "ON r.oid = e.extowner WHERE e.extname = 'django_migrator'"
                        ) == owned_by

    run, report = shop.cli_json("migrate-all", "--non-interactive", env=env)
    assert run.code == 0, str(run)
    assert report["all_clean"] is True

    shop.sql("default", f"DELETE FROM django_migrations WHERE app = '{ROW[0]}' AND name = '{ROW[1]}'")
    run, report = shop.cli_json("migrate-all", "--repair", "--non-interactive", env=env)
    assert run.code == 0, str(run)
    assert [(r["action"], r["app"], r["name"]) for r in by_alias(report)["default"]["repairs"]] == [
        ("fake_apply", *ROW)]
    assert query(shop, "default", "SELECT role FROM django_migrator.repairs") == [(owned_by,)]


GRANTS = """
GRANT EXECUTE ON FUNCTION django_migrator.load_manifest(jsonb),
                          django_migrator._load_manifest(text, text[], text),
                          django_migrator.repair(boolean),
                          django_migrator.record_companions(boolean),
                          django_migrator.undo_repair(bigint),
                          django_migrator._journal_append(text, text, text, jsonb, jsonb, jsonb),
                          django_migrator._journal_mark_undone(bigint),
                          django_migrator._label_lock(text)
      TO {role};
GRANT INSERT, UPDATE ON django_migrator.manifest TO {role};
"""


@pytest.fixture
def roles(cluster):
    """Two login roles without privileges. Request it before the databases' fixture, so that
    the databases (and the grants in them) are dropped before the roles."""
    token = secrets.token_hex(3)
    names = {"deployer": f"deployer_{token}", "monitor": f"monitor_{token}"}
    for name in names.values():
        cluster.psql("postgres", f'CREATE ROLE "{name}" LOGIN NOSUPERUSER')
    yield names
    for name in names.values():
        cluster.psql("postgres", f'DROP ROLE "{name}"')


def test_the_documented_grants_let_an_application_role_deploy(roles, shop):
    deployer = roles["deployer"]
    for alias in ("default", "analytics"):
        shop.sql(alias, f'GRANT CREATE, USAGE ON SCHEMA public TO "{deployer}";'
                        + GRANTS.format(role=f'"{deployer}"'))

    run, report = shop.cli_json("migrate-all", "--non-interactive", env={"SHOP_PGUSER": deployer})

    assert run.code == 0, str(run)
    assert report["all_clean"] is True
    assert query(shop, "default", "SELECT loaded_by FROM django_migrator.manifest") == [(deployer,)]


WRITERS = [
    "SELECT django_migrator.load_manifest('{}'::jsonb)",
    "SELECT django_migrator._load_manifest('{}', ARRAY['public'], 'public')",
    "SELECT * FROM django_migrator.repair()",
    "SELECT * FROM django_migrator.repair(true)",
    "SELECT * FROM django_migrator.record_companions()",
    "SELECT * FROM django_migrator.undo_repair(1)",
    "SELECT django_migrator._journal_append('a', 'b', 'c', '[]', '[]', '[]')",
    "SELECT django_migrator._journal_mark_undone(1)",
    "SELECT django_migrator._label_lock('x')",
    "UPDATE django_migrator.manifest SET alias = 'x'",
    "DELETE FROM django_migrator.repair_journal",
    "INSERT INTO django_migrator.lock_labels VALUES (1, now(), 'x', now())",
]


def test_a_monitoring_role_reads_drift_and_cannot_change_anything(roles, migrated_shop):
    shop = migrated_shop
    monitor = roles["monitor"]
    run = shop.cli("migrate-all", "--skip-makemigrations", "--non-interactive")  # stores it
    assert run.code == 0, str(run)
    shop.sql("default", f"DELETE FROM django_migrations WHERE app = '{ROW[0]}' AND name = '{ROW[1]}'")
    shop.sql("default", f'GRANT SELECT ON django_migrations TO "{monitor}"')

    assert query(shop, "default", "SELECT app, name, kind FROM django_migrator.scan()",
                 user=monitor) == [(*ROW, "unrecorded_present")]
    summary = dict(query(shop, "default", "SELECT kind, count FROM django_migrator.drift_summary",
                         user=monitor))
    assert summary["unrecorded_present"] == 1 and sum(summary.values()) == 1, summary
    statuses = query(shop, "default", "SELECT app, name, state FROM django_migrator.status() "
                                      "WHERE app = %s AND name = %s", ROW, user=monitor)
    assert len(statuses) == 1, statuses

    history = shop.recorded("default")
    manifest = query(shop, "default", "SELECT digest, loaded_at FROM django_migrator.manifest")
    for statement in WRITERS:
        with connect(shop, "default", user=monitor) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    assert shop.recorded("default") == history
    assert query(shop, "default", "SELECT digest, loaded_at FROM django_migrator.manifest") == manifest
    assert query(shop, "default", "SELECT count(*) FROM django_migrator.repairs") == [(0,)]
