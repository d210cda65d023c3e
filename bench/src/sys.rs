//! What the benchmark reads from `/proc`: the machine description, CPU time
//! of process trees, peak RSS, per-CPU busy time, and the CPU used by other
//! processes on the machine during a run.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::time::Instant;

use anyhow::{Context, Result};

/// Linux reports `/proc` times in USER_HZ ticks, which is 100 on every
/// architecture the kernel ABI keeps.
const TICK_NS: u64 = 10_000_000;
/// `PF_KTHREAD` in `/proc/PID/stat` flags.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The machine the benchmark ran on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// CPUs online.
    pub nproc: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `uname -r`.
    pub kernel: String,
    /// `PRETTY_NAME` from `/etc/os-release`.
    pub os: String,
    /// Total memory in MiB.
    pub mem_mib: u64,
}

/// Describes this machine; fields that cannot be read say `unknown`.
pub fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let os = fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    let mem_mib = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024);
    Machine {
        nproc,
        cpu_model,
        kernel,
        os,
        mem_mib,
    }
}

/// The fields of `/proc/PID/stat` the benchmark uses.
#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: u32,
    flags: u64,
    /// utime + stime in ticks.
    ticks: u64,
    /// cutime + cstime: CPU time of its children that ended and were
    /// reaped, in ticks.
    cticks: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The command name is in parentheses and may hold spaces or `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        ppid: f.get(1)?.parse().ok()?,
        flags: f.get(6)?.parse().ok()?,
        ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        cticks: f.get(13)?.parse::<u64>().ok()? + f.get(14)?.parse::<u64>().ok()?,
    })
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn all_pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// `root` and every process descending from it.
pub fn process_tree(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|p| Some((p, read_stat(p)?.ppid)))
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

/// CPU time (user + system) of every thread of the processes in ns, from
/// `/proc/PID/task/TID/schedstat` (falling back to tick-granular `stat`).
pub fn cpu_ns(pids: &[u32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let dir = task.path();
            let from_schedstat = fs::read_to_string(dir.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
            let ns = from_schedstat.or_else(|| {
                let stat = fs::read_to_string(dir.join("stat")).ok()?;
                Some(parse_stat(&stat)?.ticks * TICK_NS)
            });
            total += ns.unwrap_or(0);
        }
    }
    total
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The largest `VmHWM` (peak resident set) among the processes, in KiB
/// (for nginx, the worker's; summing would count shared pages twice).
pub fn peak_rss_kb(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| status_kb(*p, "VmHWM:"))
        .max()
        .unwrap_or(0)
}

/// The largest `VmRSS` (current resident set) among the processes, in KiB.
pub fn rss_kb(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| status_kb(*p, "VmRSS:"))
        .max()
        .unwrap_or(0)
}

/// Sum of the proportional set sizes (`Pss` in `smaps_rollup`: shared
/// pages divided among their sharers) of the processes, in KiB; falls back
/// to `VmRSS` where `smaps_rollup` is missing.
pub fn pss_kb(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| {
            fs::read_to_string(format!("/proc/{p}/smaps_rollup"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Pss:"))
                        .and_then(|v| v.split_whitespace().next()?.parse().ok())
                })
                .or_else(|| status_kb(*p, "VmRSS:"))
        })
        .sum()
}

/// Resets the peak RSS of the processes to their current RSS (writing `5`
/// to `clear_refs`); returns false when the kernel refused.
pub fn reset_peak_rss(pids: &[u32]) -> bool {
    pids.iter()
        .all(|p| fs::write(format!("/proc/{p}/clear_refs"), "5").is_ok())
}

/// Busy and total ticks of one CPU, from `/proc/stat`.
fn cpu_ticks(stat: &str, cpu: usize) -> Option<(u64, u64)> {
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle, total))
}

/// Busy time of the whole machine so far, in ns: user + nice + system +
/// irq + softirq of the aggregate `cpu` line of `/proc/stat` (idle,
/// iowait and steal left out). Unlike a process's own CPU time this
/// includes softirq work, which no process is charged for when the kernel
/// accounts IRQ time (spliced and loopback-delivered bytes are moved
/// there).
pub fn machine_busy_ns() -> Result<u64> {
    let stat = fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    machine_busy_ticks(&stat)
        .map(|t| t * TICK_NS)
        .context("no aggregate cpu line in /proc/stat")
}

fn machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal guest guest_nice;
    // guest time is already inside user.
    Some(v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)?)
}

/// A point-in-time view of the machine for judging a run afterwards.
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    /// CPU ticks of every user-space process outside our own tree,
    /// including its reaped children's.
    others: HashMap<u32, u64>,
    /// (busy, total) ticks per CPU.
    cpus: Vec<(u64, u64)>,
}

/// Takes a snapshot; `ours` is our own process (its whole tree is excluded
/// from "other load").
pub fn snapshot(ours: u32, ncpu: usize) -> Snapshot {
    let stats: Vec<(u32, Stat)> = all_pids()
        .into_iter()
        .filter_map(|p| Some((p, read_stat(p)?)))
        .collect();
    let mut mine: HashSet<u32> = HashSet::from([ours]);
    // Parents are not always listed before children: iterate to a fixpoint.
    loop {
        let before = mine.len();
        for (p, s) in &stats {
            if mine.contains(&s.ppid) {
                mine.insert(*p);
            }
        }
        if mine.len() == before {
            break;
        }
    }
    let others = stats
        .iter()
        .filter(|(p, s)| !mine.contains(p) && s.flags & PF_KTHREAD == 0 && s.ppid != 2)
        .map(|(p, s)| (*p, s.ticks + s.cticks))
        .collect();
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpus = (0..ncpu)
        .map(|c| cpu_ticks(&stat, c).unwrap_or((0, 0)))
        .collect();
    Snapshot {
        at: Instant::now(),
        others,
        cpus,
    }
}

/// What happened on the machine between two snapshots.
#[derive(Debug, Clone, Default)]
pub struct Interval {
    /// CPUs' worth of time used by processes outside the benchmark.
    pub other_cpus: f64,
    /// The busiest outside process, as (pid, CPUs' worth).
    pub top_other: Option<(u32, f64)>,
    /// Busy fraction of each CPU (0..1).
    pub cpu_busy: Vec<f64>,
}

/// Compares two snapshots (`b` taken after `a`).
///
/// Each process counts its own time and its reaped children's (cutime,
/// cstime), so processes that started and ended between the snapshots are
/// counted through their parent. A process that ended meanwhile shows up
/// again, whole, in its parent's children time: what it had at `a` is
/// taken off. A process that appeared meanwhile counts with its whole life.
pub fn interval(a: &Snapshot, b: &Snapshot) -> Interval {
    let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-3);
    let mut other_ticks = 0i64;
    let mut top: Option<(u32, u64)> = None;
    for (pid, ticks) in &b.others {
        let used = ticks.saturating_sub(a.others.get(pid).copied().unwrap_or(0));
        other_ticks += used as i64;
        if top.is_none_or(|(_, t)| used > t) {
            top = Some((*pid, used));
        }
    }
    for (pid, ticks) in &a.others {
        if !b.others.contains_key(pid) {
            other_ticks -= *ticks as i64;
        }
    }
    let other_ticks = other_ticks.max(0) as u64;
    let to_cpus = |ticks: u64| (ticks * TICK_NS) as f64 / 1e9 / secs;
    let cpu_busy = a
        .cpus
        .iter()
        .zip(&b.cpus)
        .map(|((b0, t0), (b1, t1))| {
            let total = t1.saturating_sub(*t0);
            if total == 0 {
                0.0
            } else {
                b1.saturating_sub(*b0) as f64 / total as f64
            }
        })
        .collect();
    Interval {
        other_cpus: to_cpus(other_ticks),
        top_other: top.filter(|(_, t)| *t > 0).map(|(p, t)| (p, to_cpus(t))),
        cpu_busy,
    }
}

/// The 1-minute load average.
pub fn loadavg() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The command name of a process (for naming the busiest outsider).
pub fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("pid {pid}"))
}

/// The CPU time of our waited-for children so far (user + system), in ns.
pub fn children_cpu_ns() -> Result<u64> {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    let ns =
        |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000_000 + t.tv_usec() as u64 * 1000;
    Ok(ns(u.user_time()) + ns(u.system_time()))
}

/// utime + stime of the processes (all their threads) in ticks of 10 ms,
/// from `/proc/PID/stat`.
pub fn process_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| read_stat(*p))
        .map(|s| s.ticks)
        .sum()
}

/// The `/proc/PID/task/TID/status` text of every thread of the processes
/// (threads that exit meanwhile are left out).
fn task_statuses(pids: &[u32]) -> impl Iterator<Item = String> + '_ {
    pids.iter()
        .filter_map(|pid| fs::read_dir(format!("/proc/{pid}/task")).ok())
        .flat_map(|tasks| tasks.flatten())
        .filter_map(|task| fs::read_to_string(task.path().join("status")).ok())
}

/// A numeric field of a `status` text (`name` with its colon), 0 if absent.
fn status_field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Voluntary context switches of every thread of the processes, summed by
/// thread name (`comm`), for telling which threads wake an idle proxy.
pub fn wakeups_by_thread(pids: &[u32]) -> HashMap<String, u64> {
    let mut by_name: HashMap<String, u64> = HashMap::new();
    for status in task_statuses(pids) {
        let name = status
            .lines()
            .find_map(|l| l.strip_prefix("Name:"))
            .map_or("?", str::trim)
            .to_string();
        *by_name.entry(name).or_default() += status_field(&status, "voluntary_ctxt_switches:");
    }
    by_name
}

/// Voluntary and involuntary context switches summed over every thread of
/// the processes (`/proc/PID/task/TID/status`): voluntary ones are the
/// times a thread went to sleep, i.e. its wake-ups.
pub fn context_switches(pids: &[u32]) -> (u64, u64) {
    task_statuses(pids).fold((0, 0), |(v, i), status| {
        (
            v + status_field(&status, "voluntary_ctxt_switches:"),
            i + status_field(&status, "nonvoluntary_ctxt_switches:"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_the_name() {
        let line = "1234 (nginx: a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 5 7 20 0 1 0 100 1000 200";
        let s = parse_stat(line).expect("parses");
        assert_eq!(s.ppid, 1);
        assert_eq!(s.flags, 4_194_560);
        assert_eq!(s.ticks, 300);
        assert_eq!(s.cticks, 12);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn cpu_ticks_of_one_cpu() {
        let stat =
            "cpu  1 2 3 4 5 6 7 8 0 0\ncpu0 10 0 10 70 10 0 0 0 0 0\ncpu1 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(cpu_ticks(stat, 0), Some((20, 100)));
        assert_eq!(cpu_ticks(stat, 1), Some((6, 8)));
        assert_eq!(cpu_ticks(stat, 2), None);
    }

    #[test]
    fn machine_busy_leaves_out_idle_iowait_and_steal() {
        let stat = "cpu  100 2 30 900 40 5 7 11 50 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(machine_busy_ticks(stat), Some(144));
        assert_eq!(machine_busy_ticks("cpu0 1 2 3\n"), None);
        assert!(machine_busy_ns().is_ok());
    }

    #[test]
    fn short_lived_processes_count_through_their_parents() {
        let at = Instant::now();
        let snap = |secs: u64, others: &[(u32, u64)]| Snapshot {
            at: at + std::time::Duration::from_secs(secs),
            others: others.iter().copied().collect(),
            cpus: vec![],
        };
        // 1 s apart: pid 10 (a shell) reaped a child that used 30 ticks
        // meanwhile; pid 11 (alive at a with 500 ticks) ended after 20 more
        // and reappears in 10's children time; pid 12 is new with 5.
        let a = snap(0, &[(10, 100), (11, 500)]);
        let b = snap(1, &[(10, 100 + 30 + 520), (12, 5)]);
        let i = interval(&a, &b);
        assert!((i.other_cpus - 0.55).abs() < 1e-9, "{}", i.other_cpus);
        assert_eq!(i.top_other.map(|t| t.0), Some(10));
    }

    #[test]
    fn our_own_tree_is_found() {
        let me = std::process::id();
        assert!(process_tree(me).contains(&me));
        assert!(cpu_ns(&[me]) > 0);
        assert!(pss_kb(&[me]) > 0);
        assert!(peak_rss_kb(&[me]) > 0);
    }
}
