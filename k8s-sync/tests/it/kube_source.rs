//! The API-server source against a fake API server that speaks the real
//! list/watch wire format: the unmodified kube-rs client, watcher and
//! reflectors run over a real socket.

use crate::common::{ingress, options, rules, start, until, CLASS, QUIET, WEB};
use rauta_k8s_sync::api::{
    ApiOptions, ApiSource, ClientSource, LeaderOptions, PublishTarget, REASON_INVALID,
};
use rauta_k8s_sync::{ClassSelector, RouteConfig};
use rauta_testkit::fake_api::{object_path, status_addresses, FakeApi};
use rauta_testkit::tls::self_signed as cert;
use rauta_testkit::tls_secret;
use std::time::{Duration, Instant};

/// Service demo/web alone (port http 80 -> 8080).
const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n\
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}\n";

/// Lease reads by `client`.
fn lease_reads(api: &FakeApi, client: &str, lease_path: &str) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.client == client && r.method == "GET" && r.path == lease_path)
        .count()
}

/// Waits until `client` has read the Lease in more rounds than a lease
/// duration holds (from now on): a follower that could take over would
/// have by then.
fn lease_rounds(api: &FakeApi, client: &str, lease_path: &str) {
    let l = lease("x");
    let rounds = (l.lease_duration.as_millis() / l.renew_period.as_millis()) as usize + 2;
    let before = lease_reads(api, client, lease_path);
    api.wait_for(&format!("{rounds} Lease rounds of {client}"), |api| {
        (lease_reads(api, client, lease_path) >= before + rounds).then_some(())
    });
}

/// A fast Lease for hand-over tests.
fn lease(identity: &str) -> LeaderOptions {
    let mut lease = LeaderOptions::new("rauta-system", identity);
    lease.lease_duration = Duration::from_secs(1);
    lease.renew_period = Duration::from_millis(100);
    lease
}

fn paths(config: &RouteConfig) -> Vec<&str> {
    config.rules.iter().map(|r| r.path.as_str()).collect()
}

