//! What a rule asks of a request besides host and path: HTTPRoute's method,
//! header and query parameter matches and the Gateway listener the request
//! arrived on (TLS or not, local port). Compiled once per table, regexes
//! included; checked only for the rules that carry them.

use httparse::Header;
use rauta_shared::config::{self, StringMatch, ValueMatch};
use regex::bytes::Regex;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::sync::Arc;

/// The request as conditions see it.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The method as sent.
    pub method: &'a str,
    /// Every header, in order.
    pub headers: &'a [Header<'a>],
    /// The target in origin form; its query is looked for only when a
    /// condition asks.
    pub target: &'a str,
    /// The connection is TLS.
    pub tls: bool,
    /// The local port the connection arrived on.
    pub port: u16,
}

impl Facts<'_> {
    /// A request with no method, header or query, on a plain port 0: what
    /// a lookup by host and path alone checks conditions against.
    pub const NONE: Facts<'static> = Facts {
        method: "",
        headers: &[],
        target: "",
        tls: false,
        port: 0,
    };

    /// The first value of header `name` (lower-case).
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// The raw query string (without `?` and fragment), if any.
    fn query(&self) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query.split('#').next()
    }
}

/// The value of the first parameter named exactly `name` in a raw query
/// string; a parameter without `=` has the empty value.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then_some(v)
    })
}

/// The value regexes of one table, by pattern: each pattern is compiled
/// once and shared, match caches included, by every rule that uses it.
#[derive(Debug, Default)]
pub struct Regexes(FxHashMap<Box<str>, Arc<Regex>>);

impl Regexes {
    /// The compiled `pattern`, anchored at both ends.
    fn get(&mut self, pattern: &str) -> Result<Arc<Regex>, regex::Error> {
        if let Some(re) = self.0.get(pattern) {
            return Ok(re.clone());
        }
        let re = Arc::new(Regex::new(&format!("^(?:{pattern})$"))?);
        self.0.insert(pattern.into(), re.clone());
        Ok(re)
    }
}

/// How a header or parameter value is compared.
#[derive(Debug)]
enum Value {
    Exact(Box<[u8]>),
    /// Anchored at both ends: the whole value matches.
    Regex(Arc<Regex>),
}

impl Value {
    fn compile(m: &StringMatch, regexes: &mut Regexes) -> Result<Value, regex::Error> {
        Ok(match m {
            StringMatch::Exact(v) => Value::Exact(v.as_bytes().into()),
            StringMatch::RegularExpression(p) => Value::Regex(regexes.get(p)?),
        })
    }

    fn matches(&self, got: &[u8]) -> bool {
        match self {
            Value::Exact(want) => **want == *got,
            Value::Regex(re) => re.is_match(got),
        }
    }

    /// `= "v"` or `~ "pattern"`, as `/routes` shows it.
    fn describe(&self) -> String {
        match self {
            Value::Exact(v) => format!("= {:?}", String::from_utf8_lossy(v)),
            // The pattern as written, without the anchors added here.
            Value::Regex(re) => {
                let p = re.as_str();
                format!("~ {:?}", &p[4..p.len() - 2])
            }
        }
    }
}

/// A rule's conditions, compiled; all must hold.
#[derive(Debug)]
pub struct Conditions {
    method: Option<Box<str>>,
    headers: Box<[(Box<str>, Value)]>,
    query: Box<[(Box<str>, Value)]>,
    tls: Option<bool>,
    port: Option<u16>,
}

/// One condition and whether a request meets it, for `/debug/route`.
#[derive(Debug, Serialize)]
pub struct Verdict {
    /// The condition, as `/routes` shows it.
    pub condition: String,
    /// Whether it holds.
    pub holds: bool,
    /// What the request has there (`absent` when it lacks it).
    pub got: String,
}

