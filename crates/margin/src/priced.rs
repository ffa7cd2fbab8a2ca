//! The engine's facade: a market priced for a methodology and an instrument universe.
//!
//! [`Engine::price`] builds a [`PricedMarket`] once per market: the risk arrays of the universe,
//! the market's liquidity, and the tables every account of a refresh reads (scenario slots,
//! row facts, currencies as collateral, correlations). It owns everything it holds, so callers
//! keep it in an `Arc` and share it between a refresh and every what-if until the next market.
//!
//! **Architecture Invariant:** an account's figures are a function of (market, methodology,
//! portfolio) alone. Liquidity is computed from the market snapshot alone (never from which
//! instruments happen to be in the arrays), and every table is indexed by instrument, so the
//! same account gives the same bits whatever the universe it is priced in.

use std::collections::BTreeMap;
use std::sync::Arc;

use basics::Currency;
use market::MarketSnapshot;
use methodology::{CollateralRule, Methodology, Numeraire, Offsets, ScenarioKind, ScenarioSet};
use product::{Instrument, Portfolio, Position};

use crate::addons::{AddOnInputs, RowFacts, UnderlyingLiquidity};
use crate::book::ResolvedAccount;
use crate::engine::Engine;
use crate::extended::ExtendedCells;
use crate::figures::{AccountDetail, CurrencyFigures};
use crate::scratch::Scratch;
use crate::valuation::RiskArrays;
use crate::{Error, ErrorKind};

/// A currency as collateral under one methodology and market. A priced market resolves it once
/// for every currency it knows, so that each balance of each account copies a few numbers
/// instead of looking up and copying the whole rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tender {
    /// USD per unit, when the market has it.
    pub(crate) price: Option<f64>,
    /// (maintenance haircut, initial haircut on top); `None`: not accepted as collateral.
    pub(crate) haircuts: Option<(f64, f64)>,
    /// The slot whose scenarios move it: risk-cancelling collateral in cross margin.
    pub(crate) shocked_slot: Option<usize>,
}

impl Tender {
    pub(crate) fn new(
        methodology: &Methodology,
        market: &MarketSnapshot,
        slots: &[UnderlyingSlot],
        currency: Currency,
    ) -> Tender {
        let rule = methodology.collateral_rule(currency);
        let moves =
            |r: &CollateralRule| methodology.numeraire == Numeraire::Usd && r.risk_cancelling;
        let shocked_slot = rule.filter(moves).and_then(|r| {
            let tracked = r.underlying.unwrap_or(currency);
            slots.iter().position(|s| s.currency == tracked)
        });
        Tender {
            price: market.usd_price(currency).ok(),
            haircuts: rule.map(|r| (r.mm_haircut, r.im_haircut)),
            shocked_slot,
        }
    }
}

/// One underlying's scenario data, laid out for the hot loop.
pub(crate) struct UnderlyingSlot {
    pub(crate) currency: Currency,
    pub(crate) index: f64,
    /// Daily at-the-money volatility, `σ / √365`, the friction add-on's impact scale.
    pub(crate) sigma_daily: f64,
    /// Whether the market gives no impact volatility for the underlying (no surface and no
    /// reference volatility): the friction add-on then refuses its units.
    pub(crate) impact_vol_missing: bool,
    /// Fraction of a unit's aggregated gains that counts.
    pub(crate) gain_fraction: f64,
    /// Whether the underlying has add-ons of its own.
    pub(crate) own_add_ons: bool,
    pub(crate) all_candidates: bool,
    pub(crate) liquidity: UnderlyingLiquidity,
    pub(crate) set: ScenarioSet,
    /// Cells of a unit's P&L: the set's scenarios rounded up to whole row blocks, like the
    /// padded rows.
    pub(crate) cells: usize,
    /// Spot move per scenario, zero in the padding.
    pub(crate) moves: Vec<f64>,
    /// Weight per scenario, zero in the padding.
    pub(crate) weights: Vec<f64>,
    pub(crate) candidate: Vec<bool>,
    /// Deribit's extended-table treatment of the extreme cells, when the methodology has one.
    pub(crate) extended: Option<ExtendedCells>,
}

