//! One connection to one alias's database, and the extension's SQL API as Rust calls.

use std::time::Duration;

use anyhow::{bail, Context};
use postgres::config::SslMode;
use postgres::{Client, Config, NoTls};
use serde::Serialize;

use crate::export::Conninfo;

pub struct Db {
    client: Client,
    /// What this connection was opened to, for the pooler check.
    endpoint: Endpoint,
    /// The search_path the server gave this session: Django's, since the connection is made
    /// from Django's settings. django-migrator's own queries run with `PINNED_SEARCH_PATH`
    /// instead; only `load_manifest` sees this one, because it records how Django resolves names.
    app_search_path: String,
}

/// What django-migrator's own queries run under, so that no schema on the application's
/// search_path can capture a function, operator or type they use.
const PINNED_SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// The extension version this CLI speaks to (they are released together).
pub const EXTENSION_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How an installed extension's version compares with `EXTENSION_VERSION`.
#[derive(Debug, PartialEq, Eq)]
pub enum VersionMatch {
    Same,
    Older,
    Newer,
}

pub fn compare_extension_version(installed: &str) -> VersionMatch {
    fn parts(version: &str) -> Vec<u64> {
        version
            .split(['.', '-'])
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    }
    match parts(installed).cmp(&parts(EXTENSION_VERSION)) {
        std::cmp::Ordering::Equal if installed == EXTENSION_VERSION => VersionMatch::Same,
        std::cmp::Ordering::Greater => VersionMatch::Newer,
        _ => VersionMatch::Older,
    }
}

#[derive(Debug, Clone, Copy)]
struct Endpoint {
    unix_socket: bool,
    /// The port, when exactly one host and port were configured.
    port: Option<u16>,
    /// When the connection was opened (seconds since the epoch).
    opened_at: f64,
}

/// The physical identity of a database, for the guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub system_identifier: i64,
    pub database_oid: u32,
    pub database_name: String,
    pub server_version: String,
    pub in_recovery: bool,
}

impl Identity {
    pub fn same_database(&self, other: &Identity) -> bool {
        self.system_identifier == other.system_identifier && self.database_oid == other.database_oid
    }
}

/// A drift row, as `django_migrator.scan()` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct DriftRow {
    pub app: String,
    pub name: String,
    pub kind: String,
    pub recorded: bool,
    pub present: i32,
    pub missing: i32,
    pub detail: String,
    pub objects: serde_json::Value,
}

impl DriftRow {
    /// Orphan records are information, never an error.
    pub fn is_error(&self) -> bool {
        self.kind != "orphan_record"
    }
}

/// The two functions that write django_migrations, both evidence-gated and journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// `repair()`: every kind of drift, by the repair rules.
    Repair,
    /// `record_companions()`: the companion step only.
    Companions,
}

impl Writer {
    fn sql(self) -> &'static str {
        match self {
            Writer::Repair => {
                "SELECT action, app, name, reason FROM django_migrator.repair(dry_run => $1)"
            }
            Writer::Companions => {
                "SELECT action, app, name, reason FROM django_migrator.record_companions(dry_run => $1)"
            }
        }
    }
}

fn steps(rows: &[postgres::Row], written: bool) -> Vec<RepairStep> {
    rows.iter()
        .map(|r| {
            let action: String = r.get(0);
            RepairStep {
                applied: written && matches!(action.as_str(), "fake_apply" | "fake_rewind"),
                action,
                app: r.get(1),
                name: r.get(2),
                reason: r.get(3),
            }
        })
        .collect()
}

/// One row of `django_migrator.status()`.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationStatus {
    pub app: String,
    pub name: String,
    pub recorded: bool,
    /// UTC, ISO 8601.
    pub applied_at: Option<String>,
    pub state: String,
    pub present: i32,
    pub missing: i32,
}

/// One step of a repair plan, as `django_migrator.repair()` returns it.
#[derive(Debug, Clone, Serialize)]
pub struct RepairStep {
    pub action: String,
    pub app: String,
    pub name: String,
    pub reason: String,
    /// Whether it was written (false for a plan shown by `check --repair`, and for warnings
    /// and refusals).
    pub applied: bool,
}

