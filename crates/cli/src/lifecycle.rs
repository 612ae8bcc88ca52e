//! The per-database lifecycle of `migrate-all` and `check` (SPEC: guards, scan, drift,
//! repair, migrate, verify), `status` and `install`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;

use crate::args::{Format, Global, MigrateFlags};
use crate::cache;
use crate::config::Config;
use crate::db::{
    self, compare_extension_version, Db, DriftRow, Identity, VersionMatch, Writer,
    EXTENSION_VERSION,
};
use crate::export::{AliasExport, Export};
use crate::project::{tail, Project, Session};
use crate::report::{
    AliasReport, MakeMigrations, ProjectSource, Report, Status, StatusAlias, StatusReport,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Never writes anything.
    Check,
    /// Loads the manifest, repairs if asked, migrates, verifies.
    Migrate,
}

/// A spinner for long steps (Django start-up, each migrate, waiting for the lock): only on a
/// terminal, never in JSON or quiet mode. It disappears when the step ends.
pub struct Progress(bool);

pub struct Spinner(Option<ProgressBar>);

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Progress {
    pub fn new(global: &Global) -> Progress {
        Progress(global.format == Format::Text && !global.quiet && std::io::stderr().is_terminal())
    }

    pub fn start(&self, message: String) -> Spinner {
        if !self.0 {
            return Spinner(None);
        }
        let bar = ProgressBar::new_spinner();
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(bar))
    }
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// What one run needs everywhere.
pub struct Run<'a> {
    pub project: &'a Project,
    pub global: &'a Global,
    pub config: &'a Config,
    pub flags: &'a MigrateFlags,
    pub progress: Progress,
}

impl<'a> Run<'a> {
    pub fn new(
        project: &'a Project,
        global: &'a Global,
        config: &'a Config,
        flags: &'a MigrateFlags,
    ) -> Run<'a> {
        Run {
            project,
            global,
            config,
            flags,
            progress: Progress::new(global),
        }
    }
}

/// `makemigrations` first, unless skipped: for real in a migrate run (so that the new files are
/// part of the manifest), as `--check --dry-run` in a check.
fn makemigrations(run: &Run, session: &mut Session, mode: Mode) -> anyhow::Result<MakeMigrations> {
    if run.flags.skip_makemigrations {
        return Ok(MakeMigrations::new("skipped", String::new()));
    }
    let _spinner = run.progress.start("makemigrations".into());
    let args: &[&str] = match mode {
        Mode::Check => &["--check", "--dry-run", "--noinput"],
        Mode::Migrate => &["--noinput"],
    };
    let output = session.makemigrations(args)?;
    let text = format!("{}{}", output.stdout, output.stderr)
        .trim()
        .to_owned();
    let status = match (mode, output.success) {
        (Mode::Check, true) => "no_changes",
        // `makemigrations --check` exits 1 when models changed without a migration.
        (Mode::Check, false) if output.code == Some(1) => "changes_detected",
        (Mode::Migrate, true) if text.contains("No changes detected") => "no_changes",
        (Mode::Migrate, true) => "created",
        (_, false) => "failed",
    };
    Ok(MakeMigrations::new(status, text))
}

