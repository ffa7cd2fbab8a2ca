//! Add-ons: charges beyond the worst scenario loss.
//!
//! Each add-on is computed per risk unit (one underlying in one currency) from the positions'
//! precomputed sensitivities ([`InstrumentInfo`]), in USD, and converted to the unit's currency by
//! the caller. The formulas, and why each exists:
//!
//! - **Liquidation friction**: closing a book costs half the spread on every position (gross) plus
//!   market impact on what cannot be netted: `Y · σ_daily · √(|Δ| / V) · |Δ| · S` on the net delta
//!   of the underlying (square-root impact, documented by practitioners since Almgren and Chriss),
//!   and the same shape on the net vega of each expiry bucket. A book that is hedged in delta but
//!   not in vega still pays to unwind its vega.
//! - **Concentration**: the part of a position above a share of open interest cannot be closed at
//!   the screen price; it pays a rate on its notional.
//! - **Roll** (Deribit's roll shock): futures of different expiries do not move together; per
//!   expiry, the net delta pays a basis move, not netted across expiries.
//! - **Basis contingency** (Derive): per option expiry, the loss from a small forward move without
//!   vol shock, scaled by `add + mult · T`.
//! - **Contract minimum**: a floor per net short option contract so that a strip of far
//!   out-of-the-money short options never margins to zero.
//! - **Naked short option** and **perpetual notional** (Derive's contingencies), **delta shock**
//!   (Deribit), **de-peg** (Derive's peg loss on the scan loss).
//! - **Contract floor** (OCC/FINRA TIMS): a minimum per unit of underlying held, long or short;
//!   charged as the shortfall of the unit's loss below it, so it floors the requirement.

use std::collections::BTreeMap;

use basics::Currency;
use market::MarketSnapshot;
use methodology::{AddOn, AddOnKind, ScenarioKind, ScenarioSet};
use product::{InstrumentKind, Settlement};

use market::FeedData;
use methodology::Methodology;

use crate::feeds::confidence_charge;
use crate::valuation::{RiskArrays, vega_usd};

/// Market liquidity of one underlying, aggregated from every quoted instrument of the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UnderlyingLiquidity {
    /// Daily traded delta-one volume, in coins.
    pub delta_volume_coins: f64,
    /// Daily traded option vega (USD per unit of vol), by vega bucket.
    pub vega_volume_usd: [f64; VEGA_BUCKETS_MAX],
}

/// Most vega buckets a liquidation-friction add-on may define (the last one is open-ended).
pub const VEGA_BUCKETS_MAX: usize = 8;
const _: () =
    assert!(VEGA_BUCKETS_MAX.is_multiple_of(4), "vega buckets are summed four lanes at a time");

/// Sums quoted volumes per underlying: delta-one volume in coins, option volume times the
/// option's own vega on this market. A function of the snapshot (and the methodology that values
/// it) alone, whatever instruments a caller prices: an account's margin must not depend on the
/// route that computed it. An option the market cannot value (quoted past its expiry, or beyond
/// its surface) has no vega to weigh its volume by and adds nothing: what a liquidation could
/// sell is measured only in contracts someone can price.
///
/// A quoted option already in `arrays` reads its vega from there: the same function of the
/// market, computed once (its row's facts are exactly [`vega_usd`]).
pub(crate) fn market_liquidity<'a>(
    methodology: &Methodology,
    market: &MarketSnapshot,
    arrays: &RiskArrays,
    bucket_days: impl Fn(Currency) -> &'a [f64],
) -> BTreeMap<Currency, UnderlyingLiquidity> {
    let mut out: BTreeMap<Currency, UnderlyingLiquidity> = BTreeMap::new();
    for (instrument, quote) in market.quotes() {
        let Some(volume) = quote.volume_24h else { continue };
        // Every quote's underlying is in the snapshot (its builder checks it).
        let Ok(underlying) = market.underlying(instrument.underlying()) else {
            panic!("Invariant: a quoted instrument's underlying is in its snapshot ({instrument})")
        };
        let entry = out.entry(instrument.underlying()).or_default();
        match instrument.kind() {
            InstrumentKind::Option { expiry, .. } => {
                let vega = match arrays.position(instrument) {
                    Some(row) => Some(arrays.info(row).vega_usd),
                    None => vega_usd(methodology, market, instrument),
                };
                let Some(vega) = vega else { continue };
                let years = market.years_to(expiry);
                let bucket = bucket_of(years, bucket_days(instrument.underlying()));
                entry.vega_volume_usd[bucket] += volume * vega.abs();
            }
            _ => {
                let coins = match instrument.settlement() {
                    Settlement::Inverse => volume / underlying.index(),
                    Settlement::Linear => volume,
                };
                entry.delta_volume_coins += coins;
            }
        }
    }
    out
}

