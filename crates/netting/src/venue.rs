//! Venues: a protocol on a chain or an exchange, with its own listing, methodology, collateral
//! rules (those of its methodology) and liquidation profile, and the freshness of its feed.

use std::fmt;

use margin::Engine;
use product::{Instrument, InstrumentKind};

use crate::{Error, ErrorKind};

/// A venue's id: non-empty ASCII letters, digits, `-` and `_`, at most 32 bytes, so it fits an
/// attested leaf as text and sorts the same everywhere.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VenueId(String);

impl VenueId {
    /// Longest id, in bytes.
    pub const LEN_MAX_BYTES: usize = 32;

    /// Validates `text` as a venue id.
    ///
    /// # Errors
    /// `OutOfRange` naming `field` for an empty, long or non-ASCII id.
    pub fn new(text: &str, field: &str) -> Result<VenueId, Error> {
        let ok = !text.is_empty()
            && text.len() <= Self::LEN_MAX_BYTES
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(VenueId(text.to_owned()))
        } else {
            Err(Error::range(field, "1 to 32 ASCII letters, digits, '-' or '_'"))
        }
    }

    /// The id's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VenueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a venue runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenueKind {
    /// A centralised exchange (no chain; it reads the oracle's report off chain).
    Exchange,
    /// A protocol deployed on the chain with this EIP-155 id.
    Protocol {
        /// The chain's id.
        chain_id: u64,
    },
}

/// The kinds of contract a venue lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Listing {
    /// Lists options.
    pub options: bool,
    /// Lists dated futures.
    pub futures: bool,
    /// Lists perpetuals.
    pub perpetuals: bool,
}

impl Listing {
    /// Every kind.
    pub const ALL: Listing = Listing { options: true, futures: true, perpetuals: true };

    /// Whether `instrument` is one of the kinds listed.
    #[must_use]
    pub fn lists(&self, instrument: &Instrument) -> bool {
        match instrument.kind() {
            InstrumentKind::Option { .. } => self.options,
            InstrumentKind::Future { .. } => self.futures,
            InstrumentKind::Perpetual => self.perpetuals,
        }
    }
}

/// How fresh a venue's feed is at the netting's valuation time: the time of the last state it
/// reported and, if it has halted, since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feed {
    /// Unix seconds of the venue's last reported state (its own oracle's as-of time).
    pub as_of_secs: u64,
    /// Unix seconds at which the venue halted, if it has.
    pub halted_at_secs: Option<u64>,
}

/// A venue of a cross-venue book.
#[derive(Debug, Clone)]
pub struct Venue {
    /// Its id.
    pub id: VenueId,
    /// Where it runs.
    pub kind: VenueKind,
    /// What it lists.
    pub listing: Listing,
    /// Its own methodology (and through it its collateral rules).
    pub engine: Engine,
    /// The bundled liquidation profile it liquidates with (the `liquidation` crate's names).
    pub liquidation: String,
    /// Whether it agrees that a netted requirement is never below what the whole book needs
    /// under its own methodology.
    pub floor: bool,
    /// Its feed's freshness.
    pub feed: Feed,
}

impl Venue {
    /// Refuses an instrument the venue does not list; `field` names it only then.
    pub(crate) fn check_listed(
        &self,
        instrument: &Instrument,
        field: impl FnOnce() -> String,
    ) -> Result<(), Error> {
        if self.listing.lists(instrument) {
            Ok(())
        } else {
            Err(Error::new(field(), ErrorKind::NotListed(format!("{instrument} at {}", self.id))))
        }
    }
}