/// A market priced for one methodology and one instrument universe: the risk arrays, the
/// market's liquidity, and tables precomputed once so that the per-account work does no map
/// lookups. Owned and immutable; every margin figure above the engine comes from one.
pub struct PricedMarket {
    pub(crate) engine: Engine,
    pub(crate) market: Arc<MarketSnapshot>,
    pub(crate) arrays: RiskArrays,
    pub(crate) liquidity: BTreeMap<Currency, UnderlyingLiquidity>,
    pub(crate) slots: Vec<UnderlyingSlot>,
    pub(crate) facts: Vec<RowFacts>,
    /// Each row's unit, `slot << 16 | unit`: a 4-byte table that stays in L1, so the walk finds
    /// where a unit ends without waiting for the row's facts to arrive from further out.
    pub(crate) unit_keys: Vec<u32>,
    /// The currencies of the rows' risk units, sorted: a row's unit key indexes them.
    pub(crate) unit_currencies: Vec<Currency>,
    /// Every currency the methodology or market names, a handful of entries: a linear scan
    /// beats a map.
    pub(crate) currencies: Vec<(Currency, Tender)>,
    /// Correlation between slots `a` and `b` at `a * slots + b` (1 on the diagonal).
    pub(crate) correlations: Vec<f64>,
    /// Where each slot's cells start in a scenario vector, and the vector's length last.
    pub(crate) vector_offsets: Vec<usize>,
    /// Why the methodology is not linear, if it is not (`PricedMarket::check_linear`).
    pub(crate) nonlinear: Option<String>,
}

impl std::fmt::Debug for PricedMarket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PricedMarket")
            .field("methodology", &self.engine.methodology().name)
            .field("valuation", &self.market.valuation())
            .field("instruments", &self.arrays.instruments().len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Prices `market` for `universe` (deduplicated and sorted): the risk arrays of every
    /// instrument, the market's liquidity and the refresh tables.
    ///
    /// # Errors
    /// As the risk arrays: `Expired`, `MissingMarketData`, `Methodology`, `TooMany`, naming the
    /// instrument.
    pub fn price(
        &self,
        market: &Arc<MarketSnapshot>,
        universe: &[Instrument],
    ) -> Result<PricedMarket, Error> {
        let (priced, refused) = self.price_valuable(market, universe)?;
        match refused.into_iter().next() {
            Some((_, first)) => Err(first),
            None => Ok(priced),
        }
    }

    /// Prices `market` for every instrument of `universe` it can value, and says why it cannot
    /// value the others: a market that lacks one underlying, or has rolled past one expiry,
    /// still prices everything else, so that accounts holding none of the refused instruments
    /// keep their figures (a service must not blank accounts a bad input does not concern).
    ///
    /// # Errors
    /// As [`Engine::price`] on the instruments it can value (a limit exceeded, an invalid
    /// methodology).
    pub fn price_valuable(
        &self,
        market: &Arc<MarketSnapshot>,
        universe: &[Instrument],
    ) -> Result<(PricedMarket, BTreeMap<Instrument, Error>), Error> {
        let (arrays, refused) = RiskArrays::build_valuable(self.methodology(), market, universe)?;
        let liquidity = self.market_liquidity(market, &arrays);
        let priced = PricedMarket::new(self.clone(), Arc::clone(market), arrays, liquidity);
        Ok((priced, refused))
    }

    /// Prices `market` for the instruments `portfolio` holds: the universe of a single
    /// portfolio's margin (the figures are the same in any universe that holds them).
    ///
    /// # Errors
    /// As [`Engine::price`].
    pub fn price_for(
        &self,
        market: &Arc<MarketSnapshot>,
        portfolio: &Portfolio,
    ) -> Result<PricedMarket, Error> {
        let universe: Vec<Instrument> =
            portfolio.positions().iter().map(|p| p.instrument).collect();
        self.price(market, &universe)
    }

    /// The figures of one portfolio on `market`: [`Engine::price_for`], then
    /// [`PricedMarket::margin`].
    ///
    /// # Errors
    /// As both.
    pub fn margin(
        &self,
        market: &Arc<MarketSnapshot>,
        portfolio: &Portfolio,
    ) -> Result<Vec<CurrencyFigures>, Error> {
        self.price_for(market, portfolio)?.margin(portfolio)
    }
}