/// Endpoint IPs of the first backend.
fn endpoints(config: &RouteConfig) -> Vec<String> {
    config
        .backends
        .first()
        .map(|b| {
            b.endpoints
                .iter()
                .map(|e| e.addr.ip().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The `web` slice with these ready endpoint IPs.
fn slice(ips: &[&str]) -> String {
    let endpoints: Vec<String> = ips
        .iter()
        .map(|ip| format!("- addresses: [{ip}]\n  conditions: {{ready: true}}\n"))
        .collect();
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-abc\n  namespace: demo\n  \
         labels: {{kubernetes.io/service-name: web}}\naddressType: IPv4\nports: [{{name: http, port: 8080}}]\nendpoints:\n{}",
        endpoints.concat()
    )
}

fn seed(api: &FakeApi, ingress_paths: &[&str]) {
    api.apply_yaml(CLASS);
    api.apply_yaml(WEB);
    api.apply_yaml(&ingress("web", "", &rules("", ingress_paths)));
}

fn status_of(api: &FakeApi, name: &str) -> Vec<String> {
    api.get("ingresses", "demo", name)
        .map(|i| status_addresses(&i))
        .unwrap_or_default()
}

#[test]
fn lists_then_follows_every_kind() {
    let api = FakeApi::start();
    seed(&api, &["/one"]);
    // An EndpointSlice without the service-name label is not even listed.
    api.apply_yaml(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: stray, namespace: demo}\naddressType: IPv4\nendpoints: []\n",
    );
    let (source, rx) = start(options(&api, "kubeconfig"));

    let first = until(&rx, "the initial list", |_| true);
    assert_eq!(paths(&first), ["/one"]);
    assert_eq!(endpoints(&first), ["10.0.0.1", "10.0.0.2"]);
    let slice_lists = api.requests_to("GET", "/apis/discovery.k8s.io/v1/endpointslices");
    assert!(slice_lists
        .iter()
        .all(|r| r.query.get("labelSelector").map(String::as_str)
            == Some("kubernetes.io/service-name")));

    // Ingress MODIFIED.
    api.apply_yaml(&ingress("web", "", &rules("", &["/two"])));
    until(&rx, "the modified path", |c| paths(c) == ["/two"]);

    // EndpointSlice MODIFIED: scaling out and in.
    api.apply_yaml(&slice(&["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5"]));
    until(&rx, "four endpoints", |c| endpoints(c).len() == 4);
    api.apply_yaml(&slice(&["10.0.0.5"]));
    until(&rx, "one endpoint", |c| endpoints(c) == ["10.0.0.5"]);

    // EndpointSlice DELETED and ADDED.
    assert!(api.delete("endpointslices", "demo", "web-abc"));
    until(&rx, "no endpoints", |c| {
        endpoints(c).is_empty() && paths(c) == ["/two"]
    });
    api.apply_yaml(&slice(&["10.0.0.6"]));
    until(&rx, "the new slice", |c| endpoints(c) == ["10.0.0.6"]);

    // Service MODIFIED (port renamed: the Ingress's port name no longer
    // resolves), DELETED, ADDED.
    api.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\nspec:\n  ports: [{name: other, port: 80, targetPort: 8080}]\n",
    );
    until(&rx, "an unresolved port", |c| endpoints(c).is_empty());
    assert!(api.delete("services", "demo", "web"));
    api.apply_yaml(SERVICE);
    until(&rx, "the Service back", |c| endpoints(c) == ["10.0.0.6"]);

    // IngressClass MODIFIED to another controller, DELETED (either way
    // nothing is ours), ADDED back.
    api.apply_yaml(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: rauta}\nspec: {controller: example.com/other}\n",
    );
    until(&rx, "no rules with another controller", |c| {
        c.rules.is_empty()
    });
    api.apply_yaml(CLASS);
    until(&rx, "rules with the class back", |c| paths(c) == ["/two"]);
    assert!(api.delete("ingressclasses", "", "rauta"));
    until(&rx, "no rules without the class", |c| c.rules.is_empty());
    api.apply_yaml(CLASS);
    until(&rx, "rules with the class", |c| paths(c) == ["/two"]);

    // Ingress ADDED and DELETED.
    api.apply_yaml(&ingress("api", "", &rules("api.example.com", &["/v1"])));
    until(&rx, "two Ingresses", |c| c.rules.len() == 2);
    assert!(api.delete("ingresses", "demo", "web"));
    until(&rx, "only the new Ingress", |c| paths(c) == ["/v1"]);

    // A change that does not alter the configuration publishes nothing.
    api.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: unrelated, namespace: elsewhere}\nspec: {ports: [{port: 80}]}\n",
    );
    assert!(
        rx.recv_timeout(QUIET).is_err(),
        "an unchanged configuration was published again"
    );
    source.stop();
}

#[test]
fn invalid_ingress_is_skipped_and_reported_once() {
    let api = FakeApi::start();
    seed(&api, &["/good"]);
    api.apply_yaml(&ingress("bad", "", &rules("", &["no-slash"])));
    let (source, rx) = start(options(&api, "kubeconfig"));

    // The good Ingress is served although the other is invalid.
    let config = until(&rx, "the good Ingress", |_| true);
    assert_eq!(paths(&config), ["/good"]);

    let events = api.wait_for("an Event on the bad Ingress", |api| {
        let events = api.list("events");
        (!events.is_empty()).then_some(events)
    });
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event["reason"], REASON_INVALID);
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["regarding"]["kind"], "Ingress");
    assert_eq!(event["regarding"]["name"], "bad");
    assert_eq!(event["metadata"]["namespace"], "demo");
    assert!(
        event["note"]
            .as_str()
            .is_some_and(|n| n.contains("no-slash")),
        "{event:#?}"
    );

    // More reconciles (a changed slice) send no second Event.
    api.apply_yaml(&slice(&["10.0.0.7"]));
    until(&rx, "the new endpoint", |c| endpoints(c) == ["10.0.0.7"]);
    std::thread::sleep(QUIET); // pacing: an absence, watched for after the reconcile
    assert_eq!(api.list("events").len(), 1, "the Event was sent again");

    // Fixed: served, and no further Event.
    api.apply_yaml(&ingress("bad", "", &rules("fixed.example.com", &["/ok"])));
    until(&rx, "the fixed Ingress", |c| c.rules.len() == 2);
    assert_eq!(api.list("events").len(), 1);
    source.stop();
}

