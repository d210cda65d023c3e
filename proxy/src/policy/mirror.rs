//! Request mirroring (`mirror-target`, HTTPRoute `RequestMirror`): which
//! copies a request gets and what their heads say. The copies are chosen
//! and their heads written in the request phase, while the client's head
//! is still parsed; sending them is `exchange::mirror`'s.

use super::auth::Target;
use super::Request;
use crate::balance::least_request::Rng;
use rauta_shared::policy::Mirror;

/// One mirror of a route, compiled.
#[derive(Debug)]
pub struct Compiled {
    /// Where the copy goes.
    pub target: Target,
    numerator: u32,
    denominator: u32,
    host: Option<Box<str>>,
    path: Option<Box<str>>,
    /// The body is copied too.
    pub body: bool,
}

/// A route's mirrors.
#[derive(Debug)]
pub struct Mirrors(Box<[Compiled]>);

impl Mirrors {
    /// Compiles the route's mirrors; `None` when it has none.
    pub fn compile(mirrors: &[Mirror]) -> Result<Option<Mirrors>, String> {
        if mirrors.is_empty() {
            return Ok(None);
        }
        let list = mirrors
            .iter()
            .map(|m| {
                m.check()?;
                let host = m.host.clone().unwrap_or_default();
                Ok(Compiled {
                    target: Target::compile(&m.target, &m.name, &host),
                    numerator: m.numerator,
                    denominator: m.denominator,
                    host: m.host.as_deref().map(Into::into),
                    path: m.path.as_deref().map(Into::into),
                    body: m.body,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Some(Mirrors(list.into_boxed_slice())))
    }

    /// The mirror at `i` (as [`Mirrors::chosen`] numbers them).
    pub fn get(&self, i: usize) -> Option<&Compiled> {
        self.0.get(i)
    }

    /// The mirrors that take a copy of this request, by their fraction.
    pub fn chosen<'m>(&'m self, rng: &'m Rng) -> impl Iterator<Item = (usize, &'m Compiled)> + 'm {
        self.0.iter().enumerate().filter(move |(_, m)| {
            m.numerator >= m.denominator
                || (m.numerator > 0
                    && rng.next() % u64::from(m.denominator) < u64::from(m.numerator))
        })
    }
}

impl Compiled {
    /// The copy's request target, when it is not the primary's: the
    /// template with `$request_uri` replaced by the client's target.
    pub fn target_for(&self, req: &Request<'_, '_, '_>) -> Option<String> {
        self.path
            .as_deref()
            .map(|p| p.replace("$request_uri", req.head.origin_target))
    }

    /// The copy's Host, when it is not the primary's.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rauta_shared::policy::AuthTarget;

    fn mirror(numerator: u32, denominator: u32) -> Mirror {
        Mirror {
            target: AuthTarget::Backend(0),
            numerator,
            denominator,
            host: None,
            path: Some("/copy$request_uri".into()),
            body: true,
            name: "m".into(),
        }
    }

    #[test]
    fn the_share_decides_which_mirrors_take_a_copy() {
        let m = Mirrors::compile(&[mirror(1, 1), mirror(0, 100), mirror(1, 4)])
            .expect("valid")
            .expect("some");
        let rng = Rng::new(7);
        let mut taken = [0u32; 3];
        for _ in 0..4000 {
            for (i, _) in m.chosen(&rng) {
                taken[i] += 1;
            }
        }
        assert_eq!(taken[0], 4000, "all");
        assert_eq!(taken[1], 0, "none");
        assert!(
            (800..1200).contains(&taken[2]),
            "about a quarter: {}",
            taken[2]
        );
    }

    #[test]
    fn what_the_proxy_cannot_use_does_not_compile() {
        assert!(Mirrors::compile(&[]).expect("empty").is_none());
        assert!(Mirrors::compile(&[mirror(1, 0)]).is_err());
        let mut bad_path = mirror(1, 1);
        bad_path.path = Some("copy".into());
        assert!(Mirrors::compile(&[bad_path]).is_err());
        let mut bad_host = mirror(1, 1);
        bad_host.host = Some("a\r\nb".into());
        assert!(Mirrors::compile(&[bad_host]).is_err());
    }
}
