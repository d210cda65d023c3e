//! The canary, affinity and rate-limit annotations as translated: where a
//! canary attaches, what the verdicts say (differences from ingress-nginx
//! stated only where they show), and which bad values refuse the Ingress.

use crate::common::{ingress, messages, path, rules, run, CLASS, WEB};
use rauta_k8s_sync::problem::Severity;
use rauta_k8s_sync::translate::{Translation, Verdict};

fn verdict<'t>(t: &'t Translation, ingress: &str, key: &str) -> &'t Verdict {
    let a = t
        .annotations
        .iter()
        .find(|a| a.ingress.name == ingress)
        .unwrap_or_else(|| panic!("no report for {ingress}"));
    &a.verdicts
        .iter()
        .find(|v| v.key.ends_with(&format!("/{key}")))
        .unwrap_or_else(|| panic!("no verdict for {key}: {:#?}", a.verdicts))
        .verdict
}

fn canary_spec(host: &str, p: &str, path_type: &str) -> String {
    format!(
        ", rules: [{{host: {host}, http: {{paths: [{}]}}}}]",
        path(p, path_type, "web", "name: admin")
    )
}

#[test]
fn a_canary_lends_its_backend_to_the_main_rule_and_ignores_its_other_annotations() {
    let canary_meta = ", annotations: {nginx.ingress.kubernetes.io/canary: \"true\", nginx.ingress.kubernetes.io/canary-weight: \"20\", nginx.ingress.kubernetes.io/canary-by-header: X-Canary, nginx.ingress.kubernetes.io/enable-cors: \"true\"}";
    let yaml = format!(
        "{CLASS}{WEB}{}{}{}",
        ingress("main", "", &rules("a.example", &["/"])),
        ingress("can", canary_meta, &canary_spec("a.example", "/", "Prefix")),
        ingress("same-service", "", &rules("b.example", &["/"])),
    );
    let t = run(&yaml);
    assert!(!t.has_errors(), "{:#?}", t.problems);
    assert_eq!(t.config.rules.len(), 2, "the canary adds no rule");
    let main = t
        .config
        .rules
        .iter()
        .find(|r| r.source.name == "main")
        .expect("main rule");
    let canary = main.policy.canary.as_ref().expect("the canary attached");
    assert_eq!(canary.source.name, "can");
    assert_eq!((canary.weight, canary.weight_total), (20, 100));
    assert_eq!(canary.header.as_deref(), Some("x-canary"));
    assert_eq!(t.config.backends[canary.backend].name, "demo/web:admin");
    assert!(
        main.policy.cors.is_none(),
        "the canary's CORS is not the main rule's"
    );
    assert!(matches!(
        verdict(&t, "can", "enable-cors"),
        Verdict::Ignored(_)
    ));
    // Another Ingress on the same Service keeps its plain route: stated.
    match verdict(&t, "can", "canary") {
        Verdict::Differs(note) => assert!(note.contains("b.example"), "{note}"),
        v => panic!("{v:?}"),
    }
    assert_eq!(verdict(&t, "can", "canary-weight"), &Verdict::Honoured);
}

#[test]
fn canary_keys_without_canary_true_serve_a_main_ingress_and_a_lone_canary_is_warned() {
    let half = ", annotations: {nginx.ingress.kubernetes.io/canary-weight: \"50\"}";
    let lone = ", annotations: {nginx.ingress.kubernetes.io/canary: \"true\"}";
    let yaml = format!(
        "{CLASS}{WEB}{}{}",
        ingress("half", half, &rules("h.example", &["/"])),
        ingress("lone", lone, &canary_spec("l.example", "/", "Prefix")),
    );
    let t = run(&yaml);
    assert!(!t.has_errors(), "{:#?}", t.problems);
    assert_eq!(t.config.rules.len(), 1);
    assert!(t.config.rules[0].policy.canary.is_none());
    let warnings = messages(&t.problems, Severity::Warning).join("\n");
    assert!(
        warnings.contains("Ingress demo/half") && warnings.contains("canary is not"),
        "{warnings}"
    );
    assert!(
        warnings.contains("Ingress demo/lone") && warnings.contains("no main Ingress serves"),
        "{warnings}"
    );
}

