//! Without the privileges eBPF needs, `--xdp auto` serves with one clear
//! log line and `--xdp required` fails at start saying why. As root the
//! test drops every capability for the rauta process (setpriv); without
//! root, rauta is unprivileged anyway.

use crate::common::BIN;
use crate::xdp_util::ebpf_object;
use rauta_testkit::need::has_ebpf_privilege;
use rauta_testkit::{backend_for, catch_all, require, Backend, ManifestDir, Need, Rauta};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

/// What the tests need: the eBPF object (without it the reason rauta
/// gives would be that, not privileges), and `setpriv` (util-linux) when
/// there are privileges to drop.
fn needs() -> Vec<Need> {
    let mut needs = vec![ebpf_object()];
    if has_ebpf_privilege() {
        needs.push(Need::tool("setpriv"));
    }
    needs
}

/// A wrapper that runs rauta without any capability (when we have some).
fn unprivileged_rauta(dir: &tempfile::TempDir) -> PathBuf {
    if !has_ebpf_privilege() {
        return PathBuf::from(BIN);
    }
    let path = dir.path().join("rauta-without-caps");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nexec setpriv --bounding-set -all --inh-caps -all --ambient-caps -all -- {BIN} \"$@\"\n"
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn setup() -> (Backend, ManifestDir) {
    let backend = Backend::start("unprivileged");
    let dir = ManifestDir::new();
    dir.write("ingress.yaml", &catch_all("default", "unprivileged"));
    dir.write(
        "backend.yaml",
        &backend_for("default", "unprivileged", "http", &[&backend]),
    );
    (backend, dir)
}

#[test]
fn xdp_auto_without_privilege_serves_and_says_why() {
    if !require(&needs()) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin = unprivileged_rauta(&tmp);
    let (backend, dir) = setup();
    let rauta = Rauta::start(&bin, dir.path(), &["--xdp-iface", "lo"]);
    let r = rauta_testkit::get(rauta.addr(), "any.test", "/").expect("request");
    assert_eq!(r.status, 200);
    assert_eq!(backend.requests(), 1);
    let log = rauta.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("eBPF off for")).collect();
    assert_eq!(lines.len(), 1, "exactly one line about eBPF:\n{log}");
    assert!(
        lines[0].contains("connection steering and the XDP filter")
            && lines[0].contains("no permission")
            && lines[0].contains("CAP_BPF"),
        "{}",
        lines[0]
    );
    let body = rauta.admin_get("/metrics").expect("metrics").text();
    assert!(!body.contains("rauta_xdp_packets_total"), "{body}");
}

#[test]
fn xdp_required_without_privilege_fails_at_start() {
    if !require(&needs()) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin = unprivileged_rauta(&tmp);
    let (_backend, dir) = setup();
    let mut rauta = Rauta::spawn(&bin, dir.path(), &["--xdp", "required"]).expect("spawn");
    let status = rauta
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("kept running; log:\n{}", rauta.log()));
    assert!(!status.success());
    let log = rauta.log();
    assert!(
        log.contains(
            "--xdp required, but connection steering and the XDP filter cannot run: no permission"
        ),
        "{log}"
    );
}

#[test]
fn xdp_bad_deny_prefix_is_a_usage_error() {
    let (_backend, dir) = setup();
    let mut rauta = Rauta::spawn(BIN, dir.path(), &["--xdp-deny", "10.0.0.0/33"]).expect("spawn");
    let status = rauta.wait_exit(Duration::from_secs(20)).expect("exits");
    assert_eq!(status.code(), Some(2), "clap usage error");
    assert!(
        rauta.log().contains("prefix length 33 is too long"),
        "{}",
        rauta.log()
    );
}

/// With CAP_BPF and CAP_NET_ADMIN but not CAP_PERFMON, the verifier
/// refuses the filter (packet-pointer arithmetic is for privileged
/// loaders only); the log names the missing capability instead of calling
/// it a lack of permission in general.
#[test]
fn xdp_without_perfmon_names_the_missing_capability() {
    use rauta_testkit::require;
    require!(ebpf_object(), Need::EbpfPrivilege, Need::tool("setpriv"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("rauta-without-perfmon");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nexec setpriv --bounding-set -all,+bpf,+net_admin --inh-caps -all --ambient-caps -all -- {BIN} \"$@\"\n"
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (backend, dir) = setup();
    let rauta = Rauta::start(&path, dir.path(), &["--xdp-iface", "lo"]);
    let r = rauta_testkit::get(rauta.addr(), "any.test", "/").expect("request");
    assert_eq!(r.status, 200);
    assert_eq!(backend.requests(), 1);
    let log = rauta.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("eBPF off for")).collect();
    assert_eq!(lines.len(), 1, "exactly one line about eBPF:\n{log}");
    assert!(
        lines[0].contains("the XDP filter") && lines[0].contains("without CAP_PERFMON"),
        "{}",
        lines[0]
    );
}
