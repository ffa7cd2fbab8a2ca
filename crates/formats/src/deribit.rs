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
//!
//! [`snapshot_from_book`] turns a book summary (and optionally the index) into a market snapshot:
//! forwards from the futures' marks (the options' `underlying_price` where no future expires),
//! one arbitrage-free SVI slice per option expiry fitted to the mark IVs, and every mark, bid,
//! ask and mark IV kept as a quote, so that `mark-vol` methodologies value each option at
//! Deribit's own mark vol.

use std::collections::BTreeMap;

use basics::{Currency, UnixNanos, year_fraction};
use market::{
    CALIBRATION_POINTS_MIN, ExpiryQuotes, FitDiagnostics, InstrumentQuote, MarketSnapshot,
    QuotePoint, UnderlyingInput, calibrate_surface,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use product::{Instrument, InstrumentKind, Portfolio, Position};

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
        positions.push(Position::new(instrument, entry.size));
    }
    Portfolio::new(positions, &[])
        .map_err(|e| Error::invalid(format!("result.{}", e.field), e.kind.to_string()))
}

/// A snapshot built from Deribit's book summary, with the fit of every calibrated expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct BookSnapshot {
    /// The validated snapshot.
    pub snapshot: MarketSnapshot,
    /// One entry per fitted expiry, by underlying and expiry.
    pub fits: Vec<SliceFit>,
}

/// How one expiry's SVI slice fits Deribit's mark IVs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SliceFit {
    /// Underlying.
    pub underlying: Currency,
    /// Expiry.
    pub expiry: UnixNanos,
    /// The calibration's diagnostics.
    pub diagnostics: FitDiagnostics,
}

/// What the book says about one underlying, gathered before validation.
#[derive(Debug, Default)]
struct UnderlyingBook {
    /// Deribit's index estimate (`estimated_delivery_price`), the first in the book.
    index: Option<f64>,
    perpetual_mark: Option<f64>,
    /// Futures marks by expiry: the forwards.
    futures: BTreeMap<UnixNanos, f64>,
    /// Options' `underlying_price` by expiry: the forward where no future expires.
    option_forwards: BTreeMap<UnixNanos, f64>,
    /// Mark IVs by expiry and strike (the strike's bits: positive floats order as their bits),
    /// summed with their count: a call and a put of one strike give one point, their mean.
    smiles: BTreeMap<UnixNanos, BTreeMap<u64, (f64, f64)>>,
}

/// Builds a market snapshot from `public/get_book_summary_by_currency` entries (one or more
/// currencies' results concatenated) and, optionally, `public/get_index_price`.
///
/// The valuation time is `valuation`, or else the latest `creation_timestamp` of the book. The
/// index is `index` when given (it names no currency, so the book must then hold one
/// underlying), else the book's `estimated_delivery_price`. Entries whose name is not a contract
/// Ballast margins (combos, spot pairs) are skipped, as are expired ones. The call and the put
/// of one strike give one point of the smile, their mean mark IV. Expiries with fewer
/// than [`CALIBRATION_POINTS_MIN`] mark IVs get no slice: under `mark-vol` their options keep
/// their own mark IV. Currencies that settle contracts but are not underlyings (USDC) are taken
/// at 1 USD.
///
/// # Errors
/// `Missing` without a valuation time or an index, `Invalid` for an index with several
/// underlyings, a calibration failure (located by underlying and expiry) or an invalid value.
pub fn snapshot_from_book(
    entries: &[BookSummaryEntry],
    index: Option<&IndexPrice>,
    valuation: Option<UnixNanos>,
) -> Result<BookSnapshot, Error> {
    let valuation = match valuation {
        Some(v) => v,
        None => entries
            .iter()
            .filter_map(|e| e.creation_timestamp)
            .max()
            .map(|ms| UnixNanos(ms.saturating_mul(1_000_000)))
            .ok_or_else(|| Error::missing("result", "a creation_timestamp (valuation time)"))?,
    };
    let (books, quotes) = gather(entries, valuation)?;
    if index.is_some() && books.len() > 1 {
        let why = "an index price names no currency; the book holds several underlyings";
        return Err(Error::invalid("index", why));
    }
    let mut builder = MarketSnapshot::builder(valuation);
    let mut fits = Vec::new();
    for (underlying, book) in &books {
        let spot = index.map(|i| i.index_price).or(book.index).ok_or_else(|| {
            Error::missing(format!("result.{underlying}"), "an index (estimated_delivery_price)")
        })?;
        let input = underlying_input(*underlying, book, spot, valuation, &mut fits)?;
        builder = builder.underlying(*underlying, input);
    }
    let settlement: std::collections::BTreeSet<Currency> =
        quotes.keys().map(Instrument::settlement_currency).collect();
    for currency in settlement {
        if currency != Currency::USD && !books.contains_key(&currency) {
            builder = builder.usd_price(currency, 1.0);
        }
    }
    for (instrument, (quote, rate)) in quotes {
        if let Some(rate) = rate {
            builder = builder.rate(instrument.settlement_currency(), rate);
        }
        builder = builder.quote(instrument, quote);
    }
    let snapshot = builder.build().map_err(|e| Error::nested("market", &e.field, e.kind))?;
    Ok(BookSnapshot { snapshot, fits })
}

