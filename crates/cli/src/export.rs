//! The export document written by the exporter (see docs/manifest.md).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

pub const EXPORT_VERSION: u64 = 1;

#[derive(Debug, Deserialize)]
pub struct Export {
    pub export_version: u64,
    #[serde(default)]
    pub django_version: String,
    pub aliases: Vec<AliasExport>,
    /// What the Django process read (only from the CLI's own session; see the cache module).
    #[serde(default)]
    pub inputs: Option<Inputs>,
    /// The document as read, for the cache.
    #[serde(skip)]
    pub raw: serde_json::Value,
}

/// A file's or directory's size, mtime (ns), inode and ctime (ns); `None` when it is missing.
pub type Stat = [i128; 4];

#[derive(Debug, Clone, Deserialize)]
pub struct Inputs {
    pub files: BTreeMap<String, Option<Stat>>,
    pub dirs: BTreeMap<String, Option<Stat>>,
    pub env: Vec<String>,
    pub whole_env: bool,
}

#[derive(Debug, Deserialize)]
pub struct AliasExport {
    pub alias: String,
    pub vendor: String,
    #[serde(default)]
    pub conninfo: Conninfo,
    #[serde(default)]
    pub test: TestSettings,
    #[serde(default)]
    pub router: RouterCounts,
    /// Kept as JSON: the extension validates it; the CLI only carries it.
    #[serde(default)]
    pub manifest: Option<serde_json::Value>,
}

/// libpq keywords from Django's settings. Its `Debug` never shows the password.
#[derive(Default, Deserialize)]
#[serde(transparent)]
pub struct Conninfo(pub BTreeMap<String, String>);

impl fmt::Debug for Conninfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.0 {
            if key == "password" {
                map.entry(key, &"<hidden>");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

impl Conninfo {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct TestSettings {
    #[serde(default)]
    pub mirror: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RouterCounts {
    #[serde(default)]
    pub models: u64,
    #[serde(default)]
    pub migrate_models: u64,
    #[serde(default)]
    pub write_models: u64,
    /// Per app label with migrations: whether the router migrates any of it on this alias.
    #[serde(default)]
    pub apps: BTreeMap<String, bool>,
}

impl AliasExport {
    pub fn router_migrates(&self, app: &str) -> bool {
        self.router.apps.get(app).copied().unwrap_or(false)
    }
}

impl Export {
    pub fn parse(text: &str) -> anyhow::Result<Export> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("the exporter's output is not valid JSON: {e}"))?;
        Export::from_value(value)
    }

    pub fn from_value(value: serde_json::Value) -> anyhow::Result<Export> {
        match value.get("export_version").map(serde_json::Value::as_u64) {
            Some(Some(EXPORT_VERSION)) => {}
            Some(Some(other)) => anyhow::bail!(
                "the exporter wrote export_version {other}, this django-migrator reads version {EXPORT_VERSION}"
            ),
            _ => anyhow::bail!("the exporter's output has no export_version"),
        }
        let mut export = Export::deserialize(&value)
            .map_err(|e| anyhow::anyhow!("the exporter's output is malformed: {e}"))?;
        export.raw = value;
        Ok(export)
    }

    pub fn alias(&self, name: &str) -> anyhow::Result<&AliasExport> {
        self.aliases
            .iter()
            .find(|a| a.alias == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.aliases.iter().map(|a| a.alias.as_str()).collect();
                anyhow::anyhow!(
                    "no database alias {name:?} in DATABASES (aliases: {})",
                    known.join(", ")
                )
            })
    }

    /// The aliases to work on: `default` first, then alphabetical (the SPEC's order), limited
    /// to `only` when given. An unknown alias in `only` is a configuration error.
    pub fn ordered(&self, only: &[String]) -> anyhow::Result<Vec<&AliasExport>> {
        for name in only {
            self.alias(name)?;
        }
        let mut aliases: Vec<&AliasExport> = self
            .aliases
            .iter()
            .filter(|a| only.is_empty() || only.contains(&a.alias))
            .collect();
        aliases.sort_by(|a, b| {
            (a.alias != "default", &a.alias).cmp(&(b.alias != "default", &b.alias))
        });
        Ok(aliases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(aliases: &[&str]) -> Export {
        let aliases: Vec<_> = aliases
            .iter()
            .map(|a| serde_json::json!({"alias": a, "vendor": "postgresql"}))
            .collect();
        Export::parse(&serde_json::json!({"export_version": 1, "aliases": aliases}).to_string())
            .unwrap()
    }

    #[test]
    fn default_comes_first_then_alphabetical() {
        let e = export(&["zeta", "analytics", "default", "Beta"]);
        let names: Vec<_> = e
            .ordered(&[])
            .unwrap()
            .iter()
            .map(|a| a.alias.as_str())
            .collect();
        assert_eq!(names, ["default", "Beta", "analytics", "zeta"]);
    }

    #[test]
    fn unknown_aliases_are_named() {
        let e = export(&["default"]);
        let error = e.ordered(&["nope".into()]).unwrap_err().to_string();
        assert_eq!(
            error,
            "no database alias \"nope\" in DATABASES (aliases: default)"
        );
    }

    #[test]
    fn versions_are_checked_first() {
        let error = Export::parse(r#"{"export_version": 7, "aliases": 1}"#).unwrap_err();
        assert!(error.to_string().contains("export_version 7"), "{error}");
        assert!(Export::parse("garbage")
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let info: Conninfo =
            serde_json::from_str(r#"{"user": "shop", "password": "s3cret"}"#).unwrap();
        let shown = format!("{info:?}");
        assert!(!shown.contains("s3cret"));
        assert!(shown.contains("shop"));
    }
}
