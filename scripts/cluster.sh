#!/usr/bin/env bash
# Throwaway PostgreSQL 15 clusters for tests, demos and benchmarks.
#
#   scripts/cluster.sh start DIR PORT   create (first time) and start a cluster in DIR
#   scripts/cluster.sh stop DIR         stop it and remove DIR
#
# Layout: DIR/data (the cluster), DIR/sock (its Unix socket), DIR/postgres.log.
# Socket connections are trusted; TCP on 127.0.0.1:PORT needs a scram-sha-256 password, so tests
# can exercise password handling. Durability is switched off: nothing here is worth keeping.
#
# initdb and postgres refuse to run as root, so as root everything runs as the `postgres` user,
# which must be able to reach DIR: use a path under /tmp or /var/tmp, not under /root.
# Prints nothing unless something fails.
set -euo pipefail

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
# Marks a directory this script created, so `stop` never deletes anything else.
MARKER=".throwaway-postgres-cluster"

usage() {
    echo "usage: $0 start DIR PORT | $0 stop DIR" >&2
    exit 2
}

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

# Runs a command as the postgres user (directly when already that user).
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    elif [ "$(id -un)" = postgres ]; then
        "$@"
    else
        die "must run as root or as postgres"
    fi
}

is_running() {
    local data="$1"
    [ -f "$data/PG_VERSION" ] && as_postgres "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
    local dir="$1" port="$2"
    case "$port" in
        '' | *[!0-9]*) die "PORT must be a number, got '$port'" ;;
    esac
    dir="$(realpath -m -- "$dir")"
    local data="$dir/data" sock="$dir/sock" log="$dir/postgres.log"

    if is_running "$data"; then
        return 0
    fi

    if [ -e "$dir" ] && [ ! -e "$dir/$MARKER" ] && [ -n "$(ls -A -- "$dir")" ]; then
        die "$dir exists, is not empty and was not created by this script; refusing to use it"
    fi
    mkdir -p -- "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres -- "$dir"
    fi
    chmod 0755 -- "$dir"
    as_postgres test -w "$dir" ||
        die "the postgres user cannot write to $dir (pick a path under /var/tmp or /tmp)"
    as_postgres touch "$dir/$MARKER"
    as_postgres mkdir -p -- "$sock"

    # An interrupted earlier initdb leaves a partial data directory behind: start over.
    if [ -e "$data" ] && [ ! -f "$data/PG_VERSION" ]; then
        rm -rf -- "$data"
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
        local out
        if ! out="$(as_postgres "$PG_BIN/initdb" -D "$data" -A trust --auth-host=scram-sha-256 \
            -U postgres --no-sync 2>&1)"; then
            printf '%s\n' "$out" >&2
            die "initdb failed in $data"
        fi
    fi

    local options="-k $sock -c listen_addresses=127.0.0.1 -p $port"
    options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "$options" start \
        >/dev/null 2>&1; then
        [ -f "$log" ] && tail -n 30 -- "$log" >&2
        die "PostgreSQL did not start in $data on port $port"
    fi

    local i
    for i in $(seq 1 120); do
        if "$PG_BIN/pg_isready" -q -h "$sock" -p "$port" -U postgres; then
            return 0
        fi
        sleep 0.5
    done
    [ -f "$log" ] && tail -n 30 -- "$log" >&2
    die "PostgreSQL in $data is not accepting connections on port $port"
}

stop() {
    local dir="$1"
    dir="$(realpath -m -- "$dir")"
    [ -e "$dir" ] || return 0
    [ -e "$dir/$MARKER" ] || die "$dir was not created by this script; refusing to remove it"
    local data="$dir/data"
    if is_running "$data"; then
        as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            die "PostgreSQL in $data did not stop"
    fi
    rm -rf -- "$dir"
}

case "${1:-}" in
    start)
        [ $# -eq 3 ] || usage
        start "$2" "$3"
        ;;
    stop)
        [ $# -eq 2 ] || usage
        stop "$2"
        ;;
    *) usage ;;
esac
