#!/usr/bin/env bash
# The demo: a throwaway PostgreSQL cluster, the bundled multi-database project
# (examples/shop), and django-migrator finding drift that plain `migrate` never sees.
# Expects `make build` to have run (the Makefile's `demo` target does that).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=/var/tmp/django-migrator-demo
PORT=${DEMO_PORT:-55450}
BIN="$ROOT/target/release/django-migrator"

export SHOP_PGHOST="$DIR/sock" SHOP_PGPORT="$PORT" SHOP_PGUSER=postgres SHOP_DB_PREFIX=demo_
migrator() { "$BIN" --manage "$ROOT/examples/shop/manage.py" --python "$ROOT/.venv/bin/python" "$@"; }
sql() { psql -h "$SHOP_PGHOST" -p "$PORT" -U postgres -X -q -d "$1" -c "$2"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Runs a command that must exit with the given status; anything else fails the demo.
expect() {
    local want=$1
    shift
    local got=0
    "$@" || got=$?
    if [ "$got" -ne "$want" ]; then
        echo "demo: expected exit status $want from '$*', got $got" >&2
        exit 1
    fi
    printf '(exit status %s, as expected)\n' "$got"
}

bash scripts/cluster.sh stop "$DIR" >/dev/null 2>&1 || true
trap 'bash scripts/cluster.sh stop "$DIR"' EXIT
step "Starting a throwaway PostgreSQL 15 cluster in $DIR (port $PORT)"
bash scripts/cluster.sh start "$DIR" "$PORT"
for db in demo_shop demo_shop_analytics; do
    sql postgres "CREATE DATABASE $db"
done

step "django-migrator install: CREATE EXTENSION django_migrator on every alias"
migrator install

step "django-migrator check on empty databases: everything pending, nothing written"
expect 1 migrator check

step "django-migrator migrate-all: guards, lock, scan, Django's migrate per alias, re-scan"
expect 0 migrator migrate-all

step "Life happens: a table dropped on analytics, a history row deleted on default, a column dropped by a hotfix"
sql demo_shop_analytics "DROP TABLE metrics_pageview"
sql demo_shop "DELETE FROM django_migrations WHERE app = 'catalog' AND name = '0002_product_sku'"
sql demo_shop "ALTER TABLE taggit_tag DROP COLUMN slug"
echo "Django itself still says all is well:"
(cd examples/shop && "$ROOT/.venv/bin/python" manage.py migrate --check --database analytics && echo "  manage.py migrate --check --database analytics: exit 0")

step "django-migrator check: the drift, found by the extension"
expect 1 migrator check

step "The same from psql: SELECT * FROM django_migrator.scan() on default"
sql demo_shop "SELECT app, name, kind, present, missing, detail FROM django_migrator.scan()"
sql demo_shop "SELECT * FROM django_migrator.drift_summary ORDER BY kind"

step "migrate-all refuses to migrate a drifted alias, and says why"
expect 1 migrator migrate-all --database analytics

step "Stopping the cluster"
