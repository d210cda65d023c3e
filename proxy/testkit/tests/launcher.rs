//! Self-tests of the `Rauta` launcher and manifest directory, using a fake
//! `rauta` (a shell script exec'ing `rauta-echo` on the admin address).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use rauta_testkit::{backend_for, client, Backend, ManifestDir, Rauta};

/// Writes an executable script `name` with `body` into `dir`.
fn script(dir: &ManifestDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn launcher_starts_probes_and_terminates() {
    let bins = ManifestDir::new();
    let fake = script(
        &bins,
        "fake-rauta",
        &format!(
            "echo \"args: $*\"; while [ $# -gt 0 ]; do [ \"$1\" = --admin ] && admin=$2; shift; done\n\
             exec {} --listen \"$admin\" --name admin",
            env!("CARGO_BIN_EXE_rauta-echo")
        ),
    );
    let manifests = ManifestDir::new();
    let mut rauta = Rauta::start(&fake, manifests.path(), &["--workers", "1"]);
    assert_ne!(rauta.addr(), rauta.admin_addr());
    let resp = client::get(rauta.admin_addr(), "h", "/readyz").expect("admin");
    assert_eq!(resp.header("x-backend"), Some("admin"));
    assert_eq!(rauta.generation(), None);
    let log = rauta.log();
    assert!(
        log.contains(&format!(
            "--listen {} --admin {} --workers 1",
            rauta.addr(),
            rauta.admin_addr()
        )),
        "{log}"
    );
    // The line is printed just after the listener is bound.
    rauta_testkit::eventually("rauta-echo's listening line", || {
        rauta.log().contains("rauta-echo admin listening on")
    });
    assert!(
        log.contains(&format!("--manifests {}", manifests.path().display())),
        "{log}"
    );
    assert!(rauta.wait_exit(Duration::from_millis(50)).is_none());
    rauta.terminate();
    let status = rauta
        .wait_exit(Duration::from_secs(5))
        .expect("exited after SIGTERM");
    assert!(!status.success());
}

#[test]
fn builder_passes_the_source_flags_and_environment() {
    let bins = ManifestDir::new();
    let fake = script(
        &bins,
        "fake-rauta",
        &format!(
            "echo \"args: $*\"; echo \"pod: $POD_NAME\"\n\
             while [ $# -gt 0 ]; do [ \"$1\" = --admin ] && admin=$2; shift; done\n\
             exec {} --listen \"$admin\" --name admin",
            env!("CARGO_BIN_EXE_rauta-echo")
        ),
    );
    let kubeconfig = bins.path().join("kubeconfig");
    let rauta = Rauta::builder(&fake)
        .kubernetes(&kubeconfig)
        .args(["--shards", "1"])
        .env("POD_NAME", "pod-7")
        .start();
    let log = rauta.log();
    assert!(
        log.contains(&format!(
            "args: serve --kubernetes --kubeconfig {} --listen {} --admin {} --shards 1",
            kubeconfig.display(),
            rauta.addr(),
            rauta.admin_addr()
        )),
        "{log}"
    );
    assert!(log.contains("pod: pod-7"), "{log}");
    // Nothing listens on the proxy port of the fake; the admin port answers.
    assert!(rauta.who("h", "/").starts_with("error: "));
}

#[test]
fn launcher_reports_early_exit() {
    let bins = ManifestDir::new();
    let fake = script(&bins, "broken-rauta", "echo boom >&2; exit 3");
    let err = Rauta::try_start(&fake, bins.path(), &[]).expect_err("must fail");
    assert!(err.contains("boom"), "{err}");
    assert!(err.contains("failed to start 3 times"), "{err}");
}

#[test]
fn manifest_dir_writes_and_removes() {
    let dir = ManifestDir::new();
    let b = Backend::start("m");
    let yaml = backend_for("default", "svc", "http", &[&b]);
    dir.write("svc.yaml", &yaml);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("svc.yaml")).expect("read"),
        yaml
    );
    assert!(yaml.contains(&format!("port: {}", b.port())));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec!["svc.yaml"]);
    dir.remove("svc.yaml");
    dir.remove("svc.yaml");
    assert!(!dir.path().join("svc.yaml").exists());
}