/// The vega bucket of an expiry `years` ahead.
#[must_use]
pub fn bucket_of(years: f64, bucket_days: &[f64]) -> usize {
    let days = years * basics::DAYS_PER_YEAR;
    bucket_days
        .iter()
        .position(|edge| days <= *edge)
        .unwrap_or(bucket_days.len())
        .min(VEGA_BUCKETS_MAX - 1)
}

/// Add-on parameters that the one-pass collection needs, read from the methodology once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AddOnInputs {
    /// Default half-spreads of the friction add-on: (delta-one fraction, option vol points).
    half_spreads: Option<(f64, f64)>,
    /// Vega bucket edges in days.
    bucket_days: Vec<f64>,
    /// Free share of open interest of the concentration add-on.
    open_interest_fraction: Option<f64>,
    /// (annualised move, minimum move) of the roll add-on.
    roll: Option<(f64, f64)>,
}

impl AddOnInputs {
    /// Reads the parameters of `add_ons` (a methodology's, or one underlying's own).
    #[must_use]
    pub fn new(add_ons: &[AddOn]) -> AddOnInputs {
        let mut inputs = AddOnInputs::default();
        for add_on in add_ons {
            match &add_on.kind {
                AddOnKind::LiquidationFriction {
                    half_spread_fraction,
                    half_spread_vol,
                    vega_bucket_days,
                    ..
                } => {
                    inputs.half_spreads = Some((*half_spread_fraction, *half_spread_vol));
                    inputs.bucket_days.clone_from(vega_bucket_days);
                }
                AddOnKind::Concentration { open_interest_fraction, .. } => {
                    inputs.open_interest_fraction = Some(*open_interest_fraction);
                }
                AddOnKind::Roll { annualised_move, min_move } => {
                    inputs.roll = Some((*annualised_move, *min_move));
                }
                _ => {}
            }
        }
        inputs
    }

    /// The vega bucket edges, in days.
    #[must_use]
    pub fn bucket_days(&self) -> &[f64] {
        &self.bucket_days
    }
}

/// Everything the add-ons need from one unit's positions, gathered in a single pass (in USD).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UnitSums {
    /// Σ |size| · half-spread.
    pub spread_usd: f64,
    /// Net delta in coins.
    pub delta_coins: f64,
    /// Net vega per bucket.
    pub vega_usd: [f64; VEGA_BUCKETS_MAX],
    /// Σ max(0, −size) over options.
    pub short_options: f64,
    /// Σ notional above the free share of open interest.
    pub excess_notional_usd: f64,
    /// Σ over expiries of |net delta| · index · max(min_move, annual_move · T).
    pub roll_usd: f64,
    /// Σ |size| · notional over perpetuals.
    pub perpetual_notional_usd: f64,
    /// Σ |size| · notional over every position (the contract floor counts units held).
    pub gross_notional_usd: f64,
}

/// What the per-account path reads about one risk-array row, packed into one cache line (and
/// aligned to one) so that an account's walk over its positions costs one load per position.
/// The layout is what keeps it at 64 bytes: one rate field serves as vega for options and as the
/// roll rate for delta-one contracts, the expiry is a small per-underlying index, and the row
/// start fits `u32` under the crate's limits (see [`ROW_START_MAX`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[repr(align(64))]
pub struct RowFacts {
    /// Half-spread per unit of size (quoted, or the friction add-on's default), USD.
    pub half_spread_usd: f64,
    /// Coins of underlying exposure per unit of size.
    pub delta_coins: f64,
    /// USD notional per unit of size.
    pub notional_usd: f64,
    /// Size that may be held without a concentration charge (∞ without an open-interest quote).
    pub free_size: f64,
    /// Base value per unit of size in the unit currency.
    pub base: f64,
    /// Options: USD vega per unit of size. Delta-one contracts: roll charge per coin of net
    /// exposure per USD of index, max(min, annual · T).
    pub rate: f64,
    /// Start of the row in [`RiskArrays::all_rows`].
    pub start: u32,
    /// Index of the row's expiry among its underlying's distinct expiries (the roll groups).
    pub expiry: u16,
    /// Vega bucket.
    pub bucket: u8,
    /// Whether the row is an option.
    pub option: bool,
    /// Whether the row is a perpetual.
    pub perpetual: bool,
}

