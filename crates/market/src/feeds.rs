//! What an on-chain venue's oracles publish beside the prices: part of the market snapshot.
//!
//! Derive signs one feed per quantity: a discount rate per expiry (not one per currency), and a
//! confidence in [0, 1] with every price. Both change margin: the rate discounts option values
//! and sets the static discount, the confidence feeds the oracle-confidence add-on. They are
//! market data like the index and the surface, so they travel inside [`crate::MarketSnapshot`]
//! and are validated when it is built.

use std::collections::BTreeMap;

use basics::limits::FEED_RATE_ABS_MAX;
use basics::{Currency, UnixNanos};

use crate::{Error, ErrorKind};

/// Per-expiry rates and feed confidences. Anything not listed falls back to the snapshot (its
/// flat rate of the settlement currency) or to full confidence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedData {
    /// Discount rate by (settlement currency, expiry).
    pub expiry_rates: BTreeMap<(Currency, UnixNanos), f64>,
    /// Forward by (underlying, expiry), in place of the snapshot's curve: a venue that publishes
    /// one forward feed per expiry keeps publishing it through the settlement window, up to and
    /// at the expiry instant, where a curve of future expiries has no point.
    pub expiry_forwards: BTreeMap<(Currency, UnixNanos), f64>,
    /// Confidence of the index (spot) feed, by underlying.
    pub index_confidence: BTreeMap<Currency, f64>,
    /// Confidence of the perpetual's mark feed, by underlying.
    pub perpetual_confidence: BTreeMap<Currency, f64>,
    /// Confidence of everything an expiry's options are valued with (forward, rate and
    /// volatility feeds: the lowest of them), by (underlying, expiry).
    pub expiry_confidence: BTreeMap<(Currency, UnixNanos), f64>,
    /// Confidence of a collateral currency's price feed.
    pub currency_confidence: BTreeMap<Currency, f64>,
}

impl FeedData {
    /// Checks that rates are finite and bounded and confidences lie in [0, 1].
    ///
    /// # Errors
    /// `OutOfRange` naming the entry (under `feeds.`).
    pub fn validate(&self) -> Result<(), Error> {
        self.check().map_err(|e| e.within("feeds"))
    }

    fn check(&self) -> Result<(), Error> {
        for ((currency, expiry), rate) in &self.expiry_rates {
            if !(rate.is_finite() && rate.abs() <= FEED_RATE_ABS_MAX) {
                let why =
                    format!("a rate must be finite and within ±{FEED_RATE_ABS_MAX}, got {rate}");
                let field = format!("expiry_rates.{currency}.{}", expiry.0);
                return Err(Error::new(field, ErrorKind::OutOfRange(why)));
            }
        }
        for ((underlying, expiry), forward) in &self.expiry_forwards {
            if !(forward.is_finite() && *forward > 0.0) {
                let why = format!("a forward must be finite and positive, got {forward}");
                let field = format!("expiry_forwards.{underlying}.{}", expiry.0);
                return Err(Error::new(field, ErrorKind::OutOfRange(why)));
            }
        }
        let confidences = self
            .index_confidence
            .iter()
            .map(|(c, v)| (format!("index_confidence.{c}"), *v))
            .chain(
                self.perpetual_confidence
                    .iter()
                    .map(|(c, v)| (format!("perpetual_confidence.{c}"), *v)),
            )
            .chain(
                self.expiry_confidence
                    .iter()
                    .map(|((c, e), v)| (format!("expiry_confidence.{c}.{}", e.0), *v)),
            )
            .chain(
                self.currency_confidence
                    .iter()
                    .map(|(c, v)| (format!("currency_confidence.{c}"), *v)),
            );
        for (field, value) in confidences {
            if !(0.0..=1.0).contains(&value) {
                let why = format!("a confidence lies in [0, 1], got {value}");
                return Err(Error::new(field, ErrorKind::OutOfRange(why)));
            }
        }
        Ok(())
    }

    /// The discount rate of `expiry` in `currency`, when one is published.
    #[must_use]
    pub fn rate(&self, currency: Currency, expiry: UnixNanos) -> Option<f64> {
        self.expiry_rates.get(&(currency, expiry)).copied()
    }

    /// The forward of `underlying` for `expiry`, when one is published.
    #[must_use]
    pub fn forward(&self, underlying: Currency, expiry: UnixNanos) -> Option<f64> {
        self.expiry_forwards.get(&(underlying, expiry)).copied()
    }

    /// Confidence of the index feed of `underlying` (1 when not published).
    #[must_use]
    pub fn index(&self, underlying: Currency) -> f64 {
        self.index_confidence.get(&underlying).copied().unwrap_or(1.0)
    }

    /// Confidence of the perpetual feed of `underlying` (1 when not published).
    #[must_use]
    pub fn perpetual(&self, underlying: Currency) -> f64 {
        self.perpetual_confidence.get(&underlying).copied().unwrap_or(1.0)
    }

    /// Confidence of the feeds of one expiry of `underlying` (1 when not published).
    #[must_use]
    pub fn expiry(&self, underlying: Currency, expiry: UnixNanos) -> f64 {
        self.expiry_confidence.get(&(underlying, expiry)).copied().unwrap_or(1.0)
    }

    /// Confidence of a collateral's price: its own feed, capped by the lowest index confidence
    /// published. Derive values collateral inside a market's manager, whose spot feed gates
    /// every price it reads; with one underlying this is exactly its rule. `None` for a
    /// currency without a published feed (the numeraire's cash), which is never charged.
    #[must_use]
    pub fn collateral(&self, currency: Currency) -> Option<f64> {
        let own = self.currency_confidence.get(&currency).copied()?;
        Some(self.index_confidence.values().fold(own, |c, index| c.min(*index)))
    }
}

impl FeedData {
    /// Whether no feed is published at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.expiry_rates.is_empty()
            && self.expiry_forwards.is_empty()
            && self.index_confidence.is_empty()
            && self.perpetual_confidence.is_empty()
            && self.expiry_confidence.is_empty()
            && self.currency_confidence.is_empty()
    }

    /// The same feeds after a relative move `factor − 1` of `underlying`: its published
    /// forwards scale with the spot, as the snapshot's curve does; rates and confidences stay.
    #[must_use]
    pub fn with_spot_move(&self, underlying: Currency, factor: f64) -> FeedData {
        let mut moved = self.clone();
        for ((u, _), forward) in &mut moved.expiry_forwards {
            if *u == underlying {
                *forward *= factor;
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collateral_confidence_is_capped_by_the_index() {
        let mut feeds = FeedData::default();
        assert!(feeds.is_empty());
        assert_eq!(feeds.collateral(Currency::BTC), None);
        feeds.currency_confidence.insert(Currency::BTC, 0.25);
        feeds.index_confidence.insert(Currency::ETH, 0.12);
        assert_eq!(feeds.collateral(Currency::BTC), Some(0.12));
        feeds.index_confidence.insert(Currency::ETH, 0.9);
        assert_eq!(feeds.collateral(Currency::BTC), Some(0.25));
        assert!(feeds.validate().is_ok());
        feeds.perpetual_confidence.insert(Currency::ETH, 1.5);
        assert_eq!(feeds.validate().unwrap_err().field, "feeds.perpetual_confidence.ETH");
    }
}
