//! Tests of `load_dir` and `load_and_translate` on directories of inline fixtures.

use crate::common::{ingress, load, rules, write, CLASS, WEB};
use rauta_k8s_sync::manifests::{load_and_translate, load_dir};
use rauta_k8s_sync::objects::KubeObject;
use rauta_k8s_sync::problem::{Problem, Severity};
use rauta_k8s_sync::ClassSelector;
use std::path::Path;

fn described(objects: &[rauta_k8s_sync::objects::SourcedObject]) -> Vec<String> {
    objects.iter().map(|o| o.object.describe()).collect()
}

fn file_name(p: &Problem) -> Option<String> {
    p.file
        .as_deref()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
}

#[test]
fn multi_document_yaml_and_lists() {
    let yaml = "
---
# only a comment
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a}
- apiVersion: v1
  kind: Pod
  metadata: {name: ignored}
- apiVersion: v1
  kind: List
  items:
  - {apiVersion: v1, kind: Service, metadata: {name: nested, namespace: x}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: skipped}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: rauta}
spec: {controller: rauta.io/ingress-controller}
...
";
    let (_dir, objects, problems) = load(&[
        ("b.yaml", yaml),
        (
            "a.yml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: first, namespace: demo}\n",
        ),
    ]);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(
        described(&objects),
        [
            "Service demo/first",
            "Service default/a",
            "Service x/nested",
            "IngressClass rauta"
        ]
    );
    // A missing namespace is filled in, as kubectl apply would.
    assert_eq!(
        objects[1].object.metadata().namespace.as_deref(),
        Some("default")
    );
    assert!(objects[0]
        .file
        .as_deref()
        .is_some_and(|f| f.ends_with("a.yml")));
}

#[test]
fn json_files() {
    let single = r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "one", "namespace": "demo"},
        "spec": {"ports": [{"port": 80}]}}"#;
    let list = r#"{"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "one-x", "namespace": "demo",
         "labels": {"kubernetes.io/service-name": "one"}}, "addressType": "IPv4", "endpoints": []}]}"#;
    let (_dir, objects, problems) = load(&[("svc.json", single), ("slices.json", list)]);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(
        described(&objects),
        ["EndpointSlice demo/one-x", "Service demo/one"]
    );
    assert!(matches!(objects[0].object, KubeObject::EndpointSlice(_)));
}

#[test]
fn skips_dotfiles_other_extensions_and_subdirectories() {
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n";
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), ".hidden.yaml", svc);
    write(dir.path(), "notes.txt", "not: [yaml");
    write(dir.path(), "yaml", "not: [yaml");
    std::fs::create_dir(dir.path().join("sub.yaml")).expect("mkdir");
    std::fs::create_dir(dir.path().join("nested")).expect("mkdir");
    write(&dir.path().join("nested"), "deep.yaml", svc);
    let (objects, problems) = load_dir(dir.path());
    assert!(objects.is_empty(), "{objects:#?}");
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn follows_configmap_style_symlinks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let version = dir.path().join("..2024_01_01_00_00_00.1");
    std::fs::create_dir(&version).expect("mkdir");
    write(
        &version,
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
    );
    std::os::unix::fs::symlink("..2024_01_01_00_00_00.1", dir.path().join("..data"))
        .expect("symlink");
    std::os::unix::fs::symlink("..data/svc.yaml", dir.path().join("svc.yaml")).expect("symlink");
    let (objects, problems) = load_dir(dir.path());
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(described(&objects), ["Service default/s"]);
}

#[test]
fn errors_name_the_file_and_object() {
    // (case, file name, content, expected object, expected message part)
    let cases: &[(&str, &str, &str, Option<&str>, &str)] = &[
        ("yaml syntax", "bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x\n", None, "invalid YAML"),
        ("later document syntax", "bad.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n---\n: : [\n", None, "invalid YAML"),
        ("json syntax", "bad.json", "{\"apiVersion\": \"v1\",", None, "invalid JSON"),
        ("not a mapping", "list.yaml", "- a\n- b\n", None, "document is a sequence, not a mapping"),
        ("scalar", "s.yaml", "hello\n", None, "not a mapping"),
        ("no kind", "k.yaml", "apiVersion: v1\nmetadata: {name: x}\n", None, "kind is missing"),
        ("no apiVersion", "a.yaml", "kind: Ingress\nmetadata: {name: x, namespace: demo}\n", Some("Ingress demo/x"), "apiVersion is missing"),
        (
            "bad field type",
            "ing.yaml",
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: demo}\nspec: {rules: oops}\n",
            Some("Ingress demo/web"),
            "invalid Ingress",
        ),
        (
            "bad annotation type",
            "svc.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, annotations: {a: 1}}\n",
            Some("Service default/web"),
            "invalid Service",
        ),
        ("no name", "n.yaml", "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n", Some("Service"), "metadata.name is missing"),
    ];
    for (case, name, content, object, message) in cases {
        let (_dir, _objects, problems) = load(&[
            (name, content),
            (
                "ok.yaml",
                "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n",
            ),
        ]);
        assert_eq!(problems.len(), 1, "{case}: {problems:#?}");
        let p = &problems[0];
        // A file that does not parse leaves its objects unknown: the set is rejected.
        assert_eq!(p.severity, Severity::Fatal, "{case}");
        assert_eq!(file_name(p).as_deref(), Some(*name), "{case}");
        assert_eq!(p.object.as_deref(), *object, "{case}: {p}");
        assert!(p.message.contains(message), "{case}: {p}");
    }
}

#[test]
fn duplicates_are_fatal() {
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n";
    let other_ns = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: prod}\n";
    let (_dir, objects, problems) = load(&[("a.yaml", svc), ("b.yaml", svc), ("c.yaml", other_ns)]);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(file_name(&problems[0]).as_deref(), Some("b.yaml"));
    assert!(problems[0].is_fatal());
    assert!(problems[0]
        .to_string()
        .contains("Service demo/web: defined more than once (first defined in"));
    assert_eq!(objects.len(), 2);
}

#[test]
fn unreadable_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let (objects, problems) = load_dir(&missing);
    assert!(objects.is_empty());
    assert_eq!(problems.len(), 1);
    assert!(problems[0].is_fatal());
    assert_eq!(problems[0].file.as_deref(), Some(missing.as_path()));
}

#[test]
fn load_and_translate_combines_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "a.yaml",
        &format!("{CLASS}{WEB}{}", ingress("web", "", &rules("", &["api"]))),
    );
    write(dir.path(), "b.yaml", "kind: [");
    let t = load_and_translate(dir.path(), &ClassSelector::default());
    let files: Vec<_> = t
        .problems
        .iter()
        .map(|p| (p.severity, file_name(p)))
        .collect();
    assert_eq!(
        files,
        [
            (Severity::Fatal, Some("b.yaml".to_string())),
            (Severity::Error, Some("a.yaml".to_string()))
        ]
    );
    assert!(t.has_errors() && t.is_rejected());

    write(dir.path(), "b.yaml", "");
    write(
        dir.path(),
        "a.yaml",
        &format!("{CLASS}{WEB}{}", ingress("web", "", &rules("", &["/api"]))),
    );
    let t = load_and_translate(dir.path(), &ClassSelector::default());
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert_eq!(t.config.rules.len(), 1);
}
