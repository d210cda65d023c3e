//! `enable-opentelemetry` and `opentelemetry-trust-incoming-span`: per
//! Ingress, spans off, or a new trace instead of the client's. Both matter
//! only with the proxy's `--otlp-endpoint`; the default is on and trusted.

use super::Reader;
use rauta_shared::policy::{RoutePolicy, Tracing};

/// Reads the tracing family.
pub(super) fn parse(r: &mut Reader<'_>, route: &mut RoutePolicy) {
    let enabled = r.bool("enable-opentelemetry", true);
    let trust_incoming = r.bool("opentelemetry-trust-incoming-span", true);
    if !enabled || !trust_incoming {
        route.tracing = Some(Tracing {
            enabled,
            trust_incoming,
        });
    }
}
