//! Command-line flags, as the SPEC names them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Migrate every database of a Django project, after checking that django_migrations tells the
/// truth about each one.
#[derive(Debug, Parser)]
#[command(name = "django-migrator", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The project's manage.py [default: manage.py].
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "DJANGO_MIGRATOR_MANAGE"
    )]
    pub manage: Option<PathBuf>,
    /// The project's Python interpreter [default: $VIRTUAL_ENV/bin/python, else python3].
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "DJANGO_MIGRATOR_PYTHON"
    )]
    pub python: Option<PathBuf>,
    /// Django settings module (passed to manage.py as --settings).
    #[arg(long, global = true, value_name = "MODULE")]
    pub settings: Option<String>,
    /// Report format on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Colour in the text report.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// More detail (the output of Django's commands).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Only the summary line (text format).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Seconds to wait for a database to answer.
    #[arg(long, global = true, default_value_t = 10, value_name = "SECONDS")]
    pub connect_timeout: u64,
    /// Seconds Django may take to start, to run makemigrations, or to export the migration
    /// graph (not migrate) [default: 300].
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        env = "DJANGO_MIGRATOR_DJANGO_TIMEOUT"
    )]
    pub django_timeout: Option<f64>,
    /// Always start Django to read the project; never use or write the project cache.
    #[arg(long, global = true)]
    pub no_cache: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Guards, scan, Django's migrate and a verifying re-scan on every alias.
    MigrateAll(MigrateFlags),
    /// The same as `migrate-all --check`: report drift and pending migrations, change nothing.
    Check(MigrateFlags),
    /// CREATE EXTENSION / ALTER EXTENSION UPDATE django_migrator on each alias.
    Install(DatabaseFlags),
    /// Every migration of each alias, recorded and physical state, grouped by app.
    Status(DatabaseFlags),
    /// The interactive front end: a menu on a terminal, or one run with --auto, --database
    /// or --app.
    Migrator(MigratorFlags),
    /// Print the expectations that would be loaded for one alias.
    Manifest(OneDatabase),
}

#[derive(Debug, Clone, Args)]
pub struct MigratorFlags {
    /// Run the full migration without prompts.
    #[arg(long)]
    pub auto: bool,
    /// Repair django_migrations where the catalog proves it (confirmed first on a terminal).
    #[arg(long)]
    pub repair: bool,
    /// Run the lifecycle for this alias only.
    #[arg(long = "database", value_name = "ALIAS")]
    pub database: Option<String>,
    /// Migrate only this app, on every alias whose router allows it.
    #[arg(long, value_name = "LABEL")]
    pub app: Option<String>,
    /// Never prompt.
    #[arg(long)]
    pub non_interactive: bool,
    /// Seconds to wait for the migration lock of each database [default: 60].
    #[arg(long, value_name = "SECONDS", env = "DJANGO_MIGRATOR_LOCK_TIMEOUT")]
    pub lock_timeout: Option<f64>,
    /// Do not run makemigrations first.
    #[arg(long)]
    pub skip_makemigrations: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateFlags {
    /// Never write: no DDL, no django_migrations change, no stored manifest change.
    #[arg(long)]
    pub check: bool,
    /// Repair django_migrations where the catalog proves it, before migrating (with --check:
    /// only show the plan).
    #[arg(long)]
    pub repair: bool,
    /// Never prompt; on a terminal, a repair is otherwise shown and confirmed first.
    #[arg(long)]
    pub non_interactive: bool,
    /// Do not run makemigrations first (with --check it is `makemigrations --check --dry-run`).
    #[arg(long)]
    pub skip_makemigrations: bool,
    /// Only these aliases (repeatable).
    #[arg(long = "database", value_name = "ALIAS")]
    pub database: Vec<String>,
    /// Seconds to wait for the migration lock of each database [default: 60].
    #[arg(long, value_name = "SECONDS", env = "DJANGO_MIGRATOR_LOCK_TIMEOUT")]
    pub lock_timeout: Option<f64>,
    /// Stop at the first alias that is not clean.
    #[arg(long)]
    pub fail_fast: bool,
    /// Migrate only this app (on each alias whose router allows it).
    #[arg(skip)]
    pub app: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseFlags {
    /// Only these aliases (repeatable).
    #[arg(long = "database", value_name = "ALIAS")]
    pub database: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct OneDatabase {
    /// The alias [default: default].
    #[arg(long = "database", value_name = "ALIAS")]
    pub database: Option<String>,
}

impl MigrateFlags {
    /// The flags of a plain run over `databases` (used by `status` and the menu).
    pub fn for_databases(databases: &[String]) -> MigrateFlags {
        MigrateFlags {
            check: false,
            repair: false,
            non_interactive: false,
            skip_makemigrations: false,
            database: databases.to_vec(),
            lock_timeout: None,
            fail_fast: false,
            app: None,
        }
    }
}
