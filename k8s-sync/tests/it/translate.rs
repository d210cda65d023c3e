//! Table-driven tests of `translate`, with manifests written inline.

use crate::common::{ingress, messages, objects, path, rules, run, CLASS, WEB};
use rauta_k8s_sync::problem::Severity;
use rauta_k8s_sync::translate::translate;
use rauta_k8s_sync::ClassSelector;
use rauta_shared::config::{
    HashKey, HostMatch, IngressRef, LbPolicy, PathType, RouteConfig, ServicePort, UpstreamProtocol,
};
use std::net::SocketAddr;

fn addrs(config: &RouteConfig, backend: usize) -> Vec<String> {
    config.backends[backend]
        .endpoints
        .iter()
        .map(|e| e.addr.to_string())
        .collect()
}

fn sources(config: &RouteConfig) -> Vec<String> {
    config.rules.iter().map(|r| r.source.to_string()).collect()
}

#[test]
fn class_selection() {
    let default_class = "
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: rauta
  annotations: {ingressclass.kubernetes.io/is-default-class: \"true\"}
spec: {controller: rauta.io/ingress-controller}
---
";
    let foreign_controller = "
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: rauta}
spec: {controller: example.com/other}
---
";
    let plain = |meta: &str, class: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\n\
             metadata: {{name: app, namespace: demo{meta}}}\n\
             spec: {{{class}rules: [{{http: {{paths: [{}]}}}}]}}\n",
            path("/", "Prefix", "web", "name: http")
        )
    };
    let legacy = ", annotations: {kubernetes.io/ingress.class: rauta}";
    let legacy_other = ", annotations: {kubernetes.io/ingress.class: nginx}";
    // (case, class objects, ingress metadata extra, ingressClassName part, served, warnings)
    let cases: &[(&str, &str, &str, &str, bool, usize)] = &[
        (
            "ingressClassName",
            CLASS,
            "",
            "ingressClassName: rauta, ",
            true,
            0,
        ),
        (
            "class object missing",
            "",
            "",
            "ingressClassName: rauta, ",
            false,
            1,
        ),
        (
            "foreign class",
            CLASS,
            "",
            "ingressClassName: nginx, ",
            false,
            0,
        ),
        (
            "foreign controller",
            foreign_controller,
            "",
            "ingressClassName: rauta, ",
            false,
            1,
        ),
        ("default class", default_class, "", "", true, 0),
        ("no class, ours not default", CLASS, "", "", false, 0),
        (
            "default class but other name",
            default_class,
            "",
            "ingressClassName: nginx, ",
            false,
            0,
        ),
        ("legacy annotation", "", legacy, "", true, 0),
        (
            "legacy annotation wins",
            CLASS,
            legacy_other,
            "ingressClassName: rauta, ",
            false,
            0,
        ),
        (
            "legacy over missing class",
            CLASS,
            legacy,
            "ingressClassName: nginx, ",
            true,
            0,
        ),
    ];
    for (case, classes, meta, class, served, warnings) in cases {
        let t = run(&format!("{classes}{WEB}{}", plain(meta, class)));
        assert!(!t.has_errors(), "{case}: {:#?}", t.problems);
        assert_eq!(t.config.rules.len(), usize::from(*served), "{case}");
        assert_eq!(t.problems.len(), *warnings, "{case}: {:#?}", t.problems);
    }
}

#[test]
fn ignored_ingresses_do_not_report_errors() {
    let bad = ingress("bad", "", &rules("", &["api"])).replace("rauta", "nginx");
    let t = run(&format!("{CLASS}{WEB}{bad}"));
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert!(t.config.rules.is_empty());
}

#[test]
fn custom_selector() {
    let yaml = format!(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {{name: edge}}\n\
         spec: {{controller: example.com/edge}}\n---\n{WEB}{}",
        ingress("a", "", &rules("", &["/"]))
            .replace("ingressClassName: rauta", "ingressClassName: edge")
    );
    let sel = ClassSelector {
        class_name: "edge".into(),
        controller: "example.com/edge".into(),
        ..ClassSelector::default()
    };
    assert_eq!(translate(&objects(&yaml), &sel).config.rules.len(), 1);
    assert!(run(&yaml).config.rules.is_empty());
}

