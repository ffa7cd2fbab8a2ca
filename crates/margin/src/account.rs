//! Account margin: the sparse aggregation of risk-array rows, then collateral, offsets, add-ons.
//!
//! One function, [`Engine::account_into`], computes an account's figures; the single-account
//! report and the bulk refresh both call it, so they cannot disagree. It allocates nothing when
//! given warm [`Scratch`] space, which is what lets the bulk refresh run at memory speed.
//!
//! A *risk unit* is one underlying in one currency: the scenarios of BTC, in USD (cross margin)
//! or in BTC (segregated margin). Positions are sorted by instrument, so each unit's positions are
//! contiguous.

use std::collections::BTreeMap;

use basics::Currency;
use market::MarketSnapshot;
use scenario::{
    AddOnKind, CollateralRule, ExtremeDampener, Methodology, Numeraire, Offsets, ScenarioKind,
    ScenarioSet,
};

use crate::addons::{
    AddOnInputs, RollGroup, RowFacts, UnderlyingLiquidity, UnitSums, UnitView, add_on_value_with,
};
use crate::engine::Engine;
use crate::feeds::{FeedData, confidence_charge};
use crate::valuation::RiskArrays;
use crate::{Error, ErrorKind};

/// Most risk units (underlying × currency) in one account.
pub const UNITS_MAX: usize = 256;

/// The scenario that set a currency's loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worst {
    /// Underlying of the unit with the largest loss.
    pub underlying: Currency,
    /// Index in that underlying's scenario set; equal to the set's length when a competing
    /// contingency (Derive's forward contingency) set the loss.
    pub scenario: usize,
}

/// An account's margin in one currency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurrencyFigures {
    /// Currency of every figure.
    pub currency: Currency,
    /// Mark-to-market equity: collateral plus option values.
    pub equity: f64,
    /// Worst scenario loss after cross-underlying offsets (>= 0).
    pub scan_loss: f64,
    /// Weighted sum of add-ons in the initial margin.
    pub add_ons_im: f64,
    /// Weighted sum of add-ons in the maintenance margin.
    pub add_ons_mm: f64,
    /// Collateral haircuts in the initial margin.
    pub haircut_im: f64,
    /// Collateral haircuts in the maintenance margin.
    pub haircut_mm: f64,
    /// Initial margin requirement.
    pub initial_margin: f64,
    /// Maintenance margin requirement.
    pub maintenance_margin: f64,
    /// The scenario behind the scan loss, if any unit exists.
    pub worst: Option<Worst>,
}

impl CurrencyFigures {
    /// All-zero figures in `currency`.
    #[must_use]
    pub fn empty(currency: Currency) -> CurrencyFigures {
        CurrencyFigures {
            currency,
            equity: 0.0,
            scan_loss: 0.0,
            add_ons_im: 0.0,
            add_ons_mm: 0.0,
            haircut_im: 0.0,
            haircut_mm: 0.0,
            initial_margin: 0.0,
            maintenance_margin: 0.0,
            worst: None,
        }
    }
}

/// One risk unit's scenario P&L, kept when a caller asks for details.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitDetail {
    /// Underlying.
    pub underlying: Currency,
    /// Currency of the P&L.
    pub currency: Currency,
    /// Weighted scenario P&L (auxiliary scenarios included, unweighted gains reduced).
    pub pnl: Vec<f64>,
    /// Index of the worst scenario.
    pub worst: usize,
    /// Loss of the unit before offsets.
    pub loss: f64,
    /// Each position's contribution to the P&L of the worst scenario: (row, contribution).
    pub attribution: Vec<(usize, f64)>,
    /// Collateral's contribution to the worst scenario.
    pub collateral_at_worst: f64,
}

/// One add-on's value for one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct AddOnLine {
    /// Index of the add-on in the methodology.
    pub index: usize,
    /// Underlying of the unit.
    pub underlying: Currency,
    /// Currency of the value.
    pub currency: Currency,
    /// Value before weights.
    pub value: f64,
}

/// Details of an account's computation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountDetail {
    /// Every risk unit.
    pub units: Vec<UnitDetail>,
    /// Every add-on of every unit.
    pub add_ons: Vec<AddOnLine>,
}

/// Reusable buffers for [`Engine::account_into`].
#[derive(Debug, Default)]
pub struct Scratch {
    pnl: Vec<f64>,
    starts: Vec<usize>,
    units: Vec<UnitSummary>,
    balances: Vec<Collateral>,
}

#[derive(Debug, Clone, Copy)]
struct UnitSummary {
    slot: usize,
    currency: Currency,
    start: usize,
    end: usize,
    pnl_start: usize,
    loss: f64,
    worst: usize,
    direction: f64,
    sums: UnitSums,
    /// Σ size · base value of the unit's positions (their contribution to equity).
    value: f64,
}

/// A balance with everything the computation needs about its currency.
#[derive(Debug, Clone, Copy)]
struct Collateral {
    currency: Currency,
    amount: f64,
    /// USD per unit (cross margin) or 1 (segregated margin).
    price: f64,
    /// Haircut on its value in the maintenance margin.
    mm_haircut: f64,
    /// Haircut in the initial margin on top of the maintenance haircut.
    im_haircut: f64,
    /// Slot of the underlying when the currency is one and moves with it.
    shocked_slot: Option<usize>,
}

