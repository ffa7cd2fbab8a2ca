use std::fmt;

use oracle::{B256, RejectionCode};

use crate::aggregator::NodeOutcome;

/// The error type of the `federation` crate.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A configuration value is unusable; the string names it and says why.
    Config(String),
    /// The listen address could not be bound, or the server failed.
    Io(std::io::Error),
    /// The oracle library refused an input (a bad header or result from the compute callback).
    Oracle(oracle::Error),
    /// The margin computation behind a node failed; the string is its message.
    Compute(String),
    /// The request was refused with a stable rejection code (a stale or replayed epoch, a
    /// report the verifier rejects).
    Rejected(RejectionCode),
    /// Fewer than the threshold of signers agreed on one report. `groups` lists each digest seen
    /// with the number of distinct signers behind it, largest first.
    NoQuorum {
        /// Signatures needed.
        threshold: u8,
        /// (digest, signers) for every digest that at least one valid answer signed.
        groups: Vec<(B256, usize)>,
        /// Every node's outcome, in configuration order.
        outcomes: Vec<NodeOutcome>,
    },
    /// A node's HTTP endpoint failed or answered something unusable; the string says which.
    Http(String),
    /// Two different reports each reached the threshold: the threshold is too low for the
    /// number of nodes, or signers equivocated. Nothing is published.
    ConflictingQuorums(Vec<B256>),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Config(what) => write!(f, "configuration: {what}"),
            ErrorKind::Io(error) => write!(f, "i/o: {error}"),
            ErrorKind::Oracle(error) => write!(f, "oracle: {error}"),
            ErrorKind::Compute(message) => write!(f, "margin computation failed: {message}"),
            ErrorKind::Rejected(code) => write!(f, "rejected: {code}"),
            ErrorKind::NoQuorum { threshold, groups, outcomes } => {
                write!(f, "no report reached {threshold} signers; digests seen: ")?;
                let seen: Vec<String> =
                    groups.iter().map(|(digest, count)| format!("{digest} x{count}")).collect();
                write!(f, "[{}]", seen.join(", "))?;
                for outcome in outcomes {
                    write!(f, "; {}: {}", outcome.node, outcome.status)?;
                }
                Ok(())
            }
            ErrorKind::Http(what) => write!(f, "http: {what}"),
            ErrorKind::ConflictingQuorums(digests) => {
                write!(f, "{} different reports reached the threshold", digests.len())
            }
        }
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Error {
        Error { kind }
    }

    pub(crate) fn config(what: impl Into<String>) -> Error {
        Error::new(ErrorKind::Config(what.into()))
    }
}

impl From<oracle::Error> for Error {
    fn from(error: oracle::Error) -> Error {
        Error::new(ErrorKind::Oracle(error))
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Error {
        Error::new(ErrorKind::Io(error))
    }
}

impl From<RejectionCode> for Error {
    fn from(code: RejectionCode) -> Error {
        Error::new(ErrorKind::Rejected(code))
    }
}
