use std::fmt;

/// The error type of the `netting` crate: which input was refused and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// The offending field as the caller knows it (`accounts[2].liens[0].amount`,
    /// `venues.derive.methodology`).
    pub field: String,
    /// What is wrong with it.
    pub kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A venue id the book does not declare.
    UnknownVenue(String),
    /// An id used twice.
    Duplicate(String),
    /// A position in an instrument its venue does not list.
    NotListed(String),
    /// A lien pledges more of a currency than the account holds at the venue it comes from.
    LienTooLarge {
        /// What the lien pledges.
        pledged: f64,
        /// What the account holds there.
        held: f64,
    },
    /// More than one venue is named the account's controller.
    TwoControllers(String, String),
    /// A lien or netting rule needs a controller and the account has none, or the lien does
    /// not go to it.
    Controller(String),
    /// The same instrument held at two venues with different entry prices or funding indices:
    /// the whole book cannot be formed without choosing one.
    Unmergeable(String),
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

    pub(crate) fn margin(field: impl Into<String>, error: margin::Error) -> Error {
        Error::new(field, ErrorKind::Margin(error))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.kind)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::UnknownVenue(v) => write!(f, "unknown venue {v:?}"),
            ErrorKind::Duplicate(id) => write!(f, "duplicate id {id:?}"),
            ErrorKind::NotListed(what) => write!(f, "not listed at the venue: {what}"),
            ErrorKind::LienTooLarge { pledged, held } => {
                write!(f, "a lien of {pledged} is larger than the {held} held at the venue")
            }
            ErrorKind::TwoControllers(a, b) => {
                write!(f, "two controllers ({a} and {b}): an account has at most one")
            }
            ErrorKind::Controller(rule) => write!(f, "{rule}"),
            ErrorKind::Unmergeable(what) => write!(f, "cannot merge into the whole book: {what}"),
            ErrorKind::OutOfRange(rule) => write!(f, "out of range: {rule}"),
            ErrorKind::Limit { limit, max } => write!(f, "more than {limit} = {max}"),
            ErrorKind::Margin(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}
