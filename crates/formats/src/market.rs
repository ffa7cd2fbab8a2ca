//! Ballast's market snapshot JSON (`docs/formats.md` documents it field by field).
//!
//! ```json
//! {
//!   "valuation_time": "2024-11-20T08:00:00Z",
//!   "underlyings": {
//!     "BTC": {
//!       "index": 95000.0,
//!       "perpetual_mark": 95020.0,
//!       "forwards": { "29NOV24": 95210.0, "27DEC24": 95800.0 },
//!       "smiles": { "27DEC24": { "a": 0.01, "b": 0.05, "rho": -0.2, "m": 0.0, "sigma": 0.1 } }
//!     }
//!   },
//!   "usd_prices": { "USDC": 0.9998 },
//!   "rates": { "USD": 0.0 },
//!   "instruments": { "BTC-27DEC24-100000-C": { "mark_price": 0.0123, "best_bid": 0.012 } }
//! }
//! ```
//!
//! Expiries are Deribit date codes (08:00 UTC) or RFC 3339 timestamps. Every map is ordered, and
//! [`MarketDocument::from_snapshot`] writes a snapshot back in this shape, which is also the
//! canonical form whose hash identifies a snapshot ([`snapshot_hash`]).

use std::collections::BTreeMap;

use basics::{Currency, NANOS_PER_DAY, UnixNanos};
use market::{FeedData, InstrumentQuote, MarketSnapshot, SviParams, UnderlyingInput};
use product::Instrument;
use serde::{Deserialize, Serialize};

use crate::{Error, format_rfc3339, parse_expiry, parse_rfc3339};

/// A market snapshot document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketDocument {
    /// Valuation time, RFC 3339.
    pub valuation_time: String,
    /// Per-underlying market data, keyed by currency code.
    #[serde(default)]
    pub underlyings: BTreeMap<String, UnderlyingDocument>,
    /// USD prices of non-underlying currencies (stable coins).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub usd_prices: BTreeMap<String, f64>,
    /// Continuously compounded discount rates per currency (0 when absent).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rates: BTreeMap<String, f64>,
    /// Per-instrument quotes keyed by Deribit instrument name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instruments: BTreeMap<String, QuoteDocument>,
    /// What the venue's oracles publish beside the prices; omitted (and out of the hash) when
    /// nothing is.
    #[serde(default, skip_serializing_if = "FeedsDocument::is_empty")]
    pub feeds: FeedsDocument,
}

/// A venue's published feeds: per-expiry rates (by settlement currency) and forwards (by
/// underlying), and confidences in [0, 1]. Expiries are keyed like the forwards.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedsDocument {
    /// Discount rate by settlement currency, then expiry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expiry_rates: BTreeMap<String, BTreeMap<String, f64>>,
    /// Forward by underlying, then expiry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expiry_forwards: BTreeMap<String, BTreeMap<String, f64>>,
    /// Confidence of the index feed, by underlying.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub index_confidence: BTreeMap<String, f64>,
    /// Confidence of the perpetual's mark feed, by underlying.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub perpetual_confidence: BTreeMap<String, f64>,
    /// Confidence of an expiry's option feeds, by underlying, then expiry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expiry_confidence: BTreeMap<String, BTreeMap<String, f64>>,
    /// Confidence of a collateral currency's price feed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub currency_confidence: BTreeMap<String, f64>,
}

/// One underlying's market data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlyingDocument {
    /// Index price in USD.
    pub index: f64,
    /// Perpetual mark price (the index when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perpetual_mark: Option<f64>,
    /// Impact volatility of an underlying without options (no smiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_vol: Option<f64>,
    /// Forwards keyed by expiry.
    #[serde(default)]
    pub forwards: BTreeMap<String, f64>,
    /// Raw SVI smiles keyed by expiry.
    #[serde(default)]
    pub smiles: BTreeMap<String, SviDocument>,
    /// Settlement prices keyed by past expiry: what expired contracts settle at.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settlements: BTreeMap<String, f64>,
}

