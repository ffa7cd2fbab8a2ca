use std::fmt;

/// The error type of the `market` crate: which piece of market data was rejected and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct Error {
    /// Where the bad value sits, e.g. `BTC.surface[2].b` or `BTC.forwards[27DEC24]`.
    pub field: String,
    /// What is wrong with it.
    pub kind: ErrorKind,
}

/// What went wrong, without the location.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// NaN or infinite.
    NotFinite,
    /// Outside the accepted range; the string states the rule and the value.
    OutOfRange(String),
    /// The data admits an arbitrage; the string says which kind and where.
    Arbitrage(String),
    /// Something required is absent; the string says what.
    Missing(String),
    /// More items than a limit allows.
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// A calibration could not produce an acceptable fit; the string says why.
    Calibration(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::NotFinite => f.write_str("must be a finite number"),
            ErrorKind::OutOfRange(rule) => write!(f, "out of range: {rule}"),
            ErrorKind::Arbitrage(what) => write!(f, "arbitrage: {what}"),
            ErrorKind::Missing(what) => write!(f, "missing {what}"),
            ErrorKind::TooMany { limit } => write!(f, "more than {limit} items"),
            ErrorKind::Calibration(why) => write!(f, "calibration failed: {why}"),
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

    /// The same error with `prefix.` prepended to its location.
    #[must_use]
    pub fn within(self, prefix: &str) -> Error {
        Error { field: format!("{prefix}.{}", self.field), kind: self.kind }
    }
}

pub(crate) fn finite(field: &str, value: f64) -> Result<f64, Error> {
    if value.is_finite() { Ok(value) } else { Err(Error::new(field, ErrorKind::NotFinite)) }
}
