//! GRPCRoute and TLSRoute translation: method matches become paths on the
//! same tables as HTTPRoutes with h2c backends; TLSRoutes become
//! passthrough hosts on TLS passthrough listeners; listeners take the
//! route kinds of their protocol, and the status says why one did not.

use crate::common::{ingress, messages, objects, rules, CLASS, WEB};
use crate::gateway::conditions;
use rauta_k8s_sync::problem::Severity;
use rauta_k8s_sync::translate::{translate, Translation};
use rauta_k8s_sync::ClassSelector;
use rauta_shared::config::{HostMatch, PathType, RouteKind, StringMatch, UpstreamProtocol};

const CLASSES: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta}
spec: {controllerName: rauta.io/gateway-controller}
---
";

/// Gateway demo/gw with an HTTP listener on 80 and a TLS passthrough
/// listener on 443, plus the `more` listener lines.
fn gateway(more: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n\
         metadata: {{name: gw, namespace: demo}}\n\
         spec:\n  gatewayClassName: rauta\n  listeners:\n  \
         - {{name: http, port: 80, protocol: HTTP}}\n  \
         - {{name: pass, port: 443, protocol: TLS, tls: {{mode: Passthrough}}}}\n{more}---\n"
    )
}

/// A route of `kind` demo/`name` attached to demo/gw with `spec` lines.
fn route(kind: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: {kind}\n\
         metadata: {{name: {name}, namespace: demo}}\n\
         spec:\n  parentRefs: [{{name: gw}}]\n{spec}---\n"
    )
}

fn run(yaml: &str) -> Translation {
    let sel = ClassSelector {
        http_port: Some(8080),
        tls_ports: vec![8443],
        ..ClassSelector::default()
    };
    translate(&objects(yaml), &sel)
}

/// `Type=Status(Reason)` of each condition of `kind` demo/`name`'s first parent.
fn route_conditions(t: &Translation, kind: RouteKind, name: &str) -> Vec<String> {
    let r = &t.gateway_status.routes[&(kind, "demo".to_string(), name.to_string())];
    conditions(&r.parents[0].conditions)
}

#[test]
fn grpc_method_matches_become_paths_with_h2c_backends() {
    let grpc = route(
        "GRPCRoute",
        "echo",
        "  hostnames: [grpc.example.com]\n  rules:\n\
         \x20 - matches:\n    - method: {service: rauta.test.Echo, method: Unary}\n      headers: [{name: X-Version, value: v2}]\n\
         \x20   backendRefs: [{name: web, port: 80}]\n\
         \x20 - matches:\n    - method: {service: rauta.test.Echo}\n    - method: {method: Check}\n\
         \x20   backendRefs: [{name: web, port: 80}]\n\
         \x20 - matches:\n    - method: {type: RegularExpression, service: 'a\\..*'}\n\
         \x20   backendRefs: [{name: web, port: 80}]\n",
    );
    let t = run(&format!("{CLASSES}{WEB}{}{grpc}", gateway("")));
    assert!(
        messages(&t.problems, Severity::Warning).is_empty(),
        "{:#?}",
        t.problems
    );
    let rules: Vec<(String, PathType, usize)> = t
        .config
        .rules
        .iter()
        .map(|r| {
            let headers = r.conditions.as_ref().map_or(0, |c| c.headers.len());
            (r.path.clone(), r.path_type, headers)
        })
        .collect();
    assert_eq!(
        rules,
        [
            (
                "/(?:a\\..*)/(?:[^/]+)".to_string(),
                PathType::RegularExpression,
                0
            ),
            ("/[^/]+/Check".to_string(), PathType::RegularExpression, 0),
            ("/rauta.test.Echo".to_string(), PathType::Prefix, 0),
            ("/rauta.test.Echo/Unary".to_string(), PathType::Exact, 1),
        ]
    );
    let exact = &t.config.rules[3];
    assert_eq!(exact.host, HostMatch::Exact("grpc.example.com".into()));
    assert_eq!(exact.source.kind, RouteKind::GrpcRoute);
    let header = &exact.conditions.as_ref().expect("conditions").headers[0];
    assert_eq!(
        (header.name.as_str(), &header.value),
        ("x-version", &StringMatch::Exact("v2".into()))
    );
    // The pods are spoken to with HTTP/2 prior knowledge.
    for r in &t.config.rules {
        let backend = &t.config.backends[r.backend];
        assert_eq!(backend.protocol, UpstreamProtocol::Grpc, "{}", r.path);
        assert_eq!(backend.endpoints.len(), 2, "web's ready endpoints");
    }
    assert_eq!(
        route_conditions(&t, RouteKind::GrpcRoute, "echo"),
        ["Accepted=True(Accepted)", "ResolvedRefs=True(ResolvedRefs)"]
    );
}

