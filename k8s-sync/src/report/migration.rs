//! The migration report: per served Ingress, every annotation with rauta's
//! verdict, the Ingress served or refused, a summary, and the exit code a
//! CI pipeline gates on. [`Report`] serializes to the JSON document of
//! `rauta check --output json`; its field names are part of the interface.

use super::config::ConfigView;
use crate::problem::{Problem, Severity};
use crate::translate::gateway_status::Condition;
use crate::translate::{GatewayApiStatus, Translation, Verdict};
use serde::Serialize;

/// Exit code: everything is honoured (and, with `--accept-warnings`,
/// ignored annotations are accepted).
pub const EXIT_OK: u8 = 0;
/// Exit code: something would be refused, served differently, ignored
/// (unless accepted), or the set has errors.
pub const EXIT_FAIL: u8 = 1;
/// Exit code: the check could not run (usage, I/O, API server).
pub const EXIT_USAGE: u8 = 2;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where the objects came from: `manifests <dir>` or `kubernetes`.
    pub source: String,
    /// Every Ingress of our class, by namespace/name.
    pub ingresses: Vec<IngressReport>,
    /// Counts.
    pub summary: Summary,
    /// Every problem, in the order found.
    pub problems: Vec<ProblemView>,
    /// The route table that would be served.
    pub config: ConfigView,
    /// Our Gateway API objects and the conditions their status would get.
    pub gateway_api: Vec<GatewayApiView>,
    /// Pass or fail, and why.
    pub result: Outcome,
}

/// One Gateway API object (or one parent of an HTTPRoute) and its
/// conditions, as `Type=True|False (Reason)`.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayApiView {
    /// `GatewayClass name`, `Gateway ns/name`, `Gateway ns/name listener L`
    /// or `HTTPRoute ns/name -> Gateway ns/name`.
    pub object: String,
    /// Its conditions.
    pub conditions: Vec<String>,
}

impl GatewayApiView {
    fn all(status: &GatewayApiStatus) -> Vec<GatewayApiView> {
        let words = |c: &[Condition]| -> Vec<String> {
            c.iter()
                .map(|c| {
                    let state = if c.status { "True" } else { "False" };
                    format!("{}={state} ({})", c.kind, c.reason)
                })
                .collect()
        };
        let mut out = Vec::new();
        for (name, class) in &status.classes {
            out.push(GatewayApiView {
                object: format!("GatewayClass {name}"),
                conditions: words(&class.conditions),
            });
        }
        for ((ns, name), gw) in &status.gateways {
            out.push(GatewayApiView {
                object: format!("Gateway {ns}/{name}"),
                conditions: words(&gw.object.conditions),
            });
            for l in &gw.listeners {
                out.push(GatewayApiView {
                    object: format!(
                        "Gateway {ns}/{name} listener {} ({} routes)",
                        l.name, l.attached_routes
                    ),
                    conditions: words(&l.conditions),
                });
            }
        }
        for ((kind, ns, name), route) in status.entries() {
            for p in &route.parents {
                let r = &p.parent_ref;
                let section = r
                    .get("sectionName")
                    .and_then(|s| s.as_str())
                    .map_or(String::new(), |s| format!(" listener {s}"));
                out.push(GatewayApiView {
                    object: format!(
                        "{} {ns}/{name} -> Gateway {}/{}{section}",
                        kind.as_str(),
                        r["namespace"].as_str().unwrap_or(""),
                        r["name"].as_str().unwrap_or("")
                    ),
                    conditions: words(&p.conditions),
                });
            }
        }
        out
    }
}

/// One Ingress of our class.
#[derive(Debug, Clone, Serialize)]
pub struct IngressReport {
    /// `namespace/name`.
    pub ingress: String,
    /// The manifest file, when it came from one.
    pub file: Option<String>,
    /// False when the Ingress is left out of the table (an error).
    pub served: bool,
    /// Every `nginx.ingress.kubernetes.io/` and `rauta.io/` annotation, by key.
    pub annotations: Vec<AnnotationView>,
    /// The problems about this Ingress.
    pub problems: Vec<ProblemView>,
}

/// One annotation and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct AnnotationView {
    /// The full key.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// `honoured`, `differs`, `ignored` or `refused`.
    pub verdict: &'static str,
    /// The difference or reason; empty when honoured.
    pub note: String,
}

/// A problem, as in the text output.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemView {
    /// `fatal`, `error` or `warning`.
    pub severity: String,
    /// The manifest file, if any.
    pub file: Option<String>,
    /// `Kind namespace/name`, if known.
    pub object: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Annotation counts by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VerdictCounts {
    /// Served as ingress-nginx serves them.
    pub honoured: usize,
    /// Served with a stated difference.
    pub differs: usize,
    /// Not acted on, with a warning.
    pub ignored: usize,
    /// The Ingress not served, or its paths answer 503.
    pub refused: usize,
}

/// Ingress counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngressCounts {
    /// In the table.
    pub served: usize,
    /// Left out for an error.
    pub refused: usize,
}

/// Problem counts by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProblemCounts {
    /// The set is rejected.
    pub fatal: usize,
    /// An object is left out.
    pub error: usize,
    /// Reported only.
    pub warning: usize,
}

/// The summary table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Annotations by verdict.
    pub annotations: VerdictCounts,
    /// Ingresses served and refused.
    pub ingresses: IngressCounts,
    /// Problems by severity.
    pub problems: ProblemCounts,
}