#[test]
fn status_follows_the_class_and_only_touches_ours() {
    let api = FakeApi::start();
    seed(&api, &["/"]);
    // Another controller's Ingress with its own status.
    api.apply_yaml(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: theirs, namespace: demo}\n\
         spec: {ingressClassName: nginx}\nstatus: {loadBalancer: {ingress: [{ip: 192.0.2.1}]}}\n",
    );
    let mut opts = options(&api, "kubeconfig");
    opts.publish = PublishTarget::Addresses(vec!["10.9.8.7".into(), "lb.example.com".into()]);
    let (source, rx) = start(opts);
    until(&rx, "the initial config", |_| true);

    api.wait_for("status on our Ingress", |api| {
        (status_of(api, "web") == ["10.9.8.7", "lb.example.com"]).then_some(())
    });
    let patches = api.requests_to(
        "PATCH",
        &format!("{}/status", object_path("ingresses", "demo", "web")),
    );
    assert_eq!(patches.len(), 1, "status written once: {patches:#?}");
    assert!(patches[0].body.contains("10.9.8.7"));

    // A new Ingress of our class gets the address too.
    api.apply_yaml(&ingress("second", "", &rules("second.example.com", &["/"])));
    api.wait_for("status on the new Ingress", |api| {
        (!status_of(api, "second").is_empty()).then_some(())
    });

    // Leaving our class clears the status.
    api.apply_yaml(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: demo}\n\
         spec:\n  ingressClassName: nginx\n  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}]}}]\n",
    );
    api.wait_for("status cleared", |api| {
        status_of(api, "web").is_empty().then_some(())
    });
    until(&rx, "only the second Ingress", |c| c.rules.len() == 1);

    // The other controller's Ingress was never written to.
    std::thread::sleep(QUIET); // pacing: an absence, watched for after the reconcile
    assert!(api
        .requests_to(
            "PATCH",
            &format!("{}/status", object_path("ingresses", "demo", "theirs"))
        )
        .is_empty());
    assert_eq!(status_of(&api, "theirs"), ["192.0.2.1"]);
    // The cleared Ingress is left alone afterwards.
    let clears = api
        .requests_to(
            "PATCH",
            &format!("{}/status", object_path("ingresses", "demo", "web")),
        )
        .len();
    assert_eq!(clears, 2, "one set, one clear");
    source.stop();
}

#[test]
fn status_from_a_publish_service() {
    let api = FakeApi::start();
    seed(&api, &["/"]);
    let mut opts = options(&api, "kubeconfig");
    opts.publish = PublishTarget::service("rauta-system/rauta").expect("valid");
    let (source, rx) = start(opts);
    until(&rx, "the initial config", |_| true);

    // The Service does not exist yet: no status.
    std::thread::sleep(QUIET); // pacing: an absence, watched for after the first config
    assert!(status_of(&api, "web").is_empty());
    api.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: rauta, namespace: rauta-system}\n\
         spec: {type: LoadBalancer, clusterIP: 10.96.0.10, ports: [{port: 80}]}\n",
    );
    api.wait_for("the cluster IP", |api| {
        (status_of(api, "web") == ["10.96.0.10"]).then_some(())
    });
    api.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: rauta, namespace: rauta-system}\n\
         spec: {type: LoadBalancer, clusterIP: 10.96.0.10, ports: [{port: 80}]}\n\
         status: {loadBalancer: {ingress: [{hostname: lb.example.com}]}}\n",
    );
    api.wait_for("the load balancer", |api| {
        (status_of(api, "web") == ["lb.example.com"]).then_some(())
    });
    source.stop();
}