/// Largest start of a padded row: every instrument allowed, each with the most scenarios
/// allowed. [`RowFacts::start`] is a `u32` because this fits.
pub const ROW_START_MAX: usize = basics::limits::INSTRUMENTS_MAX
    * basics::limits::SCENARIOS_MAX.next_multiple_of(crate::valuation::ROW_PADDING_CELLS);
const _: () = assert!(ROW_START_MAX <= u32::MAX as usize);
const _: () = assert!(size_of::<RowFacts>() == 64);

impl RowFacts {
    /// The facts of row `row` of `arrays` under `inputs`; `expiry` is the index of its expiry
    /// among its underlying's distinct expiries.
    #[must_use]
    pub fn new(arrays: &RiskArrays, row: usize, inputs: &AddOnInputs, expiry: u16) -> RowFacts {
        let info = arrays.info(row);
        let option = info.strike.is_some();
        let half_spread_usd = inputs.half_spreads.map_or(0.0, |(fraction, vol_points)| {
            let default = if option {
                vol_points * info.vega_usd.abs()
            } else {
                fraction * info.notional_usd
            };
            info.half_spread_usd.unwrap_or(default)
        });
        let free_size = match (inputs.open_interest_fraction, info.open_interest) {
            (Some(fraction), Some(open_interest)) => fraction * open_interest,
            _ => f64::INFINITY,
        };
        let roll_rate =
            inputs.roll.map_or(0.0, |(annual, minimum)| minimum.max(annual * info.years));
        RowFacts {
            half_spread_usd,
            delta_coins: info.delta_coins,
            notional_usd: info.notional_usd,
            free_size,
            base: arrays.base(row),
            rate: if option { info.vega_usd } else { roll_rate },
            // Fits: starts are at most ROW_START_MAX (asserted below u32::MAX at compile time).
            start: u32::try_from(arrays.row_start(row)).unwrap_or(u32::MAX),
            expiry,
            bucket: bucket_of(info.years, &inputs.bucket_days) as u8,
            option,
            perpetual: info.perpetual,
        }
    }
}

impl UnitSums {
    /// Adds one position (positions arrive sorted by instrument, so expiries are contiguous and
    /// the roll add-on can net delta-one exposure per expiry with a running group).
    #[inline]
    pub fn add(&mut self, f: &RowFacts, size: f64, roll: &mut RollGroup) {
        self.spread_usd += size.abs() * f.half_spread_usd;
        self.delta_coins += size * f.delta_coins;
        self.excess_notional_usd += (size.abs() - f.free_size).max(0.0) * f.notional_usd;
        self.gross_notional_usd += size.abs() * f.notional_usd;
        if f.option {
            // Every bucket takes a term, zero but in the row's own: with no indexed store the
            // sums can stay in registers across the walk. Adding +0 changes no sum (a sum that
            // starts at +0 never becomes −0), so the buckets are the indexed ones bit for bit.
            let term = size * f.rate;
            for (bucket, vega) in self.vega_usd.iter_mut().enumerate() {
                *vega += if bucket == usize::from(f.bucket) { term } else { 0.0 };
            }
            self.short_options += (-size).max(0.0);
            return;
        }
        if f.perpetual {
            self.perpetual_notional_usd += size.abs() * f.notional_usd;
        }
        if roll.expiry != f.expiry {
            self.roll_usd += roll.delta.abs() * roll.rate;
            *roll = RollGroup { expiry: f.expiry, rate: f.rate, delta: 0.0 };
        }
        roll.delta += size * f.delta_coins;
    }

    /// Closes the last roll group; `index` converts coins to USD.
    pub fn finish(&mut self, roll: &RollGroup, index: f64) {
        self.roll_usd = (self.roll_usd + roll.delta.abs() * roll.rate) * index;
    }
}

/// The running expiry group of the roll add-on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollGroup {
    expiry: u16,
    rate: f64,
    delta: f64,
}

impl Default for RollGroup {
    /// No group yet: no row has this expiry index (an underlying has far fewer expiries).
    fn default() -> RollGroup {
        RollGroup { expiry: u16::MAX, rate: 0.0, delta: 0.0 }
    }
}

/// What an add-on may read about one risk unit besides its sums.
pub struct UnitView<'a> {
    /// The unit's positions (row, size), for the add-ons that need more than the sums.
    pub held: &'a [(usize, f64)],
    /// Risk arrays (rows of auxiliary scenarios).
    pub arrays: &'a RiskArrays,
    /// The unit's scenario set.
    pub scenarios: &'a ScenarioSet,
    /// Liquidity of the unit's underlying.
    pub liquidity: &'a UnderlyingLiquidity,
    /// Index of the underlying (USD).
    pub index: f64,
    /// Daily at-the-money volatility of the underlying, `σ / √365` (the impact scale).
    pub sigma_daily: f64,
    /// USD price of one unit of the unit's currency.
    pub unit_usd: f64,
    /// The unit's underlying.
    pub underlying: Currency,
    /// Published feed confidences (the oracle-confidence add-on).
    pub feeds: &'a FeedData,
}

