//! Regenerating a file's risk arrays and composite deltas from the file's own inputs.
//!
//! The conventions were established on Takasbank's file (every one of its 2,628 option arrays
//! regenerates within 0.0024 TRY) and agree with SPAN's published description:
//! - an option's base value is its theoretical value today (not the settlement price), from the
//!   file's model, underlying price, vol, interest and dividend rates and time `t`;
//! - each scenario revalues it `LOOK_AHEAD_YEARS` (1/250, one trading day) later, at the
//!   underlying price moved by `mult` × the price scan range (per unit: the range divided by the
//!   contract value factor) and the vol moved by `mult` × the vol scan range (relative when the
//!   file gives `volScanPct`, absolute for `volScan`); the loss is `(base − scenario) × cvf ×
//!   weight`, so the extremes carry their covered fraction;
//! - the file's `mult` is used as written (0.333333, not 1/3): that is what the file's own
//!   futures arrays show (−29.999969 = −90 × 0.333333 in single precision);
//! - the underlying is valued at its contract value `val` (rounded to the currency's decimals)
//!   over its value factor, not at its price when that has more decimals;
//! - the composite delta is the weighted sum of the option's deltas at the delta points, also
//!   one look-ahead later (SPAN's `oopDeltaMeth` `PERIOD`); taken today it misses by up to 0.02.

use pricing::{EuropeanInputs, EuropeanSpec, Model, Settlement, european};

use crate::error::{Error, ErrorKind};
use crate::file::{
    Contract, OptionContract, OptionProduct, OptionSeries, PriceModel, Product, RiskArray,
    SCENARIO_COUNT, SpanFile,
};

/// SPAN's look-ahead: one trading day of a 250-day year.
pub const LOOK_AHEAD_YEARS: f64 = 1.0 / 250.0;

/// Largest difference between a regenerated and a published risk-array value that counts as a
/// match, in the product's currency units (half a cent: the files print six decimals, but their
/// values are single-precision).
pub const ARRAY_TOLERANCE_CURRENCY: f64 = 0.005;

/// Largest difference between a regenerated and a published composite delta that counts as a
/// match, in underlying units per contract (the file prints six decimals).
pub const DELTA_TOLERANCE_UNITS: f64 = 1e-5;

/// Kind of a checked contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckedKind {
    /// A physical (cash) contract.
    Physical,
    /// A future.
    Future,
    /// An option.
    Option,
}

/// One contract's published and regenerated risk arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayCheck {
    /// Where the contract is in the file
    /// (`exchange[BIST]/oopPf[108303]/series[201605S0]/opt[10809]`).
    pub location: String,
    /// Its kind.
    pub kind: CheckedKind,
    /// Currency of the array.
    pub currency: String,
    /// The file's array.
    pub published: RiskArray,
    /// Ours.
    pub regenerated: RiskArray,
}

impl ArrayCheck {
    /// The largest absolute difference over the 16 values and the scenario (0-based) where it is.
    #[must_use]
    pub fn array_error(&self) -> (f64, usize) {
        let mut worst = (0.0, 0);
        for (i, (a, b)) in self.published.losses.iter().zip(&self.regenerated.losses).enumerate() {
            let e = (a - b).abs();
            if e > worst.0 {
                worst = (e, i);
            }
        }
        worst
    }

    /// The absolute difference of the composite deltas.
    #[must_use]
    pub fn delta_error(&self) -> f64 {
        (self.published.composite_delta - self.regenerated.composite_delta).abs()
    }

    /// Whether both the array and the composite delta match within tolerance.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.array_error().0 <= ARRAY_TOLERANCE_CURRENCY
            && self.delta_error() <= DELTA_TOLERANCE_UNITS
    }
}

