//! Forwards the eBPF programs' aya-log records to `tracing` (target
//! `rauta::ebpf`) from a small thread that sleeps in poll(2) until the
//! log ring buffer has records or it is told to stop: an idle node pays
//! no wake-up for it (a 250 ms poll was two thirds of idle rauta's).

use aya::Ebpf;
use aya_log::EbpfLogger;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The level the eBPF side should log at (aya-log's numbering: 1 error ..
/// 5 trace, 0 nothing), from what `tracing` would print for `rauta::ebpf`;
/// records above it are skipped in the kernel at the cost of one branch.
pub(crate) fn kernel_level() -> u8 {
    use tracing::Level;
    if tracing::enabled!(target: "rauta::ebpf", Level::TRACE) {
        5
    } else if tracing::enabled!(target: "rauta::ebpf", Level::DEBUG) {
        4
    } else if tracing::enabled!(target: "rauta::ebpf", Level::INFO) {
        3
    } else if tracing::enabled!(target: "rauta::ebpf", Level::WARN) {
        2
    } else if tracing::enabled!(target: "rauta::ebpf", Level::ERROR) {
        1
    } else {
        0
    }
}

/// A `log::Log` that re-emits records as `tracing` events.
struct ToTracing;

impl log::Log for ToTracing {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let msg = record.args();
        match record.level() {
            log::Level::Error => tracing::error!(target: "rauta::ebpf", "{msg}"),
            log::Level::Warn => tracing::warn!(target: "rauta::ebpf", "{msg}"),
            log::Level::Info => tracing::info!(target: "rauta::ebpf", "{msg}"),
            log::Level::Debug => tracing::debug!(target: "rauta::ebpf", "{msg}"),
            log::Level::Trace => tracing::trace!(target: "rauta::ebpf", "{msg}"),
        }
    }

    fn flush(&self) {}
}

/// The running forwarder; stops when dropped.
#[derive(Debug)]
pub(crate) struct LogPump {
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
}

impl LogPump {
    /// Starts forwarding the object's log records; `None` (with a debug
    /// line) when the object has no log buffer.
    pub(crate) fn start(ebpf: &mut Ebpf) -> Option<LogPump> {
        let mut logger = match EbpfLogger::init_with_logger(ebpf, ToTracing) {
            Ok(logger) => logger,
            Err(e) => {
                tracing::debug!(error = %e, "eBPF log forwarding unavailable");
                return None;
            }
        };
        let stop = match EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK) {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                tracing::debug!(error = %e, "eBPF log forwarding unavailable (eventfd)");
                return None;
            }
        };
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rauta-ebpf-log".into())
            .spawn(move || loop {
                let drained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    logger.flush();
                }));
                if drained.is_err() {
                    tracing::error!("a malformed eBPF log record; eBPF log forwarding stopped");
                    return;
                }
                let mut fds = [
                    PollFd::new(logger.as_fd(), PollFlags::POLLIN),
                    PollFd::new(stopped.as_fd(), PollFlags::POLLIN),
                ];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "poll on the eBPF log failed; eBPF log forwarding stopped");
                        return;
                    }
                }
                if fds[1].any().unwrap_or(false) {
                    logger.flush();
                    return;
                }
            })
            .ok()?;
        Some(LogPump {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for LogPump {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
