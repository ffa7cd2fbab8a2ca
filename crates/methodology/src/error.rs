use std::fmt;

/// The error type of the `methodology` crate: which methodology field is invalid and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct Error {
    /// Path of the field in the methodology, e.g. `scenarios.price_grid.steps_up`.
    pub field: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What went wrong, without the location.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// NaN or infinite.
    NotFinite,
    /// Outside its range; the string states the rule and the value.
    OutOfRange(String),
    /// Inconsistent with another field; the string explains.
    Inconsistent(String),
    /// More items than a limit allows.
    TooMany {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::NotFinite => f.write_str("must be a finite number"),
            ErrorKind::OutOfRange(rule) => write!(f, "out of range: {rule}"),
            ErrorKind::Inconsistent(why) => write!(f, "inconsistent: {why}"),
            ErrorKind::TooMany { limit } => write!(f, "more than {limit} items"),
        }
    }
}

impl Error {
    /// Builds an error at `field`.
    pub fn new(field: impl Into<String>, kind: ErrorKind) -> Error {
        Error { field: field.into(), kind }
    }

    pub(crate) fn range(field: impl Into<String>, rule: impl Into<String>) -> Error {
        Error::new(field, ErrorKind::OutOfRange(rule.into()))
    }
}

/// Checks that `value` is finite and inside `[low, high]`.
pub(crate) fn check_range(field: &str, value: f64, low: f64, high: f64) -> Result<(), Error> {
    if !value.is_finite() {
        return Err(Error::new(field, ErrorKind::NotFinite));
    }
    if value < low || value > high {
        return Err(Error::range(field, format!("must be in [{low}, {high}], got {value}")));
    }
    Ok(())
}
