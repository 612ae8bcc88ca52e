"""Accuracy of `django_migrator.scan()` on a real project with long migration histories.

The project in `tests/accuracy/project` has two aliases: `other` gets django_celery_beat and
axes, `default` everything else (Django's contrib apps, oauth2_provider, taggit, djmoney's
exchange, reversion and the fixture app `opsapp`, whose migrations use every kind of operation).
Both are migrated by plain Django, each alias's manifest is loaded, and then every probe damages
one thing inside a transaction, scans, and rolls back:

- clean: nothing damaged; the scan must be empty;
- history: one row of `django_migrations` deleted;
- table: one table the manifest creates dropped (CASCADE);
- column: one non-key column of those tables dropped (CASCADE).

What each probe should report is computed here, independently of the extension, by a plain walk
over the manifest's effects in order (`History`). The figures and every result that is not exact
go to docs/accuracy.md, rewritten on each run.
"""

import collections
import itertools
import json
import os
import secrets
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = ROOT / "scripts" / "cluster.sh"
BIN = Path(os.environ.get("DJANGO_MIGRATOR_BIN", ROOT / "target" / "release" / "django-migrator"))
# Relative to ROOT, the working directory of every command.
MANAGE = "tests/accuracy/project/manage.py"
PYTHON = ".venv/bin/python"
REPORT = ROOT / "docs" / "accuracy.md"
ALIASES = ("default", "other")
TIMEOUT = 300

# Effect kinds the scan can check against the catalog. A drop_table counts for its migration
# only when the table is known to have existed (the migration that last named it is recorded,
# which holds in every probe here) and is absent. An alter_unique_together or
# alter_index_together that adds an entry is checkable too: the index over its columns.
CHECKABLE = {
    "create_table", "add_column", "rename_column", "rename_table", "add_index",
    "add_constraint", "rename_index", "drop_column", "drop_index", "drop_constraint",
    "drop_table",
}
# A dropped column, table, index or constraint leaves a migration recorded and (partly) missing.
MISSING_KINDS = {"recorded_missing", "half_applied"}
# Distributions whose migrations the project runs, for the report's header.
DISTRIBUTIONS = ("Django", "django-celery-beat", "django-oauth-toolkit", "django-taggit",
                 "django-money", "django-reversion", "django-axes")
# PostgreSQL keeps the first NAMEDATALEN - 1 bytes of an identifier.
MAX_IDENTIFIER_BYTES = 63


# ---------------------------------------------------------------------------------------------
# The expectation: an independent replay of the manifest.

def physical(name):
    """`name` as PostgreSQL stores it: cut to 63 bytes, on a character boundary."""
    data = name.encode()
    if len(data) <= MAX_IDENTIFIER_BYTES:
        return name
    data = data[:MAX_IDENTIFIER_BYTES]
    while True:
        try:
            return data.decode()
        except UnicodeDecodeError:
            data = data[:-1]


def table_key(ref):
    schema = ref.get("schema")
    return (physical(schema) if schema else None, physical(ref["name"]))


def label(key):
    return f"{key[0]}.{key[1]}"


def show_table(key):
    return key[1] if key[0] is None else f"{key[0]}.{key[1]}"


class ColumnState:
    """One column through history; `owner` gave it its current name."""

    def __init__(self, owner):
        self.owner = owner
        self.alive = True


class TableState:
    """One table through history: its current name and who gave each of its names."""

    def __init__(self, key, owner, created):
        self.key = key
        # The migration that gave the table its current name (create or latest rename).
        self.owner = owner
        self.created = created
        self.alive = True
        self.columns = {}
        # Indexes and constraints share one namespace per table.
        self.named = {}
        # unique_together / index_together entries: (unique, column identities) -> owner.
        self.sets = {}

    def column(self, name):
        state = self.columns.get(name)
        if state is None:
            # A column no effect created (made by RunSQL, or outside the migrations).
            state = self.columns[name] = ColumnState(None)
        return state

    def drop_column(self, name):
        state = self.columns.pop(name, None)
        if state is not None:
            state.alive = False
            # PostgreSQL drops an index with any of its columns.
            self.sets = {key: owner for key, owner in self.sets.items()
                         if state not in key[1]}

    def sets_with(self, name):
        state = self.columns.get(name)
        return {owner for (_, columns), owner in self.sets.items() if state in columns}


