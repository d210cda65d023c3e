//! Gateway API translation: Gateways of our GatewayClass, HTTPRoutes
//! attached to their listeners, and what reaches the route table.

use crate::common::{ingress, messages, objects, rules, CLASS, WEB};
use rauta_k8s_sync::problem::Severity;
use rauta_k8s_sync::translate::{translate, Translation};
use rauta_k8s_sync::ClassSelector;
use rauta_shared::config::{HostMatch, PathType, RouteConfig, RouteKind, StringMatch};
use rauta_shared::policy::{AuthTarget, PathRewrite, RequestRedirect};

/// GatewayClass `rauta` (ours) and `other` (another controller's).
const CLASSES: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/other}
---
";

/// Gateway demo/gw of `class` with an HTTP listener `http` on port 80 and
/// the extra listener lines `more`.
fn gateway(class: &str, http: &str, more: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n\
         metadata: {{name: gw, namespace: demo}}\n\
         spec:\n  gatewayClassName: {class}\n  listeners:\n  \
         - {{name: http, port: 80, protocol: HTTP{http}}}\n{more}---\n"
    )
}

/// HTTPRoute `ns`/`name` attached to demo/gw with `spec` lines added.
fn route(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {{name: {name}, namespace: {ns}}}\n\
         spec:\n  parentRefs: [{{name: gw, namespace: demo}}]\n{spec}---\n"
    )
}

fn sel() -> ClassSelector {
    ClassSelector {
        http_port: Some(8080),
        tls_ports: vec![8443],
        ..ClassSelector::default()
    }
}

fn run(yaml: &str) -> Translation {
    translate(&objects(yaml), &sel())
}

/// `host path (type)` of every rule, in table order.
fn keys(config: &RouteConfig) -> Vec<String> {
    config
        .rules
        .iter()
        .map(|r| {
            let host = match &r.host {
                HostMatch::Any => "*".to_string(),
                HostMatch::Exact(h) => h.clone(),
                HostMatch::Wildcard(s) => format!("*.{s}"),
                HostMatch::Suffix(s) => format!("**.{s}"),
            };
            format!("{host} {} ({:?})", r.path, r.path_type)
        })
        .collect()
}

/// Messages without their `warning: FILE: ` prefix.
fn bare(messages: Vec<String>) -> Vec<String> {
    messages
        .into_iter()
        .map(|m| {
            m.split_once("all.yaml: ")
                .map_or(m.clone(), |(_, rest)| rest.to_string())
        })
        .collect()
}

const WEB_RULE: &str = "  rules:\n  - backendRefs: [{name: web, port: 80}]\n";

#[test]
fn an_attached_route_serves_its_hosts_on_its_listener() {
    let yaml = format!(
        "{CLASSES}{WEB}{}{}",
        gateway("rauta", "", ""),
        route(
            "demo",
            "web",
            "  hostnames: [a.example.com]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: /api}}]\n    backendRefs: [{name: web, port: 80}]\n"
        )
    );
    let t = run(&yaml);
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    assert_eq!(keys(&t.config), ["a.example.com /api (Prefix)"]);
    let rule = &t.config.rules[0];
    assert_eq!(rule.source.kind, RouteKind::HttpRoute);
    assert_eq!(rule.source.to_string(), "HTTPRoute demo/web");
    // An HTTP listener only: the rule is not served on TLS listeners.
    assert_eq!(rule.conditions.as_ref().and_then(|c| c.tls), Some(false));
    assert!(rule.policy.split.is_none());
    let backend = &t.config.backends[rule.backend];
    assert_eq!(backend.name, "demo/web:80");
    let addrs: Vec<String> = backend
        .endpoints
        .iter()
        .map(|e| e.addr.to_string())
        .collect();
    assert_eq!(addrs, ["10.0.0.1:8080", "10.0.0.2:8080"]);
}

#[test]
fn routes_of_other_controllers_are_left_alone() {
    let yaml = format!(
        "{CLASSES}{WEB}{}{}",
        gateway("other", "", ""),
        route("demo", "web", WEB_RULE)
    );
    let t = run(&yaml);
    assert!(t.config.rules.is_empty());
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
}

