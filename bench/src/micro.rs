//! Criterion's results of the `hot_path` micro-benchmarks, read from its
//! output directory (`target/criterion`).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// One micro-benchmark result.
#[derive(Debug, Clone)]
pub struct Micro {
    /// `group/function/value` as criterion names it.
    pub id: String,
    /// Median time per iteration, ns.
    pub ns_per_iter: f64,
    /// Elements per iteration when the benchmark declared a throughput.
    pub elements: Option<u64>,
}

impl Micro {
    /// Median time per element (per lookup, pick…), or per iteration.
    pub fn ns_per_op(&self) -> f64 {
        self.ns_per_iter / self.elements.unwrap_or(1).max(1) as f64
    }
}

/// Every benchmark under `dir` (`<group>/<bench>/new/`), sorted by id.
pub fn read(dir: &Path) -> Result<Vec<Micro>> {
    let mut out = Vec::new();
    let groups = fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))?;
    for group in groups.flatten() {
        let Ok(benches) = fs::read_dir(group.path()) else {
            continue;
        };
        for bench in benches.flatten() {
            let new = bench.path().join("new");
            if let Some(m) =
                read_one(&new).with_context(|| format!("criterion result in {}", new.display()))?
            {
                out.push(m);
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn read_one(new: &Path) -> Result<Option<Micro>> {
    let (Ok(bench), Ok(est)) = (
        fs::read_to_string(new.join("benchmark.json")),
        fs::read_to_string(new.join("estimates.json")),
    ) else {
        return Ok(None);
    };
    let bench: serde_json::Value = serde_json::from_str(&bench)?;
    let est: serde_json::Value = serde_json::from_str(&est)?;
    let id = bench
        .get("full_id")
        .and_then(|v| v.as_str())
        .context("benchmark.json has no full_id")?
        .to_string();
    let ns_per_iter = est
        .pointer("/median/point_estimate")
        .and_then(serde_json::Value::as_f64)
        .context("estimates.json has no median/point_estimate")?;
    let elements = bench
        .pointer("/throughput/Elements")
        .and_then(serde_json::Value::as_u64);
    Ok(Some(Micro {
        id,
        ns_per_iter,
        elements,
    }))
}