pub fn run_all(run: &Run, mode: Mode) -> anyhow::Result<Report> {
    let started = Instant::now();
    // A check may skip Django altogether when nothing it read has changed (see cache.rs).
    let hit = if mode == Mode::Check && run.config.cache {
        cache::lookup(run.project, run.global, run.flags.skip_makemigrations)
    } else {
        None
    };
    let (mut session, makemigrations, export, cached_at) = match hit {
        Some(hit) => {
            check_selection(run, &hit.export)?;
            (None, hit.makemigrations, hit.export, Some(hit.written_at))
        }
        None => {
            let (session, makemigrations, export) = read_with_django(run, mode)?;
            (Some(session), makemigrations, export, None)
        }
    };
    let export_ms = ms(started);
    let selected: Vec<String> = export
        .ordered(&run.flags.database)?
        .iter()
        .map(|a| a.alias.clone())
        .collect();

    let mut seen: Vec<(Identity, String)> = vec![];
    let mut reports: Vec<AliasReport> = vec![];
    let mut stopped = false;
    for alias in export.ordered(&[])? {
        if !selected.contains(&alias.alias) {
            // Not run, but an alias given alone must still be recognised as the same database
            // as an earlier one (a TEST MIRROR alias).
            remember_identity(run.global, alias, &mut seen);
            continue;
        }
        let mut report = AliasReport::new(&alias.alias);
        if stopped {
            report
                .warnings
                .push("not run: --fail-fast stopped at an earlier alias".into());
        } else if run.config.skip_aliases.contains(&alias.alias) {
            // Not run, but a mirror of it must still be recognised as its database.
            remember_identity(run.global, alias, &mut seen);
            report.status = Status::Skipped;
            report
                .warnings
                .push("skipped: listed in skip_aliases".into());
        } else if let Some(app) = run
            .flags
            .app
            .as_ref()
            .filter(|app| !alias.router_migrates(app))
        {
            remember_identity(run.global, alias, &mut seen);
            report.status = Status::Skipped;
            report
                .warnings
                .push(format!("skipped: the router does not migrate {app} here"));
        } else {
            run_alias(run, session.as_mut(), mode, alias, &mut seen, &mut report);
            report.settle();
            stopped = run.flags.fail_fast && !report.status.is_clean();
        }
        reports.push(report);
    }

    if cached_at.is_none() && run.config.cache {
        // What `makemigrations --check` would say now, when this run established it.
        let verdict = match (mode, makemigrations.status) {
            (Mode::Check, "no_changes" | "changes_detected") => {
                Some((makemigrations.status, makemigrations.output.as_str()))
            }
            (Mode::Migrate, "no_changes" | "created") => {
                Some(("no_changes", "No changes detected"))
            }
            _ => None,
        };
        if let Err(error) = cache::store(run.project, run.global, &export, verdict) {
            if run.global.verbose {
                eprintln!("django-migrator: the project cache was not written: {error:#}");
            }
        }
    }
    let command = if mode == Mode::Check {
        "check"
    } else {
        "migrate-all"
    };
    let mut report = Report::new(
        command,
        export.django_version,
        Some(makemigrations),
        reports,
        export_ms,
        ms(started),
    );
    report.project = Some(match cached_at {
        Some(at) => ProjectSource::Cache { written_at: at },
        None => ProjectSource::Django,
    });
    Ok(report)
}

/// Starts Django, runs the makemigrations step and reads the project (settings, routers, the
/// migration graph); the session stays open for the aliases' migrate.
fn read_with_django(run: &Run, mode: Mode) -> anyhow::Result<(Session, MakeMigrations, Export)> {
    let mut session = {
        let _spinner = run.progress.start("starting Django".into());
        run.project.session(run.global)?
    };
    let read_project = |session: &mut Session| {
        let _spinner = run
            .progress
            .start("reading the Django project (settings, routers, migration graph)".into());
        session.export()
    };
    // A bad --database or --app is a usage error before makemigrations may write anything.
    let early = if run.flags.app.is_some() || !run.flags.database.is_empty() {
        let export = read_project(&mut session)?;
        check_selection(run, &export)?;
        Some(export)
    } else {
        None
    };
    let makemigrations = makemigrations(run, &mut session, mode)?;
    let export = match early {
        Some(export) if makemigrations.status != "created" => export,
        _ => read_project(&mut session)?,
    };
    Ok((session, makemigrations, export))
}

/// Records the physical identity of an alias that is not part of this run.
fn remember_identity(global: &Global, alias: &AliasExport, seen: &mut Vec<(Identity, String)>) {
    if alias.vendor != "postgresql" {
        return;
    }
    let timeout = Duration::from_secs(global.connect_timeout.max(1));
    let identity = Db::connect(&alias.conninfo, timeout).and_then(|mut db| {
        db.extension_version()?
            .ok_or_else(|| anyhow::anyhow!("no extension"))?;
        db.identity()
    });
    if let Ok(identity) = identity {
        if !seen.iter().any(|(other, _)| other.same_database(&identity)) {
            seen.push((identity, alias.alias.clone()));
        }
    }
}

