//! The API source shows itself: its counters (watch errors and re-lists
//! per resource, objects per kind, the last sync, leadership, status
//! writes, Events) move as failures and changes happen at a fake API
//! server; and `--watch-namespace` keeps every read of a namespaced kind
//! inside the namespaces given.

use crate::common::{ingress, rules, start, until, CLASS, QUIET, WEB};
use rauta_k8s_sync::api::snapshot::snapshot;
use rauta_k8s_sync::api::{ApiOptions, ApiSource, ClientSource, LeaderOptions, PublishTarget};
use rauta_k8s_sync::stats::{ApiCounts, RESOURCES, STATUS_KINDS};
use rauta_k8s_sync::{ClassSelector, RouteConfig};
use rauta_shared::config::{HostMatch, RouteKind};
use rauta_testkit::fake_api::{object_path, status_addresses, FakeApi, Recorded};
use rauta_testkit::tls::self_signed as cert;
use rauta_testkit::tls_secret;
use std::time::Duration;

/// The shared test options, with re-lists at most 200 ms apart.
fn options(api: &FakeApi, name: &str) -> ApiOptions {
    let mut opts = crate::common::options(api, name);
    opts.backoff.max = Duration::from_millis(200);
    opts
}

/// Waits until the source's counters satisfy `check`.
#[track_caller]
fn counts_until(
    api: &FakeApi,
    source: &ApiSource,
    what: &str,
    check: impl Fn(&ApiCounts) -> bool,
) -> ApiCounts {
    api.wait_for(what, |_| {
        let c = source.api_stats().counts();
        check(&c).then_some(c)
    })
}

/// (errors, restarts) of `resource`.
fn watch(c: &ApiCounts, resource: &str) -> (u64, u64) {
    let r = c.resource(resource).expect("a known resource");
    (r.watch_errors, r.watch_restarts)
}

fn objects(c: &ApiCounts, kind: &str) -> u64 {
    (c.resources.iter().find(|r| r.kind == kind))
        .map(|r| r.objects)
        .expect("a known kind")
}

/// (ok, failed) status writes of `kind`.
fn writes(c: &ApiCounts, kind: &str) -> (u64, u64) {
    let w = c.status_writes(kind).expect("a known kind");
    (w.ok, w.failed)
}

fn seed(api: &FakeApi) {
    api.apply_yaml(CLASS);
    api.apply_yaml(WEB);
    api.apply_yaml(&ingress("web", "", &rules("", &["/"])));
}

/// The exact host of a rule ("" for others).
fn host(m: &HostMatch) -> &str {
    match m {
        HostMatch::Exact(h) => h,
        _ => "",
    }
}

fn is_list_of(r: &Recorded, collection: &str) -> bool {
    r.method == "GET" && r.path == collection && !r.is_watch()
}

#[test]
fn objects_and_the_last_sync_are_counted_per_kind() {
    let api = FakeApi::start();
    seed(&api);
    let (source, rx) = start(options(&api, "kubeconfig"));
    let before = source.api_stats().counts();
    assert_eq!(before.resources.len(), RESOURCES.len());
    assert_eq!(before.status_writes.len(), STATUS_KINDS.len());
    until(&rx, "the first configuration", |_| true);
    let c = counts_until(&api, &source, "a sync", |c| c.last_sync_unix > 0.0);
    for (kind, n) in [
        ("Ingress", 1),
        ("IngressClass", 1),
        ("Service", 1),
        ("EndpointSlice", 1),
        ("Secret", 0),
        ("HTTPRoute", 0),
    ] {
        assert_eq!(objects(&c, kind), n, "{kind}: {c:#?}");
    }
    // Nothing failed: no errors, no re-lists.
    for r in &c.resources {
        assert_eq!((r.watch_errors, r.watch_restarts), (0, 0), "{r:?}");
    }
    let first_sync = c.last_sync_unix;

    // A second Ingress: counted at the next reconcile, which moves the sync time.
    std::thread::sleep(Duration::from_millis(20)); // pacing: a later timestamp
    api.apply_yaml(&ingress("api", "", &rules("api.example.com", &["/v1"])));
    until(&rx, "two Ingresses", |c| c.rules.len() == 2);
    let c = counts_until(&api, &source, "two Ingresses counted", |c| {
        objects(c, "Ingress") == 2
    });
    assert!(c.last_sync_unix > first_sync, "{c:#?}");

    // A change that leaves the configuration as it was still confirms it.
    let synced = c.last_sync_unix;
    std::thread::sleep(Duration::from_millis(20)); // pacing: a later timestamp
    api.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: unrelated, namespace: elsewhere}\nspec: {ports: [{port: 80}]}\n",
    );
    let c = counts_until(&api, &source, "the unrelated Service counted", |c| {
        objects(c, "Service") == 2
    });
    assert!(c.last_sync_unix > synced);
    assert!(rx.recv_timeout(QUIET).is_err(), "nothing new to publish");
    source.stop();
}

