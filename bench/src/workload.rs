//! What every proxy serves in the benchmark, and what the load asks for:
//! the backend's bodies, the generated many-routes table and the TLS host.
//! Shared by the proxies' configuration (`peers`) and the load generators
//! (`load`).

/// The small body every backend answer carries (except `/1m`).
pub const SMALL_BODY: &str = "hello from the rauta-bench backend\n";
/// Path of the 1 MiB response.
pub const LARGE_PATH: &str = "/1m";
/// Size of the large response.
pub const LARGE_BYTES: usize = 1 << 20;

/// A generated route table: `hosts` × `paths` Prefix rules, host
/// `h{i}.bench.local`, path `/p{j}`, all to the one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routes {
    /// Distinct hosts.
    pub hosts: usize,
    /// Paths per host.
    pub paths: usize,
}

impl Routes {
    /// `total` rules as hosts of 100 paths (fewer paths when total < 100).
    pub fn with_total(total: usize) -> Routes {
        let paths = total.clamp(1, 100);
        Routes {
            hosts: total.div_ceil(paths).max(1),
            paths,
        }
    }

    /// Number of rules.
    pub fn total(self) -> usize {
        self.hosts * self.paths
    }
}

/// Which routing configuration a proxy starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// One catch-all rule.
    Basic,
    /// The generated many-routes table.
    Many(Routes),
    /// One rule with a typical ingress-nginx policy stack: rewrite, CORS,
    /// an allow-list and a rate limit far above the load.
    Policies,
}

/// Host of the policy-stack rule.
pub const POLICY_HOST: &str = "policies.bench.local";
/// The Origin the policy-stack load sends (the one the rule allows).
pub const POLICY_ORIGIN: &str = "https://app.bench.local";

/// Host name the certificate is for.
pub const TLS_HOST: &str = "bench.local";

/// The host and path of a request that a table routes to the backend.
pub fn probe(table: Table) -> (String, String) {
    match table {
        Table::Basic => ("bench.local".into(), "/".into()),
        Table::Policies => (POLICY_HOST.into(), "/app/probe".into()),
        Table::Many(r) => (
            format!("h{}.bench.local", r.hosts - 1),
            format!("/p{}/probe", r.paths - 1),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_split_into_hosts_of_100_paths() {
        assert_eq!(Routes::with_total(100_000).hosts, 1000);
        assert_eq!(Routes::with_total(100_000).total(), 100_000);
        assert_eq!(Routes::with_total(10).paths, 10);
        assert_eq!(Routes::with_total(0).total(), 1);
    }

    #[test]
    fn probe_hits_the_last_generated_rule() {
        let r = Routes { hosts: 3, paths: 2 };
        assert_eq!(
            probe(Table::Many(r)),
            ("h2.bench.local".into(), "/p1/probe".into())
        );
    }
}
