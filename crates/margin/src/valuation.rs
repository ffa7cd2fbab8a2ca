//! Instrument risk arrays: every instrument revalued once under every scenario of its underlying.
//!
//! This is the step that makes portfolio margin cheap at exchange scale: an account's scenario
//! P&L is then a sparse sum of quantity × row, with no pricing at all. Option rows go through the
//! SIMD kernel of `pricing::batch` in one call; the base value is computed by the same kernel, so
//! a scenario that changes nothing has a P&L of exactly zero.
//!
//! Values are per unit of position size, in the methodology's numeraire:
//! - options carry their value: `D·B/F` coins (inverse) or `D·B` quote units (linear), where `B`
//!   is the undiscounted Black value; in the USD numeraire times the scenario's USD price of the
//!   settlement currency (for inverse options, the shocked index);
//! - futures and perpetuals carry their P&L from the base, since they are marked to market:
//!   `1/X₀ − 1/Xₛ` coins per USD of size (inverse) or `Xₛ − X₀` quote units per coin (linear),
//!   converted at the scenario's price (Deribit's convention for coin-settled P&L).

use std::collections::BTreeMap;

use basics::{Currency, UnixNanos};
use market::{MarketSnapshot, UnderlyingMarket};
use methodology::{
    CoinConversion, Methodology, Numeraire, Scenario, ScenarioKind, ScenarioSet, VolDynamics,
};
use pricing::batch::{Execution, black_over_strike};
use product::{Instrument, InstrumentKind, OptionRight, Settlement};
use rayon::prelude::*;

use crate::{Error, ErrorKind};

/// Rows are padded with zeros to a multiple of this many cells (two four-lane vectors).
pub const ROW_PADDING_CELLS: usize = 8;

/// What an instrument is, for aggregation and add-ons.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstrumentInfo {
    /// Underlying.
    pub underlying: Currency,
    /// Currency of the instrument's values in the risk arrays (USD, or its settlement currency):
    /// the currency of its risk unit.
    pub currency: Currency,
    /// Years to expiry (0 for perpetuals).
    pub years: f64,
    /// Strike, for options.
    pub strike: Option<f64>,
    /// Call or put, for options.
    pub right: Option<OptionRight>,
    /// Whether the instrument is a perpetual.
    pub perpetual: bool,
    /// Index of the underlying at the valuation time (USD).
    pub index: f64,
    /// Implied volatility used for the base value (options) or the at-the-money vol of the
    /// nearest expiry (delta-one contracts), for impact estimates.
    pub vol: f64,
    /// Exposure to the underlying in coins per unit of size (∂ USD value / ∂ index).
    pub delta_coins: f64,
    /// ∂ USD value / ∂ σ per unit of size (options).
    pub vega_usd: f64,
    /// Value in USD of one unit of size (options; 0 for delta-one contracts).
    pub value_usd: f64,
    /// USD notional of one unit of size.
    pub notional_usd: f64,
    /// The price the engine values one unit at, in the instrument's price unit
    /// ([`Instrument::price_currency`]): the forward of a future at its expiry (the perpetual's
    /// mark), an option's model value in its settlement currency. Futures' P&L counts from
    /// their entry price to this mark, and a settlement settles at it.
    pub mark: f64,
    /// Discount rate of its settlement currency for its expiry (the snapshot's, or a published
    /// per-expiry rate).
    pub rate: f64,
    /// Half the bid/ask spread in USD per unit of size, when quoted.
    pub half_spread_usd: Option<f64>,
    /// 24-hour volume in amount units, when quoted.
    pub volume_24h: Option<f64>,
    /// Open interest in amount units, when quoted.
    pub open_interest: Option<f64>,
    /// A perpetual's cumulative funding index, when quoted: funding per unit of size in its
    /// settlement currency.
    pub funding_index: Option<f64>,
}

/// Everything the risk-array builder needs to value one instrument.
#[derive(Debug, Clone, Copy)]
struct InstrumentInputs {
    index: f64,
    forward: f64,
    years: f64,
    years_after_horizon: f64,
    vol: f64,
    discount_rate: f64,
    /// Share of a spot move that reaches the forward: `min(1, T / settlement window)`, 1 without
    /// a window (see `Valuation::settlement_window_minutes`).
    forward_share: f64,
    /// USD price of the settlement currency when it does not move with the underlying.
    settlement_usd_static: f64,
    settles_in_underlying: bool,
    /// Whether cross-margin rows convert coin P&L at the current index
    /// (`CoinConversion::Index`) instead of the scenario's.
    rows_at_index: bool,
}