#[test]
fn a_failing_list_counts_errors_for_its_resource_and_recovers() {
    let api = FakeApi::start();
    seed(&api);
    // Every list of Services fails with 500; watches of the others go on.
    api.fail_when(|r| is_list_of(r, "/api/v1/services").then_some(500));
    let (source, rx) = start(options(&api, "kubeconfig"));
    let c = counts_until(&api, &source, "Service list errors", |c| {
        watch(c, "services").0 >= 3
    });
    // Lists after a failed one are restarts; the other kinds are untouched.
    assert!(watch(&c, "services").1 >= 2, "{c:#?}");
    assert_eq!(watch(&c, "ingresses"), (0, 0));
    assert_eq!(watch(&c, "endpointslices"), (0, 0));
    // Not ready without Services: nothing published, no sync.
    assert!(rx.try_recv().is_err());
    assert_eq!(c.last_sync_unix, 0.0);

    // The API server answers again: the table comes, the errors stop.
    api.clear_failures();
    let config = until(&rx, "the configuration after recovery", |_| true);
    assert_eq!(config.rules.len(), 1);
    let settled = counts_until(&api, &source, "a sync", |c| c.last_sync_unix > 0.0);
    std::thread::sleep(QUIET); // pacing: an absence of new errors
    let later = source.api_stats().counts();
    assert_eq!(watch(&later, "services"), watch(&settled, "services"));
    source.stop();
}

#[test]
fn an_expired_resource_version_counts_a_restart() {
    let api = FakeApi::start();
    seed(&api);
    let (source, rx) = start(options(&api, "kubeconfig"));
    until(&rx, "the first configuration", |_| true);
    assert_eq!(watch(&source.api_stats().counts(), "ingresses"), (0, 0));

    // Another kind moves the resourceVersion on, the history goes, and
    // the connections drop: the Ingress watch resumes from a version that
    // is gone (410) and lists again.
    api.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: unrelated, namespace: elsewhere}\nspec: {ports: [{port: 80}]}\n",
    );
    // pacing: the Service watch takes in its event before the history goes.
    std::thread::sleep(Duration::from_millis(200));
    api.compact();
    api.drop_connections();
    let c = counts_until(&api, &source, "an Ingress re-list", |c| {
        watch(c, "ingresses").1 >= 1
    });
    // The 410 was an error too.
    assert!(watch(&c, "ingresses").0 >= 1, "{c:#?}");
    // And the watch goes on.
    api.apply_yaml(&ingress("web", "", &rules("", &["/after"])));
    until(&rx, "a change after the re-list", |c| {
        c.rules.iter().any(|r| r.path == "/after")
    });
    source.stop();
}

/// GatewayClass `rauta`, Gateway demo/gw (HTTP on 80) and HTTPRoute demo/web.
const GATEWAY: &str = "\
apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: rauta}\n\
spec: {controllerName: rauta.io/gateway-controller}\n---\n\
apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: demo}\n\
spec: {gatewayClassName: rauta, listeners: [{name: http, port: 80, protocol: HTTP}]}\n---\n\
apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: demo}\n\
spec:\n  parentRefs: [{name: gw}]\n  hostnames: [gw.example.com]\n  \
rules: [{matches: [{path: {value: /gw}}], backendRefs: [{name: web, port: 80}]}]\n";