/// The gate's decision.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// 0 (pass) or 1 (fail).
    pub exit_code: u8,
    /// Whether ignored annotations were accepted (`--accept-warnings`).
    pub accept_warnings: bool,
    /// Why it fails, one phrase each; empty on a pass.
    pub reasons: Vec<String>,
}

impl Report {
    /// The report on `translation`; `source` says where its objects came
    /// from, `accept_warnings` lets ignored annotations pass.
    pub fn new(source: String, translation: &Translation, accept_warnings: bool) -> Report {
        let ingresses: Vec<IngressReport> = translation
            .annotations
            .iter()
            .map(|ing| {
                let about = |p: &&Problem| p.object.as_deref() == Some(ing.object.as_str());
                let problems: Vec<&Problem> = translation.problems.iter().filter(about).collect();
                IngressReport {
                    ingress: ing.ingress.to_string(),
                    file: ing.file.as_ref().map(|f| f.display().to_string()),
                    served: !problems.iter().any(|p| p.is_error()),
                    annotations: ing
                        .verdicts
                        .iter()
                        .map(|v| AnnotationView {
                            key: v.key.clone(),
                            value: v.value.clone(),
                            verdict: v.verdict.label(),
                            note: v.verdict.note().to_string(),
                        })
                        .collect(),
                    problems: problems.into_iter().map(ProblemView::new).collect(),
                }
            })
            .collect();
        let summary = summarize(translation, &ingresses);
        let result = Outcome::decide(&summary, accept_warnings);
        Report {
            source,
            ingresses,
            summary,
            problems: translation.problems.iter().map(ProblemView::new).collect(),
            config: ConfigView::new(&translation.config),
            gateway_api: GatewayApiView::all(&translation.gateway_status),
            result,
        }
    }
}

impl ProblemView {
    fn new(p: &Problem) -> ProblemView {
        ProblemView {
            severity: p.severity.to_string(),
            file: p.file.as_ref().map(|f| f.display().to_string()),
            object: p.object.clone(),
            message: p.message.clone(),
        }
    }
}

/// Counts verdicts, Ingresses and problems.
fn summarize(translation: &Translation, ingresses: &[IngressReport]) -> Summary {
    let mut s = Summary::default();
    for v in translation.annotations.iter().flat_map(|i| &i.verdicts) {
        let slot = match v.verdict {
            Verdict::Honoured => &mut s.annotations.honoured,
            Verdict::Differs(_) => &mut s.annotations.differs,
            Verdict::Ignored(_) => &mut s.annotations.ignored,
            Verdict::Refused(_) => &mut s.annotations.refused,
        };
        *slot += 1;
    }
    for ing in ingresses {
        if ing.served {
            s.ingresses.served += 1;
        } else {
            s.ingresses.refused += 1;
        }
    }
    for p in &translation.problems {
        match p.severity {
            Severity::Fatal => s.problems.fatal += 1,
            Severity::Error => s.problems.error += 1,
            Severity::Warning => s.problems.warning += 1,
        }
    }
    s
}

impl Outcome {
    /// Fails on any error, any refused or differing annotation, and any
    /// ignored one unless `accept_warnings`. Warnings that are not about
    /// an annotation (a missing Service, a TLS Secret) do not fail.
    fn decide(s: &Summary, accept_warnings: bool) -> Outcome {
        let mut reasons = Vec::new();
        let mut say = |n: usize, what: &str| {
            if n > 0 {
                reasons.push(format!("{n} {what}"));
            }
        };
        say(s.problems.fatal, "fatal problem(s): the set is rejected");
        say(s.ingresses.refused, "Ingress(es) refused");
        say(s.problems.error, "error(s)");
        say(s.annotations.refused, "annotation(s) refused");
        say(s.annotations.differs, "annotation(s) served differently");
        if !accept_warnings {
            say(
                s.annotations.ignored,
                "annotation(s) ignored (--accept-warnings accepts them)",
            );
        }
        Outcome {
            exit_code: if reasons.is_empty() {
                EXIT_OK
            } else {
                EXIT_FAIL
            },
            accept_warnings,
            reasons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(f: impl FnOnce(&mut Summary)) -> Summary {
        let mut s = Summary::default();
        f(&mut s);
        s
    }

    #[test]
    fn the_gate() {
        let pass = Outcome::decide(&summary(|s| s.annotations.honoured = 3), false);
        assert_eq!((pass.exit_code, pass.reasons.len()), (EXIT_OK, 0));
        let ignored = summary(|s| s.annotations.ignored = 2);
        assert_eq!(Outcome::decide(&ignored, false).exit_code, EXIT_FAIL);
        assert_eq!(Outcome::decide(&ignored, true).exit_code, EXIT_OK);
        for s in [
            summary(|s| s.annotations.differs = 1),
            summary(|s| s.annotations.refused = 1),
            summary(|s| s.problems.error = 1),
            summary(|s| s.problems.fatal = 1),
        ] {
            assert_eq!(Outcome::decide(&s, true).exit_code, EXIT_FAIL, "{s:?}");
        }
        // A warning that is not about an annotation passes.
        let warned = summary(|s| s.problems.warning = 1);
        assert_eq!(Outcome::decide(&warned, false).exit_code, EXIT_OK);
    }
}
