//! Process resource limits: the open-file limit raised at start, and the
//! per-shard connection cap sized so that the connections fit in it.

/// File descriptors kept out of the connection budget (listeners, the
/// admin port, logs, eBPF maps, the API client), at most a quarter.
const RESERVED_FDS: u64 = 256;

/// Descriptors one proxied client connection holds: its own and the
/// upstream connection's.
const FDS_PER_CONNECTION: u64 = 2;

/// The open-file limits after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoFile {
    /// The soft limit before the raise.
    pub was: u64,
    /// The soft limit in force.
    pub soft: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as Go does since
/// 1.19: the common soft default (1024) caps a proxy at ~500 requests in
/// flight, after which connects and accepts fail with EMFILE.
pub fn raise_nofile() -> std::io::Result<NoFile> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    if soft >= hard {
        return Ok(NoFile { was: soft, soft });
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    Ok(NoFile {
        was: soft,
        soft: hard,
    })
}

/// The most client connections per shard that `nofile` descriptors carry
/// across `shards` shards (at least 1).
pub fn connection_budget(nofile: u64, shards: usize) -> usize {
    let reserved = RESERVED_FDS.min(nofile / 4);
    let per_shard = nofile.saturating_sub(reserved) / FDS_PER_CONNECTION / (shards.max(1) as u64);
    usize::try_from(per_shard).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_leaves_room_for_the_process_and_two_fds_per_connection() {
        assert_eq!(connection_budget(1024, 1), (1024 - 256) / 2);
        assert_eq!(connection_budget(1024, 2), (1024 - 256) / 4);
        assert_eq!(connection_budget(200, 1), (200 - 50) / 2);
        assert_eq!(connection_budget(0, 4), 1);
        assert_eq!(connection_budget(1 << 20, 2), ((1 << 20) - 256) / 4);
    }

    #[test]
    fn raising_is_idempotent() {
        let first = raise_nofile().expect("getrlimit works");
        let again = raise_nofile().expect("getrlimit works");
        assert_eq!((again.was, again.soft), (first.soft, first.soft));
    }
}
