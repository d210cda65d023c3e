//! TLSRoute -> passthrough hosts: TLS connections whose SNI names one of
//! the route's hosts are relayed unterminated to its backend, like
//! ingress-nginx's `ssl-passthrough` (which wins a host both claim). A
//! passthrough host is served on every TLS listener of rauta.

use super::super::endpoints::Asker;
use super::super::index::Index;
use super::super::merge::Builder;
use super::attach::{Attachment, Route};
use super::rules::{backend, Outcome};
use crate::gateway_api::TlsRoute;
use crate::problem::Problem;
use rauta_shared::config::{HostMatch, UpstreamProtocol};

/// Adds the hosts of one attached TLSRoute to `builder`.
pub(super) fn add(
    route: &Route<'_>,
    tls: &TlsRoute,
    attached: &[Attachment],
    index: &Index<'_>,
    builder: &mut Builder,
    problems: &mut Vec<Problem>,
) -> Outcome {
    let object = route.object();
    let file = route.src.file.clone();
    let warn =
        |message: String| Problem::warning(Some(object.clone()), message).in_file(file.clone());
    let mut outcome = Outcome {
        rules: tls.spec.rules.len().max(1),
        dropped: 0,
        bad_ref: None,
        policies: Default::default(),
    };
    let Some(rule) = tls.spec.rules.first() else {
        problems.push(warn("no rules: connections are refused".into()));
        return outcome;
    };
    if tls.spec.rules.len() > 1 {
        outcome.dropped = tls.spec.rules.len() - 1;
        problems.push(warn(format!(
            "only the first of {} rules is served (a TLSRoute has one)",
            tls.spec.rules.len()
        )));
    }
    let key = match rule.backend_refs.as_slice() {
        [] => {
            problems.push(warn(
                "rules[0]: no backendRefs; connections are refused".into(),
            ));
            builder.no_backend(route.ns)
        }
        [b] => {
            let asker = Asker {
                object: &object,
                file: route.src.file.as_deref(),
                service_upstream: false,
            };
            let http = UpstreamProtocol::Http;
            match backend(route, b, http, None, index, builder, &asker, problems) {
                Ok(key) => key,
                Err((reason, message)) => {
                    problems.push(warn(format!(
                        "rules[0].backendRefs[0]: {message}; connections are refused"
                    )));
                    outcome.bad_ref = Some((reason, message));
                    builder.no_backend(route.ns)
                }
            }
        }
        more => {
            problems.push(
                Problem::error(
                    Some(object.clone()),
                    format!(
                        "rules[0]: {} backendRefs: weighted TLSRoute backends are not supported yet (one is); rule left out",
                        more.len()
                    ),
                )
                .in_file(file.clone()),
            );
            outcome.dropped += 1;
            return outcome;
        }
    };
    let source = route.source();
    let mut hosts: Vec<HostMatch> = attached.iter().map(|a| a.host.clone()).collect();
    hosts.dedup();
    for host in hosts {
        let host = match host {
            HostMatch::Any => {
                problems.push(warn(
                    "a passthrough route needs a hostname (the TLS server name picks the backend); neither the route nor the listener has one".into(),
                ));
                continue;
            }
            // Gateway API wildcards take any number of labels.
            HostMatch::Wildcard(s) => HostMatch::Suffix(s),
            other => other,
        };
        if let Err(owner) =
            builder.add_gateway_passthrough(host.clone(), key.clone(), source.clone())
        {
            problems.push(warn(format!(
                "hostname {host:?} is already relayed by {owner}, an older route; not served by this one"
            )));
        }
    }
    outcome
}