#[test]
fn service_port_by_name_and_number() {
    let spec = format!(
        ", rules: [{{http: {{paths: [{}, {}]}}}}]",
        path("/a", "Prefix", "web", "name: http"),
        path("/b", "Prefix", "web", "number: 9000")
    );
    let t = run(&format!("{CLASS}{WEB}{}", ingress("app", "", &spec)));
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    let a = &t.config.rules[0];
    let b = &t.config.rules[1];
    assert_eq!((a.path.as_str(), b.path.as_str()), ("/a", "/b"));
    assert_eq!(
        t.config.backends[a.backend].port,
        ServicePort::Name("http".into())
    );
    assert_eq!(t.config.backends[a.backend].name, "demo/web:http");
    assert_eq!(
        addrs(&t.config, a.backend),
        ["10.0.0.1:8080", "10.0.0.2:8080"]
    );
    assert_eq!(t.config.backends[b.backend].port, ServicePort::Number(9000));
    assert_eq!(
        addrs(&t.config, b.backend),
        ["10.0.0.1:9090", "10.0.0.2:9090"]
    );
    let targets: Vec<_> = t.config.backends[a.backend]
        .endpoints
        .iter()
        .map(|e| (e.target.clone(), e.weight, e.ready))
        .collect();
    assert_eq!(
        targets,
        [
            (Some("web-1".into()), 1, true),
            (Some("web-2".into()), 1, true)
        ]
    );
}