/// A --database or --app that the project does not have is a usage error.
fn check_selection(run: &Run, export: &Export) -> anyhow::Result<()> {
    export.ordered(&run.flags.database)?;
    if let Some(app) = &run.flags.app {
        check_app_exists(export, app)?;
    }
    Ok(())
}

fn check_app_exists(export: &Export, app: &str) -> anyhow::Result<()> {
    let known = export
        .aliases
        .iter()
        .any(|a| a.router.apps.contains_key(app));
    if !known {
        anyhow::bail!("no app {app:?} with migrations in this project");
    }
    Ok(())
}

/// Connects and runs the guards every command shares. `None` when the alias must stop here
/// (the reason is in the report).
fn connect_and_guard(
    global: &Global,
    alias: &AliasExport,
    seen: &mut Vec<(Identity, String)>,
    report: &mut AliasReport,
) -> Option<Db> {
    if alias.vendor != "postgresql" {
        report.status = Status::Skipped;
        report.warnings.push(format!(
            "skipped: the {} backend is not PostgreSQL; django-migrator manages PostgreSQL aliases only",
            alias.vendor
        ));
        return None;
    }
    let started = Instant::now();
    let timeout = Duration::from_secs(global.connect_timeout.max(1));
    let connected = Db::connect(&alias.conninfo, timeout);
    report.timings_ms.insert("connect".into(), ms(started));
    let mut db = match connected {
        Ok(db) => db,
        Err(error) => {
            report.guard(
                "connection_live",
                false,
                format!(
                    "database of alias {:?} does not answer: {error:#}",
                    alias.alias
                ),
            );
            return None;
        }
    };
    match db.extension_version() {
        Ok(Some(version)) => {
            if let Some(problem) = version_problem(&alias.alias, &version) {
                report.guard("connection_live", true, "answered SELECT 1");
                report.errors.push(problem);
                return None;
            }
        }
        Ok(None) => {
            report.guard("connection_live", true, "answered SELECT 1");
            report.errors.push(format!(
                "the django_migrator extension is not installed in the database of alias {:?}; run `django-migrator install --database {}` as a role that may CREATE EXTENSION",
                alias.alias, alias.alias
            ));
            return None;
        }
        Err(error) => {
            report
                .errors
                .push(format!("cannot read pg_extension: {error:#}"));
            return None;
        }
    }
    let identity = match db.identity() {
        Ok(identity) => identity,
        Err(error) => {
            report
                .errors
                .push(format!("django_migrator.identity() failed: {error:#}"));
            return None;
        }
    };
    report.guard(
        "connection_live",
        true,
        format!(
            "PostgreSQL {} · database {}",
            identity.server_version, identity.database_name
        ),
    );
    if let Some((_, first)) = seen
        .iter()
        .find(|(other, _)| other.same_database(&identity))
    {
        let first = first.clone();
        let router = &alias.router;
        // Django's test runner points a TEST MIRROR alias at its source on purpose.
        let test_mode = std::env::var("DJANGO_MIGRATOR_TEST_MODE").is_ok_and(|v| v == "1");
        if test_mode {
            report.guard(
                "test_mirror_isolation",
                true,
                format!(
                    "same database as {first}; allowed in test mode (DJANGO_MIGRATOR_TEST_MODE=1)"
                ),
            );
            report.status = Status::Skipped;
            report
                .warnings
                .push(format!("skipped: same database as {first}"));
        } else if router.migrate_models == 0 && router.write_models == 0 {
            report.guard(
                "test_mirror_isolation",
                true,
                format!("same database as {first}; the router neither migrates nor writes here"),
            );
            report.status = Status::Skipped;
            report
                .warnings
                .push(format!("skipped: same database as {first}"));
        } else {
            report.guard(
                "test_mirror_isolation",
                false,
                format!(
                    "alias {:?} is the same database as {first} (system identifier {}, database {}), but the router lets it migrate {} and write {} models; point it at its own database or make the router refuse it",
                    alias.alias,
                    identity.system_identifier,
                    identity.database_name,
                    router.migrate_models,
                    router.write_models
                ),
            );
        }
        return None;
    }
    report.guard("test_mirror_isolation", true, "its own database");
    seen.push((identity.clone(), alias.alias.clone()));
    if !report.guard(
        "not_standby",
        !identity.in_recovery,
        if identity.in_recovery {
            "the server is a hot standby (pg_is_in_recovery()); migrate the primary"
        } else {
            "primary"
        },
    ) {
        return None;
    }
    Some(db)
}

