"""Writes docs/bench.md from the JSON figures of scan_bench.py and cli_bench.py."""

import json
import os
import platform
import subprocess
import sys
import time


def machine():
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        memory = int(info.readline().split()[1]) // (1024 * 1024)
    server = subprocess.run(["/usr/lib/postgresql/15/bin/postgres", "--version"],
                            capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} × {cpu}, {memory} GiB RAM, {platform.system()} {platform.release()}, {server}"


def num(value, unit=""):
    """A figure for a table cell: thousands separated; None (not measured) as a dash."""
    if value is None:
        return "—"
    if isinstance(value, float) and value >= 100:
        value = round(value)
    return f"{value:,}{unit}"


def ms_cell(size, key):
    """A wall time, or what happened instead: stopped at the limit, or not started because the
    export alone went over it."""
    value = size.get(key)
    if value is not None:
        return num(value)
    for note in size["notes"]:
        if note.startswith(f"{key}: stopped after "):
            seconds = int(note.split("after ")[1].split()[0])
            return f"> {seconds * 1000:,} (stopped)"
    if size.get("manifest_ms") is None and key != "manifest_ms":
        return "not started"
    if key == "migrate_all_ms" and any(n.startswith("migrate-all: not started") for n in size["notes"]):
        return "not started"
    return "—"


def head(sizes):
    return (" | ".join([""] + [f"{s['migrations']:,} migrations, {s['tables']:,} tables" for s in sizes]) + " |",
            "|---" + "|---:" * len(sizes) + "|")