#[test]
fn unnamed_single_port() {
    let yaml = format!(
        "{CLASS}
apiVersion: v1
kind: Service
metadata: {{name: solo, namespace: demo}}
spec: {{ports: [{{port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: solo-1, namespace: demo, labels: {{kubernetes.io/service-name: solo}}}}
addressType: IPv6
ports: [{{name: \"\", port: 8080}}]
endpoints: [{{addresses: [\"fd00::1\"]}}]
---
{}",
        ingress(
            "app",
            "",
            &format!(
                ", rules: [{{http: {{paths: [{}]}}}}]",
                path("/", "Prefix", "solo", "number: 80")
            )
        )
    );
    let t = run(&yaml);
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert_eq!(addrs(&t.config, 0), ["[fd00::1]:8080"]);
}

/// A Service `svc` with one port and one slice holding `endpoints` (flow YAML).
fn service_with(endpoints: &str) -> String {
    format!(
        "
apiVersion: v1
kind: Service
metadata: {{name: svc, namespace: demo}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: svc-1, namespace: demo, labels: {{kubernetes.io/service-name: svc}}}}
addressType: IPv4
ports: [{{name: http, port: 8080}}]
endpoints: {endpoints}
---
"
    )
}

#[test]
fn ready_and_terminating_fallback() {
    let terminating =
        "{addresses: [10.1.0.1], conditions: {ready: false, serving: true, terminating: true}}";
    let not_serving =
        "{addresses: [10.1.0.2], conditions: {ready: false, serving: false, terminating: true}}";
    let ready = "{addresses: [10.1.0.3], conditions: {ready: true}}";
    let unknown = "{addresses: [10.1.0.4]}";
    let not_ready = "{addresses: [10.1.0.5], conditions: {ready: false}}";
    // (case, endpoints, expected addresses, expected ready flag)
    let cases: &[(&str, String, &[&str], bool)] = &[
        (
            "ready only",
            format!("[{ready}, {terminating}, {not_serving}]"),
            &["10.1.0.3:8080"],
            true,
        ),
        (
            "conditions absent mean ready",
            format!("[{unknown}, {terminating}]"),
            &["10.1.0.4:8080"],
            true,
        ),
        (
            "fallback",
            format!("[{terminating}, {not_serving}, {not_ready}]"),
            &["10.1.0.1:8080"],
            false,
        ),
        (
            "nothing usable",
            format!("[{not_serving}, {not_ready}]"),
            &[],
            false,
        ),
    ];
    for (case, endpoints, expected, is_ready) in cases {
        let spec = format!(
            ", rules: [{{http: {{paths: [{}]}}}}]",
            path("/", "Prefix", "svc", "name: http")
        );
        let t = run(&format!(
            "{CLASS}{}{}",
            service_with(endpoints),
            ingress("app", "", &spec)
        ));
        assert!(t.problems.is_empty(), "{case}: {:#?}", t.problems);
        assert_eq!(addrs(&t.config, 0), *expected, "{case}");
        assert!(
            t.config.backends[0]
                .endpoints
                .iter()
                .all(|e| e.ready == *is_ready),
            "{case}"
        );
    }
}

#[test]
fn duplicate_addresses_and_fqdn_slices() {
    let yaml = format!(
        "{CLASS}{}
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: svc-2, namespace: demo, labels: {{kubernetes.io/service-name: svc}}}}
addressType: IPv4
ports: [{{name: http, port: 8080}}]
endpoints: [{{addresses: [10.1.0.1, 10.1.0.2]}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: svc-3, namespace: demo, labels: {{kubernetes.io/service-name: svc}}}}
addressType: FQDN
ports: [{{name: http, port: 8080}}]
endpoints: [{{addresses: [db.example.com]}}]
---
{}",
        service_with("[{addresses: [10.1.0.2]}, {addresses: [10.1.0.0]}]"),
        ingress(
            "app",
            "",
            &format!(
                ", rules: [{{http: {{paths: [{}]}}}}]",
                path("/", "Prefix", "svc", "name: http")
            )
        )
    );
    let t = run(&yaml);
    assert_eq!(
        addrs(&t.config, 0),
        ["10.1.0.0:8080", "10.1.0.1:8080", "10.1.0.2:8080"]
    );
    let warnings = messages(&t.problems, Severity::Warning);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("EndpointSlice demo/svc-3: addressType FQDN"),
        "{warnings:?}"
    );
}

#[test]
fn missing_service_port_or_external_name_keeps_backend_without_endpoints() {
    let external = "
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: demo}
spec: {type: ExternalName, externalName: example.org}
---
";
    let cases: &[(&str, &str, &str)] = &[
        ("missing service", "gone", "Service demo/gone not found"),
        ("missing port", "web", "Service demo/web has no port 81"),
        (
            "ExternalName",
            "ext",
            "Service demo/ext is of type ExternalName",
        ),
    ];
    for (case, service, expected) in cases {
        let port = if *service == "web" {
            "number: 81"
        } else {
            "number: 80"
        };
        let spec = format!(
            ", rules: [{{http: {{paths: [{}]}}}}]",
            path("/", "Prefix", service, port)
        );
        let t = run(&format!(
            "{CLASS}{WEB}{external}{}",
            ingress("app", "", &spec)
        ));
        assert!(!t.has_errors(), "{case}");
        let warnings = messages(&t.problems, Severity::Warning);
        assert_eq!(warnings.len(), 1, "{case}: {warnings:?}");
        assert!(
            warnings[0].contains("Ingress demo/app"),
            "{case}: {warnings:?}"
        );
        assert!(warnings[0].contains(expected), "{case}: {warnings:?}");
        assert_eq!(t.config.rules.len(), 1, "{case}");
        assert!(t.config.backends[0].endpoints.is_empty(), "{case}");
    }
}

#[test]
fn validation_errors_name_the_ingress_and_drop_its_rules() {
    let p = |path_: &str, ty: &str| {
        format!(
            ", rules: [{{http: {{paths: [{}]}}}}]",
            path(path_, ty, "web", "name: http")
        )
    };
    let host = |h: &str| rules(h, &["/"]);
    let no_type = ", rules: [{http: {paths: [{path: /, backend: {service: {name: web, port: {number: 80}}}}]}}]".to_string();
    let no_backend =
        ", rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {}}]}}]".to_string();
    let no_port = ", rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web}}}]}}]".to_string();
    let empty_port = ", rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {}}}}]}}]".to_string();
    let bad_default = ", defaultBackend: {service: {name: web}}".to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "relative path",
            p("api", "Prefix"),
            r#"path "api" must start with "/""#,
        ),
        ("missing pathType", no_type, "pathType is missing"),
        ("unknown pathType", p("/", "Regex"), "unknown pathType"),
        ("dot segment", p("/a/../b", "Exact"), "must not contain"),
        ("IPv4 host", host("10.0.0.1"), "is an IP address"),
        ("IPv6 host", host("\"[::1]\""), "is an IP address"),
        (
            "host with port",
            host("\"example.com:8080\""),
            "must not contain a port",
        ),
        ("inner wildcard", host("\"foo.*.com\""), "wildcard"),
        ("partial wildcard", host("\"*foo.com\""), "wildcard"),
        ("bare wildcard", host("\"*\""), "wildcard"),
        ("empty label", host("foo..com"), "empty label"),
        ("trailing dot", host("foo.com."), "empty label"),
        (
            "invalid characters",
            host("foo_bar.com"),
            "invalid characters",
        ),
        (
            "neither service nor resource",
            no_backend,
            "neither service nor resource",
        ),
        ("no port", no_port, "neither port number nor port name"),
        (
            "empty port",
            empty_port,
            "neither port number nor port name",
        ),
        (
            "default backend",
            bad_default,
            "defaultBackend: backend service web has neither",
        ),
    ];
    for (case, spec, expected) in cases {
        let good = ingress("good", "", &rules("good.example.com", &["/"]));
        let t = run(&format!("{CLASS}{WEB}{good}{}", ingress("bad", "", &spec)));
        let errors = messages(&t.problems, Severity::Error);
        assert_eq!(errors.len(), 1, "{case}: {errors:#?}");
        assert!(
            errors[0].starts_with("error: ") && errors[0].contains("all.yaml: Ingress demo/bad: "),
            "{case}: {}",
            errors[0]
        );
        assert!(errors[0].contains(expected), "{case}: {}", errors[0]);
        assert_eq!(sources(&t.config), ["demo/good"], "{case}");
        assert!(t.config.default_backend.is_none(), "{case}");
    }
}

#[test]
fn error_message_format() {
    let t = run(&format!(
        "{CLASS}{WEB}{}",
        ingress("web", "", &rules("", &["api"]))
    ));
    let errors = messages(&t.problems, Severity::Error);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].ends_with(r#"all.yaml: Ingress demo/web: path "api" must start with "/""#),
        "{}",
        errors[0]
    );
}

#[test]
fn hosts() {
    let cases: &[(&str, HostMatch)] = &[
        ("Example.COM", HostMatch::Exact("example.com".into())),
        (
            "\"*.Example.com\"",
            HostMatch::Wildcard("example.com".into()),
        ),
        ("a-1.b2.example", HostMatch::Exact("a-1.b2.example".into())),
        ("\"\"", HostMatch::Any),
    ];
    for (host, expected) in cases {
        let t = run(&format!(
            "{CLASS}{WEB}{}",
            ingress("app", "", &rules(host, &["/"]))
        ));
        assert!(t.problems.is_empty(), "{host}: {:#?}", t.problems);
        assert_eq!(t.config.rules[0].host, *expected, "{host}");
    }
}

#[test]
fn path_types_and_resource_backends() {
    let spec = format!(
        ", rules: [{{http: {{paths: [{}, {}, {}, {}]}}}}]",
        path("/x", "Exact", "web", "name: http"),
        path("/x", "Prefix", "web", "name: http"),
        "{pathType: ImplementationSpecific, backend: {service: {name: web, port: {name: http}}}}",
        "{path: /bucket, pathType: Prefix, backend: {resource: {apiGroup: k8s.example.com, kind: StorageBucket, name: b}}}",
    );
    let t = run(&format!("{CLASS}{WEB}{}", ingress("app", "", &spec)));
    assert!(!t.has_errors(), "{:#?}", t.problems);
    let warnings = messages(&t.problems, Severity::Warning);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains(r#"path "/bucket": resource backends are not supported"#));
    let rules: Vec<_> = t
        .config
        .rules
        .iter()
        .map(|r| (r.path.as_str(), r.path_type))
        .collect();
    assert_eq!(
        rules,
        [
            ("/", PathType::ImplementationSpecific),
            ("/x", PathType::Exact),
            ("/x", PathType::Prefix)
        ]
    );
    assert_eq!(t.config.backends.len(), 1);
}

#[test]
fn merging_and_conflicts() {
    let old = ", creationTimestamp: \"2024-01-01T00:00:00Z\"";
    let new = ", creationTimestamp: \"2025-01-01T00:00:00Z\"";
    // (case, [(name, metadata)], winner, loser)
    type Case<'a> = (&'a str, [(&'a str, &'a str); 2], &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        (
            "older wins over name",
            [("a", new), ("z", old)],
            "demo/z",
            "demo/a",
        ),
        (
            "same time: name order",
            [("b", old), ("a", old)],
            "demo/a",
            "demo/b",
        ),
        (
            "no timestamp: name order",
            [("b", ""), ("a", "")],
            "demo/a",
            "demo/b",
        ),
        (
            "timestamp beats none",
            [("a", ""), ("b", new)],
            "demo/b",
            "demo/a",
        ),
    ];
    for (case, ings, winner, loser) in cases {
        let mut yaml = format!("{CLASS}{WEB}");
        for (name, meta) in ings {
            // Each also has a path of its own: rules of one host are merged.
            yaml += &ingress(
                name,
                meta,
                &rules("example.com", &["/shared", &format!("/{name}")]),
            );
        }
        let t = run(&yaml);
        assert!(!t.has_errors(), "{case}");
        let shared: Vec<_> = t
            .config
            .rules
            .iter()
            .filter(|r| r.path == "/shared")
            .collect();
        assert_eq!(shared.len(), 1, "{case}");
        assert_eq!(shared[0].source.to_string(), *winner, "{case}");
        assert_eq!(t.config.rules.len(), 3, "{case}");
        let warnings = messages(&t.problems, Severity::Warning);
        assert_eq!(warnings.len(), 1, "{case}: {warnings:?}");
        assert!(
            warnings[0].contains(&format!("Ingress {loser}: ")),
            "{case}: {warnings:?}"
        );
        assert!(
            warnings[0].contains(&format!("already served by Ingress {winner}")),
            "{case}: {warnings:?}"
        );
    }
}

#[test]
fn same_path_other_type_or_host_is_no_conflict() {
    let a = ingress("a", "", &rules("example.com", &["/p"]));
    let b = ingress(
        "b",
        "",
        &format!(
            ", rules: [{{host: example.com, http: {{paths: [{}]}}}}]",
            path("/p", "Exact", "web", "name: http")
        ),
    );
    let c = ingress("c", "", &rules("other.example.com", &["/p"]));
    let t = run(&format!("{CLASS}{WEB}{a}{b}{c}"));
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert_eq!(t.config.rules.len(), 3);
    assert_eq!(t.config.backends.len(), 1, "identical backends are shared");
}

#[test]
fn default_backend_conflict() {
    let spec = ", defaultBackend: {service: {name: web, port: {name: http}}}";
    let old = ingress("old", ", creationTimestamp: \"2023-05-01T10:00:00Z\"", spec);
    let young = ingress(
        "a-young",
        ", creationTimestamp: \"2024-05-01T10:00:00Z\"",
        spec,
    );
    let t = run(&format!("{CLASS}{WEB}{young}{old}"));
    assert_eq!(
        t.config.default_backend_source,
        Some(IngressRef {
            namespace: "demo".into(),
            name: "old".into(),
            kind: rauta_shared::config::RouteKind::Ingress,
        })
    );
    assert_eq!(t.config.default_backend, Some(0));
    let warnings = messages(&t.problems, Severity::Warning);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0]
        .contains("Ingress demo/a-young: defaultBackend is already set by Ingress demo/old"));
}