fn run_alias(
    run: &Run,
    session: Option<&mut Session>,
    mode: Mode,
    alias: &AliasExport,
    seen: &mut Vec<(Identity, String)>,
    report: &mut AliasReport,
) {
    let Some(mut db) = connect_and_guard(run.global, alias, seen, report) else {
        return;
    };
    let Some(manifest) = alias.manifest.as_ref() else {
        report
            .errors
            .push("the exporter produced no manifest for this alias".into());
        return;
    };
    let result = match mode {
        Mode::Check => check_alias(&mut db, run.flags, manifest, report),
        Mode::Migrate => match session {
            Some(session) => migrate_alias(run, session, alias, &mut db, manifest, report),
            None => Err(anyhow::anyhow!("no Django process to migrate with")),
        },
    };
    if let Err(error) = result {
        report.errors.push(format!("{error:#}"));
    }
}

fn migrate_alias(
    run: &Run,
    session: &mut Session,
    alias: &AliasExport,
    db: &mut Db,
    manifest: &serde_json::Value,
    report: &mut AliasReport,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let timeout = run.config.lock_timeout;
    let locked = {
        let _spinner = match db.lock_holder()? {
            Some(holder) if timeout > 0.0 => run.progress.start(format!(
                "{}: waiting up to {timeout} s for the migration lock held by {holder}",
                alias.alias
            )),
            _ => run.progress.start(String::new()),
        };
        db.lock(timeout, &db::holder_label())?
    };
    report.timings_ms.insert("lock".into(), ms(started));
    if !locked {
        let holder = db
            .lock_holder()?
            .map(|h| h.to_string())
            .unwrap_or_else(|| "a session that has since released it".into());
        report.guard(
            "no_concurrent_migration",
            false,
            format!("the migration lock is held by {holder}; waited {timeout} s (--lock-timeout)"),
        );
        return Ok(());
    }
    if let Some(problem) = db.lock_untrustworthy()? {
        report.guard("no_concurrent_migration", false, problem);
        return Ok(());
    }
    if let Some(evidence) = db.unlocked_migration()? {
        report.guard(
            "no_concurrent_migration",
            false,
            format!("another session is changing this database without the migration lock (a plain `manage.py migrate`?): {evidence}"),
        );
        return Ok(());
    }
    report.guard("no_concurrent_migration", true, "lock acquired");
    let result = migrate_locked(run, session, alias, db, manifest, report);
    // The lock dies with the session anyway; releasing it early lets the next deploy go on.
    let released = db.unlock();
    result?;
    released
}