def big_sections(big, cli):
    out = []
    small = [s for s in big if s.get("manifest_ms") is not None]
    out.append("## A generated project with a long history\n")
    out.append("`bench/bigproject.py` writes a Django project the way years of `makemigrations` leave one: N apps of 50 models "
               "and 125 migrations each (`CreateModel`, `AddField`, `AlterField`, `RenameField`, `AddIndex`, `RunPython` "
               "no-op data migrations, foreign keys into other apps with the dependencies they need, a swappable dependency on "
               "`AUTH_USER_MODEL`), plus `contenttypes` and `auth`, and the models files as the final state of that history. "
               "Two aliases, as in the example project: `default`, and `replica`, a read-only view of it (the router migrates "
               "nothing there). The project is kept under `/var/tmp/django-migrator-bench-project/` by the hash of the generator "
               "and byte-compiled. Each run checks that Django accepts it: `makemigrations --check --dry-run` says "
               "\"No changes detected\" and `migrate --plan` lists "
               + " and ".join(filter(None, [", ".join(f"{s['planned_migrations']:,}" for s in big[:-1]),
                                            f"{big[-1]['planned_migrations']:,}"]))
               + " migrations (the generated ones and those of `contenttypes` and `auth`). One command at a time; "
               f"medians of {big[0].get('runs', 3)} runs for `manage.py check`, `migrate --plan`, `showmigrations`, the loops of "
               "`migrate --check`, `--no-cache check --skip-makemigrations` and `check` with the cache; one run for the others. A command that runs longer "
               f"than {big[0]['timeout_s']} s is stopped (BENCH_BIG_TIMEOUT).\n")

    out.append("### Django's own commands and the export\n")
    out.append("Wall time (ms). *export* is `timings_ms.export` of `django-migrator --no-cache check --skip-makemigrations --format json` "
               "(starting Django and reading the project); *beyond start-up* subtracts `manage.py check`.\n")
    h, r = head(big)
    out += ["| command" + h, r]
    rows = [
        ("`manage.py check` (Django start-up)", lambda s: num(s["django_check_ms"])),
        ("`manage.py makemigrations --check --dry-run`", lambda s: num(s["makemigrations_check_ms"])),
        ("`manage.py migrate --plan` (empty database)", lambda s: num(s["migrate_plan_ms"])),
        ("`manage.py showmigrations`", lambda s: num(s["showmigrations_ms"])),
        ("`django-migrator manifest --database default`", lambda s: ms_cell(s, "manifest_ms")),
        ("export in `check` (`timings_ms.export`)", lambda s: num((s.get("check_timings") or {}).get("export"))),
        ("export beyond start-up", lambda s: num(s["check_timings"]["export"] - s["django_check_ms"])
            if s.get("check_timings") else "—"),
        ("manifest of `default` (MB of JSON)", lambda s: num(round(s["manifest_bytes"] / 1e6, 1)) if s.get("manifest_bytes") else "—"),
    ]
    for name, cell in rows:
        out.append(f"| {name} | " + " | ".join(cell(s) for s in big) + " |")
    primed = [s for s in big if s.get("primed") and s.get("manifest_ms") is None]
    for s in primed:
        p = s["primed"]
        out.append(f"\nWithout a limit, in the run that filled the cache ({p['date']}, BENCH_BIG_PRIME=1) at "
                   f"{s['migrations']:,} migrations: `manifest --database default` took {num(p['manifest_ms'])} ms and "
                   f"`check` (with makemigrations) {num(p['check_ms'])} ms, of which `timings_ms.export` "
                   f"{num(p['check_timings'].get('export'))} ms.")
    out.append("")

    out.append("### `check` against a loop of `manage.py migrate --check --database X`\n")
    out.append("On the migrated database, both aliases. `--no-cache` starts Django and reads the project; plain `check` uses the project "
               "cache of an earlier run (nothing Django read has changed), so Django is not started; both scan `default`.\n")
    h, r = head(big)
    out += ["| command" + h, r]
    def ratio(s, key, base):
        return f" ({s[key] / s[base]:.2f}×)" if s.get(key) and s.get(base) else ""
    rows = [
        ("loop of `manage.py migrate --check --database X`", lambda s: num(s["loop_check_ms"])),
        ("`django-migrator --no-cache check --skip-makemigrations`", lambda s: ms_cell(s, "check_ms") + ratio(s, "check_ms", "loop_check_ms")),
        ("`django-migrator --no-cache check` (with makemigrations)", lambda s: ms_cell(s, "check_with_makemigrations_ms")),
        ("`django-migrator check` (project cache)", lambda s: ms_cell(s, "check_cached_ms") + ratio(s, "check_cached_ms", "loop_check_ms")),
        ("of which `scan` on default (`timings_ms`)", lambda s: num((s.get("check_cached_alias_timings") or {}).get("default", {}).get("scan"))),
        ("the database was migrated by", lambda s: s["checked_db"]),
    ]
    for name, cell in rows:
        out.append(f"| {name} | " + " | ".join(cell(s) for s in big) + " |")
    out.append("")

    out.append("### `migrate-all` against a loop of `manage.py migrate --database X`, from empty databases\n")
    h, r = head(big)
    out += ["| command" + h, r]
    skipped = lambda s, v: "not run (see below)" if s.get("migrate_skipped") else v
    rows = [
        ("loop of `manage.py migrate --database X`", lambda s: skipped(s, ms_cell(s, "loop_migrate_ms"))),
        ("`django-migrator migrate-all --skip-makemigrations`", lambda s: skipped(s, ms_cell(s, "migrate_all_ms") + ratio(s, "migrate_all_ms", "loop_migrate_ms"))),
        ("of which export (`timings_ms.export`)", lambda s: skipped(s, num((s.get("migrate_all_timings") or {}).get("export")))),
        ("of which Django's migrate on default", lambda s: skipped(s, num((s.get("migrate_all_alias_timings") or {}).get("default", {}).get("migrate")))),
    ]
    for name, cell in rows:
        out.append(f"| {name} | " + " | ".join(cell(s) for s in big) + " |")
    for s in big:
        if any(n.startswith("migrate-all: not started") for n in s["notes"]):
            out.append(f"\nAt {s['migrations']:,} migrations the plain loop went over {s['timeout_s']} s, so `migrate-all`, which "
                       "runs the same Django `migrate` after its export, was not started. The `check` figures use a database built "
                       "from the final models (Django's schema editor) and recorded with `migrate --fake` "
                       f"({num(s.get('fake_migrated_ms'))} ms).")
        if s.get("migrate_skipped"):
            note = (f"\nAt {s['migrations']:,} migrations neither was started: the export alone went over {s['timeout_s']} s, and from "
                    "empty Django's `migrate` replays the same history on rendered model states")
            if small:
                m = small[-1]
                note += (f" (at {m['migrations']:,} migrations the loop took {num(m.get('loop_migrate_ms'))} ms, "
                         f"the export {num(m['manifest_ms'])} ms)")
            out.append(note + f". The `check` figures use a database built from the final models (Django's schema editor) and recorded with `migrate --fake` ({num(s.get('fake_migrated_ms'))} ms).")
    out.append("")

    out.append("## Peak memory\n")
    out.append("VmHWM (peak resident set) from `/proc/<pid>/status`, sampled every 10 ms until each process ends, in MiB: the "
               "`django-migrator` process itself, and the Django process it starts (`manage.py shell` serving the run; none when "
               "the project cache is used). One command at a time.\n")
    out.append("| project | command | CLI | Django process |")
    out.append("|---|---|---:|---:|")
    def mem_row(project, command, m):
        if m:
            django = num(m["django_mib"]) if m["django_mib"] else "not started"
            out.append(f"| {project} | {command} | {num(m['cli_mib'])} | {django} |")
    mib = lambda m: m and {"cli_mib": round(m["cli_kib"] / 1024, 1), "django_mib": round(m["django_kib"] / 1024, 1)}
    mem_row("example (`examples/shop`)", "`migrate-all --skip-makemigrations`", mib(cli.get("migrate_all_memory")))
    mem_row("example (`examples/shop`)", "`--no-cache check --skip-makemigrations`", mib(cli.get("check_memory")))
    mem_row("example (`examples/shop`)", "`check` (project cache)", mib(cli.get("check_cached_memory")))
    for s in big:
        name = f"generated, {s['migrations']:,} migrations"
        mem_row(name, "`manifest --database default`", s.get("manifest_memory"))
        mem_row(name, "`migrate-all --skip-makemigrations`", s.get("migrate_all_memory"))
        mem_row(name, "`--no-cache check --skip-makemigrations`", s.get("check_memory"))
        if s.get("primed") and s.get("manifest_ms") is None:
            p = s["primed"]
            mem_row(name, f"`manifest --database default`, without a limit ({p['date']})", p["manifest_memory"])
            mem_row(name, f"`check` without a limit, filling the cache ({p['date']})", p["check_memory"])
        mem_row(name, "`check` (project cache)", s.get("check_cached_memory"))
    out.append("")

    out.append("### A PostgreSQL backend around `scan()`\n")
    out.append("On the migrated database of each generated project, with its manifest loaded: a new connection reads "
               "`pg_backend_pid()`, then VmHWM and VmRSS of that backend from `/proc/<pid>/status` before and after each of two "
               "`SELECT * FROM django_migrator.scan()` (the second reuses the parsed manifest the backend keeps).\n")
    scans = [s for s in big if s.get("scan")]
    h, r = head(scans)
    out += ["| " + h, r]
    k = lambda v: num(round(v / 1024, 1))
    rows = [
        ("manifest (migrations · effects)", lambda c: f"{c['manifest_migrations']:,} · {c['manifest_effects']:,}"),
        ("manifest from", lambda c, s=None: c["loaded_by"]),
        ("VmHWM before (MiB)", lambda c: k(c["before"]["VmHWM"])),
        ("VmHWM after the first scan (MiB)", lambda c: k(c["after_first"]["VmHWM"])),
        ("VmHWM after the second scan (MiB)", lambda c: k(c["after_second"]["VmHWM"])),
        ("VmRSS after the second scan (MiB)", lambda c: k(c["after_second"]["VmRSS"])),
        ("first scan (ms)", lambda c: num(c["first_ms"])),
        ("second scan (ms)", lambda c: num(c["second_ms"])),
        ("drift rows", lambda c: f"{c['rows']}" + (f" ({', '.join(c['kinds'])})" if c["kinds"] else "")),
    ]
    for name, cell in rows:
        out.append(f"| {name} | " + " | ".join(cell(s["scan"]) for s in scans) + " |")
    for s in scans:
        if s.get("manifest_source") == "cache":
            out.append(f"\nThe {s['migrations']:,}-migration manifest was exported by the run that filled the cache "
                       f"({s['primed']['date']}), kept by the hashes of the generator and of `exporter.py`"
                       + ("." if s["primed"].get("current_exporter", True) else
                          "; `exporter.py` has changed since."))
    # A command stopped at the limit shows as such in its table.
    notes = [f"{s['migrations']:,} migrations: {n}" for s in big for n in s["notes"] if ": stopped after " not in n and ": not started" not in n]
    if notes:
        out.append("\nNotes: " + "; ".join(notes) + ".")
    out.append("")

    out.append("### Reproduce\n")
    out.append("```sh")
    out.append("bash bench/run.sh                       # everything above (make bench); BENCH_RUNS=3")
    out.append("BENCH_BIG_APPS=4,8,40 BENCH_BIG_TIMEOUT=600 bash bench/run.sh   # other sizes, a longer limit")
    out.append("BENCH_BIG_PRIME=1 bash bench/run.sh     # once per version of generator and exporter: the large export without a limit")
    out.append("python bench/bigproject.py /tmp/big 40  # the generated project alone (40 apps)")
    out.append("cd /var/tmp/django-migrator-bench-project/<hash>-40")
    out.append("export BIG_PGHOST=/path/to/socket-dir BIG_PGPORT=5432 BIG_DB_NAME=big")
    out.append("python manage.py migrate --plan; python manage.py makemigrations --check --dry-run")
    out.append("django-migrator --no-cache check --skip-makemigrations --format json   # timings_ms.export")
    out.append("psql -d big   # SELECT pg_backend_pid();  \\! grep -E 'VmHWM|VmRSS' /proc/<pid>/status")
    out.append("              # SELECT * FROM django_migrator.scan();  \\! grep -E 'VmHWM|VmRSS' /proc/<pid>/status")
    out.append("```")
    return out