impl PricedMarket {
    fn new(
        engine: Engine,
        market: Arc<MarketSnapshot>,
        arrays: RiskArrays,
        liquidity: BTreeMap<Currency, UnderlyingLiquidity>,
    ) -> PricedMarket {
        let methodology = engine.methodology();
        let slots: Vec<UnderlyingSlot> = (arrays.scenario_sets().iter())
            .map(|(currency, set)| slot(methodology, &market, &liquidity, *currency, set))
            .collect();
        let mut unit_currencies: Vec<Currency> =
            (0..arrays.instruments().len()).map(|i| arrays.info(i).currency).collect();
        unit_currencies.sort();
        unit_currencies.dedup();
        let (facts, unit_keys) = row_tables(methodology, &arrays, &slots, &unit_currencies);
        let known = (methodology.collateral.keys().copied())
            .chain(market.usd_prices().keys().copied())
            .chain(market.underlyings().keys().copied());
        let mut currencies: Vec<_> = known
            .chain([Currency::USD])
            .map(|c| (c, Tender::new(methodology, &market, &slots, c)))
            .collect();
        currencies.sort_by_key(|c| c.0);
        currencies.dedup_by_key(|c| c.0);
        let correlations = slots
            .iter()
            .flat_map(|a| slots.iter().map(move |b| (a.currency, b.currency)))
            .map(|(a, b)| correlation(&methodology.offsets, a, b))
            .collect();
        let vector_offsets = std::iter::once(0)
            .chain(slots.iter().scan(0, |at, slot| {
                *at += slot.set.len();
                Some(*at)
            }))
            .collect();
        let mut priced = PricedMarket {
            engine,
            market,
            arrays,
            liquidity,
            slots,
            facts,
            unit_keys,
            unit_currencies,
            currencies,
            correlations,
            vector_offsets,
            nonlinear: None,
        };
        priced.nonlinear = priced.nonlinear_reason();
        priced
    }

    /// The same market with every risk-array row replaced by its Greek approximation (delta,
    /// gamma, vega and theta from the base), for the report's comparison with full revaluation.
    ///
    /// # Errors
    /// As [`RiskArrays::greek_approximation`].
    pub fn greek_approximation(&self) -> Result<PricedMarket, Error> {
        let approximated = self.arrays.greek_approximation(self.methodology(), &self.market)?;
        let engine = self.engine.clone();
        Ok(PricedMarket::new(
            engine,
            Arc::clone(&self.market),
            approximated,
            self.liquidity.clone(),
        ))
    }

    /// The engine (and so the methodology) the market was priced for.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The methodology.
    #[must_use]
    pub fn methodology(&self) -> &Methodology {
        self.engine.methodology()
    }

    /// The market snapshot.
    #[must_use]
    pub fn market(&self) -> &Arc<MarketSnapshot> {
        &self.market
    }

    /// The risk arrays of the universe.
    #[must_use]
    pub fn arrays(&self) -> &RiskArrays {
        &self.arrays
    }

    /// Market liquidity per underlying (the friction add-on's volumes).
    #[must_use]
    pub fn liquidity(&self) -> &BTreeMap<Currency, UnderlyingLiquidity> {
        &self.liquidity
    }

    /// Resolves a portfolio against the risk arrays.
    ///
    /// # Errors
    /// `UnknownInstrument` naming the first position whose instrument is not in the universe.
    pub fn resolve(&self, portfolio: &Portfolio) -> Result<ResolvedAccount, Error> {
        let mut out = ResolvedAccount::default();
        let balances = portfolio.balances().iter().map(|(c, m)| (*c, m.to_f64()));
        self.resolve_into(portfolio.positions().iter().copied(), balances, &mut out)?;
        Ok(out)
    }

