//! CME SPAN: risk-parameter files, risk-array regeneration and portfolio SPAN margin.
//!
//! SPAN (Standard Portfolio Analysis of Risk) is the margin method of CME and of most futures
//! clearing houses. A clearing house publishes, every day, a file with each contract's price,
//! its 16-scenario risk array and composite delta, and the rules that combine them: combined
//! commodities, intra-commodity (calendar) spread charges, short option minimums and
//! inter-commodity credits. This crate:
//!
//! - reads the SPAN 4 XML format ([`SpanFile::from_bytes`]), with every failure located by its
//!   element path;
//! - regenerates every risk array and composite delta of a file from the file's own inputs
//!   ([`regenerate`]), a conformance check of our pricing against the clearing house's;
//! - computes the SPAN margin of a portfolio ([`margin`]) from the published arrays, with a
//!   breakdown per combined commodity.
//!
//! The file-driven computation lives here rather than in `margin` because SPAN's inputs are
//! per-contract arrays and tiered rules, not a surface and a methodology; the scenario grid
//! itself is also expressed as the methodology profile `methodologies/span.toml`.

mod error;
mod file;
mod margin;
mod parse;
mod portfolio;
mod regen;

pub use error::{Error, ErrorKind};
pub use file::*;
pub use margin::{CommodityMargin, SpanMargin, margin};
pub use parse::FILE_SIZE_MAX_BYTES;
pub use portfolio::{ContractKind, SpanPortfolio, SpanPosition};
pub use regen::{
    ARRAY_TOLERANCE_CURRENCY, ArrayCheck, CheckedKind, DELTA_TOLERANCE_UNITS, LOOK_AHEAD_YEARS,
    linear_risk_array, option_risk_array, regenerate, underlying_price,
};

impl SpanFile {
    /// Parses a SPAN 4 XML file, decoding it by its declared encoding.
    ///
    /// # Errors
    /// `Syntax` for malformed XML; `Missing`, `Invalid` or `Unsupported` naming the element.
    pub fn from_bytes(bytes: &[u8]) -> Result<SpanFile, Error> {
        parse::parse_bytes(bytes)
    }

    /// Parses the text of a SPAN 4 XML file.
    ///
    /// # Errors
    /// As [`SpanFile::from_bytes`].
    pub fn from_xml(text: &str) -> Result<SpanFile, Error> {
        parse::parse_str(text)
    }
}