#[test]
fn only_the_leader_writes_status_and_leadership_moves() {
    let api = FakeApi::start();
    seed(&api, &["/"]);
    let lease_path = object_path("leases", "rauta-system", "rauta-leader");
    let status_path = format!("{}/status", object_path("ingresses", "demo", "web"));

    let mut a_opts = options(&api, "a");
    a_opts.publish = PublishTarget::Addresses(vec!["10.0.0.1".into()]);
    a_opts.leader = Some(lease("a"));
    let (a, a_rx) = start(a_opts);
    until(&a_rx, "a's config", |_| true);
    api.wait_for("a leads", |_| a.is_leader().then_some(()));
    api.wait_for("a's status", |api| {
        (status_of(api, "web") == ["10.0.0.1"]).then_some(())
    });

    let mut b_opts = options(&api, "b");
    b_opts.publish = PublishTarget::Addresses(vec!["10.0.0.2".into()]);
    b_opts.leader = Some(lease("b"));
    let (b, b_rx) = start(b_opts);
    // b routes (gets the table) but does not lead or write, through more
    // than a lease duration of its rounds.
    until(&b_rx, "b's config", |_| true);
    lease_rounds(&api, "b", &lease_path);
    assert!(a.is_leader() && !b.is_leader());
    let by_b = |api: &FakeApi| {
        api.requests_to("PATCH", &status_path)
            .iter()
            .filter(|r| r.body.contains("10.0.0.2"))
            .count()
    };
    assert_eq!(by_b(&api), 0, "a non-leader wrote status");
    let lease_obj = api
        .get("leases", "rauta-system", "rauta-leader")
        .expect("lease");
    assert_eq!(lease_obj["spec"]["holderIdentity"], "a");

    // a can no longer renew (its API calls fail): it steps down, and b
    // takes over once the Lease expired.
    let failing = lease_path.clone();
    api.fail_when(move |r| {
        (r.method == "PUT" && r.path == failing && r.body.contains("\"holderIdentity\":\"a\""))
            .then_some(500)
    });
    api.wait_for("b leads", |_| b.is_leader().then_some(()));
    assert!(!a.is_leader(), "two leaders at once");
    api.wait_for("b's status", |api| {
        (status_of(api, "web") == ["10.0.0.2"]).then_some(())
    });
    let lease_obj = api
        .get("leases", "rauta-system", "rauta-leader")
        .expect("lease");
    assert_eq!(lease_obj["spec"]["holderIdentity"], "b");
    assert_eq!(lease_obj["spec"]["leaseTransitions"], 1);

    // a recovers but stays a follower while b renews, through more than a
    // lease duration of its rounds.
    api.clear_failures();
    lease_rounds(&api, "a", &lease_path);
    assert!(b.is_leader() && !a.is_leader());
    assert_eq!(status_of(&api, "web"), ["10.0.0.2"]);

    // b stops and releases the Lease: a takes over without waiting for expiry.
    let stopped = Instant::now();
    b.stop();
    api.wait_for("a leads again", |_| a.is_leader().then_some(()));
    assert!(
        stopped.elapsed() < Duration::from_secs(1),
        "took {:?}",
        stopped.elapsed()
    );
    api.wait_for("a's status again", |api| {
        (status_of(api, "web") == ["10.0.0.1"]).then_some(())
    });
    a.stop();
}

#[test]
fn survives_dropped_connections_410_and_outages() {
    let api = FakeApi::start();
    seed(&api, &["/one"]);
    let (source, rx) = start(options(&api, "kubeconfig"));
    until(&rx, "the initial config", |c| paths(c) == ["/one"]);
    let lists = |api: &FakeApi| {
        api.requests_to("GET", "/apis/networking.k8s.io/v1/ingresses")
            .iter()
            .filter(|r| !r.is_watch())
            .count()
    };
    assert_eq!(lists(&api), 1);

    // The connection drops mid-watch: the watch resumes from its last
    // resourceVersion, without listing again.
    api.drop_connections();
    api.apply_yaml(&ingress("web", "", &rules("", &["/two"])));
    until(&rx, "the change after the drop", |c| paths(c) == ["/two"]);
    assert_eq!(
        lists(&api),
        1,
        "a dropped connection must not force a re-list"
    );

    // A BOOKMARK moves the resume point past a compaction: still no re-list.
    api.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata: {name: unrelated, namespace: elsewhere}\nspec: {ports: [{port: 80}]}\n",
    );
    api.bookmark();
    // pacing: the watchers take in the BOOKMARK before the history goes
    // (the fake API cannot see a client's resume point).
    std::thread::sleep(Duration::from_millis(200));
    api.compact();
    api.drop_connections();
    api.apply_yaml(&ingress("web", "", &rules("", &["/three"])));
    until(&rx, "the change after the bookmark", |c| {
        paths(c) == ["/three"]
    });
    assert_eq!(lists(&api), 1, "the bookmark should have avoided a 410");

    // History compacted while the watches were behind: 410 Gone, and the
    // watcher lists again; changes made meanwhile arrive.
    api.set_down(true);
    api.apply_yaml(&ingress("web", "", &rules("", &["/four"])));
    api.compact();
    // The API server is down: the last good configuration stays, nothing
    // is published (not even an empty table) while the source retries.
    let refused = api.refused();
    assert!(rx.recv_timeout(Duration::from_millis(600)).is_err());
    assert!(api.refused() > refused, "the source retried meanwhile");
    api.set_down(false);
    until(&rx, "the change made during the outage", |c| {
        paths(c) == ["/four"]
    });
    api.wait_for("a re-list", |api| (lists(api) >= 2).then_some(()));
    let expired = api
        .requests_to("GET", "/apis/networking.k8s.io/v1/ingresses")
        .into_iter()
        .filter(|r| r.is_watch())
        .count();
    assert!(expired >= 3);

    // And it keeps following afterwards.
    api.apply_yaml(&slice(&["10.0.0.9"]));
    until(&rx, "a change after recovering", |c| {
        endpoints(c) == ["10.0.0.9"]
    });
    source.stop();
}

