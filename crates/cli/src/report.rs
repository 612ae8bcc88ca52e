//! The run's report, and its two renderings: text for people, JSON for machines.
//!
//! The JSON shape is documented in the README and versioned by `format_version`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::args::{Color, Format, Global};
use crate::db::{DriftRow, MigrationStatus, RepairStep};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub command: &'static str,
    pub all_clean: bool,
    pub django_version: String,
    /// The makemigrations step; absent for commands that do not run it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub makemigrations: Option<MakeMigrations>,
    /// Where the project's expectations came from (migrate-all and check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectSource>,
    pub aliases: Vec<AliasReport>,
    pub timings_ms: BTreeMap<String, u64>,
}

/// `django`: read from a Django process started for this run; `cache`: from the project
/// cache, because nothing Django read for an earlier run has changed since `written_at`.
#[derive(Debug, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum ProjectSource {
    Django,
    Cache {
        /// Seconds since the epoch.
        written_at: u64,
    },
}

#[derive(Debug, Serialize)]
pub struct MakeMigrations {
    /// `skipped`, `no_changes`, `created`, `changes_detected` (with --check) or `failed`.
    pub status: &'static str,
    /// What Django printed.
    pub output: String,
}

impl MakeMigrations {
    pub fn new(status: &'static str, output: String) -> MakeMigrations {
        MakeMigrations { status, output }
    }

    pub fn is_clean(&self) -> bool {
        !matches!(self.status, "changes_detected" | "failed")
    }
}

/// The report of `status`.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub format_version: u32,
    pub command: &'static str,
    pub all_clean: bool,
    pub django_version: String,
    pub aliases: Vec<StatusAlias>,
    pub timings_ms: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct StatusAlias {
    pub alias: String,
    pub status: Status,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    pub migrations: Vec<MigrationStatus>,
}

impl StatusReport {
    pub fn exit_status(&self) -> u8 {
        u8::from(!self.all_clean)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Clean,
    Skipped,
    Drift,
    Pending,
    Failed,
    NotRun,
}

impl Status {
    pub fn is_clean(self) -> bool {
        matches!(self, Status::Clean | Status::Skipped)
    }

    fn word(self) -> &'static str {
        match self {
            Status::Clean => "clean",
            Status::Skipped => "skipped",
            Status::Drift => "DRIFT",
            Status::Pending => "PENDING",
            Status::Failed => "FAILED",
            Status::NotRun => "not run",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Guard {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct AliasReport {
    pub alias: String,
    pub status: Status,
    pub guards: Vec<Guard>,
    pub drift: Vec<DriftRow>,
    pub repairs: Vec<RepairStep>,
    pub migrated: Vec<String>,
    pub pending: Vec<String>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    pub timings_ms: BTreeMap<String, u64>,
    /// How many of `errors` only explain the drift (the alias was not migrated because of it);
    /// see `explain_drift`.
    #[serde(skip)]
    drift_explanations: usize,
}

impl AliasReport {
    pub fn new(alias: &str) -> AliasReport {
        AliasReport {
            alias: alias.to_owned(),
            status: Status::NotRun,
            guards: vec![],
            drift: vec![],
            repairs: vec![],
            migrated: vec![],
            pending: vec![],
            warnings: vec![],
            errors: vec![],
            timings_ms: BTreeMap::new(),
            drift_explanations: 0,
        }
    }

    pub fn guard(&mut self, name: &'static str, ok: bool, detail: impl Into<String>) -> bool {
        let detail = detail.into();
        if !ok {
            self.errors.push(format!("guard {name} failed: {detail}"));
        }
        self.guards.push(Guard { name, ok, detail });
        ok
    }

    /// Records why a drifted alias was not migrated: an error in the report that leaves the
    /// alias drifted rather than failed.
    pub fn explain_drift(&mut self, why: String) {
        self.errors.push(why);
        self.drift_explanations += 1;
    }

    /// The status that follows from what was recorded: failures first, then drift, then
    /// pending migrations.
    pub fn settle(&mut self) {
        if self.status == Status::Skipped {
            return;
        }
        self.status = if self.errors.len() > self.drift_explanations {
            Status::Failed
        } else if self.drift.iter().any(DriftRow::is_error) {
            Status::Drift
        } else if !self.errors.is_empty() {
            Status::Failed
        } else if !self.pending.is_empty() {
            Status::Pending
        } else {
            Status::Clean
        };
    }
}

impl Report {
    /// The report of a run; clean only if makemigrations and every alias are.
    pub fn new(
        command: &'static str,
        django_version: String,
        makemigrations: Option<MakeMigrations>,
        aliases: Vec<AliasReport>,
        export_ms: u64,
        total_ms: u64,
    ) -> Report {
        Report {
            format_version: FORMAT_VERSION,
            command,
            all_clean: makemigrations.as_ref().is_none_or(MakeMigrations::is_clean)
                && aliases.iter().all(|a| a.status.is_clean()),
            django_version,
            makemigrations,
            project: None,
            aliases,
            timings_ms: BTreeMap::from([
                ("export".to_owned(), export_ms),
                ("total".to_owned(), total_ms),
            ]),
        }
    }

    pub fn exit_status(&self) -> u8 {
        if self.all_clean {
            0
        } else {
            1
        }
    }
}

/// How long ago `epoch_seconds` was, roughly: "12 s", "3 min", "5 h", "2 d".
fn age(epoch_seconds: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(epoch_seconds);
    let secs = now.saturating_sub(epoch_seconds);
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86400),
    }
}

fn use_color(global: &Global) -> bool {
    match global.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

pub fn render(out: &mut impl Write, report: &Report, global: &Global) -> std::io::Result<()> {
    match global.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)
        }
        Format::Text => render_text(out, report, use_color(global), global.quiet, global.verbose),
    }
}

