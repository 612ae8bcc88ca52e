//! `django-migrator`: thin entry point. Parses flags, runs the command, maps the outcome to the
//! documented exit status (0 clean, 1 not clean, 2 usage or configuration error).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match django_migrator_cli::args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help/version to stdout with status 0, usage errors with status 2.
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    match django_migrator_cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("django-migrator: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