#[test]
fn a_bad_kubeconfig_fails_at_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing.yaml");
    let opts = ApiOptions::new(
        ClientSource::Kubeconfig(path.clone()),
        ClassSelector::default(),
    );
    let err = ApiSource::spawn(opts, |_| {}).expect_err("a missing kubeconfig must fail");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn tls_secrets_follow_the_api_and_only_named_ones_are_kept() {
    let api = FakeApi::start();
    let (a1_crt, a1_key) = cert(&["a.example.com"]);
    let (a2_crt, a2_key) = cert(&["a.example.com"]);
    let (b_crt, b_key) = cert(&["a.example.com"]);
    api.apply_yaml(CLASS);
    api.apply_yaml(WEB);
    let with_secret = |secret: &str| {
        ingress(
            "web",
            "",
            &format!(
                "{}, tls: [{{hosts: [a.example.com], secretName: {secret}}}]",
                rules("a.example.com", &["/"])
            ),
        )
    };
    api.apply_yaml(&with_secret("a-tls"));
    api.apply_yaml(&tls_secret("demo", "a-tls", &a1_crt, &a1_key));
    api.apply_yaml(&tls_secret("demo", "b-tls", &b_crt, &b_key));
    let (source, rx) = start(options(&api, "tls"));
    let cert_of = |config: &RouteConfig| {
        config
            .tls
            .first()
            .map(|c| (c.secret.name.clone(), c.cert_pem.clone()))
    };
    until(&rx, "the first certificate", |c| {
        cert_of(c) == Some(("a-tls".into(), a1_crt.clone()))
    });
    let listed = api.requests_to("GET", "/secrets");
    assert!(
        listed
            .iter()
            .all(|r| r.query.get("fieldSelector").map(String::as_str)
                == Some("type=kubernetes.io/tls")),
        "Secrets are listed by type only: {listed:#?}"
    );

    // A renewed Secret changes the published certificate.
    api.apply_yaml(&tls_secret("demo", "a-tls", &a2_crt, &a2_key));
    until(&rx, "the renewed certificate", |c| {
        cert_of(c) == Some(("a-tls".into(), a2_crt.clone()))
    });

    // b-tls was dropped when nobody named it; naming it fetches it.
    api.apply_yaml(&with_secret("b-tls"));
    until(&rx, "the newly named Secret", |c| {
        cert_of(c) == Some(("b-tls".into(), b_crt.clone()))
    });
    assert!(
        !api.requests_to("GET", "/namespaces/demo/secrets/b-tls")
            .is_empty(),
        "b-tls was fetched"
    );
    source.stop();
}

/// The TCP services ConfigMap `ingress/tcp-services` with `data`.
fn tcp_services(name: &str, data: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: ingress}}\ndata: {{{data}}}\n")
}

/// Listen ports of the L4 services, with their backends' endpoint IPs.
fn l4(config: &RouteConfig) -> Vec<(u16, Vec<String>)> {
    config
        .l4
        .iter()
        .map(|s| {
            let ips = config.backends[s.backend]
                .endpoints
                .iter()
                .map(|e| e.addr.ip().to_string())
                .collect();
            (s.port, ips)
        })
        .collect()
}

