//! The migration report as plain text: the route table, each Ingress with
//! its annotations' verdicts, every problem, the summary and the result.

use super::config::{render, row, table};
use super::migration::{IngressReport, Report};
use rauta_shared::config::RouteConfig;
use std::fmt::Write;

/// Widest value shown in the text table; JSON has it whole.
const MAX_VALUE_CHARS: usize = 40;

/// The whole report; `config` is the table the report was made from.
pub fn text(report: &Report, config: &RouteConfig) -> String {
    let mut out = render(config);
    out.push_str("\nIngresses:\n");
    if report.ingresses.is_empty() {
        out.push_str("  (none of our class)\n");
    }
    for ing in &report.ingresses {
        ingress(&mut out, ing);
    }
    if !report.gateway_api.is_empty() {
        out.push_str("\nGateway API:\n");
        let mut rows = vec![row(["OBJECT", "CONDITIONS"])];
        for g in &report.gateway_api {
            rows.push(vec![g.object.clone(), g.conditions.join(", ")]);
        }
        table(&mut out, &rows);
    }
    out.push('\n');
    for p in &report.problems {
        let _ = writeln!(out, "{}", problem_line(p));
    }
    summary(&mut out, report);
    let s = &report.summary.problems;
    let valid = s.fatal == 0 && s.error == 0;
    let _ = writeln!(
        out,
        "{} ({} errors, {} warnings)",
        if valid { "valid" } else { "INVALID" },
        s.fatal + s.error,
        s.warning
    );
    let result = &report.result;
    match result.reasons.as_slice() {
        [] => {
            let _ = writeln!(out, "exit {}: everything is honoured", result.exit_code);
        }
        reasons => {
            let _ = writeln!(out, "exit {}: {}", result.exit_code, reasons.join(", "));
        }
    }
    out
}

/// One Ingress: a heading and its annotation table.
fn ingress(out: &mut String, ing: &IngressReport) {
    let file = ing
        .file
        .as_ref()
        .map(|f| format!(" ({f})"))
        .unwrap_or_default();
    let state = if ing.served { "served" } else { "REFUSED" };
    let _ = writeln!(out, "  Ingress {}{file}: {state}", ing.ingress);
    if !ing.served {
        // Annotation errors show in the table below; the others say why here.
        let why = ing
            .problems
            .iter()
            .filter(|p| p.severity != "warning" && !p.message.starts_with("annotation "));
        for p in why {
            let _ = writeln!(out, "    {}: {}", p.severity, p.message);
        }
    }
    if ing.annotations.is_empty() {
        out.push_str("    (no annotations)\n");
        return;
    }
    let mut rows = vec![row(["ANNOTATION", "VALUE", "VERDICT", "NOTE"])];
    for a in &ing.annotations {
        rows.push(vec![
            a.key.clone(),
            shorten(&a.value),
            a.verdict.to_string(),
            a.note.clone(),
        ]);
    }
    let mut lines = String::new();
    table(&mut lines, &rows);
    for line in lines.lines() {
        let _ = writeln!(out, "  {line}");
    }
}

/// The summary table.
fn summary(out: &mut String, report: &Report) {
    let a = &report.summary.annotations;
    let i = &report.summary.ingresses;
    out.push_str("\nSummary:\n");
    let rows = vec![
        row(["VERDICT", "ANNOTATIONS", "MEANING"]),
        vec![
            "honoured".into(),
            a.honoured.to_string(),
            "served as ingress-nginx serves it".into(),
        ],
        vec![
            "differs".into(),
            a.differs.to_string(),
            "served, with the stated difference".into(),
        ],
        vec![
            "ignored".into(),
            a.ignored.to_string(),
            "not acted on; warned".into(),
        ],
        vec![
            "refused".into(),
            a.refused.to_string(),
            "the Ingress is not served, or its paths answer 503".into(),
        ],
    ];
    table(out, &rows);
    let _ = writeln!(
        out,
        "  Ingresses: {} served, {} refused\n",
        i.served, i.refused
    );
}

/// A problem as `rauta check` has always printed it.
fn problem_line(p: &super::migration::ProblemView) -> String {
    let mut line = format!("{}: ", p.severity);
    if let Some(file) = &p.file {
        let _ = write!(line, "{file}: ");
    }
    if let Some(object) = &p.object {
        let _ = write!(line, "{object}: ");
    }
    line.push_str(&p.message);
    line
}

/// The first line of `value`, cut to [`MAX_VALUE_CHARS`].
fn shorten(value: &str) -> String {
    let first = value.lines().next().unwrap_or("").trim();
    let multiline = value.trim().lines().nth(1).is_some();
    if first.chars().count() > MAX_VALUE_CHARS || multiline {
        let cut: String = first.chars().take(MAX_VALUE_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        first.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn values_are_shortened_to_one_line() {
        assert_eq!(shorten("ewma"), "ewma");
        assert_eq!(
            shorten("more_set_headers \"A: b\";\nmore"),
            "more_set_headers \"A: b\";…"
        );
        assert_eq!(shorten(&"x".repeat(50)).chars().count(), 40);
    }
}
