//! Forwards the eBPF programs' aya-log records to `tracing` (target
//! `rauta::ebpf`) from a small thread.

use aya::Ebpf;
use aya_log::EbpfLogger;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the thread drains the log ring buffer.
const INTERVAL: Duration = Duration::from_millis(250);

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
    stop: Arc<AtomicBool>,
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
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
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
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::park_timeout(INTERVAL);
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
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