#[test]
fn status_writes_and_events_are_counted_with_their_failures() {
    let api = FakeApi::start();
    seed(&api);
    api.apply_yaml(GATEWAY);
    api.apply_yaml(&ingress("bad", "", &rules("", &["no-slash"])));
    // Events fail at first.
    api.fail_when(|r| (r.method == "POST" && r.path.ends_with("/events")).then_some(500));
    let mut opts = options(&api, "kubeconfig");
    opts.publish = PublishTarget::Addresses(vec!["192.0.2.7".into()]);
    let (source, rx) = start(opts);
    until(&rx, "the first configuration", |_| true);

    let c = counts_until(&api, &source, "every status written", |c| {
        ["Ingress", "GatewayClass", "Gateway", "HTTPRoute"]
            .iter()
            .all(|k| writes(c, k).0 >= 1)
    });
    assert_eq!(writes(&c, "Ingress").1, 0);
    let ingress_ok = writes(&c, "Ingress").0;
    let c = counts_until(&api, &source, "a failed Event", |c| c.events_failed >= 1);
    assert_eq!(c.events_ok, 0);
    api.clear_failures();
    let c = counts_until(&api, &source, "the Event sent", |c| c.events_ok == 1);
    let failed_events = c.events_failed;

    // A status write that fails is counted, then counted again as it
    // succeeds on a retry.
    let path = format!("{}/status", object_path("ingresses", "demo", "second"));
    api.fail_when(move |r| (r.method == "PATCH" && r.path == path).then_some(500));
    api.apply_yaml(&ingress("second", "", &rules("second.example.com", &["/"])));
    let c = counts_until(&api, &source, "a failed Ingress status write", |c| {
        writes(c, "Ingress").1 >= 1
    });
    assert_eq!(writes(&c, "Ingress").0, ingress_ok);
    api.clear_failures();
    counts_until(&api, &source, "the Ingress status written", |c| {
        writes(c, "Ingress").0 == ingress_ok + 1
    });
    let second = api.get("ingresses", "demo", "second").expect("second");
    assert_eq!(status_addresses(&second), ["192.0.2.7"]);
    // Nothing more to send: the counters stay.
    std::thread::sleep(QUIET); // pacing: an absence of further writes
    let c = source.api_stats().counts();
    assert_eq!((c.events_ok, c.events_failed), (1, failed_events));
    assert_eq!(writes(&c, "Ingress").0, ingress_ok + 1);
    source.stop();
}

/// A fast Lease.
fn lease(identity: &str) -> LeaderOptions {
    let mut lease = LeaderOptions::new("rauta-system", identity);
    lease.lease_duration = Duration::from_secs(1);
    lease.renew_period = Duration::from_millis(100);
    lease
}

#[test]
fn the_leader_gauge_follows_the_election() {
    let api = FakeApi::start();
    seed(&api);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let mut a_opts = options(&api, "a");
    a_opts.leader = Some(lease("a"));
    let (a, _a_rx) = start(a_opts);
    let c = counts_until(&api, &a, "a leads", |c| c.leader);
    assert!(c.leader_since_unix >= started - 1.0, "{c:#?}");

    let mut b_opts = options(&api, "b");
    b_opts.leader = Some(lease("b"));
    let (b, b_rx) = start(b_opts);
    until(&b_rx, "b's configuration", |_| true);
    let b_follower = b.api_stats().counts();
    assert!(!b_follower.leader && b_follower.leader_since_unix > 0.0);
    assert!(a.api_stats().counts().leader);

    // a stops and releases the Lease: b leads, since then.
    std::thread::sleep(Duration::from_millis(20)); // pacing: a later timestamp
    a.stop();
    let c = counts_until(&api, &b, "b leads", |c| c.leader);
    assert!(c.leader_since_unix > b_follower.leader_since_unix, "{c:#?}");
    b.stop();
}

