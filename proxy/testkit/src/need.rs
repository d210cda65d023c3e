//! What a test needs from the machine (privileges, tools, CPUs), and one
//! rule for when it is missing: outside CI the test is skipped, visibly;
//! under CI (`CI=true`) it fails, since `scripts/setup.sh` installs
//! everything the suite needs.
//!
//! A skip prints `RAUTA-SKIP <test>: <need> missing` and, when
//! [`SKIP_LOG_ENV`] names a file, appends that line to it, so that
//! `scripts/test.sh` counts skipped tests apart from passed ones (cargo
//! shows a test's output only when it fails).
//!
//! ```no_run
//! use rauta_testkit::{require, Need};
//!
//! #[test]
//! fn exposition_is_valid() {
//!     require!(Need::tool("promtool"));
//!     // ...
//! }
//! ```

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable naming the file skips are appended to.
pub const SKIP_LOG_ENV: &str = "RAUTA_TEST_SKIP_LOG";

/// Something a test cannot run without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// The privileges eBPF needs: CAP_NET_ADMIN and CAP_BPF (or
    /// CAP_SYS_ADMIN), as root has.
    EbpfPrivilege,
    /// Creating network namespaces and veth pairs: CAP_SYS_ADMIN and
    /// CAP_NET_ADMIN, plus `ip` (iproute2).
    Netns,
    /// An executable on `PATH` (or in /sbin, /usr/sbin), or an absolute
    /// path to one.
    Tool(String),
    /// At least this many CPUs in this process's affinity mask.
    Cpus(usize),
    /// Something decided at build time: `what` is present when `present`.
    Built {
        /// What it is, e.g. "rauta's eBPF object (built without AYA_BUILD_SKIP)".
        what: &'static str,
        /// Whether the build has it.
        present: bool,
    },
}

impl Need {
    /// [`Need::Tool`] for the executable `name`.
    pub fn tool(name: &str) -> Need {
        Need::Tool(name.to_string())
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::EbpfPrivilege => f.write_str("eBPF privileges (root: CAP_BPF and CAP_NET_ADMIN)"),
            Need::Netns => {
                f.write_str("network namespaces (root: CAP_SYS_ADMIN, and `ip` of iproute2)")
            }
            Need::Tool(name) => write!(f, "`{name}` ({})", install_hint(name)),
            Need::Cpus(n) => write!(f, "{n} CPUs"),
            Need::Built { what, .. } => f.write_str(what),
        }
    }
}

/// Where the setup installs `tool` from.
fn install_hint(tool: &str) -> &'static str {
    match Path::new(tool).file_name().and_then(|n| n.to_str()) {
        Some("promtool" | "prometheus") => "scripts/setup.sh installs prometheus",
        Some("kubernetes-validate") => "scripts/setup.sh installs it with pip",
        Some("openssl") => "scripts/setup.sh installs openssl",
        Some("curl") => "scripts/setup.sh installs curl",
        Some("httpwg") => "scripts/setup.sh installs httpwg-cli",
        Some("chromium" | "chromedriver") => {
            "scripts/setup.sh installs chromium and chromium-driver"
        }
        Some("ip" | "ss") => "scripts/setup-ebpf.sh installs iproute2",
        Some("ethtool") => "scripts/setup-ebpf.sh installs ethtool",
        Some("prlimit" | "setpriv") => "util-linux",
        Some("python") if tool.contains("/.venv-test/") => {
            "scripts/setup.sh creates .venv-test with grpcio"
        }
        _ => "not installed",
    }
}

/// Linux capability numbers used here.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// The effective capability mask of this process (0 if unreadable).
fn cap_eff() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_cap_eff(&s))
        .unwrap_or(0)
}

/// The `CapEff:` mask of a /proc/PID/status text.
fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

fn has_cap(caps: u64, cap: u32) -> bool {
    caps & (1 << cap) != 0
}

/// Whether this process has the capabilities eBPF needs.
pub fn has_ebpf_privilege() -> bool {
    let caps = cap_eff();
    has_cap(caps, CAP_NET_ADMIN) && (has_cap(caps, CAP_BPF) || has_cap(caps, CAP_SYS_ADMIN))
}

/// Where `tool` is, if it is an executable on `PATH` (or in /sbin,
/// /usr/sbin); an absolute or relative path with a `/` is taken as is.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return executable(&p).then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(["/sbin", "/usr/sbin"])
        .map(|d| Path::new(d).join(tool))
        .find(|p| executable(p));
    found
}

/// The number of CPUs this process may run on.
fn allowed_cpus() -> usize {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|c| set.is_set(*c).unwrap_or(false))
                .count()
        })
        .unwrap_or(1)
}