/// Raw SVI parameters in forward log-moneyness.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SviDocument {
    /// Level.
    pub a: f64,
    /// Wing slope.
    pub b: f64,
    /// Skew.
    pub rho: f64,
    /// Location.
    pub m: f64,
    /// Curvature.
    pub sigma: f64,
}

/// One instrument's quote, in the instrument's price and amount units.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteDocument {
    /// Mark price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_price: Option<f64>,
    /// Best bid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_bid: Option<f64>,
    /// Best ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_ask: Option<f64>,
    /// Mark implied volatility as a decimal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_iv: Option<f64>,
    /// 24-hour volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_24h: Option<f64>,
    /// Open interest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_interest: Option<f64>,
    /// A perpetual's cumulative funding index, per unit of size in its settlement currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding_index: Option<f64>,
}

fn currency(text: &str, location: &str) -> Result<Currency, Error> {
    text.parse().map_err(|e: basics::Error| Error::invalid(location, e.kind.to_string()))
}

/// Writes an expiry as a Deribit date code when it falls at 08:00 UTC, else as RFC 3339.
#[must_use]
pub fn expiry_text(expiry: UnixNanos) -> String {
    if expiry.0.rem_euclid(NANOS_PER_DAY) == 8 * 3_600_000_000_000 {
        let future = Instrument::new(
            Currency::BTC,
            Currency::USD,
            product::Settlement::Inverse,
            product::InstrumentKind::Future { expiry },
        );
        if let Ok(future) = future {
            return future.to_string().trim_start_matches("BTC-").to_owned();
        }
    }
    format_rfc3339(expiry)
}

/// A currency-keyed map of the document.
type ByCode = BTreeMap<String, f64>;
/// A currency-then-expiry-keyed map of the document.
type ByExpiry = BTreeMap<String, BTreeMap<String, f64>>;

impl FeedsDocument {
    /// Whether no feed is published.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == FeedsDocument::default()
    }

    /// The domain feeds (validated with the snapshot).
    ///
    /// # Errors
    /// `Invalid` for an unknown currency code or expiry, located under `feeds`.
    pub fn to_domain(&self) -> Result<FeedData, Error> {
        let codes = |name: &str, map: &ByCode| -> Result<BTreeMap<Currency, f64>, Error> {
            (map.iter())
                .map(|(c, v)| Ok((currency(c, &format!("feeds.{name}.{c}"))?, *v)))
                .collect()
        };
        let expiries = |name: &str, map: &ByExpiry| {
            let mut out = BTreeMap::new();
            for (c, by_expiry) in map {
                let code = currency(c, &format!("feeds.{name}.{c}"))?;
                for (e, v) in by_expiry {
                    let expiry = parse_expiry(e, &format!("feeds.{name}.{c}.{e}"))?;
                    out.insert((code, expiry), *v);
                }
            }
            Ok::<_, Error>(out)
        };
        Ok(FeedData {
            expiry_rates: expiries("expiry_rates", &self.expiry_rates)?,
            expiry_forwards: expiries("expiry_forwards", &self.expiry_forwards)?,
            index_confidence: codes("index_confidence", &self.index_confidence)?,
            perpetual_confidence: codes("perpetual_confidence", &self.perpetual_confidence)?,
            expiry_confidence: expiries("expiry_confidence", &self.expiry_confidence)?,
            currency_confidence: codes("currency_confidence", &self.currency_confidence)?,
        })
    }

    /// These feeds as an update over `current` (see [`MarketDocument::over`]): entries keyed
    /// by an `updated` underlying are replaced as a whole, those keyed by a currency overlaid.
    fn over(&self, current: &FeedsDocument, updated: &dyn Fn(&str) -> bool) -> FeedsDocument {
        FeedsDocument {
            expiry_rates: overlaid(&current.expiry_rates, &self.expiry_rates),
            expiry_forwards: replaced(&current.expiry_forwards, &self.expiry_forwards, updated),
            index_confidence: replaced(&current.index_confidence, &self.index_confidence, updated),
            perpetual_confidence: replaced(
                &current.perpetual_confidence,
                &self.perpetual_confidence,
                updated,
            ),
            expiry_confidence: replaced(
                &current.expiry_confidence,
                &self.expiry_confidence,
                updated,
            ),
            currency_confidence: overlaid(&current.currency_confidence, &self.currency_confidence),
        }
    }

    /// The document form of domain feeds.
    #[must_use]
    pub fn from_domain(feeds: &FeedData) -> FeedsDocument {
        let codes = |map: &BTreeMap<Currency, f64>| -> ByCode {
            map.iter().map(|(c, v)| (c.to_string(), *v)).collect()
        };
        let expiries = |map: &BTreeMap<(Currency, UnixNanos), f64>| {
            let mut out = ByExpiry::new();
            for ((c, e), v) in map {
                out.entry(c.to_string()).or_default().insert(expiry_text(*e), *v);
            }
            out
        };
        FeedsDocument {
            expiry_rates: expiries(&feeds.expiry_rates),
            expiry_forwards: expiries(&feeds.expiry_forwards),
            index_confidence: codes(&feeds.index_confidence),
            perpetual_confidence: codes(&feeds.perpetual_confidence),
            expiry_confidence: expiries(&feeds.expiry_confidence),
            currency_confidence: codes(&feeds.currency_confidence),
        }
    }
}

