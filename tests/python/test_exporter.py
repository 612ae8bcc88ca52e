"""Runs the exporter on the bundled example project exactly as the CLI does, and checks the export.

Uses the interpreter running pytest (so `.venvs/<other>/bin/python -m pytest tests/python` checks
another Django version). No database server is needed: the exporter must never connect.
"""

import json
import os
import platform
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import django
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop"
EXPORTER = ROOT / "python" / "django_migrator" / "exporter.py"
BOOTSTRAP = (
    "import os, runpy; runpy.run_path(os.environ['DJANGO_MIGRATOR_EXPORTER'], run_name='__main__')"
)
ALIASES = ["default", "analytics", "replica"]


def run_export(out_dir, **env):
    """Run the exporter in a fresh process; return (completed process, export or None)."""
    out = Path(out_dir) / "export.json"
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHOP_", "DJANGO_")) and k != "PYTHONPATH"
    }
    full_env.update(
        PYTHONDONTWRITEBYTECODE="1",
        DJANGO_MIGRATOR_EXPORTER=str(EXPORTER),
        DJANGO_MIGRATOR_EXPORT_PATH=str(out),
        # Nothing listens there: any connection attempt would fail the export.
        SHOP_PGHOST=str(Path(out_dir) / "no-such-socket-dir"),
    )
    full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", BOOTSTRAP],
        cwd=SHOP,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    doc = json.loads(out.read_text()) if out.exists() else None
    return proc, doc


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("export")
    proc, doc = run_export(out_dir)
    assert proc.returncode == 0, proc.stderr
    return out_dir, proc, doc


@pytest.fixture(scope="module")
def export_doc(exported):
    return exported[2]


def alias_entry(doc, alias):
    return next(a for a in doc["aliases"] if a["alias"] == alias)


def migration(doc, alias, app, name):
    migrations = alias_entry(doc, alias)["manifest"]["migrations"]
    return next(m for m in migrations if (m["app"], m["name"]) == (app, name))


def app_effects(doc, alias, app):
    migrations = alias_entry(doc, alias)["manifest"]["migrations"]
    return [e for m in migrations if m["app"] == app for e in m["effects"]]


def test_success_is_silent_and_file_is_private_compact_json(exported):
    out_dir, proc, _ = exported
    assert proc.stdout == ""
    assert proc.stderr == ""
    path = out_dir / "export.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text == json.dumps(json.loads(text), separators=(",", ":"))


def test_versions(export_doc):
    assert export_doc["export_version"] == 1
    assert export_doc["django_version"] == django.get_version()
    assert export_doc["python_version"] == platform.python_version()
    for entry in export_doc["aliases"]:
        manifest = entry["manifest"]
        assert manifest["format_version"] == 1
        assert manifest["alias"] == entry["alias"]
        assert manifest["django_version"] == django.get_version()


def test_aliases_follow_databases_order(export_doc):
    assert [a["alias"] for a in export_doc["aliases"]] == ALIASES
    assert all(a["vendor"] == "postgresql" for a in export_doc["aliases"])
    assert alias_entry(export_doc, "replica")["test"] == {"mirror": "default", "name": None}
    assert alias_entry(export_doc, "default")["test"] == {"mirror": None, "name": None}


def test_conninfo_without_password(export_doc, exported):
    out_dir = exported[0]
    default = alias_entry(export_doc, "default")["conninfo"]
    assert default["dbname"] == "shop"
    assert default["user"] == "postgres"
    assert default["port"] == "5432"
    assert default["host"] == str(out_dir / "no-such-socket-dir")
    assert "password" not in default
    assert alias_entry(export_doc, "analytics")["conninfo"]["dbname"] == "shop_analytics"
    assert alias_entry(export_doc, "replica")["conninfo"]["dbname"] == "shop"
    for entry in export_doc["aliases"]:
        assert all(isinstance(v, str) and v for v in entry["conninfo"].values())