/// A currency as collateral under one methodology and market. A context resolves it once for
/// every currency it knows, so that each balance of each account copies a few numbers instead
/// of looking up and copying the whole rule.
#[derive(Debug, Clone, Copy)]
struct Tender {
    /// USD per unit, when the market has it.
    price: Option<f64>,
    /// (maintenance haircut, initial haircut on top); `None`: not accepted as collateral.
    haircuts: Option<(f64, f64)>,
    /// The slot whose scenarios move it: risk-cancelling collateral in cross margin.
    shocked_slot: Option<usize>,
}

impl Tender {
    fn new(
        methodology: &Methodology,
        market: &MarketSnapshot,
        slots: &[UnderlyingSlot<'_>],
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
struct UnderlyingSlot<'a> {
    currency: Currency,
    index: f64,
    /// Daily at-the-money volatility, `σ / √365`, the friction add-on's impact scale.
    sigma_daily: f64,
    /// Fraction of a unit's aggregated gains that counts.
    gain_fraction: f64,
    /// Whether the underlying has add-ons of its own.
    own_add_ons: bool,
    all_candidates: bool,
    liquidity: UnderlyingLiquidity,
    set: &'a ScenarioSet,
    /// Cells of a unit's P&L: the set's scenarios rounded up to whole row blocks, like the
    /// padded rows.
    cells: usize,
    /// Spot move per scenario, zero in the padding.
    moves: Vec<f64>,
    /// Weight per scenario, zero in the padding.
    weights: Vec<f64>,
    candidate: Vec<bool>,
    /// Deribit's extended-table treatment of the extreme cells, when the methodology has one.
    extended: Option<ExtendedCells>,
}

/// An extreme dampener with its per-scenario constants, computed once per underlying.
struct ExtendedCells {
    dampener: ExtremeDampener,
    /// (scenario index, extreme move `m`, edge move `e` of the grid on the same side).
    cells: Vec<(usize, f64, f64)>,
}

impl ExtendedCells {
    fn new(methodology: &Methodology, underlying: Currency, set: &ScenarioSet) -> Option<Self> {
        let spec = methodology.scenario_spec(underlying);
        let extreme = spec.extreme.as_ref()?;
        let dampener = extreme.dampener.clone()?;
        // The generated extremes come first among the extreme-kind scenarios, in their order.
        let cells = set
            .scenarios()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == ScenarioKind::Extreme)
            .take(extreme.moves.len())
            .filter_map(|(i, s)| Some((i, s.spot_move, spec.price_grid.edge(s.spot_move)?)))
            .collect();
        Some(ExtendedCells { dampener, cells })
    }

    /// Applies the treatment to a unit's weighted P&L: coin P&L converted at the edge price,
    /// the allowance `amount · (|m|/|e| − 1)⁺` added, gains clipped to zero.
    /// `coin_index` is the underlying's index when the unit's currency is the underlying itself;
    /// `unit_usd` is the USD price of the unit's currency otherwise.
    fn apply(&self, pnl: &mut [f64], currency: Currency, coin_index: Option<f64>, unit_usd: f64) {
        let amount = self.dampener.amount_for(currency);
        for &(s, m, e) in &self.cells {
            let steps = ((m / e).abs().max(1.0)) - 1.0;
            let (convert, price) = match coin_index {
                Some(index) if self.dampener.convert_at_edge => {
                    ((1.0 + m) / (1.0 + e), index * (1.0 + e))
                }
                Some(index) => (1.0, index * (1.0 + m)),
                None => (1.0, unit_usd),
            };
            pnl[s] = (pnl[s] * convert + steps * amount / price).min(0.0);
        }
    }
}

/// Read-only context shared by every account of a refresh: the arrays and market, plus tables
/// precomputed once so that the per-account work does no map lookups.
pub struct Context<'a> {
    /// Risk arrays of every instrument held.
    pub arrays: &'a RiskArrays,
    /// The market the arrays were built on.
    pub market: &'a MarketSnapshot,
    slots: Vec<UnderlyingSlot<'a>>,
    facts: Vec<RowFacts>,
    /// Each row's unit, `slot << 16 | unit`: a 4-byte table that stays in L1, so the walk finds
    /// where a unit ends without waiting for the row's facts to arrive from further out.
    unit_keys: Vec<u32>,
    units: Vec<Currency>,
    /// Every currency the methodology or market names, a handful of entries: a linear scan
    /// beats a map.
    currencies: Vec<(Currency, Tender)>,
    /// Correlation between slots `a` and `b` at `a * slots + b` (1 on the diagonal).
    correlations: Vec<f64>,
    /// Feed confidences for the oracle-confidence add-on (empty: full confidence).
    feeds: FeedData,
}