#[test]
fn annotations() {
    use HashKey::*;
    let cases: &[(&str, &str, Option<LbPolicy>)] = &[
        ("none", "", Some(LbPolicy::RoundRobin)),
        (
            "round_robin",
            "nginx.ingress.kubernetes.io/load-balance: round_robin",
            Some(LbPolicy::RoundRobin),
        ),
        (
            "least_request",
            "rauta.io/load-balance: least_request",
            Some(LbPolicy::LeastRequest),
        ),
        (
            "ewma",
            "nginx.ingress.kubernetes.io/load-balance: ewma",
            Some(LbPolicy::LeastRequest),
        ),
        (
            "remote_addr",
            "nginx.ingress.kubernetes.io/upstream-hash-by: $remote_addr",
            Some(LbPolicy::Maglev(ClientIp)),
        ),
        (
            "binary_remote_addr",
            "rauta.io/upstream-hash-by: $binary_remote_addr",
            Some(LbPolicy::Maglev(ClientIp)),
        ),
        (
            "header",
            "rauta.io/upstream-hash-by: $http_X_User_Id",
            Some(LbPolicy::Maglev(Header("x-user-id".into()))),
        ),
        (
            "request_uri",
            "rauta.io/upstream-hash-by: $request_uri",
            Some(LbPolicy::Maglev(RequestUri)),
        ),
        (
            "host",
            "rauta.io/upstream-hash-by: $host",
            Some(LbPolicy::Maglev(Host)),
        ),
        (
            "hash beats load-balance",
            "rauta.io/load-balance: ewma, rauta.io/upstream-hash-by: $host",
            Some(LbPolicy::Maglev(Host)),
        ),
        (
            "rauta.io beats nginx",
            "nginx.ingress.kubernetes.io/load-balance: ewma, rauta.io/load-balance: round_robin",
            Some(LbPolicy::RoundRobin),
        ),
        ("bad load-balance", "rauta.io/load-balance: random", None),
        (
            "bad hash",
            "rauta.io/upstream-hash-by: $cookie_session",
            None,
        ),
        ("empty header", "rauta.io/upstream-hash-by: $http_", None),
        (
            "bad hash with good balance",
            "rauta.io/load-balance: ewma, rauta.io/upstream-hash-by: $args",
            None,
        ),
    ];
    for (case, annotations, expected) in cases {
        let meta = if annotations.is_empty() {
            String::new()
        } else {
            format!(", annotations: {{{annotations}}}")
        };
        let t = run(&format!(
            "{CLASS}{WEB}{}",
            ingress("app", &meta, &rules("", &["/"]))
        ));
        match expected {
            Some(policy) => {
                assert!(t.problems.is_empty(), "{case}: {:#?}", t.problems);
                assert_eq!(t.config.backends[0].policy, *policy, "{case}");
            }
            None => {
                let errors = messages(&t.problems, Severity::Error);
                assert_eq!(errors.len(), 1, "{case}: {errors:?}");
                assert!(
                    errors[0].contains("Ingress demo/app: annotation "),
                    "{case}: {errors:?}"
                );
                assert!(t.config.rules.is_empty(), "{case}");
            }
        }
    }
}