#[test]
fn bad_grpc_rules_are_left_out_and_reported() {
    let grpc = route(
        "GRPCRoute",
        "bad",
        "  rules:\n\
         \x20 - matches: [{method: {service: a/b, method: C}}]\n    backendRefs: [{name: web, port: 80}]\n\
         \x20 - matches: [{method: {type: Prefix, service: a}}]\n    backendRefs: [{name: web, port: 80}]\n\
         \x20 - filters: [{type: URLRewrite, urlRewrite: {hostname: x.example.com}}]\n    backendRefs: [{name: web, port: 80}]\n\
         \x20 - matches: [{method: {}}]\n    backendRefs: [{name: web, port: 80}]\n\
         \x20 - matches: [{method: {service: ok.Svc}}]\n    backendRefs: [{name: web, port: 80}]\n",
    );
    let t = run(&format!("{CLASSES}{WEB}{}{grpc}", gateway("")));
    let errors = messages(&t.problems, Severity::Error);
    for want in [
        "rules[0]: matches[0]: service \"a/b\" is not a valid gRPC service name",
        "rules[1]: matches[0]: method match type \"Prefix\" is not Exact or RegularExpression",
        "rules[2]: filters[0]: filter \"URLRewrite\" is not a GRPCRoute filter",
        "rules[3]: matches[0]: method match without service or method",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{want}: {errors:#?}"
        );
    }
    assert_eq!(t.config.rules.len(), 1, "the good rule is served");
    assert_eq!(
        route_conditions(&t, RouteKind::GrpcRoute, "bad"),
        [
            "Accepted=True(Accepted)",
            "PartiallyInvalid=True(UnsupportedValue)",
            "ResolvedRefs=True(ResolvedRefs)"
        ]
    );
}

#[test]
fn tls_routes_become_passthrough_hosts_on_passthrough_listeners() {
    let tls = route(
        "TLSRoute",
        "pass",
        "  hostnames: [pass.example.com, '*.wild.example.com']\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
    );
    let missing = route(
        "TLSRoute",
        "missing",
        "  hostnames: [gone.example.com]\n  rules:\n  - backendRefs: [{name: gone, port: 443}]\n",
    );
    // An HTTPRoute reaches the HTTP listener only; a TLSRoute the
    // passthrough listener only.
    let http = route(
        "HTTPRoute",
        "web",
        "  hostnames: [pass.example.com]\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
    );
    let t = run(&format!(
        "{CLASSES}{WEB}{}{tls}{missing}{http}",
        gateway("")
    ));
    let hosts: Vec<(HostMatch, usize)> = t
        .config
        .passthrough
        .iter()
        .map(|p| (p.host.clone(), t.config.backends[p.backend].endpoints.len()))
        .collect();
    assert_eq!(
        hosts,
        [
            (HostMatch::Exact("gone.example.com".into()), 0),
            (HostMatch::Exact("pass.example.com".into()), 2),
            (HostMatch::Suffix("wild.example.com".into()), 2),
        ]
    );
    assert!(t.config.passthrough[1].source.kind == RouteKind::TlsRoute);
    assert_eq!(
        route_conditions(&t, RouteKind::TlsRoute, "pass"),
        ["Accepted=True(Accepted)", "ResolvedRefs=True(ResolvedRefs)"]
    );
    assert_eq!(
        route_conditions(&t, RouteKind::TlsRoute, "missing"),
        [
            "Accepted=True(Accepted)",
            "ResolvedRefs=False(BackendNotFound)"
        ]
    );
    let rule = &t.config.rules[0];
    assert_eq!(rule.conditions.as_ref().and_then(|c| c.tls), Some(false));
    let gw = &t.gateway_status.gateways[&("demo".to_string(), "gw".to_string())];
    let kinds: Vec<(String, i32, Vec<RouteKind>)> = gw
        .listeners
        .iter()
        .map(|l| (l.name.clone(), l.attached_routes, l.supported_kinds.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "http".to_string(),
                1,
                vec![RouteKind::HttpRoute, RouteKind::GrpcRoute]
            ),
            ("pass".to_string(), 2, vec![RouteKind::TlsRoute]),
        ]
    );
}

