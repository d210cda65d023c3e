//! Tests of the `rauta check` table.

use crate::common::{ingress, rules, run, CLASS, WEB};
use rauta_k8s_sync::report::render;
use rauta_k8s_sync::RouteConfig;

#[test]
fn renders_rules_backends_and_default() {
    let yaml = format!(
        "{CLASS}{WEB}{}{}{}",
        ingress(
            "web",
            ", annotations: {rauta.io/endpoint-weights: \"web-2=3\"}",
            &rules("\"*.example.com\"", &["/", "/api"])
        ),
        ingress("other", "", &rules("", &["/x"]).replace("web", "gone")),
        ingress(
            "fallback",
            "",
            ", defaultBackend: {service: {name: web, port: {number: 9000}}}"
        ),
    );
    let t = run(&yaml);
    assert!(!t.has_errors(), "{:#?}", t.problems);
    let text = render(&t.config);
    let expected = "\
Rules:
  HOST           PATH  MATCH   BACKEND         SOURCE
  *              /x    Prefix  demo/gone:http  Ingress demo/other
  *.example.com  /     Prefix  demo/web:http   Ingress demo/web
  *.example.com  /api  Prefix  demo/web:http   Ingress demo/web

Backends:
  demo/gone:http  policy round-robin
    no endpoints
  demo/web:9000  policy round-robin
    ADDRESS        WEIGHT  STATE  TARGET
    10.0.0.1:9090  1       ready  web-1
    10.0.0.2:9090  1       ready  web-2
";
    assert!(text.starts_with(expected), "{text}");
    assert!(
        text.contains("    10.0.0.2:8080  3       ready  web-2\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Default backend: demo/web:9000 (from Ingress demo/fallback)\n"),
        "{text}"
    );
}

#[test]
fn renders_an_empty_config() {
    let text = render(&RouteConfig::default());
    assert_eq!(
        text,
        "Rules:\n  (none)\n\nBackends:\n  (none)\n\nDefault backend: none (unmatched requests get 404)\n"
    );
}