type Quotes = BTreeMap<Instrument, (InstrumentQuote, Option<f64>)>;

/// Sorts the book by underlying and keeps each instrument's quote (and the rate Deribit used).
fn gather(
    entries: &[BookSummaryEntry],
    valuation: UnixNanos,
) -> Result<(BTreeMap<Currency, UnderlyingBook>, Quotes), Error> {
    let mut books: BTreeMap<Currency, UnderlyingBook> = BTreeMap::new();
    let mut quotes = Quotes::new();
    let positive = |v: Option<f64>| v.filter(|x| x.is_finite() && *x > 0.0);
    for (i, entry) in entries.iter().enumerate() {
        let Ok(instrument) = Instrument::parse(&entry.instrument_name) else { continue };
        if instrument.expiry().is_some_and(|e| e <= valuation) {
            continue;
        }
        let book = books.entry(instrument.underlying()).or_default();
        book.index = book.index.or(positive(entry.estimated_delivery_price));
        let mark = positive(entry.mark_price);
        let mark_iv = positive(entry.mark_iv).map(|iv| iv / 100.0);
        match instrument.kind() {
            InstrumentKind::Perpetual => book.perpetual_mark = book.perpetual_mark.or(mark),
            InstrumentKind::Future { expiry } => {
                if let Some(mark) = mark {
                    book.futures.entry(expiry).or_insert(mark);
                }
            }
            InstrumentKind::Option { expiry, strike, .. } => {
                if let Some(forward) = positive(entry.underlying_price) {
                    book.option_forwards.entry(expiry).or_insert(forward);
                }
                if let Some(implied_vol) = mark_iv {
                    let smile = book.smiles.entry(expiry).or_default();
                    let (sum, count) = smile.entry(strike.to_bits()).or_default();
                    (*sum, *count) = (*sum + implied_vol, *count + 1.0);
                }
            }
        }
        let quote = InstrumentQuote {
            mark_price: mark,
            best_bid: positive(entry.bid_price),
            best_ask: positive(entry.ask_price),
            mark_iv,
            volume_24h: entry.volume.filter(|v| v.is_finite() && *v >= 0.0),
            open_interest: entry.open_interest.filter(|v| v.is_finite() && *v >= 0.0),
            // Deribit's book summary gives the current funding rate, not a cumulative index.
            funding_index: None,
        };
        if quotes.insert(instrument, (quote, entry.interest_rate)).is_some() {
            let why = "the instrument appears twice in the book";
            return Err(Error::invalid(format!("result[{i}].instrument_name"), why));
        }
    }
    Ok((books, quotes))
}

