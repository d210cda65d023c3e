//! Route lookup against a naive model, as a check that panics when they
//! disagree: the fuzz target (`proxy/fuzz`, `route_lookup`) and the unit
//! tests run it on arbitrary bytes, read as a small route table and the
//! requests to look up. The model is a linear scan over the rules written
//! from the Ingress spec (networking.k8s.io/v1) and ingress-nginx's
//! documented choices where the spec leaves room:
//!
//! - host: an exact host, else a `server-alias` of one, else the one-label
//!   wildcard, else the rules without host; the chosen host owns the
//!   request (no fall-through to a less specific host), as ingress-nginx's
//!   server blocks do;
//! - path: an Exact rule equal to the path wins (it is as long as a match
//!   can be, and wins ties); else the Prefix (or ImplementationSpecific)
//!   rule with the most path elements that are the request's first
//!   elements (split on `/`, empty elements ignored); among equals the
//!   first rule;
//! - regex mode (ingress-nginx's `use-regex` on any Ingress of the host):
//!   every path of the host is a case-insensitive pattern anchored at the
//!   start, the longest path string first, then the greater string;
//! - nothing matches: the default backend, if any.
//!
//! With the input's Gateway API bit, rules may also have HTTPRoute
//! `RegularExpression` paths (the whole path, case-sensitive; after Exact,
//! before every prefix; the longest pattern first, then the pattern seen
//! first) and conditions (method, a header, a query parameter, TLS, port),
//! and requests carry what those look at. A rule matches when its path
//! does and its conditions hold; the order above decides among those,
//! rules of one path in config order.

use super::conditions::Facts;
use super::{Match, RouteTable};
use rauta_shared::config::{
    BackendConfig, Conditions, HostMatch, IngressRef, LbPolicy, PathType, RouteConfig, RuleConfig,
    ServicePort, StringMatch, ValueMatch,
};
use rauta_shared::policy::HostPolicy;

/// DNS labels hosts are made of: few, so that rules and requests meet.
const LABELS: [&str; 4] = ["a", "b", "www", "x"];
/// Path elements: `.` is any character in regex mode, `A` differs from
/// `a` but in regex mode, `é` is two octets, `` makes `//`.
const ELEMENTS: [&str; 8] = ["a", "b", "ab", "", ".", "A", "é", "a.b"];
/// Most rules and requests read from one input.
const MAX_RULES: usize = 16;
const MAX_REQUESTS: usize = 32;

/// Reads `input` as a route table and requests, and checks that the
/// compiled table answers every request as the model does.
pub fn check_lookup(input: &[u8]) {
    let case = Case::read(&mut Reader(input));
    let table = match RouteTable::compile(&case.config) {
        Ok(table) => table,
        Err(e) => panic!("the table does not compile: {e}\n{:#?}", case.config),
    };
    for req in &case.requests {
        let headers: Vec<httparse::Header<'_>> = (req.headers.iter())
            .map(|(name, value)| httparse::Header {
                name,
                value: value.as_bytes(),
            })
            .collect();
        let target = format!("{}{}", req.path, req.query);
        let facts = Facts {
            method: req.method,
            headers: &headers,
            target: &target,
            tls: req.tls,
            port: req.port,
        };
        let got = match table.lookup_with(&req.host, &req.path, &facts) {
            Match::Route { route, .. } => Some(route as usize),
            Match::None => None,
        };
        let want = case.model(req);
        assert_eq!(
            got,
            want,
            "lookup of {req:?} (rules are #0.., the default backend #{})\n{:#?}\n{:#?}",
            case.config.rules.len(),
            case.config.rules,
            case.config.hosts
        );
    }
}

/// Compiles a configuration the translation let through: it must compile,
/// since the translation checks regexes, rewrites and policies (a compile
/// error here is a translation bug; `proxy/fuzz`'s `manifests` target).
pub fn check_compiles(config: &RouteConfig) {
    if let Err(e) = RouteTable::compile(config) {
        panic!("a translated configuration does not compile: {e}\n{config:#?}");
    }
}

