//! k8s-sync's integration tests, as one test binary: manifests loading
//! and translation, the watching source, reports, and the API-server
//! source against the testkit's fake API server.

mod common;

mod api_metrics;
mod backend_choice;
mod deploy_manifests;
mod gateway;
mod gateway_kinds;
mod kube_source;
mod load;
mod report;
mod tls;
mod translate;
mod upstream_annotations;
mod watch;