    /// Resolves positions and balances (currency, amount) into `out`, a buffer the caller
    /// reuses: rows sorted by row, balances in the order given (a map's: sorted by currency),
    /// the entry prices of futures and perpetuals (an option's entry is its premium, already
    /// paid, and counts for nothing here). The one resolution of the engine, for portfolios and
    /// for a service's stored accounts alike.
    ///
    /// # Errors
    /// `UnknownInstrument` naming the first instrument not in the universe; `out` is then
    /// emptied, never left partial.
    pub fn resolve_into(
        &self,
        positions: impl IntoIterator<Item = Position>,
        balances: impl IntoIterator<Item = (Currency, f64)>,
        out: &mut ResolvedAccount,
    ) -> Result<(), Error> {
        out.positions.clear();
        out.balances.clear();
        out.entries.clear();
        out.fundings.clear();
        for Position { instrument, size, entry, funding } in positions {
            let Some(row) = self.arrays.position(&instrument) else {
                out.positions.clear();
                out.entries.clear();
                out.fundings.clear();
                return Err(Error::new(instrument.to_string(), ErrorKind::UnknownInstrument));
            };
            out.positions.push((row, size));
            if let Some(entry) = entry.filter(|_| !instrument.is_option()) {
                out.entries.push((row, entry));
            }
            if let Some(paid) = funding {
                out.fundings.push((row, paid));
            }
        }
        out.positions.sort_by_key(|(row, _)| *row);
        out.entries.sort_by_key(|(row, _)| *row);
        out.fundings.sort_by_key(|(row, _)| *row);
        out.balances.extend(balances);
        debug_assert!(out.balances.is_sorted_by_key(|b| b.0), "Invariant: balances by currency");
        Ok(())
    }

    /// Figures and details of one resolved account.
    ///
    /// # Errors
    /// As [`PricedMarket::account_into`].
    pub fn account(
        &self,
        account: &ResolvedAccount,
    ) -> Result<(Vec<CurrencyFigures>, AccountDetail), Error> {
        let mut figures = Vec::new();
        let mut detail = AccountDetail::default();
        let mut scratch = Scratch::default();
        self.account_into(account.slices(), &mut scratch, Some(&mut detail), &mut figures)?;
        Ok((figures, detail))
    }

    /// Figures of one resolved account, without details.
    ///
    /// # Errors
    /// As [`PricedMarket::account_into`].
    pub fn figures(&self, account: &ResolvedAccount) -> Result<Vec<CurrencyFigures>, Error> {
        let mut figures = Vec::with_capacity(1);
        let mut scratch = Scratch::default();
        self.account_into(account.slices(), &mut scratch, None, &mut figures)?;
        Ok(figures)
    }

    /// Figures of `portfolio` (resolved, then margined), without details.
    ///
    /// # Errors
    /// As [`PricedMarket::resolve`] and [`PricedMarket::account_into`].
    pub fn margin(&self, portfolio: &Portfolio) -> Result<Vec<CurrencyFigures>, Error> {
        self.figures(&self.resolve(portfolio)?)
    }

    pub(crate) fn tender(&self, currency: Currency) -> Option<&Tender> {
        self.currencies.iter().find(|c| c.0 == currency).map(|c| &c.1)
    }

    /// USD per unit of `currency`, 1 when the market has no price: only the numeraire's own
    /// units (USD, or a settlement currency in segregated margin, whose figures are never
    /// converted) reach this without a price.
    pub(crate) fn usd_price_or_one(&self, currency: Currency) -> f64 {
        self.tender(currency).and_then(|t| t.price).unwrap_or(1.0)
    }
}

/// The scenario slot of `currency`: every underlying of the arrays is one of the market's (the
/// arrays cannot be built otherwise).
fn slot(
    methodology: &Methodology,
    market: &MarketSnapshot,
    liquidity: &BTreeMap<Currency, UnderlyingLiquidity>,
    currency: Currency,
    set: &ScenarioSet,
) -> UnderlyingSlot {
    let Ok(underlying) = market.underlying(currency) else {
        panic!("Invariant: every underlying of the risk arrays is in their market ({currency})")
    };
    // The scale of market impact: 30-day at-the-money volatility, or the market's reference
    // volatility for an underlying without options. Without either, the friction add-on refuses
    // a unit of this underlying rather than invent a number.
    let impact_vol = underlying.impact_vol(30.0 / basics::DAYS_PER_YEAR);
    let candidate: Vec<bool> =
        set.scenarios().iter().map(|s| s.kind != ScenarioKind::Auxiliary).collect();
    UnderlyingSlot {
        currency,
        index: underlying.index(),
        sigma_daily: impact_vol.unwrap_or(0.0) / basics::DAYS_PER_YEAR.sqrt(),
        impact_vol_missing: impact_vol.is_none(),
        gain_fraction: methodology.gain_fraction_for(currency),
        own_add_ons: (methodology.by_underlying.get(&currency))
            .is_some_and(|p| p.add_ons.is_some()),
        all_candidates: candidate.iter().all(|c| *c),
        liquidity: liquidity.get(&currency).copied().unwrap_or_default(),
        set: set.clone(),
        cells: padded(set.len()),
        moves: padded_values(set.scenarios().iter().map(|s| s.spot_move), set.len()),
        weights: padded_values(set.scenarios().iter().map(|s| s.weight), set.len()),
        candidate,
        extended: ExtendedCells::new(methodology, currency, set),
    }
}

