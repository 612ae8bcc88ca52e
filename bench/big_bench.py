"""django-migrator on generated Django projects with a long history, against Django's own commands.

Run by `make bench` (bench/run.sh) against its throwaway cluster:

    python bench/big_bench.py SOCKET_DIR PORT

For each size in BENCH_BIG_APPS (numbers of apps of bench/bigproject.py, 50 models and 125
migrations each; default "4,40": 500 and 5,000 migrations over 200 and 2,000 tables), the
project is generated once under /var/tmp/django-migrator-bench-project/ (kept by the hash of the
generator, byte-compiled) and then, one command at a time:

- Django alone: `manage.py check` (start-up), `makemigrations --check --dry-run` (which must say
  "No changes detected"), `migrate --plan` and `showmigrations`;
- the exporter: `django-migrator manifest --database default` (start-up + export + the JSON);
- from empty databases: a plain loop of `manage.py migrate --database X` over DATABASES, and
  `django-migrator migrate-all --skip-makemigrations`, each in a database of its own;
- on the migrated database: a loop of `manage.py migrate --check --database X` against
  `django-migrator --no-cache check [--skip-makemigrations] --format json` (Django started, the
  project read) and `django-migrator check --format json` with the project cache of the run
  before (Django not started); `timings_ms` kept;
- the peak memory (VmHWM) of the CLI and of the Django process it starts, in every CLI run;
- a PostgreSQL backend's VmHWM and VmRSS around `SELECT * FROM django_migrator.scan()` on the
  migrated database, with the project's manifest loaded.

A command that runs longer than BENCH_BIG_TIMEOUT seconds (default 180) is stopped and reported as
such; commands that include the export are not started once the export alone went over, nor
migrate-all once Django's own migrate did. A command that takes longer than 30 s is sampled once. When
neither migrate finished, the database for the `check` figures is built from the final models
(their tables, indexes and constraints, created by Django's schema editor) and recorded with
`migrate --fake`: Django's `migrate --check` reads only django_migrations, and scan() the
catalog.

With BENCH_BIG_PRIME=1, each project is first exported without a limit, once per version of the
generator and of exporter.py: `manifest --database default` (its output kept, for scan()) and a
`check` (which fills the CLI's project cache, kept next to the projects). Their figures are kept
too, and reported with their date.
"""

import compileall
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bigproject  # noqa: E402
import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = str(ROOT / "target" / "release" / "django-migrator")
PYTHON = str(ROOT / ".venv" / "bin" / "python")
EXPORTER = ROOT / "python" / "django_migrator" / "exporter.py"
CACHE = Path("/var/tmp/django-migrator-bench-project")
ALIASES = ["default", "replica"]
LONG_MS = 30_000  # a command this long is sampled once

# Builds the final models' schema on default, in autocommit (one statement per transaction, so
# that 2,000 tables do not exhaust the lock table), for `migrate --fake` to record.
SCHEMA_FROM_MODELS = """
from django.apps import apps
from django.db import connection
with connection.schema_editor(atomic=False) as editor:
    for model in apps.get_models():
        if model._meta.managed and not model._meta.proxy and not model._meta.swapped:
            editor.create_model(model)
"""


