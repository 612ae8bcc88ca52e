"""Where the `django-migrator` binary and the project's manage.py are, and the CLI's global flags.

Shared by the management commands and the Python API. Stdlib only at import time.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

from .errors import BinaryNotFound

BINARY_NAME = "django-migrator" + (".exe" if os.name == "nt" else "")
BIN_ENV = "DJANGO_MIGRATOR_BIN"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_binary() -> str:
    """The CLI to run, in this order:

    1. next to the current interpreter (``Path(sys.executable).parent``), where installing the
       wheel puts it, so the binary always matches the installed Python package;
    2. ``$DJANGO_MIGRATOR_BIN``;
    3. the first ``django-migrator`` on ``PATH``.
    """
    beside = Path(sys.executable).parent / BINARY_NAME
    if _is_executable(beside):
        return str(beside)
    from_env = os.environ.get(BIN_ENV)
    if from_env:
        path = Path(from_env).expanduser()
        if not _is_executable(path):
            raise BinaryNotFound(
                f"{BIN_ENV}={from_env} is not an executable file", exit_status=2
            )
        return str(path)
    on_path = shutil.which(BINARY_NAME)
    if on_path:
        return on_path
    raise BinaryNotFound(
        f"cannot find the {BINARY_NAME} binary: it is not next to this interpreter "
        f"({beside.parent}), {BIN_ENV} is not set and it is not on PATH. Install the "
        f"django-migrator package into this environment (its wheel ships the binary; from a "
        f"checkout: pip install ./python), or set {BIN_ENV} to the binary's path",
        exit_status=2,
    )


def _settings_module() -> str | None:
    module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if module:
        return module
    conf = sys.modules.get("django.conf")
    if conf is not None and conf.settings.configured:
        return getattr(conf.settings, "SETTINGS_MODULE", None)
    return None


def find_manage() -> Path | None:
    """The project's manage.py, as an absolute path, or None to leave it to the CLI's own
    configuration (--manage, DJANGO_MIGRATOR_MANAGE, pyproject.toml, ./manage.py).

    1. the script being run, when it is a manage.py (``python manage.py migrate_all``);
    2. manage.py in the current directory;
    3. manage.py beside the settings module's top-level package (the layout `startproject`
       makes), for a plain Python process with DJANGO_SETTINGS_MODULE set.
    """
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "manage.py" and script.is_file():
        return Path(os.path.abspath(script))
    here = Path.cwd() / "manage.py"
    if here.is_file():
        return here
    module = _settings_module()
    if module:
        try:
            spec = importlib.util.find_spec(module.split(".", 1)[0])
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and spec.origin not in ("built-in", "frozen"):
            candidate = Path(spec.origin).resolve().parent.parent / "manage.py"
            if candidate.is_file():
                return candidate
    return None


def verbosity_flags(verbosity: int) -> list[str]:
    """Django's --verbosity as the CLI's -q / -v."""
    if verbosity <= 0:
        return ["-q"]
    if verbosity >= 2:
        return ["-v"]
    return []


def global_flags(*, manage=None, python=None, settings=None, fmt=None, color=None,
                 verbosity=1, connect_timeout=None) -> list[str]:
    """The CLI's global flags, before the subcommand."""
    argv: list[str] = []
    if manage is not None:
        argv += ["--manage", str(manage)]
    if python is not None:
        argv += ["--python", str(python)]
    if settings:
        argv += ["--settings", settings]
    if fmt:
        argv += ["--format", fmt]
    if color:
        argv += ["--color", color]
    if connect_timeout is not None:
        argv += ["--connect-timeout", str(connect_timeout)]
    argv += verbosity_flags(verbosity)
    return argv


def exit_status(returncode: int) -> int:
    """A child's return code as a shell would report it (128 + N when killed by signal N)."""
    return 128 - returncode if returncode < 0 else returncode