impl MarketDocument {
    /// Parses the JSON text of a market document.
    ///
    /// # Errors
    /// `Syntax` for malformed JSON or unknown fields.
    pub fn from_json(text: &str) -> Result<MarketDocument, Error> {
        crate::from_json(text)
    }

    /// This document applied as an update over `current`: the underlyings it carries replace
    /// theirs (index, forwards, smiles, their quoted instruments and their feeds), the others
    /// are kept as they were, currencies' prices and rates are overlaid, and the valuation
    /// time is this document's. So a venue can push one underlying at a time without blanking
    /// the others; kept data is read again at the new valuation time when the result is
    /// validated.
    #[must_use]
    pub fn over(&self, current: &MarketDocument) -> MarketDocument {
        let updated = |code: &str| self.underlyings.contains_key(code);
        let kept_underlying = |name: &String| {
            Instrument::parse(name).map_or(true, |i| !updated(i.underlying().as_str()))
        };
        let mut instruments = current.instruments.clone();
        instruments.retain(|name, _| kept_underlying(name));
        instruments.extend(self.instruments.clone());
        MarketDocument {
            valuation_time: self.valuation_time.clone(),
            underlyings: replaced(&current.underlyings, &self.underlyings, &updated),
            usd_prices: overlaid(&current.usd_prices, &self.usd_prices),
            rates: overlaid(&current.rates, &self.rates),
            instruments,
            feeds: self.feeds.over(&current.feeds, &updated),
        }
    }

    /// Validates the document into a snapshot.
    ///
    /// # Errors
    /// The first invalid value, located by its path in the document.
    pub fn to_snapshot(&self) -> Result<MarketSnapshot, Error> {
        let valuation = parse_rfc3339(&self.valuation_time, "valuation_time")?;
        let mut builder = MarketSnapshot::builder(valuation);
        for (code, underlying) in &self.underlyings {
            let path = format!("underlyings.{code}");
            let input = underlying.to_input(&path)?;
            builder = builder.underlying(currency(code, &path)?, input);
        }
        for (code, price) in &self.usd_prices {
            builder = builder.usd_price(currency(code, &format!("usd_prices.{code}"))?, *price);
        }
        for (code, rate) in &self.rates {
            builder = builder.rate(currency(code, &format!("rates.{code}"))?, *rate);
        }
        for (name, quote) in &self.instruments {
            let instrument =
                Instrument::parse(name).map_err(|e| Error::nested("instruments", name, e.kind))?;
            builder = builder.quote(instrument, quote.to_quote());
        }
        builder = builder.feeds(self.feeds.to_domain()?);
        builder.build().map_err(|e| {
            let prefix = if e.field.starts_with("feeds.") { "" } else { "underlyings" };
            Error::nested(prefix, &e.field, e.kind)
        })
    }

