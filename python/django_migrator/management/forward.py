"""The part shared by `migrate_all` and `migrator`: run the CLI for this project with the same
flags, on this process's terminal, and exit with its status."""

from __future__ import annotations

import os
import subprocess
import sys

from django.core.management.base import BaseCommand, CommandError

from ..errors import BinaryNotFound
from ..runner import exit_status, find_binary, find_manage, global_flags


class ForwardingCommand(BaseCommand):
    # The CLI subcommand this command runs.
    cli_command = ""
    # The CLI starts Django itself (through manage.py) and checks what it needs; checks here
    # would only connect to databases the guards are about to examine.
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        self.add_command_arguments(parser)
        parser.add_argument(
            "--format", choices=["text", "json"], default=None,
            help="Report format on stdout (default: text).",
        )
        parser.add_argument(
            "--color", choices=["auto", "always", "never"], default=None,
            help="Colour in the text report (default: auto; --no-color and --force-color "
            "map to never and always).",
        )
        parser.add_argument(
            "--connect-timeout", type=int, metavar="SECONDS", default=None,
            help="Seconds to wait for a database to answer (default: 10).",
        )

    def add_command_arguments(self, parser):
        raise NotImplementedError

    def command_arguments(self, options) -> list[str]:
        raise NotImplementedError

    def color(self, options):
        if options.get("color"):
            return options["color"]
        if options.get("no_color"):
            return "never"
        if options.get("force_color"):
            return "always"
        return None

    def command_line(self, options) -> list[str]:
        try:
            binary = find_binary()
        except BinaryNotFound as error:
            raise CommandError(str(error), returncode=2) from None
        return [binary] + global_flags(
            manage=find_manage(),
            python=sys.executable,
            settings=options.get("settings"),
            fmt=options.get("format"),
            color=self.color(options),
            verbosity=options.get("verbosity", 1),
            connect_timeout=options.get("connect_timeout"),
        ) + [self.cli_command] + self.command_arguments(options)

    def child_env(self, options):
        env = dict(os.environ)
        if options.get("pythonpath"):
            # Django put --pythonpath on this process's sys.path; the project's Python that the
            # CLI starts needs it too.
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (options["pythonpath"], env.get("PYTHONPATH")) if p
            )
        return env

    def handle(self, *args, **options):
        argv = self.command_line(options)
        self.stdout.flush()
        self.stderr.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            proc = subprocess.Popen(argv, env=self.child_env(options))
        except OSError as error:
            raise CommandError(f"cannot run {argv[0]}: {error}", returncode=2) from error
        while True:
            try:
                code = exit_status(proc.wait())
                break
            except KeyboardInterrupt:
                # The CLI got the same Ctrl-C from the terminal; its exit status is the answer.
                continue
        if code:
            raise SystemExit(code)


def lock_timeout_flag(value) -> list[str]:
    return [] if value is None else ["--lock-timeout", repr(float(value))]