/// Regenerates every risk array of the file: physicals, futures and European options.
///
/// # Errors
/// `Unresolved` when an option's underlying contract is not in the file; `Unsupported` for
/// American options or a strike value factor different from the contract value factor;
/// pricing errors (`Invalid`) naming the option.
pub fn regenerate(file: &SpanFile) -> Result<Vec<ArrayCheck>, Error> {
    let mut out = Vec::new();
    for exchange in &file.exchanges {
        let groups = [
            (&exchange.physicals, CheckedKind::Physical, "phyPf"),
            (&exchange.futures, CheckedKind::Future, "futPf"),
        ];
        for (products, kind, tag) in groups {
            for product in products {
                for contract in &product.contracts {
                    out.push(ArrayCheck {
                        location: format!(
                            "exchange[{}]/{tag}[{}]/{}",
                            exchange.code, product.id, contract.period
                        ),
                        kind,
                        currency: product.currency.clone(),
                        published: contract.risk,
                        regenerated: linear_risk_array(file, kind, product, contract),
                    });
                }
            }
        }
        for product in &exchange.options {
            for series in &product.series {
                let underlying = underlying_price(file, series)?;
                for option in &series.options {
                    let location = format!(
                        "exchange[{}]/oopPf[{}]/series[{}]/opt[{}]",
                        exchange.code, product.id, series.period, option.id
                    );
                    let regenerated = option_risk_array(file, product, series, option, underlying)
                        .map_err(|e| Error::new(location.clone(), e.kind))?;
                    out.push(ArrayCheck {
                        location,
                        kind: CheckedKind::Option,
                        currency: product.currency.clone(),
                        published: option.risk,
                        regenerated,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The risk array of a physical or future, whose value moves one for one with its price: the
/// loss at each point is minus the price move, weighted; its delta is one at every point, except
/// for a cash-settled physical (an index level, which no one holds), whose delta files give as 0.
#[must_use]
pub fn linear_risk_array(
    file: &SpanFile,
    kind: CheckedKind,
    product: &Product,
    contract: &Contract,
) -> RiskArray {
    let mut losses = [0.0; SCENARIO_COUNT];
    for (loss, point) in losses.iter_mut().zip(&file.scan_points) {
        *loss = -point.price_mult * contract.price_scan * point.weight;
    }
    let composite_delta = if kind == CheckedKind::Physical && product.cash_settled {
        0.0
    } else {
        file.delta_points.iter().map(|p| p.weight).sum()
    };
    RiskArray { losses, composite_delta }
}

/// The price of an option series' underlying contract, as the clearing house values options
/// on it: the contract's settlement value (`val`, rounded to the currency's decimals) divided by
/// its value factor, else its price. The two differ when the price has more decimals than the
/// value: Takasbank's XU030X index is priced 94.642 but valued 94.64 TRY, and its options'
/// composite deltas regenerate to 1e-6 from 94.64 but only to 1e-4 from 94.642.
///
/// # Errors
/// `Unresolved` when the file lacks the contract.
pub fn underlying_price(file: &SpanFile, series: &OptionSeries) -> Result<f64, Error> {
    let r = &series.underlying;
    file.exchanges
        .iter()
        .filter(|e| e.code == r.exchange)
        .flat_map(|e| e.physicals.iter().chain(&e.futures))
        .filter(|p| p.id == r.product_id)
        .flat_map(|p| &p.contracts)
        .find(|c| c.id == r.contract_id)
        .map(|c| c.value.map_or(c.price, |v| v / c.value_factor))
        .ok_or_else(|| {
            let what =
                format!("contract {} of product {} on {}", r.contract_id, r.product_id, r.exchange);
            Error::new(format!("series[{}]/undC", series.period), ErrorKind::Unresolved(what))
        })
}

/// Regenerates one option's risk array and composite delta (see the module documentation).
///
/// # Errors
/// `Unsupported` for American exercise or a strike value factor unlike the contract value
/// factor; `Invalid` when the inputs cannot be priced.
pub fn option_risk_array(
    file: &SpanFile,
    product: &OptionProduct,
    series: &OptionSeries,
    option: &OptionContract,
    underlying: f64,
) -> Result<RiskArray, Error> {
    if !product.european {
        let why = "American options are valued by SPAN with a tree model the file does not fix";
        return Err(Error::new("exercise", ErrorKind::Unsupported(why.into())));
    }
    if series.strike_factor != series.value_factor {
        let why = "a strike value factor unlike the contract value factor";
        return Err(Error::new("svf", ErrorKind::Unsupported(why.into())));
    }
    let unit_scan = series.price_scan / series.value_factor;
    let later = (series.years - LOOK_AHEAD_YEARS).max(0.0);
    let base =
        value_and_delta(product.model, series, option, underlying, series.years, option.vol)?.0;
    let mut losses = [0.0; SCENARIO_COUNT];
    for (loss, point) in losses.iter_mut().zip(&file.scan_points) {
        let s = underlying + point.price_mult * unit_scan;
        let vol = scenario_vol(series, option.vol, point.vol_mult);
        let value = value_and_delta(product.model, series, option, s, later, vol)?.0;
        *loss = (base - value) * series.value_factor * point.weight;
    }
    let mut composite_delta = 0.0;
    for point in &file.delta_points {
        let s = underlying + point.price_mult * unit_scan;
        let vol = scenario_vol(series, option.vol, point.vol_mult);
        composite_delta +=
            point.weight * value_and_delta(product.model, series, option, s, later, vol)?.1;
    }
    Ok(RiskArray { losses, composite_delta })
}

fn scenario_vol(series: &OptionSeries, vol: f64, mult: f64) -> f64 {
    let moved = match (series.vol_scan_fraction, series.vol_scan_absolute) {
        (Some(fraction), _) => vol * (1.0 + mult * fraction),
        (None, Some(absolute)) => vol + mult * absolute,
        (None, None) => vol,
    };
    moved.max(0.0)
}

fn value_and_delta(
    model: PriceModel,
    series: &OptionSeries,
    option: &OptionContract,
    underlying: f64,
    years: f64,
    vol: f64,
) -> Result<(f64, f64), Error> {
    // A move through zero leaves the underlying worthless; price it at a sliver above zero, where
    // calls are worth nothing and puts their discounted strike.
    let underlying = underlying.max(option.strike * 1e-12);
    let (model, dividend) = match model {
        PriceModel::Merton => (Model::BlackScholesMerton, series.dividend),
        PriceModel::Black => (Model::Black76, 0.0),
    };
    let spec = EuropeanSpec {
        model,
        underlying,
        strike: option.strike,
        years,
        vol,
        rate: series.rate,
        dividend,
        right: option.right,
        settlement: Settlement::Linear,
    };
    let inputs =
        EuropeanInputs::new(spec).map_err(|e| Error::invalid(e.field, e.kind.to_string()))?;
    let g = european(&inputs);
    Ok((g.price, g.delta))
}
