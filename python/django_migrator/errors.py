"""Exceptions of the Python side (stdlib only: importable without Django settings)."""

from __future__ import annotations


class MigratorError(Exception):
    """django-migrator could not produce a report: a usage or configuration error (exit status
    2), a crash, or no binary at all. ``stderr`` holds what the CLI printed there."""

    def __init__(self, message: str, *, exit_status: int | None = None, stderr: str = "",
                 argv: list[str] | None = None):
        super().__init__(message)
        self.exit_status = exit_status
        self.stderr = stderr
        self.argv = list(argv or [])


class BinaryNotFound(MigratorError):
    """No `django-migrator` binary next to the interpreter, in $DJANGO_MIGRATOR_BIN or on PATH."""