fn migrate_locked(
    run: &Run,
    session: &mut Session,
    alias: &AliasExport,
    db: &mut Db,
    manifest: &serde_json::Value,
    report: &mut AliasReport,
) -> anyhow::Result<()> {
    let started = Instant::now();
    db.load_manifest(manifest)?;
    report.drift = db.scan()?;
    report.timings_ms.insert("scan".into(), ms(started));
    // Step 4 of the lifecycle, before any repair: companion migrations whose effects are
    // present are recorded without running.
    if has_companion_drift(&report.drift, manifest) {
        let started = Instant::now();
        report.repairs = db.repair(Writer::Companions, false)?;
        report.drift = db.scan()?;
        report.timings_ms.insert("companions".into(), ms(started));
    }
    let mut drifted = report.drift.iter().filter(|d| d.is_error()).count();
    if drifted > 0 && run.flags.repair {
        if !confirm_repair(run.global, run.flags, alias, db, report)? {
            return Ok(());
        }
        let started = Instant::now();
        let written = db.repair(Writer::Repair, false).with_context(|| {
            format!(
                "the repair of alias {:?} did not complete; it is one transaction, so django_migrations is either unchanged or fully repaired, and the next scan shows which",
                alias.alias
            )
        })?;
        report.repairs.extend(written);
        report.drift = db.scan()?;
        report.timings_ms.insert("repair".into(), ms(started));
        drifted = report.drift.iter().filter(|d| d.is_error()).count();
    }
    if drifted > 0 {
        let hint = if run.flags.repair {
            "repair could not prove the rest; see the warn and refuse steps"
        } else {
            "see the drift rows; `check --repair` shows what --repair would do"
        };
        report.explain_drift(format!(
            "{drifted} migration{} drifted from the schema; not migrating alias {:?} ({hint})",
            if drifted == 1 { "" } else { "s" },
            alias.alias
        ));
        // What is still to do is part of the report even when nothing was migrated.
        report.pending = db.pending()?;
        return Ok(());
    }

    let started = Instant::now();
    let mut args = vec![];
    if let Some(app) = &run.flags.app {
        args.push(app.as_str());
    }
    args.extend(["--database", &alias.alias, "--noinput"]);
    let output = {
        let _spinner = run.progress.start(format!(
            "{}: running Django's migrate {}",
            alias.alias,
            args.join(" ")
        ));
        session.migrate(&args)?
    };
    report.timings_ms.insert("migrate".into(), ms(started));
    report.migrated = applied_migrations(&output.stdout);
    if run.global.verbose && !output.stdout.trim().is_empty() {
        eprintln!("{}", output.stdout.trim_end());
    }
    if !output.success {
        report.errors.push(format!(
            "Django's migrate {} failed:\n{}",
            args.join(" "),
            tail(&output.stderr, 20)
        ));
    }

    let started = Instant::now();
    report.drift = db.scan()?;
    report.pending = db.pending()?;
    if let Some(app) = &run.flags.app {
        // Only this app was asked for; the others may stay pending.
        let prefix = format!("{app}.");
        report.pending.retain(|p| p.starts_with(&prefix));
    }
    report.timings_ms.insert("verify".into(), ms(started));
    Ok(())
}

/// Every migration of each alias with its recorded and physical state (read-only).
pub fn status(run: &Run) -> anyhow::Result<StatusReport> {
    let started = Instant::now();
    let export = {
        let _spinner = run.progress.start("reading the Django project".into());
        run.project.export(run.global)?
    };
    let selected: Vec<String> = export
        .ordered(&run.flags.database)?
        .iter()
        .map(|a| a.alias.clone())
        .collect();
    let mut seen: Vec<(Identity, String)> = vec![];
    let mut aliases = vec![];
    for alias in export.ordered(&[])? {
        if !selected.contains(&alias.alias) {
            remember_identity(run.global, alias, &mut seen);
            continue;
        }
        let mut report = AliasReport::new(&alias.alias);
        let mut migrations = vec![];
        if let Some(mut db) = connect_and_guard(run.global, alias, &mut seen, &mut report) {
            if let Some(manifest) = &alias.manifest {
                let rows = db.read_only(|db| {
                    db.load_manifest(manifest)?;
                    let rows = db.status()?;
                    report.drift = db.scan()?;
                    Ok(rows)
                });
                match rows {
                    Ok(rows) => migrations = rows,
                    Err(error) => report.errors.push(format!("{error:#}")),
                }
            }
        }
        report.settle();
        if report.status == Status::Pending {
            // Pending migrations are what status shows, not a failure of it.
            report.status = Status::Clean;
        }
        aliases.push(StatusAlias {
            alias: report.alias,
            status: report.status,
            warnings: report.warnings,
            errors: report.errors,
            migrations,
        });
    }
    Ok(StatusReport {
        format_version: crate::report::FORMAT_VERSION,
        command: "status",
        all_clean: aliases.iter().all(|a| a.status.is_clean()),
        django_version: export.django_version,
        aliases,
        timings_ms: BTreeMap::from([("total".to_owned(), ms(started))]),
    })
}

