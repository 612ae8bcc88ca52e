"""django-migrator against plain loops of Django's own commands, on the example project.

Run by `make bench`. One throwaway cluster; each sample starts from fresh databases (migrate) or
migrated ones (check). Aliases in the plain loops are every alias of DATABASES, as a helper
script looping over them would run them. Each figure is the median of BENCH_RUNS samples.

`check` runs twice over: with `--no-cache` (Django started, the project read) and with the
project cache of a previous run (in a cache directory of this bench's own). The peak memory
(VmHWM) of the CLI and of the Django process it starts is measured in separate runs (see
bench/measure.py), so that sampling /proc does not touch the timed runs.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = str(ROOT / "target" / "release" / "django-migrator")
PYTHON = str(ROOT / ".venv" / "bin" / "python")
MANAGE = str(ROOT / "examples" / "shop" / "manage.py")
ALIASES = ["default", "analytics", "replica"]


def env(sock, port, prefix, cache_dir):
    return {**os.environ, "SHOP_PGHOST": sock, "SHOP_PGPORT": str(port), "SHOP_PGUSER": "postgres",
            "SHOP_DB_PREFIX": prefix, "DJANGO_MIGRATOR_CACHE_DIR": cache_dir}


def psql(sock, port, sql, db="postgres"):
    subprocess.run(["psql", "-h", sock, "-p", str(port), "-U", "postgres", "-d", db, "-Atqc", sql],
                   check=True, capture_output=True)


def fresh(sock, port, prefix):
    for name in ("shop", "shop_analytics"):
        psql(sock, port, f"DROP DATABASE IF EXISTS {prefix}{name}")
        psql(sock, port, f"CREATE DATABASE {prefix}{name}")
        psql(sock, port, "CREATE EXTENSION django_migrator", db=f"{prefix}{name}")


def timed(argvs, environment, expect=(0,)):
    """Runs the commands one after the other; wall time in ms."""
    started = time.perf_counter()
    for argv in argvs:
        proc = subprocess.Popen(argv, env=environment, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        _, status, _ = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code not in expect:
            raise SystemExit(f"{argv} exited {code}: {proc.stderr.read().decode()[-2000:]}")
    return (time.perf_counter() - started) * 1000


def peaks(run):
    """Peak resident memory (KiB) of the CLI itself and of the Django process it started."""
    return {"cli_kib": run.own_kib, "django_kib": run.child_kib}


def median(samples):
    return round(statistics.median(samples), 1)


def main():
    sock, port = sys.argv[1], int(sys.argv[2])
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    prefix = "cb_"
    cache_dir = tempfile.mkdtemp(prefix="django-migrator-bench-cache-", dir="/var/tmp")
    e = env(sock, port, prefix, cache_dir)
    cli = [BIN, "--manage", MANAGE, "--python", PYTHON]
    loop_migrate = [[PYTHON, MANAGE, "migrate", "--database", a, "--noinput", "-v", "0"] for a in ALIASES]
    loop_check = [[PYTHON, MANAGE, "migrate", "--check", "--database", a, "-v", "0"] for a in ALIASES]
    results = {}
    samples = {k: [] for k in ("loop_migrate", "migrate_all", "migrate_all_with_makemigrations",
                               "loop_check", "check", "check_with_makemigrations", "check_cached")}
    try:
        for _ in range(runs):
            fresh(sock, port, prefix)
            samples["loop_migrate"].append(timed(loop_migrate, e))
            fresh(sock, port, prefix)
            samples["migrate_all"].append(timed([cli + ["migrate-all", "--skip-makemigrations"]], e))
            fresh(sock, port, prefix)
            samples["migrate_all_with_makemigrations"].append(timed([cli + ["migrate-all"]], e))
            samples["loop_check"].append(timed(loop_check, e))
            samples["check"].append(timed([cli + ["--no-cache", "check", "--skip-makemigrations"]], e))
            samples["check_with_makemigrations"].append(timed([cli + ["--no-cache", "check"]], e))
            timed([cli + ["check"]], e)  # fills the project cache if it is not filled yet
            samples["check_cached"].append(timed([cli + ["check"]], e))
        for key, values in samples.items():
            results[f"{key}_ms"] = median(values)
        results["migrate_all_ratio"] = round(results["migrate_all_ms"] / results["loop_migrate_ms"], 2)
        results["check_ratio"] = round(results["check_ms"] / results["loop_check_ms"], 2)
        results["check_cached_ratio"] = round(results["check_cached_ms"] / results["loop_check_ms"], 2)

        # Memory, in runs of their own.
        fresh(sock, port, prefix)
        results["migrate_all_memory"] = peaks(measure.run(cli + ["migrate-all", "--skip-makemigrations"], env=e))
        results["check_memory"] = peaks(measure.run(cli + ["--no-cache", "check", "--skip-makemigrations"], env=e))
        timed([cli + ["check"]], e)  # migrate-all --skip-makemigrations left no makemigrations verdict
        results["check_cached_memory"] = peaks(measure.run(cli + ["check"], env=e))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
