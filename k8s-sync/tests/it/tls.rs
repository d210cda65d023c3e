//! `spec.tls` translation: Secrets, certificate checks, conflicts and the
//! HTTPS redirect flags.

use crate::common::{ingress, messages, rules, run, CLASS, WEB};
use rauta_k8s_sync::problem::Severity;
use rauta_shared::config::{HostMatch, RouteConfig, UpstreamProtocol, UpstreamTls};
use rauta_testkit::tls::self_signed as cert;
use rauta_testkit::tls_secret;

/// A `kubernetes.io/tls` Secret demo/`name` written with `stringData`.
fn secret(name: &str, crt: &str, key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: demo}}\n\
         type: kubernetes.io/tls\nstringData:\n  tls.crt: {crt:?}\n  tls.key: {key:?}\n---\n"
    )
}

/// `, tls: [{hosts: [...], secretName: s}]`.
fn tls(entries: &[(&[&str], &str)]) -> String {
    let entries: Vec<String> = entries
        .iter()
        .map(|(hosts, secret)| format!("{{hosts: {hosts:?}, secretName: {secret}}}"))
        .collect();
    format!(", tls: [{}]", entries.join(", "))
}

/// (host, secret name) pairs of the configuration's certificates.
fn served(config: &RouteConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in &config.tls {
        for h in &c.hosts {
            let h = match h {
                HostMatch::Exact(h) => h.clone(),
                HostMatch::Wildcard(h) | HostMatch::Suffix(h) => format!("*.{h}"),
                HostMatch::Any => "*".into(),
            };
            out.push((h, c.secret.name.clone()));
        }
    }
    out.sort();
    out
}

#[test]
fn hosts_get_their_secrets_and_bad_ones_only_cost_their_hosts() {
    let (a_crt, a_key) = cert(&["a.example.com"]);
    let (w_crt, w_key) = cert(&["*.wild.example.com"]);
    let (_, stray_key) = cert(&["b.example.com"]);
    let (b_crt, _) = cert(&["b.example.com"]);
    let yaml = [
        CLASS.to_string(),
        WEB.to_string(),
        secret("a", &a_crt, &a_key),
        tls_secret("demo", "w", &w_crt, &w_key) + "---\n",
        secret("mismatch", &b_crt, &stray_key),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: opaque, namespace: demo}\ntype: Opaque\nstringData: {tls.crt: x, tls.key: y}\n---\n".to_string(),
        ingress(
            "web",
            "",
            &format!(
                "{}{}",
                rules("a.example.com", &["/"]),
                tls(&[
                    (&["a.example.com"], "a"),
                    (&["*.wild.example.com"], "w"),
                    (&["b.example.com"], "mismatch"),
                    (&["c.example.com"], "missing"),
                    (&["d.example.com"], "opaque"),
                    (&["x.other.example.com"], "a"),
                ])
            ),
        ),
    ]
    .concat();
    let t = run(&yaml);
    assert!(!t.has_errors(), "{:#?}", t.problems);
    assert_eq!(
        served(&t.config),
        vec![
            ("*.wild.example.com".to_string(), "w".to_string()),
            ("a.example.com".to_string(), "a".to_string()),
        ]
    );
    let a = t
        .config
        .tls
        .iter()
        .find(|c| c.secret.name == "a")
        .expect("a");
    assert_eq!(a.cert_pem, a_crt);
    assert_eq!(a.source.to_string(), "demo/web");
    assert!(a.not_after > 1_700_000_000);
    let warnings = messages(&t.problems, Severity::Warning).join("\n");
    for expected in [
        "Secret demo/mismatch: tls.key does not match the certificate in tls.crt; not used for Ingress demo/web (b.example.com get the default certificate)",
        "Ingress demo/web: spec.tls[3]: Secret demo/missing not found; c.example.com get the default certificate",
        "Secret demo/opaque: type is Opaque, not kubernetes.io/tls",
        "the certificate in Secret demo/a does not cover host x.other.example.com",
    ] {
        assert!(warnings.contains(expected), "missing {expected:?} in:\n{warnings}");
    }
    // The bad Secret's problem names its file.
    assert!(t
        .problems
        .iter()
        .any(|p| p.object.as_deref() == Some("Secret demo/mismatch") && p.file.is_some()));
}