#[test]
fn the_named_tcp_services_configmap_is_followed_and_others_are_not_read() {
    let api = FakeApi::start();
    seed(&api, &["/"]);
    api.apply_yaml(&tcp_services("tcp-services", "\"9000\": \"demo/web:80\""));
    api.apply_yaml(&tcp_services("unrelated", "\"9999\": \"demo/web:80\""));
    let mut opts = options(&api, "kubeconfig");
    opts.selector.tcp_services = Some("ingress/tcp-services".parse().unwrap());
    let (source, rx) = start(opts);
    let first = until(&rx, "the TCP service", |c| !c.l4.is_empty());
    let ips = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
    assert_eq!(l4(&first), [(9000, ips.clone())]);
    // Only that ConfigMap is watched, by name.
    let reads = api.requests_to("GET", "/api/v1/namespaces/ingress/configmaps");
    assert!(!reads.is_empty());
    assert!(reads
        .iter()
        .all(|r| r.query.get("fieldSelector").map(String::as_str)
            == Some("metadata.name=tcp-services")));

    // An added entry, endpoints that move, and the ConfigMap deleted.
    api.apply_yaml(&tcp_services(
        "tcp-services",
        "\"9000\": \"demo/web:80\", \"9001\": \"demo/web:http::PROXY\"",
    ));
    let two = until(&rx, "two services", |c| c.l4.len() == 2);
    assert!(two.l4[1].proxy_protocol_upstream && !two.l4[1].proxy_protocol_downstream);
    api.apply_yaml(&slice(&["10.0.0.9"]));
    until(&rx, "the moved endpoint", |c| {
        l4(c)
            .iter()
            .all(|(_, ips)| ips == &["10.0.0.9".to_string()])
    });
    assert!(api.delete("configmaps", "ingress", "tcp-services"));
    until(&rx, "no services", |c| {
        c.l4.is_empty() && c.rules.len() == 1
    });
    source.stop();
}

/// GatewayClass `rauta`, Gateway demo/gw (HTTP on 80) and HTTPRoute
/// demo/web serving `path` on host gw.example.com.
fn gateway_objects(path: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: rauta}}\n\
         spec: {{controllerName: rauta.io/gateway-controller}}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: demo}}\n\
         spec: {{gatewayClassName: rauta, listeners: [{{name: http, port: 80, protocol: HTTP}}]}}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: web, namespace: demo}}\n\
         spec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [gw.example.com]\n  \
         rules: [{{matches: [{{path: {{value: {path}}}}}], backendRefs: [{{name: web, port: 80}}]}}]\n"
    )
}

#[test]
fn gateway_api_kinds_are_followed_like_ingresses() {
    let api = FakeApi::start();
    seed(&api, &["/ingress"]);
    for doc in gateway_objects("/gateway").split("---\n") {
        api.apply_yaml(doc);
    }
    let (source, rx) = start(options(&api, "kubeconfig"));
    let first = until(&rx, "the initial list", |_| true);
    assert_eq!(paths(&first), ["/ingress", "/gateway"]);
    let route = &first.rules[1];
    assert_eq!(route.source.to_string(), "HTTPRoute demo/web");
    assert_eq!(first.backends[route.backend].endpoints.len(), 2);

    // HTTPRoute MODIFIED, then the Gateway DELETED: the route goes with it.
    api.apply_yaml(
        gateway_objects("/moved")
            .split("---\n")
            .nth(2)
            .expect("route"),
    );
    until(&rx, "the moved route", |c| {
        paths(c) == ["/ingress", "/moved"]
    });
    assert!(api.delete("gateways", "demo", "gw"));
    until(&rx, "no HTTPRoute without its Gateway", |c| {
        paths(c) == ["/ingress"]
    });
    source.stop();
}

#[test]
fn a_cluster_without_the_gateway_api_crds_serves_its_ingresses() {
    let api = FakeApi::start();
    seed(&api, &["/ingress"]);
    api.fail_when(|r| {
        r.path
            .starts_with("/apis/gateway.networking.k8s.io/")
            .then_some(404)
    });
    let (source, rx) = start(options(&api, "kubeconfig"));
    let first = until(&rx, "the initial list", |_| true);
    assert_eq!(paths(&first), ["/ingress"]);

    // The CRDs get installed: the Gateway API objects are picked up.
    for doc in gateway_objects("/gateway").split("---\n") {
        api.apply_yaml(doc);
    }
    api.clear_failures();
    until(&rx, "the HTTPRoute once the CRDs exist", |c| {
        paths(c) == ["/ingress", "/gateway"]
    });
    source.stop();
}