impl<'a> Context<'a> {
    /// Prepares the shared tables for `engine` on `arrays` built from `market`.
    #[must_use]
    pub fn new(
        engine: &Engine,
        arrays: &'a RiskArrays,
        market: &'a MarketSnapshot,
        liquidity: &BTreeMap<Currency, UnderlyingLiquidity>,
    ) -> Context<'a> {
        let slots: Vec<UnderlyingSlot<'a>> = arrays
            .scenario_sets()
            .iter()
            .map(|(currency, set)| UnderlyingSlot {
                currency: *currency,
                index: market.underlying(*currency).map_or(1.0, market::UnderlyingMarket::index),
                sigma_daily: reference_vol(market, *currency) / crate::addons::DAYS_PER_YEAR.sqrt(),
                gain_fraction: engine.methodology().gain_fraction_for(*currency),
                own_add_ons: (engine.methodology().by_underlying.get(currency))
                    .is_some_and(|p| p.add_ons.is_some()),
                all_candidates: set.scenarios().iter().all(|s| s.kind != ScenarioKind::Auxiliary),
                liquidity: liquidity.get(currency).copied().unwrap_or_default(),
                set,
                cells: padded(set.len()),
                moves: padded_values(set.scenarios().iter().map(|s| s.spot_move), set.len()),
                weights: padded_values(set.scenarios().iter().map(|s| s.weight), set.len()),
                candidate: set
                    .scenarios()
                    .iter()
                    .map(|s| s.kind != ScenarioKind::Auxiliary)
                    .collect(),
                extended: ExtendedCells::new(engine.methodology(), *currency, set),
            })
            .collect();
        let methodology = engine.methodology();
        let mut units: Vec<Currency> =
            arrays.instruments().iter().enumerate().map(|(i, _)| arrays.info(i).unit).collect();
        units.sort();
        units.dedup();
        let (facts, unit_keys) = row_tables(methodology, arrays, &slots, &units);
        let known = methodology
            .collateral
            .keys()
            .copied()
            .chain(market.usd_prices().keys().copied())
            .chain(market.underlyings().keys().copied());
        let mut currencies: Vec<_> = known
            .chain([Currency::USD])
            .map(|c| (c, Tender::new(methodology, market, &slots, c)))
            .collect();
        currencies.sort_by_key(|c| c.0);
        currencies.dedup_by_key(|c| c.0);
        let correlations = slots
            .iter()
            .flat_map(|a| slots.iter().map(move |b| (a.currency, b.currency)))
            .map(|(a, b)| correlation(&methodology.offsets, a, b))
            .collect();
        let feeds = FeedData::default();
        Context { arrays, market, slots, facts, unit_keys, units, currencies, correlations, feeds }
    }

    /// The same context with published feed data (confidences for the oracle-confidence
    /// add-on; the per-expiry rates are already in the risk arrays).
    ///
    /// # Errors
    /// `OutOfRange` for invalid feed data.
    pub fn with_feeds(self, feeds: FeedData) -> Result<Context<'a>, Error> {
        feeds.validate()?;
        Ok(Context { feeds, ..self })
    }

    fn tender(&self, currency: Currency) -> Option<&Tender> {
        self.currencies.iter().find(|c| c.0 == currency).map(|c| &c.1)
    }

    /// USD per unit of `currency`, 1 when the market has no price.
    fn usd_price_or_one(&self, currency: Currency) -> f64 {
        self.tender(currency).and_then(|t| t.price).unwrap_or(1.0)
    }
}

