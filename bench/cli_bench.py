"""django-migrator against plain loops of Django's own commands, on the example project.

Run by `make bench`. One throwaway cluster; each sample starts from fresh databases (migrate) or
migrated ones (check). Aliases in the plain loops are every alias of DATABASES, as a helper
script looping over them would run them. Each figure is the median of BENCH_RUNS samples.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = str(ROOT / "target" / "release" / "django-migrator")
PYTHON = str(ROOT / ".venv" / "bin" / "python")
MANAGE = str(ROOT / "examples" / "shop" / "manage.py")
ALIASES = ["default", "analytics", "replica"]


def env(sock, port, prefix):
    return {**os.environ, "SHOP_PGHOST": sock, "SHOP_PGPORT": str(port), "SHOP_PGUSER": "postgres",
            "SHOP_DB_PREFIX": prefix}


def psql(sock, port, sql, db="postgres"):
    subprocess.run(["psql", "-h", sock, "-p", str(port), "-U", "postgres", "-d", db, "-Atqc", sql],
                   check=True, capture_output=True)


def fresh(sock, port, prefix):
    for name in ("shop", "shop_analytics"):
        psql(sock, port, f"DROP DATABASE IF EXISTS {prefix}{name}")
        psql(sock, port, f"CREATE DATABASE {prefix}{name}")
        psql(sock, port, "CREATE EXTENSION django_migrator", db=f"{prefix}{name}")


def timed(argvs, environment, expect=(0,)):
    """Runs the commands one after the other; wall time in ms and the largest peak RSS (KiB)."""
    started = time.perf_counter()
    peak = 0
    for argv in argvs:
        proc = subprocess.Popen(argv, env=environment, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code not in expect:
            raise SystemExit(f"{argv} exited {code}: {proc.stderr.read().decode()[-2000:]}")
        peak = max(peak, usage.ru_maxrss)
    return (time.perf_counter() - started) * 1000, peak


def median(samples):
    return round(statistics.median(samples), 1)


def main():
    sock, port = sys.argv[1], int(sys.argv[2])
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    prefix = "cb_"
    e = env(sock, port, prefix)
    cli = [BIN, "--manage", MANAGE, "--python", PYTHON]
    loop_migrate = [[PYTHON, MANAGE, "migrate", "--database", a, "--noinput", "-v", "0"] for a in ALIASES]
    loop_check = [[PYTHON, MANAGE, "migrate", "--check", "--database", a, "-v", "0"] for a in ALIASES]
    results = {}
    samples = {k: [] for k in ("loop_migrate", "migrate_all", "migrate_all_with_makemigrations",
                               "loop_check", "check", "check_with_makemigrations")}
    peaks = {}
    for _ in range(runs):
        fresh(sock, port, prefix)
        t, _ = timed(loop_migrate, e)
        samples["loop_migrate"].append(t)
        fresh(sock, port, prefix)
        t, peaks["migrate_all_cli_kib"] = timed([cli + ["migrate-all", "--skip-makemigrations"]], e)
        samples["migrate_all"].append(t)
        fresh(sock, port, prefix)
        t, _ = timed([cli + ["migrate-all"]], e)
        samples["migrate_all_with_makemigrations"].append(t)
        t, _ = timed(loop_check, e)
        samples["loop_check"].append(t)
        t, peaks["check_cli_kib"] = timed([cli + ["check", "--skip-makemigrations"]], e)
        samples["check"].append(t)
        t, _ = timed([cli + ["check"]], e)
        samples["check_with_makemigrations"].append(t)
    for key, values in samples.items():
        results[f"{key}_ms"] = median(values)
    results["migrate_all_ratio"] = round(results["migrate_all_ms"] / results["loop_migrate_ms"], 2)
    results["check_ratio"] = round(results["check_ms"] / results["loop_check_ms"], 2)
    results.update(peaks)
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