/// Forwards and fitted smiles of one underlying.
fn underlying_input(
    underlying: Currency,
    book: &UnderlyingBook,
    index: f64,
    valuation: UnixNanos,
    fits: &mut Vec<SliceFit>,
) -> Result<UnderlyingInput, Error> {
    let mut forwards = book.option_forwards.clone();
    forwards.extend(book.futures.iter().map(|(e, f)| (*e, *f)));
    let mut points: Vec<(UnixNanos, f64, Vec<QuotePoint>)> = Vec::new();
    for (expiry, smile) in &book.smiles {
        let Some(forward) = forwards.get(expiry) else { continue };
        let quotes: Vec<QuotePoint> = smile
            .iter()
            .map(|(bits, (sum, count))| QuotePoint {
                strike: f64::from_bits(*bits),
                implied_vol: sum / count,
                weight: 1.0,
            })
            .collect();
        if quotes.len() >= CALIBRATION_POINTS_MIN {
            points.push((*expiry, *forward, quotes));
        }
    }
    let expiries: Vec<ExpiryQuotes<'_>> = points
        .iter()
        .map(|(expiry, forward, quotes)| ExpiryQuotes {
            expiry: *expiry,
            years: year_fraction(valuation, *expiry),
            forward: *forward,
            points: quotes,
        })
        .collect();
    let (surface, diagnostics) = calibrate_surface(&expiries)
        .map_err(|e| Error::nested(&format!("result.{underlying}.smiles"), &e.field, e.kind))?;
    for (slice, diagnostics) in surface.slices().iter().zip(diagnostics) {
        fits.push(SliceFit { underlying, expiry: slice.expiry(), diagnostics });
    }
    Ok(UnderlyingInput {
        index,
        forwards: forwards.into_iter().collect(),
        smiles: surface.slices().iter().map(|s| (s.expiry(), *s.params())).collect(),
        perpetual_mark: book.perpetual_mark,
        reference_vol: None,
        settlements: Vec::new(),
    })
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

    const BOOK: &str = include_str!("../../../examples/deribit/book_summary_btc.json");

    fn years(valuation: UnixNanos, code: &str) -> f64 {
        year_fraction(valuation, crate::parse_expiry(code, "expiry").unwrap())
    }

    #[test]
    fn book_gives_forwards_smiles_and_quotes() {
        let entries: Vec<BookSummaryEntry> = parse_result(BOOK).unwrap();
        let index = IndexPrice { index_price: 95_000.0, estimated_delivery_price: None };
        let built = snapshot_from_book(&entries, Some(&index), None).unwrap();
        let market = &built.snapshot;
        // The valuation time is the book's creation_timestamp, 2024-11-20T08:00:00Z.
        assert_eq!(market.valuation(), crate::parse_rfc3339("2024-11-20T08:00:00Z", "t").unwrap());
        let btc = market.underlying(Currency::BTC).unwrap();
        assert_eq!(btc.index(), 95_000.0);
        assert_eq!(btc.perpetual_mark(), 95_020.0);
        // Forwards are the futures' marks at their expiries.
        let t = years(market.valuation(), "27DEC24");
        assert!((btc.forwards().forward(t) - 95_700.0).abs() < 1e-9);
        // One slice per expiry, close to Deribit's mark IVs at the quoted strikes.
        assert_eq!(built.fits.len(), 2);
        for entry in entries.iter().filter(|e| e.mark_iv.is_some()) {
            let instrument = Instrument::parse(&entry.instrument_name).unwrap();
            let InstrumentKind::Option { strike, expiry, .. } = instrument.kind() else {
                continue;
            };
            let fitted = btc.implied_vol(strike, year_fraction(market.valuation(), expiry));
            let mark = entry.mark_iv.unwrap() / 100.0;
            assert!((fitted.unwrap() - mark).abs() < 0.005, "{instrument}: {fitted:?} vs {mark}");
            // The mark IV itself is kept for mark-vol valuation, as a decimal.
            assert_eq!(market.quote(&instrument).unwrap().mark_iv, Some(mark));
        }
    }

    #[test]
    fn book_errors_are_typed() {
        let entries: Vec<BookSummaryEntry> = parse_result(BOOK).unwrap();
        let undated: Vec<BookSummaryEntry> = entries
            .iter()
            .cloned()
            .map(|e| BookSummaryEntry { creation_timestamp: None, ..e })
            .collect();
        let err = snapshot_from_book(&undated, None, None).unwrap_err();
        assert_eq!(err.location, "result");
        let mut two = entries.clone();
        two.push(BookSummaryEntry {
            instrument_name: "ETH-PERPETUAL".into(),
            estimated_delivery_price: Some(3_500.0),
            ..entries[0].clone()
        });
        let index = IndexPrice { index_price: 95_000.0, estimated_delivery_price: None };
        assert_eq!(snapshot_from_book(&two, Some(&index), None).unwrap_err().location, "index");
        // Without an index file each underlying takes the book's delivery-price estimate.
        let built = snapshot_from_book(&two, None, None).unwrap();
        assert_eq!(built.snapshot.underlying(Currency::ETH).unwrap().index(), 3_500.0);
    }
}