#[test]
fn a_route_naming_a_missing_gateway_is_reported() {
    let yaml = format!("{CLASSES}{WEB}{}", route("demo", "web", WEB_RULE));
    let t = run(&yaml);
    assert!(t.config.rules.is_empty());
    assert_eq!(
        bare(messages(&t.problems, Severity::Warning)),
        ["HTTPRoute demo/web: parentRefs[0]: Gateway demo/gw not found"]
    );
}

#[test]
fn listeners_admit_routes_by_namespace_kind_section_and_hostname() {
    let other_ns =
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team, labels: {shared: \"yes\"}}\n---\n";
    let route_in_team = route(
        "team",
        "web",
        "  rules:\n  - backendRefs: [{name: web, namespace: demo, port: 80}]\n",
    );
    // (case, listener extras, route, attached, warning part)
    let cases: &[(&str, &str, String, bool, &str)] = &[
        ("Same rejects another namespace", "", route_in_team.clone(), false, "NotAllowedByListeners"),
        (
            "All admits it",
            ", allowedRoutes: {namespaces: {from: All}}",
            route_in_team.clone(),
            true,
            "",
        ),
        (
            "Selector admits a labelled namespace",
            ", allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {shared: \"yes\"}}}}",
            route_in_team.clone(),
            true,
            "",
        ),
        (
            "Selector rejects an unlabelled one",
            ", allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {shared: \"no\"}}}}",
            route_in_team.clone(),
            false,
            "NotAllowedByListeners",
        ),
        (
            "kinds without HTTPRoute",
            ", allowedRoutes: {kinds: [{kind: GRPCRoute}]}",
            route("demo", "web", WEB_RULE),
            false,
            "do not take this kind of route (NotAllowedByListeners)",
        ),
        (
            "a listener hostname no route hostname matches",
            ", hostname: b.example.com",
            route("demo", "web", &format!("  hostnames: [a.example.com]\n{WEB_RULE}")),
            false,
            "NoMatchingListenerHostname",
        ),
        (
            "a sectionName that names no listener",
            "",
            route("demo", "web", WEB_RULE).replace("{name: gw, namespace: demo}", "{name: gw, namespace: demo, sectionName: https}"),
            false,
            "no listener named \"https\"",
        ),
        (
            "a port that no listener has",
            "",
            route("demo", "web", WEB_RULE).replace("{name: gw, namespace: demo}", "{name: gw, namespace: demo, port: 81}"),
            false,
            "no listener on port 81",
        ),
    ];
    for (case, listener, route, attached, warning) in cases {
        // The grant lets team's route use demo's Service, so only the listener decides.
        let grant = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n\
                     metadata: {name: team, namespace: demo}\n\
                     spec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team}], to: [{group: \"\", kind: Service}]}\n---\n";
        let yaml = format!(
            "{CLASSES}{WEB}{other_ns}{grant}{}{route}",
            gateway("rauta", listener, "")
        );
        let t = run(&yaml);
        assert_eq!(
            !t.config.rules.is_empty(),
            *attached,
            "{case}: {:#?}",
            t.problems
        );
        let warnings = messages(&t.problems, Severity::Warning);
        if warning.is_empty() {
            assert!(warnings.is_empty(), "{case}: {warnings:#?}");
        } else {
            assert!(
                warnings.iter().any(|w| w.contains(warning)),
                "{case}: {warnings:#?}"
            );
        }
    }
}

#[test]
fn listener_ports_map_onto_rautas_listeners() {
    let https = "  - {name: https, port: 443, protocol: HTTPS, hostname: a.example.com}\n  - {name: alt, port: 8443, protocol: HTTPS}\n  - {name: odd, port: 9999, protocol: HTTP}\n  - {name: tcp, port: 5432, protocol: TCP}\n";
    let yaml = format!(
        "{CLASSES}{WEB}{}{}",
        gateway("rauta", "", https),
        route("demo", "web", WEB_RULE)
    );
    let t = run(&yaml);
    let warnings = messages(&t.problems, Severity::Warning);
    for expected in [
        "listener \"https\": HTTPS without tls.certificateRefs",
        "listener \"odd\": port 9999 has no rauta listener (HTTP is served on port 80 and on --listen's port, 8080)",
        "listener \"tcp\": protocol \"TCP\" is not supported yet",
    ] {
        assert!(warnings.iter().any(|w| w.contains(expected)), "{expected}: {warnings:#?}");
    }
    // Any host on the plain listener and on :8443; a.example.com on every
    // TLS listener (443) and the plain one: no listener condition.
    let scopes: Vec<(String, Option<bool>, Option<u16>)> = t
        .config
        .rules
        .iter()
        .map(|r| {
            let c = r.conditions.as_deref().cloned().unwrap_or_default();
            (
                keys(&RouteConfig {
                    rules: vec![r.clone()],
                    ..RouteConfig::default()
                })[0]
                    .clone(),
                c.tls,
                c.port,
            )
        })
        .collect();
    assert_eq!(
        scopes,
        [
            ("* / (Prefix)".to_string(), Some(false), None),
            ("* / (Prefix)".to_string(), Some(true), Some(8443)),
            ("a.example.com / (Prefix)".to_string(), Some(true), None),
        ]
    );
}

#[test]
fn matches_become_conditions_in_the_specs_precedence() {
    let spec = "  rules:
  - matches: [{path: {value: /}}]
    backendRefs: [{name: web, port: 80}]
  - matches:
    - {path: {value: /}, headers: [{name: X-Env, value: canary}, {name: x-env, value: ignored}]}
    backendRefs: [{name: web, port: 80}]
  - matches:
    - {path: {value: /}, method: POST}
    - {path: {type: Exact, value: /login}, queryParams: [{name: Mode, type: RegularExpression, value: \"^a+$\"}]}
    backendRefs: [{name: web, port: 80}]
";
    let older = route("demo", "b-older", "  rules:\n  - matches: [{path: {value: /}, headers: [{name: x-one, value: \"1\"}]}]\n    backendRefs: [{name: web, port: 80}]\n")
        .replace("namespace: demo}\nspec", "namespace: demo, creationTimestamp: \"2026-01-01T00:00:00Z\"}\nspec");
    let yaml = format!(
        "{CLASSES}{WEB}{}{}{older}",
        gateway("rauta", "", ""),
        route("demo", "a-newer", spec)
    );
    let t = run(&yaml);
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    let order: Vec<String> = t
        .config
        .rules
        .iter()
        .map(|r| {
            let c = r.conditions.as_deref().cloned().unwrap_or_default();
            format!(
                "{} {} {:?} h{} q{} {}",
                r.path,
                r.source.name,
                c.method,
                c.headers.len(),
                c.query.len(),
                r.policy.split.is_some()
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            // Method first; then header counts, the older route first on a tie.
            "/ a-newer Some(\"POST\") h0 q0 false",
            "/ b-older None h1 q0 false",
            "/ a-newer None h1 q0 false",
            "/ a-newer None h0 q0 false",
            "/login a-newer None h0 q1 false",
        ]
    );
    let login = &t.config.rules[4];
    assert_eq!(login.path_type, PathType::Exact);
    let q = &login.conditions.as_ref().expect("conditions").query[0];
    assert_eq!(
        (q.name.as_str(), &q.value),
        ("Mode", &StringMatch::RegularExpression("^a+$".into()))
    );
    let h = &t.config.rules[2]
        .conditions
        .as_ref()
        .expect("conditions")
        .headers;
    assert_eq!(h.len(), 1, "a repeated header name counts once");
    assert_eq!(
        (h[0].name.as_str(), &h[0].value),
        ("x-env", &StringMatch::Exact("canary".into()))
    );
}

#[test]
fn an_ingress_rule_wins_over_the_same_httproute_rule() {
    let ing = ingress("legacy", "", &rules("a.example.com", &["/"]));
    let yaml = format!(
        "{CLASS}{CLASSES}{WEB}{ing}---\n{}{}",
        gateway("rauta", "", ""),
        route("demo", "web", "  hostnames: [a.example.com]\n  rules:\n  - matches: [{path: {value: /}}, {path: {value: /new}}]\n    backendRefs: [{name: web, port: 80}]\n")
    );
    let t = run(&yaml);
    assert_eq!(
        keys(&t.config),
        ["a.example.com / (Prefix)", "a.example.com /new (Prefix)"]
    );
    assert_eq!(t.config.rules[0].source.to_string(), "demo/legacy");
    assert_eq!(t.config.rules[1].source.to_string(), "HTTPRoute demo/web");
    assert_eq!(
        bare(messages(&t.problems, Severity::Warning)),
        ["HTTPRoute demo/web: path \"/\" (Prefix) on host a.example.com is already served by Ingress demo/legacy (an Ingress rule wins over an HTTPRoute rule for the same host, path and path type); left out"]
    );
}

#[test]
fn backend_refs_become_a_weighted_split_with_invalid_shares() {
    let spec = "  rules:
  - matches: [{path: {value: /split}}]
    backendRefs:
    - {name: web, port: 80, weight: 1}
    - {name: web, port: 9000, weight: 3}
    - {name: web, port: 80, weight: 0}
  - matches: [{path: {value: /invalid}}]
    backendRefs:
    - {name: missing, port: 80}
    - {name: web, namespace: elsewhere, port: 80}
    - {group: example.com, kind: Bucket, name: b}
    - {name: web}
  - matches: [{path: {value: /none}}]
";
    let yaml = format!(
        "{CLASSES}{WEB}{}{}",
        gateway("rauta", "", ""),
        route("demo", "web", spec)
    );
    let t = run(&yaml);
    let c = &t.config;
    let split = |path: &str| -> Vec<(Option<String>, u32)> {
        let rule = c.rules.iter().find(|r| r.path == path).expect("rule");
        let split = rule.policy.split.as_ref().expect("split");
        split
            .iter()
            .map(|w| (w.backend.map(|b| c.backends[b].name.clone()), w.weight))
            .collect()
    };
    assert_eq!(
        split("/split"),
        [
            (Some("demo/web:80".into()), 1),
            (Some("demo/web:9000".into()), 3),
            (Some("demo/web:80".into()), 0)
        ]
    );
    assert_eq!(
        split("/invalid"),
        [(None, 1), (None, 1), (None, 1), (None, 1)]
    );
    assert_eq!(split("/none"), []);
    let none = c.rules.iter().find(|r| r.path == "/none").expect("rule");
    assert_eq!(c.backends[none.backend].name, "demo/(no valid backend)");
    let warnings = messages(&t.problems, Severity::Warning);
    for expected in [
        "backendRefs[0]: Service demo/missing not found (BackendNotFound)",
        "backendRefs[1]: Service elsewhere/web is in another namespace and no ReferenceGrant there allows it (RefNotPermitted)",
        "backendRefs[2]: kind Bucket of group \"example.com\" is not supported (InvalidKind",
        "backendRefs[3]: Service demo/web without a port",
    ] {
        assert!(warnings.iter().any(|w| w.contains(expected)), "{expected}: {warnings:#?}");
    }
}

#[test]
fn filters_become_the_rules_policy_and_bad_rules_are_left_out() {
    let spec = "  rules:
  - matches: [{path: {value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: new.example.com, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
  - matches: [{path: {value: /api}}]
    filters:
    - {type: URLRewrite, urlRewrite: {hostname: internal.example.com, path: {type: ReplaceFullPath, replaceFullPath: /v2}}}
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Env, value: prod}], add: [{name: X-Trace, value: \"1\"}], remove: [X-Debug]}}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {remove: [Server]}}
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /mirror}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web, port: 80}, percent: 150}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /smuggle}}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: Transfer-Encoding, value: chunked}]}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /host}}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [host]}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {type: Exact, value: /exact}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /x}}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {type: RegularExpression, value: \"/(unclosed\"}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /slow}}]
    timeouts: {request: 10s, backendRequest: 2s500ms}
    backendRefs: [{name: web, port: 80}]
";
    let yaml = format!(
        "{CLASSES}{WEB}{}{}",
        gateway("rauta", "", ""),
        route("demo", "web", spec)
    );
    let t = run(&yaml);
    let paths: Vec<&str> = t.config.rules.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api", "/old", "/slow"]);
    let old = &t.config.rules[1].policy;
    assert_eq!(
        old.request_redirect,
        Some(RequestRedirect {
            scheme: Some("https".into()),
            hostname: Some("new.example.com".into()),
            port: None,
            path: Some(PathRewrite::Prefix("/new".into())),
            code: 301,
        })
    );
    let api = &t.config.rules[0].policy;
    assert_eq!(api.upstream_host.as_deref(), Some("internal.example.com"));
    assert_eq!(api.path_rewrite, Some(PathRewrite::Full("/v2".into())));
    let req = api.request_headers.as_ref().expect("request headers");
    assert_eq!(req.set, [("X-Env".to_string(), "prod".to_string())]);
    assert_eq!(req.add, [("X-Trace".to_string(), "1".to_string())]);
    assert_eq!(req.remove, ["X-Debug"]);
    assert_eq!(
        api.response_headers.as_ref().map(|r| r.remove.clone()),
        Some(vec!["Server".to_string()])
    );
    let slow = &t.config.rules[2].policy.timeouts;
    assert_eq!(
        (slow.request_ms, slow.backend_request_ms),
        (Some(10_000), Some(2_500))
    );
    let errors = messages(&t.problems, Severity::Error);
    for expected in [
        "rules[2]: filters[0]: requestMirror.percent 150 is not 0-100; rule left out",
        "rules[3]: filters[0]: header Transfer-Encoding frames the message and cannot be changed; rule left out",
        "rules[4]: filters[0]: Host may be set, not added or removed; rule left out",
        "rules[5]: filters[0]: ReplacePrefixMatch needs every match of the rule to be a PathPrefix; rule left out",
        "rules[6]: matches[0]: \"/(unclosed\" is not a valid regex",
    ] {
        assert!(errors.iter().any(|e| e.contains(expected)), "{expected}: {errors:#?}");
    }
}

