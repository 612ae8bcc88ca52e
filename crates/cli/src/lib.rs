//! The library behind the `django-migrator` binary.

pub mod args;
pub mod db;
pub mod export;
pub mod lifecycle;
pub mod project;
pub mod report;

use std::io::Write;

use args::{Cli, Command};

/// Runs one command. `Ok(status)` is the exit status of a completed run (0 or 1); `Err` is a
/// usage or configuration error (exit status 2).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let project = project::Project::locate(&cli.global)?;
    let mut stdout = std::io::stdout().lock();
    match &cli.command {
        Command::Check(flags) => {
            let report = lifecycle::run_all(&project, &cli.global, flags, lifecycle::Mode::Check)?;
            report::render(&mut stdout, &report, &cli.global)?;
            Ok(report.exit_status())
        }
        Command::MigrateAll(flags) => {
            let mode = if flags.check {
                lifecycle::Mode::Check
            } else {
                lifecycle::Mode::Migrate
            };
            let report = lifecycle::run_all(&project, &cli.global, flags, mode)?;
            report::render(&mut stdout, &report, &cli.global)?;
            Ok(report.exit_status())
        }
        Command::Install(flags) => {
            let report = lifecycle::install(&project, &cli.global, &flags.database)?;
            report::render(&mut stdout, &report, &cli.global)?;
            Ok(report.exit_status())
        }
        Command::Manifest(flags) => {
            let export = project.export(&cli.global)?;
            let alias = export.alias(flags.database.as_deref().unwrap_or("default"))?;
            let manifest = alias.manifest.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "alias {:?} uses the {} backend; only PostgreSQL aliases have a manifest",
                    alias.alias,
                    alias.vendor
                )
            })?;
            serde_json::to_writer_pretty(&mut stdout, manifest)?;
            writeln!(stdout)?;
            Ok(0)
        }
    }
}
