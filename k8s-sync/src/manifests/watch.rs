//! Watching a manifests directory: the `rauta-manifests` thread reloads it
//! (debounced) on every change and publishes each new configuration. An
//! invalid object is left out and the rest published, as with the API
//! source; a file that cannot be parsed keeps the last good configuration.

use super::load::load_and_translate;
use crate::problem::Severity;
use crate::stats::SourceStats;
use crate::ClassSelector;
use rauta_shared::config::RouteConfig;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What the watcher thread is told.
enum Msg {
    /// Something happened in the directory.
    Fs(notify::Result<notify::Event>),
    /// Leave the loop.
    Stop,
}

/// A running watcher of a manifests directory (thread `rauta-manifests`).
///
/// Dropping it leaves the thread running for the life of the process; call
/// [`ManifestSource::stop`] to end it.
#[derive(Debug)]
pub struct ManifestSource {
    control: mpsc::Sender<Msg>,
    thread: JoinHandle<()>,
    stats: Arc<SourceStats>,
}

impl ManifestSource {
    /// Starts the `rauta-manifests` thread: load once, then reload on every change.
    ///
    /// `publish` gets every configuration that differs from the last one
    /// published, without the objects that have errors; a rejected set (a
    /// fatal problem) is logged and not published. Reloads happen
    /// `debounce` after the last event of a burst.
    pub fn spawn(
        dir: PathBuf,
        sel: ClassSelector,
        debounce: Duration,
        publish: impl FnMut(RouteConfig) + Send + 'static,
    ) -> io::Result<ManifestSource> {
        let (control, rx) = mpsc::channel();
        let events = control.clone();
        let mut watcher = notify::recommended_watcher(move |event| {
            // The receiver is gone only after the thread ended; nothing to do then.
            let _ = events.send(Msg::Fs(event));
        })
        .map_err(|e| watch_error(&dir, e))?;
        // Watching before the first load means no change can slip in between.
        notify::Watcher::watch(&mut watcher, &dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(&dir, e))?;
        let stats = Arc::new(SourceStats::default());
        let thread_stats = stats.clone();
        let thread = thread::Builder::new()
            .name("rauta-manifests".to_string())
            .spawn(move || {
                // Keep the watcher alive as long as the loop runs.
                let _watcher = watcher;
                run(&dir, &sel, debounce, publish, &rx, &thread_stats);
            })?;
        Ok(ManifestSource {
            control,
            thread,
            stats,
        })
    }

    /// Load counters, for metrics.
    pub fn stats(&self) -> Arc<SourceStats> {
        self.stats.clone()
    }

    /// Stops the thread and waits for it.
    pub fn stop(self) {
        // A send error means the thread has already ended.
        let _ = self.control.send(Msg::Stop);
        if self.thread.join().is_err() {
            tracing::error!("the manifests thread panicked");
        }
    }

    /// Waits for the thread, which normally runs until [`ManifestSource::stop`].
    pub fn join(self) -> thread::Result<()> {
        self.thread.join()
    }
}

/// A notify error as an `io::Error`, keeping the I/O kind where there is one.
fn watch_error(dir: &Path, e: notify::Error) -> io::Error {
    match e.kind {
        notify::ErrorKind::Io(io) => {
            io::Error::new(io.kind(), format!("cannot watch {}: {io}", dir.display()))
        }
        _ => io::Error::other(format!("cannot watch {}: {e}", dir.display())),
    }
}

/// The watcher loop: initial load, then debounced reloads until told to stop.
fn run(
    dir: &Path,
    sel: &ClassSelector,
    debounce: Duration,
    mut publish: impl FnMut(RouteConfig),
    rx: &mpsc::Receiver<Msg>,
    stats: &SourceStats,
) {
    let mut last: Option<RouteConfig> = None;
    reload(dir, sel, &mut last, &mut publish, stats);
    let mut deadline: Option<Instant> = None;
    loop {
        let msg = match deadline {
            None => match rx.recv() {
                Ok(msg) => msg,
                Err(mpsc::RecvError) => break,
            },
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(msg) => msg,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    deadline = None;
                    reload(dir, sel, &mut last, &mut publish, stats);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        match msg {
            Msg::Stop => break,
            Msg::Fs(Ok(event)) => {
                if is_change(&event.kind) {
                    deadline = Some(Instant::now() + debounce);
                }
            }
            Msg::Fs(Err(e)) => {
                // Events may have been lost (e.g. queue overflow): reload to be sure.
                tracing::warn!(dir = %dir.display(), "watching the manifests directory: {e}");
                deadline = Some(Instant::now() + debounce);
            }
        }
    }
    tracing::debug!(dir = %dir.display(), "manifests watcher stopped");
}

/// True for events that may change what the directory holds; our own reads
/// produce open/close events that must not trigger reloads.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Loads and translates `dir`; publishes the result when it is usable and new.
fn reload(
    dir: &Path,
    sel: &ClassSelector,
    last: &mut Option<RouteConfig>,
    publish: &mut impl FnMut(RouteConfig),
    stats: &SourceStats,
) {
    let translation = load_and_translate(dir, sel);
    stats.record(&translation);
    let rejected = translation.is_rejected();
    for problem in &translation.problems {
        match problem.severity {
            Severity::Fatal => tracing::error!("{problem}"),
            Severity::Error if rejected => tracing::error!("{problem}"),
            Severity::Error => tracing::error!(
                "{problem} (this object is left out of the route table; the others are served)"
            ),
            Severity::Warning => tracing::warn!("{problem}"),
        }
    }
    if rejected {
        let fatal = translation.problems.iter().filter(|p| p.is_fatal()).count();
        tracing::error!(
            dir = %dir.display(),
            fatal,
            "manifest set rejected (a file cannot be read or parsed); the last good configuration stays live"
        );
        return;
    }
    if last.as_ref() == Some(&translation.config) {
        tracing::debug!(dir = %dir.display(), "manifests reloaded, configuration unchanged");
        return;
    }
    tracing::info!(
        dir = %dir.display(),
        rules = translation.config.rules.len(),
        backends = translation.config.backends.len(),
        "publishing a new route configuration"
    );
    *last = Some(translation.config.clone());
    publish(translation.config);
}