#[test]
fn policies_make_distinct_backends() {
    let a = ingress(
        "a",
        ", annotations: {rauta.io/load-balance: ewma}",
        &rules("a.example", &["/"]),
    );
    let b = ingress("b", "", &rules("b.example", &["/"]));
    let t = run(&format!("{CLASS}{WEB}{a}{b}"));
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    let names: Vec<_> = t
        .config
        .backends
        .iter()
        .map(|b| (b.name.as_str(), b.policy.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("demo/web:http", LbPolicy::RoundRobin),
            ("demo/web:http#2", LbPolicy::LeastRequest)
        ]
    );
    assert_eq!(
        t.config.backends[t.config.rules[0].backend].policy,
        LbPolicy::LeastRequest
    );
}

#[test]
fn backend_protocol_makes_distinct_backends() {
    let a = ingress(
        "a",
        ", annotations: {nginx.ingress.kubernetes.io/backend-protocol: grpc}",
        &rules("a.example", &["/"]),
    );
    let b = ingress("b", "", &rules("b.example", &["/"]));
    let t = run(&format!("{CLASS}{WEB}{a}{b}"));
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    let protocol = |host: &str| {
        let rule = t
            .config
            .rules
            .iter()
            .find(|r| r.host == HostMatch::Exact(host.into()));
        t.config.backends[rule.expect("rule").backend].protocol
    };
    assert_eq!(protocol("a.example"), UpstreamProtocol::Grpc);
    assert_eq!(protocol("b.example"), UpstreamProtocol::Http);
    // Never served with another protocol than asked.
    for value in ["AUTO_HTTP", "FCGI"] {
        let meta =
            format!(", annotations: {{nginx.ingress.kubernetes.io/backend-protocol: {value}}}");
        let t = run(&format!(
            "{CLASS}{WEB}{}",
            ingress("c", &meta, &rules("c.example", &["/"]))
        ));
        assert!(t.has_errors(), "{value}: {:#?}", t.problems);
        assert!(t.config.rules.is_empty(), "{value}");
    }
}