def test_password_and_prefix_reach_conninfo_only(tmp_path):
    proc, doc = run_export(
        tmp_path, SHOP_PGPASSWORD="s3cr3t-pw", SHOP_DB_PREFIX="t1_", SHOP_PGPORT="6543"
    )
    assert proc.returncode == 0, proc.stderr
    default = alias_entry(doc, "default")
    assert default["conninfo"]["password"] == "s3cr3t-pw"
    assert default["conninfo"]["dbname"] == "t1_shop"
    assert default["conninfo"]["port"] == "6543"
    assert alias_entry(doc, "analytics")["conninfo"]["dbname"] == "t1_shop_analytics"
    for entry in doc["aliases"]:
        assert "s3cr3t-pw" not in json.dumps(entry["manifest"])


def test_router_counts(export_doc):
    # Copies: the document is shared by every test of the module.
    default = dict(alias_entry(export_doc, "default")["router"])
    analytics = dict(alias_entry(export_doc, "analytics")["router"])
    replica = dict(alias_entry(export_doc, "replica")["router"])
    # admin, auth (3), contenttypes, sessions, taggit (2), catalog (2), metrics (1)
    apps = ["admin", "auth", "catalog", "contenttypes", "metrics", "sessions", "taggit"]
    assert default.pop("apps") == {app: app != "metrics" for app in apps}
    assert analytics.pop("apps") == {app: app == "metrics" for app in apps}
    assert replica.pop("apps") == {app: False for app in apps}
    assert default == {"models": 11, "migrate_models": 10, "write_models": 10}
    assert analytics == {"models": 11, "migrate_models": 1, "write_models": 1}
    assert replica == {"models": 11, "migrate_models": 0, "write_models": 0}


def test_contenttypes_remove_name(export_doc):
    m = migration(export_doc, "default", "contenttypes", "0002_remove_content_type_name")
    assert m["dependencies"] == [["contenttypes", "0001_initial"]]
    assert m["replaces"] == []
    assert m["atomic"] is True
    assert {
        "kind": "drop_column",
        "op": "RemoveField",
        "table": {"schema": None, "name": "django_content_type"},
        "column": "name",
    } in m["effects"]


def test_auth_initial_creates_m2m_through_table(export_doc):
    m = migration(export_doc, "default", "auth", "0001_initial")
    tables = {e["table"]["name"]: e for e in m["effects"] if e["kind"] == "create_table"}
    assert tables["auth_user_groups"]["columns"] == ["id", "user_id", "group_id"]
    assert tables["auth_user_groups"]["op"] == "CreateModel"
    assert tables["auth_user_groups"]["table"]["schema"] is None
    assert "auth_user_user_permissions" in tables
    assert "auth_group_permissions" in tables
    assert tables["auth_user"]["columns"][:2] == ["id", "password"]


def test_metrics_only_on_analytics(export_doc):
    effects = app_effects(export_doc, "analytics", "metrics")
    assert {"kind": "create_table", "op": "CreateModel",
            "table": {"schema": None, "name": "metrics_pageview"},
            "columns": ["id", "path", "viewed_at"]} in effects
    assert {"kind": "add_column", "op": "AddField",
            "table": {"schema": None, "name": "metrics_pageview"},
            "column": "referrer"} in effects
    assert app_effects(export_doc, "default", "metrics") == []
    assert app_effects(export_doc, "replica", "metrics") == []


def test_catalog_only_on_default(export_doc):
    assert app_effects(export_doc, "analytics", "catalog") == []
    assert app_effects(export_doc, "replica", "catalog") == []
    for app in ("auth", "contenttypes", "admin", "sessions", "taggit"):
        assert app_effects(export_doc, "replica", app) == []
        assert app_effects(export_doc, "analytics", app) == []

    product = {"schema": None, "name": "catalog_product"}
    initial = migration(export_doc, "default", "catalog", "0001_initial")["effects"]
    assert [e["table"]["name"] for e in initial] == [
        "catalog_category", "catalog_product", "catalog_product_related_categories"]
    assert initial[1]["columns"] == ["id", "name", "price", "category_id"]

    def effects(name):
        return migration(export_doc, "default", "catalog", name)["effects"]

    assert effects("0002_product_sku") == [
        {"kind": "add_column", "op": "AddField", "table": product, "column": "sku"}]
    assert effects("0003_rename_price_unit_price") == [
        {"kind": "rename_column", "op": "RenameField", "table": product,
         "old": "price", "new": "unit_price"}]
    assert effects("0004_product_cat_price_index") == [
        {"kind": "add_index", "op": "AddIndex", "table": product,
         "name": "catalog_product_cat_price", "columns": ["category_id", "unit_price"]}]


