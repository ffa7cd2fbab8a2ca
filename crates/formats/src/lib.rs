//! File and wire formats, and their conversion into validated domain values.
//!
//! Every outside shape Ballast reads is defined here as a serde DTO, and converted into the
//! domain types of `product`, `market`, `pricing` (and, above them, `methodology` and `margin`) by
//! functions that validate as they go and report the first bad value by its path in the document
//! (`underlyings.BTC.smiles.27DEC24.rho`, `contracts[3].vol`). Domain crates stay free of serde.
//!
//! The formats (documented in `docs/formats.md`):
//! - [`market`]: Ballast's market snapshot JSON.
//! - [`deribit`]: Deribit's `public/get_book_summary_by_currency`, `public/get_index_price` and
//!   `private/get_positions` results, as Deribit returns them.
//! - [`portfolio`]: portfolios and multi-account books.
//! - [`price_request`]: the contracts read by `ballast price` and `ballast iv`.
//! - [`methodology`]: methodology files (TOML) and their canonical hash.
//! - [`derive`]: Derive's PMRM_2 portfolio cases (its own JSON layout), for conformance.

pub mod bundled;
pub mod deribit;
pub mod derive;
mod error;
pub mod market;
pub mod methodology;
pub mod portfolio;
pub mod price_request;
pub mod report;
mod time_text;
pub mod venues;

pub use error::{Error, ErrorKind};
pub use time_text::{format_rfc3339, parse_expiry, parse_rfc3339};

/// keccak-256 of `document`'s compact JSON: the canonical hash of a document built from a domain
/// value (one spelling per value, so equal values hash alike).
pub(crate) fn canonical_hash<T: serde::Serialize>(document: &T) -> [u8; 32] {
    use sha3::{Digest, Keccak256};
    // Canonical documents hold strings, numbers and string-keyed maps only, which serialise
    // without error; an empty fallback would attest the hash of nothing.
    let Ok(bytes) = serde_json::to_vec(document) else {
        panic!("Invariant: a canonical document serialises (its maps have string keys)")
    };
    Keccak256::digest(bytes).into()
}

/// Parses JSON text into `T`, mapping serde's errors (with line and column) into ours.
///
/// # Errors
/// `Syntax` for malformed JSON, a wrong type or an unknown field.
pub fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::syntax(e.to_string()))
}
