#!/usr/bin/env bash
# Run tests/python under every supported Django version, each in its own virtualenv:
#
#   4.2  .venvs/django42  (DJANGO_SPEC='Django>=4.2,<4.3', the default python3)
#   5.2  .venv            (python/requirements-dev.txt as it is)
#   6.0  .venvs/django60  (DJANGO_SPEC='Django>=6.0,<6.1'; Django 6 needs Python >= 3.12, so this
#                          one runs only when such an interpreter is found: python3.12 ... on
#                          PATH, or a pyenv version)
#
#   DJANGO_VERSIONS="4.2 5.2"   run only these (default: 4.2 5.2 6.0)
#   extra arguments             passed to pytest, e.g. -k api
#
# tests/python/test_django_app.py needs the release CLI and the extension installed (make build).
# Prints which versions ran and how; exits non-zero if any run failed.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 2
versions="${DJANGO_VERSIONS:-4.2 5.2 6.0}"
summary=()
failed=0

# A Python >= 3.12 that actually runs (pyenv shims exist for versions that are not selected).
find_python312() {
    local candidate
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    for candidate in python3.14 python3.13 python3.12 \
        "$pyenv_root"/versions/3.1[2-9]*/bin/python3; do
        if "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' \
            >/dev/null 2>&1; then
            command -v "$candidate" 2>/dev/null || echo "$candidate"
            return 0
        fi
    done
    return 1
}

run_tests() {
    local venv="$1"
    shift
    local version
    version="$("$venv/bin/python" -c \
        'import django, platform; print(f"Django {django.get_version()} on Python {platform.python_version()}")')" \
        || { summary+=("FAILED  $venv: cannot import Django"); failed=1; return; }
    echo
    echo "== $version ($venv)"
    if "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider "$@"; then
        summary+=("passed  $version ($venv)")
    else
        summary+=("FAILED  $version ($venv)")
        failed=1
    fi
}

for version in $versions; do
    case "$version" in
    4.2)
        if DJANGO_SPEC='Django>=4.2,<4.3' VENV=.venvs/django42 bash scripts/venv.sh; then
            run_tests .venvs/django42 "$@"
        else
            summary+=("FAILED  Django 4.2: could not set up .venvs/django42"); failed=1
        fi
        ;;
    5.2)
        if bash scripts/venv.sh; then
            run_tests .venv "$@"
        else
            summary+=("FAILED  Django 5.2: could not set up .venv"); failed=1
        fi
        ;;
    6.0 | 6 | 6.x)
        if ! python312="$(find_python312)"; then
            summary+=("not run Django 6.x: it needs Python >= 3.12; this machine has $(python3 -V 2>&1) and no newer interpreter was found")
            continue
        fi
        # A venv left by an older interpreter cannot run Django 6: make it anew.
        if [ -x .venvs/django60/bin/python ] && ! .venvs/django60/bin/python -c \
            'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            rm -rf .venvs/django60
        fi
        if [ ! -x .venvs/django60/bin/python ]; then
            mkdir -p .venvs && "$python312" -m venv .venvs/django60
        fi
        if DJANGO_SPEC='Django>=6.0,<6.1' VENV=.venvs/django60 bash scripts/venv.sh; then
            run_tests .venvs/django60 "$@"
        else
            summary+=("FAILED  Django 6.0: could not set up .venvs/django60"); failed=1
        fi
        ;;
    *)
        summary+=("FAILED  Django $version: not a supported version (4.2, 5.2, 6.0)"); failed=1
        ;;
    esac
done

echo
echo "Django versions:"
for line in "${summary[@]}"; do
    echo "  $line"
done
exit "$failed"