#[test]
fn endpoint_weights() {
    // web has 10.0.0.1 (web-1) and 10.0.0.2 (web-2) on port 8080.
    type Expected = Option<&'static [(&'static str, u32)]>;
    let cases: &[(&str, &str, Expected, usize)] = &[
        (
            "by ip",
            "10.0.0.1=5",
            Some(&[("10.0.0.1:8080", 5), ("10.0.0.2:8080", 1)]),
            0,
        ),
        (
            "by ip:port",
            "10.0.0.2:8080=7, 10.0.0.2=3",
            Some(&[("10.0.0.1:8080", 1), ("10.0.0.2:8080", 7)]),
            0,
        ),
        (
            "by pod",
            "web-2=10000,",
            Some(&[("10.0.0.1:8080", 1), ("10.0.0.2:8080", 10000)]),
            0,
        ),
        ("zero drops", "web-1=0", Some(&[("10.0.0.2:8080", 1)]), 0),
        (
            "unused key",
            "10.9.9.9=2",
            Some(&[("10.0.0.1:8080", 1), ("10.0.0.2:8080", 1)]),
            1,
        ),
        ("too heavy", "web-1=10001", None, 0),
        ("negative", "web-1=-1", None, 0),
        ("no weight", "web-1", None, 0),
        ("bad key", "Web_1=2", None, 0),
        ("twice", "web-1=2,web-1=3", None, 0),
    ];
    for (case, value, expected, warnings) in cases {
        let meta = format!(", annotations: {{rauta.io/endpoint-weights: \"{value}\"}}");
        let t = run(&format!(
            "{CLASS}{WEB}{}",
            ingress("app", &meta, &rules("", &["/"]))
        ));
        match expected {
            Some(expected) => {
                assert!(!t.has_errors(), "{case}: {:#?}", t.problems);
                assert_eq!(t.problems.len(), *warnings, "{case}: {:#?}", t.problems);
                let got: Vec<(String, u32)> = t.config.backends[0]
                    .endpoints
                    .iter()
                    .map(|e| (e.addr.to_string(), e.weight))
                    .collect();
                let want: Vec<(String, u32)> =
                    expected.iter().map(|(a, w)| (a.to_string(), *w)).collect();
                assert_eq!(got, want, "{case}");
            }
            None => {
                let errors = messages(&t.problems, Severity::Error);
                assert_eq!(errors.len(), 1, "{case}: {errors:?}");
                assert!(errors[0].contains("rauta.io/endpoint-weights"), "{case}");
            }
        }
    }
}

