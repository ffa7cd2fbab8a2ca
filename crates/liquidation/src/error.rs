use std::fmt;

/// The error type of the `liquidation` crate: which input was refused and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// The offending field or argument as the caller knows it (`step.selection`, `path[3]`,
    /// `depth.volume_floor`).
    pub field: String,
    /// What is wrong with it.
    pub kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Text that is not the expected form; the string says what was expected.
    Syntax(String),
    /// A key the profile format does not have (its full path).
    UnknownKey(String),
    /// A required key or input is absent.
    Missing,
    /// A name that is none of the known ones; the string lists those.
    UnknownName(String),
    /// A number that is NaN or infinite.
    NotFinite,
    /// Outside the accepted range; the string states the rule.
    OutOfRange(String),
    /// More items than a limit of [`crate::limits`] allows.
    Limit {
        /// The limit's name.
        limit: &'static str,
        /// Its value.
        max: usize,
    },
    /// The margin engine refused the input.
    Margin(margin::Error),
}

impl Error {
    pub(crate) fn new(field: impl Into<String>, kind: ErrorKind) -> Error {
        Error { field: field.into(), kind }
    }

    pub(crate) fn range(field: impl Into<String>, rule: impl Into<String>) -> Error {
        Error::new(field, ErrorKind::OutOfRange(rule.into()))
    }

    pub(crate) fn limit(field: impl Into<String>, limit: &'static str, max: usize) -> Error {
        Error::new(field, ErrorKind::Limit { limit, max })
    }

    pub(crate) fn margin(field: impl Into<String>, error: margin::Error) -> Error {
        Error::new(field, ErrorKind::Margin(error))
    }

    /// `value` if it is finite, else `NotFinite` naming `field`.
    pub(crate) fn finite(field: &str, value: f64) -> Result<f64, Error> {
        if value.is_finite() { Ok(value) } else { Err(Error::new(field, ErrorKind::NotFinite)) }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Syntax(expected) => write!(f, "expected {expected}"),
            ErrorKind::UnknownKey(key) => write!(f, "unknown key `{key}`"),
            ErrorKind::Missing => f.write_str("is required"),
            ErrorKind::UnknownName(known) => write!(f, "unknown name; known: {known}"),
            ErrorKind::NotFinite => f.write_str("must be a finite number"),
            ErrorKind::OutOfRange(rule) => write!(f, "out of range: {rule}"),
            ErrorKind::Limit { limit, max } => write!(f, "more than {limit} = {max}"),
            ErrorKind::Margin(e) => write!(f, "margin engine: {e}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.kind)
    }
}

impl std::error::Error for Error {}