class History:
    """Walks the effects in order and keeps, for every name, the migration that gave it.

    A migration has evidence on an alias when something it did is still visible at the end of
    history: a table, column, index or constraint that still carries the name it gave, a
    unique_together or index_together entry it added that nothing removed (its columns
    followed through renames), or a column, index or constraint it dropped whose name nothing
    took again, on a table that still exists. An effect whose object a later migration renamed
    or dropped is superseded: the later migration owns that evidence.
    """

    def __init__(self, manifest):
        self.order = [(m["app"], m["name"]) for m in manifest["migrations"]]
        self.replaces = {(m["app"], m["name"]): [tuple(r) for r in m["replaces"]]
                         for m in manifest["migrations"]}
        self.dependents = collections.defaultdict(set)
        for m in manifest["migrations"]:
            for dep in m["dependencies"]:
                self.dependents[tuple(dep)].add((m["app"], m["name"]))
        self.tables = []
        self.current = {}
        self.presence = collections.defaultdict(list)
        self.absence = collections.defaultdict(list)
        self.table_drops = collections.defaultdict(list)
        self.checkable = set()
        for m in manifest["migrations"]:
            for effect in m["effects"]:
                self._apply((m["app"], m["name"]), effect)

    def _table(self, ref):
        key = table_key(ref)
        table = self.current.get(key)
        if table is None:
            # A table no migration created (unmanaged, or made by RunSQL).
            table = TableState(key, None, created=False)
            self.tables.append(table)
            self.current[key] = table
        return table

    def _add_column(self, mig, table, name):
        table.drop_column(name)
        state = table.columns[name] = ColumnState(mig)
        self.presence[mig].append((table, "column", state))

    def _apply(self, mig, effect):
        kind = effect["kind"]
        if kind in CHECKABLE:
            self.checkable.add(mig)
        if kind == "create_table":
            table = TableState(table_key(effect["table"]), mig, created=True)
            self.tables.append(table)
            self.current[table.key] = table
            self.presence[mig].append((table, "table", None))
            for column in effect["columns"]:
                self._add_column(mig, table, physical(column))
        elif kind == "rename_table":
            table = self._table(effect["old"])
            del self.current[table.key]
            table.key = table_key(effect["new"])
            table.owner = mig
            self.current[table.key] = table
            self.presence[mig].append((table, "table", None))
        elif kind == "drop_table":
            table = self._table(effect["table"])
            table.alive = False
            if table.owner is not None:
                self.table_drops[mig].append(table.key)
            del self.current[table.key]
        elif kind == "add_column":
            self._add_column(mig, self._table(effect["table"]), physical(effect["column"]))
        elif kind == "drop_column":
            table, name = self._table(effect["table"]), physical(effect["column"])
            table.drop_column(name)
            self.absence[mig].append((table, "column", name))
        elif kind == "rename_column":
            table = self._table(effect["table"])
            state = table.column(physical(effect["old"]))
            del table.columns[physical(effect["old"])]
            state.owner = mig
            table.columns[physical(effect["new"])] = state
            self.presence[mig].append((table, "column", state))
        elif kind in ("add_index", "add_constraint"):
            table, name = self._table(effect["table"]), physical(effect["name"])
            table.named[name] = mig
            self.presence[mig].append((table, "named", name))
        elif kind in ("drop_index", "drop_constraint"):
            table, name = self._table(effect["table"]), physical(effect["name"])
            table.named.pop(name, None)
            self.absence[mig].append((table, "named", name))
        elif kind == "rename_index":
            table = self._table(effect["table"])
            table.named.pop(physical(effect["old"]), None)
            table.named[physical(effect["new"])] = mig
            self.presence[mig].append((table, "named", physical(effect["new"])))
        elif kind in ("alter_unique_together", "alter_index_together"):
            table = self._table(effect["table"])
            unique = kind == "alter_unique_together"

            def entries(sets):
                return {(unique, frozenset(table.column(physical(c)) for c in columns))
                        for columns in sets}

            old, new = entries(effect["old"]), entries(effect["new"])
            for key in old - new:
                # A removal is no evidence: another index may cover the same columns.
                table.sets.pop(key, None)
            for key in new - old:
                table.sets[key] = mig
                self.presence[mig].append((table, "set", key))
                self.checkable.add(mig)

    def has_evidence(self, mig, catalog_tables):
        for table, kind, item in self.presence[mig]:
            if not (table.alive and table.key in catalog_tables):
                continue
            if kind == "table" and table.owner == mig:
                return True
            if kind == "column" and item.alive and item.owner == mig:
                return True
            if kind == "named" and table.named.get(item) == mig:
                return True
            if kind == "set" and table.sets.get(item) == mig:
                return True
        for table, kind, name in self.absence[mig]:
            if not (table.alive and table.key in catalog_tables):
                continue
            if name not in (table.columns if kind == "column" else table.named):
                return True
        # A dropped table that some migration named, and whose name nothing has taken since.
        return any(key not in catalog_tables for key in self.table_drops[mig])

    def final_tables(self):
        """Tables the manifest creates that exist at the end of history, by current name."""
        return {t.key: t for t in self.tables if t.alive and t.created}

    def named_owners(self):
        """(table, index or constraint name) -> the migration that gave that name."""
        return {(t.key, name): owner for t in self.tables if t.alive
                for name, owner in t.named.items()}


