"""The Python API: run the CLI with ``--format json`` and return its report as objects.

    migrator = Migrator(options=MigratorOptions(repair=True, dry_run=False), log=MigratorLogger())
    report = migrator.migrate_all()      # migrator.check() never writes
    if not report.all_clean: ...

Stdlib only at import time; Django settings need not be configured.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Mapping, Sequence

from .errors import MigratorError
from .report import MigrationReport, ReportFormatError
from .runner import exit_status, find_binary, find_manage, global_flags

LOGGER_NAME = "django_migrator"


class MigratorLogger:
    """Where the Migrator reports what it does and what the CLI prints on stderr.

    Wraps ``logging.getLogger("django_migrator")`` unless given another logger. CLI lines that
    start with an error or warning marker are logged at that level, the rest (progress, Django's
    output with -v) as info.
    """

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger if logger is not None else logging.getLogger(LOGGER_NAME)

    def info(self, msg, *args, **kwargs):
        self.logger.info(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self.logger.warning(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        self.logger.error(msg, *args, **kwargs)

    def cli_line(self, line: str) -> None:
        """One line the CLI wrote to stderr."""
        text = line.rstrip("\r\n")
        if not text.strip():
            return
        lowered = text.lstrip().lower()
        if lowered.startswith(("django-migrator: error", "error")):
            self.error("%s", text)
        elif lowered.startswith(("django-migrator: warning", "warning")):
            self.warning("%s", text)
        else:
            self.info("%s", text)


@dataclass
class MigratorOptions:
    """How the Migrator runs the CLI.

    ``dry_run`` makes ``migrate_all()`` a ``migrate-all --check`` (report, repair plan, no write).
    ``interactive`` lets the CLI prompt on this process's terminal (stdin and stderr are then
    inherited, so the logger gets no CLI lines); otherwise it runs with ``--non-interactive``.
    ``verbosity`` follows Django: 0 is the CLI's -q, 2 and more its -v.
    ``manage``, ``python`` and ``settings`` locate the project; by default the running manage.py
    (or ./manage.py, or the one beside the settings package), this interpreter, and the
    environment's DJANGO_SETTINGS_MODULE.
    """

    repair: bool = False
    dry_run: bool = False
    interactive: bool = False
    skip_makemigrations: bool = False
    verbosity: int = 1
    databases: Sequence[str] = ()
    lock_timeout: float | None = None
    connect_timeout: int | None = None
    fail_fast: bool = False
    manage: str | os.PathLike | None = None
    python: str | os.PathLike | None = None
    settings: str | None = None
    binary: str | os.PathLike | None = None
    env: Mapping[str, str] | None = None
    cwd: str | os.PathLike | None = None


class Migrator:
    """Runs `django-migrator` for the current project and returns typed reports."""

    def __init__(self, options: MigratorOptions | None = None, log: MigratorLogger | None = None):
        self.options = options if options is not None else MigratorOptions()
        self.log = log if log is not None else MigratorLogger()

    # The two entry points.

    def migrate_all(self) -> MigrationReport:
        """``migrate-all`` on every alias (``migrate-all --check`` when ``dry_run``)."""
        return self._run(self.command_line("migrate-all", check=self.options.dry_run))

    def check(self) -> MigrationReport:
        """``check``: guards, scan and pending migrations (and the repair plan with ``repair``);
        never writes, whatever the options say."""
        return self._run(self.command_line("check", check=False))

    # Building and running the command line.

    def command_line(self, command: str, check: bool = False) -> list[str]:
        opts = self.options
        binary = str(opts.binary) if opts.binary is not None else find_binary()
        manage = opts.manage if opts.manage is not None else find_manage()
        argv = [binary] + global_flags(
            manage=os.path.abspath(manage) if manage is not None else None,
            python=opts.python if opts.python is not None else sys.executable,
            settings=opts.settings,
            fmt="json",
            color="never",
            verbosity=opts.verbosity,
            connect_timeout=opts.connect_timeout,
        )
        argv.append(command)
        if check:
            argv.append("--check")
        if opts.repair:
            argv.append("--repair")
        if not opts.interactive:
            argv.append("--non-interactive")
        if opts.skip_makemigrations:
            argv.append("--skip-makemigrations")
        for alias in opts.databases:
            argv += ["--database", alias]
        if opts.lock_timeout is not None:
            argv += ["--lock-timeout", repr(float(opts.lock_timeout))]
        if opts.fail_fast:
            argv.append("--fail-fast")
        return argv

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.options.env:
            env.update(self.options.env)
        return env

    def _run(self, argv: list[str]) -> MigrationReport:
        interactive = self.options.interactive
        self.log.info("running %s", " ".join(argv))
        try:
            proc = subprocess.Popen(
                argv,
                stdin=None if interactive else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=None if interactive else subprocess.PIPE,
                env=self._env(),
                cwd=self.options.cwd,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as error:
            raise MigratorError(f"cannot run {argv[0]}: {error}", argv=argv) from error

        stderr_lines: list[str] = []

        def pump_stderr():
            # Line by line, as the CLI writes, so that long runs log their progress as it comes.
            for line in proc.stderr:
                stderr_lines.append(line)
                self.log.cli_line(line)

        pump = None
        if proc.stderr is not None:
            pump = threading.Thread(target=pump_stderr, name="django-migrator-stderr", daemon=True)
            pump.start()
        stdout = proc.stdout.read()
        proc.stdout.close()
        code = exit_status(proc.wait())
        if pump is not None:
            pump.join()
            proc.stderr.close()
        stderr = "".join(stderr_lines)

        if code not in (0, 1):
            detail = stderr.strip() or stdout.strip() or "(nothing on stderr)"
            self.log.error("django-migrator exited with status %s", code)
            raise MigratorError(
                f"django-migrator exited with status {code}: {detail}",
                exit_status=code,
                stderr=stderr,
                argv=argv,
            )
        try:
            report = MigrationReport.from_json(stdout, exit_status=code)
        except ReportFormatError as error:
            raise MigratorError(
                f"django-migrator exited with status {code} but its report cannot be read: {error}",
                exit_status=code,
                stderr=stderr,
                argv=argv,
            ) from error
        for db in report.db_reports:
            for message in db.errors:
                self.log.error("%s: %s", db.alias, message)
            for message in db.warnings:
                self.log.warning("%s: %s", db.alias, message)
        unclean = [f"{db.alias} ({db.status})" for db in report.unclean()]
        if report.makemigrations is not None and not report.makemigrations.is_clean:
            unclean.insert(0, f"makemigrations ({report.makemigrations.status})")
        if report.all_clean:
            self.log.info("%s: all clean", report.command)
        else:
            self.log.warning("%s: not clean: %s", report.command, ", ".join(unclean) or "see report")
        return report