/// The risk arrays of a set of instruments under one methodology and market.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskArrays {
    numeraire: Numeraire,
    instruments: Vec<Instrument>,
    scenario_sets: BTreeMap<Currency, ScenarioSet>,
    /// Base value per unit of size, in the numeraire (0 for delta-one contracts).
    base: Vec<f64>,
    /// P&L rows, concatenated: row `i` starts at `offsets[i]` and has one cell per scenario of
    /// the instrument's underlying, then zeros up to a multiple of [`ROW_PADDING_CELLS`] so that
    /// the aggregation's inner loop works on whole blocks.
    rows: Vec<f64>,
    offsets: Vec<usize>,
    /// Unpadded length of each row (the scenario count of its underlying).
    lengths: Vec<usize>,
    info: Vec<InstrumentInfo>,
}

/// Each distinct instrument's valuation inputs and facts, in order, and the error of each one
/// the market cannot value: (valued instruments, their inputs, their facts, refusals).
type Valued =
    (Vec<Instrument>, Vec<InstrumentInputs>, Vec<InstrumentInfo>, BTreeMap<Instrument, Error>);

fn value_each(
    methodology: &Methodology,
    market: &MarketSnapshot,
    instruments: &[Instrument],
) -> Valued {
    let mut instruments = instruments.to_vec();
    instruments.sort();
    instruments.dedup();
    let valued: Vec<Result<(InstrumentInputs, InstrumentInfo), Error>> = (instruments.par_iter())
        .map(|i| {
            let ctx = context(methodology, market, i)?;
            let info = instrument_info(methodology.numeraire, market, i, &ctx)?;
            Ok((ctx, info))
        })
        .collect();
    let mut out: Valued =
        (Vec::with_capacity(instruments.len()), Vec::new(), Vec::new(), BTreeMap::new());
    for (instrument, outcome) in instruments.into_iter().zip(valued) {
        match outcome {
            Ok((ctx, facts)) => {
                out.0.push(instrument);
                out.1.push(ctx);
                out.2.push(facts);
            }
            Err(e) => _ = out.3.insert(instrument, e),
        }
    }
    out
}

/// A request for one option value from the kernel.
#[derive(Debug, Clone, Copy)]
struct KernelRow {
    x: f64,
    fk: f64,
    v: f64,
    omega: f64,
}

impl RiskArrays {
    /// Revalues every instrument of `instruments` (deduplicated and sorted) the market can value
    /// under `methodology`'s scenarios, and gives the error of each one it cannot (`Expired`,
    /// `MissingMarketData` for an underlying, forward, rate or volatility), each valued once.
    ///
    /// # Errors
    /// `TooMany` past the instrument or expiry limits; `Methodology` for an invalid scenario
    /// specification; a kernel refusal.
    pub(crate) fn build_valuable(
        methodology: &Methodology,
        market: &MarketSnapshot,
        instruments: &[Instrument],
    ) -> Result<(RiskArrays, BTreeMap<Instrument, Error>), Error> {
        if instruments.len() > basics::limits::INSTRUMENTS_MAX {
            return Err(Error::new(
                "instruments",
                ErrorKind::TooMany { limit: basics::limits::INSTRUMENTS_MAX },
            ));
        }
        let (instruments, contexts, info, refused) = value_each(methodology, market, instruments);
        check_expiries(&instruments)?;
        let scenario_sets = scenario_sets(methodology, market, &instruments)?;
        let mut offsets = Vec::with_capacity(instruments.len() + 1);
        let mut total = 0;
        for instrument in &instruments {
            offsets.push(total);
            total +=
                scenario_sets[&instrument.underlying()].len().next_multiple_of(ROW_PADDING_CELLS);
        }
        offsets.push(total);
        let (plans, normalised) =
            run_kernel(methodology, market, &instruments, &contexts, &scenario_sets)?;
        let (rows, base) = fill_rows(
            methodology,
            &instruments,
            &contexts,
            &scenario_sets,
            &offsets,
            &plans,
            &normalised,
        )?;
        debug_assert!(
            offsets.windows(2).all(|w| (w[1] - w[0]) % ROW_PADDING_CELLS == 0),
            "Invariant: padded rows"
        );
        let lengths = instruments.iter().map(|i| scenario_sets[&i.underlying()].len()).collect();
        let arrays = RiskArrays {
            numeraire: methodology.numeraire,
            instruments,
            scenario_sets,
            base,
            rows,
            offsets,
            lengths,
            info,
        };
        Ok((arrays, refused))
    }