/// The input, an octet at a time; zero once it is used up.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One to three labels, from one octet.
    fn host(&mut self) -> String {
        let b = self.byte();
        let count = 1 + usize::from(b & 3) % 3;
        (0..count)
            .map(|i| LABELS[usize::from(b >> (2 + 2 * i)) & 3])
            .collect::<Vec<_>>()
            .join(".")
    }

    /// `/` and up to four elements, maybe a trailing `/`; `rooted: false`
    /// lets a request path lack its leading `/`.
    fn path(&mut self, rooted: bool) -> String {
        let b = self.byte();
        let mut path = String::new();
        if rooted || b & 0x10 == 0 {
            path.push('/');
        }
        let elements: Vec<&str> = (0..b % 5)
            .map(|_| ELEMENTS[usize::from(self.byte()) % ELEMENTS.len()])
            .collect();
        path.push_str(&elements.join("/"));
        if b & 0x08 != 0 && !elements.is_empty() {
            path.push('/');
        }
        path
    }

    /// A rule's conditions, from one octet: method, header `x-v`, query
    /// parameter `a`, TLS, port 8080 (two bits each for the first three).
    fn conditions(&mut self) -> Option<Box<Conditions>> {
        let b = self.byte();
        let value = |code: u8, values: [Option<StringMatch>; 4]| {
            values.into_iter().nth(usize::from(code & 3)).flatten()
        };
        let exact = |v: &str| Some(StringMatch::Exact(v.into()));
        let regex = |v: &str| Some(StringMatch::RegularExpression(v.into()));
        let named = |name: &str, value: Option<StringMatch>| {
            value.map(|value| ValueMatch {
                name: name.into(),
                value,
            })
        };
        let c = Conditions {
            method: [None, Some("GET"), Some("POST"), None][usize::from(b & 3)].map(Into::into),
            headers: named(
                "x-v",
                value(b >> 2, [None, exact("1"), regex("[12]"), regex("1")]),
            )
            .into_iter()
            .collect(),
            query: named(
                "a",
                value(b >> 4, [None, exact("1"), regex("1|2"), exact("")]),
            )
            .into_iter()
            .collect(),
            tls: (b & 0x40 != 0).then_some(true),
            port: (b & 0x80 != 0).then_some(8080),
        };
        // Code 3 for the method: present but empty when nothing else is asked.
        (!c.is_empty() || b & 3 == 3).then(|| Box::new(c))
    }

    /// What a request carries besides host and path, from two octets.
    fn facts(&mut self, host: String, path: String) -> Request {
        let (b, c) = (self.byte(), self.byte());
        let headers: &[(&str, &str)] = match (b >> 1) & 7 {
            0 => &[],
            1 => &[("X-V", "1")],
            2 => &[("x-v", "2")],
            3 => &[("x-v", "11")],
            4 => &[("x-v", "1"), ("x-v", "2")],
            5 => &[("x-v", "2"), ("X-V", "1")],
            6 => &[("x-v", "")],
            _ => &[("x-other", "1")],
        };
        let query = [
            "", "?a=1", "?a=2", "?b=1&a=1", "?a=2&a=1", "?A=1", "?a", "?a=11",
        ];
        Request {
            host,
            path,
            method: if b & 1 == 0 { "GET" } else { "POST" },
            headers: (headers.iter())
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            query: query[usize::from(b >> 4) & 7].into(),
            tls: b & 0x80 != 0,
            port: if c & 1 == 0 { 80 } else { 8080 },
        }
    }
}

/// A request to look up.
#[derive(Debug)]
struct Request {
    host: String,
    path: String,
    method: &'static str,
    headers: Vec<(String, String)>,
    /// `?...`, or empty.
    query: String,
    tls: bool,
    port: u16,
}

impl Request {
    fn plain(host: &str, path: &str) -> Request {
        Request {
            host: host.into(),
            path: path.into(),
            method: "",
            headers: Vec::new(),
            query: String::new(),
            tls: false,
            port: 0,
        }
    }
}

/// A route table and the requests to look up.
struct Case {
    config: RouteConfig,
    requests: Vec<Request>,
}

