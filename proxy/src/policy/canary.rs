//! Canary backends (`canary-by-header`, `-value`, `-pattern`,
//! `-by-cookie`, `-weight`): which of a route's two backends takes a
//! request, in ingress-nginx's order: header, then cookie, then weight.

use super::cookie;
use crate::balance::least_request::Rng;
use crate::http::request::RequestHead;
use rauta_shared::policy::Canary as CanaryPolicy;

/// How the canary header's value is judged.
#[derive(Debug)]
enum HeaderTest {
    /// `always` / `never`; any other value falls through.
    Keywords,
    /// Exactly this value selects the canary; others fall through.
    Value(Box<str>),
    /// A match selects the canary; no match falls through.
    Pattern(regex::bytes::Regex),
    /// The pattern does not compile: the header sends to the main backend.
    Broken,
}

/// A compiled [`CanaryPolicy`].
#[derive(Debug)]
pub struct Canary {
    /// The canary's backend.
    pub backend: usize,
    header: Option<(Box<str>, HeaderTest)>,
    cookie: Option<Box<str>>,
    weight: u32,
    total: u32,
}

/// What decided a request's backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The canary.
    Canary,
    /// The main backend, and no later test may change it.
    Main,
    /// No rule said anything; the next one decides.
    Undecided,
}

impl Canary {
    /// Compiles `policy`; a pattern that does not compile is kept as such.
    pub fn compile(policy: &CanaryPolicy) -> Canary {
        let header = policy.header.as_deref().map(|name| {
            let test = match (&policy.header_value, &policy.header_pattern) {
                (Some(v), _) => HeaderTest::Value(v.as_str().into()),
                (None, Some(p)) => match regex::bytes::Regex::new(p) {
                    Ok(re) => HeaderTest::Pattern(re),
                    Err(_) => HeaderTest::Broken,
                },
                (None, None) => HeaderTest::Keywords,
            };
            (Box::from(name), test)
        });
        Canary {
            backend: policy.backend,
            header,
            cookie: policy.cookie.as_deref().map(Into::into),
            weight: policy.weight,
            total: policy.weight_total.max(100),
        }
    }

    /// Header, then cookie: what they say about `head`.
    pub fn by_request(&self, head: &RequestHead<'_, '_>) -> Decision {
        if let Some((name, test)) = &self.header {
            if let Some(value) = head.header(name) {
                let decision = match test {
                    HeaderTest::Value(v) if value == v.as_bytes() => Decision::Canary,
                    HeaderTest::Value(_) => Decision::Undecided,
                    HeaderTest::Pattern(re) if re.is_match(value) => Decision::Canary,
                    HeaderTest::Pattern(_) => Decision::Undecided,
                    HeaderTest::Broken => Decision::Main,
                    HeaderTest::Keywords => keyword(value),
                };
                if decision != Decision::Undecided {
                    return decision;
                }
            }
        }
        if let Some(name) = &self.cookie {
            if let Some(value) = cookie::get(head, name) {
                let decision = keyword(value);
                if decision != Decision::Undecided {
                    return decision;
                }
            }
        }
        Decision::Undecided
    }

    /// The whole decision: header, cookie, then `random(1..total) <= weight`.
    pub fn choose(&self, head: &RequestHead<'_, '_>, rng: &Rng) -> bool {
        match self.by_request(head) {
            Decision::Canary => true,
            Decision::Main => false,
            Decision::Undecided => {
                self.weight > 0 && (rng.next() % u64::from(self.total)) < u64::from(self.weight)
            }
        }
    }
}

fn keyword(value: &[u8]) -> Decision {
    match value {
        b"always" => Decision::Canary,
        b"never" => Decision::Main,
        _ => Decision::Undecided,
    }
}
