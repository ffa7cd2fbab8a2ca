use std::fmt;

use crate::history::Problem;

/// The error type of the `backtest` crate: which input was refused, where, and why.
///
/// Every refusal names its place, so that a caller can point at the line of a price file, the
/// observation of a coverage series or the cell of a loss matrix without searching for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// The offending field or argument, as the caller knows it (`open`, `confidence`, `losses`).
    pub field: &'static str,
    /// Where in the input, when the input has places.
    pub at: Option<Location>,
    /// What is wrong with it.
    pub kind: ErrorKind,
}

/// A place in an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A 1-based line of a text file, the header being line 1 (an editor's line number).
    Line(usize),
    /// A 0-based index into a series (an observation, a return).
    Index(usize),
    /// A cell of a loss matrix, both 0-based.
    Cell {
        /// The account (row).
        account: usize,
        /// The scenario (column).
        scenario: usize,
    },
}

/// What went wrong, without the place.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Text that is not the expected form; the string says what was expected.
    Syntax(String),
    /// A price bar refused by [`crate::history::Policy::Refuse`] or a gap refused by
    /// [`crate::history::Gaps::Refuse`].
    Bar(Problem),
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
    /// A key the file's format does not have (the string is its full path, `smile.rhoo`).
    UnknownKey(String),
    /// A required key or input is absent.
    Missing,
    /// A name that is none of the known ones; the string lists those.
    UnknownName(String),
    /// The market layer refused a replayed snapshot (its error, rendered).
    Market(String),
    /// The margin engine refused the input (its error, rendered).
    Margin(String),
    /// The methodology could not value a single observation; the string is the first reason.
    Unvalued(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(line) => write!(f, "line {line}"),
            Location::Index(index) => write!(f, "index {index}"),
            Location::Cell { account, scenario } => {
                write!(f, "account {account}, scenario {scenario}")
            }
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Syntax(expected) => write!(f, "expected {expected}"),
            ErrorKind::Bar(problem) => write!(f, "{problem}"),
            ErrorKind::NotFinite => f.write_str("must be a finite number"),
            ErrorKind::OutOfRange(rule) => write!(f, "out of range: {rule}"),
            ErrorKind::Limit { limit, max } => write!(f, "more than {limit} = {max}"),
            ErrorKind::UnknownKey(key) => write!(f, "unknown key `{key}`"),
            ErrorKind::Missing => f.write_str("is required"),
            ErrorKind::UnknownName(known) => write!(f, "unknown name (known: {known})"),
            ErrorKind::Market(why) => write!(f, "market refused: {why}"),
            ErrorKind::Margin(why) => write!(f, "margin engine refused: {why}"),
            ErrorKind::Unvalued(first) => {
                write!(f, "the methodology valued no observation; the first refusal: {first}")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(f, "{at}, {}: {}", self.field, self.kind),
            None => write!(f, "{}: {}", self.field, self.kind),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    pub(crate) fn new(field: &'static str, at: Option<Location>, kind: ErrorKind) -> Error {
        Error { field, at, kind }
    }

    pub(crate) fn range(field: &'static str, rule: impl Into<String>) -> Error {
        Error::new(field, None, ErrorKind::OutOfRange(rule.into()))
    }

    pub(crate) fn limit(field: &'static str, limit: &'static str, max: usize) -> Error {
        Error::new(field, None, ErrorKind::Limit { limit, max })
    }
}