#[test]
fn request_mirrors_name_services_and_shares_and_a_bad_one_leaves_the_rule_out() {
    let spec = "  rules:
  - matches: [{path: {value: /copied}}]
    filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: web, port: 9000}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: web, port: 80}, percent: 25}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: web, port: 80}, fraction: {numerator: 1, denominator: 3}}}
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /missing}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: nothere, port: 80}}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /elsewhere}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web, namespace: other, port: 80}}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /both}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web, port: 80}, percent: 5, fraction: {numerator: 1}}}]
    backendRefs: [{name: web, port: 80}]
";
    let yaml = format!(
        "{CLASSES}{WEB}{}{}",
        gateway("rauta", "", ""),
        route("demo", "web", spec)
    );
    let t = run(&yaml);
    let paths: Vec<&str> = t.config.rules.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/copied"]);
    let mirrors = &t.config.rules[0].policy.mirrors;
    let seen: Vec<(String, u32, u32, bool, Option<&str>)> = mirrors
        .iter()
        .map(|m| {
            let AuthTarget::Backend(i) = m.target else {
                panic!("a Service: {m:?}");
            };
            (
                t.config.backends[i].name.clone(),
                m.numerator,
                m.denominator,
                m.body,
                m.host.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("demo/web:9000".to_string(), 1, 1, true, None),
            ("demo/web:80".to_string(), 25, 100, true, None),
            ("demo/web:80".to_string(), 1, 3, true, None),
        ]
    );
    assert!(
        mirrors.iter().all(|m| m.path.is_none()),
        "the request's own path"
    );
    let errors = messages(&t.problems, Severity::Error);
    for expected in [
        "rules[1]: filters[0]: requestMirror.backendRef: Service demo/nothere not found (BackendNotFound); rule left out",
        "rules[2]: filters[0]: requestMirror.backendRef: Service other/web is in another namespace and no ReferenceGrant there allows it (RefNotPermitted); rule left out",
        "rules[3]: filters[0]: requestMirror sets both percent and fraction; rule left out",
    ] {
        assert!(errors.iter().any(|e| e.contains(expected)), "{expected}: {errors:#?}");
    }
    let report = rauta_k8s_sync::report::render(&t.config);
    assert!(
        report.contains(
            "demo/web:80 + mirror demo/web:9000 + mirror demo/web:80 25% + mirror demo/web:80 33."
        ),
        "{report}"
    );
}

