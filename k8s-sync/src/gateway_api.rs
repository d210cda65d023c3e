//! The part of the Gateway API (`gateway.networking.k8s.io/v1`, standard
//! channel) that rauta reads: GatewayClass, Gateway, HTTPRoute, GRPCRoute,
//! TLSRoute, BackendTLSPolicy and ReferenceGrant, as serde types over k8s-openapi's `ObjectMeta`.
//!
//! Hand-written because the `gateway-api` crate follows another kube and
//! k8s-openapi release than this workspace. Fields rauta does not read are
//! not declared (serde skips them); status is never read. Defaults are the
//! CRDs' (`+kubebuilder:default`), applied where the translation reads them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};

/// The API group of the Gateway API kinds.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// `GatewayClass` (cluster-scoped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayClass {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec.
    #[serde(default)]
    pub spec: GatewayClassSpec,
}

/// `GatewayClass.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassSpec {
    /// The controller that manages Gateways of this class.
    #[serde(default)]
    pub controller_name: String,
}

/// `Gateway`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Gateway {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec.
    #[serde(default)]
    pub spec: GatewaySpec,
}

/// `Gateway.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// The GatewayClass's name.
    #[serde(default)]
    pub gateway_class_name: String,
    /// The listeners (1 to 64).
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

/// One listener of a Gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Unique within the Gateway; routes name it as `sectionName`.
    #[serde(default)]
    pub name: String,
    /// A host or `*.suffix`; none: every host.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The port clients connect to.
    #[serde(default)]
    pub port: i32,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP` or a domain-prefixed name.
    #[serde(default)]
    pub protocol: String,
    /// TLS settings of `HTTPS` and `TLS` listeners.
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    /// Which routes may attach.
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// `Listener.tls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// `Terminate` (default) or `Passthrough`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The certificates (Secrets); the first usable one is served.
    #[serde(default)]
    pub certificate_refs: Vec<ObjectRef>,
}

/// `Listener.allowedRoutes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowedRoutes {
    /// From which namespaces (default: the Gateway's own).
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    /// Which route kinds (default: those the protocol supports).
    #[serde(default)]
    pub kinds: Vec<GroupKind>,
}

/// `AllowedRoutes.namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteNamespaces {
    /// `Same` (default), `All` or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
    /// The namespaces' labels, with `Selector`.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

/// A group and kind (`RouteGroupKind`, ReferenceGrant's `to`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupKind {
    /// The group; none or empty: the core group where the type says so.
    #[serde(default)]
    pub group: Option<String>,
    /// The kind.
    #[serde(default)]
    pub kind: String,
}

/// A reference to an object by group, kind, name and optional namespace
/// (`SecretObjectReference`, `BackendObjectReference`, `ParentReference`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// The group (default depends on the field).
    #[serde(default)]
    pub group: Option<String>,
    /// The kind (default depends on the field).
    #[serde(default)]
    pub kind: Option<String>,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// None: the referring object's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// A parent's listener name (`ParentReference`).
    #[serde(default)]
    pub section_name: Option<String>,
    /// A parent's listener port, or a Service port (`BackendObjectReference`).
    #[serde(default)]
    pub port: Option<i32>,
}

/// `HTTPRoute`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRoute {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec.
    #[serde(default)]
    pub spec: HttpRouteSpec,
    /// The status as the API server holds it: other controllers'
    /// `status.parents` entries are kept when ours are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// `HTTPRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// The Gateways (and listeners) the route attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    /// Hosts (or `*.suffix`) the route serves; none: its listeners'.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules; none: one rule matching every path, with no backend.
    #[serde(default)]
    pub rules: Option<Vec<HttpRouteRule>>,
}