/// Everything one namespace holds: an Ingress `web` for host `NS.example.com`,
/// its Service and slice, a TLS Secret it names, and a Gateway with an
/// HTTPRoute.
fn namespace_objects(ns: &str, crt: &str, key: &str) -> String {
    let web = WEB.replace("namespace: demo", &format!("namespace: {ns}"));
    let ing = web_ingress(ns, "/");
    let gateway = GATEWAY
        .split("---\n")
        .skip(1)
        .collect::<Vec<_>>()
        .join("---\n")
        .replace("namespace: demo", &format!("namespace: {ns}"))
        .replace("gw.example.com", &format!("gw.{ns}.example.com"));
    format!(
        "{web}{ing}{}---\n{gateway}",
        tls_secret(ns, "web-tls", crt, key)
    )
}

/// Ingress `ns`/web for host `NS.example.com` and `path`, with TLS from
/// the Secret web-tls.
fn web_ingress(ns: &str, path: &str) -> String {
    ingress(
        "web",
        "",
        &format!(
            "{}, tls: [{{hosts: [{ns}.example.com], secretName: web-tls}}]",
            rules(&format!("{ns}.example.com"), &[path])
        ),
    )
    .replace("namespace: demo", &format!("namespace: {ns}"))
}

/// The namespaced collections the source reads, by resource.
const NAMESPACED: [&str; 11] = [
    "ingresses",
    "services",
    "endpointslices",
    "secrets",
    "configmaps",
    "gateways",
    "httproutes",
    "grpcroutes",
    "tlsroutes",
    "backendtlspolicies",
    "referencegrants",
];

#[test]
fn watch_namespace_reads_namespaced_kinds_only_there() {
    let api = FakeApi::start();
    api.apply_yaml(CLASS);
    let (a_crt, a_key) = cert(&["a.example.com"]);
    let (b_crt, b_key) = cert(&["b.example.com"]);
    api.apply_yaml(&namespace_objects("a", &a_crt, &a_key));
    api.apply_yaml(&namespace_objects("b", &b_crt, &b_key));
    api.apply_yaml(GATEWAY.split("---\n").next().expect("the class"));
    // The TCP services of `a` name a Service of `b`: it is not read, so
    // not found.
    api.apply_yaml(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tcp, namespace: a}\n\
         data: {\"9000\": \"b/web:80\", \"9001\": \"a/web:80\"}\n",
    );
    let mut opts = options(&api, "scoped");
    opts.namespaces = vec!["a".to_string()];
    opts.selector.tcp_services = Some("a/tcp".parse().expect("name"));
    opts.publish = PublishTarget::Addresses(vec!["192.0.2.9".into()]);
    let (source, rx) = start(opts);
    let config = until(&rx, "the first configuration", |c| !c.rules.is_empty());

    let hosts: Vec<&str> = config.rules.iter().map(|r| host(&r.host)).collect();
    assert_eq!(hosts, ["a.example.com", "gw.a.example.com"], "{config:#?}");
    let secrets: Vec<String> = config.tls.iter().map(|t| t.secret.to_string()).collect();
    assert_eq!(secrets, ["a/web-tls"]);
    let l4: Vec<(u16, usize)> = (config.l4.iter())
        .map(|s| (s.port, config.backends[s.backend].endpoints.len()))
        .collect();
    assert_eq!(
        l4,
        [(9000, 0), (9001, 2)],
        "b/web is not found: {config:#?}"
    );
    assert!(source.stats().counts().warnings >= 1);

    // Status is written in `a` only; the counts are those of `a`.
    api.wait_for("a's status", |api| {
        let ing = api.get("ingresses", "a", "web")?;
        (status_addresses(&ing) == ["192.0.2.9"]).then_some(())
    });
    let c = counts_until(&api, &source, "the objects of a", |c| {
        objects(c, "Ingress") == 1
    });
    for (kind, n) in [
        ("Service", 1),
        ("EndpointSlice", 1),
        ("Secret", 1),
        ("ConfigMap", 1),
        ("Gateway", 1),
        ("HTTPRoute", 1),
        ("GatewayClass", 1),
    ] {
        assert_eq!(objects(&c, kind), n, "{kind}: {c:#?}");
    }

    // Changes in `b` are never seen; changes in `a` are.
    api.apply_yaml(
        &ingress("more", "", &rules("more.example.com", &["/"]))
            .replace("namespace: demo", "namespace: b"),
    );
    api.apply_yaml(
        &ingress("more", "", &rules("more.a.example.com", &["/"]))
            .replace("namespace: demo", "namespace: a"),
    );
    let config = until(&rx, "a's new Ingress", |c| c.rules.len() == 3);
    assert!(config
        .rules
        .iter()
        .all(|r| host(&r.host) != "more.example.com"));

    // Every read of a namespaced kind was inside `a`; the cluster-scoped
    // kinds were read cluster-wide; nothing was written outside `a`.
    let requests = api.requests();
    let mut seen = std::collections::BTreeSet::new();
    for r in requests.iter().filter(|r| r.client == "scoped") {
        let Some((resource, ns)) = r.resource() else {
            panic!("unexpected request {r:?}");
        };
        if NAMESPACED.contains(&resource) {
            assert_eq!(ns, Some("a"), "{} {}", r.method, r.path);
            if r.method == "GET" {
                seen.insert(resource.to_string());
            }
        } else if ["ingressclasses", "gatewayclasses", "namespaces"].contains(&resource) {
            assert_eq!(ns, None, "{} {}", r.method, r.path);
        } else {
            // Events about a's Ingresses, in a.
            assert_eq!((resource, ns), ("events", Some("a")), "{r:?}");
        }
    }
    let expected: std::collections::BTreeSet<String> =
        NAMESPACED.iter().map(|s| s.to_string()).collect();
    assert_eq!(seen, expected, "every namespaced kind was read in a");
    source.stop();
}