/// Each row's facts and unit key (`slot << 16 | unit`). A row's add-on sums follow its
/// underlying's add-ons: the methodology's, unless the underlying has its own.
fn row_tables(
    methodology: &Methodology,
    arrays: &RiskArrays,
    slots: &[UnderlyingSlot],
    unit_currencies: &[Currency],
) -> (Vec<RowFacts>, Vec<u32>) {
    let slot_of = |c: Currency| {
        let Some(slot) = slots.iter().position(|s| s.currency == c) else {
            panic!("Invariant: every instrument's underlying has a scenario slot ({c})")
        };
        slot
    };
    let inputs: Vec<AddOnInputs> =
        slots.iter().map(|s| AddOnInputs::new(methodology.add_ons_for(s.currency))).collect();
    let instruments = arrays.instruments();
    let facts = (instruments.iter().zip(expiry_ranks(instruments)))
        .enumerate()
        .map(|(row, (instrument, expiry))| {
            RowFacts::new(arrays, row, &inputs[slot_of(instrument.underlying())], expiry)
        })
        .collect();
    let unit_keys = (instruments.iter().enumerate())
        .map(|(row, instrument)| {
            let unit = arrays.info(row).currency;
            let Some(unit) = unit_currencies.iter().position(|u| *u == unit) else {
                panic!("Invariant: every row's unit is among the units ({unit})")
            };
            // Both fit 16 bits: at most UNDERLYINGS_MAX slots, and a unit is the numeraire or a
            // settlement currency (an underlying or a quote currency).
            (slot_of(instrument.underlying()) as u32) << 16 | unit as u32
        })
        .collect();
    (facts, unit_keys)
}

/// `len` cells rounded up to whole row blocks.
fn padded(len: usize) -> usize {
    len.next_multiple_of(crate::valuation::ROW_PADDING_CELLS)
}

/// `values` (`len` of them) followed by zeros up to [`padded`]`(len)`.
fn padded_values(values: impl Iterator<Item = f64>, len: usize) -> Vec<f64> {
    let mut out: Vec<f64> = values.collect();
    out.resize(padded(len), 0.0);
    out
}

/// Each instrument's expiry as an index among its underlying's distinct expiries (0 for none):
/// the roll add-on's groups. The risk arrays allow at most `EXPIRIES_MAX` per underlying.
fn expiry_ranks(instruments: &[Instrument]) -> Vec<u16> {
    const _: () = assert!(
        basics::limits::EXPIRIES_MAX + 1 < u16::MAX as usize,
        "an expiry rank fits below u16::MAX, the roll group's 'no group yet' marker"
    );
    let distinct = crate::valuation::distinct_expiries(instruments);
    instruments
        .iter()
        .map(|i| {
            let Some(expiry) = i.expiry() else { return 0 };
            let first = distinct.partition_point(|(u, _)| *u < i.underlying());
            let at = distinct.partition_point(|d| *d < (i.underlying(), expiry));
            // At most EXPIRIES_MAX + 1 (checked above), far below u16::MAX.
            (at - first + 1) as u16
        })
        .collect()
}

/// The correlation the offsets rule assigns to a pair of underlyings.
fn correlation(offsets: &Offsets, a: Currency, b: Currency) -> f64 {
    let Offsets::Correlation { default_correlation, pairs, .. } = offsets else { return 1.0 };
    if a == b {
        return 1.0;
    }
    let key = if a < b { (a, b) } else { (b, a) };
    pairs.get(&key).copied().unwrap_or(*default_correlation)
}