/// `check`: the scan (and the plans of the companion step and, with --repair, of repair)
/// inside a transaction that is rolled back.
fn check_alias(
    db: &mut Db,
    flags: &MigrateFlags,
    manifest: &serde_json::Value,
    report: &mut AliasReport,
) -> anyhow::Result<()> {
    match db.lock_holder()? {
        Some(holder) => {
            report.guard(
                "no_concurrent_migration",
                true,
                format!("lock held by {holder}"),
            );
            report.warnings.push(format!(
                "a migration may be running: the lock is held by {holder}"
            ));
        }
        None => {
            report.guard(
                "no_concurrent_migration",
                true,
                "the migration lock is free",
            );
        }
    }
    let started = Instant::now();
    // The manifest is loaded inside a transaction that is rolled back: check never writes.
    let (drift, pending, repairs) = db.read_only(|db| {
        db.load_manifest(manifest)?;
        let mut drift = db.scan()?;
        let mut repairs = vec![];
        // What migrate-all's companion step would record is not drift it stops on.
        if has_companion_drift(&drift, manifest) {
            repairs = db.repair_plan_in_transaction(Writer::Companions)?;
            let recorded: Vec<(&str, &str)> = repairs
                .iter()
                .filter(|s| s.action == "fake_apply")
                .map(|s| (s.app.as_str(), s.name.as_str()))
                .collect();
            drift.retain(|d| !recorded.contains(&(d.app.as_str(), d.name.as_str())));
        }
        if flags.repair && drift.iter().any(|d| d.is_error()) {
            let covered: Vec<(String, String)> = repairs
                .iter()
                .map(|s| (s.app.clone(), s.name.clone()))
                .collect();
            let plan = db.repair_plan_in_transaction(Writer::Repair)?;
            repairs.extend(
                plan.into_iter()
                    .filter(|s| !covered.contains(&(s.app.clone(), s.name.clone()))),
            );
        }
        Ok((drift, db.pending()?, repairs))
    })?;
    report.timings_ms.insert("scan".into(), ms(started));
    report.drift = drift;
    report.pending = pending;
    report.repairs = repairs;
    Ok(())
}

