from django_migrator.management.forward import ForwardingCommand, lock_timeout_flag


class Command(ForwardingCommand):
    help = (
        "The interactive front end of django-migrator: a menu on a terminal, or one run with "
        "--auto, --database or --app (runs `django-migrator migrator`; same flags and exit "
        "status)."
    )
    cli_command = "migrator"

    def add_command_arguments(self, parser):
        parser.add_argument(
            "--auto", action="store_true", help="Run the full migration without prompts.",
        )
        parser.add_argument(
            "--repair", action="store_true",
            help="Repair django_migrations where the catalog proves it (confirmed first on a "
            "terminal).",
        )
        parser.add_argument(
            "--database", metavar="ALIAS", default=None,
            help="Run the lifecycle for this alias only.",
        )
        parser.add_argument(
            "--app", metavar="LABEL", default=None,
            help="Migrate only this app, on every alias whose router allows it.",
        )
        parser.add_argument("--non-interactive", action="store_true", help="Never prompt.")
        parser.add_argument(
            "--lock-timeout", type=float, metavar="SECONDS", default=None,
            help="Seconds to wait for the migration lock of each database (default: 60).",
        )
        parser.add_argument(
            "--skip-makemigrations", action="store_true",
            help="Do not run makemigrations first.",
        )

    def command_arguments(self, options):
        argv = []
        for flag in ("auto", "repair", "non_interactive", "skip_makemigrations"):
            if options.get(flag):
                argv.append("--" + flag.replace("_", "-"))
        if options.get("database"):
            argv += ["--database", options["database"]]
        if options.get("app"):
            argv += ["--app", options["app"]]
        return argv + lock_timeout_flag(options.get("lock_timeout"))