def test_run_python_is_opaque_only_where_routed(export_doc):
    expected = [{"kind": "opaque", "op": "RunPython", "reason": "RunPython"}]
    assert migration(export_doc, "default", "catalog", "0005_fill_sku")["effects"] == expected
    assert migration(export_doc, "analytics", "catalog", "0005_fill_sku")["effects"] == []
    assert migration(export_doc, "replica", "catalog", "0005_fill_sku")["effects"] == []


def test_operation_needing_the_database_is_opaque(export_doc):
    # taggit's RenameIndex(old_fields=...) has to look the unnamed index up in the catalog.
    m = migration(export_doc, "default", "taggit",
                  "0006_rename_taggeditem_content_type_object_id_taggit_tagg_content_8fc721_idx")
    assert [e["kind"] for e in m["effects"]] == ["opaque"]
    assert m["effects"][0]["op"] == "RenameIndex"
    assert "database access is blocked" in m["effects"][0]["reason"]


def test_plan_order_and_same_migrations_on_every_alias(export_doc):
    lists = [alias_entry(export_doc, a)["manifest"]["migrations"] for a in ALIASES]
    keys = [[(m["app"], m["name"]) for m in ms] for ms in lists]
    assert keys[0] == keys[1] == keys[2]
    for ms in lists[1:]:
        assert [{k: v for k, v in m.items() if k != "effects"} for m in ms] == [
            {k: v for k, v in m.items() if k != "effects"} for m in lists[0]]
    position = {key: i for i, key in enumerate(keys[0])}
    assert len(position) == len(keys[0])
    for m in lists[0]:
        for dep in m["dependencies"]:
            assert position[tuple(dep)] < position[(m["app"], m["name"])]
    assert ("catalog", "0005_fill_sku") in position
    assert ("metrics", "0002_pageview_referrer") in position
    assert ("sessions", "0001_initial") in position


def test_noisy_project_gives_the_same_export(tmp_path, exported):
    out_dir, _, baseline = exported
    # Same host as the baseline so that the two documents can be compared whole.
    proc, doc = run_export(tmp_path, SHOP_NOISY="1",
                           SHOP_PGHOST=str(out_dir / "no-such-socket-dir"))
    assert proc.returncode == 0, proc.stderr
    assert "noise on stdout" in proc.stdout
    assert doc == baseline


@pytest.mark.parametrize(
    "settings_text, error",
    [
        ("from shop.settings import *\nINSTALLED_APPS = [\n", "SyntaxError"),
        ("from shop.settings import *\nINSTALLED_APPS = INSTALLED_APPS + ['no_such_app']\n",
         "ModuleNotFoundError"),
    ],
    ids=["syntax-error", "missing-app"],
)
def test_django_start_failure_exits_non_zero(tmp_path, settings_text, error):
    (tmp_path / "broken_settings.py").write_text(settings_text)
    proc, doc = run_export(
        tmp_path,
        DJANGO_SETTINGS_MODULE="broken_settings",
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(SHOP)]),
    )
    assert proc.returncode != 0
    assert error in proc.stderr
    assert doc is None


def test_export_failure_exits_3_with_traceback(tmp_path):
    proc, _ = run_export(tmp_path, DJANGO_MIGRATOR_EXPORT_PATH=str(tmp_path / "missing" / "x.json"))
    assert proc.returncode == 3
    assert "Traceback" in proc.stderr and "FileNotFoundError" in proc.stderr
    assert proc.stdout == ""


