//! Why a request would go where it goes: the admin API's `/debug/route`.
//! Not on the hot path; it re-derives each candidate's verdict the slow,
//! readable way and takes the winner from the real lookup.

use super::conditions::{Facts, Verdict};
use super::{host, Match, Route, RouteTable};
use rauta_shared::config::PathType;
use serde::Serialize;

/// One rule that was considered.
#[derive(Debug, Serialize)]
pub struct Candidate {
    /// `namespace/name` of the object the rule came from.
    pub ingress: String,
    /// Its kind (`Ingress`, `HTTPRoute`).
    pub kind: &'static str,
    /// Rule host.
    pub host: String,
    /// Rule path.
    pub path: String,
    /// Path type.
    pub path_type: String,
    /// Backend name.
    pub backend: String,
    /// Whether the rule takes the request: its path matches and its
    /// conditions hold.
    pub matches: bool,
    /// Why, in words.
    pub reason: String,
    /// The rule's conditions, each with whether the request meets it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Verdict>,
}

/// The full explanation.
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// The host as matched (lower-case, without port), or why it is invalid.
    pub host: String,
    /// The request path (query removed).
    pub path: String,
    /// Which group of rules the host selected: `exact`, `wildcard`, `any` or `none`.
    pub host_match: &'static str,
    /// Rules of that group, each with its verdict.
    pub candidates: Vec<Candidate>,
    /// `rule`, `default-backend` or `no-route`.
    pub result: &'static str,
    /// The winning rule, if any.
    pub winner: Option<Candidate>,
    /// The decision in one sentence.
    pub why: String,
}

fn elements(path: &str) -> Vec<&str> {
    path.split('/').filter(|e| !e.is_empty()).collect()
}

fn verdict(route: &Route, path: &str) -> (bool, String) {
    match route.path_type {
        Some(PathType::Exact) if &*route.path == path => (true, "Exact: the path is equal".into()),
        Some(PathType::Exact) => (
            false,
            "Exact: the path differs (case and trailing slash count)".into(),
        ),
        Some(PathType::RegularExpression) => {
            match regex::Regex::new(&format!("^(?:{})$", route.path)) {
                Ok(re) if re.is_match(path) => (
                    true,
                    "RegularExpression: the whole path matches (case-sensitive)".into(),
                ),
                Ok(_) => (
                    false,
                    "RegularExpression: the whole path does not match (case-sensitive)".into(),
                ),
                Err(e) => (false, format!("RegularExpression: {e}")),
            }
        }
        Some(_) => {
            let (rule, req) = (elements(&route.path), elements(path));
            if rule.is_empty() {
                (true, "Prefix /: matches every path".into())
            } else if req.len() >= rule.len() && rule.iter().zip(&req).all(|(a, b)| a == b) {
                (
                    true,
                    format!("Prefix: the first {} path element(s) are equal", rule.len()),
                )
            } else {
                (
                    false,
                    "Prefix: the path elements differ (never a string prefix)".into(),
                )
            }
        }
        None => (true, "defaultBackend".into()),
    }
}

fn candidate(table: &RouteTable, route: &Route, path: &str, facts: &Facts<'_>) -> Candidate {
    let (mut matches, mut reason) = verdict(route, path);
    let conditions = (route.conditions()).map_or_else(Vec::new, |c| c.verdicts(facts));
    let failed = conditions.iter().filter(|v| !v.holds).count();
    if matches && failed > 0 {
        matches = false;
        reason = format!("{reason}, but {failed} of its conditions fail");
    } else if matches && !conditions.is_empty() {
        reason = format!("{reason}, and its conditions hold");
    }
    Candidate {
        ingress: format!("{}/{}", route.namespace, route.ingress),
        kind: route.kind.as_str(),
        host: route.host.to_string(),
        path: route.path.to_string(),
        path_type: route.path_type.map_or("-".into(), |t| format!("{t:?}")),
        backend: table.backend(route.backend).name.to_string(),
        matches,
        reason,
        conditions,
    }
}

