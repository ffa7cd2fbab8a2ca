use std::fmt;

/// The error type of the `span` crate: which element, attribute or input was rejected and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct Error {
    /// Where: an element path in the SPAN file (`clearingOrg/exchange[BIST]/futPf[100002]/p`)
    /// or a field of a portfolio (`positions[3].strike`).
    pub location: String,
    /// What is wrong there.
    pub kind: ErrorKind,
}

/// What went wrong, without the location.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The document is not well-formed XML or JSON; the string is the parser's message.
    Syntax(String),
    /// A required element or field is absent.
    Missing,
    /// The text is not a number, or the number is outside what the field allows.
    Invalid(String),
    /// A reference (underlying, contract, combined commodity) names nothing in the file.
    Unresolved(String),
    /// A valid SPAN feature this implementation does not compute; the string says which.
    Unsupported(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Syntax(why) => write!(f, "malformed document: {why}"),
            ErrorKind::Missing => f.write_str("required but absent"),
            ErrorKind::Invalid(why) => write!(f, "invalid: {why}"),
            ErrorKind::Unresolved(what) => write!(f, "refers to {what}, which the file lacks"),
            ErrorKind::Unsupported(why) => write!(f, "unsupported: {why}"),
        }
    }
}

impl Error {
    pub(crate) fn new(location: impl Into<String>, kind: ErrorKind) -> Error {
        Error { location: location.into(), kind }
    }

    pub(crate) fn invalid(location: impl Into<String>, why: impl Into<String>) -> Error {
        Error::new(location, ErrorKind::Invalid(why.into()))
    }
}
