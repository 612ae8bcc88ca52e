"""A Django project with a long migration history, for the benchmarks of bench/big_bench.py.

40 apps of 50 models each (2,000 tables), 125 migrations per app (5,000 in all), written the
way a few years of `makemigrations` leave them: every app starts with a 0001_initial of a few
models, then its history interleaves with the other apps' (CreateModel, AddField, AlterField,
RenameField, AddIndex, RunPython data migrations, foreign keys into other apps with the
dependencies they need, a swappable dependency on AUTH_USER_MODEL). The model files are the
final state of that history, so `makemigrations --check --dry-run` finds no changes.

Two aliases: `default` holds everything; `replica` is a read-only view of it (same database,
TEST MIRROR, the router migrates nothing there), as in the example project.

    python bench/bigproject.py DIR [APPS]    writes the project (the first APPS apps; 40 by
                                             default) into DIR

Deterministic: the same source gives the same project, so bench/big_bench.py keeps one copy per
hash of this file under /var/tmp.
"""

import hashlib
import random
import sys
from pathlib import Path

APPS = 40
MODELS_PER_APP = 50
MIGRATIONS_PER_APP = 125
SEED = 20240601

APP_NAMES = """accounts addresses audit billing booking calendar campaigns catalog checkout
comments compliance contracts crm documents events expenses fleet forms helpdesk hr inventory
invoicing ledger logistics loyalty messaging notifications orders payments payroll pricing
procurement projects quality returns reviews scheduling shipping subscriptions warehouse""".split()
assert len(APP_NAMES) == APPS

NOUNS = """Account Activity Adjustment Allocation Approval Asset Assignment Attachment Balance
Batch Budget Category Channel Charge Claim Code Comment Contact Credit Cycle Delivery Discount
Entry Estimate Export Feature Group Import Item Journal Label Limit Line Location Note Offer
Option Period Plan Policy Profile Rate Record Region Rule Segment Setting Slot Source Task""".split()
assert len(NOUNS) == MODELS_PER_APP

FIELD_WORDS = """amount code comment count description due external flag label level limit
memo name note number position priority quantity rank ratio reference score sequence size
status summary tag title total value weight""".split()


def field_source(kind, opts, in_migration):
    """The field as makemigrations writes it (in_migration) or as a models.py declares it."""
    if kind == "fk":
        to, related = opts["to"], opts["related_name"]
        if to == "AUTH_USER_MODEL":
            target = "settings.AUTH_USER_MODEL"
        elif in_migration:
            target = repr(to.lower())
        else:
            target = repr(to)
        null = "null=True, " if opts.get("null") else ""
        if in_migration:
            return (f"models.ForeignKey({null}on_delete=django.db.models.deletion.CASCADE, "
                    f"related_name={related!r}, to={target})")
        return f"models.ForeignKey({target}, {null}on_delete=models.CASCADE, related_name={related!r})"
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(opts.items()))
    cls = {"char": "CharField", "int": "IntegerField", "bool": "BooleanField", "date": "DateTimeField",
           "decimal": "DecimalField", "text": "TextField"}[kind]
    return f"models.{cls}({args})"


def new_field(rng, kind=None):
    kind = kind or rng.choice(["char", "char", "int", "bool", "date", "decimal", "text"])
    opts = {
        "char": lambda: {"max_length": rng.choice([32, 64, 100, 128, 255])},
        "int": lambda: {"default": 0},
        "bool": lambda: {"default": False},
        "date": lambda: {"null": True, "blank": True},
        "decimal": lambda: {"max_digits": 12, "decimal_places": 2, "default": 0},
        "text": lambda: {"blank": True, "default": ""},
    }[kind]()
    return kind, opts


def altered(rng, kind, opts):
    """A plausible AlterField of a field: a longer CharField, a nullable number, an index."""
    opts = dict(opts)
    if kind == "char":
        if rng.random() < 0.3 and not opts.get("db_index"):
            opts["db_index"] = True
        else:
            opts["max_length"] = opts["max_length"] + rng.choice([16, 32, 64])
    elif kind in ("int", "decimal"):
        if opts.get("null"):
            opts.pop("null")
            opts.pop("blank", None)
        else:
            opts["null"] = True
            opts["blank"] = True
    elif kind == "bool":
        opts["default"] = not opts["default"]
    elif kind == "date":
        opts["db_index"] = not opts.get("db_index", False)
        if not opts["db_index"]:
            opts.pop("db_index")
    elif kind == "text":
        opts["default"] = "" if opts.get("default") else "-"
    return opts


class Model:
    def __init__(self, app, number, name):
        self.app, self.number, self.name = app, number, name
        self.fields = {}  # name -> (kind, opts)
        self.indexes = []  # (name, [field names])
        self.indexed = set()  # fields an index names: never renamed
        self.counter = 0

    def fresh_name(self, rng):
        self.counter += 1
        return f"{rng.choice(FIELD_WORDS)}_{self.counter}"

    @property
    def label(self):
        return f"{self.app.name}.{self.name}"