impl Case {
    fn read(r: &mut Reader<'_>) -> Case {
        let flags = r.byte();
        // Gateway API: RegularExpression paths, conditions and what
        // requests carry for them.
        let gateway = flags & 0x08 != 0;
        let mut config = RouteConfig {
            backends: vec![BackendConfig {
                name: "default/svc:80".into(),
                namespace: "default".into(),
                service: "svc".into(),
                port: ServicePort::Number(80),
                endpoints: Vec::new(),
                policy: LbPolicy::RoundRobin,
                protocol: Default::default(),
                tls: None,
            }],
            default_backend: (flags & 1 != 0).then_some(0),
            ..RouteConfig::default()
        };
        for _ in 0..usize::from(r.byte()) % (MAX_RULES + 1) {
            let kind = r.byte();
            let host = match kind % 4 {
                0 => HostMatch::Any,
                3 => HostMatch::Wildcard(r.host()),
                _ => HostMatch::Exact(r.host()),
            };
            let path_type = match (kind >> 2) % if gateway { 4 } else { 3 } {
                0 => PathType::Exact,
                1 => PathType::Prefix,
                2 => PathType::ImplementationSpecific,
                _ => PathType::RegularExpression,
            };
            let mut rule = rule(host, r.path(true), path_type);
            if gateway {
                rule.conditions = r.conditions();
            }
            config.rules.push(rule);
        }
        // Policies only for hosts that have rules, as the translation
        // writes them: regex mode and aliases.
        if !config.rules.is_empty() {
            for _ in 0..(flags >> 1) % 4 {
                let b = r.byte();
                let rule = &config.rules[usize::from(b) % config.rules.len()];
                let mut policy = HostPolicy::new(rule.host.clone());
                policy.regex = b & 0x80 != 0;
                for _ in 0..((b >> 5) & 3) % 3 {
                    policy.aliases.push(r.host());
                }
                config.hosts.push(policy);
            }
        }
        let mut requests = Vec::new();
        while !r.is_empty() && requests.len() < MAX_REQUESTS {
            let (host, path) = (r.host(), r.path(false));
            requests.push(match gateway {
                true => r.facts(host, path),
                false => Request::plain(&host, &path),
            });
        }
        Case { config, requests }
    }

    /// The route the model picks: a rule's index, the default backend's
    /// (one past the rules), or `None`.
    fn model(&self, req: &Request) -> Option<usize> {
        let (host, path) = (req.host.as_str(), req.path.as_str());
        let rules = &self.config.rules;
        let owner = self
            .exact(host)
            .or_else(|| {
                let target = self
                    .config
                    .hosts
                    .iter()
                    .filter(|p| matches!(p.host, HostMatch::Exact(_)))
                    .flat_map(|p| p.aliases.iter().map(move |a| (a, &p.host)))
                    .find(|(alias, _)| *alias == host)?
                    .1;
                self.exact(match target {
                    HostMatch::Exact(h) => h,
                    _ => return None,
                })
            })
            .or_else(|| {
                rules
                    .iter()
                    .find(|r| match &r.host {
                        HostMatch::Wildcard(suffix) => host
                            .strip_suffix(suffix.as_str())
                            .and_then(|l| l.strip_suffix('.'))
                            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
                        _ => false,
                    })
                    .map(|r| r.host.clone())
            })
            .or_else(|| {
                rules
                    .iter()
                    .any(|r| r.host == HostMatch::Any)
                    .then_some(HostMatch::Any)
            });
        let default = self.config.default_backend.map(|_| rules.len());
        let Some(owner) = owner else {
            return default;
        };
        let regex = self.config.hosts.iter().any(|p| p.host == owner && p.regex);
        let own = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.host == owner && holds(r.conditions.as_deref(), req));
        let found = if regex {
            // The longest path, then the greatest; the first rule of equals.
            own.filter(|(_, r)| pattern_matches(&r.path, path))
                .min_by(|(_, a), (_, b)| (b.path.len(), &b.path).cmp(&(a.path.len(), &a.path)))
                .map(|(i, _)| i)
        } else {
            let own: Vec<_> = own.collect();
            let exact = own
                .iter()
                .find(|(_, r)| r.path_type == PathType::Exact && r.path == path);
            // The longest pattern, then the pattern seen first, then the rule.
            let first_seen = |pattern: &str| {
                rules
                    .iter()
                    .position(|r| {
                        r.host == owner
                            && r.path_type == PathType::RegularExpression
                            && r.path == pattern
                    })
                    .unwrap_or(usize::MAX)
            };
            let regex = || {
                own.iter()
                    .filter(|(_, r)| r.path_type == PathType::RegularExpression)
                    .filter(|(_, r)| whole_pattern_matches(&r.path, path))
                    .min_by_key(|(i, r)| (std::cmp::Reverse(r.path.len()), first_seen(&r.path), *i))
                    .map(|(i, _)| *i)
            };
            exact.map(|(i, _)| *i).or_else(regex).or_else(|| {
                own.iter()
                    .filter(|(_, r)| {
                        !matches!(r.path_type, PathType::Exact | PathType::RegularExpression)
                    })
                    .filter_map(|(i, r)| Some((*i, prefix_elements(&r.path, path)?)))
                    // The most elements; the first rule of equals.
                    .min_by(|(i, a), (j, b)| b.cmp(a).then(i.cmp(j)))
                    .map(|(i, _)| i)
            })
        };
        found.or(default)
    }

    /// The host of the rules for exactly `host`, if any rule has it.
    fn exact(&self, host: &str) -> Option<HostMatch> {
        let want = HostMatch::Exact(host.to_string());
        self.config
            .rules
            .iter()
            .any(|r| r.host == want)
            .then_some(want)
    }
}

