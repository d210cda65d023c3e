//! `deploy/grafana/rauta.json`, the dashboard of rauta's native metrics,
//! as a user would check it: a real Prometheus scrapes rauta under
//! traffic, and every panel query and every template variable returns data.

use crate::ingress_nginx_metrics::{shop, substitute, traffic};
use rauta_testkit::prometheus::Prometheus;
use rauta_testkit::{require, Need};
use serde_json::Value;
use std::time::Duration;

/// The dashboard as shipped.
fn dashboard() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana/rauta.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// (panel title, expression) of every target of every panel.
fn panel_queries(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dash["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                let title = panel["title"].as_str().unwrap_or("?").to_string();
                out.push((title, expr.to_string()));
            }
        }
    }
    out
}

/// A `label_values(SELECTOR, LABEL)` variable query as the PromQL that
/// returns the same label values.
fn variable_query(query: &str) -> Option<String> {
    let inner = query.strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some(format!("group by ({}) ({selector})", label.trim()))
}

#[test]
fn every_query_of_the_rauta_dashboard_gets_data() {
    require!(Need::tool("prometheus"));
    let dash = dashboard();
    let (rauta, _dir, _backends) = shop();
    let prom = Prometheus::start("prometheus", rauta.admin_addr(), &[]);
    // A request no rule takes: rauta's own failures have a cause.
    let r = rauta_testkit::get(rauta.addr(), "nowhere.example", "/").expect("answer");
    assert_eq!(r.status, 404);
    traffic(rauta.addr(), Duration::from_secs(4));
    // Two scrapes after the traffic, so that rates have two points.
    std::thread::sleep(Duration::from_millis(2500));

    let queries = panel_queries(&dash);
    assert!(queries.len() >= 20, "{} panel queries", queries.len());
    let variables: Vec<(String, String)> = dash["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let q = v["query"]["query"].as_str()?;
            Some((v["name"].as_str()?.to_string(), variable_query(q)?))
        })
        .collect();
    assert_eq!(variables.len(), 3, "namespace, ingress, host");

    let all = [
        ("namespace", ".*"),
        ("ingress", ".*"),
        ("host", ".*"),
        ("__rate_interval", "1m"),
    ];
    let concrete = [
        ("namespace", "shop"),
        ("ingress", "front"),
        ("host", "shop.example"),
        ("__rate_interval", "1m"),
    ];
    let mut failed = Vec::new();
    let named = variables.iter().map(|(n, q)| (format!("variable {n}"), q));
    let panels = queries.iter().map(|(t, q)| (t.clone(), q));
    for (title, expr) in named.chain(panels) {
        for (mode, vars) in [("All", &all), ("concrete", &concrete)] {
            let q = substitute(expr, vars);
            match prom.query(&q) {
                Ok(r) if !r.is_empty() => {}
                Ok(_) => failed.push(format!("{title} ({mode}): no data\n    {q}")),
                Err(e) => failed.push(format!("{title} ({mode}): {e}\n    {q}")),
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} queries returned nothing:\n{}\n--- prometheus log ---\n{}",
        failed.len(),
        failed.join("\n"),
        prom.log()
    );
}