#[derive(Debug, Clone)]
pub struct LockHolder {
    pub pid: i32,
    pub holder: Option<String>,
    pub application_name: Option<String>,
    pub held_for: Option<String>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}", self.pid)?;
        if let Some(holder) = &self.holder {
            write!(f, " ({holder})")?;
        }
        if let Some(app) = self.application_name.as_deref().filter(|a| !a.is_empty()) {
            write!(f, ", application_name {app:?}")?;
        }
        if let Some(held) = &self.held_for {
            write!(f, ", connected for {held}")?;
        }
        Ok(())
    }
}

/// Builds a connection configuration the way libpq would read Django's parameters.
pub fn config(info: &Conninfo, timeout: Duration) -> anyhow::Result<Config> {
    let mut config = Config::new();
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let host = info
        .get("host")
        .map(str::to_owned)
        .or_else(|| env("PGHOST"))
        .unwrap_or_else(|| "/var/run/postgresql".into());
    for host in host.split(',') {
        config.host(host);
    }
    let port = info
        .get("port")
        .map(str::to_owned)
        .or_else(|| env("PGPORT"))
        .unwrap_or_else(|| "5432".into());
    for port in port.split(',') {
        config.port(
            port.trim()
                .parse()
                .with_context(|| format!("invalid port {port:?}"))?,
        );
    }
    if let Some(dbname) = info.get("dbname") {
        config.dbname(dbname);
    }
    match info
        .get("user")
        .map(str::to_owned)
        .or_else(|| env("PGUSER"))
        .or_else(|| env("USER"))
    {
        Some(user) => config.user(&user),
        None => bail!("no database user: set USER in DATABASES"),
    };
    if let Some(password) = info
        .get("password")
        .map(str::to_owned)
        .or_else(|| env("PGPASSWORD"))
    {
        config.password(password);
    }
    if let Some(options) = info.get("options") {
        config.options(options);
    }
    match info.get("sslmode").unwrap_or("prefer") {
        "disable" | "allow" | "prefer" => config.ssl_mode(SslMode::Disable),
        other => bail!(
            "sslmode={other} needs TLS, which this build of django-migrator does not support yet; \
             connect over a Unix socket or a trusted network with sslmode=prefer"
        ),
    };
    config.application_name("django-migrator");
    config.connect_timeout(timeout);
    Ok(config)
}

