#!/usr/bin/env bash
# Create (or refresh) the Python development environment used by the exporter tests.
#   VENV=path         venv directory (default: <repo>/.venv)
#   DJANGO_SPEC=spec  replace the Django requirement, e.g. 'Django>=4.2,<4.3'
# pip only runs when the effective requirements changed since the last run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
req_file="$root/python/requirements-dev.txt"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi

# The effective requirements: the file, with its Django line swapped for DJANGO_SPEC when given.
reqs="$(cat "$req_file")"
if [ -n "${DJANGO_SPEC:-}" ]; then
    reqs="$(printf '%s\n' "$reqs" | grep -Eiv '^django[[:space:]]*([<>=~!]|$)' || true)"
    reqs="$(printf '%s\n%s\n' "$reqs" "$DJANGO_SPEC")"
fi

stamp="$venv/.requirements.sha256"
want="$(printf '%s\n' "$reqs" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
printf '%s\n' "$reqs" >"$tmp"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$tmp" </dev/null
printf '%s\n' "$want" >"$stamp"
