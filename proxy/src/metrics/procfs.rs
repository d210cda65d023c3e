//! This process's CPU time, memory and start time from /proc, read at
//! scrape time for the ingress-nginx process families.

/// The process's CPU and memory, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStat {
    /// User and system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: u64,
    /// Start time, Unix seconds.
    pub start_unix: f64,
}

/// Clock ticks per second in /proc/*/stat: USER_HZ, fixed at 100 by the
/// kernel's ABI whatever the kernel's internal HZ.
const USER_HZ: f64 = 100.0;

/// The figures of this process; None when /proc cannot be read.
pub fn read() -> Option<ProcStat> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    parse(&stat, &status, &boot)
}

fn parse(stat: &str, status: &str, boot: &str) -> Option<ProcStat> {
    // Fields after the command name, which may hold spaces and parentheses.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // stat(5) numbers fields from 1; fields[0] is field 3 (state).
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let kib = |key: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        line.split_whitespace().next()?.parse::<u64>().ok()
    };
    let btime: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(ProcStat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / USER_HZ,
        resident_bytes: kib("VmRSS:")? * 1024,
        virtual_bytes: kib("VmSize:")? * 1024,
        start_unix: btime as f64 + field(22)? as f64 / USER_HZ,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_proc_files() {
        let stat =
            "42 (ra (u) ta) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 12345 678";
        let status = "Name:\trauta\nVmSize:\t  2048 kB\nVmRSS:\t   512 kB\n";
        let p = parse(stat, status, "cpu 1 2 3\nbtime 1700000000\n").expect("parsed");
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(
            (p.resident_bytes, p.virtual_bytes),
            (512 * 1024, 2048 * 1024)
        );
        assert_eq!(p.start_unix, 1_700_000_010.0);
    }

    #[test]
    fn reads_this_process() {
        let p = read().expect("/proc is readable");
        assert!(p.resident_bytes > 0 && p.start_unix > 1e9);
    }
}
