"""Benchmarks of django_migrator.scan() against the raw catalog read it needs.

Run by `make bench` (see bench/run.sh). For each size, a synthetic history is generated: N
migrations over T tables (the first T migrations create a table with five columns each, the rest
add a column to one of them), the physical schema is created to match, every migration is
recorded, and the manifest is loaded. Then, on one connection and side by side:

- `raw`: the one catalog query scan() itself runs (tables, columns, index and constraint names,
  index shapes) plus the read of django_migrations, as plain SQL;
- `scan`: SELECT count(*) FROM django_migrator.scan();

each timed as the median of repeated runs after a warm-up. The backend's peak resident memory
(VmHWM) is read from /proc before and after the scans on a fresh connection.
"""

import json
import os
import statistics
import sys
import time

import psycopg

CATALOG_SQL = """
SELECT n.nspname::text, c.relname::text,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       ARRAY(SELECT i.relname::text FROM pg_catalog.pg_index x
               JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid
             UNION SELECT k.conname::text FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid),
       ARRAY(SELECT CASE WHEN x.indisunique THEN 'u' ELSE 'i' END
                    || pg_catalog.array_to_json(ARRAY(
                           SELECT a.attname::text
                             FROM pg_catalog.unnest((x.indkey::pg_catalog.int2[])[0:x.indnkeyatts - 1])
                                  WITH ORDINALITY AS k(attnum, ord)
                             JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                            ORDER BY k.ord))::text
               FROM pg_catalog.pg_index x
              WHERE x.indrelid = c.oid AND x.indpred IS NULL AND x.indexprs IS NULL)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY (ARRAY['public']::pg_catalog.name[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""
HISTORY_SQL = "SELECT app::text, name::text, applied FROM public.django_migrations"


def manifest(migrations, tables):
    items = []
    for i in range(migrations):
        app = f"app{i % 20:02d}"
        if i < tables:
            effects = [{"kind": "create_table", "op": "CreateModel",
                        "table": {"schema": None, "name": f"t{i:05d}"},
                        "columns": ["id", "a", "b", "c", "d"]}]
        else:
            effects = [{"kind": "add_column", "op": "AddField",
                        "table": {"schema": None, "name": f"t{i % tables:05d}"},
                        "column": f"x{i:05d}"}]
        deps = [[f"app{(i - 1) % 20:02d}", f"{i - 1:05d}_m"]] if i else []
        items.append({"app": app, "name": f"{i:05d}_m", "dependencies": deps, "effects": effects})
    return {"format_version": 1, "alias": "default", "migrations": items}


def build_schema(conn, migrations, tables):
    """Creates the history's schema in a fresh database (autocommit, tables in batches, so
    that a big schema does not exhaust the lock table)."""
    columns = {t: ["id bigint PRIMARY KEY", "a text", "b text", "c int", "d int"] for t in range(tables)}
    for i in range(tables, migrations):
        columns[i % tables].append(f"x{i:05d} int")
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS django_migrator")
        cur.execute("""CREATE TABLE public.django_migrations (id bigserial PRIMARY KEY,
                       app varchar(255) NOT NULL, name varchar(255) NOT NULL,
                       applied timestamptz NOT NULL)""")
        items = list(columns.items())
        for start in range(0, len(items), 200):
            statements = [f"CREATE TABLE public.t{t:05d} ({', '.join(cols)})" for t, cols in items[start:start + 200]]
            cur.execute("; ".join(statements))
        cur.execute("""INSERT INTO public.django_migrations (app, name, applied)
                       SELECT 'app' || lpad((i %% 20)::text, 2, '0'), lpad(i::text, 5, '0') || '_m', now()
                         FROM generate_series(0, %s - 1) i""", (migrations,))
        cur.execute("SELECT django_migrator.load_manifest(%s::jsonb)",
                    (json.dumps(manifest(migrations, tables)),))


def timed(conn, sql, repeat):
    with conn.cursor() as cur:
        cur.execute(sql)
        cur.fetchall()
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            cur.execute(sql)
            cur.fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def backend_peak_kib(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def measure(admin_dsn, migrations, tables, repeat):
    database = f"dm_bench_{migrations}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.execute(f"CREATE DATABASE {database}")
    dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=database)
    with psycopg.connect(dsn, autocommit=True) as conn:
        build_schema(conn, migrations, tables)
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = backend_peak_kib(conn)
        scan = timed(conn, "SELECT count(*) FROM django_migrator.scan()", repeat)
        after = backend_peak_kib(conn)
        raw_catalog = timed(conn, CATALOG_SQL, repeat)
        raw_history = timed(conn, HISTORY_SQL, repeat)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM django_migrator.scan()")
            drift_rows = cur.fetchone()[0]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {database}")
    raw = raw_catalog + raw_history
    return {
        "migrations": migrations,
        "tables": tables,
        "raw_ms": round(raw, 2),
        "scan_ms": round(scan, 2),
        "ratio": round(scan / raw, 2),
        "backend_peak_growth_kib": after - before,
        "drift_rows": drift_rows,
    }


def main():
    dsn = sys.argv[1]
    sizes = [(100, 40), (1000, 400), (5000, 2000), (10000, 4000)]
    results = [measure(dsn, n, t, repeat=int(os.environ.get("BENCH_REPEAT", "15"))) for n, t in sizes]
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
