//! Loading a manifests directory: every `*.yaml`/`*.yml`/`*.json` file in
//! it, parsed into objects (`kind: List` unpacked), duplicates rejected, and
//! translated. Every failure becomes a [`Problem`]; nothing here watches.
//!
//! Every problem found while loading is fatal to the set
//! ([`Problem::fatal`]): a file that cannot be read or parsed, a document
//! whose structure is not its kind's, or an object defined twice leaves
//! the objects the directory means unknown. Problems of objects that did
//! load are the translation's, and leave out only that object.

use crate::objects::{describe, KubeObject, SourcedObject, DEFAULT_NAMESPACE};
use crate::problem::Problem;
use crate::translate::{translate, Translation};
use crate::ClassSelector;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Nesting limit for `kind: List` inside `kind: List`, against hostile input.
const MAX_LIST_DEPTH: usize = 8;

/// Loads every manifest file directly in `dir`, in file-name order.
///
/// Not recursive, like `kubectl apply -f DIR`; dot files are skipped.
pub fn load_dir(dir: &Path) -> (Vec<SourcedObject>, Vec<Problem>) {
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    let files = match manifest_files(dir, &mut problems) {
        Ok(files) => files,
        Err(e) => {
            problems.push(
                Problem::fatal(None, format!("cannot read manifests directory: {e}"))
                    .in_file(Some(dir.to_path_buf())),
            );
            return (objects, problems);
        }
    };
    for file in files {
        load_file(&file, &mut objects, &mut problems);
    }
    reject_duplicates(&mut objects, &mut problems);
    (objects, problems)
}

/// Loads `dir` and translates it; load problems come before translate problems.
pub fn load_and_translate(dir: &Path, sel: &ClassSelector) -> Translation {
    let (objects, mut problems) = load_dir(dir);
    let mut translation = translate(&objects, sel);
    problems.append(&mut translation.problems);
    translation.problems = problems;
    translation
}

/// The manifest files of `dir`, sorted by name; unreadable entries become problems.
fn manifest_files(dir: &Path, problems: &mut Vec<Problem>) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Dot files include a ConfigMap volume's `..data` and `..<timestamp>`
        // entries, whose files are already reachable through the top-level symlinks.
        if name.starts_with('.') || !is_manifest_name(&name) {
            continue;
        }
        let path = entry.path();
        // `fs::metadata` follows symlinks: ConfigMap volumes are made of them.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push(path),
            Ok(_) => tracing::debug!(path = %path.display(), "not a regular file, skipped"),
            Err(e) => problems
                .push(Problem::fatal(None, format!("cannot read file: {e}")).in_file(Some(path))),
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// True for the extensions `kubectl apply -f DIR` reads.
fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext))
}

/// Parses one file into objects; every failure becomes a problem.
fn load_file(file: &Path, objects: &mut Vec<SourcedObject>, problems: &mut Vec<Problem>) {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            problems.push(
                Problem::fatal(None, format!("cannot read file: {e}"))
                    .in_file(Some(file.to_path_buf())),
            );
            return;
        }
    };
    load_text(file, &text, objects, problems);
}

/// Parses `text`, the content of `file`, into objects (JSON when the
/// name ends in `.json`, else YAML); every failure becomes a problem.
pub(super) fn load_text(
    file: &Path,
    text: &str,
    objects: &mut Vec<SourcedObject>,
    problems: &mut Vec<Problem>,
) {
    let is_json = file.extension().is_some_and(|ext| ext == "json");
    let (documents, syntax_error) = if is_json {
        json_documents(text)
    } else {
        yaml_documents(text)
    };
    let mut ctx = FileCtx {
        file,
        objects,
        problems,
    };
    for document in documents {
        ctx.collect(document, 0);
    }
    if let Some(message) = syntax_error {
        ctx.fatal(None, message);
    }
}

/// The documents of a JSON file (one value, or a stream of them), and the
/// syntax error that stopped reading, if any.
fn json_documents(text: &str) -> (Vec<Value>, Option<String>) {
    let mut documents = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        match value {
            Ok(value) => documents.push(value),
            Err(e) => return (documents, Some(format!("invalid JSON: {e}"))),
        }
    }
    (documents, None)
}

/// The documents of a YAML stream (separated by `---`), and the syntax error
/// that stopped reading, if any.
fn yaml_documents(text: &str) -> (Vec<Value>, Option<String>) {
    let mut documents = Vec::new();
    for (i, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        match Value::deserialize(document) {
            Ok(value) => documents.push(value),
            // A broken stream cannot be resynchronised reliably: stop here.
            Err(e) => {
                return (
                    documents,
                    Some(format!("invalid YAML in document {}: {e}", i + 1)),
                )
            }
        }
    }
    (documents, None)
}

/// Where objects and problems of one file go.
struct FileCtx<'a> {
    file: &'a Path,
    objects: &'a mut Vec<SourcedObject>,
    problems: &'a mut Vec<Problem>,
}

