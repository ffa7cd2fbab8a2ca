use std::fmt;

/// The error type of the `margin` crate. Margin never returns a silently partial number: anything
/// it cannot value is one of these, naming what and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct Error {
    /// What the error is about: an instrument name, a currency, a methodology field.
    pub field: String,
    /// What is wrong.
    pub kind: ErrorKind,
    /// The account a bulk refresh failed on, by its index in the book (the field is then
    /// within that account: `balances.USDC`); `None` for any other error.
    pub account: Option<usize>,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The instrument is not in the risk arrays or the market.
    UnknownInstrument,
    /// The instrument has expired and no settlement is known.
    Expired,
    /// Market data needed to value the instrument is missing; the string says which.
    MissingMarketData(String),
    /// A balance is negative and the methodology does not accept debt.
    NegativeCollateral,
    /// The methodology does not accept this currency as collateral.
    CollateralNotAccepted,
    /// The methodology is invalid (its own error, rendered).
    Methodology(String),
    /// A computed number is not finite; the string says where (a bug or absurd inputs).
    NotFinite(String),
    /// An input is out of range; the string states the rule.
    OutOfRange(String),
    /// Holdings or trades the product layer refuses (its own error, rendered).
    Portfolio(String),
    /// A limit was exceeded.
    TooMany {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnknownInstrument => f.write_str("unknown instrument"),
            ErrorKind::Expired => f.write_str("expired, and no settlement price is known"),
            ErrorKind::MissingMarketData(what) => write!(f, "missing market data: {what}"),
            ErrorKind::NegativeCollateral => {
                f.write_str("negative balance, and the methodology does not accept debt")
            }
            ErrorKind::CollateralNotAccepted => {
                f.write_str("not accepted as collateral by the methodology")
            }
            ErrorKind::Methodology(why) => write!(f, "invalid methodology: {why}"),
            ErrorKind::NotFinite(what) => write!(f, "non-finite result in {what}"),
            ErrorKind::OutOfRange(rule) => write!(f, "out of range: {rule}"),
            ErrorKind::Portfolio(why) => f.write_str(why),
            ErrorKind::TooMany { limit } => write!(f, "more than {limit} items"),
        }
    }
}

impl Error {
    /// Builds an error about `field`.
    pub fn new(field: impl Into<String>, kind: ErrorKind) -> Error {
        Error { field: field.into(), kind, account: None }
    }

    /// The same error, about account `index` of a bulk refresh.
    #[must_use]
    pub fn in_account(self, index: usize) -> Error {
        Error { account: Some(index), ..self }
    }
}

impl From<methodology::Error> for Error {
    fn from(e: methodology::Error) -> Error {
        Error::new(e.field, ErrorKind::Methodology(e.kind.to_string()))
    }
}

impl From<market::Error> for Error {
    fn from(e: market::Error) -> Error {
        Error::new(e.field, ErrorKind::MissingMarketData(e.kind.to_string()))
    }
}

impl From<product::Error> for Error {
    fn from(e: product::Error) -> Error {
        Error::new(e.field, ErrorKind::Portfolio(e.kind.to_string()))
    }
}
