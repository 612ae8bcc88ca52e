#!/usr/bin/env bash
# Installs what the build and the tests need, and only what is missing, so that a second run
# takes about a second. Runs as root on Debian 12 with only the package registries reachable.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
say() { printf '==> %s\n' "$*" >&2; }

# 1. Debian packages: PostgreSQL 15 with its headers, libclang for pgrx's bindgen, sudo for
#    pgrx's test installer, PgBouncer for the test that a transaction pooler is refused.
packages=(postgresql-15 postgresql-server-dev-15 libclang-dev clang sudo pgbouncer)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$package")
done
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. cargo-pgrx, at exactly the version Cargo.toml pins for pgrx (the one place it is pinned).
pgrx_version=$(sed -n 's/^pgrx = "=\([0-9.]*\)"$/\1/p' Cargo.toml)
[ -n "$pgrx_version" ] || { echo "cannot read the pgrx pin from Cargo.toml" >&2; exit 1; }
if [ "$(cargo pgrx --version 2>/dev/null || true)" != "cargo-pgrx $pgrx_version" ]; then
    say "installing cargo-pgrx $pgrx_version (a few minutes, once)"
    cargo install cargo-pgrx --version "=$pgrx_version" --locked --quiet
fi

# 3. pgrx knows the system PostgreSQL 15 (offline, under a second; never downloads).
if ! grep -qs "^pg15 = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
    say "registering PostgreSQL 15 with pgrx"
    cargo pgrx init --pg15="$PG_CONFIG" >/dev/null
fi

# 4. Rust components used by `make test`.
for tool in fmt clippy; do
    cargo "$tool" --version >/dev/null 2>&1 || {
        echo "cargo $tool is missing: install the rustup component ($tool)" >&2
        exit 1
    }
done

# 5. The Python virtualenv with Django, psycopg and the example project's apps.
bash scripts/venv.sh
