use std::fmt;

/// The error type of the `product` crate: which input was rejected and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct Error {
    /// Where the bad value sits, e.g. `positions[3].size` or `instrument_name`.
    pub field: String,
    /// What is wrong with it.
    pub kind: ErrorKind,
}

/// What went wrong, without the location.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An instrument name that does not follow the Deribit convention; says which part failed.
    InstrumentName(String),
    /// A number that must be finite is NaN or infinite.
    NotFinite,
    /// A number outside its allowed range; the string states the rule.
    OutOfRange(String),
    /// The same instrument appears twice in one portfolio.
    DuplicateInstrument(String),
    /// A future or perpetual traded without the entry price its P&L counts from.
    MissingEntry,
    /// More items than a limit allows.
    TooMany {
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::InstrumentName(why) => write!(f, "not a Deribit instrument name: {why}"),
            ErrorKind::NotFinite => f.write_str("must be a finite number"),
            ErrorKind::OutOfRange(rule) => write!(f, "out of range: {rule}"),
            ErrorKind::DuplicateInstrument(name) => write!(f, "{name} appears more than once"),
            ErrorKind::MissingEntry => {
                f.write_str("no entry price: the P&L of the position held is unknown")
            }
            ErrorKind::TooMany { limit } => write!(f, "more than {limit} items"),
        }
    }
}

impl Error {
    /// Builds an error at `field`.
    pub fn new(field: impl Into<String>, kind: ErrorKind) -> Error {
        Error { field: field.into(), kind }
    }
}
