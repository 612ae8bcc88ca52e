"""Export what each database of a Django project must look like, migration by migration.

Runs inside the project, through ``manage.py shell``, and writes the export document of
docs/manifest.md (export_version 1, manifest format_version 1) to $DJANGO_MIGRATOR_EXPORT_PATH.
This file must stay self-contained (stdlib + Django only): the CLI ships it as a single file and
runs it with the project's own interpreter. It never opens a database connection.
"""

import contextlib
import functools
import json
import os
import platform
import sys
import traceback

EXPORT_VERSION = 1
MANIFEST_FORMAT_VERSION = 1

# Connection keywords libpq understands; anything else Django hands the driver (cursor_factory,
# context, prepare_threshold, ...) means nothing to the CLI's own connection.
LIBPQ_KEYWORDS = frozenset(
    """host hostaddr port dbname user password passfile require_auth channel_binding
    connect_timeout client_encoding options application_name fallback_application_name
    keepalives keepalives_idle keepalives_interval keepalives_count tcp_user_timeout
    replication gssencmode sslmode sslnegotiation requiressl sslcompression sslcert sslkey
    sslpassword sslcertmode sslrootcert sslcrl sslcrldir sslsni requirepeer
    ssl_min_protocol_version ssl_max_protocol_version min_protocol_version max_protocol_version
    krbsrvname gsslib gssdelegation service target_session_attrs load_balance_hosts""".split()
)


# When the CLI starts Django through this file (see launch()), what the process reads is
# recorded in this module, so that the CLI can later tell without starting Python whether
# anything Django read has changed.
INPUTS_MODULE = "django_migrator_inputs"


def track_inputs(private_dir):
    """From here on, record every file opened for reading, every directory listed and every
    environment variable looked up. For the CLI's own Django process only: an audit hook
    cannot be removed."""
    import importlib.util
    import types

    inputs = types.ModuleType(INPUTS_MODULE)
    inputs.files, inputs.dirs, inputs.env, inputs.whole_env = {}, {}, set(), False
    private = os.path.abspath(private_dir) + os.sep
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def stat(path):
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]

    def source_of(path):
        # Imports read the bytecode cache and only stat the source: the source is the input.
        if path.endswith(".pyc"):
            with contextlib.suppress(ValueError, NotImplementedError):
                source = importlib.util.source_from_cache(path)
                if os.path.exists(source):
                    return source
        return path

    def hook(event, args):
        try:
            if event == "open":
                path, mode, flags = args
                if not isinstance(path, (str, bytes)):
                    return
                if mode is not None and any(c in mode for c in "wax+"):
                    return
                if mode is None and flags & write_flags:
                    return
                path = source_of(os.path.abspath(os.fsdecode(path)))
                if not path.startswith(private):
                    inputs.files[path] = stat(path)
            elif event in ("os.listdir", "os.scandir"):
                path = args[0]
                if isinstance(path, int):
                    return
                path = os.path.abspath(os.fsdecode("." if path is None else path))
                if not path.startswith(private):
                    inputs.dirs[path] = stat(path)
        except Exception:  # an audit hook must never break what it observes
            pass

    class TrackedEnviron(type(os.environ)):
        def __getitem__(self, key):
            if isinstance(key, str):
                inputs.env.add(key)
            return super().__getitem__(key)

        def __contains__(self, key):
            if isinstance(key, str):
                inputs.env.add(key)
            return super().__contains__(key)

        def __iter__(self):
            inputs.whole_env = True
            return super().__iter__()

        def __len__(self):
            inputs.whole_env = True
            return super().__len__()

    os.environ.__class__ = TrackedEnviron
    sys.modules[INPUTS_MODULE] = inputs
    sys.addaudithook(hook)


def inputs_snapshot():
    inputs = sys.modules.get(INPUTS_MODULE)
    if inputs is None:
        return None
    return {
        "files": dict(inputs.files),
        "dirs": dict(inputs.dirs),
        "env": sorted(inputs.env),
        "whole_env": inputs.whole_env,
    }


def launch():
    """`python -c <run this file as django_migrator_launch> manage.py shell ...`: track the
    inputs, then run manage.py exactly as `python manage.py shell ...` would."""
    import runpy

    track_inputs(os.path.dirname(os.path.abspath(os.environ["DJANGO_MIGRATOR_EXPORTER"])))
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
    runpy.run_path(sys.argv[0], run_name="__main__")