def log(message):
    print(f"[big_bench] {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def project(apps):
    """The generated project of `apps` apps, generated and byte-compiled on first use."""
    key = f"{bigproject.source_hash()}-{apps}"
    path = CACHE / key
    if (path / ".ready").exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in list(CACHE.iterdir()) + list(CACHE.glob("manifests/*")):
        if re.match(r"[0-9a-f]{16}-[0-9]+", old.name) and not old.name.startswith(bigproject.source_hash()):
            # a project, or its manifest, of an earlier version of the generator
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    log(f"generating the project of {apps} apps in {path}")
    building = CACHE / f"{key}.building"
    shutil.rmtree(building, ignore_errors=True)
    bigproject.write(building, apps)
    # Byte-compiled once, as an installed project is: the figures are not about compiling
    # thousands of migration files (and PYTHONDONTWRITEBYTECODE may be set).
    compileall.compile_dir(str(building), quiet=1, workers=os.cpu_count() or 1)
    (building / ".ready").write_text("")
    shutil.rmtree(path, ignore_errors=True)
    building.rename(path)
    return path


def manifest_cache(apps):
    exporter = hashlib.sha256(EXPORTER.read_bytes()).hexdigest()[:16]
    return CACHE / "manifests" / f"{bigproject.source_hash()}-{apps}-{exporter}.json"


def primed(apps):
    """The cached manifest of this project and the figures of the run that exported it: of the
    current exporter.py, else the latest of an earlier one (then marked as such)."""
    exact = manifest_cache(apps)
    candidates = sorted(exact.parent.glob(f"{bigproject.source_hash()}-{apps}-*.meta.json"),
                        key=lambda path: path.stat().st_mtime)
    meta = exact.with_suffix(".meta.json")
    if not meta.exists():
        if not candidates:
            return None, None
        meta = candidates[-1]
    info = json.loads(meta.read_text())
    info["current_exporter"] = meta == exact.with_suffix(".meta.json")
    return meta.with_name(meta.name.replace(".meta.json", ".json")), info


def psql(sock, port, sql, db="postgres"):
    subprocess.run(["psql", "-h", sock, "-p", str(port), "-U", "postgres", "-d", db, "-Atqc", sql],
                   check=True, capture_output=True)


def fresh(sock, port, db):
    psql(sock, port, f"DROP DATABASE IF EXISTS {db}")
    psql(sock, port, f"CREATE DATABASE {db}")
    psql(sock, port, "CREATE EXTENSION django_migrator", db=db)


def median_ms(runs):
    return round(statistics.median(r.ms for r in runs), 1)


def mib(kib):
    return round(kib / 1024, 1)


def memory(run):
    return {"cli_mib": mib(run.own_kib), "django_mib": mib(run.child_kib)}


def clean_env():
    """The environment of every command: the bench's own knobs left out, so that a run's
    environment does not depend on how the bench was started (the CLI's project cache compares
    the variables Django read)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}


class Size:
    def __init__(self, apps, sock, port, timeout, runs):
        self.apps, self.sock, self.port, self.timeout, self.runs = apps, sock, port, timeout, runs
        self.path = project(apps)
        self.manage = str(self.path / "manage.py")
        self.cli = [BIN, "--manage", self.manage, "--python", PYTHON]
        self.out = {"apps": apps, "migrations": apps * bigproject.MIGRATIONS_PER_APP,
                    "tables": apps * bigproject.MODELS_PER_APP, "timeout_s": timeout, "runs": runs,
                    "notes": []}

    def env(self, db):
        return {**clean_env(), "BIG_PGHOST": self.sock, "BIG_PGPORT": str(self.port),
                "BIG_PGUSER": "postgres", "BIG_DB_NAME": db,
                # The CLI's project cache, kept with the generated projects; and no limit of the
                # CLI's own on starting Django: the bench applies its own.
                "DJANGO_MIGRATOR_CACHE_DIR": str(CACHE / "cli-cache"),
                "DJANGO_MIGRATOR_DJANGO_TIMEOUT": "86400"}

    def django(self, db, *args, runs=1, expect=(0,), timeout=None, capture=False):
        return [measure.run([PYTHON, self.manage, *args], env=self.env(db), cwd=str(self.path),
                            expect=expect, timeout=timeout, capture=capture) for _ in range(runs)]

    def tool(self, db, *args, expect=(0,), capture=True, timeout="default"):
        return measure.run(self.cli + list(args), env=self.env(db), cwd=str(self.path), expect=expect,
                           timeout=self.timeout if timeout == "default" else timeout, capture=capture)

    def over(self, key, limit=None):
        self.out[key] = None
        self.out["notes"].append(f"{key}: stopped after {limit or self.timeout} s")
        log(f"{key}: stopped after {limit or self.timeout} s")

    def prime(self, db):
        """Exports without a limit, once per version of the generator and of the exporter:
        the manifest for scan() and the CLI's project cache for a `check` that reuses it."""
        cache = manifest_cache(self.apps)
        meta = cache.with_suffix(".meta.json")
        if meta.exists():
            return
        log("priming: django-migrator manifest without a limit")
        run = self.tool(db, "manifest", "--database", "default", timeout=None)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(run.stdout)
        info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "manifest_ms": round(run.ms, 1), "manifest_memory": memory(run)}
        log("priming: django-migrator check without a limit")
        run = self.tool(db, "check", "--format", "json", expect=(0, 1), timeout=None)
        report = json.loads(run.stdout)
        info.update(check_ms=round(run.ms, 1), check_memory=memory(run), check_timings=report["timings_ms"])
        meta.write_text(json.dumps(info, indent=2))

    def measure(self, prime):
        out, tag = self.out, f"bb{self.apps}"
        empty, plain, tool = f"{tag}_empty", f"{tag}_plain", f"{tag}_tool"
        fresh(self.sock, self.port, empty)

        log(f"{out['migrations']} migrations: Django alone")
        out["django_check_ms"] = median_ms(self.django(empty, "check", runs=self.runs))
        mm = self.django(empty, "makemigrations", "--check", "--dry-run", capture=True)[0]
        if "No changes detected" not in mm.stdout:
            raise SystemExit(f"the generated project is not in step with its models:\n{mm.stdout[-3000:]}")
        out["makemigrations_check_ms"] = round(mm.ms, 1)
        plan = self.django(empty, "migrate", "--plan", runs=self.runs, capture=True)
        out["migrate_plan_ms"] = median_ms(plan)
        # One line per migration, its operations indented below it, after a header line.
        out["planned_migrations"] = sum(1 for line in plan[0].stdout.splitlines()[1:]
                                        if line.strip() and not line.startswith(" "))
        out["showmigrations_ms"] = median_ms(self.django(empty, "showmigrations", runs=self.runs))

        fresh(self.sock, self.port, tool)
        if prime:
            self.prime(tool)
        cache, info = primed(self.apps)
        if info:
            out["primed"] = info

        log("django-migrator manifest --database default")
        run = self.tool(empty, "manifest", "--database", "default")
        feasible = not run.timed_out
        if run.timed_out:
            self.over("manifest_ms")
            manifest = cache.read_text() if cache else None
            out["manifest_source"] = "cache" if manifest else None
        else:
            out["manifest_ms"] = round(run.ms, 1)
            out["manifest_memory"] = memory(run)
            manifest = run.stdout
            out["manifest_source"] = "this run"
        if manifest:
            out["manifest_bytes"] = len(manifest.encode())

        plain_ok = tool_ok = False
        if feasible:
            log("from empty: a plain loop of manage.py migrate")
            fresh(self.sock, self.port, plain)
            loop = []
            for alias in ALIASES:
                loop += self.django(plain, "migrate", "--database", alias, "--noinput", "-v", "0",
                                    timeout=self.timeout)
                if loop[-1].timed_out:
                    break
            if loop[-1].timed_out:
                self.over("loop_migrate_ms")
            else:
                out["loop_migrate_ms"] = round(sum(r.ms for r in loop), 1)
                plain_ok = True
            if not plain_ok:
                out["notes"].append("migrate-all: not started, Django's own migrate (which it runs) went over the limit")
            else:
                log("from empty: django-migrator migrate-all")
                run = self.tool(tool, "migrate-all", "--skip-makemigrations", "--format", "json")
                if run.timed_out:
                    self.over("migrate_all_ms")
                else:
                    report = json.loads(run.stdout)
                    out["migrate_all_ms"] = round(run.ms, 1)
                    out["migrate_all_memory"] = memory(run)
                    out["migrate_all_timings"] = report["timings_ms"]
                    out["migrate_all_alias_timings"] = {a["alias"]: a["timings_ms"] for a in report["aliases"]}
                    out["migrate_all_clean"] = report["all_clean"]
                    tool_ok = True
            if plain_ok and tool_ok:
                out["migrate_all_ratio"] = round(out["migrate_all_ms"] / out["loop_migrate_ms"], 2)
        else:
            out["migrate_skipped"] = True

        checked = tool if tool_ok else plain if plain_ok else None
        if checked is None:
            log("no migrate finished: the final models' schema, recorded with migrate --fake")
            checked = tool
            started = time.perf_counter()
            self.django(checked, "shell", "-c", SCHEMA_FROM_MODELS)
            self.django(checked, "migrate", "--fake", "--database", "default", "--noinput", "-v", "0")
            out["fake_migrated_ms"] = round((time.perf_counter() - started) * 1000, 1)
            out["checked_db"] = "models + migrate --fake"
        else:
            out["checked_db"] = "migrate-all" if checked == tool else "manage.py migrate"

        log("on the migrated database: a loop of migrate --check against check")
        samples = []
        for _ in range(self.runs):
            samples.append(sum(self.django(checked, "migrate", "--check", "--database", a, "-v", "0")[0].ms
                               for a in ALIASES))
        out["loop_check_ms"] = round(statistics.median(samples), 1)
        if feasible:
            runs, stopped = [], False
            for _ in range(self.runs):
                run = self.tool(checked, "--no-cache", "check", "--skip-makemigrations", "--format", "json",
                                expect=(0, 1))
                stopped = run.timed_out
                if stopped:
                    break
                runs.append(run)
                if run.ms > LONG_MS:
                    break  # one sample of a long command
            if stopped:
                self.over("check_ms")
            else:
                report = json.loads(runs[-1].stdout)
                out["check_ms"] = median_ms(runs)
                out["check_ratio"] = round(out["check_ms"] / out["loop_check_ms"], 2)
                out["check_memory"] = memory(max(runs, key=lambda r: r.child_kib))
                out["check_timings"] = report["timings_ms"]
                out["check_alias_timings"] = {a["alias"]: a["timings_ms"] for a in report["aliases"]}
                out["check_statuses"] = {a["alias"]: a["status"] for a in report["aliases"]}
                # With the cache on, so that this run (Django started) fills it for the runs below;
                # measured again with --no-cache if the cache already held the project.
                run = self.tool(checked, "check", "--format", "json", expect=(0, 1))
                if not run.timed_out and json.loads(run.stdout).get("project", {}).get("source") == "cache":
                    run = self.tool(checked, "--no-cache", "check", "--format", "json", expect=(0, 1))
                if run.timed_out:
                    self.over("check_with_makemigrations_ms")
                else:
                    out["check_with_makemigrations_ms"] = round(run.ms, 1)
        else:
            out["check_ms"] = None

        # With the project cache: the first check fills it when it is not filled yet.
        limit = self.timeout if feasible else 60
        first = self.tool(checked, "check", "--format", "json", expect=(0, 1), timeout=limit)
        if first.timed_out:
            self.over("check_cached_ms", limit)
            out["notes"].append("check with the cache: no cached export of this project "
                                "(BENCH_BIG_PRIME=1 fills it)")
        else:
            runs = [self.tool(checked, "check", "--format", "json", expect=(0, 1)) for _ in range(self.runs)]
            reports = [json.loads(r.stdout) for r in runs]
            sources = {r.get("project", {}).get("source") for r in reports}
            if sources != {"cache"}:
                out["notes"].append(f"check with the cache: the project came from {sorted(map(str, sources))}")
            out["check_cached_ms"] = median_ms(runs)
            out["check_cached_ratio"] = round(out["check_cached_ms"] / out["loop_check_ms"], 2)
            out["check_cached_memory"] = memory(max(runs, key=lambda r: r.own_kib))
            out["check_cached_timings"] = reports[-1]["timings_ms"]
            out["check_cached_alias_timings"] = {a["alias"]: a["timings_ms"] for a in reports[-1]["aliases"]}
            out["check_cached_statuses"] = {a["alias"]: a["status"] for a in reports[-1]["aliases"]}

        if manifest:
            out["scan"] = self.scan(checked, manifest, loaded=checked == tool and tool_ok)
        for db in (empty, plain, tool):
            psql(self.sock, self.port, f"DROP DATABASE IF EXISTS {db}")
        return out

    def scan(self, db, manifest, loaded):
        """A fresh backend's memory around scan() on the migrated database, manifest loaded."""
        log("scan() in a fresh backend")
        dsn = f"host={self.sock} port={self.port} user=postgres dbname={db}"
        if not loaded:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT django_migrator.load_manifest(%s::jsonb)", (manifest,))
        with psycopg.connect(dsn, autocommit=True) as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            result = {"before": status(pid)}
            for label in ("first", "second"):
                started = time.perf_counter()
                rows = conn.execute("SELECT * FROM django_migrator.scan()").fetchall()
                result[f"{label}_ms"] = round((time.perf_counter() - started) * 1000, 1)
                result[f"after_{label}"] = status(pid)
            result["rows"] = len(rows)
            result["kinds"] = sorted({row[2] for row in rows})
            info = conn.execute("SELECT migrations, effects FROM django_migrator.manifest_info()").fetchone()
            result["manifest_migrations"], result["manifest_effects"] = info
        result["loaded_by"] = "migrate-all" if loaded else "load_manifest()"
        return result


def status(pid):
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(line.split()[1])
    return values


def main():
    sock, port = sys.argv[1], int(sys.argv[2])
    sizes = [int(a) for a in os.environ.get("BENCH_BIG_APPS", "4,40").split(",")]
    timeout = int(os.environ.get("BENCH_BIG_TIMEOUT", "180"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    prime = os.environ.get("BENCH_BIG_PRIME") == "1"
    results = [Size(apps, sock, port, timeout, runs).measure(prime) for apps in sizes]
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