class App:
    def __init__(self, index, name):
        self.index, self.name = index, name
        self.models = []
        self.migrations = []  # (name, dependencies, operations source lines, needs settings)
        self.to_create = list(NOUNS)


class Generator:
    def __init__(self, apps):
        self.rng = random.Random(SEED)
        self.apps = [App(i, name) for i, name in enumerate(APP_NAMES[:apps])]
        self.existing = []  # every model created so far, in order

    def latest(self, app):
        return (app.name, app.migrations[-1][0]) if app.migrations else None

    def fk(self, model, target, null):
        model.counter += 1
        prefix = "created_by" if target == "user" else target.name.lower()
        name = f"{prefix}_{model.counter}"
        related = f"{model.app.name}_{model.name.lower()}_{name}"
        to = "AUTH_USER_MODEL" if target == "user" else target.label
        return name, ("fk", {"to": to, "related_name": related, **({"null": True} if null else {})})

    def create_model(self, app, deps):
        rng = self.rng
        number = MODELS_PER_APP - len(app.to_create)
        model = Model(app, number, app.to_create.pop(0))
        for _ in range(rng.randint(2, 5)):
            model.fields[model.fresh_name(rng)] = new_field(rng)
        if app.models and rng.random() < 0.5:
            name, field = self.fk(model, rng.choice(app.models), null=False)
            model.fields[name] = field
        if rng.random() < 0.15:
            target = self.other_app_model(app)
            if target is not None:
                name, field = self.fk(model, target, null=True)
                model.fields[name] = field
                deps.add(self.latest(target.app))
        app.models.append(model)
        self.existing.append(model)
        lines = [
            "        migrations.CreateModel(",
            f"            name={model.name!r},",
            "            fields=[",
            "                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),",
        ]
        lines += [f"                ({n!r}, {field_source(k, o, True)})," for n, (k, o) in model.fields.items()]
        lines += ["            ],", "        ),"]
        return lines, model.name.lower()

    def other_app_model(self, app):
        candidates = [m for m in self.existing[-400:] if m.app is not app]
        return self.rng.choice(candidates) if candidates else None

    def operation(self, app, deps):
        """One operation on an existing model of `app`: source lines and a name fragment."""
        rng = self.rng
        model = rng.choice(app.models)
        roll = rng.random()
        plain = [n for n, (k, _) in model.fields.items() if k != "fk"]
        if roll < 0.38 or not plain:
            if rng.random() < 0.12:
                target = self.other_app_model(app) or model
                name, field = self.fk(model, target, null=True)
                if target.app is not app:
                    deps.add(self.latest(target.app))
            else:
                name, field = model.fresh_name(rng), new_field(rng)
            model.fields[name] = field
            return [
                "        migrations.AddField(",
                f"            model_name={model.name.lower()!r},",
                f"            name={name!r},",
                f"            field={field_source(*field, True)},",
                "        ),",
            ], f"{model.name.lower()}_{name}"
        if roll < 0.6:
            name = rng.choice(plain)
            kind, opts = model.fields[name]
            model.fields[name] = (kind, altered(rng, kind, opts))
            return [
                "        migrations.AlterField(",
                f"            model_name={model.name.lower()!r},",
                f"            name={name!r},",
                f"            field={field_source(*model.fields[name], True)},",
                "        ),",
            ], f"alter_{model.name.lower()}_{name}"
        renamable = [n for n in plain if n not in model.indexed]
        if roll < 0.7 and renamable:
            old = rng.choice(renamable)
            new = model.fresh_name(rng)
            model.fields = {(new if n == old else n): f for n, f in model.fields.items()}
            return [
                "        migrations.RenameField(",
                f"            model_name={model.name.lower()!r},",
                f"            old_name={old!r},",
                f"            new_name={new!r},",
                "        ),",
            ], f"rename_{old}_{model.name.lower()}_{new}"
        if roll < 0.86:
            fields = rng.sample(plain, min(len(plain), rng.choice([1, 1, 2])))
            index = f"ix_{app.index:02d}_{model.number:02d}_{len(model.indexes) + 1}"
            model.indexes.append((index, fields))
            model.indexed.update(fields)
            return [
                "        migrations.AddIndex(",
                f"            model_name={model.name.lower()!r},",
                f"            index=models.Index(fields={fields!r}, name={index!r}),",
                "        ),",
            ], f"{model.name.lower()}_{index}"
        # A data migration: it reads other apps' data, so it depends on their latest migration.
        for other in rng.sample(self.apps, 2):
            if other is not app and other.migrations:
                deps.add(self.latest(other))
        return [
            "        migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop),",
        ], f"backfill_{model.name.lower()}"

    def migration(self, app):
        rng = self.rng
        number = len(app.migrations) + 1
        deps = set()
        if app.migrations:
            deps.add(self.latest(app))
        lines, names = [], []
        needs_settings = False
        if number == 1:
            for _ in range(3):
                op, _ = self.create_model(app, deps)
                lines += op
            first = app.models[0]
            name, field = self.fk(first, "user", null=True)
            first.fields[name] = field
            lines += [
                "        migrations.AddField(",
                f"            model_name={first.name.lower()!r},",
                f"            name={name!r},",
                f"            field={field_source(*field, True)},",
                "        ),",
            ]
            needs_settings = True
            title = "initial"
        else:
            remaining = MIGRATIONS_PER_APP - number + 1
            create = app.to_create and (
                rng.random() < len(app.to_create) / max(1, remaining - 25) or remaining <= len(app.to_create)
            )
            if create:
                op, names_part = self.create_model(app, deps)
                lines += op
                names.append(names_part)
            for _ in range(0 if create and rng.random() < 0.6 else rng.choice([1, 1, 1, 2, 3])):
                op, names_part = self.operation(app, deps)
                lines += op
                names.append(names_part)
            if len(names) == 1:
                title = names[0]
            else:
                day = 2019 * 10000 + (number // 30 + 1) * 100 + rng.randint(1, 28)
                title = f"auto_{day}_{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}"
        name = f"{number:04d}_{title}"[:60]
        app.migrations.append((name, sorted(deps), lines, needs_settings))

    def run(self):
        rng = self.rng
        for app in self.apps:
            self.migration(app)
        order = [app for app in self.apps for _ in range(MIGRATIONS_PER_APP - 1)]
        rng.shuffle(order)
        for app in order:
            self.migration(app)


def write(root, apps=APPS):
    gen = Generator(apps)
    gen.run()
    root = Path(root)
    project = root / "bigproject"
    project.mkdir(parents=True)
    (project / "__init__.py").write_text("")
    (project / "settings.py").write_text(SETTINGS.replace("@APPS@", "".join(f"    {a.name!r},\n" for a in gen.apps)))
    (project / "routers.py").write_text(ROUTER)
    (project / "urls.py").write_text("urlpatterns = []\n")
    (root / "manage.py").write_text(MANAGE)
    for app in gen.apps:
        package = root / app.name
        (package / "migrations").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "migrations" / "__init__.py").write_text("")
        for name, deps, lines, needs_settings in app.migrations:
            head = ["from django.conf import settings\n"] if needs_settings else []
            head += ["import django.db.models.deletion\n", "from django.db import migrations, models\n\n\n"]
            dep_lines = []
            if needs_settings:
                dep_lines.append("        migrations.swappable_dependency(settings.AUTH_USER_MODEL),")
            dep_lines += [f"        ({a!r}, {m!r})," for a, m in deps]
            body = ["class Migration(migrations.Migration):\n"]
            if name.startswith("0001_"):
                body.append("\n    initial = True\n")
            body.append("\n    dependencies = [\n" + "".join(d + "\n" for d in dep_lines) + "    ]\n")
            body.append("\n    operations = [\n" + "".join(line + "\n" for line in lines) + "    ]\n")
            (package / "migrations" / f"{name}.py").write_text("".join(head) + "".join(body))
        models = ["from django.conf import settings\n", "from django.db import models\n"]
        for model in app.models:
            models.append(f"\n\nclass {model.name}(models.Model):\n")
            for fname, (kind, opts) in model.fields.items():
                models.append(f"    {fname} = {field_source(kind, opts, False)}\n")
            if model.indexes:
                models.append("\n    class Meta:\n        indexes = [\n")
                for index, fields in model.indexes:
                    models.append(f"            models.Index(fields={fields!r}, name={index!r}),\n")
                models.append("        ]\n")
        (package / "models.py").write_text("".join(models))


SETTINGS = '''"""Settings of a large project: one PostgreSQL database and a read replica of it."""
import os

SECRET_KEY = "bench-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
@APPS@]
ROOT_URLCONF = "bigproject.urls"


def _database(**extra):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("BIG_DB_NAME", "bigproject"),
        "HOST": os.environ.get("BIG_PGHOST", "/var/run/postgresql"),
        "PORT": os.environ.get("BIG_PGPORT", "5432"),
        "USER": os.environ.get("BIG_PGUSER", "postgres"),
        **extra,
    }


DATABASES = {
    "default": _database(),
    "replica": _database(TEST={"MIRROR": "default"}),
}
DATABASE_ROUTERS = ["bigproject.routers.Router"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
'''

ROUTER = '''class Router:
    """Reads may go to the replica; everything is written and migrated on default."""

    def db_for_read(self, model, **hints):
        return "replica"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
'''

MANAGE = '''#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bigproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''


def source_hash():
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


if __name__ == "__main__":
    write(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else APPS)
