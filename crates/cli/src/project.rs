//! The user's Django project: its manage.py, its interpreter, and the commands run in it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Starts the session's Python: the exporter records what the process reads (files,
/// directories, environment variables; see the cache module), then runs manage.py as
/// `python manage.py` would.
const LAUNCH: &str = "import os, runpy; runpy.run_path(os.environ['DJANGO_MIGRATOR_EXPORTER'], run_name='django_migrator_launch')";

pub struct Project {
    pub manage: PathBuf,
    pub dir: PathBuf,
    pub python: PathBuf,
    /// How long Django may take to start, to run makemigrations or to export.
    pub django_timeout: Duration,
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
            django_timeout: config.django_timeout,
        })
    }

    /// Reads the project's databases and migration graph (one Python start for all aliases).
    pub fn export(&self, global: &Global) -> anyhow::Result<Export> {
        self.session(global)?.export()
    }
}

/// One Django process serving a whole run (the exporter's `serve` mode): makemigrations, the
/// export and every alias's migrate, so Django starts once instead of once per alias. Requests
/// and replies travel as JSON lines over a Unix socket in a private directory, so nothing the
/// project prints can interfere.
pub struct Session {
    child: Child,
    timeout: Duration,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    stderr: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
}

#[derive(serde::Deserialize)]
struct Reply {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Project {
    pub fn session(&self, global: &Global) -> anyhow::Result<Session> {
        let dir = tempfile::Builder::new()
            .prefix("django-migrator-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let exporter = dir.path().join("exporter.py");
        std::fs::write(&exporter, EXPORTER).context("cannot write the exporter")?;
        let socket = dir.path().join("session.sock");
        let listener = UnixListener::bind(&socket).context("cannot create the session socket")?;
        listener.set_nonblocking(true)?;
        let mut command = Command::new(&self.python);
        command
            .arg("-c")
            .arg(LAUNCH)
            .arg(&self.manage)
            .args(["shell", "-v", "0", "-c", BOOTSTRAP])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            // A group of its own, so that stopping Django stops whatever it started too. It
            // still dies with the CLI (the exporter asks the kernel for that).
            .process_group(0);
        if let Some(settings) = &global.settings {
            command.arg("--settings").arg(settings);
        }
        command
            .env("DJANGO_MIGRATOR_EXPORTER", &exporter)
            .env("DJANGO_MIGRATOR_SOCKET", &socket)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().with_context(|| {
            format!(
                "cannot start the project's Python {} (pass --python PATH or activate the virtualenv)",
                self.python.display()
            )
        })?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                sink.lock().map(|mut s| s.push_str(&text)).ok();
            });
        }
        let deadline = Instant::now() + self.django_timeout;
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        stop(&mut child);
                        let printed = stderr.lock().map(|s| tail(&s, 30)).unwrap_or_default();
                        bail!(
                            "Django did not answer within {} s while starting (--django-timeout); the process was stopped{}",
                            self.django_timeout.as_secs_f64(),
                            if printed.is_empty() {
                                String::new()
                            } else {
                                format!(". It printed:\n{printed}")
                            }
                        );
                    }
                    if let Some(status) = child.try_wait()? {
                        // Give the stderr reader a moment to collect the traceback.
                        std::thread::sleep(Duration::from_millis(50));
                        let text = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                        bail!(
                            "Django could not start or read the migration graph ({}):\n{}",
                            describe_status(status),
                            tail(&text, 30)
                        );
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(error) => return Err(error).context("the session socket failed"),
            }
        };
        stream.set_nonblocking(false)?;
        Ok(Session {
            child,
            timeout: self.django_timeout,
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            stderr,
            dir,
        })
    }
}

impl Session {
    /// Sends one request and waits for its reply, at most `timeout` (`None`: as long as it
    /// takes). On timeout the Django process is stopped.
    fn request(
        &mut self,
        request: serde_json::Value,
        step: &str,
        timeout: Option<Duration>,
    ) -> anyhow::Result<Output> {
        writeln!(self.writer, "{request}")?;
        self.writer.flush()?;
        self.reader.get_ref().set_read_timeout(timeout)?;
        let mut line = String::new();
        let read = match self.reader.read_line(&mut line) {
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                stop(&mut self.child);
                bail!(
                    "Django did not answer within {} s while {step} (--django-timeout); the process was stopped",
                    timeout.unwrap_or_default().as_secs_f64()
                );
            }
            read => read?,
        };
        if read == 0 {
            let status = self.child.wait();
            std::thread::sleep(Duration::from_millis(50));
            let text = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
            bail!(
                "the project's Python process ended unexpectedly ({}):\n{}",
                status.map_or_else(|e| e.to_string(), describe_status),
                tail(&text, 30)
            );
        }
        let reply: Reply =
            serde_json::from_str(&line).context("unreadable reply from the session")?;
        Ok(Output {
            success: reply.code == 0,
            code: Some(reply.code),
            stdout: reply.stdout,
            stderr: reply.stderr,
        })
    }

    pub fn makemigrations(&mut self, args: &[&str]) -> anyhow::Result<Output> {
        let timeout = Some(self.timeout);
        self.request(
            serde_json::json!({"cmd": "makemigrations", "args": args}),
            "running makemigrations",
            timeout,
        )
    }

    pub fn migrate(&mut self, args: &[&str]) -> anyhow::Result<Output> {
        // Migrations may rightly run for hours; only the database lock bounds them.
        self.request(
            serde_json::json!({"cmd": "migrate", "args": args}),
            "migrating",
            None,
        )
    }

    pub fn export(&mut self) -> anyhow::Result<Export> {
        let path = self.dir.path().join("export.json");
        let timeout = Some(self.timeout);
        let output = self.request(
            serde_json::json!({"cmd": "export", "path": path}),
            "reading the migration graph",
            timeout,
        )?;
        if !output.success {
            bail!(
                "Django could not read the migration graph:\n{}",
                tail(&output.stderr, 30)
            );
        }
        let text = std::fs::read_to_string(&path).context("the exporter wrote nothing")?;
        Export::parse(&text)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = writeln!(self.writer, "{}", serde_json::json!({"cmd": "quit"}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        stop(&mut self.child);
    }
}

/// Kills the Django process and every process it started (its process group), and reaps it.
fn stop(child: &mut Child) {
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        kill_group(pgid);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGKILL to the process group `pgid`: the group the Django process leads (see
/// `process_group(0)`), which has not been reaped yet, so the id cannot have been reused.
#[allow(unsafe_code)]
fn kill_group(pgid: libc::pid_t) {
    // SAFETY: killpg takes two integers and touches no memory of this process.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
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