def test_never_connects_even_when_a_server_socket_exists(tmp_path):
    # A listening socket where libpq would look; any connection attempt is counted and cut off.
    sock_dir = tempfile.mkdtemp(prefix="djm-", dir="/tmp")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            accepted.append(conn)
            conn.close()

    try:
        listener.bind(os.path.join(sock_dir, ".s.PGSQL.5432"))
        listener.listen(16)
        listener.settimeout(0.1)
        server = threading.Thread(target=serve, daemon=True)
        server.start()
        proc, doc = run_export(tmp_path, SHOP_PGHOST=sock_dir)
        stop.set()
        server.join()
        assert proc.returncode == 0, proc.stderr
        assert alias_entry(doc, "default")["conninfo"]["host"] == sock_dir
        assert accepted == []
    finally:
        stop.set()
        listener.close()
        for name in os.listdir(sock_dir):
            os.unlink(os.path.join(sock_dir, name))
        os.rmdir(sock_dir)


LAUNCH = (
    "import os, runpy; runpy.run_path(os.environ['DJANGO_MIGRATOR_EXPORTER'], "
    "run_name='django_migrator_launch')"
)


def test_launched_through_the_exporter_it_records_what_django_read(tmp_path):
    """As the CLI's session starts it: the export then lists the inputs the project cache
    compares (files read, directories listed, environment variables looked up)."""
    private = tmp_path / "private"
    private.mkdir()
    exporter = private / "exporter.py"
    exporter.write_text(EXPORTER.read_text())
    out = private / "export.json"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOP_", "DJANGO_")) and k != "PYTHONPATH"}
    env.update(DJANGO_MIGRATOR_EXPORTER=str(exporter), DJANGO_MIGRATOR_EXPORT_PATH=str(out),
               SHOP_PGHOST=str(tmp_path / "no-such-socket-dir"))
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCH, str(SHOP / "manage.py"), "shell", "-v", "0",
         "-c", BOOTSTRAP],
        cwd=SHOP, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    inputs = json.loads(out.read_text())["inputs"]

    files = inputs["files"]
    for source in (SHOP / "manage.py", SHOP / "shop" / "settings.py",
                   SHOP / "catalog" / "models.py",
                   SHOP / "catalog" / "migrations" / "0002_product_sku.py"):
        st = source.stat()
        assert files[str(source)] == [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
    # Sources, never bytecode; nothing from the CLI's private directory.
    assert not [path for path in files if path.endswith(".pyc") and
                Path(path.replace("__pycache__/", "").rsplit(".", 2)[0] + ".py").exists()]
    assert not [path for path in files if path.startswith(str(private))]
    # Migration files are found by listing their directory: a new file changes its stat.
    assert str(SHOP / "catalog" / "migrations") in inputs["dirs"]
    for name in ("DJANGO_SETTINGS_MODULE", "SHOP_DB_PREFIX", "SHOP_PGHOST", "SHOP_PGPASSWORD"):
        assert name in inputs["env"], name
    assert inputs["whole_env"] is False


def test_without_the_launcher_the_export_has_no_inputs(export_doc):
    assert "inputs" not in export_doc


@pytest.mark.parametrize("name, parts", [
    ("plain", ["plain"]),
    ("Mixed Case", ["Mixed Case"]),
    ('say ""cheese""', ['say "cheese"']),
    ('"Wrapped Column"', ["Wrapped Column"]),
    ('Anderes Schema"."Tabelle', ["Anderes Schema", "Tabelle"]),
    ('"s"."t"', ["s", "t"]),
    ('a"b', None),
    ('"', None),
])
def test_names_are_read_as_postgresql_reads_what_quote_name_sends(name, parts):
    sys.path.insert(0, str(EXPORTER.parent))
    try:
        import exporter
    finally:
        sys.path.pop(0)
    assert exporter.identifiers(name) == parts
    table = exporter.table_ref(name)
    if parts is None:
        assert table == {"schema": None, "name": name}
    else:
        assert table == {"schema": parts[-2] if len(parts) > 1 else None, "name": parts[-1]}