#[test]
fn affinity_is_scoped_to_its_ingress_and_says_so_when_the_service_is_shared() {
    let sticky = ", annotations: {nginx.ingress.kubernetes.io/affinity: cookie, nginx.ingress.kubernetes.io/session-cookie-samesite: Strict, nginx.ingress.kubernetes.io/affinity-mode: balanced}";
    let yaml = format!(
        "{CLASS}{WEB}{}{}",
        ingress("sticky", sticky, &rules("s.example", &["/"])),
        ingress("plain", "", &rules("p.example", &["/"])),
    );
    let t = run(&yaml);
    let rule = t
        .config
        .rules
        .iter()
        .find(|r| r.source.name == "sticky")
        .expect("rule");
    let a = rule.policy.affinity.as_ref().expect("affinity");
    assert_eq!(a.cookie, "INGRESSCOOKIE");
    assert!(a.canary_sticky && !a.persistent && !a.change_on_failure);
    assert!(
        matches!(verdict(&t, "sticky", "affinity"), Verdict::Differs(n) if n.contains("p.example"))
    );
    assert!(matches!(
        verdict(&t, "sticky", "affinity-mode"),
        Verdict::Differs(_)
    ));
    assert_eq!(
        verdict(&t, "sticky", "session-cookie-samesite"),
        &Verdict::Honoured
    );
}

#[test]
fn limits_form_one_zone_per_ingress_and_a_bad_number_refuses_it() {
    let limited = ", annotations: {nginx.ingress.kubernetes.io/limit-rps: \"10\", nginx.ingress.kubernetes.io/limit-connections: \"3\", rauta.io/limit-status-code: \"429\"}";
    let bad = ", annotations: {nginx.ingress.kubernetes.io/limit-rpm: \"ten\"}";
    let yaml = format!(
        "{CLASS}{WEB}{}{}",
        ingress("limited", limited, &rules("l.example", &["/a", "/b"])),
        ingress("bad", bad, &rules("bad.example", &["/"])),
    );
    let t = run(&yaml);
    let errors = messages(&t.problems, Severity::Error).join("\n");
    assert!(
        errors.contains("Ingress demo/bad") && errors.contains("limit-rpm: \"ten\""),
        "{errors}"
    );
    assert!(matches!(
        verdict(&t, "bad", "limit-rpm"),
        Verdict::Refused(_)
    ));
    let limits: Vec<_> = t
        .config
        .rules
        .iter()
        .filter(|r| r.source.name == "limited")
        .map(|r| r.policy.rate_limit.clone().expect("limited"))
        .collect();
    assert_eq!(limits.len(), 2);
    assert!(limits.iter().all(|l| l.zone == "demo/limited"));
    let l = &limits[0];
    assert_eq!((l.rps, l.rpm, l.connections), (Some(10), None, Some(3)));
    assert_eq!((l.burst_multiplier, l.status), (5, 429));
    assert_eq!(
        verdict(&t, "limited", "limit-status-code"),
        &Verdict::Honoured
    );
}

#[test]
fn the_opentelemetry_annotations_become_the_rules_tracing_with_verdicts() {
    let off = ", annotations: {nginx.ingress.kubernetes.io/enable-opentelemetry: \"false\"}";
    let untrusted =
        ", annotations: {nginx.ingress.kubernetes.io/opentelemetry-trust-incoming-span: \"false\"}";
    let bad = ", annotations: {nginx.ingress.kubernetes.io/enable-opentelemetry: \"maybe\"}";
    let yaml = format!(
        "{CLASS}{WEB}{}{}{}{}",
        ingress("off", off, &rules("off.example", &["/"])),
        ingress("untrusted", untrusted, &rules("new.example", &["/"])),
        ingress("bad", bad, &rules("bad.example", &["/"])),
        ingress("plain", "", &rules("plain.example", &["/"])),
    );
    let t = run(&yaml);
    assert!(!t.has_errors(), "{:#?}", t.problems);
    let tracing = |name: &str| {
        t.config
            .rules
            .iter()
            .find(|r| r.source.name == name)
            .expect("rule")
            .policy
            .tracing
    };
    let off = tracing("off").expect("off");
    assert!(!off.enabled && off.trust_incoming);
    let untrusted = tracing("untrusted").expect("untrusted");
    assert!(untrusted.enabled && !untrusted.trust_incoming);
    assert_eq!(tracing("bad"), None, "a bad value keeps the default");
    assert_eq!(tracing("plain"), None);
    assert!(matches!(
        verdict(&t, "off", "enable-opentelemetry"),
        Verdict::Differs(n) if n.contains("--otlp-endpoint")
    ));
    assert_eq!(
        verdict(&t, "untrusted", "opentelemetry-trust-incoming-span"),
        &Verdict::Honoured
    );
    let warnings = messages(&t.problems, Severity::Warning).join("\n");
    assert!(warnings.contains("maybe"), "{warnings}");
}