/// Why `need` is not met here, if it is not.
pub fn missing(need: &Need) -> Option<String> {
    match need {
        Need::EbpfPrivilege => {
            (!has_ebpf_privilege()).then(|| format!("effective capabilities are {:#x}", cap_eff()))
        }
        Need::Netns => {
            let caps = cap_eff();
            if !(has_cap(caps, CAP_SYS_ADMIN) && has_cap(caps, CAP_NET_ADMIN)) {
                Some(format!("effective capabilities are {caps:#x}"))
            } else if find_tool("ip").is_none() {
                Some("`ip` is not installed".into())
            } else {
                None
            }
        }
        Need::Tool(name) => find_tool(name)
            .is_none()
            .then(|| format!("`{name}` is not on PATH")),
        Need::Cpus(n) => {
            let have = allowed_cpus();
            (have < *n).then(|| format!("this process may run on {have}"))
        }
        Need::Built { present, .. } => (!present).then(|| "not in this build".into()),
    }
}

/// Whether this runs under CI (`CI` set to anything but empty, `0` or
/// `false`), where a missing need is a failure.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The running test's name (libtest names the thread after it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string()
}

/// Checks `needs`; true when the test may go on. When one is missing:
/// under CI, panics; elsewhere prints and logs `RAUTA-SKIP <test>: <need>
/// missing (<why>)` and returns false (the test must then return; the
/// [`require!`](crate::require!) macro does both).
pub fn require(needs: &[Need]) -> bool {
    let missing: Vec<String> = needs
        .iter()
        .filter_map(|n| missing(n).map(|why| format!("{n} missing ({why})")))
        .collect();
    match verdict(&test_name(), &missing, under_ci()) {
        Verdict::Run => true,
        Verdict::Fail(message) => panic!("{message}"),
        Verdict::Skip(line) => {
            println!("{line}");
            eprintln!("{line}");
            if let Some(path) = std::env::var_os(SKIP_LOG_ENV) {
                let logged = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
                if let Err(e) = logged {
                    panic!(
                        "cannot record the skip in {}: {e}",
                        Path::new(&path).display()
                    );
                }
            }
            false
        }
    }
}

/// What [`require`] does.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Every need is met.
    Run,
    /// Skip, with this `RAUTA-SKIP` line.
    Skip(String),
    /// Fail with this message.
    Fail(String),
}

fn verdict(test: &str, missing: &[String], ci: bool) -> Verdict {
    if missing.is_empty() {
        return Verdict::Run;
    }
    let what = missing.join("; ");
    if ci {
        Verdict::Fail(format!(
            "{test}: {what}; under CI every need must be met (scripts/setup.sh installs them)"
        ))
    } else {
        Verdict::Skip(format!("RAUTA-SKIP {test}: {what}"))
    }
}

/// `require!(need, ...)`: returns from the calling test when a need is
/// missing outside CI (a counted skip), fails it under CI. See [`require`].
#[macro_export]
macro_rules! require {
    ($($need:expr),+ $(,)?) => {
        if !$crate::need::require(&[$($need),+]) {
            return;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_parse() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        let caps = parse_cap_eff(status).expect("CapEff");
        assert!(has_cap(caps, CAP_BPF) && has_cap(caps, CAP_NET_ADMIN));
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
        assert!(!has_cap(0x1000, CAP_SYS_ADMIN));
        assert!(has_cap(0x1000, CAP_NET_ADMIN));
    }

    #[test]
    fn tools_are_found_on_path_only() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("/bin/sh").is_some());
        assert!(find_tool("rauta-no-such-tool").is_none());
        assert!(missing(&Need::tool("rauta-no-such-tool")).is_some());
        assert!(missing(&Need::Cpus(1)).is_none());
        assert!(missing(&Need::Built {
            what: "x",
            present: true
        })
        .is_none());
    }

    #[test]
    fn missing_needs_skip_outside_ci_and_fail_under_it() {
        let missing = vec!["`promtool` (x) missing (not on PATH)".to_string()];
        assert_eq!(verdict("t", &[], true), Verdict::Run);
        assert_eq!(
            verdict("a::t", &missing, false),
            Verdict::Skip("RAUTA-SKIP a::t: `promtool` (x) missing (not on PATH)".into())
        );
        assert!(
            matches!(verdict("a::t", &missing, true), Verdict::Fail(m) if m.starts_with("a::t: `promtool`"))
        );
    }

    #[test]
    fn venv_python_has_a_hint() {
        assert_eq!(
            install_hint("/r/.venv-test/bin/python"),
            "scripts/setup.sh creates .venv-test with grpcio"
        );
        assert_eq!(install_hint("python"), "not installed");
    }

    #[test]
    fn httpwg_has_a_hint() {
        assert_eq!(
            install_hint("httpwg"),
            "scripts/setup.sh installs httpwg-cli"
        );
    }

    #[test]
    fn met_needs_run() {
        assert!(require(&[Need::tool("sh"), Need::Cpus(1)]));
    }
}
