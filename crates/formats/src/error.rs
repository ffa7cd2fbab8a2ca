use std::fmt;

/// The error type of the `formats` crate: where in the document a value was rejected, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct Error {
    /// Path of the value in the document (`contracts[3].vol`), or `document` for syntax errors.
    pub location: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What went wrong, without the location.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text is not valid JSON of the expected shape; serde's message with line and column.
    Syntax(String),
    /// A value is present but invalid; the message of the domain layer that rejected it.
    Invalid(String),
    /// A required value is absent.
    Missing(String),
    /// A value the source's format can hold but its own model refuses (as Derive's
    /// `setScenarios` refuses a skew scenario that moves the price), and so does Ballast.
    Refused(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Syntax(message) => write!(f, "malformed input: {message}"),
            ErrorKind::Invalid(message) => f.write_str(message),
            ErrorKind::Missing(what) => write!(f, "missing {what}"),
            ErrorKind::Refused(why) => write!(f, "refused: {why}"),
        }
    }
}

impl Error {
    pub(crate) fn syntax(message: String) -> Error {
        Error { location: "document".into(), kind: ErrorKind::Syntax(message) }
    }

    pub(crate) fn invalid(location: impl Into<String>, message: impl Into<String>) -> Error {
        Error { location: location.into(), kind: ErrorKind::Invalid(message.into()) }
    }

    pub(crate) fn missing(location: impl Into<String>, what: impl Into<String>) -> Error {
        Error { location: location.into(), kind: ErrorKind::Missing(what.into()) }
    }

    /// Wraps a domain error found under `prefix`, joining the paths.
    pub(crate) fn nested(prefix: &str, field: &str, message: impl fmt::Display) -> Error {
        let location = match (prefix.is_empty(), field.is_empty()) {
            (true, _) => field.to_owned(),
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{field}"),
        };
        Error::invalid(location, message.to_string())
    }
}

impl From<product::Error> for Error {
    fn from(e: product::Error) -> Error {
        Error::invalid(e.field, e.kind.to_string())
    }
}

impl From<market::Error> for Error {
    fn from(e: market::Error) -> Error {
        Error::invalid(e.field, e.kind.to_string())
    }
}
