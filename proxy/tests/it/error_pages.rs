//! `custom-http-errors` and `default-backend` through the real proxy:
//! what the error backend is asked, what the client gets, and the error
//! backend taking a Service without endpoints.

use crate::annotated::{assert_reported, ing, serve_docs, service_on};
use rauta_testkit::client::request;
use rauta_testkit::manifests::path;
use rauta_testkit::Backend;

#[test]
fn intercepted_codes_are_answered_by_the_error_backend_with_what_happened() {
    let app = Backend::start("app");
    let errors = Backend::start("errors");
    let svc = service_on("app", &[app.port()]);
    let errors_svc = service_on("errors", &[errors.port()]);
    let empty = service_on("empty", &[]);
    let pages = ing(
        "pages",
        &[
            ("custom-http-errors", "404,503"),
            ("default-backend", "errors"),
        ],
        "pages.example",
        &[path("/", "Prefix", "app")],
    );
    let nobody = ing(
        "nobody",
        &[("default-backend", "errors")],
        "nobody.example",
        &[path("/", "Prefix", "empty")],
    );
    let plain = ing("plain", &[], "plain.example", &[path("/", "Prefix", "app")]);
    let bad = ing(
        "bad",
        &[
            ("custom-http-errors", "404,abc"),
            ("default-backend", "errors"),
        ],
        "bad.example",
        &[path("/", "Prefix", "app")],
    );
    let (_dir, rauta) = serve_docs(&[&svc, &errors_svc, &empty, &pages, &nobody, &plain, &bad]);

    let r = request(
        rauta.addr(),
        "GET",
        "pages.example",
        "/status/404?from=test",
        &[("Accept", "text/html"), ("X-Request-ID", "err-1")],
        b"",
    )
    .expect("answer");
    assert_eq!(r.header("x-backend"), Some("errors"), "{}", rauta.log());
    assert_eq!(
        r.status, 200,
        "the error backend's status, not the upstream's 404"
    );
    assert!(
        r.text().contains("path=/\n"),
        "its body is relayed: {}",
        r.text()
    );
    let asked = errors.last_request().expect("asked");
    assert_eq!((asked.method.as_str(), asked.path.as_str()), ("GET", "/"));
    let h = |n: &str| asked.header(n).map(str::to_string);
    assert_eq!(h("x-code").as_deref(), Some("404"));
    assert_eq!(h("x-format").as_deref(), Some("text/html"));
    assert_eq!(
        h("x-original-uri").as_deref(),
        Some("/status/404?from=test")
    );
    assert_eq!(h("x-namespace").as_deref(), Some("web"));
    assert_eq!(h("x-ingress-name").as_deref(), Some("pages"));
    assert_eq!(h("x-service-name").as_deref(), Some("app"));
    // The port as the Ingress names it (`port.name: http`), as nginx's $service_port.
    assert_eq!(h("x-service-port").as_deref(), Some("http"));
    assert_eq!(h("x-request-id").as_deref(), Some("err-1"));

    // Codes not listed, and other Ingresses on the same Service, are relayed.
    assert_eq!(rauta.who("pages.example", "/status/500"), "app");
    assert_eq!(rauta.who("plain.example", "/status/404"), "app");
    // A Service without endpoints: the error backend, with X-Code 503.
    assert_eq!(
        rauta.who("nobody.example", "/x"),
        "errors",
        "{}",
        rauta.log()
    );
    let asked = errors.last_request().expect("asked");
    assert_eq!(asked.header("x-code"), Some("503"));
    assert_eq!(asked.header("x-service-name"), Some("empty"));
    // "abc" is no status: nothing is intercepted, reported with file and object.
    assert_eq!(rauta.who("bad.example", "/status/404"), "app");
    assert_reported(&rauta, "bad", "custom-http-errors");
}
