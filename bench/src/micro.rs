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

/// Every benchmark under `dir` (each `…/new/` directory at any depth:
/// `<group>/<function>/<value>/new/`), sorted by id.
pub fn read(dir: &Path) -> Result<Vec<Micro>> {
    fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))?;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if !path.is_dir() {
                continue;
            }
            if e.file_name() == "new" {
                if let Some(m) = read_one(&path)
                    .with_context(|| format!("criterion result in {}", path.display()))?
                {
                    out.push(m);
                }
            } else if e.file_name() != "base" && e.file_name() != "change" {
                stack.push(path);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_results_are_found() {
        let dir = std::env::temp_dir().join(format!("rauta-bench-micro-{}", std::process::id()));
        let new = dir.join("g/same/10/new");
        fs::create_dir_all(&new).expect("mkdir");
        fs::write(
            new.join("benchmark.json"),
            r#"{"full_id":"g/same/10","throughput":{"Elements":4}}"#,
        )
        .expect("write");
        fs::write(
            new.join("estimates.json"),
            r#"{"median":{"point_estimate":40.0}}"#,
        )
        .expect("write");
        let found = read(&dir).expect("reads");
        fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "g/same/10");
        assert!((found[0].ns_per_op() - 10.0).abs() < 1e-9);
        assert!(read(Path::new("/nonexistent/criterion")).is_err());
    }
}
