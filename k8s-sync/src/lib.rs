//! rauta-k8s-sync: turns Kubernetes objects into a [`RouteConfig`].
//!
//! Sources (a manifests directory, or the API server: [`api::ApiSource`]) produce
//! [`objects::SourcedObject`]s; [`translate::translate`] is a pure function
//! from those objects to a validated, conflict-free [`RouteConfig`] plus the
//! problems found; [`manifests::ManifestSource`] watches a directory and
//! publishes every usable configuration (invalid objects left out; a set
//! with a file that does not parse rejected whole); [`report`] is
//! `rauta check`'s migration report.

#![forbid(unsafe_code)]

pub mod api;
pub mod manifests;
pub mod objects;
pub mod problem;
pub mod report;
pub mod stats;
pub mod tls;
pub mod translate;

pub use rauta_shared::config::RouteConfig;

/// Which IngressClass this controller serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSelector {
    /// Name of the IngressClass (default `rauta`).
    pub class_name: String,
    /// Its `spec.controller` (default `rauta.io/ingress-controller`).
    pub controller: String,
}

impl Default for ClassSelector {
    fn default() -> Self {
        ClassSelector {
            class_name: "rauta".to_string(),
            controller: "rauta.io/ingress-controller".to_string(),
        }
    }
}
