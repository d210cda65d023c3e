//! Translation of the upstream annotation families: timeouts, retries,
//! external auth (its host resolved to an IP or a Service's endpoints)
//! and error pages, with each bad value's outcome.

use crate::common::{ingress, messages, rules, run, CLASS, WEB};
use rauta_k8s_sync::problem::Severity;
use rauta_k8s_sync::translate::Translation;
use rauta_shared::policy::{AuthTarget, RoutePolicy};

/// Service auth/oauth (port 4180 -> 4181) with one ready endpoint.
const AUTH: &str = "
apiVersion: v1
kind: Service
metadata: {name: oauth, namespace: auth}
spec: {ports: [{name: http, port: 4180, targetPort: 4181}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: oauth-1, namespace: auth, labels: {kubernetes.io/service-name: oauth}}
addressType: IPv4
ports: [{name: http, port: 4181}]
endpoints: [{addresses: [10.9.0.1]}]
---
";

/// Translates one Ingress `app` with `annotations` (flow YAML pairs).
fn with(annotations: &str) -> Translation {
    let yaml = format!(
        "{CLASS}{WEB}{AUTH}{}",
        ingress(
            "app",
            &format!(", annotations: {{{annotations}}}"),
            &rules("a.example", &["/"])
        )
    );
    run(&yaml)
}

fn policy(t: &Translation) -> &RoutePolicy {
    &t.config.rules[0].policy
}

fn verdict(t: &Translation, key: &str) -> String {
    t.annotations[0]
        .verdicts
        .iter()
        .find(|v| v.key == format!("nginx.ingress.kubernetes.io/{key}"))
        .map_or("none".into(), |v| v.verdict.to_string())
}

#[test]
fn timeouts_are_whole_seconds_else_the_global_value_with_a_warning() {
    let t = with(
        "nginx.ingress.kubernetes.io/proxy-connect-timeout: \"3\", nginx.ingress.kubernetes.io/proxy-read-timeout: \"50k\"",
    );
    assert_eq!(policy(&t).timeouts.connect_ms, Some(3000));
    assert_eq!(policy(&t).timeouts.read_ms, None);
    let warnings = messages(&t.problems, Severity::Warning);
    assert!(
        warnings.iter().any(|w| w.contains("all.yaml")
            && w.contains("Ingress demo/app")
            && w.contains("proxy-read-timeout")
            && w.contains("\"50k\"")),
        "{warnings:#?}"
    );
    assert_eq!(verdict(&t, "proxy-connect-timeout"), "honoured");
    assert!(verdict(&t, "proxy-read-timeout").starts_with("ignored"));
}

#[test]
fn next_upstream_tokens_tries_and_timeout() {
    let t = with(
        "nginx.ingress.kubernetes.io/proxy-next-upstream: \"error http_503 non_idempotent\", nginx.ingress.kubernetes.io/proxy-next-upstream-tries: abc, nginx.ingress.kubernetes.io/proxy-next-upstream-timeout: \"4\"",
    );
    let retry = policy(&t).retry.as_ref().expect("a retry policy");
    assert!(retry.on_error && !retry.on_timeout && retry.non_idempotent);
    assert_eq!(retry.on_status, vec![503]);
    assert_eq!(retry.tries, 3, "a bad tries keeps the default");
    assert_eq!(retry.timeout_ms, 4000);
    assert!(messages(&t.problems, Severity::Warning)
        .iter()
        .any(|w| w.contains("proxy-next-upstream-tries")));
    assert!(verdict(&t, "proxy-next-upstream").starts_with("differs"));
    let off = with("nginx.ingress.kubernetes.io/proxy-next-upstream: \"off\"");
    let off = policy(&off).retry.as_ref().expect("off is a policy");
    assert!(!off.on_error && !off.on_timeout && off.on_status.is_empty());
}

#[test]
fn auth_url_hosts_resolve_to_an_ip_or_a_services_endpoints() {
    let t = with(
        "nginx.ingress.kubernetes.io/auth-url: \"http://oauth.auth.svc.cluster.local:4180/oauth2/auth\", nginx.ingress.kubernetes.io/auth-signin: \"https://login.example/start\", nginx.ingress.kubernetes.io/auth-response-headers: \"X-Auth-Request-User, X-Auth-Request-Email\"",
    );
    assert!(t.problems.is_empty(), "{:#?}", t.problems);
    let auth = policy(&t).auth.as_ref().expect("auth");
    let AuthTarget::Backend(i) = auth.target else {
        panic!("a Service target: {auth:?}");
    };
    let backend = &t.config.backends[i];
    assert_eq!(
        (backend.namespace.as_str(), backend.service.as_str()),
        ("auth", "oauth")
    );
    assert_eq!(backend.endpoints[0].addr.to_string(), "10.9.0.1:4181");
    assert_eq!(auth.host, "oauth.auth.svc.cluster.local:4180");
    assert_eq!(auth.path, "/oauth2/auth");
    assert_eq!(
        auth.response_headers,
        ["x-auth-request-user", "x-auth-request-email"]
    );
    assert_eq!(
        auth.signin.as_deref(),
        Some("https://login.example/start?rd=$scheme://$http_host$escaped_request_uri")
    );

    let ip = with("nginx.ingress.kubernetes.io/auth-url: \"http://10.1.2.3:9000/check\"");
    let auth = policy(&ip).auth.as_ref().expect("auth");
    assert_eq!(
        auth.target,
        AuthTarget::Addr("10.1.2.3:9000".parse().expect("addr"))
    );
}

#[test]
fn a_broken_auth_annotation_denies_the_paths_and_is_reported() {
    for annotations in [
        "nginx.ingress.kubernetes.io/auth-url: \"auth.example.com/check\"",
        "nginx.ingress.kubernetes.io/auth-url: \"http://auth.example.com/check\"",
        "nginx.ingress.kubernetes.io/auth-url: \"http://10.1.2.3/\", nginx.ingress.kubernetes.io/auth-method: FETCH",
        "nginx.ingress.kubernetes.io/auth-url: \"http://10.1.2.3/\", nginx.ingress.kubernetes.io/auth-response-headers: \"X User\"",
    ] {
        let t = with(annotations);
        assert!(policy(&t).denied.is_some(), "{annotations}");
        assert!(!t.has_errors(), "the Ingress is served, its paths answer 503");
        assert!(
            messages(&t.problems, Severity::Warning)
                .iter()
                .any(|w| w.contains("Ingress demo/app") && w.contains("answer 503")),
            "{annotations}: {:#?}",
            t.problems
        );
    }
}

#[test]
fn error_pages_need_an_existing_default_backend() {
    let t = with(
        "nginx.ingress.kubernetes.io/custom-http-errors: \"404, 503\", nginx.ingress.kubernetes.io/default-backend: web",
    );
    let pages = policy(&t).error_pages.as_ref().expect("error pages");
    assert_eq!(pages.codes, vec![404, 503]);
    let backend = &t.config.backends[pages.backend];
    assert_eq!(backend.service, "web");
    assert_eq!(backend.port.to_string(), "80", "the Service's first port");

    let missing = with("nginx.ingress.kubernetes.io/default-backend: nothere");
    assert!(policy(&missing).error_pages.is_none());
    assert!(messages(&missing.problems, Severity::Warning)
        .iter()
        .any(|w| w.contains("default-backend") && w.contains("demo/nothere")));

    let alone = with("nginx.ingress.kubernetes.io/custom-http-errors: \"404\"");
    assert!(policy(&alone).error_pages.is_none());
    assert!(verdict(&alone, "custom-http-errors").starts_with("ignored"));
}

#[test]
fn mirror_targets_resolve_like_auth_urls_and_keep_request_uri() {
    let t = with(
        "nginx.ingress.kubernetes.io/mirror-target: \"http://oauth.auth.svc:4180/copy$request_uri\", nginx.ingress.kubernetes.io/mirror-request-body: \"off\"",
    );
    assert!(!t.has_errors(), "{:#?}", t.problems);
    let mirror = &policy(&t).mirrors[0];
    let AuthTarget::Backend(i) = mirror.target else {
        panic!("a Service target: {mirror:?}");
    };
    let backend = &t.config.backends[i];
    assert_eq!(
        (backend.namespace.as_str(), backend.service.as_str()),
        ("auth", "oauth")
    );
    assert_eq!(backend.endpoints[0].addr.to_string(), "10.9.0.1:4181");
    assert_eq!(mirror.path.as_deref(), Some("/copy$request_uri"));
    assert_eq!(
        mirror.host.as_deref(),
        Some("oauth.auth.svc:4180"),
        "the target's authority"
    );
    assert_eq!(
        (mirror.numerator, mirror.denominator),
        (1, 1),
        "every request"
    );
    assert!(!mirror.body, "mirror-request-body: off");
    assert!(verdict(&t, "mirror-target").starts_with("differs"));
    assert!(verdict(&t, "mirror-request-body").starts_with("honoured"));

    let ip = with(
        "nginx.ingress.kubernetes.io/mirror-target: \"http://10.1.2.3:9000$request_uri\", nginx.ingress.kubernetes.io/mirror-host: shadow.example",
    );
    let mirror = &policy(&ip).mirrors[0];
    assert_eq!(
        mirror.target,
        AuthTarget::Addr("10.1.2.3:9000".parse().expect("addr"))
    );
    assert_eq!(mirror.host.as_deref(), Some("shadow.example"));
    assert_eq!(mirror.path.as_deref(), Some("$request_uri"));
    assert!(mirror.body, "on by default");
}

#[test]
fn a_bad_mirror_annotation_is_reported_and_the_ingress_served_without_it() {
    for annotations in [
        "nginx.ingress.kubernetes.io/mirror-target: \"mirror.example.com/\"",
        "nginx.ingress.kubernetes.io/mirror-target: \"http://mirror.example.com/\"",
        "nginx.ingress.kubernetes.io/mirror-target: \"http://10.1.2.3$uri\"",
        "nginx.ingress.kubernetes.io/mirror-target: \"https://10.1.2.3/\"",
        "nginx.ingress.kubernetes.io/mirror-target: \"http://10.1.2.3/\", nginx.ingress.kubernetes.io/mirror-host: \"a b\"",
    ] {
        let t = with(annotations);
        assert!(!t.has_errors(), "{annotations}: the Ingress is served");
        assert!(policy(&t).mirrors.is_empty(), "{annotations}");
        assert!(policy(&t).denied.is_none(), "{annotations}");
        assert!(
            messages(&t.problems, Severity::Warning)
                .iter()
                .any(|w| w.contains("Ingress demo/app") && w.contains("mirror-")),
            "{annotations}: {:#?}",
            t.problems
        );
    }
    let odd = with(
        "nginx.ingress.kubernetes.io/mirror-target: \"http://10.1.2.3/\", nginx.ingress.kubernetes.io/mirror-request-body: maybe",
    );
    assert!(
        policy(&odd).mirrors[0].body,
        "a bad value keeps the default"
    );
    assert!(messages(&odd.problems, Severity::Warning)
        .iter()
        .any(|w| w.contains("mirror-request-body")));
}