#[test]
fn the_oldest_ingress_keeps_a_contested_host() {
    let (old_crt, old_key) = cert(&["a.example.com"]);
    let (new_crt, new_key) = cert(&["a.example.com"]);
    let yaml = [
        CLASS.to_string(),
        WEB.to_string(),
        secret("old", &old_crt, &old_key),
        secret("new", &new_crt, &new_key),
        ingress(
            "newer",
            ", creationTimestamp: \"2024-02-01T00:00:00Z\"",
            &format!(
                "{}{}",
                rules("a.example.com", &["/n"]),
                tls(&[(&["a.example.com"], "new")])
            ),
        ),
        ingress(
            "older",
            ", creationTimestamp: \"2024-01-01T00:00:00Z\"",
            &format!(
                "{}{}",
                rules("a.example.com", &["/o"]),
                tls(&[(&["a.example.com"], "old")])
            ),
        ),
    ]
    .concat();
    let t = run(&yaml);
    assert_eq!(
        served(&t.config),
        vec![("a.example.com".to_string(), "old".to_string())]
    );
    let warnings = messages(&t.problems, Severity::Warning).join("\n");
    assert!(
        warnings.contains("Ingress demo/newer: spec.tls[0]: TLS host a.example.com already gets Secret demo/old from Ingress demo/older; Secret demo/new ignored for it"),
        "{warnings}"
    );
}

#[test]
fn redirect_flags_follow_tls_and_annotations() {
    let (crt, key) = cert(&["a.example.com", "b.example.com"]);
    let with_tls = |name: &str, host: &str, annotations: &str| {
        ingress(
            name,
            annotations,
            &format!("{}{}", rules(host, &["/"]), tls(&[(&[host], "s")])),
        )
    };
    let yaml = [
        CLASS.to_string(),
        WEB.to_string(),
        secret("s", &crt, &key),
        with_tls("on", "a.example.com", ""),
        with_tls(
            "off",
            "b.example.com",
            ", annotations: {nginx.ingress.kubernetes.io/ssl-redirect: \"false\"}",
        ),
        ingress("plain", "", &rules("c.example.com", &["/"])),
        ingress(
            "forced",
            ", annotations: {rauta.io/force-ssl-redirect: \"true\"}",
            &rules("d.example.com", &["/"]),
        ),
    ]
    .concat();
    let t = run(&yaml);
    assert!(!t.has_errors(), "{:#?}", t.problems);
    let redirects: Vec<(String, bool)> = t
        .config
        .rules
        .iter()
        .map(|r| (r.source.name.clone(), r.ssl_redirect))
        .collect();
    assert_eq!(
        redirects,
        vec![
            ("on".to_string(), true),
            ("off".to_string(), false),
            ("plain".to_string(), false),
            ("forced".to_string(), true),
        ]
    );
    let bad = run(&[
        CLASS,
        WEB,
        &ingress(
            "bad",
            ", annotations: {nginx.ingress.kubernetes.io/ssl-redirect: \"maybe\"}",
            &rules("a.example.com", &["/"]),
        ),
    ]
    .concat());
    // As ingress-nginx: a value that is not a boolean falls back to the default, with a warning.
    assert!(!bad.has_errors(), "{:#?}", bad.problems);
    let warnings = messages(&bad.problems, Severity::Warning).join("\n");
    assert!(
        warnings
            .contains("nginx.ingress.kubernetes.io/ssl-redirect: \"maybe\" is not true or false"),
        "{warnings}"
    );
    assert_eq!(bad.config.rules.len(), 1);
}