/// Each row's facts and unit key (`slot << 16 | unit`). A row's add-on sums follow its
/// underlying's add-ons: the methodology's, unless the underlying has its own.
fn row_tables(
    methodology: &Methodology,
    arrays: &RiskArrays,
    slots: &[UnderlyingSlot<'_>],
    units: &[Currency],
) -> (Vec<RowFacts>, Vec<u32>) {
    let slot_of = |c: Currency| slots.iter().position(|s| s.currency == c).unwrap_or(0);
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
            let unit = units.iter().position(|u| *u == arrays.info(row).unit).unwrap_or(0);
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
/// the roll add-on's groups. `RiskArrays::build` allows at most `EXPIRIES_MAX` per underlying.
fn expiry_ranks(instruments: &[product::Instrument]) -> Vec<u16> {
    let distinct = crate::valuation::distinct_expiries(instruments);
    instruments
        .iter()
        .map(|i| {
            let Some(expiry) = i.expiry() else { return 0 };
            let first = distinct.partition_point(|(u, _)| *u < i.underlying());
            let at = distinct.partition_point(|d| *d < (i.underlying(), expiry));
            // At most EXPIRIES_MAX + 1, far below u16::MAX (the "no group yet" marker).
            u16::try_from(at - first + 1).unwrap_or(u16::MAX - 1)
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

/// At-the-money 30-day volatility of `underlying` (its nearest slice when shorter), 0.8 without
/// a surface: the scale of market impact.
fn reference_vol(market: &MarketSnapshot, underlying: Currency) -> f64 {
    const VOL_WITHOUT_SURFACE: f64 = 0.8;
    let Ok(u) = market.underlying(underlying) else { return VOL_WITHOUT_SURFACE };
    let surface = u.surface();
    let Some(first) = surface.slices().first() else { return VOL_WITHOUT_SURFACE };
    let years = (30.0 / 365.0_f64).clamp(first.years(), surface.horizon_years());
    surface.implied_vol(0.0, years).unwrap_or(VOL_WITHOUT_SURFACE)
}

impl Engine {
    /// Computes one account: `positions` are (row in `ctx.arrays`, size) sorted by row, and
    /// `balances` are (currency, amount) sorted by currency. Figures per currency are appended
    /// to `out`; details are recorded when `detail` is given.
    ///
    /// # Errors
    /// `CollateralNotAccepted`, `NegativeCollateral`, `MissingMarketData` for a collateral
    /// currency without a price, `TooMany` past [`UNITS_MAX`] units.
    pub fn account_into(
        &self,
        ctx: &Context<'_>,
        positions: &[(usize, f64)],
        balances: &[(Currency, f64)],
        scratch: &mut Scratch,
        mut detail: Option<&mut AccountDetail>,
        out: &mut Vec<CurrencyFigures>,
    ) -> Result<(), Error> {
        self.resolve_balances(ctx, balances, scratch)?;
        Self::collect_units(ctx, positions, scratch)?;
        for u in 0..scratch.units.len() {
            self.unit_pnl(ctx, positions, scratch, u, detail.as_deref_mut())?;
        }
        let first = out.len();
        if self.methodology().numeraire == Numeraire::Usd {
            out.push(CurrencyFigures::empty(Currency::USD));
        } else {
            let currencies = scratch
                .units
                .iter()
                .map(|u| u.currency)
                .chain(scratch.balances.iter().map(|b| b.currency));
            for currency in currencies {
                if !out[first..].iter().any(|f| f.currency == currency) {
                    out.push(CurrencyFigures::empty(currency));
                }
            }
            out[first..].sort_by_key(|f| f.currency);
        }
        for figures in &mut out[first..] {
            self.finish_currency(ctx, positions, scratch, figures, detail.as_deref_mut())?;
        }
        Ok(())
    }

    fn resolve_balances(
        &self,
        ctx: &Context<'_>,
        balances: &[(Currency, f64)],
        scratch: &mut Scratch,
    ) -> Result<(), Error> {
        let methodology = self.methodology();
        let usd = methodology.numeraire == Numeraire::Usd;
        scratch.balances.clear();
        for &(currency, amount) in balances {
            if amount == 0.0 {
                continue;
            }
            let field = || format!("balances.{currency}");
            // Read in place: a copy made here and read back at once stalls on store forwarding.
            let unknown;
            let tender = match ctx.tender(currency) {
                Some(known) => known,
                None => {
                    unknown = Tender::new(methodology, ctx.market, &ctx.slots, currency);
                    &unknown
                }
            };
            let (mm_haircut, im_haircut) = tender
                .haircuts
                .ok_or_else(|| Error::new(field(), ErrorKind::CollateralNotAccepted))?;
            if amount < 0.0 && !methodology.requirement.allow_debt {
                return Err(Error::new(field(), ErrorKind::NegativeCollateral));
            }
            let price = if usd {
                tender.price.ok_or_else(|| {
                    Error::new(
                        field(),
                        ErrorKind::MissingMarketData("a USD price for this currency".into()),
                    )
                })?
            } else {
                1.0
            };
            let shocked_slot = tender.shocked_slot;
            let collateral =
                Collateral { currency, amount, price, mm_haircut, im_haircut, shocked_slot };
            scratch.balances.push(collateral);
        }
        Ok(())
    }

    /// Finds the contiguous runs of positions per unit (plus units for risk-cancelling coin
    /// collateral without positions) and lays out their P&L space. This is the one walk over the
    /// positions: units, row starts, add-on sums and option values.
    fn collect_units(
        ctx: &Context<'_>,
        positions: &[(usize, f64)],
        scratch: &mut Scratch,
    ) -> Result<(), Error> {
        scratch.units.clear();
        scratch.starts.clear();
        let mut pnl_len = 0;
        let mut i = 0;
        while let Some(&(first, _)) = positions.get(i) {
            let key = ctx.unit_keys[first];
            let start = i;
            let mut sums = UnitSums::default();
            let mut roll = RollGroup::default();
            let mut value = 0.0;
            while let Some(&(row, size)) = positions.get(i) {
                if ctx.unit_keys[row] != key {
                    break;
                }
                let f = &ctx.facts[row];
                sums.add(f, size, &mut roll);
                value += size * f.base;
                scratch.starts.push(f.start as usize);
                i += 1;
            }
            if scratch.units.len() >= UNITS_MAX {
                return Err(Error::new("positions", ErrorKind::TooMany { limit: UNITS_MAX }));
            }
            let slot = (key >> 16) as usize;
            sums.finish(&roll, ctx.slots[slot].index);
            scratch.units.push(UnitSummary {
                slot,
                currency: ctx.units[(key & 0xffff) as usize],
                start,
                end: i,
                pnl_start: pnl_len,
                loss: 0.0,
                worst: 0,
                direction: 0.0,
                sums,
                value,
            });
            pnl_len += ctx.slots[slot].cells;
        }
        Self::collateral_units(ctx, positions.len(), scratch, &mut pnl_len)?;
        // Every cell is written before it is read (accumulated or zeroed per unit), so the
        // buffer only grows; it is not cleared per account.
        if scratch.pnl.len() < pnl_len {
            scratch.pnl.resize(pnl_len, 0.0);
        }
        Ok(())
    }

    /// Units for risk-cancelling coin collateral whose underlying has no positions: the coins
    /// still move with their underlying (cross margin only).
    fn collateral_units(
        ctx: &Context<'_>,
        end: usize,
        scratch: &mut Scratch,
        pnl_len: &mut usize,
    ) -> Result<(), Error> {
        for b in 0..scratch.balances.len() {
            let Some(slot) = scratch.balances[b].shocked_slot else { continue };
            if scratch.units.iter().any(|u| u.slot == slot) {
                continue;
            }
            if scratch.units.len() >= UNITS_MAX {
                return Err(Error::new("positions", ErrorKind::TooMany { limit: UNITS_MAX }));
            }
            let sums = UnitSums::default();
            let unit = UnitSummary {
                slot,
                currency: Currency::USD,
                start: end,
                end,
                pnl_start: *pnl_len,
                loss: 0.0,
                worst: 0,
                direction: 0.0,
                sums,
                value: 0.0,
            };
            scratch.units.push(unit);
            *pnl_len += ctx.slots[slot].cells;
        }
        Ok(())
    }

    fn unit_pnl(
        &self,
        ctx: &Context<'_>,
        positions: &[(usize, f64)],
        scratch: &mut Scratch,
        u: usize,
        detail: Option<&mut AccountDetail>,
    ) -> Result<(), Error> {
        let Scratch { pnl, starts, units, balances } = scratch;
        let unit = &mut units[u];
        let slot = &ctx.slots[unit.slot];
        let held = &positions[unit.start..unit.end];
        let cells = &mut pnl[unit.pnl_start..unit.pnl_start + slot.cells];
        let len = slot.set.len();
        if self.grouped() {
            cells.fill(0.0);
            self.grouped_pnl(ctx, held, slot.set, &mut cells[..len]);
        } else {
            accumulate(cells, held, ctx.arrays.all_rows(), &starts[unit.start..unit.end]);
        }
        let collateral: f64 = balances
            .iter()
            .filter(|b| b.shocked_slot == Some(unit.slot))
            .map(|b| b.amount * b.price)
            .sum();
        let (worst_pnl, worst) =
            if slot.extended.is_none() && slot.gain_fraction == 1.0 && slot.all_candidates {
                weigh_and_find_worst(cells, len, (&slot.moves, &slot.weights), collateral)
            } else {
                Self::weigh_and_find_worst_generally(
                    ctx,
                    slot,
                    unit.currency,
                    &mut cells[..len],
                    collateral,
                )
            };
        if !worst_pnl.is_finite() {
            return Err(Error::new(
                slot.currency.to_string(),
                ErrorKind::NotFinite("scenario P&L".into()),
            ));
        }
        let loss = (-worst_pnl).max(0.0);
        unit.loss = loss;
        unit.worst = worst;
        unit.direction = slot.moves[worst].signum();
        if let Some(detail) = detail {
            let record =
                WorstRecord { slot: unit.slot, currency: unit.currency, worst, loss, collateral };
            record_unit(ctx, held, &cells[..len], &record, detail);
        }
        Ok(())
    }

    /// [`weigh_and_find_worst`] for everything else: the extended table's treatment of extreme
    /// cells, a kept fraction of gains, scenarios that are not candidates for the worst.
    fn weigh_and_find_worst_generally(
        ctx: &Context<'_>,
        slot: &UnderlyingSlot<'_>,
        currency: Currency,
        pnl: &mut [f64],
        collateral: f64,
    ) -> (f64, usize) {
        for ((cell, m), w) in pnl.iter_mut().zip(&slot.moves).zip(&slot.weights) {
            *cell = (*cell + collateral * m) * w;
        }
        if let Some(extended) = &slot.extended {
            let coin = (currency == slot.currency).then_some(slot.index);
            let unit_usd = ctx.usd_price_or_one(currency);
            extended.apply(pnl, currency, coin, unit_usd);
        }
        let gain_fraction = slot.gain_fraction;
        if gain_fraction != 1.0 {
            for cell in pnl.iter_mut() {
                *cell *= if *cell > 0.0 { gain_fraction } else { 1.0 };
            }
        }
        let worst_pnl = pnl
            .iter()
            .zip(&slot.candidate)
            .filter(|(_, c)| **c)
            .map(|(p, _)| *p)
            .fold(f64::INFINITY, f64::min);
        let worst = (0..pnl.len()).find(|&s| slot.candidate[s] && pnl[s] == worst_pnl).unwrap_or(0);
        (worst_pnl, worst)
    }

    /// Derive-style aggregation: option values are summed per expiry, transformed (static
    /// discount; absolute value in skew scenarios), and only then turned into P&L.
    fn grouped_pnl(
        &self,
        ctx: &Context<'_>,
        held: &[(usize, f64)],
        set: &ScenarioSet,
        pnl: &mut [f64],
    ) {
        let aggregation = self.methodology().aggregation;
        let mut start = 0;
        while start < held.len() {
            let info = ctx.arrays.info(held[start].0);
            if info.strike.is_none() {
                let (row, size) = held[start];
                for (cell, value) in pnl.iter_mut().zip(ctx.arrays.row(row)) {
                    *cell += size * value;
                }
                start += 1;
                continue;
            }
            let years = info.years;
            let end = start
                + held[start..]
                    .iter()
                    .take_while(|(r, _)| {
                        ctx.arrays.info(*r).strike.is_some() && ctx.arrays.info(*r).years == years
                    })
                    .count();
            let group = &held[start..end];
            let mtm: f64 = group.iter().map(|&(row, size)| size * ctx.arrays.base(row)).sum();
            let rate = info.rate;
            for (s, (cell, scenario)) in pnl.iter_mut().zip(set.scenarios()).enumerate() {
                let value: f64 = group
                    .iter()
                    .map(|&(row, size)| size * (ctx.arrays.base(row) + ctx.arrays.row(row)[s]))
                    .sum();
                let discounted = aggregation.static_discount.map_or(value, |d| {
                    let factor = if value >= 0.0 {
                        d.long_base * (-years * (rate * d.long_rate_mult + d.long_rate_add)).exp()
                    } else {
                        let undo_rate = (rate * years).exp();
                        undo_rate.min(
                            d.short_base
                                / (-years * (rate * d.short_rate_mult + d.short_rate_add)).exp(),
                        )
                    };
                    value * factor
                });
                let contribution = discounted - mtm;
                let skew = matches!(scenario.kind, ScenarioKind::Skew(_));
                *cell += if skew && aggregation.skew_absolute {
                    -contribution.abs()
                } else {
                    contribution
                };
            }
            start = end;
        }
    }

    fn finish_currency(
        &self,
        ctx: &Context<'_>,
        positions: &[(usize, f64)],
        scratch: &Scratch,
        figures: &mut CurrencyFigures,
        mut detail: Option<&mut AccountDetail>,
    ) -> Result<(), Error> {
        let methodology = self.methodology();
        let currency = figures.currency;
        let units = || scratch.units.iter().filter(move |u| u.currency == currency);
        let scan = combine_losses(
            &methodology.offsets,
            &ctx.correlations,
            ctx.slots.len(),
            &scratch.units,
            currency,
        );
        let worst = units()
            .max_by(|a, b| a.loss.total_cmp(&b.loss).then(b.slot.cmp(&a.slot)))
            .map(|u| Worst { underlying: ctx.slots[u.slot].currency, scenario: u.worst });
        let unit_usd = if currency == Currency::USD { 1.0 } else { ctx.usd_price_or_one(currency) };
        let mut add_ons = AddOnTotals { im: 0.0, mm: 0.0, scan, worst };
        for unit in units() {
            self.unit_add_ons(ctx, positions, unit, unit_usd, &mut add_ons, detail.as_deref_mut())?;
        }
        self.collateral_confidence(ctx, scratch, currency, &mut add_ons);
        let AddOnTotals { im: add_im, mm: add_mm, scan, worst } = add_ons;
        let (equity, haircut_im, haircut_mm) = equity(scratch, currency, methodology.numeraire);
        let requirement = methodology.requirement;
        *figures = CurrencyFigures {
            currency,
            equity,
            scan_loss: scan,
            add_ons_im: add_im,
            add_ons_mm: add_mm,
            haircut_im,
            haircut_mm,
            initial_margin: requirement.im_loss_factor * scan + add_im + haircut_im,
            maintenance_margin: requirement.mm_loss_factor * scan + add_mm + haircut_mm,
            worst,
        };
        if !(figures.initial_margin.is_finite()
            && figures.maintenance_margin.is_finite()
            && equity.is_finite())
        {
            return Err(Error::new(
                currency.to_string(),
                ErrorKind::NotFinite("margin totals".into()),
            ));
        }
        Ok(())
    }
}

/// Weighs a unit's summed P&L in place, `(pnl + collateral · move) · weight` per scenario, and
/// returns the smallest weighted cell with the first scenario that has it: one vectorised pass
/// where every scenario is a candidate and nothing else transforms the cells. The cells are
/// four lanes at a time; the padding beyond the scenarios is weighed (to zero) but never a
/// candidate.
fn weigh_and_find_worst(
    cells: &mut [f64],
    len: usize,
    (moves, weights): (&[f64], &[f64]),
    collateral: f64,
) -> (f64, usize) {
    use wide::f64x4;
    let lane = |v: &[f64]| f64x4::new([v[0], v[1], v[2], v[3]]);
    let whole = len / 4 * 4;
    let collateral4 = f64x4::splat(collateral);
    let mut lanes = f64x4::splat(f64::INFINITY);
    for ((c, m), w) in
        cells[..whole].chunks_exact_mut(4).zip(moves.chunks_exact(4)).zip(weights.chunks_exact(4))
    {
        let weighed = (lane(c) + collateral4 * lane(m)) * lane(w);
        c.copy_from_slice(&weighed.to_array());
        lanes = lanes.fast_min(weighed);
    }
    let lanes = lanes.to_array();
    let mut worst_pnl = lanes[0].min(lanes[1]).min(lanes[2].min(lanes[3]));
    let tail = cells[whole..len].iter_mut().zip(&moves[whole..]).zip(&weights[whole..]);
    for ((cell, m), w) in tail {
        *cell = (*cell + collateral * m) * w;
        worst_pnl = worst_pnl.min(*cell);
    }
    let target = f64x4::splat(worst_pnl);
    let worst = cells[..whole]
        .chunks_exact(4)
        .enumerate()
        .find_map(|(i, c)| {
            let mask = lane(c).simd_eq(target).to_bitmask();
            (mask != 0).then(|| 4 * i + mask.trailing_zeros() as usize)
        })
        .or_else(|| (whole..len).find(|&s| cells[s] == worst_pnl))
        .unwrap_or(0);
    (worst_pnl, worst)
}

/// `pnl[s] = Σ_p size_p · row_p[s]`, summed in position order from zero for every element.
///
/// The hot loop of a bulk refresh. Scenario blocks run outside and positions inside, so each
/// block's sums stay in registers instead of making a round trip through memory per position;
/// rows are zero-padded to whole blocks, so there is no remainder loop. The order of operations
/// per element is the same as a naive loop's, so results are bit-identical to it.
fn accumulate(pnl: &mut [f64], held: &[(usize, f64)], flat: &[f64], starts: &[usize]) {
    const BLOCK: usize = crate::valuation::ROW_PADDING_CELLS;
    // Wide passes first: eight independent four-lane sums keep both FP pipes busy, where one
    // pair of sums would wait on the add latency at every position.
    let mut wide = pnl.chunks_exact_mut(4 * BLOCK);
    let mut offset = 0;
    for out in &mut wide {
        accumulate_pass::<{ 4 * BLOCK }>(out, flat, starts, held, offset);
        offset += 4 * BLOCK;
    }
    for out in wide.into_remainder().chunks_exact_mut(BLOCK) {
        accumulate_pass::<BLOCK>(out, flat, starts, held, offset);
        offset += BLOCK;
    }
}

/// `out = Σ_p size_p · row_p[offset..offset + N]` for N a multiple of 4 (at most 32), with the
/// multiply and the add kept separate (never fused): the same two roundings per term on every
/// build.
#[inline(always)]
fn accumulate_pass<const N: usize>(
    out: &mut [f64],
    flat: &[f64],
    starts: &[usize],
    held: &[(usize, f64)],
    offset: usize,
) {
    use wide::f64x4;
    let mut sums = [f64x4::ZERO; 8];
    let lanes = N / 4;
    for (&start, &(_, size)) in starts.iter().zip(held) {
        // In bounds by construction: rows are padded to whole blocks and `offset + N` never
        // passes the padded length of the unit's rows.
        let values = &flat[start + offset..][..N];
        let scale = f64x4::splat(size);
        for (lane, sum) in sums.iter_mut().enumerate().take(lanes) {
            let v = &values[4 * lane..4 * lane + 4];
            *sum += scale * f64x4::new([v[0], v[1], v[2], v[3]]);
        }
    }
    for (lane, sum) in sums.iter().enumerate().take(lanes) {
        out[4 * lane..4 * lane + 4].copy_from_slice(&sum.to_array());
    }
}

/// Add-on `index` of `slot`'s units came out NaN or infinite; the field names the list it is in.
#[cold]
fn not_finite_add_on(slot: &UnderlyingSlot<'_>, index: usize) -> Error {
    let list = if slot.own_add_ons {
        format!("by_underlying.{}.add_ons", slot.currency)
    } else {
        "add_ons".to_owned()
    };
    Error::new(format!("{list}[{index}]"), ErrorKind::NotFinite(slot.currency.to_string()))
}

/// The add-ons `underlying` has of its own.
#[cold]
#[inline(never)]
fn own_add_ons(methodology: &Methodology, underlying: Currency) -> &[scenario::AddOn] {
    methodology.add_ons_for(underlying)
}

/// Add-ons of one currency, and the scan loss a competing contingency may raise.
struct AddOnTotals {
    im: f64,
    mm: f64,
    scan: f64,
    worst: Option<Worst>,
}

impl Engine {
    /// Adds one unit's add-ons to `totals`. The add-ons are read from the methodology directly
    /// unless the underlying has its own, which are looked up out of line (the lookup inlined
    /// here cost 3 % of a refresh). A competing contingency raises the loss the other add-ons
    /// see (Derive's peg loss multiplies the loss including its forward contingency); without
    /// one this is the unit's loss. IM and MM are summed in registers, in the same order as
    /// into `totals` directly.
    fn unit_add_ons(
        &self,
        ctx: &Context<'_>,
        positions: &[(usize, f64)],
        unit: &UnitSummary,
        unit_usd: f64,
        totals: &mut AddOnTotals,
        mut detail: Option<&mut AccountDetail>,
    ) -> Result<(), Error> {
        let slot = &ctx.slots[unit.slot];
        let view = UnitView {
            held: &positions[unit.start..unit.end],
            arrays: ctx.arrays,
            scenarios: slot.set,
            liquidity: &slot.liquidity,
            index: slot.index,
            sigma_daily: slot.sigma_daily,
            unit_usd,
            underlying: slot.currency,
            feeds: &ctx.feeds,
        };
        let price_of = |c: Currency| ctx.usd_price_or_one(c);
        let methodology = self.methodology();
        let add_ons = if slot.own_add_ons {
            own_add_ons(methodology, slot.currency)
        } else {
            &methodology.add_ons
        };
        let competing = if self.competing() {
            add_ons
                .iter()
                .filter(|a| {
                    matches!(a.kind, AddOnKind::BasisContingency { competes_with_scan: true, .. })
                })
                .map(|a| add_on_value_with(&a.kind, &unit.sums, &view, unit.loss, price_of))
                .fold(unit.loss, f64::max)
        } else {
            unit.loss
        };
        let (mut im, mut mm) = (totals.im, totals.mm);
        for (index, add_on) in add_ons.iter().enumerate() {
            let value = add_on_value_with(&add_on.kind, &unit.sums, &view, competing, price_of);
            if !value.is_finite() {
                return Err(not_finite_add_on(slot, index));
            }
            if let AddOnKind::BasisContingency { competes_with_scan: true, .. } = add_on.kind {
                if value > totals.scan {
                    totals.scan = value;
                    totals.worst =
                        Some(Worst { underlying: slot.currency, scenario: slot.set.len() });
                }
            } else {
                im += add_on.im_weight * value;
                mm += add_on.mm_weight * value;
            }
            if let Some(d) = detail.as_deref_mut() {
                d.add_ons.push(AddOnLine {
                    index,
                    underlying: slot.currency,
                    currency: unit.currency,
                    value,
                });
            }
        }
        (totals.im, totals.mm) = (im, mm);
        Ok(())
    }
}

impl Engine {
    /// The oracle-confidence add-ons' charge on collateral of `currency`'s figures: every
    /// positive balance whose price feed is below the threshold (accounts without units too).
    fn collateral_confidence(
        &self,
        ctx: &Context<'_>,
        scratch: &Scratch,
        currency: Currency,
        totals: &mut AddOnTotals,
    ) {
        if !self.confidence() {
            return;
        }
        let numeraire = self.methodology().numeraire;
        for add_on in &self.methodology().add_ons {
            let AddOnKind::OracleConfidence { threshold, factor } = add_on.kind else { continue };
            let charge: f64 = scratch
                .balances
                .iter()
                .filter(|b| numeraire == Numeraire::Usd || b.currency == currency)
                .filter_map(|b| Some((ctx.feeds.collateral(b.currency)?, b.amount * b.price)))
                .filter(|(_, value)| *value > 0.0)
                .map(|(confidence, value)| confidence_charge(confidence, value, threshold, factor))
                .sum();
            totals.im += add_on.im_weight * charge;
            totals.mm += add_on.mm_weight * charge;
        }
    }
}

/// What [`record_unit`] needs about a unit's worst scenario.
struct WorstRecord {
    slot: usize,
    currency: Currency,
    worst: usize,
    loss: f64,
    collateral: f64,
}

/// Keeps a unit's scenario P&L and its attribution at the worst scenario.
fn record_unit(
    ctx: &Context<'_>,
    held: &[(usize, f64)],
    pnl: &[f64],
    r: &WorstRecord,
    detail: &mut AccountDetail,
) {
    let slot = &ctx.slots[r.slot];
    let weight = slot.weights[r.worst];
    let attribution = held
        .iter()
        .map(|&(row, size)| (row, size * ctx.arrays.row(row)[r.worst] * weight))
        .collect();
    detail.units.push(UnitDetail {
        underlying: slot.currency,
        currency: r.currency,
        pnl: pnl.to_vec(),
        worst: r.worst,
        loss: r.loss,
        attribution,
        collateral_at_worst: r.collateral * slot.moves[r.worst] * weight,
    });
}

/// Equity and haircuts in `currency`: collateral (converted in cross margin, its own currency
/// only in segregated margin) plus the value of options held.
fn equity(scratch: &Scratch, currency: Currency, numeraire: Numeraire) -> (f64, f64, f64) {
    let (mut equity, mut haircut_im, mut haircut_mm) = (0.0, 0.0, 0.0);
    for b in &scratch.balances {
        if numeraire == Numeraire::Settlement && b.currency != currency {
            continue;
        }
        let value = b.amount * b.price;
        equity += value;
        if value > 0.0 {
            haircut_mm += value * b.mm_haircut;
            haircut_im += value * (b.mm_haircut + b.im_haircut);
        }
    }
    equity += scratch.units.iter().filter(|u| u.currency == currency).map(|u| u.value).sum::<f64>();
    (equity, haircut_im, haircut_mm)
}

/// Combines the losses of `currency`'s units according to the offsets rule, with the
/// correlations precomputed per pair of slots.
fn combine_losses(
    offsets: &Offsets,
    correlations: &[f64],
    slots: usize,
    units: &[UnitSummary],
    currency: Currency,
) -> f64 {
    // From −0, like `Iterator::sum`: no units sum to −0 and one unit's loss passes unchanged.
    let mut sum = -0.0;
    for u in units.iter().filter(|u| u.currency == currency) {
        sum += u.loss;
    }
    let Offsets::Correlation { credit_cap, .. } = offsets else { return sum };
    let mut variance = 0.0;
    for a in units.iter().filter(|u| u.currency == currency) {
        let row = &correlations[a.slot * slots..][..slots];
        for b in units.iter().filter(|u| u.currency == currency) {
            let rho = row[b.slot];
            // Without a direction (a volatility or skew scenario) no credit is given.
            let sign = if a.direction == 0.0 || b.direction == 0.0 {
                rho.abs()
            } else {
                rho * a.direction * b.direction
            };
            variance += sign * a.loss * b.loss;
        }
    }
    variance.max(0.0).sqrt().max((1.0 - credit_cap) * sum)
}

#[cfg(test)]
mod tests {
    use super::weigh_and_find_worst;

    /// The vectorised pass against the plain definition: weigh every scenario, take the
    /// smallest cell, report the first scenario that has it. Lengths around the four-lane
    /// blocks, and values drawn from a handful so that ties are common.
    #[test]
    fn weighing_and_the_worst_scenario_match_the_plain_definition() {
        let mut draws = crate::test_draws(0x2545_F491);
        let mut draw = |n: u64| draws(n) as f64;
        for len in [1_usize, 3, 4, 5, 8, 59, 60, 61, 64] {
            for _ in 0..50 {
                let padded = len.next_multiple_of(8);
                let pnl: Vec<f64> = (0..padded).map(|_| draw(7) - 3.0).collect();
                let mut moves: Vec<f64> = (0..len).map(|_| (draw(5) - 2.0) / 10.0).collect();
                let mut weights: Vec<f64> = (0..len).map(|_| 1.0 - draw(3) / 4.0).collect();
                moves.resize(padded, 0.0);
                weights.resize(padded, 0.0);
                let collateral = draw(3) - 1.0;
                let plain: Vec<f64> =
                    (0..len).map(|s| (pnl[s] + collateral * moves[s]) * weights[s]).collect();
                let least = plain.iter().copied().fold(f64::INFINITY, f64::min);
                let first = plain.iter().position(|p| *p == least).unwrap_or(0);
                let mut cells = pnl.clone();
                let found = weigh_and_find_worst(&mut cells, len, (&moves, &weights), collateral);
                assert_eq!(found, (least, first), "length {len}");
                assert_eq!(&cells[..len], &plain[..], "length {len}");
            }
        }
    }
}
