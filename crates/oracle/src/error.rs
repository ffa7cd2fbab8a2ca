use std::fmt;

/// The error type of the `oracle` crate: which input was rejected and why.
///
/// These are operating errors: bad inputs handed to the builders and readers. A report that is
/// well formed but fails verification is not an error but a [`crate::RejectionCode`], because
/// the contract must answer it with the same stable number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct Error {
    /// The offending field or argument, as the caller knows it (`initial_margin`, `signers`).
    pub field: &'static str,
    /// What is wrong with it.
    pub kind: ErrorKind,
}

/// What went wrong, without the field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Outside the accepted range; the string states the rule and the value.
    OutOfRange(String),
    /// An amount is in another currency than the epoch's reporting currency.
    CurrencyMismatch {
        /// The epoch's reporting currency.
        expected: String,
        /// The currency found.
        found: String,
    },
    /// A value that must be unique appears twice; the string names it.
    Duplicate(String),
    /// Values that must be strictly ascending are not; the string names the first offender.
    NotAscending(String),
    /// Text that is not the expected format; the string says what was expected.
    Syntax(String),
    /// A secret key that is not a valid secp256k1 scalar.
    InvalidKey,
    /// A value that is derived from others (a digest, a root, a leaf hash) does not match its
    /// recomputation: the file was edited or belongs to something else.
    Mismatch(String),
    /// The item asked for is not there (an account not in the tree).
    NotFound(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::OutOfRange(rule) => write!(f, "out of range: {rule}"),
            ErrorKind::CurrencyMismatch { expected, found } => {
                write!(f, "expected an amount in {expected}, found {found}")
            }
            ErrorKind::Duplicate(what) => write!(f, "duplicate {what}"),
            ErrorKind::NotAscending(what) => write!(f, "not strictly ascending at {what}"),
            ErrorKind::Syntax(expected) => write!(f, "expected {expected}"),
            ErrorKind::InvalidKey => f.write_str("not a valid secp256k1 secret key"),
            ErrorKind::Mismatch(what) => write!(f, "does not match its recomputation: {what}"),
            ErrorKind::NotFound(what) => write!(f, "not found: {what}"),
        }
    }
}

impl Error {
    pub(crate) fn new(field: &'static str, kind: ErrorKind) -> Error {
        Error { field, kind }
    }

    pub(crate) fn range(field: &'static str, rule: impl Into<String>) -> Error {
        Error::new(field, ErrorKind::OutOfRange(rule.into()))
    }

    pub(crate) fn syntax(field: &'static str, expected: impl Into<String>) -> Error {
        Error::new(field, ErrorKind::Syntax(expected.into()))
    }

    pub(crate) fn mismatch(field: &'static str, what: impl Into<String>) -> Error {
        Error::new(field, ErrorKind::Mismatch(what.into()))
    }
}