/// Whether the scan shows an unrecorded-but-present migration that the manifest marks as a
/// companion (every operation claimed by a fake detector).
fn has_companion_drift(drift: &[DriftRow], manifest: &serde_json::Value) -> bool {
    let companions: Vec<(&str, &str)> = manifest["migrations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["companion"].as_bool().unwrap_or(false))
        .filter_map(|m| Some((m["app"].as_str()?, m["name"].as_str()?)))
        .collect();
    drift.iter().any(|d| {
        d.kind == "unrecorded_present" && companions.contains(&(d.app.as_str(), d.name.as_str()))
    })
}

/// On a terminal, and unless --non-interactive, shows the plan and asks before writing.
fn confirm_repair(
    global: &Global,
    flags: &MigrateFlags,
    alias: &AliasExport,
    db: &mut Db,
    report: &mut AliasReport,
) -> anyhow::Result<bool> {
    let interactive = !flags.non_interactive
        && global.format == Format::Text
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal();
    if !interactive {
        return Ok(true);
    }
    let plan = db.repair(Writer::Repair, true)?;
    eprintln!("Repair plan for alias {:?}:", alias.alias);
    for step in &plan {
        eprintln!(
            "  {:<11} {}.{}: {}",
            step.action, step.app, step.name, step.reason
        );
    }
    eprint!("Apply it to django_migrations? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        return Ok(true);
    }
    report.repairs = plan;
    // The alias stays as the scan found it: drifted, not failed.
    report.explain_drift("repair declined; nothing was written".into());
    Ok(false)
}

/// The migrations Django reports as applied: `Applying app.name... OK`. A line without ` OK`
/// is a migration that failed (or was cut off) and was not applied.
fn applied_migrations(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Applying "))
        .filter_map(|rest| rest.split_once("..."))
        .filter(|(_, outcome)| outcome.trim_start().starts_with("OK"))
        .map(|(name, _)| name.trim().to_owned())
        .collect()
}
pub fn install(project: &Project, global: &Global, only: &[String]) -> anyhow::Result<Report> {
    let started = Instant::now();
    let export = project.export(global)?;
    let export_ms = ms(started);
    let mut seen: Vec<(Identity, String)> = vec![];
    let mut reports = vec![];
    for alias in export.ordered(only)? {
        let mut report = AliasReport::new(&alias.alias);
        install_alias(global, alias, &mut seen, &mut report);
        report.settle();
        reports.push(report);
    }
    Ok(Report::new(
        "install",
        export.django_version,
        None,
        reports,
        export_ms,
        ms(started),
    ))
}

/// Why an installed extension of `version` cannot serve this CLI, if it cannot.
fn version_problem(alias: &str, version: &str) -> Option<String> {
    match compare_extension_version(version) {
        VersionMatch::Same => None,
        VersionMatch::Older => Some(format!(
            "the django_migrator extension in the database of alias {alias:?} is version {version}, this django-migrator needs {EXTENSION_VERSION}: run `django-migrator install --database {alias}` (ALTER EXTENSION django_migrator UPDATE)"
        )),
        VersionMatch::Newer => Some(format!(
            "the django_migrator extension in the database of alias {alias:?} is version {version}, newer than this django-migrator ({EXTENSION_VERSION}): install django-migrator {version}"
        )),
    }
}

fn install_alias(
    global: &Global,
    alias: &AliasExport,
    seen: &mut Vec<(Identity, String)>,
    report: &mut AliasReport,
) {
    if alias.vendor != "postgresql" {
        report.status = Status::Skipped;
        report.warnings.push(format!(
            "skipped: the {} backend is not PostgreSQL",
            alias.vendor
        ));
        return;
    }
    let timeout = Duration::from_secs(global.connect_timeout.max(1));
    let mut db = match Db::connect(&alias.conninfo, timeout) {
        Ok(db) => db,
        Err(error) => {
            report.guard("connection_live", false, format!("{error:#}"));
            return;
        }
    };
    report.guard("connection_live", true, "answered");
    match db.install() {
        Ok((before, after)) => {
            let what = match before {
                None => format!("installed django_migrator {after}"),
                Some(old) if old == after => format!("django_migrator {after} already installed"),
                Some(old) => format!("updated django_migrator {old} → {after}"),
            };
            report.warnings.push(what);
            if let Some(problem) = version_problem(&alias.alias, &after) {
                let offered = db.available_version().ok().flatten().unwrap_or_default();
                report.errors.push(if offered == after {
                    format!(
                        "{problem}; the server's extension files offer only {offered}: install version {EXTENSION_VERSION} of the extension on the server (`cargo pgrx install`, see the README)"
                    )
                } else {
                    problem
                });
            }
        }
        Err(error) => {
            report.errors.push(format!(
                "cannot install the extension in the database of alias {:?}: {error:#} (is it installed on the server, see `make build`, and may this role CREATE EXTENSION?)",
                alias.alias
            ));
            return;
        }
    }
    if let Ok(identity) = db.identity() {
        if let Some((_, first)) = seen
            .iter()
            .find(|(other, _)| other.same_database(&identity))
        {
            report.status = Status::Skipped;
            report
                .warnings
                .insert(0, format!("skipped: same database as {first}"));
        } else {
            seen.push((identity, alias.alias.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_migrations_are_read_from_djangos_output() {
        let out = "Operations to perform:\n  Apply all migrations: auth\nRunning migrations:\n  Applying contenttypes.0001_initial... OK\n  Applying auth.0001_initial... OK (0.012s)\n";
        assert_eq!(
            applied_migrations(out),
            ["contenttypes.0001_initial", "auth.0001_initial"]
        );
        assert!(applied_migrations("No migrations to apply.").is_empty());
        // A migrate that failed inside a migration prints its name without OK.
        let failed =
            "Running migrations:\n  Applying a.0001_initial... OK\n  Applying a.0002_slow...";
        assert_eq!(applied_migrations(failed), ["a.0001_initial"]);
    }
}
