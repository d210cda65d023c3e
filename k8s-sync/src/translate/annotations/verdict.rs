//! What rauta does with one annotation: the migration report's unit.

use std::fmt;

/// rauta's verdict on one annotation of one Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Served as ingress-nginx serves it.
    Honoured,
    /// Served, with the stated difference from ingress-nginx.
    Differs(String),
    /// Not acted on (unsupported, overridden, or a bad value that falls
    /// back to the default); a warning says why.
    Ignored(String),
    /// Refused: the Ingress is not served, or its paths answer 503.
    Refused(String),
}

impl Verdict {
    /// One word for tables: `honoured`, `differs`, `ignored`, `refused`.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Honoured => "honoured",
            Verdict::Differs(_) => "differs",
            Verdict::Ignored(_) => "ignored",
            Verdict::Refused(_) => "refused",
        }
    }

    /// The reason or difference, empty when honoured.
    pub fn note(&self) -> &str {
        match self {
            Verdict::Honoured => "",
            Verdict::Differs(s) | Verdict::Ignored(s) | Verdict::Refused(s) => s,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.note() {
            "" => f.write_str(self.label()),
            note => write!(f, "{}: {note}", self.label()),
        }
    }
}

/// The verdict on one annotation, with its full key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationVerdict {
    /// The full key, prefix included.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// What rauta does with it.
    pub verdict: Verdict,
}
