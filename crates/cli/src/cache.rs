//! The project cache: lets `check` skip starting Python when nothing Django read has changed.
//!
//! Starting Django and reading the migration graph is most of what a `check` costs. The
//! session's Python records every file it opens for reading (size, mtime, inode and ctime,
//! taken before the read; for a module, its source file), every directory it lists (which is
//! how Django finds migration files), and every environment variable it looks up: see
//! `track_inputs` in the exporter. After a run whose export came from Django, the export is
//! stored with those inputs. A later `check` that finds every file and directory with the same
//! stat and every one of those variables with the same value uses the stored export and the
//! stored `makemigrations --check` verdict instead of starting Django; the databases are
//! scanned exactly as usual. Anything else is a miss, and the run starts Django.
//!
//! An entry never holds a password. A password is stored as "bytes i..j of environment
//! variable X", where X is a variable Django read (so its value is part of the comparison).
//! When the password comes from anywhere else (written in settings.py, a file, a secret store),
//! nothing is cached for the project. Entries live in `$DJANGO_MIGRATOR_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/django-migrator`, else `~/.cache/django-migrator` (mode 0700, files 0600).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::args::Global;
use crate::export::{Export, Inputs, Stat};
use crate::project::Project;
use crate::report::MakeMigrations;

const CACHE_VERSION: u32 = 1;

/// Read by the CLI itself when it connects (see `db::config`) or to find Python.
const ALWAYS_TRACKED: [&str; 9] = [
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "USER",
    "PATH",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
];

#[derive(Serialize, Deserialize)]
struct Entry {
    cache_version: u32,
    cli_version: String,
    /// Seconds since the epoch.
    written_at: u64,
    files: BTreeMap<String, Option<Stat>>,
    dirs: BTreeMap<String, Option<Stat>>,
    env: Vec<String>,
    whole_env: bool,
    env_digest: String,
    /// `makemigrations --check`'s verdict and output, when the run established it.
    makemigrations_check: Option<(String, String)>,
    /// The export, with each password replaced by `password_from`.
    export: serde_json::Value,
}

/// Where a password is found: bytes `start..end` of environment variable `env`.
#[derive(Serialize, Deserialize)]
struct PasswordFrom {
    env: String,
    start: usize,
    end: usize,
}

/// What a hit provides in place of starting Django.
pub struct Hit {
    pub export: Export,
    pub makemigrations: MakeMigrations,
    pub written_at: u64,
}

fn directory() -> Option<PathBuf> {
    let env = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty());
    env("DJANGO_MIGRATOR_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| env("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("django-migrator")))
        .or_else(|| env("HOME").map(|d| PathBuf::from(d).join(".cache/django-migrator")))
}

/// One entry per manage.py, interpreter and settings module.
fn entry_path(project: &Project, global: &Global) -> Option<PathBuf> {
    let mut key = Sha256::new();
    for part in [
        project.manage.as_os_str().as_encoded_bytes(),
        project.python.as_os_str().as_encoded_bytes(),
        global.settings.as_deref().unwrap_or("").as_bytes(),
    ] {
        key.update((part.len() as u64).to_le_bytes());
        key.update(part);
    }
    let name: String = key.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    directory().map(|d| d.join(format!("{name}.json")))
}

fn stat(path: &Path) -> Option<Stat> {
    let m = std::fs::metadata(path).ok()?;
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    Some([
        i128::from(m.len()),
        ns(m.mtime(), m.mtime_nsec()),
        i128::from(m.ino()),
        ns(m.ctime(), m.ctime_nsec()),
    ])
}

