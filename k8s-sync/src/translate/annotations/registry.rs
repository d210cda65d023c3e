//! Every annotation key rauta knows, with how it is supported. A key is
//! listed here once a family reads it; a key not listed is warned about
//! and ignored, except the raw-config keys, which refuse the Ingress.

use super::verdict::Verdict;

/// How rauta supports a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Support {
    /// As ingress-nginx does.
    Honoured,
    /// Honoured, with this difference.
    // For the families whose every value differs; none has landed yet.
    #[allow(dead_code)]
    Differs(&'static str),
    /// The Ingress is refused, for this reason.
    Refused(&'static str),
    /// Not implemented: warned and ignored.
    Unknown,
}

impl Support {
    /// The verdict a well-formed value gets.
    pub(super) fn verdict(self) -> Verdict {
        match self {
            Support::Honoured => Verdict::Honoured,
            Support::Differs(note) => Verdict::Differs(note.to_string()),
            Support::Refused(why) => Verdict::Refused(why.to_string()),
            Support::Unknown => Verdict::Ignored("not supported by rauta; ignored".to_string()),
        }
    }
}

const RAW_CONFIG: &str = "raw nginx configuration is not supported (ingress-nginx also refuses it by default: annotations-risk-level Critical)";
const WAF: &str = "ModSecurity / OWASP CRS is not supported";

/// Keys (without prefix) and their support.
const KEYS: &[(&str, Support)] = &[
    ("load-balance", Support::Honoured),
    ("upstream-hash-by", Support::Honoured),
    ("endpoint-weights", Support::Honoured),
    ("ssl-redirect", Support::Honoured),
    ("force-ssl-redirect", Support::Honoured),
    ("configuration-snippet", Support::Refused(RAW_CONFIG)),
    ("server-snippet", Support::Refused(RAW_CONFIG)),
    ("stream-snippet", Support::Refused(RAW_CONFIG)),
    ("auth-snippet", Support::Refused(RAW_CONFIG)),
    ("modsecurity-snippet", Support::Refused(RAW_CONFIG)),
    ("enable-modsecurity", Support::Refused(WAF)),
    ("enable-owasp-core-rules", Support::Refused(WAF)),
];

/// How `key` (without prefix) is supported.
pub(super) fn support(key: &str) -> Support {
    KEYS.iter()
        .find(|(k, _)| *k == key)
        .map_or(Support::Unknown, |(_, s)| *s)
}
