//! Problems found in an Ingress become Kubernetes Events on it, once each:
//! an Event is sent when a problem first appears on an object (a new uid
//! counts as a new object), not on every reconcile.

use crate::problem::{Problem, Severity};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Resource};
use rauta_shared::config::IngressRef;
use std::collections::{BTreeMap, BTreeSet};

/// Reason of the Event for an Ingress that is left out of the table.
pub const REASON_INVALID: &str = "RautaInvalid";
/// Reason of the Event for a warning about an Ingress.
pub const REASON_WARNING: &str = "RautaWarning";
/// The Events API limits `note` to 1 kB.
const MAX_NOTE: usize = 1000;

/// The problems of each Ingress, by `Ingress ns/name` as in [`Problem::object`].
pub(crate) fn by_ingress(
    problems: &[Problem],
    ingresses: &[&Ingress],
) -> BTreeMap<IngressRef, Vec<Problem>> {
    let names: BTreeMap<String, IngressRef> = ingresses
        .iter()
        .map(|ing| {
            let key = super::status::ingress_ref(ing);
            (format!("Ingress {key}"), key)
        })
        .collect();
    let mut out: BTreeMap<IngressRef, Vec<Problem>> = BTreeMap::new();
    for p in problems {
        if let Some(key) = p.object.as_ref().and_then(|o| names.get(o)) {
            out.entry(key.clone()).or_default().push(p.clone());
        }
    }
    out
}

/// Identity of one problem on one object.
type Sent = (Severity, String);

/// Remembers which problems were already sent for which object.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    /// (namespace, name, uid) -> problems sent and still present.
    sent: BTreeMap<(IngressRef, String), BTreeSet<Sent>>,
}

impl EventLog {
    /// The problems not yet sent for each Ingress; forgets problems that
    /// went away (so they are sent again if they come back).
    pub(crate) fn pending<'a>(
        &mut self,
        problems: &'a BTreeMap<IngressRef, Vec<Problem>>,
        ingresses: &[&'a Ingress],
    ) -> Vec<(&'a Ingress, &'a Problem)> {
        let mut pending = Vec::new();
        let mut live = BTreeSet::new();
        for ing in ingresses {
            let key = super::status::ingress_ref(ing);
            let Some(list) = problems.get(&key) else {
                continue;
            };
            let id = (key, ing.metadata.uid.clone().unwrap_or_default());
            let sent = self.sent.entry(id.clone()).or_default();
            let now: BTreeSet<Sent> = list
                .iter()
                .map(|p| (p.severity, p.message.clone()))
                .collect();
            sent.retain(|s| now.contains(s));
            for p in list {
                if !sent.contains(&(p.severity, p.message.clone())) {
                    pending.push((*ing, p));
                }
            }
            live.insert(id);
        }
        self.sent.retain(|id, _| live.contains(id));
        pending
    }

    /// Records that `problem` was sent for `ing`.
    pub(crate) fn mark_sent(&mut self, ing: &Ingress, problem: &Problem) {
        let id = (
            super::status::ingress_ref(ing),
            ing.metadata.uid.clone().unwrap_or_default(),
        );
        self.sent
            .entry(id)
            .or_default()
            .insert((problem.severity, problem.message.clone()));
    }
}

/// Who reports the Events.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    /// `reportingController`, e.g. `rauta.io/ingress-controller`.
    pub(crate) controller: String,
    /// `reportingInstance`: this instance's identity.
    pub(crate) instance: String,
}

/// The `events.k8s.io/v1` Event for `problem` on `ing`.
pub(crate) fn event(reporter: &Reporter, ing: &Ingress, problem: &Problem) -> Event {
    let mut note = problem.message.clone();
    if note.len() > MAX_NOTE {
        let mut end = MAX_NOTE;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    let reason = match problem.severity {
        Severity::Fatal | Severity::Error => REASON_INVALID,
        Severity::Warning => REASON_WARNING,
    };
    let now = Timestamp::now();
    let name = ing.metadata.name.as_deref().unwrap_or("ingress");
    Event {
        metadata: ObjectMeta {
            // Unique like the names kubectl and client-go give Events.
            name: Some(format!("{name}.{:x}", now.as_nanosecond())),
            namespace: ing.metadata.namespace.clone(),
            ..ObjectMeta::default()
        },
        type_: Some("Warning".to_string()),
        reason: Some(reason.to_string()),
        action: Some("Route".to_string()),
        note: Some(note),
        event_time: Some(MicroTime(now)),
        regarding: Some(ing.object_ref(&())),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(reporter.instance.clone()),
        ..Event::default()
    }
}

/// Creates the Event for `problem` on `ing`.
pub(crate) async fn send(
    client: &kube::Client,
    reporter: &Reporter,
    ing: &Ingress,
    problem: &Problem,
) -> Result<(), kube::Error> {
    let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &event(reporter, ing, problem))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ing(name: &str, uid: &str) -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("demo".into()),
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            ..Ingress::default()
        }
    }

    #[test]
    fn each_problem_is_sent_once_per_object() {
        let a = ing("a", "u1");
        let problems = vec![
            Problem::error(Some("Ingress demo/a".into()), "bad path"),
            Problem::warning(Some("Service demo/x".into()), "not about an Ingress"),
        ];
        let by = by_ingress(&problems, &[&a]);
        assert_eq!(by.len(), 1);
        let mut log = EventLog::default();
        let pending = log.pending(&by, &[&a]);
        assert_eq!(pending.len(), 1);
        let (i, p) = pending[0];
        let reporter = Reporter {
            controller: "rauta.io/ingress-controller".into(),
            instance: "node-1".into(),
        };
        let ev = event(&reporter, i, p);
        assert_eq!(ev.reason.as_deref(), Some(REASON_INVALID));
        assert_eq!(ev.note.as_deref(), Some("bad path"));
        assert_eq!(ev.metadata.namespace.as_deref(), Some("demo"));
        let regarding = ev.regarding.expect("regarding");
        assert_eq!(regarding.kind.as_deref(), Some("Ingress"));
        assert_eq!(regarding.uid.as_deref(), Some("u1"));
        log.mark_sent(i, p);
        assert!(log.pending(&by, &[&a]).is_empty(), "not sent twice");

        // Recreated under the same name: a new object, a new Event.
        let a2 = ing("a", "u2");
        assert_eq!(log.pending(&by, &[&a2]).len(), 1);

        // Fixed, then broken again: sent again.
        let mut log = EventLog::default();
        let (i, p) = log.pending(&by, &[&a])[0];
        log.mark_sent(i, p);
        assert!(log.pending(&BTreeMap::new(), &[&a]).is_empty());
        assert_eq!(log.pending(&by, &[&a]).len(), 1);
    }
}