# ---------------------------------------------------------------------------------------------
# The cluster, the project, and the catalog.

def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(argv, env):
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise AssertionError(f"$ {' '.join(argv)}\nexit status {proc.returncode}\n"
                             f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc.stdout


def _project_env(sock, port, prefix):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ACC_", "PG", "DJANGO_"))
           and key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PYTHONDONTWRITEBYTECODE="1", ACC_PGHOST=str(sock), ACC_PGPORT=str(port),
               ACC_PGUSER="postgres", ACC_PGPASSWORD="", ACC_DB_PREFIX=prefix)
    return env


CATALOG_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (current_schemas(false))
"""
CATALOG_COLUMNS = """
SELECT c.relname, a.attname,
       EXISTS (SELECT 1 FROM pg_index x
               WHERE x.indrelid = c.oid AND x.indisprimary AND a.attnum = ANY (x.indkey))
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (current_schemas(false))
ORDER BY c.relname, a.attnum
"""
# Every index and constraint name, per table: what a CASCADE may take away with it.
CATALOG_NAMED = """
SELECT c.relname, i.relname FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY (current_schemas(false))
UNION
SELECT c.relname, k.conname FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY (current_schemas(false))
"""
SCAN = "SELECT app, name, kind, detail FROM django_migrator.scan()"


def named_objects(conn):
    return {((None, table), name) for table, name in conn.execute(CATALOG_NAMED)}


def scan(conn):
    return [tuple(row) for row in conn.execute(SCAN)]


def show_rows(rows):
    if not rows:
        return "(no rows)"
    return "; ".join(f"{app}.{name} {kind} ({detail})" for app, name, kind, detail in rows)


# ---------------------------------------------------------------------------------------------
# The probes.

class Result:
    def __init__(self, alias, probe, subject, category, expected, rows, note=""):
        self.alias = alias
        self.probe = probe
        self.subject = subject
        self.category = category
        self.expected = expected
        self.rows = rows
        self.note = note


def blame(expected, rows):
    """exact: the rows are the expected migrations, each recorded and missing something;
    silent: an expected migration is not among them; noisy: anything else."""
    got = {(app, name) for app, name, _, _ in rows}
    if not expected:
        return "no-evidence" if not rows else "noisy"
    if not expected <= got:
        return "silent"
    if got == expected and all(kind in MISSING_KINDS for _, _, kind, _ in rows):
        return "exact"
    return "noisy"


def probe_history(conn, alias, history, catalog_tables):
    results = []
    replaced = {r: squash for squash, rs in history.replaces.items() for r in rs}
    squashes = {key for key, rs in history.replaces.items() if rs}
    known = set(history.order)
    for row_id, app, name in conn.execute(
            "SELECT id, app, name FROM django_migrations ORDER BY id").fetchall():
        key = (app, name)
        with conn.transaction(force_rollback=True):
            conn.execute("DELETE FROM django_migrations WHERE id = %s", (row_id,))
            rows = scan(conn)
        got = {(a, n, k) for a, n, k, _ in rows}
        subject = label(key)
        if key in replaced or key in squashes:
            # The squash counts as recorded while its own row or all replaced rows remain.
            category = "via squash" if not rows else "noisy"
            results.append(Result(alias, "history", subject, category, set(), rows,
                                  "squashed migration: still recorded through the other rows"))
        elif key not in known:
            category = "no-evidence" if not rows else "noisy"
            results.append(Result(alias, "history", subject, category, set(), rows,
                                  "not in the manifest"))
        elif history.has_evidence(key, catalog_tables):
            wanted = (app, name, "unrecorded_present")
            if got == {wanted}:
                category = "exact"
            elif wanted in got:
                category = "noisy"
            else:
                category = "silent"
            results.append(Result(alias, "history", subject, category, {key}, rows))
        else:
            allowed = {(a, n, "inconsistent_history") for a, n in history.dependents[key]}
            superseded = key in history.checkable
            if got <= allowed:
                category = "superseded" if superseded else "no-evidence"
            else:
                category = "noisy"
            flagged = sorted(f"{a}.{n}" for a, n, _ in got & allowed)
            missed = sorted(f"{a}.{n}" for a, n, _ in allowed - got)
            note = ("every checkable effect superseded by a later migration" if superseded
                    else "no checkable effect on this alias")
            if flagged:
                note += f"; recorded dependents reported inconsistent_history: {', '.join(flagged)}"
            if missed:
                note += f"; dependents not reported: {', '.join(missed)}"
            results.append(Result(alias, "history", subject, category, set(), rows, note))
    return results


def probe_tables(conn, alias, history, catalog):
    results = []
    before = named_objects(conn)
    named_owners = history.named_owners()
    for key, table in sorted(history.final_tables().items(), key=lambda kv: kv[0][1]):
        schema = catalog.get(key)
        if schema is None:
            results.append(Result(alias, "table", show_table(key), "silent", {table.owner}, [],
                                  "the manifest creates it but the catalog does not have it"))
            continue
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("DROP TABLE {}.{} CASCADE").format(
                sql.Identifier(schema), sql.Identifier(key[1])))
            lost = before - named_objects(conn)
            rows = scan(conn)
        # Only the owner is to blame for the table and everything on it; a named index or
        # constraint of another table that the CASCADE took is that table's owner's loss.
        expected = {table.owner} | {named_owners[obj] for obj in lost
                                    if obj[0] != key and obj in named_owners}
        note = ""
        if len(expected) > 1:
            note = "expected also: owners of named objects of other tables the CASCADE removed"
        results.append(Result(alias, "table", show_table(key), blame(expected, rows), expected,
                              rows, note))
    return results


def probe_columns(conn, alias, history, catalog):
    results = []
    columns = collections.defaultdict(list)
    for relname, column, primary in conn.execute(CATALOG_COLUMNS):
        if not primary:
            columns[(None, relname)].append(column)
    before = named_objects(conn)
    named_owners = history.named_owners()
    for key, table in sorted(history.final_tables().items(), key=lambda kv: kv[0][1]):
        schema = catalog.get(key)
        if schema is None:
            continue
        for column in columns[key]:
            state = table.columns.get(column)
            owner = state.owner if state else None
            together = table.sets_with(column)
            with conn.transaction(force_rollback=True):
                conn.execute(sql.SQL("ALTER TABLE {}.{} DROP COLUMN {} CASCADE").format(
                    sql.Identifier(schema), sql.Identifier(key[1]), sql.Identifier(column)))
                lost = before - named_objects(conn)
                rows = scan(conn)
            # An index or constraint that the manifest names and that used the column goes
            # with it: its owner is missing something too.
            cascaded = {named_owners[obj] for obj in lost if obj in named_owners}
            expected = ({owner} if owner else set()) | cascaded | together
            notes = []
            if owner is None:
                notes.append("no migration effect creates this column")
            if cascaded:
                names = sorted(obj[1] for obj in lost if obj in named_owners)
                notes.append(f"the CASCADE also removed {', '.join(names)}")
            if together:
                notes.append("the CASCADE also removed the index of a unique_together or "
                             f"index_together entry added by {', '.join(sorted(label(k) for k in together))}")
            results.append(Result(alias, "column", f"{show_table(key)}.{column}",
                                  blame(expected, rows), expected, rows, "; ".join(notes)))
    return results


def run_probes(conn, alias, manifest):
    history = History(manifest)
    catalog = {(None, relname): schema for schema, relname in conn.execute(CATALOG_TABLES)}
    clean = scan(conn)
    results = [Result(alias, "clean", "(nothing damaged)", "exact" if not clean else "noisy",
                      set(), clean)]
    results += probe_history(conn, alias, history, set(catalog))
    results += probe_tables(conn, alias, history, catalog)
    results += probe_columns(conn, alias, history, catalog)
    return results


# ---------------------------------------------------------------------------------------------
# The report.

CATEGORIES = ("exact", "noisy", "silent", "no-evidence", "superseded", "via squash")


def figures(results):
    counts = collections.OrderedDict()
    for alias, probe in itertools.product(ALIASES, ("clean", "history", "table", "column")):
        counts[(alias, probe)] = collections.Counter()
    for result in results:
        counts[(result.alias, result.probe)][result.category] += 1
    header = ["alias", "probe", "rows tested", *CATEGORIES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (alias, probe), counter in counts.items():
        cells = [alias, probe, str(sum(counter.values()))]
        cells += [str(counter[c]) for c in CATEGORIES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(results, context):
    versions = ", ".join(f"{d} {metadata.version(d)}" for d in DISTRIBUTIONS)
    lines = [
        "# Accuracy of `scan()` on a real project",
        "",
        "Written by `tests/accuracy/test_accuracy.py` on every run "
        "(`.venv/bin/python -m pytest tests/accuracy -q -s`); do not edit by hand.",
        "",
        "The project `tests/accuracy/project` has two aliases. Its router sends "
        "django_celery_beat and axes only to `other`, everything else only to `default`; Django "
        "records every migration on both. The apps are Django's admin, auth, contenttypes, "
        "sessions, messages, sites, flatpages and redirects; django_celery_beat, "
        "oauth2_provider, taggit, djmoney's exchange, reversion and axes; and the fixture app "
        "`opsapp`, whose hand-written migrations use every kind of operation (CreateModel with "
        "M2M, AddField, RemoveField, RenameField, AlterField with a db_column change, "
        "RenameModel with an FK and an M2M pointing to it, AlterModelTable, DeleteModel, "
        "AddIndex, RemoveIndex, RenameIndex, AddConstraint and RemoveConstraint with a "
        "CheckConstraint and a conditional UniqueConstraint, AlterUniqueTogether, "
        "SeparateDatabaseAndState, a squashed migration, CreateModel with Meta.indexes and "
        "Meta.constraints, a db_table longer than 63 bytes, a "
        "mixed-case db_table, an unmanaged and a proxy model, RunPython and RunSQL).",
        "",
        f"Versions: {versions}; PostgreSQL {context['server_version']}; "
        f"migrations in the manifest: "
        + ", ".join(f"{a} {n}" for a, n in context["migrations"].items()) + ".",
        "",
        "Both databases are migrated by plain `manage.py migrate`, each alias's manifest "
        "(`django-migrator manifest --database ALIAS`) is loaded, and every probe damages one "
        "thing in a transaction, runs `scan()` and rolls back. The expected blame comes from an "
        "independent walk over the manifest's effects in order.",
        "",
        "- **clean**: nothing damaged; no row expected.",
        "- **history**: one row of `django_migrations` deleted. A migration with evidence left "
        "(an object that still carries the name it gave, a unique_together or index_together "
        "entry it added that is still there, or a dropped name nothing took again) must come "
        "back as exactly one `unrecorded_present` row. Without any "
        "checkable effect on the alias (*no-evidence*), or when every checkable effect was "
        "later renamed or dropped (*superseded*), the migration is simply pending: the only "
        "rows allowed are `inconsistent_history` on its recorded dependents, which is what "
        "Django itself would say. A squashed migration stays recorded through its own row or "
        "the rows of all it replaces (*via squash*): no row expected.",
        "- **table**: one table the manifest creates dropped with CASCADE. Expected: its "
        "owner alone (the migration that created it, or the latest one that renamed it to its "
        "current name); plus the owner of any index or constraint named in the manifest on "
        "another table that the CASCADE removed.",
        "- **column**: one non-key column of those tables dropped with CASCADE. Expected: the "
        "migration that gave the column its current name (create_table, add_column or the "
        "latest rename_column; a table rename changes nothing), plus the owner of any index "
        "or constraint named in the manifest that the CASCADE removed with it, and of any "
        "unique_together or index_together entry that includes the column. A column no "
        "effect creates (made by RunSQL) expects no row (*no-evidence*).",
        "",
        "*exact*: the rows are exactly the expected migrations (for table and column, each "
        "`recorded_missing` or `half_applied`); *noisy*: the expected ones and others, or "
        "rows where none were expected; *silent*: an expected one is missing.",
        "",
        figures(results),
        "",
        "## Every result that is not exact",
        "",
    ]
    for category in ("silent", "noisy", "superseded", "no-evidence", "via squash"):
        cases = [r for r in results if r.category == category]
        if not cases:
            continue
        lines.append(f"### {category} ({len(cases)})")
        lines.append("")
        for r in cases:
            expected = ", ".join(sorted(label(k) for k in r.expected)) or "nothing"
            line = (f"- `{r.alias}` {r.probe} `{r.subject}`: expected {expected}; "
                    f"got {show_rows(r.rows)}")
            if r.note:
                line += f". {r.note}"
            lines.append(line)
        lines.append("")
    exact_notes = [r for r in results if r.category == "exact" and r.note]
    if exact_notes:
        lines.append(f"### exact, with something to note ({len(exact_notes)})")
        lines.append("")
        for r in exact_notes:
            expected = ", ".join(sorted(label(k) for k in r.expected))
            lines.append(f"- `{r.alias}` {r.probe} `{r.subject}`: {expected}. {r.note}")
        lines.append("")
    REPORT.write_text("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# The session: one cluster, both aliases migrated by plain Django, every probe run once.

@pytest.fixture(scope="session")
def outcome():
    if not BIN.is_file():
        pytest.fail(f"no django-migrator binary at {BIN} (build it or set DJANGO_MIGRATOR_BIN)")
    directory = Path(f"/var/tmp/django-migrator-accuracy-{os.getpid()}-{secrets.token_hex(3)}")
    port = _free_port()
    started = time.monotonic()
    subprocess.run(["bash", str(CLUSTER_SH), "start", str(directory), str(port)], check=True,
                   timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    try:
        sock = directory / "sock"
        prefix = "acc_"
        env = _project_env(sock, port, prefix)

        def connect(dbname):
            return psycopg.connect(host=str(sock), port=port, user="postgres", dbname=dbname,
                                   autocommit=True)

        with connect("postgres") as conn:
            for alias in ALIASES:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(
                    sql.Identifier(prefix + alias)))
        for alias in ALIASES:
            with connect(prefix + alias) as conn:
                conn.execute("CREATE EXTENSION django_migrator")
        for alias in ALIASES:
            _run([PYTHON, MANAGE, "migrate", "--database", alias, "--noinput", "-v", "0"], env)
        results = []
        context = {"migrations": {}}
        for alias in ALIASES:
            text = _run([str(BIN), "--manage", MANAGE, "--python", PYTHON,
                         "manifest", "--database", alias], env)
            manifest = json.loads(text)
            context["migrations"][alias] = len(manifest["migrations"])
            with connect(prefix + alias) as conn:
                conn.execute("SELECT django_migrator.load_manifest(%s::jsonb)", (text,))
                context["server_version"] = conn.execute("SHOW server_version").fetchone()[0]
                results += run_probes(conn, alias, manifest)
        write_report(results, context)
        print()
        print(figures(results))
        print(f"(report: {REPORT.relative_to(ROOT)}; {time.monotonic() - started:.1f} s)")
    except Exception:
        # Whatever failed, the server's own account of it is the first thing to read.
        log = directory / "postgres.log"
        if log.is_file():
            print("--- tail of postgres.log")
            print("\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        raise
    finally:
        subprocess.run(["bash", str(CLUSTER_SH), "stop", str(directory)], timeout=TIMEOUT,
                       stdin=subprocess.DEVNULL)
    return results


def _describe(cases):
    return "\n".join(f"{r.alias} {r.probe} {r.subject}: expected "
                     f"{', '.join(sorted(label(k) for k in r.expected)) or 'nothing'}; "
                     f"got {show_rows(r.rows)}" for r in cases)


@pytest.mark.parametrize("alias", ALIASES)
def test_clean_database_scans_clean(outcome, alias):
    clean = [r for r in outcome if r.probe == "clean" and r.alias == alias]
    assert [r.rows for r in clean] == [[]], _describe(clean)


def test_deleted_history_rows_are_blamed_exactly(outcome):
    history = [r for r in outcome if r.probe == "history"]
    wrong = [r for r in history if r.category in ("noisy", "silent")]
    assert any(r.category == "exact" for r in history)
    assert not wrong, f"{len(wrong)} wrong verdicts:\n{_describe(wrong)}"


def test_dropped_tables_are_blamed_exactly(outcome):
    tables = [r for r in outcome if r.probe == "table"]
    wrong = [r for r in tables if r.category != "exact"]
    assert tables
    assert not wrong, f"{len(wrong)} of {len(tables)} not exact:\n{_describe(wrong)}"


def test_dropped_columns_are_blamed_exactly(outcome):
    columns = [r for r in outcome if r.probe == "column"]
    # A column no migration creates is judged only for staying silent.
    judged = [r for r in columns if r.category != "no-evidence"]
    exact = [r for r in judged if r.category == "exact"]
    wrong = [r for r in judged if r.category != "exact"]
    assert judged
    assert len(exact) >= 0.95 * len(judged), (
        f"{len(exact)} of {len(judged)} exact:\n{_describe(wrong)}")