    /// The document form of a snapshot (smiles as SVI parameters, expiries as date codes).
    #[must_use]
    pub fn from_snapshot(snapshot: &MarketSnapshot) -> MarketDocument {
        let underlyings = snapshot
            .underlyings()
            .iter()
            .map(|(code, market)| {
                let forwards = market.forwards().points();
                let perpetual = market.perpetual_mark();
                let document = UnderlyingDocument {
                    index: market.index(),
                    perpetual_mark: (perpetual != market.index()).then_some(perpetual),
                    reference_vol: market.reference_vol(),
                    forwards: forwards.iter().map(|p| (expiry_text(p.expiry), p.forward)).collect(),
                    smiles: market
                        .surface()
                        .slices()
                        .iter()
                        .map(|s| (expiry_text(s.expiry()), SviDocument::from_params(s.params())))
                        .collect(),
                    settlements: (market.settlements().iter())
                        .map(|(expiry, price)| (expiry_text(*expiry), *price))
                        .collect(),
                };
                (code.to_string(), document)
            })
            .collect();
        let by_code = |map: &BTreeMap<Currency, f64>| {
            map.iter().map(|(c, v)| (c.to_string(), *v)).collect::<BTreeMap<_, _>>()
        };
        MarketDocument {
            valuation_time: format_rfc3339(snapshot.valuation()),
            underlyings,
            usd_prices: by_code(snapshot.usd_prices()),
            rates: by_code(snapshot.rates()),
            instruments: snapshot
                .quotes()
                .iter()
                .map(|(instrument, quote)| {
                    (instrument.to_string(), QuoteDocument::from_quote(quote))
                })
                .collect(),
            feeds: FeedsDocument::from_domain(snapshot.feeds()),
        }
    }

    /// Pretty JSON text of the document.
    #[must_use]
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// keccak-256 of the canonical snapshot: the compact JSON of [`MarketDocument::from_snapshot`].
/// Two files that describe the same snapshot hash alike; the oracle's reports commit to it, so
/// nodes fed different market data sign different reports.
#[must_use]
pub fn market_hash(snapshot: &MarketSnapshot) -> [u8; 32] {
    crate::canonical_hash(&MarketDocument::from_snapshot(snapshot))
}

impl UnderlyingDocument {
    fn to_input(&self, path: &str) -> Result<UnderlyingInput, Error> {
        let mut forwards = Vec::with_capacity(self.forwards.len());
        for (text, forward) in &self.forwards {
            forwards.push((parse_expiry(text, &format!("{path}.forwards.{text}"))?, *forward));
        }
        let mut smiles = Vec::with_capacity(self.smiles.len());
        for (text, svi) in &self.smiles {
            smiles.push((parse_expiry(text, &format!("{path}.smiles.{text}"))?, svi.to_params()));
        }
        let mut settlements = Vec::with_capacity(self.settlements.len());
        for (text, price) in &self.settlements {
            settlements.push((parse_expiry(text, &format!("{path}.settlements.{text}"))?, *price));
        }
        Ok(UnderlyingInput {
            index: self.index,
            forwards,
            smiles,
            perpetual_mark: self.perpetual_mark,
            reference_vol: self.reference_vol,
            settlements,
        })
    }
}

impl SviDocument {
    /// The domain parameters (validated later, with the slice).
    #[must_use]
    pub fn to_params(&self) -> SviParams {
        SviParams { a: self.a, b: self.b, rho: self.rho, m: self.m, sigma: self.sigma }
    }