impl Db {
    /// Connects and checks that the server answers a query, all within `timeout`.
    ///
    /// The driver's own connect timeout covers only the TCP connect; a server (or a proxy)
    /// that accepts the connection and then never answers would hang the startup exchange. So
    /// the whole handshake runs on a helper thread with one deadline; on timeout the thread is
    /// abandoned, blocked in a read that ends with the process.
    pub fn connect(info: &Conninfo, timeout: Duration) -> anyhow::Result<Db> {
        let config = config(info, timeout)?;
        let hosts = config.get_hosts();
        let endpoint = Endpoint {
            unix_socket: matches!(hosts.first(), Some(postgres::config::Host::Unix(_))),
            port: match (hosts.len(), config.get_ports()) {
                (1, [port]) => Some(*port),
                _ => None,
            },
            opened_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        };
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = config.connect(NoTls).and_then(|mut client| {
                client.simple_query("SELECT 1")?;
                let app_search_path: String = client
                    .query_one("SELECT pg_catalog.current_setting('search_path')", &[])?
                    .get(0);
                client.execute(
                    "SELECT pg_catalog.set_config('search_path', $1, false)",
                    &[&PINNED_SEARCH_PATH],
                )?;
                Ok((client, app_search_path))
            });
            let _ = sender.send(result);
        });
        match receiver.recv_timeout(timeout) {
            Ok(result) => {
                let (client, app_search_path) = result?;
                Ok(Db {
                    client,
                    endpoint,
                    app_search_path,
                })
            }
            Err(_) => bail!(
                "no answer within {} s (--connect-timeout)",
                timeout.as_secs_f64()
            ),
        }
    }

    pub fn extension_version(&mut self) -> anyhow::Result<Option<String>> {
        let row = self.client.query_opt(
            "SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'django_migrator'",
            &[],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The newest version of the extension the server's files offer, if any.
    pub fn available_version(&mut self) -> anyhow::Result<Option<String>> {
        let row = self.client.query_opt(
            "SELECT default_version::text FROM pg_catalog.pg_available_extensions
              WHERE name = 'django_migrator'",
            &[],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    pub fn install(&mut self) -> anyhow::Result<(Option<String>, String)> {
        let before = self.extension_version()?;
        self.client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS django_migrator; ALTER EXTENSION django_migrator UPDATE;")?;
        let after = self.extension_version()?.unwrap_or_default();
        Ok((before, after))
    }

    pub fn identity(&mut self) -> anyhow::Result<Identity> {
        let row = self.client.query_one(
            "SELECT system_identifier, database_oid, database_name, server_version, in_recovery
               FROM django_migrator.identity()",
            &[],
        )?;
        Ok(Identity {
            system_identifier: row.get(0),
            database_oid: row.get(1),
            database_name: row.get(2),
            server_version: row.get(3),
            in_recovery: row.get(4),
        })
    }

    /// Waits up to `timeout_s` seconds for the migration lock.
    pub fn lock(&mut self, timeout_s: f64, holder: &str) -> anyhow::Result<bool> {
        let row = self.client.query_one(
            "SELECT django_migrator.lock(pg_catalog.make_interval(secs => $1), $2)",
            &[&timeout_s, &holder],
        )?;
        Ok(row.get(0))
    }

    /// Session locks only hold on a direct connection. Behind a transaction-pooling proxy
    /// (PgBouncer `pool_mode = transaction`) other clients' transactions run in the locked
    /// server session, and when django-migrator dies the lock stays with the pooled server
    /// connection instead of being released. Checked after taking the lock, without relying on
    /// pool traffic: the server must see the connection arrive the way it was opened (same
    /// transport, same port), the backend must be no older than the connection, it must stay
    /// the same across transactions, and it must hold the lock.
    /// `DJANGO_MIGRATOR_ALLOW_PROXY=1` accepts a plain TCP proxy or a session-mode pool.
    pub fn lock_untrustworthy(&mut self) -> anyhow::Result<Option<String>> {
        let advice = "a session lock is only safe on a direct connection: connect django-migrator \
                      to PostgreSQL itself (HOST/PORT of the server, not of PgBouncer), or set \
                      DJANGO_MIGRATOR_ALLOW_PROXY=1 for a plain TCP proxy or a session-mode pool";
        let mut pids = vec![];
        let mut server_port: Option<i32> = None;
        let mut backend_start = 0.0;
        for _ in 0..3 {
            let row = self.client.query_one(
                "SELECT pg_catalog.pg_backend_pid(), pg_catalog.inet_server_port(),
                        EXTRACT(epoch FROM a.backend_start)::float8
                   FROM pg_catalog.pg_stat_activity a WHERE a.pid = pg_catalog.pg_backend_pid()",
                &[],
            )?;
            pids.push(row.get::<_, i32>(0));
            server_port = row.get(1);
            backend_start = row.get::<_, Option<f64>>(2).unwrap_or(0.0);
        }
        let holds: bool = self
            .client
            .query_one("SELECT django_migrator.holds_lock()", &[])?
            .get(0);
        if pids.windows(2).any(|w| w[0] != w[1]) || !holds {
            return Ok(Some(format!(
                "the connection does not keep its server session (backend pids {pids:?}, lock held: {holds}): \
                 a transaction-pooling proxy such as PgBouncer is in the way; {advice}"
            )));
        }
        if std::env::var("DJANGO_MIGRATOR_ALLOW_PROXY").is_ok_and(|v| v == "1") {
            return Ok(None);
        }
        let endpoint = self.endpoint;
        let arrived = match server_port {
            None => "over a Unix socket".to_owned(),
            Some(port) => format!("over TCP on port {port}"),
        };
        let opened = match (endpoint.unix_socket, endpoint.port) {
            (true, _) => "over a Unix socket".to_owned(),
            (false, Some(port)) => format!("over TCP on port {port}"),
            (false, None) => "over TCP".to_owned(),
        };
        let transport_differs = endpoint.unix_socket != server_port.is_none();
        let port_differs = match (endpoint.unix_socket, endpoint.port, server_port) {
            (false, Some(ours), Some(theirs)) => i32::from(ours) != theirs,
            _ => false,
        };
        if transport_differs || port_differs {
            return Ok(Some(format!(
                "django-migrator connected {opened}, but the server sees the connection arrive {arrived}: \
                 a proxy or pooler (such as PgBouncer with transaction pooling) is in between; {advice}"
            )));
        }
        // On one host (a Unix socket), the clocks agree: a server session older than the
        // connection was handed over by a pool.
        if endpoint.unix_socket && backend_start > 0.0 && backend_start + 2.0 < endpoint.opened_at {
            return Ok(Some(format!(
                "the server session is {:.0} s older than this connection: a pooler (transaction \
                 pooling) handed over an existing session; {advice}",
                endpoint.opened_at - backend_start
            )));
        }
        Ok(None)
    }

    /// Evidence of a migration running without the lock: another session that holds a
    /// write lock on django_migrations, or an ACCESS EXCLUSIVE lock (DDL) on a table, in this
    /// database.
    pub fn unlocked_migration(&mut self) -> anyhow::Result<Option<String>> {
        let rows = self.client.query(
            "SELECT a.pid, COALESCE(a.application_name, ''), c.relname::text, l.mode,
                    pg_catalog.left(COALESCE(a.query, ''), 120)
               FROM pg_catalog.pg_locks l
               JOIN pg_catalog.pg_class c ON c.oid = l.relation
               JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
              WHERE l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                                   WHERE d.datname = pg_catalog.current_database())
                AND l.pid <> pg_catalog.pg_backend_pid() AND l.granted
                AND ((c.relname = 'django_migrations'
                      AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock',
                                     'ExclusiveLock', 'AccessExclusiveLock'))
                     OR (l.mode = 'AccessExclusiveLock' AND c.relkind IN ('r', 'p')))
              ORDER BY a.pid
              LIMIT 3",
            &[],
        )?;
        if rows.is_empty() {
            return Ok(None);
        }
        let evidence: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "pid {} ({:?}) holds {} on {}, running {:?}",
                    r.get::<_, i32>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(3),
                    r.get::<_, String>(2),
                    r.get::<_, String>(4)
                )
            })
            .collect();
        Ok(Some(evidence.join("; ")))
    }

    pub fn unlock(&mut self) -> anyhow::Result<()> {
        self.client
            .execute("SELECT django_migrator.unlock()", &[])?;
        Ok(())
    }

    pub fn lock_holder(&mut self) -> anyhow::Result<Option<LockHolder>> {
        let row = self.client.query_opt(
            "SELECT pid, holder, application_name,
                    pg_catalog.date_trunc('second', pg_catalog.now() - backend_start)::text
               FROM django_migrator.lock_holder()
              WHERE pid <> pg_catalog.pg_backend_pid()",
            &[],
        )?;
        Ok(row.map(|r| LockHolder {
            pid: r.get(0),
            holder: r.get(1),
            application_name: r.get(2),
            held_for: r.get(3),
        }))
    }

    /// Runs `f` in a transaction that is always rolled back: nothing it does is kept.
    pub fn read_only<T>(
        &mut self,
        f: impl FnOnce(&mut Db) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        self.client.batch_execute("BEGIN")?;
        let result = f(self);
        self.client.batch_execute("ROLLBACK")?;
        result
    }

    /// Loads `manifest` under the application's search_path (see `app_search_path`), then
    /// pins it again. In an aborted transaction the restore fails too; the rollback that
    /// follows restores the pinned value.
    pub fn load_manifest(&mut self, manifest: &serde_json::Value) -> anyhow::Result<String> {
        const SET: &str = "SELECT pg_catalog.set_config('search_path', $1, false)";
        self.client.execute(SET, &[&self.app_search_path])?;
        let loaded = self
            .client
            .query_one("SELECT django_migrator.load_manifest($1)", &[manifest]);
        let restored = self.client.execute(SET, &[&PINNED_SEARCH_PATH]);
        let row = loaded?;
        restored?;
        Ok(row.get(0))
    }

    pub fn scan(&mut self) -> anyhow::Result<Vec<DriftRow>> {
        let rows = self.client.query(
            "SELECT app, name, kind, recorded, present, missing, detail, objects
               FROM django_migrator.scan()",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| DriftRow {
                app: r.get(0),
                name: r.get(1),
                kind: r.get(2),
                recorded: r.get(3),
                present: r.get(4),
                missing: r.get(5),
                detail: r.get(6),
                objects: r.get(7),
            })
            .collect())
    }

    /// The plan of `writer`, or (with `dry_run` false) its changes, in their own transaction.
    pub fn repair(&mut self, writer: Writer, dry_run: bool) -> anyhow::Result<Vec<RepairStep>> {
        let mut transaction = self.client.transaction()?;
        let rows = transaction.query(writer.sql(), &[&dry_run])?;
        transaction.commit()?;
        Ok(steps(&rows, !dry_run))
    }

    /// The plan only, inside the caller's (read-only) transaction.
    pub fn repair_plan_in_transaction(
        &mut self,
        writer: Writer,
    ) -> anyhow::Result<Vec<RepairStep>> {
        let rows = self.client.query(writer.sql(), &[&true])?;
        Ok(steps(&rows, false))
    }

    pub fn status(&mut self) -> anyhow::Result<Vec<MigrationStatus>> {
        let rows = self.client.query(
            "SELECT app, name, recorded,
                    pg_catalog.to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                    state, present, missing
               FROM django_migrator.status()",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| MigrationStatus {
                app: r.get(0),
                name: r.get(1),
                recorded: r.get(2),
                applied_at: r.get(3),
                state: r.get(4),
                present: r.get(5),
                missing: r.get(6),
            })
            .collect())
    }

    /// Migrations of the manifest that are not recorded (and not drifted), as `app.name`.
    pub fn pending(&mut self) -> anyhow::Result<Vec<String>> {
        let rows = self.client.query(
            "SELECT app || '.' || name FROM django_migrator.status() WHERE state = 'pending'",
            &[],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn recorded_count(&mut self) -> anyhow::Result<i64> {
        let row = self.client.query_one(
            "SELECT pg_catalog.count(*) FROM django_migrator.status() WHERE recorded",
            &[],
        )?;
        Ok(row.get(0))
    }
}

/// Who is taking the lock: enough for an operator to find the process and its deploy.
pub fn holder_label() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".into());
    let user = os_user();
    let mut label = format!(
        "django-migrator {} on {host} pid {} user {user}",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    let ci = [
        "CI_JOB_URL",
        "BUILD_URL",
        "GITHUB_RUN_ID",
        "CI_COMMIT_SHA",
        "GITHUB_SHA",
        "GIT_COMMIT",
    ];
    for key in ci {
        if let Ok(value) = std::env::var(key) {
            if !value.is_empty() {
                label.push_str(&format!(" {key}={value}"));
            }
        }
    }
    label
}

/// The OS user: $USER or $LOGNAME when set (cron, containers and `docker exec` often set
/// neither), else the name of the effective uid from /etc/passwd, else the uid.
fn os_user() -> String {
    for key in ["USER", "LOGNAME"] {
        if let Ok(user) = std::env::var(key) {
            if !user.is_empty() {
                return user;
            }
        }
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned))
        });
    let Some(uid) = uid else {
        return "unknown".into();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.get(2) == Some(&uid.as_str())).then(|| fields[0].to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_versions_compare_numerically() {
        assert_eq!(
            compare_extension_version(EXTENSION_VERSION),
            VersionMatch::Same
        );
        assert_eq!(compare_extension_version("0.1.0"), VersionMatch::Older);
        assert_eq!(compare_extension_version("0.0.1"), VersionMatch::Older);
        assert_eq!(compare_extension_version("0.10.0"), VersionMatch::Newer);
        assert_eq!(compare_extension_version("99.0.0"), VersionMatch::Newer);
        // Not a version this CLI knows how to read: never taken for a match.
        assert_eq!(compare_extension_version("unknown"), VersionMatch::Older);
    }
}
