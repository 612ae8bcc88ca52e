from django_migrator.management.forward import ForwardingCommand, lock_timeout_flag


class Command(ForwardingCommand):
    help = (
        "Guards, drift scan, Django's migrate and a verifying re-scan on every database "
        "(runs `django-migrator migrate-all`; same flags and exit status: 0 clean, 1 not clean, "
        "2 usage or configuration error)."
    )
    cli_command = "migrate-all"

    def add_command_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true",
            help="Never write: report drift, pending migrations and (with --repair) the repair "
            "plan.",
        )
        parser.add_argument(
            "--repair", action="store_true",
            help="Repair django_migrations where the catalog proves it, before migrating.",
        )
        parser.add_argument(
            "--non-interactive", action="store_true",
            help="Never prompt; on a terminal, a repair is otherwise shown and confirmed first.",
        )
        parser.add_argument(
            "--skip-makemigrations", action="store_true",
            help="Do not run makemigrations first.",
        )
        parser.add_argument(
            "--database", action="append", dest="databases", metavar="ALIAS", default=[],
            help="Only this alias (repeatable).",
        )
        parser.add_argument(
            "--lock-timeout", type=float, metavar="SECONDS", default=None,
            help="Seconds to wait for the migration lock of each database (default: 60).",
        )
        parser.add_argument(
            "--fail-fast", action="store_true", help="Stop at the first alias that is not clean.",
        )

    def command_arguments(self, options):
        argv = []
        for flag in ("check", "repair", "non_interactive", "skip_makemigrations", "fail_fast"):
            if options.get(flag):
                argv.append("--" + flag.replace("_", "-"))
        for alias in options.get("databases") or []:
            argv += ["--database", alias]
        return argv + lock_timeout_flag(options.get("lock_timeout"))
