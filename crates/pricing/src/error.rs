use std::fmt;

/// The error type of the `pricing` crate: which input was rejected and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct Error {
    /// The input field, e.g. `vol` or `years`.
    pub field: &'static str,
    /// What is wrong with it.
    pub kind: ErrorKind,
}

/// What went wrong, without the field.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// NaN or infinite.
    NotFinite,
    /// Outside the accepted range; the string states the rule and the value.
    OutOfRange(String),
    /// No volatility reproduces the price: it lies outside the no-arbitrage bounds.
    PriceOutsideBounds {
        /// Lowest attainable price (intrinsic value).
        lower: f64,
        /// Highest attainable price.
        upper: f64,
    },
    /// The combination of inputs is not supported; the string says which and why.
    Unsupported(String),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::NotFinite => f.write_str("must be a finite number"),
            ErrorKind::OutOfRange(rule) => write!(f, "out of range: {rule}"),
            ErrorKind::PriceOutsideBounds { lower, upper } => write!(
                f,
                "no volatility reproduces this price; it must lie strictly between \
                 {lower} and {upper}"
            ),
            ErrorKind::Unsupported(why) => write!(f, "unsupported: {why}"),
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
}