class DatabaseAccessBlocked(RuntimeError):
    pass


def _blocked(*args, **kwargs):
    raise DatabaseAccessBlocked("database access is blocked during export")


@contextlib.contextmanager
def blocked_connections():
    """Make every connection attempt fail while the export runs, then restore the wrappers.

    The wrapper classes are patched too, so that wrappers Django creates on the side (such as the
    no-database connection PostgreSQL falls back to) are blocked as well.
    """
    from django.db import connections

    missing = object()
    saved = []
    targets = []
    for alias in connections:
        conn = connections[alias]
        targets.append(conn)
        if type(conn) not in targets:
            targets.append(type(conn))
    for target in targets:
        for name in ("connect", "ensure_connection"):
            saved.append((target, name, vars(target).get(name, missing)))
            setattr(target, name, _blocked)
    try:
        yield
    finally:
        for target, name, old in reversed(saved):
            if old is missing:
                delattr(target, name)
            else:
                setattr(target, name, old)


def identifiers(name):
    """The identifiers PostgreSQL reads for a name Django passes through quote_name(): a name
    already wrapped in double quotes is sent as it is, any other is wrapped; inside, "" is one
    double quote, and '"a"."b"' is two identifiers (Django's way of naming a schema). None when
    the result is not a chain of quoted identifiers."""
    sql = name if len(name) > 1 and name.startswith('"') and name.endswith('"') else f'"{name}"'
    parts, i = [], 0
    while True:
        if i >= len(sql) or sql[i] != '"':
            return None
        i += 1
        text = []
        while True:
            end = sql.find('"', i)
            if end < 0:
                return None
            text.append(sql[i:end])
            if sql.startswith('""', end):
                text.append('"')
                i = end + 2
            else:
                i = end + 1
                break
        parts.append("".join(text))
        if i == len(sql):
            return parts
        if sql[i] != ".":
            return None
        i += 1


def ident(name):
    """The column, index or constraint name PostgreSQL stores for `name`."""
    parts = identifiers(name)
    return parts[0] if parts and len(parts) == 1 else name


def table_ref(db_table):
    """A table as PostgreSQL names it: '"schema"."table"' (or 'schema"."table') names a schema;
    a plain name is resolved along the search_path."""
    parts = identifiers(db_table)
    if not parts:
        return {"schema": None, "name": db_table}
    if len(parts) == 1:
        return {"schema": None, "name": parts[0]}
    return {"schema": parts[-2], "name": parts[-1]}


def _physical(value):
    if isinstance(value, str):
        return ident(value)
    if isinstance(value, list):
        return [_physical(v) for v in value]
    return value  # a table reference is physical already


