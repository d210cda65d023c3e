//! Turns the kernel's refusals into one sentence a person can act on.

use aya::programs::ProgramError;
use std::error::Error;
use std::io;

/// The errno behind an error, looking through aya's wrappers.
pub(crate) fn errno(err: &(dyn Error + 'static)) -> Option<i32> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
        }
        if let Some(ProgramError::LoadError { io_error, .. }) = e.downcast_ref::<ProgramError>() {
            return io_error.raw_os_error();
        }
        next = e.source();
    }
    None
}

/// The last meaningful line of a verifier log in the chain, if any.
fn verifier_says(err: &(dyn Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(ProgramError::LoadError { verifier_log, .. }) = e.downcast_ref::<ProgramError>()
        {
            let log = verifier_log.to_string();
            tracing::debug!(target: "rauta::ebpf", "verifier log:\n{log}");
            return log
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| {
                    !l.is_empty()
                        && !l.starts_with("processed ")
                        && !l.starts_with("verification time")
                        && !l.starts_with("stack depth")
                })
                .map(str::to_string);
        }
        next = e.source();
    }
    None
}

/// Why an eBPF step failed, as the end of a log line ("…: WHY").
pub(crate) fn why(err: &(dyn Error + 'static)) -> String {
    if let Some(ProgramError::UnknownInterface { name }) = err.downcast_ref::<ProgramError>() {
        return format!("there is no network interface named {name:?}");
    }
    let verifier = verifier_says(err);
    match errno(err) {
        // The verifier's checks that only privileged loaders skip: the
        // capabilities are there, but not CAP_PERFMON.
        Some(libc::EPERM) | Some(libc::EACCES)
            if verifier.as_deref().is_some_and(|l| l.contains("!root")) =>
        {
            format!(
                "the kernel's verifier refuses the program without CAP_PERFMON (add it, or run as root): {}",
                verifier.unwrap_or_default()
            )
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "no permission to use eBPF (it needs CAP_BPF and CAP_NET_ADMIN, or root)".into()
        }
        Some(libc::EBUSY) | Some(libc::EEXIST) => {
            "another XDP program is already attached there (EBUSY)".into()
        }
        Some(libc::ENOSYS) => "the kernel has no bpf() system call".into(),
        Some(code @ (libc::EINVAL | libc::EOPNOTSUPP | 524 /* ENOTSUPP */)) if verifier.is_none() => {
            format!(
                "the kernel does not support this program, map or attach type ({})",
                io::Error::from_raw_os_error(code)
            )
        }
        _ => match verifier {
            Some(line) => format!("the kernel's verifier rejected the program: {line}"),
            None => chain(err),
        },
    }
}

/// The error and its causes on one line.
pub(crate) fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aya::sys::SyscallError;

    #[test]
    fn classifies_errnos_through_wrappers() {
        let eperm = ProgramError::SyscallError(SyscallError {
            call: "bpf_prog_load",
            io_error: io::Error::from_raw_os_error(libc::EPERM),
        });
        assert!(why(&eperm).contains("CAP_BPF"), "{}", why(&eperm));
        let ebusy = ProgramError::SyscallError(SyscallError {
            call: "bpf_link_create",
            io_error: io::Error::from_raw_os_error(libc::EBUSY),
        });
        assert!(why(&ebusy).contains("another XDP program"));
        let unknown = ProgramError::UnknownInterface {
            name: "nope0".into(),
        };
        assert!(why(&unknown).contains("nope0"));
        let einval = ProgramError::SyscallError(SyscallError {
            call: "bpf_prog_load",
            io_error: io::Error::from_raw_os_error(libc::EINVAL),
        });
        assert!(
            why(&einval).contains("does not support"),
            "{}",
            why(&einval)
        );
        let other = ProgramError::SyscallError(SyscallError {
            call: "bpf_map_update_elem",
            io_error: io::Error::from_raw_os_error(libc::ENOMEM),
        });
        assert!(
            why(&other).contains("bpf_map_update_elem"),
            "{}",
            why(&other)
        );
    }
}