/// The value of one add-on for one unit, in the unit's currency (before IM/MM weights), with
/// USD prices of currencies supplied by the caller (precomputed once per refresh).
#[must_use]
// Inlined into the refresh's per-unit loop, where it runs five times per unit: measured 3 %
// faster than a call (arguments no longer spilled and reloaded around it).
#[allow(clippy::inline_always)]
#[inline(always)]
pub fn add_on_value_with(
    kind: &AddOnKind,
    sums: &UnitSums,
    view: &UnitView<'_>,
    scan_loss: f64,
    price_of: impl Fn(Currency) -> f64,
) -> f64 {
    let usd = match kind {
        AddOnKind::LiquidationFriction {
            half_spread_vol,
            impact_coefficient,
            volume_floor,
            ..
        } => {
            let volume = view.liquidity.delta_volume_coins.max(*volume_floor);
            let delta = sums.delta_coins.abs();
            let delta_impact = impact_coefficient
                * view.sigma_daily
                * (delta / volume).sqrt()
                * delta
                * view.index;
            // Vega volume floor: the delta volume floor traded as at-the-money one-month options.
            let vega_floor = volume_floor * view.index * 0.1;
            let scale = impact_coefficient * half_spread_vol;
            let vega_impact =
                vega_impact(&sums.vega_usd, &view.liquidity.vega_volume_usd, scale, vega_floor);
            sums.spread_usd + delta_impact + vega_impact
        }
        AddOnKind::Concentration { rate, .. } => sums.excess_notional_usd * rate,
        AddOnKind::Roll { .. } => sums.roll_usd,
        AddOnKind::BasisContingency { add_factor, mult_factor, .. } => {
            return basis_contingency(view, *add_factor, *mult_factor);
        }
        AddOnKind::ContractMinimum { fraction_of_index } => {
            sums.short_options * fraction_of_index * view.index
        }
        AddOnKind::NakedShortOption { fraction } => naked_shorts(view) * fraction * view.index,
        AddOnKind::PerpetualNotional { fraction } => sums.perpetual_notional_usd * fraction,
        AddOnKind::OracleConfidence { threshold, factor } => {
            oracle_confidence(view, sums, *threshold, *factor)
        }
        AddOnKind::DeltaShock { threshold_usd, slope_per_coin, max_fraction } => {
            let delta = sums.delta_coins.abs();
            let excess = (delta - threshold_usd / view.index).max(0.0);
            (slope_per_coin * delta * excess).min(max_fraction * delta) * view.index
        }
        AddOnKind::ContractFloor { usd_per_unit } => {
            // Units of underlying held = gross notional / index; the floor is in USD, the loss
            // in the unit's currency.
            let floor = usd_per_unit * sums.gross_notional_usd / view.index / view.unit_usd;
            return (floor - scan_loss).max(0.0);
        }
        AddOnKind::Depeg { currency, threshold, factor } => {
            let price = price_of(*currency);
            return if price < *threshold { (threshold - price) * factor * scan_loss } else { 0.0 };
        }
    };
    // Most units are in USD: skipping a division by exactly 1 changes no bit and shortens the
    // chain of divisions and roots each unit waits on.
    if view.unit_usd == 1.0 { usd } else { usd / view.unit_usd }
}

/// `Σ_b scale · √(|net_b| / max(traded_b, floor)) · |net_b|` over every vega bucket, summed in
/// bucket order. The terms are computed four buckets at a time (a division and a square root
/// per lane, each correctly rounded, so the terms are the scalar ones bit for bit); buckets a
/// methodology does not define hold no vega and add exactly zero.
fn vega_impact(
    net: &[f64; VEGA_BUCKETS_MAX],
    traded: &[f64; VEGA_BUCKETS_MAX],
    scale: f64,
    floor: f64,
) -> f64 {
    use wide::f64x4;
    let lane = |v: &[f64]| f64x4::new([v[0], v[1], v[2], v[3]]);
    let mut total = 0.0;
    for (net, traded) in net.chunks_exact(4).zip(traded.chunks_exact(4)) {
        let net = lane(net).abs();
        let terms =
            f64x4::splat(scale) * (net / lane(traded).max(f64x4::splat(floor))).sqrt() * net;
        for term in terms.to_array() {
            total += term;
        }
    }
    total
}