class _Recorder:
    """Mixin over an alias's own schema editor class: records the schema calls Django makes on
    that alias and runs none of them. Mirrors django/db/backends/base/schema.py (4.2 to 6.0) for
    which calls cascade (M2M through tables) and which alterations Django refuses."""

    def __init__(self, connection):
        super().__init__(connection, collect_sql=True, atomic=False)
        self.deferred_sql = []  # never entered as a context manager, but Django code may read it
        self.effects = []
        self.op_name = None

    def record(self, kind, **fields):
        for key in ("column", "columns", "name", "old", "new"):
            if key in fields:
                fields[key] = _physical(fields[key])
        self.effects.append({"kind": kind, "op": self.op_name, **fields})

    def _db_type(self, field):
        return field.db_parameters(connection=self.connection)["type"]

    @staticmethod
    def _auto_through(field):
        return field.many_to_many and field.remote_field.through._meta.auto_created

    def execute(self, sql, params=()):
        self.record("opaque", reason="raw SQL")

    def create_model(self, model):
        columns = []
        for field in model._meta.local_fields:
            try:
                has_column = self._db_type(field) is not None
            except Exception:
                has_column = field.column is not None
            if has_column:
                columns.append(field.column)
        self.record("create_table", table=table_ref(model._meta.db_table), columns=columns)
        # Django creates Meta.constraints with the table and Meta.indexes right after it; both
        # carry explicit names in migrations, so they are checkable like AddIndex/AddConstraint.
        for constraint in model._meta.constraints:
            self.add_constraint(model, constraint)
        for index in model._meta.indexes:
            if index.name:
                self.add_index(model, index)
        for field in model._meta.local_many_to_many:
            if field.remote_field.through._meta.auto_created:
                self.create_model(field.remote_field.through)

    def delete_model(self, model):
        for field in model._meta.local_many_to_many:
            if field.remote_field.through._meta.auto_created:
                self.delete_model(field.remote_field.through)
        self.record("drop_table", table=table_ref(model._meta.db_table))

    def add_field(self, model, field):
        if self._auto_through(field):
            return self.create_model(field.remote_field.through)
        if self._db_type(field) is not None:
            self.record("add_column", table=table_ref(model._meta.db_table), column=field.column)

    def remove_field(self, model, field):
        if self._auto_through(field):
            return self.delete_model(field.remote_field.through)
        if self._db_type(field) is not None:
            self.record("drop_column", table=table_ref(model._meta.db_table), column=field.column)

    def alter_field(self, model, old_field, new_field, strict=False):
        if not self._field_should_be_altered(old_field, new_field):
            return
        old_type, new_type = self._db_type(old_field), self._db_type(new_field)
        if (old_type is None and old_field.remote_field is None) or (
            new_type is None and new_field.remote_field is None
        ):
            raise ValueError(f"Cannot alter field {old_field} into {new_field}: no db_type")
        if old_type is None and new_type is None:
            old_through = old_field.remote_field.through
            new_through = new_field.remote_field.through
            if old_through and new_through:
                old_auto, new_auto = old_through._meta.auto_created, new_through._meta.auto_created
                if old_auto and new_auto:
                    # Django's own M2M repointing: calls back into alter_db_table/alter_field.
                    return self._alter_many_to_many(model, old_field, new_field, strict)
                if not old_auto and not new_auto:
                    return
        if old_type is None or new_type is None:
            raise ValueError(
                f"Cannot alter field {old_field} into {new_field}: not compatible types "
                "(to or from M2M, or adding or removing through=)"
            )
        old_generated = getattr(old_field, "generated", False)
        if old_generated != getattr(new_field, "generated", False) or (
            old_generated
            and (
                old_field.db_persist != new_field.db_persist
                or old_field.generated_sql(self.connection)
                != new_field.generated_sql(self.connection)
            )
        ):
            raise ValueError(f"Modifying GeneratedFields is not supported ({new_field})")
        table = table_ref(model._meta.db_table)
        if old_field.column != new_field.column:
            self.record("rename_column", table=table, old=old_field.column, new=new_field.column)
        else:
            self.record("alter_column", table=table, column=new_field.column)

    def alter_db_table(self, model, old_db_table, new_db_table):
        if old_db_table != new_db_table:
            self.record("rename_table", old=table_ref(old_db_table), new=table_ref(new_db_table))

    def alter_db_table_comment(self, model, old_db_table_comment, new_db_table_comment):
        pass

    def alter_db_tablespace(self, model, old_db_tablespace, new_db_tablespace):
        pass

    def add_index(self, model, index, **kwargs):
        columns = [model._meta.get_field(name.lstrip("-")).column for name in index.fields]
        self.record(
            "add_index", table=table_ref(model._meta.db_table), name=index.name, columns=columns
        )

    def remove_index(self, model, index, **kwargs):
        self.record("drop_index", table=table_ref(model._meta.db_table), name=index.name)

    def rename_index(self, model, old_index, new_index):
        if not self.connection.features.can_rename_index:
            self.remove_index(model, old_index)
            return self.add_index(model, new_index)
        self.record(
            "rename_index",
            table=table_ref(model._meta.db_table),
            old=old_index.name,
            new=new_index.name,
        )

    def add_constraint(self, model, constraint):
        self.record("add_constraint", table=table_ref(model._meta.db_table), name=constraint.name)

    def remove_constraint(self, model, constraint):
        self.record("drop_constraint", table=table_ref(model._meta.db_table), name=constraint.name)

    def _alter_together(self, kind, model, old, new):
        olds, news = {tuple(f) for f in old}, {tuple(f) for f in new}
        if olds == news:
            return

        def columns(groups):
            return sorted([ident(model._meta.get_field(name).column) for name in g] for g in groups)

        self.record(
            kind, table=table_ref(model._meta.db_table), old=columns(olds), new=columns(news)
        )

    def alter_unique_together(self, model, old_unique_together, new_unique_together):
        self._alter_together("alter_unique_together", model, old_unique_together,
                             new_unique_together)

    def alter_index_together(self, model, old_index_together, new_index_together):
        self._alter_together("alter_index_together", model, old_index_together,
                             new_index_together)