def main():
    scan, cli, big = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
    out = []
    out.append("# Benchmarks\n")
    out.append("Written by `make bench` (bench/run.sh); do not edit by hand. Each ratio is measured side by side in one run on one machine:\n")
    out.append(f"- machine: {machine()}")
    out.append(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    out.append("## `scan()` against the catalog read it needs\n")
    out.append("A synthetic history of N migrations over T tables (the first T create a table of five columns, the rest add a column), all recorded, the physical schema matching. *raw* is the catalog query scan() runs plus the read of `django_migrations`, as plain SQL; *scan* is `SELECT count(*) FROM django_migrator.scan()`; medians of 15 runs after a warm-up. *backend peak growth* is the growth of the backend's peak resident memory (VmHWM) over the scans, on a fresh connection.\n")
    out.append("| migrations | tables | raw (ms) | scan (ms) | scan / raw | backend peak growth (MiB) | drift rows |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|")
    for r in scan:
        out.append(f"| {r['migrations']} | {r['tables']} | {r['raw_ms']} | {r['scan_ms']} | {r['ratio']} | "
                   f"{r['backend_peak_growth_kib'] / 1024:.1f} | {r['drift_rows']} |")
    out.append("\nTarget: scan ≤ 3× raw at every size, and ≤ 100 ms at 5,000 migrations over 2,000 tables.\n")
    out.append("## The CLI against plain loops of Django's commands\n")
    out.append("The example project (`examples/shop`: three aliases, one a read-only mirror of default). The plain loops run `manage.py migrate [--check] --database X` for every alias of `DATABASES`; the django-migrator runs include the guards, the lock, load_manifest, scan before and after, and (where it says so) makemigrations. `--no-cache` starts Django and reads the project; plain `check` reads the project cache of the run before (nothing Django read has changed) and does not start Django. Medians of 3 runs; migrate runs start from empty databases, check runs from migrated ones.\n")
    rows = [
        ("loop of `manage.py migrate --database X`", cli["loop_migrate_ms"], ""),
        ("`django-migrator migrate-all --skip-makemigrations`", cli["migrate_all_ms"], f"{cli['migrate_all_ratio']}× the loop"),
        ("`django-migrator migrate-all` (with makemigrations)", cli["migrate_all_with_makemigrations_ms"], ""),
        ("loop of `manage.py migrate --check --database X`", cli["loop_check_ms"], ""),
        ("`django-migrator --no-cache check --skip-makemigrations`", cli["check_ms"], f"{cli['check_ratio']}× the loop"),
        ("`django-migrator --no-cache check` (with makemigrations)", cli["check_with_makemigrations_ms"], ""),
        ("`django-migrator check` (project cache)", cli["check_cached_ms"], f"{cli['check_cached_ratio']}× the loop"),
    ]
    out.append("| command | wall time (ms) | ratio |")
    out.append("|---|---:|---|")
    for name, ms, ratio in rows:
        out.append(f"| {name} | {ms} | {ratio} |")
    out.append("\nPeak memory of these runs: see [Peak memory](#peak-memory).\n")
    out.append("Targets: check ≤ 0.5× the loop, and ≤ 0.05× when no migration file changed (the project cache); migrate-all ≤ 1.0× the loop. One Django process serves the whole run (makemigrations, the export and every alias's migrate), where a loop starts Django once per alias.\n")
    out += big_sections(big, cli)
    print("\n".join(out))


if __name__ == "__main__":
    main()