#[test]
fn listeners_take_their_protocols_route_kinds() {
    let more = "  - {name: term, port: 443, protocol: TLS, hostname: t.example.com, tls: {mode: Terminate, certificateRefs: [{name: c}]}}\n\
                \x20 - {name: kinds, port: 8443, protocol: TLS, tls: {mode: Passthrough}, allowedRoutes: {kinds: [{kind: TLSRoute}, {kind: TCPRoute}]}}\n";
    let tls_on_http = route(
        "TLSRoute",
        "t1",
        "  hostnames: [a.example.com]\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
    )
    .replace("[{name: gw}]", "[{name: gw, sectionName: http}]");
    let http_on_tls = route(
        "HTTPRoute",
        "h1",
        "  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
    )
    .replace("[{name: gw}]", "[{name: gw, sectionName: pass}]");
    let no_host = route(
        "TLSRoute",
        "t2",
        "  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
    )
    .replace("[{name: gw}]", "[{name: gw, sectionName: pass}]");
    let t = run(&format!(
        "{CLASSES}{WEB}{}{tls_on_http}{http_on_tls}{no_host}",
        gateway(more)
    ));
    assert_eq!(
        route_conditions(&t, RouteKind::TlsRoute, "t1"),
        ["Accepted=False(NotAllowedByListeners)"]
    );
    assert_eq!(
        route_conditions(&t, RouteKind::HttpRoute, "h1"),
        ["Accepted=False(NotAllowedByListeners)"]
    );
    let warnings = messages(&t.problems, Severity::Warning);
    assert!(
        warnings.iter().any(|w| w.contains("TLSRoute demo/t2")
            && w.contains("a passthrough route needs a hostname")),
        "{warnings:#?}"
    );
    let gw = &t.gateway_status.gateways[&("demo".to_string(), "gw".to_string())];
    let of = |name: &str| {
        let l = gw.listeners.iter().find(|l| l.name == name).expect(name);
        conditions(&l.conditions)
    };
    assert_eq!(of("term")[0], "Accepted=False(UnsupportedValue)");
    assert_eq!(of("kinds")[1], "ResolvedRefs=False(InvalidRouteKinds)");
    assert!(
        t.config.passthrough.is_empty(),
        "{:?}",
        t.config.passthrough
    );
}

#[test]
fn an_ingress_ssl_passthrough_wins_a_host_over_a_tls_route() {
    let tls = route(
        "TLSRoute",
        "pass",
        "  hostnames: [pass.example.com]\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
    );
    let ing = ingress(
        "secure",
        ", annotations: {nginx.ingress.kubernetes.io/ssl-passthrough: \"true\"}",
        &rules("pass.example.com", &["/"]),
    );
    let t = run(&format!("{CLASSES}{CLASS}{WEB}{}{tls}{ing}", gateway("")));
    assert_eq!(t.config.passthrough.len(), 1);
    assert_eq!(t.config.passthrough[0].source.kind, RouteKind::Ingress);
    let warnings = messages(&t.problems, Severity::Warning);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("TLSRoute demo/pass") && w.contains("wins over the TLSRoute")),
        "{warnings:#?}"
    );
}

#[test]
fn listeners_rauta_cannot_tell_apart_are_conflicted_and_not_served() {
    // `http` (port 80, no hostname) is in `gateway`; these share its port
    // or each other's.
    let more = "  - {name: plain-twin, port: 80, protocol: HTTP}\n\
                \x20 - {name: tls-on-80, port: 80, protocol: TLS, hostname: x.example.com, tls: {mode: Passthrough}}\n\
                \x20 - {name: a, port: 8443, protocol: HTTPS, hostname: a.example.com, tls: {certificateRefs: [{name: c}]}}\n\
                \x20 - {name: a-pass, port: 8443, protocol: TLS, hostname: A.example.com, tls: {mode: Passthrough}}\n";
    let t = run(&format!("{CLASSES}{WEB}{}", gateway(more)));
    let gw = &t.gateway_status.gateways[&("demo".to_string(), "gw".to_string())];
    let of = |name: &str| {
        let l = gw.listeners.iter().find(|l| l.name == name).expect(name);
        conditions(&l.conditions)
    };
    for (name, reason) in [
        ("http", "ProtocolConflict"),
        ("plain-twin", "ProtocolConflict"),
        ("tls-on-80", "ProtocolConflict"),
        ("a", "HostnameConflict"),
        ("a-pass", "HostnameConflict"),
    ] {
        assert_eq!(
            of(name),
            [
                format!("Accepted=False({reason})"),
                "ResolvedRefs=True(ResolvedRefs)".to_string(),
                format!("Conflicted=True({reason})"),
                format!("Programmed=False({reason})"),
            ],
            "{name}"
        );
    }
    // The passthrough listener on 443 is distinct and served.
    assert_eq!(of("pass")[2], "Conflicted=False(NoConflicts)");
    let accepted = &gw.object.conditions[0];
    assert_eq!(
        (accepted.status, accepted.reason.as_str()),
        (true, "ListenersNotValid")
    );
    assert!(
        accepted
            .message
            .contains("http, plain-twin, tls-on-80, a, a-pass"),
        "{}",
        accepted.message
    );
    let warnings = messages(&t.problems, Severity::Warning);
    assert!(
        warnings.iter().any(|w| w.contains(
            "listener \"a\": port 8443 also has listener \"a-pass\" with the same hostname"
        )),
        "{warnings:#?}"
    );
}