/// `Type=True/False(Reason)` of each condition.
/// `Type=Status(Reason)` of each condition.
pub(crate) fn conditions(
    c: &[rauta_k8s_sync::translate::gateway_status::Condition],
) -> Vec<String> {
    c.iter()
        .map(|c| {
            format!(
                "{}={}({})",
                c.kind,
                if c.status { "True" } else { "False" },
                c.reason
            )
        })
        .collect()
}

#[test]
fn status_says_what_was_accepted_and_why_not() {
    let listeners = "  - {name: odd, port: 9999, protocol: HTTP}\n  - {name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: missing}]}}\n";
    let routes = [
        route("demo", "good", WEB_RULE),
        route(
            "demo",
            "partly",
            "  rules:\n  - backendRefs: [{name: web, port: 80}, {name: gone, port: 80}]\n  - matches: [{path: {type: RegularExpression, value: \"(\"}}]\n    backendRefs: [{name: web, port: 80}]\n",
        ),
        route("demo", "elsewhere", WEB_RULE)
            .replace("{name: gw, namespace: demo}", "{name: gw, namespace: demo, sectionName: nope}"),
    ]
    .concat();
    let yaml = format!("{CLASSES}{WEB}{}{routes}", gateway("rauta", "", listeners));
    let t = run(&yaml);
    let s = &t.gateway_status;
    assert_eq!(
        s.classes.keys().collect::<Vec<_>>(),
        ["rauta"],
        "only our class"
    );
    let gw = &s.gateways[&("demo".to_string(), "gw".to_string())];
    assert_eq!(
        conditions(&gw.object.conditions),
        ["Accepted=True(Accepted)", "Programmed=True(Programmed)"]
    );
    let listeners: Vec<(String, i32, Vec<String>)> = gw
        .listeners
        .iter()
        .map(|l| (l.name.clone(), l.attached_routes, conditions(&l.conditions)))
        .collect();
    assert_eq!(
        listeners,
        [
            (
                "http".to_string(),
                2,
                vec![
                    "Accepted=True(Accepted)",
                    "ResolvedRefs=True(ResolvedRefs)",
                    "Conflicted=False(NoConflicts)",
                    "Programmed=True(Programmed)"
                ]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
            ),
            (
                "odd".to_string(),
                0,
                vec![
                    "Accepted=False(PortUnavailable)",
                    "ResolvedRefs=True(ResolvedRefs)",
                    "Conflicted=False(NoConflicts)",
                    "Programmed=False(Invalid)"
                ]
                .into_iter()
                .map(String::from)
                .collect()
            ),
            (
                "https".to_string(),
                2,
                vec![
                    "Accepted=True(Accepted)",
                    "ResolvedRefs=False(InvalidCertificateRef)",
                    "Conflicted=False(NoConflicts)",
                    "Programmed=True(Programmed)"
                ]
                .into_iter()
                .map(String::from)
                .collect()
            ),
        ]
    );
    let parents = |name: &str| -> Vec<String> {
        let r = &s.routes[&(RouteKind::HttpRoute, "demo".to_string(), name.to_string())];
        r.parents
            .iter()
            .flat_map(|p| conditions(&p.conditions))
            .collect()
    };
    assert_eq!(
        parents("good"),
        ["Accepted=True(Accepted)", "ResolvedRefs=True(ResolvedRefs)"]
    );
    assert_eq!(
        parents("partly"),
        [
            "Accepted=True(Accepted)",
            "PartiallyInvalid=True(UnsupportedValue)",
            "ResolvedRefs=False(BackendNotFound)"
        ]
    );
    assert_eq!(parents("elsewhere"), ["Accepted=False(NoMatchingParent)"]);
    let parent_ref = &s.routes[&(
        RouteKind::HttpRoute,
        "demo".to_string(),
        "elsewhere".to_string(),
    )]
        .parents[0]
        .parent_ref;
    assert_eq!(parent_ref["sectionName"], "nope");
    assert_eq!(parent_ref["kind"], "Gateway");
}