/// How many elements Prefix `rule` matches of `path`: `Some` when every
/// element of the rule is the path's element at its place.
/// A rule of Ingress `default/ing` to backend 0, as the model's tables use.
fn rule(host: HostMatch, path: String, path_type: PathType) -> RuleConfig {
    RuleConfig {
        host,
        path,
        path_type,
        backend: 0,
        source: IngressRef::ingress("default", "ing"),
        ssl_redirect: false,
        policy: Default::default(),
        conditions: None,
    }
}

fn prefix_elements(rule: &str, path: &str) -> Option<usize> {
    let rule: Vec<&str> = rule.split('/').filter(|e| !e.is_empty()).collect();
    let path: Vec<&str> = path.split('/').filter(|e| !e.is_empty()).collect();
    (path.len() >= rule.len() && rule.iter().zip(&path).all(|(r, p)| r == p)).then_some(rule.len())
}

/// Whether `c` holds for `req`, read straight from the configuration.
fn holds(c: Option<&Conditions>, req: &Request) -> bool {
    let Some(c) = c else { return true };
    let value_is = |m: &StringMatch, got: &str| match m {
        StringMatch::Exact(v) => got == v,
        // The model's patterns: alternatives of literals, whole value.
        StringMatch::RegularExpression(p) => match p.as_str() {
            "[12]" | "1|2" => got == "1" || got == "2",
            literal => got == literal,
        },
    };
    let header = |name: &str| {
        (req.headers.iter())
            .find(|(n, _)| n.to_ascii_lowercase() == name)
            .map(|(_, v)| v.as_str())
    };
    let param = |name: &str| {
        let query = req.query.strip_prefix('?')?;
        query
            .split('&')
            .find_map(|pair| match pair.split_once('=') {
                Some((n, v)) if n == name => Some(v),
                None if pair == name => Some(""),
                _ => None,
            })
    };
    c.method.as_deref().is_none_or(|m| m == req.method)
        && c.tls.is_none_or(|t| t == req.tls)
        && c.port.is_none_or(|p| p == req.port)
        && (c.headers.iter()).all(|m| header(&m.name).is_some_and(|v| value_is(&m.value, v)))
        && (c.query.iter()).all(|m| param(&m.name).is_some_and(|v| value_is(&m.value, v)))
}

/// The whole of `path` matches `pattern`, case-sensitively, for patterns
/// whose only special character is `.` (any character).
fn whole_pattern_matches(pattern: &str, path: &str) -> bool {
    pattern.chars().count() == path.chars().count()
        && pattern
            .chars()
            .zip(path.chars())
            .all(|(want, got)| want == '.' || want == got)
}

