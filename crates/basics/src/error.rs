use std::fmt;

/// The error type of the `basics` crate: which value was rejected and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct Error {
    /// The name of the offending field or argument, as the caller knows it.
    pub field: String,
    /// What is wrong with it.
    pub kind: ErrorKind,
}

/// What went wrong, without the field name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The value is NaN or infinite.
    NotFinite,
    /// The value does not fit the fixed-point range.
    OutOfRange,
    /// The text could not be parsed; the string says what was expected.
    Syntax(String),
    /// Two amounts in different currencies were combined.
    CurrencyMismatch {
        /// The currency on the left-hand side.
        left: String,
        /// The currency on the right-hand side.
        right: String,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::NotFinite => f.write_str("must be a finite number"),
            ErrorKind::OutOfRange => f.write_str("is outside the representable range"),
            ErrorKind::Syntax(expected) => write!(f, "expected {expected}"),
            ErrorKind::CurrencyMismatch { left, right } => {
                write!(f, "cannot combine {left} with {right}")
            }
        }
    }
}

impl Error {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, kind: ErrorKind) -> Error {
        Error { field: field.into(), kind }
    }
}