def recording_editor(connection):
    cls = connection.SchemaEditorClass
    recorder = type(f"Recording{cls.__name__}", (_Recorder, cls), {})
    return recorder(connection)


def _related_keys(model_state):
    """The models a model state points at: its bases, and the targets and through models of
    its relations, as (app_label, model_name) keys."""
    from django.db.migrations.utils import resolve_relation

    app_label, name = model_state.app_label, model_state.name_lower
    keys = set()
    for base in model_state.bases:
        if isinstance(base, str):
            keys.add(resolve_relation(base, app_label, name))
        elif hasattr(base, "_meta") and not base._meta.abstract:
            keys.add((base._meta.app_label, base._meta.model_name))
    for field in model_state.fields.values():
        remote = getattr(field, "remote_field", None)
        if remote is None:
            continue
        keys.add(resolve_relation(remote.model, app_label, name))
        through = getattr(remote, "through", None)
        if through is not None:
            keys.add(resolve_relation(through, app_label, name))
    return keys


class ScopedState:
    """A project state whose `apps` renders only what one operation can reach: its model and,
    transitively, every model that one points at. Everything else is the state's own.

    Operations that look at the models pointing *to* theirs (RenameModel alters their foreign
    keys), operations without a model, and operations of other packages see the whole state,
    rendered for them alone."""

    SCOPED = (
        "CreateModel", "DeleteModel", "AddField", "RemoveField", "AlterField", "RenameField",
        "AddIndex", "RemoveIndex", "RenameIndex", "AddConstraint", "RemoveConstraint",
        "AlterUniqueTogether", "AlterIndexTogether", "AlterModelOptions", "AlterModelManagers",
        "AlterOrderWithRespectTo", "AlterModelTableComment", "AddIndexConcurrently",
        "RemoveIndexConcurrently", "AddConstraintNotValid", "ValidateConstraint",
    )

    def __init__(self, state, op, app_label):
        self._state = state
        self._op = op
        self._app_label = app_label

    def __getattr__(self, name):
        return getattr(self._state, name)

    def _scope(self):
        op = self._op
        module = type(op).__module__
        known = module.startswith(("django.db.migrations.operations",
                                   "django.contrib.postgres.operations"))
        name = getattr(op, "model_name_lower", None) or getattr(op, "name_lower", None)
        if not known or type(op).__name__ not in self.SCOPED or name is None:
            return None
        models = self._state.models
        scope, todo = set(), [(self._app_label, name)]
        while todo:
            key = todo.pop()
            if key in scope or key not in models:
                continue
            scope.add(key)
            todo.extend(_related_keys(models[key]))
        return scope

    @functools.cached_property
    def apps(self):
        from django.db.migrations.state import StateApps

        scope = self._scope()
        models = self._state.models
        if scope is not None:
            models = {key: models[key] for key in scope}
        return StateApps(self._state.real_apps, dict(models))


def database_forwards(op, app_label, editor, from_state, to_state):
    """Apply one operation to a recording editor as Django's executor would, except that
    RunPython and RunSQL (also inside SeparateDatabaseAndState) are recorded, never run."""
    from django.db import router
    from django.db.migrations.operations import RunPython, RunSQL, SeparateDatabaseAndState

    editor.op_name = type(op).__name__
    if isinstance(op, (RunPython, RunSQL)):
        if router.allow_migrate(editor.connection.alias, app_label, **op.hints):
            editor.record("opaque", reason="RunPython" if isinstance(op, RunPython) else "RunSQL")
    elif isinstance(op, SeparateDatabaseAndState):
        # Same walk as SeparateDatabaseAndState.database_forwards.
        for inner in op.database_operations:
            inner_to = from_state.clone()
            inner.state_forwards(app_label, inner_to)
            database_forwards(inner, app_label, editor, from_state, inner_to)
            from_state = inner_to
    else:
        op.database_forwards(app_label, editor, from_state, to_state)


