//! `rauta check` as the migration report: the real binary on real
//! manifest files (and, read-only, on a fake API server holding the same
//! objects), its text and JSON reports, and its exit codes.
//!
//! The manifests use every annotation of the research file's ranked
//! table. Verdicts change as annotation families land, so the tests assert
//! the report's structure and only the verdicts that are settled: snippets
//! and WAF keys refused, a stale key ignored, `ssl-redirect` honoured,
//! `load-balance: ewma` and `mirror-target` (a Service, resolved) differ.

use crate::common::BIN;
use rauta_testkit::fake_api::FakeApi;
use rauta_testkit::manifests::{join, path, quote, rule, service};
use rauta_testkit::{ingress, rauta_class, ManifestDir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// The keys that refuse an Ingress, as ingress-nginx's defaults do.
const REFUSING: &[(&str, &str)] = &[
    ("configuration-snippet", "more_set_headers \"X-A: b\";"),
    ("server-snippet", "location /x { return 200; }"),
    ("stream-snippet", "server { listen 9000; }"),
    ("auth-snippet", "proxy_set_header X-A b;"),
    ("modsecurity-snippet", "SecRuleEngine On"),
    ("enable-modsecurity", "true"),
    ("enable-owasp-core-rules", "true"),
];

/// Ingress demo/`name` on `host`, path `/` (Prefix) to Service `svc`,
/// with `nginx.ingress.kubernetes.io/` annotations.
fn ing(name: &str, host: &str, svc: &str, annotations: &[(&str, &str)]) -> String {
    ing_path(name, host, "/", "Prefix", svc, annotations)
}

fn ing_path(
    name: &str,
    host: &str,
    p: &str,
    path_type: &str,
    svc: &str,
    annotations: &[(&str, &str)],
) -> String {
    let keys: Vec<(String, &str)> = annotations
        .iter()
        .map(|(k, v)| (format!("{NGINX}{k}"), *v))
        .collect();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    ingress(
        "demo",
        name,
        Some("rauta"),
        &keys,
        &rule(Some(host), &[path(&quote(p), path_type, svc)]),
    )
}

/// Every annotation of the ranked table, spread over Ingresses the way a
/// cluster would carry them (a canary beside its main Ingress, redirects
/// and passthrough on their own hosts, the raw-config keys together).
fn every_annotation() -> String {
    let main = ing(
        "main",
        "app.example",
        "web",
        &[
            ("ssl-redirect", "true"),
            ("force-ssl-redirect", "false"),
            ("proxy-body-size", "8m"),
            ("proxy-connect-timeout", "5"),
            ("proxy-read-timeout", "60"),
            ("proxy-send-timeout", "60"),
            ("whitelist-source-range", "10.0.0.0/8"),
            ("denylist-source-range", "192.0.2.0/24"),
            ("affinity", "cookie"),
            ("affinity-mode", "balanced"),
            ("session-cookie-name", "route"),
            ("session-cookie-path", "/"),
            ("session-cookie-expires", "172800"),
            ("session-cookie-max-age", "172800"),
            ("session-cookie-secure", "true"),
            ("session-cookie-samesite", "Lax"),
            ("session-cookie-change-on-failure", "true"),
            ("backend-protocol", "HTTP"),
            ("enable-cors", "true"),
            ("cors-allow-origin", "https://app.example"),
            ("cors-allow-methods", "GET, POST"),
            ("cors-allow-headers", "X-Token"),
            ("cors-allow-credentials", "true"),
            ("cors-expose-headers", "X-Id"),
            ("cors-max-age", "600"),
            ("limit-rps", "100"),
            ("limit-rpm", "6000"),
            ("limit-burst-multiplier", "5"),
            ("limit-connections", "50"),
            ("limit-whitelist", "10.1.0.0/16"),
            ("auth-url", "http://auth.demo.svc.cluster.local/verify"),
            ("auth-signin", "https://login.example/start"),
            ("auth-response-headers", "X-User"),
            ("auth-method", "GET"),
            ("app-root", "/app"),
            ("upstream-vhost", "internal.example"),
            ("x-forwarded-prefix", "/app"),
            ("custom-http-errors", "404,503"),
            ("default-backend", "errors"),
            ("server-alias", "www.app.example"),
            ("proxy-next-upstream", "error timeout"),
            ("proxy-next-upstream-tries", "3"),
            ("proxy-next-upstream-timeout", "10"),
            ("custom-headers", "demo/headers"),
            ("proxy-request-buffering", "off"),
            ("proxy-buffering", "off"),
            ("proxy-buffer-size", "8k"),
            ("service-upstream", "false"),
            ("from-to-www-redirect", "true"),
            ("mirror-target", "http://mirror.demo.svc.cluster.local/"),
            ("load-balance", "ewma"),
            // A stale name users still carry: unknown, so ignored.
            ("enable-websockets", "true"),
        ],
    );
    let canary = ing(
        "main-canary",
        "app.example",
        "web-canary",
        &[
            ("canary", "true"),
            ("canary-by-header", "X-Canary"),
            ("canary-by-header-value", "yes"),
            ("canary-by-header-pattern", "^y"),
            ("canary-by-cookie", "canary"),
            ("canary-weight", "10"),
            ("canary-weight-total", "100"),
        ],
    );
    let regex = ing_path(
        "regex",
        "regex.example",
        "/api(/|$)(.*)",
        "ImplementationSpecific",
        "web",
        &[
            ("use-regex", "true"),
            ("rewrite-target", "/$2"),
            ("allowlist-source-range", "10.0.0.0/8"),
            ("upstream-hash-by", "$remote_addr"),
        ],
    );
    let permanent = ing(
        "old",
        "old.example",
        "web",
        &[
            ("permanent-redirect", "https://new.example/"),
            ("permanent-redirect-code", "308"),
        ],
    );
    let temporal = ing(
        "moved",
        "moved.example",
        "web",
        &[
            ("temporal-redirect", "https://new.example/"),
            ("temporal-redirect-code", "307"),
        ],
    );
    let basic = ing(
        "basic",
        "basic.example",
        "web",
        &[
            ("auth-type", "basic"),
            ("auth-secret", "basic-auth"),
            ("auth-realm", "Authentication Required"),
        ],
    );
    let tls = ing(
        "mtls",
        "mtls.example",
        "web",
        &[
            ("auth-tls-secret", "demo/ca"),
            ("auth-tls-verify-client", "on"),
            ("auth-tls-verify-depth", "1"),
            ("auth-tls-pass-certificate-to-upstream", "false"),
            ("proxy-ssl-secret", "demo/upstream-tls"),
            ("proxy-ssl-verify", "on"),
            ("proxy-ssl-name", "web.demo"),
            ("proxy-ssl-server-name", "on"),
        ],
    );
    let passthrough = ing(
        "pass",
        "pass.example",
        "web",
        &[("ssl-passthrough", "true")],
    );
    let snippets = ing("snippets", "snip.example", "web", REFUSING);
    join(&[
        &rauta_class(),
        &service("demo", "web", &[(Some("http"), 80, 8080)]),
        &service("demo", "web-canary", &[(Some("http"), 80, 8080)]),
        &service("demo", "errors", &[(Some("http"), 80, 8080)]),
        &main,
        &canary,
        &regex,
        &permanent,
        &temporal,
        &basic,
        &tls,
        &passthrough,
        &snippets,
    ])
}

/// How many Ingresses [`every_annotation`] has.
const INGRESSES: usize = 9;

/// `rauta check` with `args`; (exit code, stdout, stderr).
fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("check")
        .args(args)
        .output()
        .expect("run rauta check");
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_dir(dir: &Path, more: &[&str]) -> (i32, String, String) {
    let dir = dir.to_str().expect("UTF-8 temp path");
    let mut args = vec!["--manifests", dir];
    args.extend_from_slice(more);
    check(&args)
}

/// The JSON report of a run that printed one.
fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// (Ingress, key) -> (verdict, note), from a JSON report.
fn verdicts(report: &Value) -> BTreeMap<(String, String), (String, String)> {
    let mut out = BTreeMap::new();
    for ing in report["ingresses"].as_array().expect("ingresses") {
        let name = ing["ingress"].as_str().expect("ingress").to_string();
        for a in ing["annotations"].as_array().expect("annotations") {
            let key = a["key"].as_str().expect("key").to_string();
            let verdict = a["verdict"].as_str().expect("verdict").to_string();
            let note = a["note"].as_str().expect("note").to_string();
            out.insert((name.clone(), key), (verdict, note));
        }
    }
    out
}

fn key(k: &str) -> String {
    format!("{NGINX}{k}")
}

/// The settled verdicts, asserted on a JSON report from either source.
fn assert_settled(report: &Value) {
    let v = verdicts(report);
    let get = |ing: &str, k: &str| {
        v.get(&(ing.to_string(), key(k)))
            .unwrap_or_else(|| panic!("no verdict for {ing} {k}: {v:#?}"))
            .clone()
    };
    for (k, _) in REFUSING {
        let (verdict, note) = get("demo/snippets", k);
        assert_eq!(verdict, "refused", "{k}");
        assert!(note.contains("not served"), "{k}: {note}");
    }
    assert_eq!(get("demo/main", "ssl-redirect").0, "honoured");
    let (verdict, note) = get("demo/main", "load-balance");
    assert_eq!(verdict, "differs");
    assert!(note.contains("least_request"), "{note}");
    // Honoured since request mirroring landed, with its stated differences.
    let (verdict, note) = get("demo/main", "mirror-target");
    assert_eq!(verdict, "differs");
    assert!(note.contains("$request_uri"), "{note}");
    let (verdict, note) = get("demo/main", "enable-websockets");
    assert_eq!(verdict, "ignored");
    assert!(note.contains("not supported"), "{note}");
    let snippets = report["ingresses"]
        .as_array()
        .expect("ingresses")
        .iter()
        .find(|i| i["ingress"] == "demo/snippets")
        .expect("the snippets Ingress");
    assert_eq!(snippets["served"], false);
}

#[test]
fn the_report_gives_every_annotation_a_verdict() {
    let dir = ManifestDir::new();
    dir.write("all.yaml", &every_annotation());
    let (code, text, _) = check_dir(dir.path(), &[]);
    assert_eq!(code, 1, "refused and differing annotations fail:\n{text}");
    // Every annotation of every Ingress has a row with a verdict.
    let annotations = every_annotation()
        .lines()
        .filter(|l| l.trim_start().starts_with(&format!("\"{NGINX}")))
        .count();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(NGINX))
        .collect();
    assert_eq!(rows.len(), annotations, "{text}");
    for row in &rows {
        let verdict = row
            .split_whitespace()
            .find(|w| ["honoured", "differs", "ignored", "refused"].contains(w));
        assert!(verdict.is_some(), "no verdict in {row:?}");
    }
    let row = |k: &str| {
        rows.iter()
            .find(|r| r.trim_start().starts_with(&format!("{NGINX}{k} ")))
            .unwrap_or_else(|| panic!("no row for {k}:\n{text}"))
            .to_string()
    };
    assert!(row("ssl-redirect").contains(" honoured"), "{text}");
    assert!(row("load-balance").contains(" differs "), "{text}");
    assert!(row("enable-websockets").contains(" ignored "), "{text}");
    assert!(row("configuration-snippet").contains(" refused "), "{text}");
    let file = dir.path().join("all.yaml");
    assert!(
        text.contains(&format!(
            "  Ingress demo/snippets ({}): REFUSED",
            file.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("  Ingress demo/main ({}): served", file.display())),
        "{text}"
    );
    // The existing parts stay: the route table and the problems with file and object.
    assert!(text.starts_with("Rules:\n"), "{text}");
    assert!(text.contains("\nBackends:\n"), "{text}");
    assert!(
        text.contains(&format!(
            "error: {}: Ingress demo/snippets: annotation {NGINX}configuration-snippet",
            file.display()
        )),
        "{text}"
    );
    // The summary adds up.
    let summary = text.split("\nSummary:\n").nth(1).expect("a summary");
    let count = |verdict: &str| -> usize {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(verdict))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {verdict} count:\n{summary}"))
    };
    let counts = ["honoured", "differs", "ignored", "refused"].map(count);
    assert_eq!(counts.iter().sum::<usize>(), annotations, "{summary}");
    assert!(
        counts[0] >= 1 && counts[1] >= 1 && counts[2] >= 1,
        "{summary}"
    );
    assert!(counts[3] >= REFUSING.len(), "{summary}");
    assert!(summary.contains("  Ingresses: "), "{summary}");
    let last = text.lines().last().expect("a last line");
    assert!(last.starts_with("exit 1: "), "{last}");
    assert!(last.contains("annotation(s) refused"), "{last}");
}