#[test]
fn of_an_httproute_and_a_grpcroute_sharing_a_host_the_older_is_served() {
    let with_age = |doc: String, at: &str| {
        doc.replace(
            "namespace: demo}",
            &format!("namespace: demo, creationTimestamp: '{at}'}}"),
        )
    };
    let http = with_age(
        route(
            "HTTPRoute",
            "web",
            "  hostnames: [api.example.com]\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
        ),
        "2026-01-01T00:00:00Z",
    );
    let grpc = with_age(
        route(
            "GRPCRoute",
            "calls",
            "  hostnames: ['*.example.com']\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
        ),
        "2026-02-01T00:00:00Z",
    );
    // Another host: no conflict.
    let other = route(
        "GRPCRoute",
        "elsewhere",
        "  hostnames: [grpc.example.net]\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
    );
    let t = run(&format!("{CLASSES}{WEB}{}{http}{grpc}{other}", gateway("")));
    assert_eq!(
        route_conditions(&t, RouteKind::HttpRoute, "web"),
        ["Accepted=True(Accepted)", "ResolvedRefs=True(ResolvedRefs)"]
    );
    assert_eq!(
        route_conditions(&t, RouteKind::GrpcRoute, "calls"),
        ["Accepted=False(Conflicted)"]
    );
    assert_eq!(
        route_conditions(&t, RouteKind::GrpcRoute, "elsewhere"),
        ["Accepted=True(Accepted)", "ResolvedRefs=True(ResolvedRefs)"]
    );
    let kinds: Vec<(RouteKind, String)> = t
        .config
        .rules
        .iter()
        .map(|r| (r.source.kind, r.source.name.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (RouteKind::HttpRoute, "web".to_string()),
            (RouteKind::GrpcRoute, "elsewhere".to_string())
        ]
    );
    let warnings = messages(&t.problems, Severity::Warning);
    assert!(
        warnings.iter().any(|w| w.contains("GRPCRoute demo/calls")
            && w.contains("HTTPRoute demo/web, which is older")),
        "{warnings:#?}"
    );
}

/// ConfigMap demo/`name` with `ca.crt`.
fn ca_map(name: &str, pem: &str) -> String {
    rauta_testkit::manifests::config_map("demo", name, &[("ca.crt", pem)]) + "---\n"
}

/// BackendTLSPolicy demo/`name` for Service web (`section`: a port name).
fn policy(name: &str, section: Option<&str>, validation: &str) -> String {
    let section = section.map_or(String::new(), |s| format!(", sectionName: {s}"));
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\n\
         metadata: {{name: {name}, namespace: demo}}\n\
         spec:\n  targetRefs: [{{group: '', kind: Service, name: web{section}}}]\n  validation: {validation}\n---\n"
    )
}