def forwards_plan(graph):
    """The executor's full plan from a clean start: every leaf's forwards plan, first wins."""
    plan, seen = [], set()
    for leaf in graph.leaf_nodes():
        for key in graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                plan.append(key)
    return plan


def conninfo(connection):
    params = connection.get_connection_params()
    return {
        key: str(value)
        for key, value in params.items()
        if key in LIBPQ_KEYWORDS
        and isinstance(value, (str, int))
        and not isinstance(value, bool)
        and str(value) != ""
    }


def fake_detectors():
    """Callables `fn(operation) -> bool` that claim operations of companion apps.

    Registered with `django_migrator.register_fake_detector` (when the package is installed in
    the project) or listed as dotted paths in settings.DJANGO_MIGRATOR_FAKE_DETECTORS.
    """
    module = sys.modules.get("django_migrator.detectors")
    if module is None:
        try:
            import django_migrator.detectors as module
        except ImportError:
            module = None
    if module is not None and hasattr(module, "all_detectors"):
        return list(module.all_detectors())
    from django.conf import settings
    from django.utils.module_loading import import_string

    return [import_string(path) for path in getattr(settings, "DJANGO_MIGRATOR_FAKE_DETECTORS", [])]


def claimed(detectors, operation):
    for detector in detectors:
        try:
            if detector(operation):
                return True
        except Exception:
            # A detector that fails claims nothing: the operation then runs as usual.
            continue
    return False


def export():
    """Build the export document. Never touches a database; connections are restored after."""
    import django
    from django.db import connections, router
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState

    with blocked_connections():
        loader = MigrationLoader(None, ignore_no_migrations=True)
        graph = loader.graph
        aliases = list(connections)
        editors = {
            alias: recording_editor(connections[alias])
            for alias in aliases
            if connections[alias].vendor == "postgresql"
        }
        migrations = {alias: [] for alias in editors}

        detectors = fake_detectors()
        # Two unrendered copies of the project state, kept in step: each operation is applied
        # to `state`, shown to the editors as the move from `old_state` to `state`, then
        # applied to `old_state` too. Django's executor keeps one rendered state and clones it
        # before every operation, and re-renders every model related to the one that changed:
        # on a history of thousands of migrations over thousands of models, time grows with the
        # square of the history. Here each operation renders only the models it can reach.
        state = ProjectState(real_apps=loader.unmigrated_apps)
        old_state = ProjectState(real_apps=loader.unmigrated_apps)
        for key in forwards_plan(graph):
            migration = graph.nodes[key]
            for editor in editors.values():
                editor.effects = []
            for op in migration.operations:
                op.state_forwards(migration.app_label, state)
                before = ScopedState(old_state, op, migration.app_label)
                after = ScopedState(state, op, migration.app_label)
                for editor in editors.values():
                    mark = len(editor.effects)
                    try:
                        database_forwards(op, migration.app_label, editor, before, after)
                    except Exception as exc:
                        # What an operation would have done is unknown once it fails.
                        del editor.effects[mark:]
                        editor.op_name = type(op).__name__
                        editor.record("opaque", reason=f"{type(exc).__name__}: {exc}")
                op.state_forwards(migration.app_label, old_state)
            entry = {
                "app": key[0],
                "name": key[1],
                "dependencies": sorted([list(p.key) for p in graph.node_map[key].parents]),
                "replaces": [list(r) for r in migration.replaces],
                "atomic": bool(migration.atomic),
                # Every operation claimed by a fake detector: recorded without running when its
                # effects are present (the companion step).
                "companion": bool(migration.operations)
                and all(claimed(detectors, op) for op in migration.operations),
            }
            for alias, editor in editors.items():
                migrations[alias].append({**entry, "effects": editor.effects})

        models = [
            model
            for model in state.apps.get_models()
            if not model._meta.proxy and not model._meta.swapped
        ]
        by_app = {}
        for model in models:
            by_app.setdefault(model._meta.app_label, []).append(model)
        labels = sorted({key[0] for key in graph.nodes})
        django_version = django.get_version()
        result = []
        for alias in aliases:
            conn = connections[alias]
            test = conn.settings_dict.get("TEST") or {}
            item = {"alias": alias, "vendor": conn.vendor}
            try:
                item["conninfo"] = conninfo(conn)
            except Exception as exc:
                item["conninfo"] = {}
                item["conninfo_error"] = f"{type(exc).__name__}: {exc}"
            item["test"] = {"mirror": test.get("MIRROR"), "name": test.get("NAME")}
            item["router"] = {
                "models": len(models),
                "migrate_models": sum(bool(router.allow_migrate_model(alias, m)) for m in models),
                "write_models": sum(router.db_for_write(m) == alias for m in models),
                # Per app with migrations, what `migrate <app> --database <alias>` would touch;
                # an app without models (data migrations only) is asked without a model hint.
                "apps": {
                    label: (
                        any(router.allow_migrate_model(alias, m) for m in by_app[label])
                        if by_app.get(label)
                        else bool(router.allow_migrate(alias, label))
                    )
                    for label in labels
                },
            }
            if alias in editors:
                item["manifest"] = {
                    "format_version": MANIFEST_FORMAT_VERSION,
                    "alias": alias,
                    "django_version": django_version,
                    "migrations": migrations[alias],
                }
            result.append(item)

    document = {
        "export_version": EXPORT_VERSION,
        "django_version": django_version,
        "python_version": platform.python_version(),
        "aliases": result,
    }
    inputs = inputs_snapshot()
    if inputs is not None:
        document["inputs"] = inputs
    return document