/// One rule of an HTTPRoute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    /// Optional name, for status and messages.
    #[serde(default)]
    pub name: Option<String>,
    /// Any one matches; none: PathPrefix `/`.
    #[serde(default)]
    pub matches: Option<Vec<HttpRouteMatch>>,
    /// Applied in order to matching requests.
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Where matching requests go, by weight.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
    /// Request and backend-request timeouts.
    #[serde(default)]
    pub timeouts: Option<HttpRouteTimeouts>,
    /// Experimental: reported, never ignored silently.
    #[serde(default)]
    pub retry: Option<serde_json::Value>,
    /// Experimental: reported, never ignored silently.
    #[serde(default)]
    pub session_persistence: Option<serde_json::Value>,
}

/// `HTTPRouteRule.timeouts`: Gateway API durations (`1h2m3s4ms`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteTimeouts {
    /// The whole request.
    #[serde(default)]
    pub request: Option<String>,
    /// One attempt to a backend.
    #[serde(default)]
    pub backend_request: Option<String>,
}

/// One match of a rule: every part must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    /// The path (default PathPrefix `/`).
    #[serde(default)]
    pub path: Option<PathMatch>,
    /// Header conditions.
    #[serde(default)]
    pub headers: Vec<ValueMatch>,
    /// Query parameter conditions.
    #[serde(default)]
    pub query_params: Vec<ValueMatch>,
    /// The method.
    #[serde(default)]
    pub method: Option<String>,
}

/// `HTTPPathMatch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PathMatch {
    /// `Exact`, `PathPrefix` (default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The path (default `/`).
    #[serde(default)]
    pub value: Option<String>,
}

/// `HTTPHeaderMatch` and `HTTPQueryParamMatch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Header or parameter name.
    #[serde(default)]
    pub name: String,
    /// The value.
    #[serde(default)]
    pub value: String,
}

/// One filter of a rule (or of a backendRef).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteFilter {
    /// Which of the fields below applies.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// `RequestHeaderModifier`.
    #[serde(default)]
    pub request_header_modifier: Option<HeaderFilter>,
    /// `ResponseHeaderModifier`.
    #[serde(default)]
    pub response_header_modifier: Option<HeaderFilter>,
    /// `RequestMirror`.
    #[serde(default)]
    pub request_mirror: Option<MirrorFilter>,
    /// `RequestRedirect`.
    #[serde(default)]
    pub request_redirect: Option<RedirectFilter>,
    /// `URLRewrite`.
    #[serde(default)]
    pub url_rewrite: Option<UrlRewriteFilter>,
    /// `CORS`.
    #[serde(default)]
    pub cors: Option<CorsFilter>,
}

/// `HTTPCORSFilter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorsFilter {
    /// `*`, or `http(s)://host[:port]` with an optional leading `*` label.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Sends `Access-Control-Allow-Credentials: true`.
    #[serde(default)]
    pub allow_credentials: Option<bool>,
    /// Methods, or `*`.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Request header names, or `*`.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response header names (or `*`) scripts may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Seconds a preflight may be cached (default 5).
    #[serde(default)]
    pub max_age: Option<i64>,
}

/// `HTTPRequestMirrorFilter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorFilter {
    /// Where the copies go (a Service by default).
    #[serde(default)]
    pub backend_ref: ObjectRef,
    /// The share of requests mirrored, 0-100 (default: all).
    #[serde(default)]
    pub percent: Option<i32>,
    /// The share as a fraction (not with `percent`).
    #[serde(default)]
    pub fraction: Option<Fraction>,
}

/// A `numerator` / `denominator` share (denominator default 100).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fraction {
    /// The requests taken out of `denominator`.
    #[serde(default)]
    pub numerator: i32,
    /// Default 100.
    #[serde(default)]
    pub denominator: Option<i32>,
}