#[test]
fn the_json_report_has_the_documented_shape() {
    let dir = ManifestDir::new();
    dir.write("all.yaml", &every_annotation());
    let (code, out, _) = check_dir(dir.path(), &["--output", "json"]);
    let report = json(&out);
    assert_eq!(report["result"]["exit_code"], code);
    assert_eq!(code, 1);
    assert_eq!(
        report["source"],
        format!("manifests {}", dir.path().display())
    );
    for field in [
        "source",
        "ingresses",
        "summary",
        "problems",
        "config",
        "result",
    ] {
        assert!(report.get(field).is_some(), "no {field}: {report:#}");
    }
    let ingresses = report["ingresses"].as_array().expect("ingresses");
    assert_eq!(ingresses.len(), INGRESSES);
    let file = dir.path().join("all.yaml").display().to_string();
    let mut total = 0;
    for ing in ingresses {
        assert_eq!(ing["file"], file.as_str());
        assert!(ing["served"].is_boolean());
        assert!(ing["problems"].is_array());
        for a in ing["annotations"].as_array().expect("annotations") {
            assert!(a["key"].as_str().is_some_and(|k| k.starts_with(NGINX)));
            assert!(a["value"].is_string());
            assert!(a["note"].is_string());
            let verdict = a["verdict"].as_str().expect("verdict");
            assert!(
                ["honoured", "differs", "ignored", "refused"].contains(&verdict),
                "{a}"
            );
            assert_eq!(verdict == "honoured", a["note"] == "", "{a}");
            total += 1;
        }
    }
    assert_settled(&report);
    // The full value is there, where the text table shortens it.
    let v = verdicts(&report);
    assert!(v.contains_key(&("demo/snippets".into(), key("server-snippet"))));
    let summary = &report["summary"];
    let n = |v: &Value| v.as_u64().expect("a count") as usize;
    let by_verdict: usize = ["honoured", "differs", "ignored", "refused"]
        .iter()
        .map(|k| n(&summary["annotations"][k]))
        .sum();
    assert_eq!(by_verdict, total);
    let served = ingresses.iter().filter(|i| i["served"] == true).count();
    assert_eq!(n(&summary["ingresses"]["served"]), served);
    assert_eq!(n(&summary["ingresses"]["refused"]), INGRESSES - served);
    for k in ["fatal", "error", "warning"] {
        assert!(summary["problems"][k].is_u64(), "{summary}");
    }
    let problems = report["problems"].as_array().expect("problems");
    assert!(problems.iter().any(|p| p["severity"] == "error"
        && p["object"] == "Ingress demo/snippets"
        && p["file"] == file.as_str()));
    // The route table: the served Ingresses' rules, none of the refused one's.
    let rules = report["config"]["rules"].as_array().expect("rules");
    assert!(
        rules.iter().any(|r| r["host"] == "app.example"
        && r["path"] == "/"
        && r["match"] == "Prefix"
        && r["ingress"] == "demo/main"
        // The backend carries main's own policy (ewma), so it is a backend of its own.
        && r["backend"].as_str().is_some_and(|b| b.starts_with("demo/web:http"))),
        "{rules:#?}"
    );
    assert!(rules.iter().all(|r| r["ingress"] != "demo/snippets"));
    assert!(report["config"]["backends"].is_array());
    let reasons = report["result"]["reasons"].as_array().expect("reasons");
    assert!(!reasons.is_empty());
    assert_eq!(report["result"]["accept_warnings"], false);
}