#[test]
fn a_backend_tls_policy_turns_on_verified_tls_to_its_service() {
    let (ca, _) = rauta_testkit::tls::self_signed(&["ca.example"]);
    let http = route(
        "HTTPRoute",
        "web",
        "  hostnames: [web.example.com]\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
    );
    let grpc = route(
        "GRPCRoute",
        "calls",
        "  hostnames: [grpc.example.com]\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
    );
    let good = policy(
        "good",
        Some("http"),
        "{caCertificateRefs: [{group: '', kind: ConfigMap, name: ca}], hostname: web.internal}",
    );
    // Younger, for the same Service without a section: the port's wins.
    let whole = policy(
        "whole",
        None,
        "{caCertificateRefs: [{group: '', kind: ConfigMap, name: missing}], hostname: x.internal}",
    )
    .replace(
        "namespace: demo}",
        "namespace: demo, creationTimestamp: '2026-06-01T00:00:00Z'}",
    );
    let t = run(&format!(
        "{CLASSES}{WEB}{}{}{http}{grpc}{good}{whole}",
        gateway(""),
        ca_map("ca", &ca)
    ));
    for r in &t.config.rules {
        let b = &t.config.backends[r.backend];
        let want = match r.source.kind {
            RouteKind::GrpcRoute => UpstreamProtocol::Grpcs,
            _ => UpstreamProtocol::Https,
        };
        assert_eq!(b.protocol, want, "{}", r.source);
        let tls = b.tls.as_ref().expect("tls");
        assert!(tls.verify && tls.sni, "{tls:?}");
        assert_eq!(tls.server_name.as_deref(), Some("web.internal"));
        assert_eq!(tls.ca_pem.as_deref(), Some(ca.as_str()));
    }
    let s = &t.gateway_status.policies;
    let of = |name: &str| -> Vec<String> {
        s.get(&("demo".to_string(), name.to_string()))
            .map(|p| conditions(&p.parents[0].conditions))
            .unwrap_or_default()
    };
    assert_eq!(
        of("good"),
        ["Accepted=True(Accepted)", "ResolvedRefs=True(ResolvedRefs)"]
    );
    assert_eq!(
        s[&("demo".to_string(), "good".to_string())].parents[0].parent_ref["name"],
        "gw"
    );
    // The whole-Service policy is used by no backend here: no status.
    assert!(of("whole").is_empty());
    let warnings = messages(&t.problems, Severity::Warning);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("BackendTLSPolicy demo/whole")
                && w.contains("ConfigMap demo/missing not found")),
        "{warnings:#?}"
    );
}

#[test]
fn a_broken_backend_tls_policy_verifies_against_nothing() {
    let http = route(
        "HTTPRoute",
        "web",
        "  hostnames: [web.example.com]\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n",
    );
    let cases = [
        (
            "{caCertificateRefs: [{group: '', kind: ConfigMap, name: missing}], hostname: web.internal}",
            "Accepted=False(NoValidCACertificate)",
            "ResolvedRefs=False(InvalidCACertificateRef)",
        ),
        (
            "{caCertificateRefs: [{group: '', kind: Secret, name: ca}], hostname: web.internal}",
            "Accepted=False(NoValidCACertificate)",
            "ResolvedRefs=False(InvalidKind)",
        ),
        (
            "{wellKnownCACertificates: Mozilla, hostname: web.internal}",
            "Accepted=False(Invalid)",
            "ResolvedRefs=True(ResolvedRefs)",
        ),
        (
            "{caCertificateRefs: [{group: '', kind: ConfigMap, name: junk}], hostname: web.internal}",
            "Accepted=False(NoValidCACertificate)",
            "ResolvedRefs=False(InvalidCACertificateRef)",
        ),
    ];
    for (validation, accepted, resolved) in cases {
        let p = policy("p", None, validation);
        let junk = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: junk, namespace: demo}\ndata: {ca.crt: nonsense}\n---\n";
        let t = run(&format!("{CLASSES}{WEB}{}{junk}{http}{p}", gateway("")));
        let b = &t.config.backends[t.config.rules[0].backend];
        let tls = b.tls.as_ref().expect("tls stays on");
        assert!(tls.verify && tls.ca_pem.is_none(), "{validation}: {tls:?}");
        let policy = &t.gateway_status.policies[&("demo".to_string(), "p".to_string())];
        let got = conditions(&policy.parents[0].conditions);
        assert_eq!(got, [accepted, resolved], "{validation}");
    }
}

#[test]
fn a_grpc_request_mirror_is_reported_and_ignored() {
    let grpc = route(
        "GRPCRoute",
        "mirrored",
        "  hostnames: [grpc.example.com]\n  rules:\n\
         \x20 - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web, port: 80}}}]\n\
         \x20   backendRefs: [{name: web, port: 80}]\n",
    );
    let t = run(&format!("{CLASSES}{WEB}{}{grpc}", gateway("")));
    assert_eq!(t.config.rules.len(), 1, "the rule is served");
    assert!(t.config.rules[0].policy.mirrors.is_empty());
    assert!(
        messages(&t.problems, Severity::Warning)
            .iter()
            .any(|w| w.contains("GRPCRoute demo/mirrored") && w.contains("RequestMirror")),
        "{:#?}",
        t.problems
    );
}