/// Derive's forward contingency, in the unit's currency: per option expiry, the worse of the
/// auxiliary moves (without vol shock), only if it loses, times `add + mult · T`.
fn basis_contingency(view: &UnitView<'_>, add_factor: f64, mult_factor: f64) -> f64 {
    let scenarios = view.scenarios.scenarios();
    let options: Vec<(usize, f64)> =
        view.held.iter().copied().filter(|(r, _)| view.arrays.info(*r).strike.is_some()).collect();
    let mut charge = 0.0;
    let mut start = 0;
    while start < options.len() {
        let years = view.arrays.info(options[start].0).years;
        let end = start
            + options[start..]
                .iter()
                .take_while(|(r, _)| view.arrays.info(*r).years == years)
                .count();
        let worst = (0..scenarios.len())
            .filter(|&s| scenarios[s].kind == ScenarioKind::Auxiliary)
            .map(|s| {
                options[start..end]
                    .iter()
                    .map(|&(row, size)| size * view.arrays.row(row)[s])
                    .sum::<f64>()
            })
            .fold(0.0, f64::min);
        charge += -worst * (add_factor + mult_factor * years);
        start = end;
    }
    charge
}

/// The oracle-confidence charge of one unit, in USD. The unit's confidence is its index feed's,
/// lowered by the perpetual's feed when a perpetual is held; it applies to the perpetual
/// notional, and, lowered further by each expiry's feeds, to that expiry's gross option
/// notional `Σ |size| · index` (Derive's oracle contingency).
fn oracle_confidence(view: &UnitView<'_>, sums: &UnitSums, threshold: f64, factor: f64) -> f64 {
    let feeds = view.feeds;
    let mut unit = feeds.index(view.underlying);
    if sums.perpetual_notional_usd > 0.0 {
        unit = unit.min(feeds.perpetual(view.underlying));
    }
    let mut charge = confidence_charge(unit, sums.perpetual_notional_usd, threshold, factor);
    let mut start = 0;
    let held = view.held;
    while start < held.len() {
        let expiry = view.arrays.instruments()[held[start].0].expiry();
        let end = start
            + held[start..]
                .iter()
                .take_while(|(r, _)| view.arrays.instruments()[*r].expiry() == expiry)
                .count();
        // Futures of the same expiry may precede its options in the run; only options count.
        if let Some(expiry) = expiry {
            let gross: f64 = held[start..end]
                .iter()
                .filter(|(r, _)| view.arrays.info(*r).strike.is_some())
                .map(|(_, size)| size.abs())
                .sum();
            let confidence = unit.min(feeds.expiry(view.underlying, expiry));
            charge += confidence_charge(confidence, gross * view.index, threshold, factor);
        }
        start = end;
    }
    charge
}

/// Naked short options per expiry, netting calls and puts of the same strike (Derive).
fn naked_shorts(view: &UnitView<'_>) -> f64 {
    let mut by_strike: BTreeMap<(u64, u64), f64> = BTreeMap::new();
    for &(row, size) in view.held {
        let info = view.arrays.info(row);
        if let Some(strike) = info.strike {
            *by_strike.entry((info.years.to_bits(), strike.to_bits())).or_default() += size;
        }
    }
    by_strike.values().map(|net| (-net).max(0.0)).sum()
}

#[cfg(test)]
mod tests {
    use super::{RollGroup, RowFacts, UnitSums, VEGA_BUCKETS_MAX};

    /// The walk adds a term to every vega bucket, zero outside the row's own; each bucket must
    /// still be the plain sum of its own options' terms, bit for bit (sign of zero included),
    /// with terms of either sign, zero terms and buckets left empty.
    #[test]
    fn vega_buckets_are_the_plain_sums_of_their_own_options() {
        let mut draw = crate::test_draws(0x9E37_79B9);
        for _ in 0..200 {
            let mut sums = UnitSums::default();
            let mut roll = RollGroup::default();
            let mut plain = [0.0_f64; VEGA_BUCKETS_MAX];
            for _ in 0..draw(30) {
                let facts = RowFacts {
                    // Buckets 0..6 only: the last one stays empty.
                    bucket: draw(VEGA_BUCKETS_MAX as u64 - 1) as u8,
                    rate: draw(5) as f64 - 2.0,
                    option: true,
                    ..RowFacts::default()
                };
                let size = (draw(9) as f64 - 4.0) / 4.0;
                sums.add(&facts, size, &mut roll);
                plain[usize::from(facts.bucket)] += size * facts.rate;
            }
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&sums.vega_usd), bits(&plain));
        }
    }
}
