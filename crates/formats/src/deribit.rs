//! Deribit's own payload shapes.
//!
//! Ballast reads what Deribit's public and private API return, unchanged: either the bare
//! `result` array/object or the whole JSON-RPC envelope `{"jsonrpc": "2.0", "result": ...}`.
//! Unknown fields are ignored on purpose: Deribit adds fields over time.
//!
//! - `public/get_book_summary_by_currency`: [`BookSummaryEntry`]; instrument marks, bid/ask,
//!   mark IV (in percent), `underlying_price` (the forward of the option's expiry),
//!   `estimated_delivery_price` (the index) and `interest_rate`.
//! - `public/get_index_price`: [`IndexPrice`].
//! - `private/get_positions`: [`PositionEntry`]; `size` is in Deribit's amount units (USD for
//!   inverse futures and perpetuals, coins for options), which is Ballast's convention too.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use product::{Instrument, Portfolio, Position};

use crate::Error;

/// One entry of `public/get_book_summary_by_currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookSummaryEntry {
    /// Instrument name, e.g. `BTC-27DEC24-100000-C`.
    pub instrument_name: String,
    /// Mark price (coins for inverse options, USD for inverse futures).
    #[serde(default)]
    pub mark_price: Option<f64>,
    /// Mark implied volatility in percent (options).
    #[serde(default)]
    pub mark_iv: Option<f64>,
    /// Forward of the option's expiry.
    #[serde(default)]
    pub underlying_price: Option<f64>,
    /// Name of the underlying future or index.
    #[serde(default)]
    pub underlying_index: Option<String>,
    /// Rate used in the mark computation.
    #[serde(default)]
    pub interest_rate: Option<f64>,
    /// Best bid.
    #[serde(default)]
    pub bid_price: Option<f64>,
    /// Best ask.
    #[serde(default)]
    pub ask_price: Option<f64>,
    /// 24-hour volume in amount units.
    #[serde(default)]
    pub volume: Option<f64>,
    /// Open interest.
    #[serde(default)]
    pub open_interest: Option<f64>,
    /// Index price (Deribit's estimate of the delivery price).
    #[serde(default)]
    pub estimated_delivery_price: Option<f64>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub creation_timestamp: Option<i64>,
}

/// The result of `public/get_index_price`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndexPrice {
    /// Index price.
    pub index_price: f64,
    /// Estimated delivery price.
    #[serde(default)]
    pub estimated_delivery_price: Option<f64>,
}

/// One entry of `private/get_positions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionEntry {
    /// Instrument name.
    pub instrument_name: String,
    /// Signed size in Deribit's amount units.
    pub size: f64,
    /// Size in coins (futures).
    #[serde(default)]
    pub size_currency: Option<f64>,
    /// `future`, `option`, `spot`, ...
    #[serde(default)]
    pub kind: Option<String>,
    /// Mark price.
    #[serde(default)]
    pub mark_price: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Envelope<T> {
    Rpc { result: T },
    Bare(T),
}

/// Parses a Deribit result, bare or inside its JSON-RPC envelope.
///
/// # Errors
/// `Syntax` when neither shape matches.
pub fn parse_result<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    match crate::from_json::<Envelope<T>>(text) {
        Ok(Envelope::Rpc { result } | Envelope::Bare(result)) => Ok(result),
        Err(_) => crate::from_json::<T>(text),
    }
}

/// Converts `private/get_positions` entries into a portfolio (balances are not part of it).
///
/// # Errors
/// A bad instrument name or size, located as `result[i]`.
pub fn positions_to_portfolio(entries: &[PositionEntry]) -> Result<Portfolio, Error> {
    let mut positions = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let instrument = Instrument::parse(&entry.instrument_name)
            .map_err(|e| Error::invalid(format!("result[{i}].instrument_name"), e.to_string()))?;
        positions.push(Position { instrument, size: entry.size });
    }
    Portfolio::new(positions, &[])
        .map_err(|e| Error::invalid(format!("result.{}", e.field), e.kind.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_envelope_and_bare_results() {
        let bare = r#"[{"instrument_name":"BTC-PERPETUAL","size":-1000,"kind":"future",
            "mark_price":95000,"direction":"sell"}]"#;
        let rpc = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{bare},"usIn":1}}"#);
        let a: Vec<PositionEntry> = parse_result(bare).unwrap();
        let b: Vec<PositionEntry> = parse_result(&rpc).unwrap();
        assert_eq!(a, b);
        let portfolio = positions_to_portfolio(&a).unwrap();
        assert_eq!(portfolio.positions()[0].size, -1000.0);
        let index: IndexPrice = parse_result(
            r#"{"result":{"index_price":95123.4,"estimated_delivery_price":95123.4}}"#,
        )
        .unwrap();
        assert_eq!(index.index_price, 95_123.4);
        let bad = r#"[{"instrument_name":"BTC-PERP","size":1}]"#;
        let entries: Vec<PositionEntry> = parse_result(bad).unwrap();
        assert_eq!(
            positions_to_portfolio(&entries).unwrap_err().location,
            "result[0].instrument_name"
        );
    }
}