    /// The numeraire of every value.
    #[must_use]
    pub fn numeraire(&self) -> Numeraire {
        self.numeraire
    }

    /// The instruments, sorted.
    #[must_use]
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }

    /// The row index of `instrument`.
    #[must_use]
    pub fn position(&self, instrument: &Instrument) -> Option<usize> {
        self.instruments.binary_search(instrument).ok()
    }

    /// P&L per unit of size of instrument `i`, one cell per scenario of its underlying.
    #[must_use]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.rows[self.offsets[i]..self.offsets[i] + self.lengths[i]]
    }

    /// Row `i` with its zero padding: a whole number of [`ROW_PADDING_CELLS`] blocks.
    #[must_use]
    pub fn padded_row(&self, i: usize) -> &[f64] {
        &self.rows[self.offsets[i]..self.offsets[i + 1]]
    }

    /// The start of padded row `i` in [`RiskArrays::all_rows`].
    #[must_use]
    pub fn row_start(&self, i: usize) -> usize {
        self.offsets[i]
    }

    /// Every padded row, concatenated.
    #[must_use]
    pub fn all_rows(&self) -> &[f64] {
        &self.rows
    }

    /// Base value per unit of size of instrument `i` (0 for delta-one contracts).
    #[must_use]
    pub fn base(&self, i: usize) -> f64 {
        self.base[i]
    }

    /// Descriptive data of instrument `i`.
    #[must_use]
    pub fn info(&self, i: usize) -> &InstrumentInfo {
        &self.info[i]
    }

    /// The scenario set of `underlying`, if any instrument has it.
    #[must_use]
    pub fn scenarios(&self, underlying: Currency) -> Option<&ScenarioSet> {
        self.scenario_sets.get(&underlying)
    }

    /// All scenario sets, by underlying.
    #[must_use]
    pub fn scenario_sets(&self) -> &BTreeMap<Currency, ScenarioSet> {
        &self.scenario_sets
    }

    /// The same arrays with every row replaced by its delta-gamma-vega-theta approximation:
    /// `V_m·m + ½·V_mm·m² + V_σ·(σ_s − σ) − V_t·h` in the relative move `m`, the scenario's
    /// volatility change and the horizon `h`, with the sensitivities bumped on the accurate
    /// scalar pricer. Comparing both shows where gamma makes the approximation fail.
    ///
    /// # Errors
    /// As [`RiskArrays::build_valuable`] for the same instruments.
    pub fn greek_approximation(
        &self,
        methodology: &Methodology,
        market: &MarketSnapshot,
    ) -> Result<RiskArrays, Error> {
        let mut approximated = self.clone();
        for (i, instrument) in self.instruments.iter().enumerate() {
            let ctx = InstrumentInputs {
                discount_rate: self.info[i].rate,
                ..context(methodology, market, instrument)?
            };
            let set = &self.scenario_sets[&instrument.underlying()];
            let row = &mut approximated.rows[self.offsets[i]..self.offsets[i] + set.len()];
            greek_row(methodology, market, instrument, &ctx, set, self.numeraire, row)?;
        }
        Ok(approximated)
    }

    /// Total number of cells (for memory reports).
    #[must_use]
    pub fn cells(&self) -> usize {
        self.rows.len()
    }
}

/// Turns the kernel's normalised values into P&L rows and base values in the numeraire.
/// Every row and base value. With `CoinConversion::Index` a coin-settled row's extreme cells
/// are also converted at the grid's edge price, as the extended table converts a coin unit's:
/// the cross unit then holds each coin vector exactly as its coin pool would, valued at the
/// current index.
fn fill_rows(
    methodology: &Methodology,
    instruments: &[Instrument],
    contexts: &[InstrumentInputs],
    scenario_sets: &BTreeMap<Currency, ScenarioSet>,
    offsets: &[usize],
    plans: &[usize],
    normalised: &[f64],
) -> Result<(Vec<f64>, Vec<f64>), Error> {
    let numeraire = methodology.numeraire;
    let at_index = numeraire == Numeraire::Usd
        && methodology.valuation.coin_conversion == CoinConversion::Index;
    let edge_conversions: BTreeMap<Currency, Vec<(usize, f64)>> = (scenario_sets.iter())
        .filter(|_| at_index)
        .filter_map(|(u, set)| {
            let cells = crate::extended::ExtendedCells::new(methodology, *u, set)?;
            Some((*u, cells.edge_conversions()))
        })
        .collect();
    let mut rows = vec![0.0; offsets[instruments.len()]];
    let mut base = vec![0.0; instruments.len()];
    let mut cursor = 0;
    for (i, instrument) in instruments.iter().enumerate() {
        let set = &scenario_sets[&instrument.underlying()];
        let out = &mut rows[offsets[i]..offsets[i] + set.len()];
        let values = &normalised[cursor..cursor + plans[i]];
        base[i] = fill_row(numeraire, instrument, &contexts[i], set, values, out);
        if contexts[i].settles_in_underlying
            && let Some(conversions) = edge_conversions.get(&instrument.underlying())
        {
            for &(s, factor) in conversions {
                out[s] *= factor;
            }
        }
        cursor += plans[i];
        if let Some(bad) = out.iter().position(|v| !v.is_finite()) {
            let what = format!("scenario {bad}");
            return Err(Error::new(instrument.to_string(), ErrorKind::NotFinite(what)));
        }
    }
    Ok((rows, base))
}