#[test]
fn cors_filters_become_the_rules_policy_and_bad_values_leave_the_rule_out() {
    use rauta_shared::policy::{Cors, CorsAnswers, CorsOriginMatch, CorsOrigins};
    let spec = "  rules:
  - matches: [{path: {value: /cors}}]
    filters:
    - type: CORS
      cors:
        allowOrigins: [https://www.foo.com, 'https://*.Bar.com', 'http://localhost:8080']
        allowMethods: [GET, OPTIONS]
        allowHeaders: [x-header-1, X-Header-2]
        exposeHeaders: [x-header-3]
        allowCredentials: true
        maxAge: 3600
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /open}}]
    filters: [{type: CORS, cors: {allowOrigins: ['*']}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /bad-origin}}]
    filters: [{type: CORS, cors: {allowOrigins: [https://ok.example, www.foo.com]}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /bad-path}}]
    filters: [{type: CORS, cors: {allowOrigins: ['https://foo.com/app']}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /bad-method}}]
    filters: [{type: CORS, cors: {allowOrigins: ['*'], allowMethods: ['GET POST']}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /star-and-more}}]
    filters: [{type: CORS, cors: {allowOrigins: ['*', https://a.example]}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /bad-header}}]
    filters: [{type: CORS, cors: {allowOrigins: ['*'], allowHeaders: ['x:y']}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /zero-age}}]
    filters: [{type: CORS, cors: {allowOrigins: ['*'], maxAge: 0}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /no-field}}]
    filters: [{type: CORS}]
    backendRefs: [{name: web, port: 80}]
";
    let yaml = format!(
        "{CLASSES}{WEB}{}{}",
        gateway("rauta", "", ""),
        route("demo", "web", spec)
    );
    let t = run(&yaml);
    let paths: Vec<&str> = t.config.rules.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/cors", "/open"]);
    assert_eq!(
        t.config.rules[0].policy.cors,
        Some(Cors {
            origins: CorsOrigins::List(vec![
                "https://www.foo.com".into(),
                "https://*.bar.com".into(),
                "http://localhost:8080".into(),
            ]),
            origin_match: CorsOriginMatch::Greedy,
            methods: "GET, OPTIONS".into(),
            headers: "x-header-1, X-Header-2".into(),
            expose_headers: Some("x-header-3".into()),
            credentials: true,
            max_age: 3600,
            answers: CorsAnswers::Fetch,
        })
    );
    let open = t.config.rules[1].policy.cors.as_ref().expect("cors");
    assert_eq!(
        (
            &open.origins,
            open.methods.as_str(),
            open.credentials,
            open.max_age
        ),
        (&CorsOrigins::Any, "", false, 5),
        "the spec's defaults"
    );
    let errors = bare(messages(&t.problems, Severity::Error));
    for expected in [
        "rules[2]: filters[0]: allowOrigins: \"www.foo.com\" is not * or http(s)://host[:port]; rule left out",
        "rules[3]: filters[0]: allowOrigins: \"https://foo.com/app\" has host \"foo.com/app\", not DNS labels (the first may be *); rule left out",
        "rules[4]: filters[0]: allowMethods: \"GET POST\" is not a valid method; rule left out",
        "rules[5]: filters[0]: allowOrigins: * cannot be listed with other values; rule left out",
        "rules[6]: filters[0]: allowHeaders: \"x:y\" is not a valid header name; rule left out",
        "rules[7]: filters[0]: maxAge 0 is not at least 1; rule left out",
        "rules[8]: filters[0]: type CORS without its cors field; rule left out",
    ] {
        assert!(errors.iter().any(|e| e.contains(expected)), "{expected}: {errors:#?}");
    }
    let route =
        &t.gateway_status.routes[&(RouteKind::HttpRoute, "demo".to_string(), "web".to_string())];
    let conditions: Vec<String> = route
        .parents
        .iter()
        .flat_map(|p| conditions(&p.conditions))
        .collect();
    assert!(
        conditions
            .iter()
            .any(|c| c.starts_with("PartiallyInvalid=True")),
        "{conditions:?}"
    );
}
