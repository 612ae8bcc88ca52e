//! Settings from three places, in order of precedence: command-line flags, environment
//! variables, and the `[tool.django-migrator]` table of the project's `pyproject.toml`.
//!
//! | setting | flag | environment | pyproject key |
//! |---|---|---|---|
//! | manage.py | `--manage` | `DJANGO_MIGRATOR_MANAGE` | `manage` |
//! | interpreter | `--python` | `DJANGO_MIGRATOR_PYTHON` | `python` |
//! | lock timeout | `--lock-timeout` | `DJANGO_MIGRATOR_LOCK_TIMEOUT` | `lock_timeout` |
//! | Django timeout | `--django-timeout` | `DJANGO_MIGRATOR_DJANGO_TIMEOUT` | `django_timeout` |
//! | project cache | `--no-cache` | `DJANGO_MIGRATOR_CACHE` (`0` turns it off) | `cache` |
//! | aliases to skip | — | `DJANGO_MIGRATOR_SKIP_ALIASES` (comma-separated) | `skip_aliases` |
//!
//! clap reads the flags and their environment variables; this module adds the pyproject layer
//! and the defaults. Paths in pyproject.toml are relative to the file's directory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::args::Global;

pub const DEFAULT_LOCK_TIMEOUT: f64 = 60.0;
/// Django's start-up, makemigrations and the export; `migrate` itself is never timed out.
pub const DEFAULT_DJANGO_TIMEOUT: f64 = 300.0;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct PyprojectTable {
    manage: Option<PathBuf>,
    python: Option<PathBuf>,
    lock_timeout: Option<f64>,
    django_timeout: Option<f64>,
    cache: Option<bool>,
    skip_aliases: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub manage: PathBuf,
    pub python: Option<PathBuf>,
    pub lock_timeout: f64,
    pub django_timeout: std::time::Duration,
    /// Whether `check` may use the project cache (see the cache module).
    pub cache: bool,
    pub skip_aliases: Vec<String>,
    /// The pyproject.toml that contributed settings, if any.
    pub pyproject: Option<PathBuf>,
}

impl Config {
    /// `lock_timeout` is the flag's (or its environment variable's) value, when given.
    pub fn load(global: &Global, lock_timeout: Option<f64>) -> anyhow::Result<Config> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let (table, pyproject) = match find_pyproject(&cwd) {
            Some(path) => (read_table(&path)?, Some(path)),
            None => (None, None),
        };
        let base = pyproject
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or(cwd);
        let table = table.unwrap_or_default();
        let from_file =
            |p: Option<PathBuf>| p.map(|p| if p.is_relative() { base.join(p) } else { p });

        let lock_timeout = lock_timeout
            .or(table.lock_timeout)
            .unwrap_or(DEFAULT_LOCK_TIMEOUT);
        if !(lock_timeout >= 0.0 && lock_timeout.is_finite()) {
            bail!("the lock timeout must be a number of seconds, 0 or more (got {lock_timeout})");
        }
        let django_timeout = global
            .django_timeout
            .or(table.django_timeout)
            .unwrap_or(DEFAULT_DJANGO_TIMEOUT);
        if !(django_timeout > 0.0 && django_timeout.is_finite()) {
            bail!("the Django timeout must be a number of seconds above 0 (got {django_timeout})");
        }
        let cache = match std::env::var("DJANGO_MIGRATOR_CACHE") {
            Ok(value) => match value.trim().to_ascii_lowercase().as_str() {
                "0" | "false" | "no" | "off" => false,
                "1" | "true" | "yes" | "on" | "" => true,
                other => bail!("DJANGO_MIGRATOR_CACHE must be 0 or 1 (got {other:?})"),
            },
            Err(_) => table.cache.unwrap_or(true),
        } && !global.no_cache;
        let skip_aliases = match std::env::var("DJANGO_MIGRATOR_SKIP_ALIASES") {
            Ok(list) => list
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            Err(_) => table.skip_aliases.unwrap_or_default(),
        };
        Ok(Config {
            manage: global
                .manage
                .clone()
                .or_else(|| from_file(table.manage))
                .unwrap_or_else(|| PathBuf::from("manage.py")),
            python: global.python.clone().or_else(|| from_file(table.python)),
            lock_timeout,
            django_timeout: std::time::Duration::from_secs_f64(django_timeout),
            cache,
            skip_aliases,
            pyproject,
        })
    }
}

/// The nearest pyproject.toml at or above `dir`.
fn find_pyproject(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join("pyproject.toml"))
        .find(|p| p.is_file())
}

fn read_table(path: &Path) -> anyhow::Result<Option<PyprojectTable>> {
    #[derive(Deserialize)]
    struct File {
        tool: Option<Tools>,
    }
    #[derive(Deserialize)]
    struct Tools {
        #[serde(rename = "django-migrator")]
        django_migrator: Option<PyprojectTable>,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: File = toml::from_str(&text)
        .with_context(|| format!("{}: invalid [tool.django-migrator] table", path.display()))?;
    Ok(file.tool.and_then(|t| t.django_migrator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_read_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pyproject.toml");
        std::fs::write(
            &path,
            "[project]\nname = 'x'\n[tool.django-migrator]\nmanage = 'src/manage.py'\nlock_timeout = 5\ndjango_timeout = 30\ncache = false\nskip_aliases = ['legacy']\n",
        )
        .unwrap();
        let table = read_table(&path).unwrap().unwrap();
        assert_eq!(table.manage, Some(PathBuf::from("src/manage.py")));
        assert_eq!(table.lock_timeout, Some(5.0));
        assert_eq!(table.django_timeout, Some(30.0));
        assert_eq!(table.cache, Some(false));
        assert_eq!(table.skip_aliases, Some(vec!["legacy".to_owned()]));

        std::fs::write(&path, "[tool.django-migrator]\nlock_timout = 5\n").unwrap();
        let error = format!("{:#}", read_table(&path).unwrap_err());
        assert!(error.contains("lock_timout"), "{error}");
    }

    #[test]
    fn a_pyproject_without_the_table_contributes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pyproject.toml");
        std::fs::write(&path, "[project]\nname = 'x'\n").unwrap();
        assert!(read_table(&path).unwrap().is_none());
        assert_eq!(find_pyproject(&dir.path().join("a/b")), Some(path));
    }
}