/// `^pattern` case-insensitively, for patterns whose only special
/// character is `.` (any character).
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let mut chars = path.chars();
    pattern.chars().all(|want| {
        chars
            .next()
            .is_some_and(|got| want == '.' || want.eq_ignore_ascii_case(&got))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_corpora_pass() {
        for seed in crate::fuzz_seeds("route_lookup") {
            check_lookup(&seed);
        }
        for seed in crate::fuzz_seeds("manifests") {
            let translation = rauta_k8s_sync::manifests::invariants::check_manifest(&seed);
            let translation = translation.expect("seeds are UTF-8");
            if !translation.is_rejected() {
                check_compiles(&translation.config);
            }
        }
    }

    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn generated_tables_agree_with_the_model() {
        let mut state = 0x0bad_cafe_dead_beef;
        for _ in 0..3_000 {
            let len = (next(&mut state) % 120) as usize;
            let input: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
            check_lookup(&input);
        }
    }

    #[test]
    fn the_model_reads_the_spec_examples() {
        let case = |rules: &[(&str, PathType)]| Case {
            config: RouteConfig {
                rules: rules
                    .iter()
                    .map(|(path, path_type)| rule(HostMatch::Any, (*path).into(), *path_type))
                    .collect(),
                ..RouteConfig::default()
            },
            requests: Vec::new(),
        };
        use PathType::{Exact, Prefix, RegularExpression};
        let model = |c: &Case, host: &str, path: &str| c.model(&Request::plain(host, path));
        let c = case(&[("/foo", Exact), ("/aaa/bbb/", Prefix), ("/", Prefix)]);
        assert_eq!(model(&c, "h", "/foo"), Some(0));
        assert_eq!(model(&c, "h", "/foo/"), Some(2));
        assert_eq!(model(&c, "h", "/aaa/bbb"), Some(1));
        assert_eq!(model(&c, "h", "/aaa/bbbxyz"), Some(2));
        let c = case(&[("/foo", Prefix), ("/foo", Exact)]);
        assert_eq!(model(&c, "h", "/foo"), Some(1), "Exact wins a tie");
        assert_eq!(model(&c, "h", "/foo/x"), Some(0));
        assert!(pattern_matches("/a.b", "/AxB/c"));
        assert!(!pattern_matches("/a.b", "/ab"));
        let c = case(&[("/a/.", RegularExpression), ("/a", Prefix), ("/a/b", Exact)]);
        assert_eq!(model(&c, "h", "/a/b"), Some(2), "Exact before regex");
        assert_eq!(model(&c, "h", "/a/c"), Some(0), "regex before prefix");
        assert_eq!(model(&c, "h", "/a/cd"), Some(1), "the whole path");
    }

    /// HTTPRoute's precedence as the conformance tests use it: the rules of
    /// one path in order, then the next shorter path.
    #[test]
    fn conditions_fall_back_to_the_next_rule_then_a_shorter_path() {
        let header = |v: &str| {
            Some(Box::new(Conditions {
                headers: vec![ValueMatch {
                    name: "version".into(),
                    value: StringMatch::Exact(v.into()),
                }],
                ..Default::default()
            }))
        };
        let mut rules = vec![
            rule(HostMatch::Any, "/".into(), PathType::Prefix),
            rule(HostMatch::Any, "/v2".into(), PathType::Prefix),
            rule(HostMatch::Any, "/v2".into(), PathType::Prefix),
            rule(HostMatch::Any, "/v2/x".into(), PathType::Exact),
            rule(
                HostMatch::Any,
                "/v2/[a-z]+".into(),
                PathType::RegularExpression,
            ),
        ];
        rules[0].conditions = header("one");
        rules[1].conditions = header("two");
        rules[2].conditions = Some(Box::new(Conditions {
            method: Some("POST".into()),
            ..Default::default()
        }));
        rules[3].conditions = header("three");
        rules[4].conditions = header("three");
        let config = RouteConfig {
            rules,
            backends: vec![BackendConfig {
                name: "default/svc:80".into(),
                namespace: "default".into(),
                service: "svc".into(),
                port: ServicePort::Number(80),
                endpoints: Vec::new(),
                policy: LbPolicy::RoundRobin,
                protocol: Default::default(),
                tls: None,
            }],
            default_backend: Some(0),
            ..RouteConfig::default()
        };
        let table = RouteTable::compile(&config).expect("compiles");
        let route = |method: &str, version: &str, path: &str| {
            let headers = [httparse::Header {
                name: "Version",
                value: version.as_bytes(),
            }];
            let facts = Facts {
                method,
                headers: &headers,
                target: path,
                tls: false,
                port: 80,
            };
            match table.lookup_with("h", path, &facts) {
                Match::Route { route, .. } => Some(route),
                Match::None => None,
            }
        };
        assert_eq!(route("GET", "two", "/v2/y"), Some(1));
        assert_eq!(
            route("POST", "one", "/v2/y"),
            Some(2),
            "the next rule of the path"
        );
        assert_eq!(route("GET", "one", "/v2/y"), Some(0), "a shorter path");
        assert_eq!(
            route("GET", "none", "/v2/y"),
            Some(5),
            "the default backend"
        );
        assert_eq!(route("GET", "three", "/v2/x"), Some(3), "Exact first");
        assert_eq!(
            route("GET", "three", "/v2/y"),
            Some(4),
            "regex before prefix"
        );
        assert_eq!(
            route("GET", "two", "/v2/x"),
            Some(1),
            "past Exact and regex"
        );
        // By host and path alone, no condition asking for something holds.
        assert_eq!(
            table.lookup("h", "/v2/y"),
            Match::Route {
                route: 5,
                backend: 0
            }
        );
    }
}
