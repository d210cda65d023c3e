//! Tests of the manifests watcher thread on a real directory.

use crate::common::{ingress, rules, write, CLASS, WEB};
use rauta_k8s_sync::manifests::ManifestSource;
use rauta_k8s_sync::{ClassSelector, RouteConfig};
use rauta_testkit::patience;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

const DEBOUNCE: Duration = Duration::from_millis(30);
/// How long "nothing is published" is watched for (after a positive
/// event; waits for something to happen take `patience()`).
const QUIET: Duration = Duration::from_millis(400);

fn start(dir: &Path) -> (ManifestSource, mpsc::Receiver<RouteConfig>) {
    let (tx, rx) = mpsc::channel();
    let source = ManifestSource::spawn(
        dir.to_path_buf(),
        ClassSelector::default(),
        DEBOUNCE,
        move |config| {
            let _ = tx.send(config);
        },
    )
    .expect("spawn watcher");
    (source, rx)
}

fn paths(config: &RouteConfig) -> Vec<&str> {
    config.rules.iter().map(|r| r.path.as_str()).collect()
}

fn manifest(path: &str) -> String {
    format!("{CLASS}{WEB}{}", ingress("web", "", &rules("", &[path])))
}

#[test]
fn publishes_good_sets_and_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (source, rx) = start(dir.path());
    // The empty directory is a valid, empty configuration.
    let initial = rx.recv_timeout(patience()).expect("initial config");
    assert!(initial.rules.is_empty());

    write(dir.path(), "web.yaml", &manifest("/one"));
    let config = rx
        .recv_timeout(patience())
        .expect("config after a good manifest");
    assert_eq!(paths(&config), ["/one"]);

    write(dir.path(), "broken.yaml", "kind: [");
    assert!(
        rx.recv_timeout(QUIET).is_err(),
        "a broken set must not be published"
    );

    // Touching a file without changing the result publishes nothing either.
    std::fs::remove_file(dir.path().join("broken.yaml")).expect("remove");
    assert!(
        rx.recv_timeout(QUIET).is_err(),
        "an unchanged config must not be republished"
    );

    write(dir.path(), "web.yaml", &manifest("/two"));
    let config = rx.recv_timeout(patience()).expect("config after the fix");
    assert_eq!(paths(&config), ["/two"]);

    source.stop();
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
}

#[test]
fn configmap_symlink_swap_triggers_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // The layout the kubelet gives a ConfigMap volume.
    std::fs::create_dir(root.join("..v1")).expect("mkdir");
    write(&root.join("..v1"), "web.yaml", &manifest("/one"));
    std::os::unix::fs::symlink("..v1", root.join("..data")).expect("symlink");
    std::os::unix::fs::symlink("..data/web.yaml", root.join("web.yaml")).expect("symlink");

    let (source, rx) = start(root);
    let config = rx.recv_timeout(patience()).expect("initial config");
    assert_eq!(paths(&config), ["/one"]);

    // The kubelet's atomic update: new version dir, new link, rename over `..data`.
    std::fs::create_dir(root.join("..v2")).expect("mkdir");
    write(&root.join("..v2"), "web.yaml", &manifest("/two"));
    std::os::unix::fs::symlink("..v2", root.join("..data_tmp")).expect("symlink");
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("rename");
    std::fs::remove_dir_all(root.join("..v1")).expect("remove old version");

    let config = rx.recv_timeout(patience()).expect("config after the swap");
    assert_eq!(paths(&config), ["/two"]);
    source.stop();
}

#[test]
fn spawn_fails_on_a_missing_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let result = ManifestSource::spawn(
        dir.path().join("nope"),
        ClassSelector::default(),
        DEBOUNCE,
        |_| {},
    );
    assert!(result.is_err());
}

#[test]
fn an_invalid_ingress_is_left_out_and_the_rest_published() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "web.yaml", &manifest("/one"));
    let (source, rx) = start(dir.path());
    let config = rx.recv_timeout(patience()).expect("initial config");
    assert_eq!(paths(&config), ["/one"]);

    // One good and one invalid Ingress (a host with a port) in a new file.
    let good = ingress("more", "", &rules("more.example", &["/two"]));
    let bad = ingress("bad", "", &rules("\"bad.example:8080\"", &["/bad"]));
    write(dir.path(), "more.yaml", &format!("{good}{bad}"));
    let config = rx
        .recv_timeout(patience())
        .expect("the good Ingress is published beside the invalid one");
    let mut got = paths(&config);
    got.sort();
    assert_eq!(got, ["/one", "/two"]);
    assert!(config.rules.iter().all(|r| r.source.name != "bad"));
    let stats = source.stats().counts();
    assert_eq!((stats.rejected, stats.fatal, stats.errors), (0, 0, 1));

    // A file that does not parse: its objects are unknown, nothing is published.
    write(dir.path(), "broken.yaml", "kind: [");
    assert!(
        rx.recv_timeout(QUIET).is_err(),
        "a set with an unparsable file must not be published"
    );
    let stats = source.stats().counts();
    assert_eq!((stats.rejected, stats.fatal), (1, 1), "{stats:?}");
    source.stop();
}