def write_export(path):
    data = json.dumps(export(), separators=(",", ":"))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # the file may have existed with wider permissions
        out.write(data)


def run_command(name, args):
    """Runs a management command in this process; its output is captured, never printed."""
    import io

    from django.core.management import call_command
    from django.db import connections
    from django.db.migrations.loader import MigrationLoader

    stdout, stderr = io.StringIO(), io.StringIO()
    check = MigrationLoader.check_consistent_history
    if name == "makemigrations":
        # django-migrator judges (and repairs) the history of each alias itself; Django's
        # check would raise on a deleted history row before it can.
        MigrationLoader.check_consistent_history = lambda self, connection: None
    try:
        call_command(name, *args, stdout=stdout, stderr=stderr)
        code = 0
    except SystemExit as exc:
        # makemigrations --check exits 1 for "changes detected".
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception:
        # A crash is not "changes detected": a code of its own.
        traceback.print_exc(file=stderr)
        code = 3
    finally:
        MigrationLoader.check_consistent_history = check
        connections.close_all()
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


def die_with_parent():
    """If the CLI dies (SIGKILL included), this process must not go on migrating without the
    lock the CLI held: on Linux, ask the kernel to kill it with its parent."""
    import signal

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:
        # The parent died before the request was in place.
        os._exit(1)


def serve(socket_path):
    """One Django process for a whole run: the CLI sends one JSON request per line on a Unix
    socket in its private directory ({"cmd": "makemigrations" | "migrate", "args": [...]} or
    {"cmd": "export", "path": ...} or {"cmd": "quit"}) and reads one JSON reply per line.
    Django starts once instead of once per alias, and nothing the project prints can reach
    the channel."""
    import importlib
    import socket

    die_with_parent()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        channel.connect(socket_path)
        requests = channel.makefile("r", encoding="utf-8")
        replies = channel.makefile("w", encoding="utf-8")
        for line in requests:
            request = json.loads(line)
            cmd = request.get("cmd")
            if cmd == "quit":
                break
            if cmd == "export":
                # makemigrations may just have written new files.
                importlib.invalidate_caches()
                try:
                    write_export(request["path"])
                    reply = {"code": 0, "stdout": "", "stderr": ""}
                except Exception:
                    reply = {"code": 3, "stdout": "", "stderr": traceback.format_exc()}
            elif cmd in ("makemigrations", "migrate"):
                reply = run_command(cmd, request.get("args", []))
            else:
                reply = {"code": 2, "stdout": "", "stderr": f"unknown request {cmd!r}"}
            replies.write(json.dumps(reply) + "\n")
            replies.flush()


def main():
    try:
        socket_path = os.environ.get("DJANGO_MIGRATOR_SOCKET")
        if socket_path:
            serve(socket_path)
        else:
            write_export(os.environ["DJANGO_MIGRATOR_EXPORT_PATH"])
    except Exception:
        traceback.print_exc(file=sys.stderr)
        raise SystemExit(3)


if __name__ == "__main__":
    main()
elif __name__ == "django_migrator_launch":
    launch()
