//! The process families: the published table, configuration loads and
//! their problems, and jemalloc's figures.

use super::text::Out;

/// Process-level figures gathered by the admin thread.
#[derive(Debug, Clone, Default)]
pub struct ProcessInfo {
    /// Latest published table generation.
    pub generation: u64,
    /// When it was published (seconds since the epoch).
    pub last_swap_unix: f64,
    /// Configuration loads attempted.
    pub reloads: u64,
    /// Configuration loads rejected.
    pub reloads_failed: u64,
    /// Fatal problems (the set rejected) in the last configuration load.
    pub config_fatal: u64,
    /// Errors (an object left out) in the last configuration load.
    pub config_errors: u64,
    /// Warnings in the last configuration load.
    pub config_warnings: u64,
    /// jemalloc `stats.allocated`.
    pub allocated_bytes: Option<u64>,
    /// jemalloc `stats.resident`.
    pub resident_bytes: Option<u64>,
}

/// Writes the process families; jemalloc's only when both figures are known.
pub(super) fn render(out: &mut Out<'_>, process: &ProcessInfo) {
    if let Some(cells) = crate::policy::limit_cells::existing() {
        out.single(
            "rauta_rate_limit_collisions_total",
            "counter",
            "Rate-limit keys (zone, client IP) that met another live key in the node-wide table and shared its budget.",
            cells.collisions(),
        );
    }
    out.single(
        "rauta_route_table_generation",
        "gauge",
        "Generation of the latest route table published to the shards.",
        process.generation,
    );
    out.single(
        "rauta_route_table_last_swap_timestamp_seconds",
        "gauge",
        "When the latest route table was published (Unix time).",
        process.last_swap_unix,
    );
    out.single(
        "rauta_config_reloads_total",
        "counter",
        "Configuration loads attempted.",
        process.reloads,
    );
    out.single(
        "rauta_config_reloads_failed_total",
        "counter",
        "Configuration loads rejected (the previous table stayed live).",
        process.reloads_failed,
    );
    out.by_label(
        "rauta_config_problems",
        "gauge",
        "Problems found in the last configuration load, by severity: fatal (the set rejected), error (an object left out), warning.",
        "severity",
        [
            ("fatal", process.config_fatal),
            ("error", process.config_errors),
            ("warning", process.config_warnings),
        ],
    );
    if let (Some(allocated), Some(resident)) = (process.allocated_bytes, process.resident_bytes) {
        out.single(
            "rauta_jemalloc_allocated_bytes",
            "gauge",
            "Bytes allocated by the application (jemalloc stats.allocated).",
            allocated,
        );
        out.single(
            "rauta_jemalloc_resident_bytes",
            "gauge",
            "Bytes in physically resident data pages mapped by jemalloc.",
            resident,
        );
    }
}