pub fn render_status(
    out: &mut impl Write,
    report: &StatusReport,
    global: &Global,
) -> std::io::Result<()> {
    if global.format == Format::Json {
        serde_json::to_writer_pretty(&mut *out, report)?;
        return writeln!(out);
    }
    let paint = Paint(use_color(global));
    writeln!(
        out,
        "django-migrator status · Django {}",
        report.django_version
    )?;
    for alias in &report.aliases {
        writeln!(out)?;
        writeln!(out, "{}  {}", alias.alias, paint.status(alias.status))?;
        for line in alias.warnings.iter().chain(alias.errors.iter()) {
            writeln!(out, "  {line}")?;
        }
        // By app, as showmigrations does; graph order within each app.
        let mut by_app: BTreeMap<&str, Vec<&MigrationStatus>> = BTreeMap::new();
        for m in &alias.migrations {
            by_app.entry(m.app.as_str()).or_default().push(m);
        }
        for (app, migrations) in by_app {
            writeln!(out, "  {app}")?;
            for m in migrations {
                write_status_line(out, &paint, m)?;
            }
        }
    }
    Ok(())
}

fn write_status_line(
    out: &mut impl Write,
    paint: &Paint,
    m: &MigrationStatus,
) -> std::io::Result<()> {
    let (mark, code) = match m.state.as_str() {
        "applied" => ("[X]", "32"),
        "pending" => ("[ ]", "2"),
        _ => ("[!]", "1;31"),
    };
    let state = match m.state.as_str() {
        "applied" => m
            .applied_at
            .as_deref()
            .map(|t| t.get(..16).unwrap_or(t).replace('T', " "))
            .unwrap_or_default(),
        "pending" => "pending".to_owned(),
        other => format!("{other} ({} present, {} missing)", m.present, m.missing),
    };
    writeln!(out, "    {} {:<50} {state}", paint.wrap(code, mark), m.name)
}

struct Paint(bool);