/// The scenario set of every underlying of the market and of the instruments: coin collateral
/// without positions is still shocked with its underlying.
fn scenario_sets(
    methodology: &Methodology,
    market: &MarketSnapshot,
    instruments: &[Instrument],
) -> Result<BTreeMap<Currency, ScenarioSet>, Error> {
    let mut sets = BTreeMap::new();
    let underlyings =
        market.underlyings().keys().copied().chain(instruments.iter().map(Instrument::underlying));
    for underlying in underlyings {
        if let std::collections::btree_map::Entry::Vacant(slot) = sets.entry(underlying) {
            slot.insert(methodology.scenario_set(underlying)?);
        }
    }
    Ok(sets)
}

/// Builds every option's kernel rows in parallel and values them in one kernel call. Returns
/// the number of rows of each instrument (0 for delta-one contracts) and the normalised values.
fn run_kernel(
    methodology: &Methodology,
    market: &MarketSnapshot,
    instruments: &[Instrument],
    contexts: &[InstrumentInputs],
    scenario_sets: &BTreeMap<Currency, ScenarioSet>,
) -> Result<(Vec<usize>, Vec<f64>), Error> {
    let caches: BTreeMap<Currency, SetCache> =
        scenario_sets.iter().map(|(c, set)| (*c, SetCache::new(set))).collect();
    let plans: Vec<Vec<KernelRow>> = instruments
        .par_iter()
        .zip(contexts)
        .map(|(instrument, ctx)| {
            let underlying = instrument.underlying();
            kernel_rows(
                methodology,
                market,
                instrument,
                ctx,
                &scenario_sets[&underlying],
                &caches[&underlying],
            )
        })
        .collect::<Result<_, _>>()?;
    let flat: Vec<KernelRow> = plans.iter().flatten().copied().collect();
    let (x, fk): (Vec<f64>, Vec<f64>) = flat.iter().map(|r| (r.x, r.fk)).unzip();
    let (v, omega): (Vec<f64>, Vec<f64>) = flat.iter().map(|r| (r.v, r.omega)).unzip();
    let mut normalised = vec![0.0; flat.len()];
    black_over_strike(&x, &fk, &v, &omega, &mut normalised, Execution::SimdParallel)
        .map_err(|e| Error::new("risk arrays", ErrorKind::NotFinite(e.to_string())))?;
    Ok((plans.iter().map(Vec::len).collect(), normalised))
}

fn missing(instrument: &Instrument, what: impl Into<String>) -> Error {
    Error::new(instrument.to_string(), ErrorKind::MissingMarketData(what.into()))
}