/// `Type=Status` of the conditions at `pointer` in `object`.
fn conditions_at(object: &serde_json::Value, pointer: &str) -> Vec<String> {
    object
        .pointer(pointer)
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}",
                c["type"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn the_leader_writes_gateway_api_status_and_keeps_other_controllers_entries() {
    let api = FakeApi::start();
    seed(&api, &["/ingress"]);
    for doc in gateway_objects("/gateway").split("---\n") {
        api.apply_yaml(doc);
    }
    // Another controller already reported on this route for its own Gateway.
    let mut route = api.get("httproutes", "demo", "web").expect("route");
    route["status"] = serde_json::json!({"parents": [{
        "parentRef": {"name": "theirs"},
        "controllerName": "example.com/other",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    }]});
    api.apply(route);
    let mut opts = options(&api, "kubeconfig");
    opts.publish = PublishTarget::Addresses(vec!["192.0.2.7".into()]);
    let (source, _rx) = start(opts);

    let gw = api.wait_for("Gateway status", |api| {
        api.get("gateways", "demo", "gw")
            .filter(|g| g.pointer("/status/conditions").is_some())
    });
    assert_eq!(
        conditions_at(&gw, "/status/conditions"),
        ["Accepted=True", "Programmed=True"]
    );
    assert_eq!(
        gw.pointer("/status/listeners/0/attachedRoutes"),
        Some(&serde_json::json!(1))
    );
    assert_eq!(
        gw.pointer("/status/addresses/0/value"),
        Some(&serde_json::json!("192.0.2.7"))
    );
    assert!(gw
        .pointer("/status/conditions/0/lastTransitionTime")
        .is_some());
    let class = api.wait_for("GatewayClass status", |api| {
        api.get("gatewayclasses", "", "rauta")
            .filter(|c| c.pointer("/status/conditions").is_some())
    });
    assert_eq!(
        conditions_at(&class, "/status/conditions"),
        ["Accepted=True"]
    );
    let route = api.wait_for("HTTPRoute status", |api| {
        api.get("httproutes", "demo", "web")
            .filter(|r| r.pointer("/status/parents/1").is_some())
    });
    let parents = route
        .pointer("/status/parents")
        .and_then(|p| p.as_array())
        .expect("parents");
    assert_eq!(parents[0]["controllerName"], "example.com/other", "kept");
    assert_eq!(parents[1]["controllerName"], "rauta.io/gateway-controller");
    assert_eq!(parents[1]["parentRef"]["name"], "gw");
    assert_eq!(
        conditions_at(&route, "/status/parents/1/conditions"),
        ["Accepted=True", "ResolvedRefs=True"]
    );

    // A route that names a missing Service: ResolvedRefs=False, BackendNotFound.
    api.apply_yaml(
        &gateway_objects("/gateway")
            .split("---\n")
            .nth(2)
            .expect("route")
            .replace("{name: web, port: 80}", "{name: gone, port: 80}"),
    );
    api.wait_for("ResolvedRefs=False", |api| {
        let r = api.get("httproutes", "demo", "web")?;
        let c = r.pointer("/status/parents/1/conditions/1")?;
        (c["status"] == "False" && c["reason"] == "BackendNotFound").then_some(())
    });
    source.stop();
}

#[test]
fn grpc_and_tls_routes_are_watched_and_get_their_status() {
    let api = FakeApi::start();
    seed(&api, &["/ingress"]);
    let docs = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: rauta}\n\
         spec: {controllerName: rauta.io/gateway-controller}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: demo}\n\
         spec: {gatewayClassName: rauta, listeners: [{name: http, port: 80, protocol: HTTP}, \
         {name: pass, port: 443, protocol: TLS, tls: {mode: Passthrough}}]}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: calls, namespace: demo}\n\
         spec:\n  parentRefs: [{name: gw}]\n  hostnames: [grpc.example.com]\n  \
         rules: [{matches: [{method: {service: a.B}}], backendRefs: [{name: web, port: 80}]}]\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: TLSRoute\nmetadata: {name: pass, namespace: demo}\n\
         spec:\n  parentRefs: [{name: gw}]\n  hostnames: [pass.example.com]\n  \
         rules: [{backendRefs: [{name: gone, port: 443}]}]\n";
    for doc in docs.split("---\n") {
        api.apply_yaml(doc);
    }
    let (source, rx) = start(options(&api, "kubeconfig"));
    let config = until(&rx, "the GRPCRoute and TLSRoute", |c| {
        c.rules.len() == 2 && c.passthrough.len() == 1
    });
    assert_eq!(paths(&config), ["/ingress", "/a.B"]);
    assert_eq!(
        config.passthrough[0].source.to_string(),
        "TLSRoute demo/pass"
    );

    let grpc = api.wait_for("GRPCRoute status", |api| {
        api.get("grpcroutes", "demo", "calls")
            .filter(|r| r.pointer("/status/parents/0").is_some())
    });
    assert_eq!(
        conditions_at(&grpc, "/status/parents/0/conditions"),
        ["Accepted=True", "ResolvedRefs=True"]
    );
    let tls = api.wait_for("TLSRoute status", |api| {
        api.get("tlsroutes", "demo", "pass")
            .filter(|r| r.pointer("/status/parents/0").is_some())
    });
    assert_eq!(
        conditions_at(&tls, "/status/parents/0/conditions"),
        ["Accepted=True", "ResolvedRefs=False"]
    );
    let gw = api.wait_for("Gateway status", |api| {
        api.get("gateways", "demo", "gw")
            .filter(|g| g.pointer("/status/listeners/1").is_some())
    });
    assert_eq!(
        gw.pointer("/status/listeners/1/supportedKinds/0/kind"),
        Some(&serde_json::json!("TLSRoute"))
    );
    assert_eq!(
        gw.pointer("/status/listeners/0/supportedKinds/1/kind"),
        Some(&serde_json::json!("GRPCRoute"))
    );
    source.stop();
}