impl Conditions {
    /// Compiles `c` with the table's `regexes`; `None` when it asks nothing.
    pub fn compile(
        c: &config::Conditions,
        regexes: &mut Regexes,
    ) -> Result<Option<Conditions>, regex::Error> {
        if c.is_empty() {
            return Ok(None);
        }
        let mut values = |list: &[ValueMatch], lower: bool| {
            list.iter()
                .map(|m| {
                    let name = if lower {
                        m.name.to_ascii_lowercase()
                    } else {
                        m.name.clone()
                    };
                    Ok((name.into_boxed_str(), Value::compile(&m.value, regexes)?))
                })
                .collect::<Result<Box<[_]>, regex::Error>>()
        };
        Ok(Some(Conditions {
            method: c.method.as_deref().map(Into::into),
            headers: values(&c.headers, true)?,
            query: values(&c.query, false)?,
            tls: c.tls,
            port: c.port,
        }))
    }

    /// Whether every condition holds for `facts`: the cheap ones first.
    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        self.tls.is_none_or(|tls| tls == facts.tls)
            && self.port.is_none_or(|port| port == facts.port)
            && self.method.as_deref().is_none_or(|m| m == facts.method)
            && self
                .headers
                .iter()
                .all(|(name, want)| facts.header(name).is_some_and(|got| want.matches(got)))
            && (self.query.is_empty() || {
                let query = facts.query().unwrap_or("");
                self.query.iter().all(|(name, want)| {
                    query_param(query, name).is_some_and(|got| want.matches(got.as_bytes()))
                })
            })
    }

    /// Each condition in words, in the order [`Conditions::holds`] checks them.
    pub fn describe(&self) -> Vec<String> {
        self.verdicts(&Facts::NONE)
            .into_iter()
            .map(|v| v.condition)
            .collect()
    }

    /// Each condition with whether it holds for `facts`.
    pub fn verdicts(&self, facts: &Facts<'_>) -> Vec<Verdict> {
        let mut out = Vec::new();
        let mut push = |condition: String, holds: bool, got: String| {
            out.push(Verdict {
                condition,
                holds,
                got,
            })
        };
        let lossy = |v: Option<&[u8]>| {
            v.map_or("absent".into(), |v| {
                format!("{:?}", String::from_utf8_lossy(v))
            })
        };
        if let Some(tls) = self.tls {
            let name = |tls| {
                if tls {
                    "TLS listener"
                } else {
                    "plain listener"
                }
            };
            push(name(tls).into(), tls == facts.tls, name(facts.tls).into());
        }
        if let Some(port) = self.port {
            push(
                format!("port {port}"),
                port == facts.port,
                facts.port.to_string(),
            );
        }
        if let Some(m) = &self.method {
            push(
                format!("method {m}"),
                **m == *facts.method,
                facts.method.into(),
            );
        }
        for (name, want) in &*self.headers {
            let got = facts.header(name);
            let holds = got.is_some_and(|g| want.matches(g));
            push(
                format!("header {name} {}", want.describe()),
                holds,
                lossy(got),
            );
        }
        let query = facts.query().unwrap_or("");
        for (name, want) in &*self.query {
            let got = query_param(query, name);
            let holds = got.is_some_and(|g| want.matches(g.as_bytes()));
            push(
                format!("query {name} {}", want.describe()),
                holds,
                lossy(got.map(str::as_bytes)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(name: &str, v: &str) -> ValueMatch {
        ValueMatch {
            name: name.into(),
            value: StringMatch::Exact(v.into()),
        }
    }

    fn regex(name: &str, p: &str) -> ValueMatch {
        ValueMatch {
            name: name.into(),
            value: StringMatch::RegularExpression(p.into()),
        }
    }

    fn facts<'a>(headers: &'a [Header<'a>], target: &'a str) -> Facts<'a> {
        Facts {
            method: "GET",
            headers,
            target,
            tls: false,
            port: 80,
        }
    }

    #[test]
    fn a_pattern_is_compiled_once_per_table() {
        let mut regexes = Regexes::default();
        let a = regexes.get("v[0-9]+").expect("compiles");
        let b = regexes.get("v[0-9]+").expect("compiles");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &regexes.get("v[0-9]").expect("compiles")));
        assert!(regexes.get("(").is_err());
    }

    #[test]
    fn nothing_asked_compiles_to_nothing() {
        let c = Conditions::compile(&config::Conditions::default(), &mut Regexes::default())
            .expect("compiles");
        assert!(c.is_none());
    }

    #[test]
    fn headers_first_value_case_insensitive_name_whole_value() {
        let c = Conditions::compile(
            &config::Conditions {
                headers: vec![exact("version", "two"), regex("x-id", "[0-9]+")],
                ..Default::default()
            },
            &mut Regexes::default(),
        )
        .expect("compiles")
        .expect("asks something");
        /// Header lines (name, value) of one request.
        type Lines = &'static [(&'static str, &'static [u8])];
        let h = |pairs: Lines| -> Vec<Header<'static>> {
            pairs
                .iter()
                .map(|(name, value)| Header { name, value })
                .collect()
        };
        let cases: &[(Lines, bool)] = &[
            (&[("Version", b"two"), ("X-ID", b"42")], true),
            (&[("version", b"Two"), ("x-id", b"42")], false), // values are case-sensitive
            (&[("version", b"two"), ("x-id", b"42a")], false), // the regex is anchored
            (&[("version", b"two"), ("x-id", b"a42")], false),
            (&[("version", b"two")], false), // absent
            (
                &[("version", b"one"), ("version", b"two"), ("x-id", b"1")],
                false,
            ), // first value
            (
                &[("version", b"two"), ("version", b"one"), ("x-id", b"1")],
                true,
            ),
        ];
        for (headers, want) in cases {
            let headers = h(headers);
            assert_eq!(c.holds(&facts(&headers, "/")), *want, "{headers:?}");
        }
    }

    #[test]
    fn query_first_occurrence_exact_name_raw_value() {
        let c = Conditions::compile(
            &config::Conditions {
                query: vec![exact("animal", "whale"), regex("n", "1|2")],
                ..Default::default()
            },
            &mut Regexes::default(),
        )
        .expect("compiles")
        .expect("asks something");
        let cases = [
            ("/?animal=whale&n=1", true),
            ("/x?n=2&animal=whale&other", true),
            ("/?ANIMAL=whale&n=1", false), // names are case-sensitive
            ("/?animal=Whale&n=1", false),
            ("/?animal=whale&n=12", false),               // anchored
            ("/?animal=dolphin&animal=whale&n=1", false), // first occurrence
            ("/?animal=whale&animal=dolphin&n=1", true),
            ("/?animal=whal%65&n=1", false), // not percent-decoded
            ("/?animal=whale", false),
            ("/?animal=whale&n=1#frag", true),
            ("/", false),
        ];
        for (target, want) in cases {
            assert_eq!(c.holds(&facts(&[], target)), want, "{target}");
        }
        assert_eq!(query_param("a&b=1", "a"), Some(""));
        assert_eq!(query_param("a=1=2", "a"), Some("1=2"));
    }

    #[test]
    fn method_listener_and_port() {
        let c = Conditions::compile(
            &config::Conditions {
                method: Some("POST".into()),
                tls: Some(true),
                port: Some(8443),
                ..Default::default()
            },
            &mut Regexes::default(),
        )
        .expect("compiles")
        .expect("asks something");
        let ok = Facts {
            method: "POST",
            headers: &[],
            target: "/",
            tls: true,
            port: 8443,
        };
        assert!(c.holds(&ok));
        assert!(!c.holds(&Facts {
            method: "GET",
            ..ok
        }));
        assert!(!c.holds(&Facts { tls: false, ..ok }));
        assert!(!c.holds(&Facts { port: 443, ..ok }));
        assert!(!c.holds(&Facts::NONE));
        let verdicts = c.verdicts(&Facts { port: 443, ..ok });
        let failed: Vec<_> = verdicts.iter().filter(|v| !v.holds).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].condition, "port 8443");
        assert_eq!(failed[0].got, "443");
        assert_eq!(c.describe(), ["TLS listener", "port 8443", "method POST"]);
    }

    #[test]
    fn described_as_written() {
        let c = Conditions::compile(
            &config::Conditions {
                headers: vec![regex("x-a", "a|b")],
                query: vec![exact("q", "1")],
                ..Default::default()
            },
            &mut Regexes::default(),
        )
        .expect("compiles")
        .expect("asks something");
        assert_eq!(c.describe(), [r#"header x-a ~ "a|b""#, r#"query q = "1""#]);
    }
}