    /// The document form of domain parameters.
    #[must_use]
    pub fn from_params(p: &SviParams) -> SviDocument {
        SviDocument { a: p.a, b: p.b, rho: p.rho, m: p.m, sigma: p.sigma }
    }
}

impl QuoteDocument {
    fn to_quote(self) -> InstrumentQuote {
        InstrumentQuote {
            mark_price: self.mark_price,
            best_bid: self.best_bid,
            best_ask: self.best_ask,
            mark_iv: self.mark_iv,
            volume_24h: self.volume_24h,
            open_interest: self.open_interest,
            funding_index: self.funding_index,
        }
    }

    fn from_quote(q: &InstrumentQuote) -> QuoteDocument {
        QuoteDocument {
            mark_price: q.mark_price,
            best_bid: q.best_bid,
            best_ask: q.best_ask,
            mark_iv: q.mark_iv,
            volume_24h: q.volume_24h,
            open_interest: q.open_interest,
            funding_index: q.funding_index,
        }
    }
}

/// `current` with `update`'s entries written over it.
fn overlaid<V: Clone>(
    current: &BTreeMap<String, V>,
    update: &BTreeMap<String, V>,
) -> BTreeMap<String, V> {
    let mut out = current.clone();
    out.extend(update.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// `current` without the entries of an `updated` underlying, then `update`'s.
fn replaced<V: Clone>(
    current: &BTreeMap<String, V>,
    update: &BTreeMap<String, V>,
    updated: &dyn Fn(&str) -> bool,
) -> BTreeMap<String, V> {
    let mut out: BTreeMap<String, V> =
        current.iter().filter(|(k, _)| !updated(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    out.extend(update.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "valuation_time": "2024-11-20T08:00:00Z",
        "underlyings": {
            "BTC": {
                "index": 95000.0,
                "forwards": { "29NOV24": 95210.0, "27DEC24": 95800.0 },
                "smiles": {
                    "29NOV24": { "a": 0.004, "b": 0.03, "rho": -0.2, "m": 0.0, "sigma": 0.08 },
                    "27DEC24": { "a": 0.012, "b": 0.05, "rho": -0.2, "m": 0.0, "sigma": 0.1 }
                }
            }
        },
        "usd_prices": { "USDC": 0.9998 },
        "instruments": { "BTC-27DEC24-100000-C": { "mark_price": 0.0123 } }
    }"#;

    #[test]
    fn round_trips_through_the_domain() {
        let document = MarketDocument::from_json(SAMPLE).unwrap();
        let snapshot = document.to_snapshot().unwrap();
        let back = MarketDocument::from_snapshot(&snapshot);
        assert_eq!(back, document);
        assert_eq!(back.to_snapshot().unwrap(), snapshot);
    }

    #[test]
    fn market_hash_follows_content_not_spelling() {
        let snapshot = MarketDocument::from_json(SAMPLE).unwrap().to_snapshot().unwrap();
        let rewritten = MarketDocument::from_snapshot(&snapshot).to_json_pretty();
        assert_ne!(rewritten, SAMPLE);
        let reread = MarketDocument::from_json(&rewritten).unwrap().to_snapshot().unwrap();
        assert_eq!(market_hash(&reread), market_hash(&snapshot));
        let moved = snapshot.with_spot_move(basics::Currency::BTC, 0.01).unwrap();
        assert_ne!(market_hash(&moved), market_hash(&snapshot));
    }

    /// Published feeds travel in the document and its hash: they round-trip, a snapshot with
    /// them hashes apart from one without, and a document without them hashes as before they
    /// existed (the key is omitted); a bad confidence is located under `feeds`.
    #[test]
    fn feeds_round_trip_and_are_hashed() {
        let plain = MarketDocument::from_json(SAMPLE).unwrap().to_snapshot().unwrap();
        assert!(!MarketDocument::from_snapshot(&plain).to_json_pretty().contains("feeds"));
        let mut feeds = market::FeedData::default();
        let expiry =
            plain.underlying(basics::Currency::BTC).unwrap().surface().slices()[0].expiry();
        feeds.expiry_rates.insert((basics::Currency::USD, expiry), 0.07);
        feeds.expiry_confidence.insert((basics::Currency::BTC, expiry), 0.4);
        feeds.index_confidence.insert(basics::Currency::BTC, 0.875);
        let with = plain.with_feeds(feeds).unwrap();
        let text = MarketDocument::from_snapshot(&with).to_json_pretty();
        let back = MarketDocument::from_json(&text).unwrap().to_snapshot().unwrap();
        assert_eq!(back, with);
        assert_ne!(market_hash(&with), market_hash(&plain));
        assert_eq!(market_hash(&back), market_hash(&with));
        let bad = text.replacen("0.875", "1.5", 1);
        let err = MarketDocument::from_json(&bad).unwrap().to_snapshot().unwrap_err();
        assert_eq!(err.location, "feeds.index_confidence.BTC", "{err}");
    }

    #[test]
    fn errors_point_into_the_document() {
        let bad = SAMPLE.replace(
            "\"rho\": -0.2, \"m\": 0.0, \"sigma\": 0.1",
            "\"rho\": 1.5, \"m\": 0.0, \"sigma\": 0.1",
        );
        let err = MarketDocument::from_json(&bad).unwrap().to_snapshot().unwrap_err();
        assert!(err.location.starts_with("underlyings.BTC.surface["), "{err}");
        assert!(err.location.ends_with("rho"), "{err}");
        let unknown = SAMPLE.replace("\"index\"", "\"idx\"");
        assert!(matches!(
            MarketDocument::from_json(&unknown).unwrap_err().kind,
            crate::ErrorKind::Syntax(_)
        ));
        let bad_expiry = SAMPLE.replace("29NOV24\": 95210.0", "29NOV2024\": 95210.0");
        let err = MarketDocument::from_json(&bad_expiry).unwrap().to_snapshot().unwrap_err();
        assert_eq!(err.location, "underlyings.BTC.forwards.29NOV2024");
    }

    /// A push of one underlying replaces that underlying whole (an instrument it no longer
    /// quotes is gone) and keeps every other one as it was, at the push's valuation time.
    #[test]
    fn an_update_replaces_its_underlyings_and_keeps_the_others() {
        let current = MarketDocument::from_json(crate::bundled::SAMPLE_MARKET_JSON).unwrap();
        let mut update = current.clone();
        update.valuation_time = "2026-11-20T09:00:00Z".into();
        update.underlyings.retain(|code, _| code == "BTC");
        update.instruments.retain(|name, _| name.starts_with("BTC-"));
        let dropped = update.instruments.keys().next().unwrap().clone();
        update.instruments.remove(&dropped);
        update.underlyings.get_mut("BTC").unwrap().index *= 1.01;
        update.usd_prices.insert("USDC".into(), 0.999);
        let merged = update.over(&current);
        assert_eq!(merged.valuation_time, update.valuation_time);
        assert_eq!(merged.underlyings["ETH"], current.underlyings["ETH"]);
        assert_eq!(merged.underlyings["BTC"], update.underlyings["BTC"]);
        let eth = |d: &MarketDocument| {
            d.instruments.keys().filter(|n| n.starts_with("ETH")).cloned().collect::<Vec<_>>()
        };
        assert!(!eth(&current).is_empty());
        assert_eq!(eth(&merged), eth(&current));
        assert!(!merged.instruments.contains_key(&dropped), "{dropped} is no longer quoted");
        assert_eq!(merged.usd_prices["USDC"], 0.999);
        let snapshot = merged.to_snapshot().unwrap();
        assert_eq!(snapshot.underlyings().len(), 2);
        // Over itself, a document is itself.
        assert_eq!(current.over(&current), current);
    }
}
