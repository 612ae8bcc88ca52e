//! The library behind the `django-migrator` binary.

pub mod args;
pub mod cache;
pub mod config;
pub mod db;
pub mod export;
pub mod lifecycle;
pub mod menu;
pub mod project;
pub mod report;

use std::io::Write;

use args::{Cli, Command};

/// Runs one command. `Ok(status)` is the exit status of a completed run (0 or 1); `Err` is a
/// usage or configuration error (exit status 2).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let global = &cli.global;
    let lock_timeout = match &cli.command {
        Command::MigrateAll(flags) | Command::Check(flags) => flags.lock_timeout,
        Command::Migrator(flags) => flags.lock_timeout,
        _ => None,
    };
    let config = config::Config::load(global, lock_timeout)?;
    let project = project::Project::locate(&config)?;
    let mut stdout = std::io::stdout().lock();
    match &cli.command {
        Command::Check(flags) => {
            let run = lifecycle::Run::new(&project, global, &config, flags);
            let report = lifecycle::run_all(&run, lifecycle::Mode::Check)?;
            report::render(&mut stdout, &report, global)?;
            Ok(report.exit_status())
        }
        Command::MigrateAll(flags) => {
            let mode = if flags.check {
                lifecycle::Mode::Check
            } else {
                lifecycle::Mode::Migrate
            };
            let run = lifecycle::Run::new(&project, global, &config, flags);
            let report = lifecycle::run_all(&run, mode)?;
            report::render(&mut stdout, &report, global)?;
            Ok(report.exit_status())
        }
        Command::Status(flags) => {
            let flags = args::MigrateFlags::for_databases(&flags.database);
            let run = lifecycle::Run::new(&project, global, &config, &flags);
            let report = lifecycle::status(&run)?;
            report::render_status(&mut stdout, &report, global)?;
            Ok(report.exit_status())
        }
        Command::Migrator(flags) => menu::migrator(&project, global, &config, flags, &mut stdout),
        Command::Install(flags) => {
            let report = lifecycle::install(&project, global, &flags.database)?;
            report::render(&mut stdout, &report, global)?;
            Ok(report.exit_status())
        }
        Command::Manifest(flags) => {
            let export = project.export(global)?;
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