#[test]
fn several_namespaces_are_watched_each_on_its_own() {
    let api = FakeApi::start();
    api.apply_yaml(CLASS);
    for ns in ["a", "b", "c"] {
        let (crt, key) = cert(&[&format!("{ns}.example.com")]);
        api.apply_yaml(&namespace_objects(ns, &crt, &key));
    }
    let mut opts = options(&api, "two");
    opts.namespaces = vec!["a".to_string(), "c".to_string()];
    let (source, rx) = start(opts);
    let ingress_hosts = |c: &RouteConfig| {
        let mut hosts: Vec<String> = (c.rules.iter())
            .filter(|r| r.source.kind == RouteKind::Ingress)
            .map(|r| host(&r.host).to_string())
            .collect();
        hosts.sort();
        hosts
    };
    let config = until(&rx, "a's and c's Ingresses", |c| c.rules.len() >= 2);
    assert_eq!(ingress_hosts(&config), ["a.example.com", "c.example.com"]);
    assert_eq!(config.tls.len(), 2);

    // A re-list in one namespace (410) leaves the other's objects alone.
    api.apply_yaml(&web_ingress("c", "/moved"));
    until(&rx, "c's change", |c| {
        c.rules.iter().any(|r| r.path == "/moved")
    });
    // pacing: the watches take in the event before the history goes.
    std::thread::sleep(Duration::from_millis(200));
    api.compact();
    api.drop_connections();
    // (The Secrets of both namespaces are behind the change: both list again.)
    let c = counts_until(&api, &source, "re-lists", |c| {
        watch(c, "ingresses").1 >= 1 && watch(c, "secrets").1 >= 2
    });
    assert_eq!(objects(&c, "Secret"), 2, "{c:#?}");
    assert_eq!(objects(&c, "Ingress"), 2, "{c:#?}");
    api.apply_yaml(&web_ingress("a", "/after"));
    let config = until(&rx, "a's change after the re-list", |c| {
        c.rules.iter().any(|r| r.path == "/after")
    });
    assert_eq!(ingress_hosts(&config), ["a.example.com", "c.example.com"]);
    assert_eq!(config.tls.len(), 2, "both Secrets still held");
    source.stop();
}