/// Explains where a request for `raw_host` and `target` (path and query),
/// with `facts` for the rules' conditions, would be routed.
pub fn explain(table: &RouteTable, raw_host: &str, target: &str, facts: &Facts<'_>) -> Explanation {
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or(target)
        .to_string();
    let mut buf = [0u8; host::MAX_HOST_LEN];
    let Some(host) = host::normalize(raw_host.as_bytes(), &mut buf).map(str::to_string) else {
        return Explanation {
            host: format!("invalid host {raw_host:?}"),
            path,
            host_match: "none",
            candidates: Vec::new(),
            result: "no-route",
            winner: None,
            why: "the Host header is not a valid host: the client gets 400".into(),
        };
    };
    let (host_match, group) = if table.exact_hosts.contains_key(host.as_str()) {
        ("exact", host.clone())
    } else if let Some(parent) = host
        .split_once('.')
        .map(|(_, p)| p)
        .filter(|p| table.wildcard_hosts.contains_key(*p))
    {
        ("wildcard", format!("*.{parent}"))
    } else if let Some(suffix) = table.matching_suffix(&host) {
        ("suffix", format!("*.{suffix}"))
    } else if table.any_host.is_some() {
        ("any", "*".to_string())
    } else {
        ("none", String::new())
    };
    let candidates: Vec<Candidate> = table
        .routes()
        .iter()
        .filter(|r| !r.is_default_backend() && r.share_of().is_none() && *r.host == *group)
        .map(|r| candidate(table, r, &path, facts))
        .collect();
    let winner_route = match table.lookup_with(&host, &path, facts) {
        Match::Route { route, .. } => Some(table.route(route)),
        Match::None => None,
    };
    let group_note = match host_match {
        "exact" => format!(
            "host {host} has rules of its own, so wildcard and host-less rules are not considered"
        ),
        "wildcard" => format!("no rule names {host} exactly; the wildcard {group} covers it"),
        "suffix" => format!(
            "no rule names {host} exactly or by a one-label wildcard; the Gateway API wildcard {group} (any number of labels) covers it"
        ),
        "any" => {
            format!("no rule names {host} or a wildcard covering it; the host-less rules apply")
        }
        _ => format!("no rule covers host {host}"),
    };
    let gateway = if candidates
        .iter()
        .any(|c| !c.conditions.is_empty() || c.path_type == "RegularExpression")
    {
        "; RegularExpression paths come after Exact and before every prefix, longest pattern first; of the rules of one path the first whose conditions hold wins, and when none holds the next shorter path is tried"
    } else {
        ""
    };
    let (result, why) = match winner_route {
        Some(r) if r.is_default_backend() => (
            "default-backend",
            format!("{group_note}; none of their paths matches {path}, so the defaultBackend of {}/{} answers", r.namespace, r.ingress),
        ),
        Some(r) if table.host_rules(&host).is_some_and(|h| h.patterns().is_some()) => (
            "rule",
            format!(
                "{group_note}; the host is in regex mode (an Ingress of it uses use-regex or rewrite-target): every path is a case-insensitive regex anchored at the start, longest first, and the first match wins: {} of {}/{}",
                r.path, r.namespace, r.ingress
            ),
        ),
        Some(r) => (
            "rule",
            format!(
                "{group_note}; the longest matching path wins (Exact beats Prefix on a tie{gateway}): {} {:?} of {}/{}",
                r.path,
                r.path_type.unwrap_or(PathType::Prefix),
                r.namespace,
                r.ingress
            ),
        ),
        None => ("no-route", format!("{group_note}; no path matches {path} and there is no defaultBackend: 404")),
    };
    Explanation {
        host,
        path: path.clone(),
        host_match,
        candidates,
        result,
        winner: winner_route.map(|r| candidate(table, r, &path, facts)),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rauta_shared::config::{
        BackendConfig, Conditions, HostMatch, IngressRef, LbPolicy, RouteConfig, RouteKind,
        RuleConfig, ServicePort, StringMatch, ValueMatch,
    };

    fn table() -> RouteTable {
        let rule = |path: &str, path_type, version: Option<&str>| RuleConfig {
            host: HostMatch::Exact("gw.example".into()),
            path: path.into(),
            path_type,
            backend: 0,
            source: IngressRef {
                kind: RouteKind::HttpRoute,
                ..IngressRef::ingress("web", "route")
            },
            ssl_redirect: false,
            policy: Default::default(),
            conditions: version.map(|v| {
                Box::new(Conditions {
                    headers: vec![ValueMatch {
                        name: "version".into(),
                        value: StringMatch::Exact(v.into()),
                    }],
                    ..Default::default()
                })
            }),
        };
        let config = RouteConfig {
            rules: vec![
                rule("/v2", PathType::Prefix, Some("two")),
                rule("/v2/[0-9]+", PathType::RegularExpression, None),
                rule("/", PathType::Prefix, None),
            ],
            backends: vec![BackendConfig {
                name: "web/svc:80".into(),
                namespace: "web".into(),
                service: "svc".into(),
                port: ServicePort::Number(80),
                endpoints: Vec::new(),
                policy: LbPolicy::RoundRobin,
                protocol: Default::default(),
                tls: None,
            }],
            ..RouteConfig::default()
        };
        RouteTable::compile(&config).expect("compiles")
    }

    #[test]
    fn conditions_are_explained_one_by_one() {
        let table = table();
        let headers = [httparse::Header {
            name: "Version",
            value: b"one",
        }];
        let facts = Facts {
            method: "GET",
            headers: &headers,
            target: "/v2/x",
            tls: false,
            port: 80,
        };
        let e = explain(&table, "gw.example", "/v2/x", &facts);
        assert_eq!(e.result, "rule");
        let winner = e.winner.as_ref().expect("a winner");
        assert_eq!((winner.path.as_str(), winner.kind), ("/", "HTTPRoute"));
        let v2 = &e.candidates[0];
        assert!(!v2.matches, "{}", v2.reason);
        assert!(
            v2.reason.contains("1 of its conditions fail"),
            "{}",
            v2.reason
        );
        assert_eq!(v2.conditions[0].condition, r#"header version = "two""#);
        assert_eq!(v2.conditions[0].got, r#""one""#);
        let regex = &e.candidates[1];
        assert!(!regex.matches, "the whole path: {}", regex.reason);
        assert!(
            e.why.contains("RegularExpression paths come after Exact"),
            "{}",
            e.why
        );
        // Met, the condition takes the request.
        let headers = [httparse::Header {
            name: "version",
            value: b"two",
        }];
        let e = explain(
            &table,
            "gw.example",
            "/v2/x",
            &Facts {
                headers: &headers,
                ..facts
            },
        );
        assert_eq!(e.winner.map(|w| w.path), Some("/v2".into()));
        let e = explain(&table, "gw.example", "/v2/12", &facts);
        assert_eq!(
            e.winner.map(|w| w.path_type),
            Some("RegularExpression".into())
        );
    }
}