fn context(
    methodology: &Methodology,
    market: &MarketSnapshot,
    instrument: &Instrument,
) -> Result<InstrumentInputs, Error> {
    let feeds = market.feeds();
    let underlying = market
        .underlying(instrument.underlying())
        .map_err(|e| missing(instrument, e.to_string()))?;
    let index = underlying.index();
    let (years, forward) = match instrument.expiry() {
        None => (0.0, underlying.perpetual_mark()),
        Some(expiry) => {
            let years = market.years_to(expiry);
            // With a settlement window an option at its expiry instant is being settled at the
            // averaged price: worth its payoff, which the window's rule values.
            let settling = years == 0.0 && methodology.valuation.settlement_window_minutes > 0.0;
            if years <= 0.0 && !settling {
                return Err(Error::new(instrument.to_string(), ErrorKind::Expired));
            }
            let published = feeds.forward(instrument.underlying(), expiry);
            (years, published.unwrap_or_else(|| underlying.forwards().forward(years)))
        }
    };
    let vol = match instrument.kind() {
        InstrumentKind::Option { strike, .. } => {
            option_vol(methodology, market, underlying, instrument, strike, years)?
        }
        // A delta-one contract's value has no volatility input.
        _ => 0.0,
    };
    let settlement = instrument.settlement_currency();
    let settles_in_underlying = settlement == instrument.underlying();
    let settlement_usd_static = if settles_in_underlying {
        index
    } else {
        market.usd_price(settlement).map_err(|e| missing(instrument, e.to_string()))?
    };
    let horizon_years = methodology.valuation.horizon_days / basics::DAYS_PER_YEAR;
    let window_years =
        methodology.valuation.settlement_window_minutes / (basics::DAYS_PER_YEAR * 1440.0);
    let forward_share =
        if window_years > 0.0 && instrument.expiry().is_some() && years < window_years {
            years / window_years
        } else {
            1.0
        };
    let published = instrument.expiry().and_then(|expiry| feeds.rate(settlement, expiry));
    Ok(InstrumentInputs {
        index,
        forward,
        years,
        years_after_horizon: (years - horizon_years).max(0.0),
        vol,
        discount_rate: published.unwrap_or_else(|| market.rate(settlement)),
        forward_share,
        settlement_usd_static,
        settles_in_underlying,
        rows_at_index: methodology.valuation.coin_conversion == CoinConversion::Index,
    })
}

/// The base volatility of an option: its mark IV under `MarkVol` when quoted, else the surface's.
fn option_vol(
    methodology: &Methodology,
    market: &MarketSnapshot,
    underlying: &UnderlyingMarket,
    instrument: &Instrument,
    strike: f64,
    years: f64,
) -> Result<f64, Error> {
    if methodology.valuation.dynamics == VolDynamics::MarkVol
        && let Some(iv) = market.quote(instrument).and_then(|q| q.mark_iv)
        && iv > 0.0
    {
        return Ok(iv);
    }
    underlying.implied_vol(strike, years).ok_or_else(|| {
        let horizon = underlying.surface().horizon_years() * basics::DAYS_PER_YEAR;
        missing(
            instrument,
            format!("no volatility surface for this expiry (the surface covers {horizon:.1} days)"),
        )
    })
}

/// The distinct (underlying, expiry) pairs of `instruments`, sorted: what the expiry limit
/// counts and what the roll add-on's expiry indices rank in.
pub(crate) fn distinct_expiries(instruments: &[Instrument]) -> Vec<(Currency, UnixNanos)> {
    let mut expiries: Vec<(Currency, UnixNanos)> =
        instruments.iter().filter_map(|i| Some((i.underlying(), i.expiry()?))).collect();
    expiries.sort_unstable();
    expiries.dedup();
    expiries
}

/// Refuses more than [`basics::limits::EXPIRIES_MAX`] distinct expiries on one underlying, the
/// most a market snapshot can carry surfaces and forwards for (and what lets the account walk
/// name an expiry with a small index).
fn check_expiries(instruments: &[Instrument]) -> Result<(), Error> {
    let expiries = distinct_expiries(instruments);
    let mut start = 0;
    while start < expiries.len() {
        let underlying = expiries[start].0;
        let count = expiries[start..].iter().take_while(|(u, _)| *u == underlying).count();
        if count > basics::limits::EXPIRIES_MAX {
            return Err(Error::new(
                format!("instruments.{underlying}"),
                ErrorKind::TooMany { limit: basics::limits::EXPIRIES_MAX },
            ));
        }
        start += count;
    }
    Ok(())
}

/// The pre-shock volatility of an option in a scenario with relative move `spot_move`.
fn dynamic_vol(
    methodology: &Methodology,
    market: &MarketSnapshot,
    instrument: &Instrument,
    ctx: &InstrumentInputs,
    strike: f64,
    spot_move: f64,
) -> f64 {
    if methodology.valuation.dynamics != VolDynamics::StickyMoneyness || spot_move == 0.0 {
        return ctx.vol;
    }
    let shocked_forward = ctx.forward * (1.0 + spot_move);
    market
        .underlying(instrument.underlying())
        .ok()
        .and_then(|u| u.surface().implied_vol((strike / shocked_forward).ln(), ctx.years))
        .unwrap_or(ctx.vol)
}

