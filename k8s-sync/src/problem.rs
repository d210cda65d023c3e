//! Problems found while loading or translating Kubernetes objects.

use std::fmt;
use std::path::PathBuf;

/// How bad a problem is, worst first.
///
/// The two error kinds differ in what they take down: a [`Severity::Fatal`]
/// problem (a file that cannot be read or parsed, so its objects are
/// unknown) rejects the whole set and the last good configuration stays
/// live; a [`Severity::Error`] is about one object, which is left out while
/// every other object is served, as the API server would reject only that
/// object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The object set is rejected; the last good configuration stays live.
    Fatal,
    /// The object is left out; the rest of the set is served.
    Error,
    /// Reported; the object is served.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem, with where it was found when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// How bad it is.
    pub severity: Severity,
    /// The manifest file, when the object came from one.
    pub file: Option<PathBuf>,
    /// The object, e.g. `Ingress demo/web`.
    pub object: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem that rejects the whole set (no file known yet).
    pub fn fatal(object: Option<String>, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Fatal,
            file: None,
            object,
            message: message.into(),
        }
    }

    /// An error about `object`, which is left out (no file known yet).
    pub fn error(object: Option<String>, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Error,
            file: None,
            object,
            message: message.into(),
        }
    }

    /// A warning about `object` (no file known yet).
    pub fn warning(object: Option<String>, message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Warning,
            file: None,
            object,
            message: message.into(),
        }
    }

    /// The same problem, attributed to `file`.
    pub fn in_file(mut self, file: Option<PathBuf>) -> Problem {
        self.file = file;
        self
    }

    /// True for [`Severity::Error`] and [`Severity::Fatal`].
    pub fn is_error(&self) -> bool {
        self.severity <= Severity::Error
    }

    /// True for [`Severity::Fatal`]: the set cannot be used.
    pub fn is_fatal(&self) -> bool {
        self.severity == Severity::Fatal
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_omits_missing_parts() {
        let full = Problem::error(
            Some("Ingress demo/web".into()),
            r#"path "api" must start with "/""#,
        )
        .in_file(Some("manifests/web.yaml".into()));
        assert_eq!(
            full.to_string(),
            r#"error: manifests/web.yaml: Ingress demo/web: path "api" must start with "/""#
        );
        let bare = Problem::warning(None, "something");
        assert_eq!(bare.to_string(), "warning: something");
    }
}