/// `HTTPHeaderFilter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeaderFilter {
    /// Headers replaced (or added).
    #[serde(default)]
    pub set: Vec<Header>,
    /// Values appended.
    #[serde(default)]
    pub add: Vec<Header>,
    /// Headers removed.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A header name and value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// `HTTPRequestRedirectFilter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectFilter {
    /// `http` or `https`.
    #[serde(default)]
    pub scheme: Option<String>,
    /// The host.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The path.
    #[serde(default)]
    pub path: Option<PathModifier>,
    /// The port.
    #[serde(default)]
    pub port: Option<i32>,
    /// 301 or 302 (core), 303, 307, 308 (extended); default 302.
    #[serde(default)]
    pub status_code: Option<i32>,
}

/// `HTTPURLRewriteFilter`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UrlRewriteFilter {
    /// The Host the backend sees.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The path the backend sees.
    #[serde(default)]
    pub path: Option<PathModifier>,
}

/// `HTTPPathModifier`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathModifier {
    /// `ReplaceFullPath` or `ReplacePrefixMatch`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// With `ReplaceFullPath`.
    #[serde(default)]
    pub replace_full_path: Option<String>,
    /// With `ReplacePrefixMatch`.
    #[serde(default)]
    pub replace_prefix_match: Option<String>,
}

/// `HTTPBackendRef`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpBackendRef {
    /// The backend (default: a core-group Service).
    #[serde(flatten)]
    pub target: ObjectRef,
    /// Relative weight (default 1).
    #[serde(default)]
    pub weight: Option<i32>,
    /// Filters for this backend only (reported: not supported).
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
}

/// `GRPCRoute`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrpcRoute {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec.
    #[serde(default)]
    pub spec: GrpcRouteSpec,
    /// The status as the API server holds it (see [`HttpRoute::status`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// `GRPCRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteSpec {
    /// The Gateways (and listeners) the route attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    /// Hosts (or `*.suffix`) the route serves; none: its listeners'.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules; none: no rule (nothing is served).
    #[serde(default)]
    pub rules: Vec<GrpcRouteRule>,
}

/// One rule of a GRPCRoute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteRule {
    /// Optional name, for status and messages.
    #[serde(default)]
    pub name: Option<String>,
    /// Any one matches; none: every call.
    #[serde(default)]
    pub matches: Vec<GrpcRouteMatch>,
    /// The HTTPRoute filters GRPCRoute shares (header modifiers, mirror).
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Where matching calls go, by weight.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
    /// Experimental: reported, never ignored silently.
    #[serde(default)]
    pub session_persistence: Option<serde_json::Value>,
}

/// One match of a GRPCRoute rule: every part must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrpcRouteMatch {
    /// Service and method; none: every call.
    #[serde(default)]
    pub method: Option<GrpcMethodMatch>,
    /// Header (metadata) conditions.
    #[serde(default)]
    pub headers: Vec<ValueMatch>,
}

/// `GRPCMethodMatch`: `/service/method` of the call's `:path`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrpcMethodMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The fully qualified service, e.g. `grpc.health.v1.Health`.
    #[serde(default)]
    pub service: Option<String>,
    /// The method, e.g. `Check`.
    #[serde(default)]
    pub method: Option<String>,
}

/// `TLSRoute`: TLS connections picked by SNI, relayed unterminated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsRoute {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec.
    #[serde(default)]
    pub spec: TlsRouteSpec,
    /// The status as the API server holds it (see [`HttpRoute::status`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// `TLSRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRouteSpec {
    /// The Gateways (and listeners) the route attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    /// SNI hosts (or `*.suffix`) the route serves.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules (one).
    #[serde(default)]
    pub rules: Vec<TlsRouteRule>,
}

/// One rule of a TLSRoute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRouteRule {
    /// Optional name.
    #[serde(default)]
    pub name: Option<String>,
    /// Where connections go.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
}

/// `BackendTLSPolicy`: TLS from rauta to a Service's endpoints, verified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendTlsPolicy {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec.
    #[serde(default)]
    pub spec: BackendTlsPolicySpec,
    /// The status as the API server holds it: other controllers'
    /// `status.ancestors` entries are kept when ours are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// `BackendTLSPolicy.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendTlsPolicySpec {
    /// The Services (and ports, by `sectionName`) it applies to.
    #[serde(default)]
    pub target_refs: Vec<ObjectRef>,
    /// How the endpoints' certificates are verified.
    #[serde(default)]
    pub validation: BackendTlsValidation,
    /// Implementation-specific options (none are known: reported).
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

