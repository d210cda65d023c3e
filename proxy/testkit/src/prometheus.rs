//! A real Prometheus (Debian's `prometheus`) scraping one target, bounded
//! for tests: its data in a temporary directory, a one-second scrape
//! interval, an hour of retention, killed when dropped.
//!
//! ```no_run
//! use rauta_testkit::{require, Need, prometheus::Prometheus};
//! # fn t(admin: std::net::SocketAddr) {
//! require!(Need::tool("prometheus"));
//! let prom = Prometheus::start("prometheus", admin, &[("namespace", "ingress-nginx")]);
//! let series = prom.query("up").expect("query");
//! # }
//! ```

use crate::{eventually, free_port, get};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// A Prometheus process and its temporary data directory.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `bin` scraping `target`'s `/metrics` every second, with
    /// `labels` added to the target (as service discovery would add
    /// `namespace` and the pod's name), and waits for its first successful
    /// scrape (Prometheus applies targets about 5 s after it starts).
    pub fn start(bin: &str, target: SocketAddr, labels: &[(&str, &str)]) -> Prometheus {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n- job_name: rauta\n  static_configs:\n  - targets: [\"{target}\"]\n    labels:\n"
        );
        for (k, v) in labels {
            config.push_str(&format!("      {k}: {v:?}\n"));
        }
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--storage.tsdb.retention.time=1h")
            .arg("--storage.tsdb.retention.size=256MB")
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let mut prom = Prometheus { child, addr, dir };
        eventually("prometheus is ready", || {
            if let Ok(Some(status)) = prom.child.try_wait() {
                panic!("prometheus exited ({status}):\n{}", prom.log());
            }
            get(addr, "localhost", "/-/ready").is_ok_and(|r| r.status == 200)
        });
        eventually("prometheus scraped the target", || {
            prom.query("up == 1").is_ok_and(|r| !r.is_empty())
        });
        prom
    }

    /// What Prometheus logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET` of an API path; the `data` of a successful answer.
    fn api(&self, path_and_query: &str) -> Result<Value, String> {
        let r = get(self.addr, "localhost", path_and_query).map_err(|e| e.to_string())?;
        let body: Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("{}: not JSON ({e}): {}", r.status, r.text()))?;
        if body["status"] != "success" {
            return Err(format!("{}: {body}", r.status));
        }
        Ok(body["data"].clone())
    }

    /// The result of an instant query: its series (vector) or its one
    /// value (scalar), as JSON.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let q: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
        let data = self.api(&format!("/api/v1/query?query={q}"))?;
        match data["resultType"].as_str() {
            Some("vector" | "matrix") => Ok(data["result"].as_array().cloned().unwrap_or_default()),
            _ => Ok(vec![data["result"].clone()]),
        }
    }

    /// The values of `label` on the series matching `selector` (Grafana's
    /// `label_values(selector, label)`).
    pub fn label_values(&self, selector: &str, label: &str) -> Result<Vec<String>, String> {
        let m: String = form_urlencoded::byte_serialize(selector.as_bytes()).collect();
        let data = self.api(&format!("/api/v1/label/{label}/values?match[]={m}"))?;
        let values = data.as_array().cloned().unwrap_or_default();
        Ok(values
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