/// Per-scenario quantities shared by every instrument of an underlying.
struct SetCache {
    /// ln(1 + spot move) of each scenario: a price shock only shifts log-moneyness.
    log_growth: Vec<f64>,
}

impl SetCache {
    fn new(set: &ScenarioSet) -> SetCache {
        SetCache { log_growth: set.scenarios().iter().map(|s| s.spot_move.ln_1p()).collect() }
    }
}

/// The kernel rows of one option: one per scenario, then the base. Everything that depends only
/// on the instrument (log-moneyness, the vol-shock tenor scale, the surface) is computed once,
/// and the sticky-moneyness volatility once per distinct price move.
fn kernel_rows(
    methodology: &Methodology,
    market: &MarketSnapshot,
    instrument: &Instrument,
    ctx: &InstrumentInputs,
    set: &ScenarioSet,
    cache: &SetCache,
) -> Result<Vec<KernelRow>, Error> {
    let InstrumentKind::Option { strike, right, .. } = instrument.kind() else {
        return Ok(Vec::new());
    };
    let omega = right.sign();
    let base_x = (ctx.forward / strike).ln();
    let base_fk = ctx.forward / strike;
    let scale = methodology.vol_shock_for(instrument.underlying()).scale(ctx.years);
    let surface = match methodology.valuation.dynamics {
        VolDynamics::StickyMoneyness => {
            market.underlying(instrument.underlying()).ok().map(UnderlyingMarket::surface)
        }
        _ => None,
    };
    let sqrt_after = ctx.years_after_horizon.sqrt();
    let mut rows = Vec::with_capacity(set.len() + 1);
    let mut memo = (f64::NAN, ctx.vol);
    for (scenario, &log_growth) in set.scenarios().iter().zip(&cache.log_growth) {
        let (log_growth, growth) = if ctx.forward_share == 1.0 {
            (log_growth, 1.0 + scenario.spot_move)
        } else {
            let moved = scenario.spot_move * ctx.forward_share;
            (moved.ln_1p(), 1.0 + moved)
        };
        let vol = match scenario.kind {
            ScenarioKind::Skew(_) => {
                scenario_vol(methodology, market, instrument, ctx, strike, scenario)?
            }
            _ => {
                let m = scenario.spot_move;
                if memo.0 != m {
                    let moved = surface
                        .filter(|_| m != 0.0)
                        .and_then(|s| s.implied_vol(-base_x - log_growth, ctx.years));
                    memo = (m, moved.unwrap_or(ctx.vol));
                }
                methodology.vol_shock_for(instrument.underlying()).shocked_vol_at_scale(
                    memo.1,
                    scale,
                    scenario.vol,
                )
            }
        };
        rows.push(KernelRow {
            x: base_x + log_growth,
            fk: base_fk * growth,
            v: vol * sqrt_after,
            omega,
        });
    }
    rows.push(KernelRow { x: base_x, fk: base_fk, v: ctx.vol * ctx.years.sqrt(), omega });
    Ok(rows)
}

fn scenario_vol(
    methodology: &Methodology,
    market: &MarketSnapshot,
    instrument: &Instrument,
    ctx: &InstrumentInputs,
    strike: f64,
    scenario: &Scenario,
) -> Result<f64, Error> {
    match scenario.kind {
        ScenarioKind::Skew(kind) => {
            let skew = methodology.skew_shock.as_ref().ok_or_else(|| {
                Error::new(
                    "skew_shock",
                    ErrorKind::Methodology("skew scenarios need a skew shock".into()),
                )
            })?;
            Ok(ctx.vol * skew.multiplier(kind, (strike / ctx.forward).ln(), ctx.years))
        }
        _ => {
            let vol = dynamic_vol(methodology, market, instrument, ctx, strike, scenario.spot_move);
            Ok(methodology.vol_shock_for(instrument.underlying()).shocked_vol(
                vol,
                ctx.years,
                scenario.vol,
            ))
        }
    }
}

/// USD price of the settlement currency after a relative move of the underlying.
fn settlement_usd(ctx: &InstrumentInputs, spot_move: f64) -> f64 {
    if ctx.settles_in_underlying {
        ctx.index * (1.0 + spot_move)
    } else {
        ctx.settlement_usd_static
    }
}

/// USD per unit of the settlement currency at which a scenario row converts in cross margin:
/// the scenario's index, or the current one when the methodology keeps coin vectors
/// (`CoinConversion::Index`). Sensitivities always use [`settlement_usd`].
fn row_usd(ctx: &InstrumentInputs, spot_move: f64) -> f64 {
    settlement_usd(ctx, if ctx.rows_at_index { 0.0 } else { spot_move })
}

