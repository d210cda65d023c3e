//! Ingress matching through the real proxy: hosts, paths, classes, ports.

use crate::common::{service, start};
use rauta_testkit::manifests::join;
use rauta_testkit::{ingress, ingress_class, ManifestDir};
use rauta_testkit::{manifests::path, manifests::rule, rauta_class};

#[test]
fn ingress_matching_table() {
    let names = [
        "exact", "prefix", "deep", "root", "wild", "any", "default", "legacy", "foreign", "noclass",
    ];
    let services: Vec<_> = names.iter().map(|n| service("web", n)).collect();
    let rules = [
        rule(
            Some("Exact.Example.com"),
            &[
                path("/foo", "Exact", "exact"),
                path("/foo", "Prefix", "prefix"),
                path("/foo/bar/", "Prefix", "deep"),
                path("/", "Prefix", "root"),
                path("/exact-slash/", "Exact", "exact"),
            ],
        ),
        rule(Some("*.wild.example.com"), &[path("/", "Prefix", "wild")]),
        rule(None, &[path("/any", "ImplementationSpecific", "any")]),
    ]
    .concat();
    let main = ingress(
        "web",
        "main",
        Some("rauta"),
        &[],
        &format!(
        "defaultBackend:\n  service:\n    name: default\n    port:\n      number: 80\nrules:\n{}",
        indent(&rules)
    ),
    );
    let legacy = ingress(
        "web",
        "legacy",
        None,
        &[("kubernetes.io/ingress.class", "rauta")],
        &rule(Some("legacy.example.com"), &[path("/", "Prefix", "legacy")]),
    );
    let foreign = ingress(
        "web",
        "foreign",
        Some("nginx"),
        &[],
        &rule(
            Some("foreign.example.com"),
            &[path("/", "Prefix", "foreign")],
        ),
    );
    let noclass = ingress(
        "web",
        "noclass",
        None,
        &[],
        &rule(
            Some("noclass.example.com"),
            &[path("/", "Prefix", "noclass")],
        ),
    );
    let nginx_class = ingress_class("nginx", "k8s.io/ingress-nginx", false);
    let class_doc = rauta_class();
    let mut docs: Vec<&str> = vec![&class_doc, &nginx_class, &main, &legacy, &foreign, &noclass];
    for (_, yaml) in &services {
        docs.push(yaml);
    }
    let dir = ManifestDir::new();
    dir.write("all.yaml", &join(&docs));
    let rauta = start(&dir, &[]);

    let cases: &[(&str, &str, &str)] = &[
        ("exact.example.com", "/foo", "exact"), // Exact beats Prefix on a tie
        ("EXACT.example.COM", "/foo", "exact"), // hosts are case-insensitive
        ("exact.example.com:8080", "/foo", "exact"), // port stripped
        ("exact.example.com", "/foo/", "prefix"), // Prefix /foo matches /foo/
        ("exact.example.com", "/foo/x", "prefix"), // element-wise prefix
        ("exact.example.com", "/foo?q=1", "exact"), // query ignored
        ("exact.example.com", "/foobar", "root"), // never a string prefix
        ("exact.example.com", "/FOO", "root"),  // paths are case-sensitive
        ("exact.example.com", "/foo/bar", "deep"), // rule's trailing slash ignored
        ("exact.example.com", "/foo/bar/baz", "deep"), // longest match wins
        ("exact.example.com", "/exact-slash/", "exact"), // Exact trailing slash significant
        ("exact.example.com", "/exact-slash", "root"),
        ("a.wild.example.com", "/x", "wild"), // one-label wildcard
        ("a.b.wild.example.com", "/any", "any"), // not two labels: falls to no-host rules
        ("wild.example.com", "/any", "any"),  // wildcard needs one label
        ("unknown.example.com", "/any/thing", "any"), // no-host rule, any host
        ("unknown.example.com", "/anything", "default"), // element-wise, then defaultBackend
        ("unknown.example.com", "/", "default"),
        ("legacy.example.com", "/", "legacy"), // legacy class annotation
        ("foreign.example.com", "/", "default"), // other class: not served
        ("noclass.example.com", "/", "default"), // no class, ours not default
    ];
    let mut failures = Vec::new();
    for (host, path, want) in cases {
        let got = rauta.who(host, path);
        if got != *want {
            failures.push(format!("{host}{path}: want {want}, got {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "mismatches:\n{}\nlog:\n{}",
        failures.join("\n"),
        rauta.log()
    );
}

#[test]
fn default_class_annotation_port_by_number_and_404_without_default() {
    let (_b, svc) = service("shop", "cart");
    let class = ingress_class("rauta", "rauta.io/ingress-controller", true);
    let ing = ingress("shop", "cart", None, &[], "- host: shop.example\n  http:\n    paths:\n    - path: /cart\n      pathType: Prefix\n      backend:\n        service:\n          name: cart\n          port:\n            number: 80\n");
    let dir = ManifestDir::new();
    dir.write("class.yaml", &class);
    dir.write("cart.yaml", &join(&[&svc, &ing]));
    let rauta = start(&dir, &[]);
    assert_eq!(
        rauta.who("shop.example", "/cart/items"),
        "cart",
        "{}",
        rauta.log()
    );
    let miss = rauta_testkit::get(rauta.addr(), "shop.example", "/other").expect("answer");
    assert_eq!(miss.status, 404);
    assert!(miss.text().contains("no route"), "{}", miss.text());
}

#[test]
fn rules_of_several_ingresses_merge_and_the_oldest_wins_a_conflict() {
    let (_a, svc_a) = service("team", "alpha");
    let (_b, svc_b) = service("team", "beta");
    let (_c, svc_c) = service("team", "gamma");
    let with_time = |name: &str, time: &str, paths: &[String]| {
        ingress(
            "team",
            name,
            Some("rauta"),
            &[],
            &rule(Some("shared.example"), paths),
        )
        .replace(
            "metadata:\n",
            &format!("metadata:\n  creationTimestamp: \"{time}\"\n"),
        )
    };
    let old = with_time(
        "old",
        "2024-01-01T00:00:00Z",
        &[path("/api", "Prefix", "alpha")],
    );
    let new = with_time(
        "new",
        "2025-01-01T00:00:00Z",
        &[
            path("/api", "Prefix", "beta"),
            path("/web", "Prefix", "gamma"),
        ],
    );
    let dir = ManifestDir::new();
    dir.write(
        "all.yaml",
        &join(&[&rauta_class(), &svc_a, &svc_b, &svc_c, &new, &old]),
    );
    let rauta = start(&dir, &[]);
    assert_eq!(
        rauta.who("shared.example", "/api"),
        "alpha",
        "oldest Ingress wins the conflict"
    );
    assert_eq!(
        rauta.who("shared.example", "/web"),
        "gamma",
        "non-conflicting rules merge"
    );
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