#[test]
fn backend_tls_policies_and_their_ca_maps_are_followed() {
    let api = FakeApi::start();
    seed(&api, &["/ingress"]);
    for doc in gateway_objects("/gateway").split("---\n") {
        api.apply_yaml(doc);
    }
    // A ConfigMap nobody names is never held.
    api.apply_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: demo}\ndata: {ca.crt: x}\n");
    api.apply_yaml(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\n\
         metadata: {name: web, namespace: demo}\n\
         spec:\n  targetRefs: [{group: '', kind: Service, name: web}]\n  \
         validation: {caCertificateRefs: [{group: '', kind: ConfigMap, name: ca}], hostname: web.internal}\n",
    );
    let ca_doc = |pem: &str| rauta_testkit::manifests::config_map("demo", "ca", &[("ca.crt", pem)]);
    let (source, rx) = start(options(&api, "kubeconfig"));
    let tls_of = |c: &RouteConfig| {
        let route = c.rules.iter().find(|r| r.path == "/gateway")?;
        c.backends[route.backend].tls.clone()
    };
    // The named ConfigMap does not exist yet: TLS, verified against nothing.
    let first = until(&rx, "the policy without its CA", |c| tls_of(c).is_some());
    let tls = tls_of(&first).expect("tls");
    assert!(tls.verify && tls.ca_pem.is_none(), "{tls:?}");
    // It appears, then changes: each version is used.
    let (ca1, _) = rauta_testkit::tls::self_signed(&["ca1.example"]);
    api.apply_yaml(&ca_doc(&ca1));
    until(&rx, "the CA", |c| {
        tls_of(c).and_then(|t| t.ca_pem) == Some(ca1.clone())
    });
    let (ca2, _) = rauta_testkit::tls::self_signed(&["ca2.example"]);
    api.apply_yaml(&ca_doc(&ca2));
    until(&rx, "the new CA", |c| {
        tls_of(c).and_then(|t| t.ca_pem) == Some(ca2.clone())
    });
    // Its status follows: refused while the CA was missing, then accepted.
    let policy = api.wait_for("BackendTLSPolicy accepted", |api| {
        api.get("backendtlspolicies", "demo", "web").filter(|p| {
            conditions_at(p, "/status/ancestors/0/conditions")
                == ["Accepted=True", "ResolvedRefs=True"]
        })
    });
    assert_eq!(
        policy["status"]["ancestors"][0]["ancestorRef"]["name"],
        "gw"
    );
    let held = source.api_stats().counts();
    let maps = held
        .resources
        .iter()
        .find(|r| r.kind == "ConfigMap")
        .map(|r| r.objects);
    assert_eq!(maps, Some(1), "only the named CA ConfigMap is held");
    source.stop();
}