/// An Opaque Secret demo/`name` with the given `stringData` fields.
fn opaque(name: &str, fields: &[(&str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: demo}}\ntype: Opaque\nstringData:\n"
    );
    for (k, v) in fields {
        y.push_str(&format!("  {k}: {v:?}\n"));
    }
    y + "---\n"
}

#[test]
fn backend_tls_takes_the_proxy_ssl_annotations_and_secret() {
    let (ca, _) = cert(&["ca.example"]);
    let (crt, key) = cert(&["client.example"]);
    let (_, other_key) = cert(&["other.example"]);
    let meta = |protocol: &str, extra: &str| {
        format!(
            ", annotations: {{nginx.ingress.kubernetes.io/backend-protocol: {protocol}{extra}}}"
        )
    };
    let full = ", nginx.ingress.kubernetes.io/proxy-ssl-verify: \"on\", \
        nginx.ingress.kubernetes.io/proxy-ssl-secret: demo/upstream, \
        nginx.ingress.kubernetes.io/proxy-ssl-name: web.internal, \
        nginx.ingress.kubernetes.io/proxy-ssl-server-name: \"on\"";
    let yaml = [
        CLASS.to_string(),
        WEB.to_string(),
        opaque("upstream", &[("ca.crt", &ca), ("tls.crt", &crt), ("tls.key", &key)]),
        opaque("mismatch", &[("ca.crt", "junk"), ("tls.crt", &crt), ("tls.key", &other_key)]),
        ingress("a", &meta("HTTPS", full), &rules("a.example", &["/"])),
        ingress("b", &meta("GRPCS", ""), &rules("b.example", &["/"])),
        ingress(
            "c",
            &meta("HTTPS", ", nginx.ingress.kubernetes.io/proxy-ssl-verify: \"on\", nginx.ingress.kubernetes.io/proxy-ssl-secret: mismatch"),
            &rules("c.example", &["/"]),
        ),
        ingress(
            "d",
            &meta("HTTP", ", nginx.ingress.kubernetes.io/proxy-ssl-verify: \"on\""),
            &rules("d.example", &["/"]),
        ),
    ]
    .concat();
    let t = run(&yaml);
    assert!(!t.has_errors(), "{:#?}", t.problems);
    let backend = |host: &str| {
        let rule = t
            .config
            .rules
            .iter()
            .find(|r| r.host == HostMatch::Exact(host.into()))
            .expect("rule");
        &t.config.backends[rule.backend]
    };
    let a = backend("a.example");
    assert_eq!(a.protocol, UpstreamProtocol::Https);
    let tls = a.tls.as_ref().expect("tls settings");
    assert!(tls.verify && tls.sni);
    assert_eq!(tls.server_name.as_deref(), Some("web.internal"));
    assert_eq!(tls.ca_pem.as_deref(), Some(ca.as_str()));
    assert_eq!(tls.client_cert_pem.as_deref(), Some(crt.as_str()));
    // ingress-nginx's defaults: no verification, no SNI, no client certificate.
    let b = backend("b.example");
    assert_eq!(b.protocol, UpstreamProtocol::Grpcs);
    assert_eq!(
        b.tls,
        Some(UpstreamTls {
            verify_depth: 1,
            ..UpstreamTls::default()
        })
    );
    // A bad Secret is reported; verification then has nothing to trust.
    let c = backend("c.example").tls.as_ref().expect("tls settings");
    assert!(c.verify && c.ca_pem.is_none() && c.client_cert_pem.is_none());
    let warnings = messages(&t.problems, Severity::Warning).join("\n");
    for expected in [
        "Ingress demo/c: annotation proxy-ssl-secret: Secret demo/mismatch: ca.crt",
        "no client certificate is sent",
        "annotation proxy-ssl-verify: on, but Secret demo/mismatch gives no usable ca.crt",
        "proxy-ssl-verify: applies only with backend-protocol HTTPS or GRPCS",
    ] {
        assert!(warnings.contains(expected), "{expected:?} in\n{warnings}");
    }
    assert_eq!(backend("d.example").tls, None);
}