/// Writes the P&L row of one instrument and returns its base value (both in the numeraire).
fn fill_row(
    numeraire: Numeraire,
    instrument: &Instrument,
    ctx: &InstrumentInputs,
    set: &ScenarioSet,
    normalised: &[f64],
    out: &mut [f64],
) -> f64 {
    let convert = |native: f64, spot_move: f64| match numeraire {
        Numeraire::Usd => native * row_usd(ctx, spot_move),
        Numeraire::Settlement => native,
    };
    match instrument.kind() {
        InstrumentKind::Option { strike, .. } => {
            let inverse = instrument.settlement() == Settlement::Inverse;
            let native = |b_over_k: f64, forward: f64, years: f64| {
                let value = (-ctx.discount_rate * years).exp() * strike * b_over_k;
                if inverse { value / forward } else { value }
            };
            let base_native = native(normalised[set.len()], ctx.forward, ctx.years);
            let base = convert(base_native, 0.0);
            for (cell, (scenario, b)) in out.iter_mut().zip(set.scenarios().iter().zip(normalised))
            {
                let forward = ctx.forward * (1.0 + scenario.spot_move * ctx.forward_share);
                *cell = convert(native(*b, forward, ctx.years_after_horizon), scenario.spot_move)
                    - base;
            }
            base
        }
        InstrumentKind::Future { .. } | InstrumentKind::Perpetual => {
            for (cell, scenario) in out.iter_mut().zip(set.scenarios()) {
                let shocked = ctx.forward * (1.0 + scenario.spot_move);
                let native = match instrument.settlement() {
                    Settlement::Inverse => 1.0 / ctx.forward - 1.0 / shocked,
                    Settlement::Linear => shocked - ctx.forward,
                };
                *cell = convert(native, scenario.spot_move);
            }
            0.0
        }
    }
}

/// USD value per unit of size at a relative index move and volatility, with the accurate scalar
/// pricer: used for sensitivities, never for scenario rows.
fn usd_value(
    instrument: &Instrument,
    ctx: &InstrumentInputs,
    spot_move: f64,
    vol: f64,
) -> Result<f64, Error> {
    value_at(instrument, ctx, spot_move, vol, ctx.years, settlement_usd(ctx, spot_move))
}

/// Value (options) or P&L from the base (delta-one) per unit of size, in the currency worth
/// `usd` per unit of the settlement currency, at a relative move, a volatility and a time to
/// expiry, with the accurate scalar pricer.
fn value_at(
    instrument: &Instrument,
    ctx: &InstrumentInputs,
    spot_move: f64,
    vol: f64,
    years: f64,
    usd: f64,
) -> Result<f64, Error> {
    let forward = ctx.forward * (1.0 + spot_move * ctx.forward_share);
    match instrument.kind() {
        InstrumentKind::Option { strike, right, .. } => {
            let spec = pricing::EuropeanSpec {
                model: pricing::Model::Black76,
                underlying: forward,
                strike,
                years,
                vol,
                rate: ctx.discount_rate,
                dividend: 0.0,
                right,
                settlement: instrument.settlement(),
            };
            // The pricer's bounds hold every input a snapshot and its feeds accept; a value it
            // refuses is an error naming the instrument, never a silent zero.
            let inputs = pricing::EuropeanInputs::new(spec).map_err(|e| {
                let why = format!("cannot value {instrument}: {}: {}", e.field, e.kind);
                Error::new(instrument.to_string(), ErrorKind::MissingMarketData(why))
            })?;
            Ok(pricing::price(&inputs) * usd)
        }
        InstrumentKind::Future { .. } | InstrumentKind::Perpetual => {
            Ok(match instrument.settlement() {
                Settlement::Inverse => (1.0 / ctx.forward - 1.0 / forward) * usd,
                Settlement::Linear => (forward - ctx.forward) * usd,
            })
        }
    }
}