impl FileCtx<'_> {
    /// Records a fatal problem about `object` in this file.
    fn fatal(&mut self, object: Option<String>, message: impl Into<String>) {
        self.problems
            .push(Problem::fatal(object, message).in_file(Some(self.file.to_path_buf())));
    }

    /// Turns one document (an object or a `kind: List`) into objects.
    fn collect(&mut self, document: Value, depth: usize) {
        let map = match &document {
            // An empty YAML document (`---` followed by nothing) is null.
            Value::Null => return,
            Value::Object(map) => map,
            other => {
                let what = match other {
                    Value::Array(_) => "a sequence",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    _ => "a scalar",
                };
                self.fatal(None, format!("document is {what}, not a mapping"));
                return;
            }
        };
        let kind = map.get("kind").and_then(Value::as_str).map(str::to_string);
        let api_version = map
            .get("apiVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        let (Some(kind), Some(api_version)) = (kind, api_version) else {
            let missing = match (map.get("kind"), map.get("apiVersion")) {
                (None, None) => "kind and apiVersion are missing",
                (None, _) => "kind is missing",
                (_, None) => "apiVersion is missing",
                _ => "kind and apiVersion must be strings",
            };
            self.fatal(raw_describe(None, map), missing);
            return;
        };
        if kind.ends_with("List") {
            if let Some(Value::Array(_)) = map.get("items") {
                if depth >= MAX_LIST_DEPTH {
                    self.fatal(None, "lists nested too deeply");
                    return;
                }
                if let Value::Object(mut map) = document {
                    if let Some(Value::Array(items)) = map.remove("items") {
                        for item in items {
                            self.collect(item, depth + 1);
                        }
                    }
                }
                return;
            }
        }
        let object = match (api_version.as_str(), kind.as_str()) {
            ("networking.k8s.io/v1", "Ingress") => self.parse(document, KubeObject::Ingress),
            ("networking.k8s.io/v1", "IngressClass") => {
                self.parse(document, KubeObject::IngressClass)
            }
            ("v1", "Service") => self.parse(document, KubeObject::Service),
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                self.parse(document, KubeObject::EndpointSlice)
            }
            // `stringData` is kept as written; translation reads it like the
            // API server would have merged it into `data`.
            ("v1", "Secret") => self.parse(document, KubeObject::Secret),
            ("v1", "ConfigMap") => self.parse(document, KubeObject::ConfigMap),
            ("v1", "Namespace") => self.parse(document, KubeObject::Namespace),
            ("gateway.networking.k8s.io/v1", "GatewayClass") => {
                self.parse(document, KubeObject::GatewayClass)
            }
            ("gateway.networking.k8s.io/v1", "Gateway") => {
                self.parse(document, KubeObject::Gateway)
            }
            ("gateway.networking.k8s.io/v1", "HTTPRoute") => {
                self.parse(document, KubeObject::HttpRoute)
            }
            ("gateway.networking.k8s.io/v1", "GRPCRoute") => {
                self.parse(document, KubeObject::GrpcRoute)
            }
            ("gateway.networking.k8s.io/v1", "BackendTLSPolicy") => {
                self.parse(document, KubeObject::BackendTlsPolicy)
            }
            ("gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1alpha2", "TLSRoute") => {
                self.parse(document, KubeObject::TlsRoute)
            }
            (
                "gateway.networking.k8s.io/v1beta1" | "gateway.networking.k8s.io/v1",
                "ReferenceGrant",
            ) => self.parse(document, KubeObject::ReferenceGrant),
            _ => {
                tracing::debug!(
                    file = %self.file.display(),
                    api_version,
                    kind,
                    "object kind not used for routing, skipped"
                );
                None
            }
        };
        if let Some(object) = object {
            self.objects.push(SourcedObject {
                file: Some(self.file.to_path_buf()),
                object,
            });
        }
    }

    /// Deserializes a known kind; checks the name and defaults the namespace.
    fn parse<T: DeserializeOwned>(
        &mut self,
        document: Value,
        wrap: fn(T) -> KubeObject,
    ) -> Option<KubeObject> {
        let kind = document
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("object")
            .to_string();
        let described = document
            .as_object()
            .and_then(|map| raw_describe(Some(&kind), map))
            .unwrap_or_else(|| kind.clone());
        let mut object = match serde_json::from_value::<T>(document) {
            Ok(typed) => wrap(typed),
            Err(e) => {
                self.fatal(Some(described), format!("invalid {kind}: {e}"));
                return None;
            }
        };
        if object.name().is_empty() {
            self.fatal(Some(described), "metadata.name is missing");
            return None;
        }
        object.default_namespace();
        Some(object)
    }
}

/// `Kind ns/name` read from a raw document, for messages about objects that
/// did not parse; `None` when even the kind is unknown.
fn raw_describe(kind: Option<&str>, map: &Map<String, Value>) -> Option<String> {
    // A blank kind names nothing (`kind: ""`, or a YAML tag with no value).
    let kind = kind
        .or_else(|| map.get("kind").and_then(Value::as_str))
        .filter(|k| !k.trim().is_empty())?;
    let meta = map.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Some(kind.to_string());
    };
    let cluster_scoped = matches!(kind, "IngressClass" | "Namespace" | "GatewayClass");
    let namespace = (!cluster_scoped).then(|| {
        meta.and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE)
    });
    Some(describe(kind, namespace, name))
}

/// Reports the second and later objects with the same kind and name as
/// fatal (which one is meant is unknown) and drops them, so that
/// translation sees each object once.
pub(super) fn reject_duplicates(objects: &mut Vec<SourcedObject>, problems: &mut Vec<Problem>) {
    let mut first: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
    objects.retain(|o| {
        let id = o.object.describe();
        match first.get(&id) {
            None => {
                first.insert(id, o.file.clone());
                true
            }
            Some(first_file) => {
                let where_ = match first_file {
                    Some(f) => format!(" (first defined in {})", f.display()),
                    None => String::new(),
                };
                problems.push(
                    Problem::fatal(Some(id), format!("defined more than once{where_}"))
                        .in_file(o.file.clone()),
                );
                false
            }
        }
    });
}
