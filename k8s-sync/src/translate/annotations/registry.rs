//! Every annotation key rauta knows, with how it is supported. A key is
//! listed here once a family reads it; a key not listed is warned about
//! and ignored, except the raw-config keys, which refuse the Ingress.

use super::verdict::Verdict;

/// How rauta supports a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Support {
    /// As ingress-nginx does.
    Honoured,
    /// Honoured, with this difference.
    // For the families whose every value differs; none has landed yet.
    Differs(&'static str),
    /// The Ingress is refused, for this reason.
    Refused(&'static str),
    /// An access control rauta does not implement: the Ingress's paths
    /// answer 503 rather than being served without it.
    Closes(&'static str),
    /// Not implemented: warned and ignored.
    Unknown,
}

impl Support {
    /// The verdict a well-formed value gets.
    pub(super) fn verdict(self) -> Verdict {
        match self {
            Support::Honoured => Verdict::Honoured,
            Support::Differs(note) => Verdict::Differs(note.to_string()),
            Support::Refused(why) | Support::Closes(why) => Verdict::Refused(why.to_string()),
            Support::Unknown => Verdict::Ignored("not supported by rauta; ignored".to_string()),
        }
    }
}

const RAW_CONFIG: &str = "raw nginx configuration is not supported (ingress-nginx also refuses it by default: annotations-risk-level Critical)";
const BASIC_AUTH: &str =
    "basic/digest authentication is not supported yet, and the paths are not served unprotected";
const CLIENT_TLS: &str = "client certificate authentication is not supported yet, and the paths are not served unprotected";
const WAF: &str = "ModSecurity / OWASP CRS is not supported";

/// Keys (without prefix) and their support.
const KEYS: &[(&str, Support)] = &[
    ("load-balance", Support::Honoured),
    ("upstream-hash-by", Support::Honoured),
    ("endpoint-weights", Support::Honoured),
    ("ssl-redirect", Support::Honoured),
    (
        "ssl-passthrough",
        Support::Differs("relayed to the Service's endpoints, not its cluster IP, on every --listen-tls port (no --enable-ssl-passthrough flag needed); the Ingress's HTTP rules still serve plain HTTP"),
    ),
    ("force-ssl-redirect", Support::Honoured),
    ("permanent-redirect", Support::Honoured),
    ("permanent-redirect-code", Support::Honoured),
    ("temporal-redirect", Support::Honoured),
    ("temporal-redirect-code", Support::Honoured),
    ("app-root", Support::Honoured),
    ("from-to-www-redirect", Support::Honoured),
    ("rewrite-target", Support::Honoured),
    (
        "use-regex",
        Support::Differs("Rust regex syntax: look-around and back-references are refused; the path is matched as sent, not percent-decoded and merged as nginx's $uri"),
    ),
    ("x-forwarded-prefix", Support::Honoured),
    ("whitelist-source-range", Support::Honoured),
    ("allowlist-source-range", Support::Honoured),
    ("denylist-source-range", Support::Honoured),
    (
        "enable-cors",
        Support::Differs("CORS headers are added to upstream responses, not to rauta's own error answers"),
    ),
    ("cors-allow-origin", Support::Honoured),
    ("cors-allow-methods", Support::Honoured),
    ("cors-allow-headers", Support::Honoured),
    ("cors-allow-credentials", Support::Honoured),
    ("cors-expose-headers", Support::Honoured),
    ("cors-max-age", Support::Honoured),
    ("proxy-body-size", Support::Honoured),
    ("upstream-vhost", Support::Honoured),
    ("server-alias", Support::Honoured),
    ("backend-protocol", Support::Honoured),
    ("proxy-ssl-verify", Support::Honoured),
    ("proxy-ssl-verify-depth", Support::Honoured),
    ("proxy-ssl-secret", Support::Honoured),
    ("proxy-ssl-name", Support::Honoured),
    ("proxy-ssl-server-name", Support::Honoured),
    ("proxy-ssl-protocols", Support::Honoured),
    ("proxy-ssl-ciphers", Support::Honoured),
    ("proxy-buffering", Support::Honoured),
    ("proxy-request-buffering", Support::Honoured),
    (
        "service-upstream",
        Support::Differs("the cluster IP is one endpoint: balancing, affinity and retries to other endpoints are then kube-proxy's"),
    ),
    ("proxy-connect-timeout", Support::Honoured),
    ("proxy-read-timeout", Support::Honoured),
    ("proxy-send-timeout", Support::Honoured),
    (
        "proxy-next-upstream",
        Support::Differs("a request with a body is retried only when nothing was sent (rauta streams bodies, ingress-nginx buffers them); every resend spends the backend's retry budget (20% of its requests plus a reserve of 10), which ingress-nginx has not"),
    ),
    ("proxy-next-upstream-tries", Support::Honoured),
    ("proxy-next-upstream-timeout", Support::Honoured),
    (
        "auth-url",
        Support::Differs("http:// only; the host must be an IP or a Service (svc.ns[.svc.cluster.local]), resolved through its EndpointSlices; the route's proxy-*-timeouts apply to the auth call"),
    ),
    ("auth-method", Support::Honoured),
    (
        "mirror-target",
        Support::Differs("http:// only; the host must be an IP or a Service (svc.ns[.svc.cluster.local]), resolved through its EndpointSlices; only $request_uri is expanded; a body is mirrored up to --mirror-max-body-bytes"),
    ),
    ("mirror-request-body", Support::Honoured),
    ("mirror-host", Support::Honoured),
    ("auth-signin", Support::Honoured),
    ("auth-response-headers", Support::Honoured),
    (
        "custom-http-errors",
        Support::Differs("needs default-backend on the Ingress (rauta has no global error backend)"),
    ),
    (
        "default-backend",
        Support::Differs("the error backend is asked with GET / (HEAD for a HEAD), where nginx keeps the client's method"),
    ),
    ("canary", Support::Honoured),
    ("canary-by-header", Support::Honoured),
    ("canary-by-header-value", Support::Honoured),
    (
        "canary-by-header-pattern",
        Support::Differs("Rust regex syntax, not PCRE: a pattern that does not compile (look-around, back-references) sends the requests carrying the header to the main backend, as a regex error does in ingress-nginx"),
    ),
    ("canary-by-cookie", Support::Honoured),
    ("canary-weight", Support::Honoured),
    ("canary-weight-total", Support::Honoured),
    ("affinity", Support::Honoured),
    ("affinity-mode", Support::Honoured),
    ("affinity-canary-behavior", Support::Honoured),
    ("session-cookie-name", Support::Honoured),
    ("session-cookie-path", Support::Honoured),
    ("session-cookie-expires", Support::Honoured),
    ("session-cookie-max-age", Support::Honoured),
    ("session-cookie-secure", Support::Honoured),
    ("session-cookie-samesite", Support::Honoured),
    ("session-cookie-change-on-failure", Support::Honoured),
    ("limit-rps", Support::Honoured),
    ("limit-rpm", Support::Honoured),
    ("limit-burst-multiplier", Support::Honoured),
    ("limit-connections", Support::Honoured),
    ("limit-whitelist", Support::Honoured),
    ("limit-status-code", Support::Honoured),
    (
        "enable-opentelemetry",
        Support::Differs("spans need the proxy's --otlp-endpoint (OTLP/HTTP JSON), which turns them on for every Ingress; \"false\" turns them off for this one, \"true\" alone changes nothing"),
    ),
    ("opentelemetry-trust-incoming-span", Support::Honoured),
    ("auth-type", Support::Closes(BASIC_AUTH)),
    ("auth-secret", Support::Closes(BASIC_AUTH)),
    ("auth-secret-type", Support::Closes(BASIC_AUTH)),
    ("auth-realm", Support::Closes(BASIC_AUTH)),
    ("auth-tls-secret", Support::Closes(CLIENT_TLS)),
    ("auth-tls-verify-client", Support::Closes(CLIENT_TLS)),
    ("auth-tls-verify-depth", Support::Closes(CLIENT_TLS)),
    ("auth-tls-error-page", Support::Closes(CLIENT_TLS)),
    ("auth-tls-pass-certificate-to-upstream", Support::Closes(CLIENT_TLS)),
    ("auth-tls-match-cn", Support::Closes(CLIENT_TLS)),
    ("configuration-snippet", Support::Refused(RAW_CONFIG)),
    ("server-snippet", Support::Refused(RAW_CONFIG)),
    ("stream-snippet", Support::Refused(RAW_CONFIG)),
    ("auth-snippet", Support::Refused(RAW_CONFIG)),
    ("modsecurity-snippet", Support::Refused(RAW_CONFIG)),
    ("enable-modsecurity", Support::Refused(WAF)),
    ("enable-owasp-core-rules", Support::Refused(WAF)),
];

/// How `key` (without prefix) is supported.
pub(super) fn support(key: &str) -> Support {
    KEYS.iter()
        .find(|(k, _)| *k == key)
        .map_or(Support::Unknown, |(_, s)| *s)
}
