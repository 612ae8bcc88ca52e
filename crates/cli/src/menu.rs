//! `django-migrator migrator`: the interactive front end.
//!
//! On a terminal with no choice given it opens a menu; with `--auto`, `--database` or `--app`
//! (or without a terminal, or with `--non-interactive`) it runs the migration directly, as
//! `--auto` would. It never prompts when it cannot read an answer.

use std::io::{IsTerminal, Write};

use dialoguer::Select;

use crate::args::{Format, Global, MigrateFlags, MigratorFlags};
use crate::config::Config;
use crate::lifecycle::{self, Mode, Run};
use crate::project::Project;
use crate::report;

const CHOICES: [&str; 7] = [
    "Full migrate: every database",
    "Full migrate with repair",
    "Forensic check: report and repair plan, change nothing",
    "makemigrations only",
    "Migrate one database",
    "Status view",
    "Quit",
];

pub fn migrator(
    project: &Project,
    global: &Global,
    config: &Config,
    flags: &MigratorFlags,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let interactive = !flags.non_interactive
        && global.format == Format::Text
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    let mut run_flags = MigrateFlags::for_databases(&Vec::from_iter(flags.database.clone()));
    run_flags.repair = flags.repair;
    run_flags.app = flags.app.clone();
    run_flags.lock_timeout = flags.lock_timeout;
    run_flags.skip_makemigrations = flags.skip_makemigrations;
    run_flags.non_interactive = !interactive;

    let chosen = flags.auto || flags.database.is_some() || flags.app.is_some();
    if chosen || !interactive {
        return migrate(project, global, config, &run_flags, Mode::Migrate, out);
    }
    let choice = Select::new()
        .with_prompt("django-migrator: what now? (Esc to quit)")
        .items(CHOICES)
        .default(0)
        .interact_opt()?;
    match choice {
        Some(0) => migrate(project, global, config, &run_flags, Mode::Migrate, out),
        Some(1) => {
            run_flags.repair = true;
            migrate(project, global, config, &run_flags, Mode::Migrate, out)
        }
        Some(2) => {
            run_flags.repair = true;
            migrate(project, global, config, &run_flags, Mode::Check, out)
        }
        Some(3) => {
            let output = project.session(global)?.makemigrations(&[])?;
            write!(out, "{}", output.stdout)?;
            eprint!("{}", output.stderr);
            Ok(if output.success { 0 } else { 1 })
        }
        Some(4) => {
            let export = project.export(global)?;
            let aliases: Vec<String> = export
                .ordered(&[])?
                .iter()
                .map(|a| a.alias.clone())
                .collect();
            let Some(pick) = Select::new()
                .with_prompt("Which database?")
                .items(&aliases)
                .default(0)
                .interact_opt()?
            else {
                return Ok(0);
            };
            run_flags.database = vec![aliases[pick].clone()];
            migrate(project, global, config, &run_flags, Mode::Migrate, out)
        }
        Some(5) => {
            let run = Run::new(project, global, config, &run_flags);
            let status = lifecycle::status(&run)?;
            report::render_status(out, &status, global)?;
            Ok(status.exit_status())
        }
        _ => Ok(0),
    }
}

fn migrate(
    project: &Project,
    global: &Global,
    config: &Config,
    flags: &MigrateFlags,
    mode: Mode,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let run = Run::new(project, global, config, flags);
    let report = lifecycle::run_all(&run, mode)?;
    report::render(out, &report, global)?;
    Ok(report.exit_status())
}