fn greek_row(
    methodology: &Methodology,
    market: &MarketSnapshot,
    instrument: &Instrument,
    ctx: &InstrumentInputs,
    set: &ScenarioSet,
    numeraire: Numeraire,
    row: &mut [f64],
) -> Result<(), Error> {
    let usd = |m: f64| match numeraire {
        Numeraire::Usd => row_usd(ctx, m),
        Numeraire::Settlement => 1.0,
    };
    let value = |m: f64, vol: f64, years: f64| value_at(instrument, ctx, m, vol, years, usd(m));
    let (h, dv) = (1e-3, 1e-4);
    let base = value(0.0, ctx.vol, ctx.years)?;
    let (up, down) = (value(h, ctx.vol, ctx.years)?, value(-h, ctx.vol, ctx.years)?);
    let by_move = (up - down) / (2.0 * h);
    let by_move2 = (up - 2.0 * base + down) / (h * h);
    let by_vol = (value(0.0, ctx.vol + dv, ctx.years)?
        - value(0.0, (ctx.vol - dv).max(0.0), ctx.years)?)
        / (2.0 * dv);
    let decay = base - value(0.0, ctx.vol, ctx.years_after_horizon)?;
    for (cell, scenario) in row.iter_mut().zip(set.scenarios()) {
        let vol_change = match instrument.kind() {
            InstrumentKind::Option { strike, .. } => {
                scenario_vol(methodology, market, instrument, ctx, strike, scenario)? - ctx.vol
            }
            _ => 0.0,
        };
        let m = scenario.spot_move;
        *cell = by_move * m + 0.5 * by_move2 * m * m + by_vol * vol_change - decay;
    }
    Ok(())
}

/// ∂ USD value / ∂ σ of one unit of `instrument` on `market`, as its risk-array row's facts
/// give it; `None` for an option the market cannot value (expired, or beyond its surface).
pub(crate) fn vega_usd(
    methodology: &Methodology,
    market: &MarketSnapshot,
    instrument: &Instrument,
) -> Option<f64> {
    let ctx = context(methodology, market, instrument).ok()?;
    Some(instrument_info(methodology.numeraire, market, instrument, &ctx).ok()?.vega_usd)
}

fn instrument_info(
    numeraire: Numeraire,
    market: &MarketSnapshot,
    instrument: &Instrument,
    ctx: &InstrumentInputs,
) -> Result<InstrumentInfo, Error> {
    let unit = match numeraire {
        Numeraire::Usd => Currency::USD,
        Numeraire::Settlement => instrument.settlement_currency(),
    };
    let bump = 1e-4;
    let delta_coins = (usd_value(instrument, ctx, bump, ctx.vol)?
        - usd_value(instrument, ctx, -bump, ctx.vol)?)
        / (2.0 * bump * ctx.index);
    let (strike, right, vega_usd) = match instrument.kind() {
        InstrumentKind::Option { strike, right, .. } => {
            let dv = 1e-4;
            let vega = (usd_value(instrument, ctx, 0.0, ctx.vol + dv)?
                - usd_value(instrument, ctx, 0.0, (ctx.vol - dv).max(0.0))?)
                / (2.0 * dv);
            (Some(strike), Some(right), vega)
        }
        _ => (None, None, 0.0),
    };
    // One unit of size: a coin for options and linear contracts, a USD for inverse futures.
    let notional_usd = match (instrument.is_option(), instrument.settlement()) {
        (false, Settlement::Inverse) => 1.0,
        _ => ctx.index,
    };
    let quote = market.quote(instrument);
    // Quoted prices are in the instrument's price units: coins for inverse options, USD for
    // inverse futures, quote currency for linear contracts.
    let price_to_usd = if instrument.is_option() { ctx.settlement_usd_static } else { 1.0 };
    let per_unit = match (instrument.is_option(), instrument.settlement()) {
        (false, Settlement::Inverse) => 1.0 / ctx.forward,
        _ => 1.0,
    };
    let half_spread_usd = quote
        .and_then(|q| Some((q.best_ask? - q.best_bid?) / 2.0))
        .map(|half| half * price_to_usd * per_unit);
    Ok(InstrumentInfo {
        underlying: instrument.underlying(),
        currency: unit,
        years: ctx.years,
        strike,
        right,
        perpetual: instrument.expiry().is_none(),
        index: ctx.index,
        vol: ctx.vol,
        delta_coins,
        vega_usd,
        value_usd: if instrument.is_option() {
            usd_value(instrument, ctx, 0.0, ctx.vol)?
        } else {
            0.0
        },
        notional_usd,
        mark: if instrument.is_option() {
            value_at(instrument, ctx, 0.0, ctx.vol, ctx.years, 1.0)?
        } else {
            ctx.forward
        },
        rate: ctx.discount_rate,
        half_spread_usd,
        volume_24h: quote.and_then(|q| q.volume_24h),
        open_interest: quote.and_then(|q| q.open_interest),
        funding_index: quote.and_then(|q| q.funding_index),
    })
}
