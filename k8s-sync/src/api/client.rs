//! Where the API server is and how to authenticate: a kubeconfig file, or
//! the usual inference (`$KUBECONFIG`, `~/.kube/config`, then the in-cluster
//! service account).

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::PathBuf;

/// How to find the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSource {
    /// `$KUBECONFIG` or `~/.kube/config` when present, else the in-cluster
    /// service account (what a pod of the DaemonSet uses).
    Infer,
    /// This kubeconfig file, with its current context.
    Kubeconfig(PathBuf),
}

/// Loads the client configuration; the error names the source at fault.
pub async fn load_config(source: &ClientSource) -> Result<Config, String> {
    match source {
        ClientSource::Kubeconfig(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))
        }
        ClientSource::Infer => Config::infer().await.map_err(|e| {
            format!(
                "no Kubernetes API configuration: {e} (outside a cluster, pass --kubeconfig or set KUBECONFIG)"
            )
        }),
    }
}

/// A client for `source`; the error names the source at fault.
pub async fn connect(source: &ClientSource) -> Result<Client, String> {
    let config = load_config(source).await?;
    let url = config.cluster_url.clone();
    Client::try_from(config).map_err(|e| format!("Kubernetes client for {url}: {e}"))
}
