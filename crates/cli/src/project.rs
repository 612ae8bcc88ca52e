//! The user's Django project: its manage.py, its interpreter, and the commands run in it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::args::Global;
use crate::config::Config;
use crate::export::Export;

/// The exporter ships inside the binary, so the user's project needs no extra package.
const EXPORTER: &str = include_str!("../../../python/django_migrator/exporter.py");

/// Runs the exporter file inside `manage.py shell`, where Django is already set up exactly as
/// the project sets it up. Nothing it prints on stdout is read.
const BOOTSTRAP: &str =
    "import os, runpy; runpy.run_path(os.environ['DJANGO_MIGRATOR_EXPORTER'], run_name='__main__')";

/// `makemigrations` with Django's history-consistency check switched off: that check raises
/// on a deleted history row (InconsistentMigrationHistory) before django-migrator can scan and
/// repair the history per alias, which is its job. Arguments come in DJANGO_MIGRATOR_ARGS.
const MAKEMIGRATIONS: &str = "import json, os\n\
from django.db.migrations.loader import MigrationLoader\n\
MigrationLoader.check_consistent_history = lambda self, connection: None\n\
from django.core.management import call_command\n\
call_command('makemigrations', *json.loads(os.environ['DJANGO_MIGRATOR_ARGS']))\n";

pub struct Project {
    pub manage: PathBuf,
    pub dir: PathBuf,
    pub python: PathBuf,
}

/// What a finished Django command printed.
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Project {
    pub fn locate(config: &Config) -> anyhow::Result<Project> {
        let manage = &config.manage;
        if !manage.is_file() {
            bail!(
                "no manage.py at {} (run from the project directory or pass --manage PATH)",
                manage.display()
            );
        }
        let manage = manage
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", manage.display()))?;
        let dir = manage.parent().map(Path::to_path_buf).unwrap_or_default();
        let python = match &config.python {
            Some(python) => python.clone(),
            None => match std::env::var_os("VIRTUAL_ENV") {
                Some(venv) => PathBuf::from(venv).join("bin").join("python"),
                None => PathBuf::from("python3"),
            },
        };
        // Commands run in the project directory; a relative path given by the user means the
        // caller's directory. A bare name (python3) is looked up on PATH.
        let python = if python.components().count() > 1 && python.is_relative() {
            std::env::current_dir()
                .context("cannot read the current directory")?
                .join(python)
        } else {
            python
        };
        Ok(Project {
            manage,
            dir,
            python,
        })
    }

    /// `python manage.py <args> [--settings S]`, run in the project directory.
    pub fn manage_command(&self, global: &Global, args: &[&str]) -> Command {
        let mut command = Command::new(&self.python);
        command.arg(&self.manage).args(args).current_dir(&self.dir);
        if let Some(settings) = &global.settings {
            command.arg("--settings").arg(settings);
        }
        command.stdin(Stdio::null());
        command
    }

    /// Runs a manage.py command to completion, capturing what it prints.
    pub fn run_manage(&self, global: &Global, args: &[&str]) -> anyhow::Result<Output> {
        let output = self
            .manage_command(global, args)
            .output()
            .with_context(|| format!("cannot run {}", self.python.display()))?;
        Ok(Output {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Runs `makemigrations <args>` (see [`MAKEMIGRATIONS`]).
    pub fn makemigrations(&self, global: &Global, args: &[&str]) -> anyhow::Result<Output> {
        let mut command = self.manage_command(global, &["shell", "-v", "0", "-c", MAKEMIGRATIONS]);
        command.env("DJANGO_MIGRATOR_ARGS", serde_json::to_string(args)?);
        let output = command
            .output()
            .with_context(|| format!("cannot run {}", self.python.display()))?;
        Ok(Output {
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Reads the project's databases and migration graph (one Python start for all aliases).
    pub fn export(&self, global: &Global) -> anyhow::Result<Export> {
        // A private directory: the export holds connection passwords.
        let dir = tempfile::Builder::new()
            .prefix("django-migrator-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let exporter = dir.path().join("exporter.py");
        let target = dir.path().join("export.json");
        std::fs::write(&exporter, EXPORTER).context("cannot write the exporter")?;
        let mut command = self.manage_command(global, &["shell", "-v", "0", "-c", BOOTSTRAP]);
        command
            .env("DJANGO_MIGRATOR_EXPORTER", &exporter)
            .env("DJANGO_MIGRATOR_EXPORT_PATH", &target)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().with_context(|| {
            format!(
                "cannot start the project's Python {} (pass --python PATH or activate the virtualenv)",
                self.python.display()
            )
        })?;
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let status = child.wait().context("the exporter did not finish")?;
        if !status.success() {
            bail!(
                "Django could not start or read the migration graph ({}):\n{}",
                describe_status(status),
                tail(&stderr, 30)
            );
        }
        let text = std::fs::read_to_string(&target).with_context(|| {
            format!(
                "the exporter finished but wrote nothing; is {} a Django manage.py?",
                self.manage.display()
            )
        })?;
        Export::parse(&text)
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".into(),
    }
}

/// The last `lines` lines of `text`, for error messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