#[test]
fn watch_namespace_refuses_flag_objects_outside_it() {
    let api = FakeApi::start();
    let mut opts = options(&api, "kubeconfig");
    opts.namespaces = vec!["a".to_string()];
    opts.selector.tcp_services = Some("ingress/tcp".parse().expect("name"));
    let err = ApiSource::spawn(opts.clone(), |_| {}).expect_err("outside");
    assert!(
        err.to_string().contains("--watch-namespace ingress"),
        "{err}"
    );
    opts.selector.tcp_services = None;
    opts.publish = PublishTarget::service("rauta-system/rauta").expect("valid");
    let err = ApiSource::spawn(opts.clone(), |_| {}).expect_err("outside");
    assert!(err.to_string().contains("rauta-system/rauta"), "{err}");
    opts.publish = PublishTarget::None;
    opts.namespaces = vec!["Not_A_Namespace".to_string()];
    let err = ApiSource::spawn(opts, |_| {}).expect_err("invalid");
    assert!(err.to_string().contains("Not_A_Namespace"), "{err}");
    assert!(api.requests().is_empty(), "nothing was read");
}

#[test]
fn the_snapshot_for_check_lists_only_the_namespaces_given() {
    let api = FakeApi::start();
    api.apply_yaml(CLASS);
    for ns in ["a", "b"] {
        let (crt, key) = cert(&[&format!("{ns}.example.com")]);
        api.apply_yaml(&namespace_objects(ns, &crt, &key));
    }
    let source = ClientSource::Kubeconfig(api.kubeconfig("check"));
    let objects =
        snapshot(&source, &ClassSelector::default(), &["a".to_string()]).expect("snapshot");
    let names: Vec<String> = objects
        .iter()
        .map(|o| o.object.describe())
        .filter(|d| !d.starts_with("IngressClass") && !d.starts_with("GatewayClass"))
        .collect();
    assert!(
        names.iter().all(|n| n.contains(" a/")),
        "only a's objects: {names:?}"
    );
    assert!(names.iter().any(|n| n == "Secret a/web-tls"), "{names:?}");
    for r in api.requests() {
        let (resource, ns) = r.resource().expect("an API path");
        assert!(r.method == "GET" && !r.is_watch(), "{r:?}");
        if NAMESPACED.contains(&resource) {
            assert_eq!(ns, Some("a"), "{}", r.path);
        }
    }
    let all = snapshot(&source, &ClassSelector::default(), &[]).expect("snapshot");
    assert!(all.len() > objects.len());
}

#[test]
fn a_missing_gateway_api_crd_is_neither_an_error_nor_a_restart() {
    let api = FakeApi::start();
    seed(&api);
    api.fail_when(|r| {
        r.path
            .starts_with("/apis/gateway.networking.k8s.io/")
            .then_some(404)
    });
    let (source, rx) = start(options(&api, "kubeconfig"));
    until(&rx, "the first configuration", |_| true);
    // The absent kinds are asked again with backoff (up to 200 ms here).
    let asked = |api: &FakeApi| {
        (api.requests().iter())
            .filter(|r| r.path.ends_with("/httproutes"))
            .count()
    };
    let before = asked(&api);
    api.wait_for("HTTPRoutes asked again", |api| {
        (asked(api) >= before + 2).then_some(())
    });
    let c = source.api_stats().counts();
    for resource in [
        "gatewayclasses",
        "gateways",
        "httproutes",
        "grpcroutes",
        "tlsroutes",
        "backendtlspolicies",
        "referencegrants",
    ] {
        assert_eq!(watch(&c, resource), (0, 0), "{resource}");
    }
    // Installed later: listed, still no error.
    api.clear_failures();
    api.apply_yaml(GATEWAY);
    until(&rx, "the HTTPRoute", |c| c.rules.len() == 2);
    let c = counts_until(&api, &source, "the route counted", |c| {
        objects(c, "HTTPRoute") == 1
    });
    assert_eq!(watch(&c, "httproutes"), (0, 0));
    source.stop();
}