/// `BackendTLSPolicyValidation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendTlsValidation {
    /// ConfigMaps whose `ca.crt` holds the CA bundle.
    #[serde(default)]
    pub ca_certificate_refs: Vec<ObjectRef>,
    /// `System`: the trust store of the system rauta runs on.
    #[serde(default)]
    pub well_known_ca_certificates: Option<String>,
    /// Sent as SNI and verified against the certificate.
    #[serde(default)]
    pub hostname: String,
    /// Names verified instead of `hostname` (reported: not supported yet).
    #[serde(default)]
    pub subject_alt_names: Vec<serde_json::Value>,
}

/// `ReferenceGrant` (`v1beta1`, and `v1` where served).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceGrant {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec.
    #[serde(default)]
    pub spec: ReferenceGrantSpec,
}

/// `ReferenceGrant.spec`: objects in `from` may refer to objects in `to`
/// in the grant's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceGrantSpec {
    /// Who may refer.
    #[serde(default)]
    pub from: Vec<GrantFrom>,
    /// What may be referred to.
    #[serde(default)]
    pub to: Vec<GrantTo>,
}

/// `ReferenceGrantFrom`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrantFrom {
    /// The referring kind's group.
    #[serde(default)]
    pub group: String,
    /// The referring kind.
    #[serde(default)]
    pub kind: String,
    /// The referring objects' namespace.
    #[serde(default)]
    pub namespace: String,
}

/// `ReferenceGrantTo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrantTo {
    /// The referred kind's group (`""`: core).
    #[serde(default)]
    pub group: String,
    /// The referred kind.
    #[serde(default)]
    pub kind: String,
    /// One object only, when set.
    #[serde(default)]
    pub name: Option<String>,
}

/// Makes a type a Kubernetes resource for kube's `Api` and watchers.
macro_rules! resource {
    ($t:ty, $version:literal, $kind:literal, $plural:literal, $scope:ty) => {
        impl k8s_openapi::Resource for $t {
            const API_VERSION: &'static str = concat!("gateway.networking.k8s.io/", $version);
            const GROUP: &'static str = GROUP;
            const KIND: &'static str = $kind;
            const VERSION: &'static str = $version;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = $scope;
        }

        impl k8s_openapi::Metadata for $t {
            type Ty = ObjectMeta;

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

resource!(
    GatewayClass,
    "v1",
    "GatewayClass",
    "gatewayclasses",
    k8s_openapi::ClusterResourceScope
);
resource!(
    Gateway,
    "v1",
    "Gateway",
    "gateways",
    k8s_openapi::NamespaceResourceScope
);
resource!(
    HttpRoute,
    "v1",
    "HTTPRoute",
    "httproutes",
    k8s_openapi::NamespaceResourceScope
);
resource!(
    GrpcRoute,
    "v1",
    "GRPCRoute",
    "grpcroutes",
    k8s_openapi::NamespaceResourceScope
);
// Standard channel since v1.5; v1alpha2/v1alpha3 are no longer served there.
resource!(
    TlsRoute,
    "v1",
    "TLSRoute",
    "tlsroutes",
    k8s_openapi::NamespaceResourceScope
);
resource!(
    BackendTlsPolicy,
    "v1",
    "BackendTLSPolicy",
    "backendtlspolicies",
    k8s_openapi::NamespaceResourceScope
);
// v1beta1 is served by every standard-channel release that has v1 too.
resource!(
    ReferenceGrant,
    "v1beta1",
    "ReferenceGrant",
    "referencegrants",
    k8s_openapi::NamespaceResourceScope
);