/// A directory with our class, Service demo/web and one Ingress carrying `annotations`.
fn one_ingress(annotations: &[(&str, &str)]) -> ManifestDir {
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[
            &rauta_class(),
            &service("demo", "web", &[(Some("http"), 80, 8080)]),
            &ing("web", "web.example", "web", annotations),
        ]),
    );
    dir
}

#[test]
fn exit_codes_gate_a_pipeline() {
    // 0: everything honoured (a missing endpoint is a warning, not a verdict).
    let honoured = one_ingress(&[("ssl-redirect", "false")]);
    let (code, text, _) = check_dir(honoured.path(), &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.ends_with("exit 0: everything is honoured\n"), "{text}");

    // Ignored annotations fail, unless accepted.
    let ignored = one_ingress(&[("enable-websockets", "true")]);
    let (code, text, _) = check_dir(ignored.path(), &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("--accept-warnings accepts them"), "{text}");
    assert_eq!(check_dir(ignored.path(), &["--accept-warnings"]).0, 0);

    // Served differently, refused, or an invalid Ingress: 1 even with --accept-warnings.
    let differs = one_ingress(&[("load-balance", "ewma")]);
    assert_eq!(check_dir(differs.path(), &["--accept-warnings"]).0, 1);
    let refused = one_ingress(&[("server-snippet", "return 200;")]);
    assert_eq!(check_dir(refused.path(), &["--accept-warnings"]).0, 1);
    let invalid = ManifestDir::new();
    invalid.write(
        "all.yaml",
        &join(&[&rauta_class(), &ing("port", "web.example:80", "web", &[])]),
    );
    let (code, text, _) = check_dir(invalid.path(), &["--accept-warnings"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Ingress demo/port"), "{text}");
    // A file that does not parse: 1, the set is rejected.
    honoured.write("broken.yaml", "kind: [");
    let (code, text, _) = check_dir(honoured.path(), &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("fatal: "), "{text}");

    // 2: the check could not run.
    let missing = honoured.path().join("nope");
    let (code, _, err) = check_dir(&missing, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read manifests directory"), "{err}");
    assert_eq!(check(&[]).0, 2, "no source");
    assert_eq!(check_dir(honoured.path(), &["--output", "yaml"]).0, 2);
    let api = FakeApi::start();
    api.set_down(true);
    let kubeconfig = api.kubeconfig("kubeconfig");
    let (code, _, err) = check(&[
        "--kubernetes",
        "--kubeconfig",
        kubeconfig.to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rauta check --kubernetes"), "{err}");
    // --help documents them.
    let (code, help, _) = check(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        help.contains("Exit codes:") && help.contains("--accept-warnings"),
        "{help}"
    );
}

#[test]
fn the_live_cluster_gets_the_same_verdicts_without_a_write() {
    let dir = ManifestDir::new();
    let yaml = every_annotation();
    // A TLS entry, so that the one Secret it names is read.
    let tls = ing("secure", "secure.example", "web", &[]).replace(
        "spec:\n",
        "spec:\n  tls:\n  - hosts: [secure.example]\n    secretName: secure-tls\n",
    );
    let yaml = join(&[&yaml, &tls]);
    dir.write("all.yaml", &yaml);
    let (file_code, file_out, _) = check_dir(dir.path(), &["--output", "json"]);
    let from_files = json(&file_out);

    let api = FakeApi::start();
    api.apply_yaml(&yaml);
    let kubeconfig = api.kubeconfig("kubeconfig");
    let (code, out, err) = check(&[
        "--kubernetes",
        "--kubeconfig",
        kubeconfig.to_str().expect("UTF-8"),
        "--output",
        "json",
    ]);
    let from_api = json(&out);
    assert_eq!(code, file_code, "{err}");
    assert_eq!(from_api["source"], "kubernetes");
    assert_settled(&from_api);
    assert_eq!(verdicts(&from_api), verdicts(&from_files));
    assert_eq!(from_api["summary"], from_files["summary"]);
    let served = |r: &Value| -> Vec<(Value, Value)> {
        r["ingresses"]
            .as_array()
            .expect("ingresses")
            .iter()
            .map(|i| (i["ingress"].clone(), i["served"].clone()))
            .collect()
    };
    assert_eq!(served(&from_api), served(&from_files));
    assert!(from_api["ingresses"]
        .as_array()
        .expect("ingresses")
        .iter()
        .all(|i| i["file"].is_null()));

    // Read-only: GETs, no watch, nothing written.
    let requests = api.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.method, "GET", "{r:?}");
        assert!(!r.is_watch(), "{r:?}");
    }
    assert!(requests
        .iter()
        .all(|r| !r.path.contains("/leases") && !r.path.contains("/events")));
    // Only the named Secret, by name: no list of Secrets.
    let secrets: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.contains("/secrets"))
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(secrets, ["/api/v1/namespaces/demo/secrets/secure-tls"]);
}