/// The values of `names` (or of the whole environment), as one digest.
fn env_digest(names: &[String], whole_env: bool) -> String {
    let mut names: Vec<String> = names
        .iter()
        .cloned()
        .chain(ALWAYS_TRACKED.iter().map(|s| (*s).to_owned()))
        .collect();
    if whole_env {
        names.extend(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
    }
    names.sort();
    names.dedup();
    let mut hash = Sha256::new();
    for name in names {
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        match std::env::var_os(&name) {
            Some(value) => {
                let value = value.as_encoded_bytes();
                hash.update([1]);
                hash.update((value.len() as u64).to_le_bytes());
                hash.update(value);
            }
            None => hash.update([0]),
        }
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The export stored for this project, if nothing it was built from has changed.
pub fn lookup(project: &Project, global: &Global, skip_makemigrations: bool) -> Option<Hit> {
    let path = entry_path(project, global)?;
    let entry: Entry = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    if entry.cache_version != CACHE_VERSION || entry.cli_version != env!("CARGO_PKG_VERSION") {
        return None;
    }
    let unchanged = |paths: &BTreeMap<String, Option<Stat>>| {
        paths
            .iter()
            .all(|(path, then)| stat(Path::new(path)) == *then)
    };
    if !unchanged(&entry.files) || !unchanged(&entry.dirs) {
        return None;
    }
    if env_digest(&entry.env, entry.whole_env) != entry.env_digest {
        return None;
    }
    let makemigrations = if skip_makemigrations {
        MakeMigrations::new("skipped", String::new())
    } else {
        let (status, output) = entry.makemigrations_check?;
        let status = match status.as_str() {
            "no_changes" => "no_changes",
            "changes_detected" => "changes_detected",
            _ => return None,
        };
        MakeMigrations::new(status, output)
    };
    let mut export = entry.export;
    for alias in export.get_mut("aliases")?.as_array_mut()? {
        let Some(from) = alias.get("password_from") else {
            continue;
        };
        let from: PasswordFrom = serde_json::from_value(from.clone()).ok()?;
        let value = std::env::var(&from.env).ok()?;
        let password = value.get(from.start..from.end)?.to_owned();
        alias
            .get_mut("conninfo")?
            .as_object_mut()?
            .insert("password".into(), password.into());
    }
    let export = Export::from_value(export).ok()?;
    Some(Hit {
        export,
        makemigrations,
        written_at: entry.written_at,
    })
}

/// Stores the export of a run that started Django. `makemigrations_check` is what
/// `makemigrations --check` would say now, when the run established it. Nothing is stored
/// (and a stale entry is removed) when a password cannot be stored by reference.
pub fn store(
    project: &Project,
    global: &Global,
    export: &Export,
    makemigrations_check: Option<(&str, &str)>,
) -> anyhow::Result<()> {
    let Some(path) = entry_path(project, global) else {
        return Ok(());
    };
    let Some(inputs) = &export.inputs else {
        return Ok(());
    };
    let Some(stored) = without_passwords(&export.raw, inputs) else {
        let _ = std::fs::remove_file(&path);
        return Ok(());
    };
    let mut files = inputs.files.clone();
    if project.python.components().count() > 1 {
        let python = project.python.to_string_lossy().into_owned();
        files.insert(python, stat(&project.python));
    }
    let entry = Entry {
        cache_version: CACHE_VERSION,
        cli_version: env!("CARGO_PKG_VERSION").to_owned(),
        written_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        files,
        dirs: inputs.dirs.clone(),
        env: inputs.env.clone(),
        whole_env: inputs.whole_env,
        env_digest: env_digest(&inputs.env, inputs.whole_env),
        makemigrations_check: makemigrations_check.map(|(s, o)| (s.to_owned(), o.to_owned())),
        export: stored,
    };
    let dir = path.parent().context("the cache path has no directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut file = tempfile::Builder::new()
        .prefix(".entry-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)?;
    file.write_all(&serde_json::to_vec(&entry)?)?;
    file.persist(&path)?;
    Ok(())
}

/// The export without its inputs, each password replaced by where to find it; `None` when a
/// password is not found in an environment variable Django read.
fn without_passwords(raw: &serde_json::Value, inputs: &Inputs) -> Option<serde_json::Value> {
    let mut export = raw.clone();
    let object = export.as_object_mut()?;
    object.remove("inputs");
    let mut candidates: Vec<(String, String)> = if inputs.whole_env {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    } else {
        inputs
            .env
            .iter()
            .filter_map(|name| Some((name.clone(), std::env::var(name).ok()?)))
            .collect()
    };
    // An exact match first, then the shortest value containing it (a URL, say).
    candidates.sort_by_key(|(name, value)| (value.len(), name.clone()));
    for alias in object.get_mut("aliases")?.as_array_mut()? {
        let conninfo = alias.get_mut("conninfo").and_then(|c| c.as_object_mut());
        let Some(conninfo) = conninfo else { continue };
        let Some(password) = conninfo.remove("password") else {
            continue;
        };
        let password = password.as_str()?.to_owned();
        if password.is_empty() {
            continue;
        }
        let (name, start) = candidates
            .iter()
            .find_map(|(name, value)| value.find(&password).map(|start| (name, start)))?;
        let from = PasswordFrom {
            env: name.clone(),
            start,
            end: start + password.len(),
        };
        alias
            .as_object_mut()?
            .insert("password_from".into(), serde_json::to_value(from).ok()?);
    }
    Some(export)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(env: &[&str]) -> Inputs {
        Inputs {
            files: BTreeMap::new(),
            dirs: BTreeMap::new(),
            env: env.iter().map(|s| (*s).to_owned()).collect(),
            whole_env: false,
        }
    }

    #[test]
    fn passwords_are_stored_only_as_a_reference_into_a_variable_django_read() {
        // A variable name only this test uses; the test process sets it before any thread
        // could read the environment concurrently.
        std::env::set_var("DJANGO_MIGRATOR_TEST_URL", "postgres://shop:s3cr%t@db/shop");
        let raw = serde_json::json!({
            "export_version": 1,
            "aliases": [{"alias": "default", "vendor": "postgresql",
                         "conninfo": {"user": "shop", "password": "s3cr%t"}}],
            "inputs": {}
        });
        let stored = without_passwords(&raw, &inputs(&["DJANGO_MIGRATOR_TEST_URL"])).unwrap();
        let text = stored.to_string();
        assert!(!text.contains("s3cr%t"), "{text}");
        assert!(stored.get("inputs").is_none());
        assert_eq!(
            stored["aliases"][0]["password_from"],
            serde_json::json!({"env": "DJANGO_MIGRATOR_TEST_URL", "start": 16, "end": 22})
        );
        // A password Django did not read from the environment: nothing can be stored.
        assert!(without_passwords(&raw, &inputs(&[])).is_none());
    }

    #[test]
    fn the_environment_digest_sees_a_changed_or_removed_variable() {
        let names = vec!["DJANGO_MIGRATOR_TEST_DIGEST".to_owned()];
        std::env::set_var("DJANGO_MIGRATOR_TEST_DIGEST", "a");
        let first = env_digest(&names, false);
        assert_eq!(env_digest(&names, false), first);
        std::env::set_var("DJANGO_MIGRATOR_TEST_DIGEST", "b");
        let second = env_digest(&names, false);
        assert_ne!(second, first);
        std::env::remove_var("DJANGO_MIGRATOR_TEST_DIGEST");
        assert_ne!(env_digest(&names, false), second);
        std::env::set_var("DJANGO_MIGRATOR_TEST_DIGEST", "");
        assert_ne!(env_digest(&names, false), second);
    }
}