impl Paint {
    fn status(&self, status: Status) -> String {
        let code = match status {
            Status::Clean => "32",
            Status::Skipped | Status::NotRun => "2",
            Status::Pending => "33",
            Status::Drift | Status::Failed => "1;31",
        };
        self.wrap(code, &format!("{:<8}", status.word()))
    }

    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

pub fn render_text(
    out: &mut impl Write,
    report: &Report,
    color: bool,
    quiet: bool,
    verbose: bool,
) -> std::io::Result<()> {
    let paint = Paint(color);
    if !quiet {
        writeln!(
            out,
            "django-migrator {} · Django {} · {} database{}",
            report.command,
            report.django_version,
            report.aliases.len(),
            if report.aliases.len() == 1 { "" } else { "s" }
        )?;
        if let Some(ProjectSource::Cache { written_at }) = report.project {
            writeln!(
                out,
                "project: from the cache of a run {} ago; nothing Django read has changed since (--no-cache starts Django)",
                age(written_at)
            )?;
        }
        if let Some(step) = &report.makemigrations {
            let words = match step.status {
                "skipped" => "skipped",
                "no_changes" => "no model changes",
                "created" => "created new migrations",
                "changes_detected" => "MODEL CHANGES WITHOUT MIGRATIONS",
                _ => "FAILED",
            };
            let code = if step.is_clean() { "2" } else { "1;31" };
            writeln!(out, "makemigrations: {}", paint.wrap(code, words))?;
            let show = !step.is_clean() || step.status == "created" || verbose;
            if show {
                for line in step.output.lines() {
                    writeln!(out, "    {line}")?;
                }
            }
        }
        let width = report
            .aliases
            .iter()
            .map(|a| a.alias.len())
            .max()
            .unwrap_or(0)
            .max(8);
        for alias in &report.aliases {
            writeln!(out)?;
            write_alias(out, report.command, alias, &paint, width, verbose)?;
        }
        writeln!(out)?;
    }
    let mut unclean: Vec<String> = report
        .aliases
        .iter()
        .filter(|a| !a.status.is_clean())
        .map(|a| format!("{} ({})", a.alias, a.status.word().to_lowercase()))
        .collect();
    if report
        .makemigrations
        .as_ref()
        .is_some_and(|m| !m.is_clean())
    {
        unclean.insert(0, "makemigrations".into());
    }
    if unclean.is_empty() {
        writeln!(
            out,
            "{}",
            paint.wrap("32", &format!("all {} clean", report.aliases.len()))
        )
    } else {
        let line = format!(
            "{} of {} not clean: {}",
            unclean.len(),
            report.aliases.len(),
            unclean.join(", ")
        );
        writeln!(out, "{}", paint.wrap("1;31", &line))
    }
}

fn write_alias(
    out: &mut impl Write,
    command: &str,
    alias: &AliasReport,
    paint: &Paint,
    width: usize,
    verbose: bool,
) -> std::io::Result<()> {
    let errors = alias.drift.iter().filter(|d| d.is_error()).count();
    // A skipped alias and an install say what happened in their first warning.
    let headline = alias.status == Status::Skipped || command == "install";
    let summary = match alias.status {
        _ if headline => alias.warnings.first().cloned().unwrap_or_default(),
        _ => {
            let mut parts = vec![];
            if errors > 0 {
                parts.push(format!("{errors} drifted"));
            }
            if !alias.migrated.is_empty() {
                parts.push(format!("{} applied", alias.migrated.len()));
            }
            parts.push(format!("{} pending", alias.pending.len()));
            let total: u64 = alias.timings_ms.values().sum();
            parts.push(format!("{total} ms"));
            parts.join(" · ")
        }
    };
    writeln!(
        out,
        "{:<width$}  {}  {summary}",
        alias.alias,
        paint.status(alias.status)
    )?;
    let mut by_kind: BTreeMap<&str, Vec<&DriftRow>> = BTreeMap::new();
    for row in &alias.drift {
        by_kind.entry(row.kind.as_str()).or_default().push(row);
    }
    for (kind, rows) in by_kind {
        writeln!(out, "    {kind} ({})", rows.len())?;
        for row in rows {
            writeln!(out, "      {}.{}: {}", row.app, row.name, row.detail)?;
        }
    }
    if !alias.repairs.is_empty() {
        let applied = alias.repairs.iter().any(|r| r.applied);
        writeln!(
            out,
            "    repair ({}):",
            if applied {
                "applied"
            } else {
                "plan, not applied"
            }
        )?;
        for step in &alias.repairs {
            writeln!(
                out,
                "      {:<11} {}.{}: {}",
                step.action, step.app, step.name, step.reason
            )?;
        }
    }
    let list = |label: &str, items: &[String], out: &mut dyn Write| -> std::io::Result<()> {
        if !items.is_empty() {
            writeln!(out, "    {label}: {}", items.join(", "))?;
        }
        Ok(())
    };
    if verbose || alias.migrated.len() <= 10 {
        list("applied", &alias.migrated, out)?;
    }
    if verbose || alias.pending.len() <= 10 {
        list("pending", &alias.pending, out)?;
    } else {
        writeln!(
            out,
            "    pending: {} migrations (-v lists them)",
            alias.pending.len()
        )?;
    }
    for warning in alias.warnings.iter().skip(usize::from(headline)) {
        writeln!(out, "    {} {warning}", paint.wrap("33", "warning:"))?;
    }
    for error in &alias.errors {
        writeln!(out, "    {} {error}", paint.wrap("1;31", "error:"))?;
    }
    Ok(())
}
