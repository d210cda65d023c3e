//! Which CPUs the shards run on: `--cpus`, else the process's allowed set
//! (what taskset or a Kubernetes cpuset grants), never outside it.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The CPUs this process may run on, ascending.
pub fn allowed() -> std::io::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(std::io::Error::from)?;
    Ok((0..CpuSet::count())
        .filter(|c| set.is_set(*c).unwrap_or(false))
        .collect())
}

/// Parses a CPU list such as `0-3,6`.
pub fn parse_list(list: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (part, part),
        };
        let lo: usize = lo
            .parse()
            .map_err(|_| format!("invalid CPU {lo:?} in {list:?}"))?;
        let hi: usize = hi
            .parse()
            .map_err(|_| format!("invalid CPU {hi:?} in {list:?}"))?;
        if lo > hi {
            return Err(format!("invalid CPU range {part:?}"));
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.is_empty() {
        return Err(format!("empty CPU list {list:?}"));
    }
    Ok(cpus)
}

/// Chooses the shard CPUs: the requested list (which must lie inside the
/// allowed set) or the allowed set, cut to `shards` entries; with more
/// shards than CPUs, CPUs are reused in order.
pub fn choose(
    allowed: &[usize],
    requested: Option<&[usize]>,
    shards: Option<usize>,
) -> Result<Vec<usize>, String> {
    let base: Vec<usize> = match requested {
        Some(req) => {
            if let Some(bad) = req.iter().find(|c| !allowed.contains(c)) {
                return Err(format!("CPU {bad} is outside the allowed set {allowed:?}"));
            }
            req.to_vec()
        }
        None => allowed.to_vec(),
    };
    if base.is_empty() {
        return Err("no CPU available".into());
    }
    let n = shards.unwrap_or(base.len());
    if n == 0 {
        return Err("--shards must be at least 1".into());
    }
    Ok((0..n).map(|i| base[i % base.len()]).collect())
}

/// Moves the calling (control/admin) thread to the allowed CPUs no shard
/// uses, when there are any; otherwise it stays on the allowed set.
pub fn keep_off_shards(allowed: &[usize], shard_cpus: &[usize]) {
    let spare: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|c| !shard_cpus.contains(c))
        .collect();
    if spare.is_empty() {
        return;
    }
    let mut set = CpuSet::new();
    for c in spare {
        let _ = set.set(c);
    }
    if let Err(e) = sched_setaffinity(Pid::from_raw(0), &set) {
        tracing::debug!(error = %e, "could not move the control thread off the shard CPUs");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_choices() {
        assert_eq!(parse_list("0-2,5,1").expect("valid"), vec![0, 1, 2, 5]);
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("x").is_err());
        assert_eq!(
            choose(&[0, 1, 2, 3], None, None).expect("ok"),
            vec![0, 1, 2, 3]
        );
        assert_eq!(choose(&[2, 3], None, Some(1)).expect("ok"), vec![2]);
        assert_eq!(choose(&[1], None, Some(3)).expect("ok"), vec![1, 1, 1]);
        assert_eq!(choose(&[0, 1], Some(&[1]), None).expect("ok"), vec![1]);
        assert!(choose(&[0, 1], Some(&[4]), None).is_err());
    }

    #[test]
    fn allowed_set_is_not_empty() {
        assert!(!allowed().expect("sched_getaffinity").is_empty());
    }
}
