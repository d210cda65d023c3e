//! Which Ingresses we serve: by the legacy class annotation, by
//! `ingressClassName` (our IngressClass must exist and name our controller),
//! or, with neither, when our IngressClass is the default one.

use super::index::{ingress_describe, Index};
use crate::objects::SourcedObject;
use crate::problem::Problem;
use crate::ClassSelector;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

/// Legacy annotation that selects a class by name (checked before `ingressClassName`).
const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// IngressClass annotation that makes it the class of Ingresses that name none.
const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The controller an IngressClass names.
fn controller(class: &IngressClass) -> Option<&str> {
    class.spec.as_ref()?.controller.as_deref()
}

/// Decides whether we serve `ing`; warns when it names our class but the
/// class is missing or belongs to another controller.
pub(super) fn is_served(
    src: &SourcedObject,
    ing: &Ingress,
    sel: &ClassSelector,
    index: &Index<'_>,
    problems: &mut Vec<Problem>,
) -> bool {
    let object = ingress_describe(ing);
    let annotations = ing.metadata.annotations.as_ref();
    let ours = index
        .class(&sel.class_name)
        .filter(|c| controller(c) == Some(sel.controller.as_str()));
    if let Some(class) = annotations.and_then(|a| a.get(LEGACY_CLASS_ANNOTATION)) {
        let served = *class == sel.class_name;
        if !served {
            tracing::debug!(ingress = %object, class, "Ingress of another class (annotation), ignored");
        }
        return served;
    }
    let class_name = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .filter(|n| !n.is_empty());
    match class_name {
        Some(name) if name == sel.class_name => {
            if ours.is_some() {
                return true;
            }
            let message = match index.class(name).and_then(controller) {
                Some(other) => format!(
                    "IngressClass {name} has controller {other:?}, not {:?}; Ingress not served",
                    sel.controller
                ),
                None => format!(
                    "IngressClass {name} (controller {:?}) does not exist; Ingress not served",
                    sel.controller
                ),
            };
            problems.push(Problem::warning(Some(object), message).in_file(src.file.clone()));
            false
        }
        Some(name) => {
            tracing::debug!(ingress = %object, class = name, "Ingress of another class, ignored");
            false
        }
        None => {
            let default = ours.is_some_and(|c| {
                c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                    .is_some_and(|v| v == "true")
            });
            if !default {
                tracing::debug!(ingress = %object, "Ingress without class and ours is not the default, ignored");
            }
            default
        }
    }
}