#[test]
fn deterministic_under_reordering() {
    let yaml = format!(
        "{CLASS}{WEB}{}{}{}{}",
        ingress("b", "", &rules("example.com", &["/x", "/b"])),
        ingress("a", "", &rules("example.com", &["/x", "/a"])),
        ingress(
            "c",
            ", annotations: {rauta.io/upstream-hash-by: $host}",
            &rules("\"*.example.com\"", &["/"])
        ),
        ingress(
            "d",
            "",
            ", defaultBackend: {service: {name: web, port: {number: 9000}}}"
        ),
    );
    let objs = objects(&yaml);
    let sel = ClassSelector::default();
    let first = translate(&objs, &sel);
    assert!(!first.has_errors());
    let mut reversed = objs.clone();
    reversed.reverse();
    let mut rotated = objs.clone();
    rotated.rotate_left(3);
    for other in [reversed, rotated] {
        let t = translate(&other, &sel);
        assert_eq!(t.config, first.config);
        assert_eq!(t.problems, first.problems);
    }
    let hosts: Vec<_> = first
        .config
        .rules
        .iter()
        .map(|r| (r.host.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        hosts,
        [
            (HostMatch::Exact("example.com".into()), "/a".into()),
            (HostMatch::Exact("example.com".into()), "/b".into()),
            (HostMatch::Exact("example.com".into()), "/x".into()),
            (HostMatch::Wildcard("example.com".into()), "/".into()),
        ]
    );
    assert_eq!(sources(&first.config)[2], "demo/a");
    let default = first
        .config
        .default_backend
        .map(|i| first.config.backends[i].port.clone());
    assert_eq!(default, Some(ServicePort::Number(9000)));
    let addr: SocketAddr = "10.0.0.1:9090".parse().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        first.config.backends[first.config.default_backend.unwrap_or(0)].endpoints[0].addr,
        addr
    );
}
