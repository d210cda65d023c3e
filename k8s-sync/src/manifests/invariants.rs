//! Loading and translation from a manifest file's bytes, as a check that
//! panics when broken: the fuzz target (`proxy/fuzz`, `manifests`) and the
//! unit tests run it on arbitrary bytes. Whatever a file holds, loading
//! and translating it never panics, every problem names the file, every
//! problem names its object whenever the file says which object it is
//! about, and the translation does not depend on the objects' order.

use super::load::{load_text, reject_duplicates};
use crate::problem::Problem;
use crate::translate::{translate, Translation};
use crate::ClassSelector;
use std::path::Path;

/// Problems that may name no object: the file or document has no object
/// identity to give (syntax, not a mapping, no kind or one that is not a
/// string, lists too deep).
const WITHOUT_OBJECT: [&str; 8] = [
    "invalid YAML",
    "invalid JSON",
    "document is ",
    "kind and apiVersion are missing",
    "kind is missing",
    "kind and apiVersion must be strings",
    // Also said when `kind` is there but not a string.
    "apiVersion is missing",
    "lists nested too deeply",
];

/// Loads `input` (first octet: bit 0 set, the file is `.json`, else
/// `.yaml`; then the file's content) and translates it as
/// [`super::load_and_translate`] does, checks the problems and returns
/// the translation; `None` for content that is not UTF-8 (reading the
/// file refuses it, naming the file, before any parser sees it).
pub fn check_manifest(input: &[u8]) -> Option<Translation> {
    let (&flags, content) = input.split_first()?;
    let text = std::str::from_utf8(content).ok()?;
    let file = Path::new(if flags & 1 == 0 {
        "manifests/fuzz.yaml"
    } else {
        "manifests/fuzz.json"
    });
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    load_text(file, text, &mut objects, &mut problems);
    reject_duplicates(&mut objects, &mut problems);
    for o in &objects {
        assert_eq!(o.file.as_deref(), Some(file), "{}", o.object.describe());
    }
    let sel = ClassSelector::default();
    let mut translation = translate(&objects, &sel);
    objects.reverse();
    let reversed = translate(&objects, &sel);
    assert!(
        reversed == translation,
        "the translation depends on the objects' order:\n{translation:#?}\nreversed:\n{reversed:#?}"
    );
    for p in &translation.problems {
        // Translation is about objects that loaded: each one is named.
        assert!(p.object.as_ref().is_some_and(|o| !o.is_empty()), "{p}");
    }
    problems.append(&mut translation.problems);
    translation.problems = problems;
    for p in &translation.problems {
        check_problem(p, file);
    }
    Some(translation)
}

/// A problem names `file`, and its object unless it has none to name.
fn check_problem(p: &Problem, file: &Path) {
    assert_eq!(p.file.as_deref(), Some(file), "{p}");
    match &p.object {
        Some(object) => assert!(!object.trim().is_empty(), "an empty object name: {p:?}"),
        None => assert!(
            WITHOUT_OBJECT.iter().any(|m| p.message.starts_with(m)),
            "names no object: {p}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_files_load_and_name_their_problems() {
        let ingress = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  annotations:\n    nginx.ingress.kubernetes.io/use-regex: \"true\"\nspec:\n  ingressClassName: rauta\n  rules:\n  - host: a.example\n    http:\n      paths:\n      - path: /api(/|$)(.*\n        pathType: ImplementationSpecific\n        backend:\n          service:\n            name: svc\n            port:\n              number: 80\n";
        let samples: Vec<Vec<u8>> = vec![
            [b"\0", ingress.as_bytes()].concat(),
            [b"\0", ingress.as_bytes(), b"---\n", ingress.as_bytes()].concat(),
            b"\0kind: List\napiVersion: v1\nitems: [{kind: Service}]\n".to_vec(),
            b"\0a: [".to_vec(),
            b"\0- 1\n".to_vec(),
            b"\x01{\"kind\": \"Ingress\", \"apiVersion\": \"networking.k8s.io/v1\"}".to_vec(),
            b"\x01[1, 2]".to_vec(),
            b"\x01{".to_vec(),
        ];
        for input in &samples {
            let t = check_manifest(input).expect("UTF-8");
            assert!(!t.problems.is_empty(), "{}", String::from_utf8_lossy(input));
        }
        // The manifests fuzz target's find: no apiVersion beside a kind
        // that is a mapping, so there is no object to name.
        let t = check_manifest(b"\0kind:\n  controller: x\nmetadata: {name: a}\n").expect("UTF-8");
        assert_eq!(t.problems[0].message, "apiVersion is missing");
        assert_eq!(t.problems[0].object, None);
        // Its next find: a blank kind was given as the object's name.
        for kind in ["\"\"", "\" \"", "!!x"] {
            let input = format!("\0kind: {kind}\nmetadata: {{name: a}}\n");
            let t = check_manifest(input.as_bytes()).expect("UTF-8");
            assert_eq!(t.problems[0].object, None, "{input}");
        }
        let t = check_manifest(&samples[1]).expect("UTF-8");
        assert!(
            t.problems
                .iter()
                .any(|p| p.message.contains("more than once")),
            "{:?}",
            t.problems
        );
    }
}
