//! ReferenceGrant: may an object in one namespace refer to an object in
//! another? Same-namespace references need no grant.

use super::super::index::Index;

/// The referring side of a reference.
pub(super) struct From<'a> {
    pub(super) group: &'a str,
    pub(super) kind: &'a str,
    pub(super) namespace: &'a str,
}

/// True when `from` may refer to the object `(group, kind, namespace, name)`.
pub(super) fn allowed(
    index: &Index<'_>,
    from: &From<'_>,
    group: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> bool {
    if from.namespace == namespace {
        return true;
    }
    let grants = index.grants.get(namespace).into_iter().flatten();
    grants.into_iter().any(|grant| {
        let from_ok =
            grant.spec.from.iter().any(|f| {
                f.group == from.group && f.kind == from.kind && f.namespace == from.namespace
            });
        let to_ok = grant.spec.to.iter().any(|t| {
            t.group == group && t.kind == kind && t.name.as_deref().is_none_or(|n| n == name)
        });
        from_ok && to_ok
    })
}
