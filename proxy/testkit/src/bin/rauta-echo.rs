//! `rauta-echo --listen ADDR --name NAME`: runs a testkit [`Backend`] in the
//! foreground until killed (a demo backend for scripts/run-local.sh).

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use rauta_testkit::Backend;

/// Usage text.
const USAGE: &str = "usage: rauta-echo [--listen ADDR] [--name NAME]\n  \
    --listen ADDR  address to listen on (default 127.0.0.1:8080)\n  \
    --name NAME    backend name sent as x-backend (default echo)";

/// Parses arguments, starts the backend and parks forever.
fn main() -> ExitCode {
    let mut listen = "127.0.0.1:8080".to_string();
    let mut name = "echo".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let slot = match key.as_str() {
            "--listen" | "-l" => &mut listen,
            "--name" | "-n" => &mut name,
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("rauta-echo: unknown argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        match inline.or_else(|| args.next()) {
            Some(v) => *slot = v,
            None => {
                eprintln!("rauta-echo: {key} needs a value\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let backend = match Backend::try_start_on(&name, listen.as_str()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("rauta-echo: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("rauta-echo {name} listening on {}", backend.addr());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
