//! What every proxy serves in the benchmark, and what the load asks for:
//! the backend's bodies, the generated many-routes table, the TLS host and
//! the unary gRPC call.
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
    /// The basic catch-all rule plus a gRPC route to the HTTP/2 cleartext
    /// origin (rauta: an Ingress annotated `backend-protocol: GRPC` on
    /// [`GRPC_PREFIX`]; nginx and HAProxy: a separate h2c port).
    Grpc,
}

/// Host of the policy-stack rule.
pub const POLICY_HOST: &str = "policies.bench.local";
/// The Origin the policy-stack load sends (the one the rule allows).
pub const POLICY_ORIGIN: &str = "https://app.bench.local";

/// Host name the certificate is for.
pub const TLS_HOST: &str = "bench.local";

/// The gRPC service's path prefix (rauta's gRPC Ingress rule).
pub const GRPC_PREFIX: &str = "/bench.Echo";
/// The path of the unary call (`/package.Service/Method`).
pub const GRPC_PATH: &str = "/bench.Echo/Unary";
/// The protobuf-shaped payload of the unary call (the origin echoes it).
pub const GRPC_PAYLOAD: &[u8] = b"\x0a\x21hello from the rauta-bench client";

/// A gRPC message as it travels in DATA frames: a compressed flag (0), the
/// payload length (4 bytes, big-endian), the payload.
pub fn grpc_frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(0);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The host and path of a request that a table routes to the backend.
pub fn probe(table: Table) -> (String, String) {
    match table {
        Table::Basic | Table::Grpc => ("bench.local".into(), "/".into()),
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
    fn grpc_frame_is_length_prefixed() {
        let f = grpc_frame(b"abc");
        assert_eq!(f, [0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(grpc_frame(GRPC_PAYLOAD).len(), 5 + GRPC_PAYLOAD.len());
        assert_eq!(usize::from(GRPC_PAYLOAD[1]) + 2, GRPC_PAYLOAD.len());
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
