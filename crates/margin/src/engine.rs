//! The engine: a validated methodology, and what follows from it once (add-on flags, vega
//! bucket edges). Everything else starts from [`Engine::price`], which gives the facade every
//! caller above `margin` goes through.

use std::collections::BTreeMap;
use std::sync::Arc;

use basics::Currency;
use market::MarketSnapshot;
use methodology::{AddOn, AddOnKind, Methodology};

use crate::Error;
use crate::addons::{AddOnInputs, UnderlyingLiquidity, market_liquidity};

/// A margin engine for one methodology. Cheap to clone: the methodology is shared.
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug, PartialEq)]
struct Inner {
    methodology: Methodology,
    grouped: bool,
    /// Whether an add-on competes with the scan loss (Derive's forward contingency).
    competing: bool,
    /// Whether an add-on charges feed confidence on collateral.
    confidence: bool,
    /// Vega bucket edges in days of the friction add-on: the methodology's, and those of the
    /// underlyings with add-ons of their own.
    bucket_days: (Vec<f64>, BTreeMap<Currency, Vec<f64>>),
}

impl Engine {
    /// Validates `methodology` once; the engine then trusts it.
    ///
    /// # Errors
    /// `Methodology` naming the invalid field.
    pub fn new(methodology: Methodology) -> Result<Engine, Error> {
        methodology.validate()?;
        let aggregation = methodology.aggregation;
        let grouped = aggregation.static_discount.is_some() || aggregation.skew_absolute;
        let edges = |add_ons: &[AddOn]| AddOnInputs::new(add_ons).bucket_days().to_vec();
        let own =
            methodology.by_underlying.iter().filter_map(|(u, p)| Some((*u, p.add_ons.as_deref()?)));
        let bucket_days = (edges(&methodology.add_ons), own.map(|(u, a)| (u, edges(a))).collect());
        let kinds = || methodology.all_add_ons().map(|a| &a.kind);
        let competing = kinds()
            .any(|k| matches!(k, AddOnKind::BasisContingency { competes_with_scan: true, .. }));
        let confidence = kinds().any(|k| matches!(k, AddOnKind::OracleConfidence { .. }));
        let inner = Inner { methodology, grouped, competing, confidence, bucket_days };
        Ok(Engine { inner: Arc::new(inner) })
    }

    /// The methodology.
    #[must_use]
    pub fn methodology(&self) -> &Methodology {
        &self.inner.methodology
    }

    /// Whether aggregation needs per-expiry groups (static discount, absolute skew).
    pub(crate) fn grouped(&self) -> bool {
        self.inner.grouped
    }

    /// Whether an add-on competes with the scan loss.
    pub(crate) fn competing(&self) -> bool {
        self.inner.competing
    }

    /// Whether an add-on charges feed confidence on collateral.
    pub(crate) fn confidence(&self) -> bool {
        self.inner.confidence
    }

    /// Market liquidity per underlying for the friction add-on, from the snapshot alone: every
    /// quoted instrument's volume, options weighted by their own vega on this market.
    #[must_use]
    pub(crate) fn market_liquidity(
        &self,
        market: &MarketSnapshot,
        arrays: &crate::RiskArrays,
    ) -> BTreeMap<Currency, UnderlyingLiquidity> {
        let (all, own) = &self.inner.bucket_days;
        market_liquidity(self.methodology(), market, arrays, |u| own.get(&u).unwrap_or(all))
    }
}
