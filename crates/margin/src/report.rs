//! The full margin report of one portfolio.
//!
//! Beyond the figures: the full per-scenario P&L of every risk unit, the worst scenario, each
//! add-on, attribution by position, the delta-gamma-vega-theta approximation beside the full
//! revaluation (with the difference), the per-position baseline (the capital portfolio margin
//! releases or costs), marginal margin per position and liquidation moves per underlying.

use std::collections::BTreeMap;

use basics::{Currency, Money, Rounding, UnixNanos};
use market::MarketSnapshot;
use methodology::{AddOnKind, ScenarioSet};
use product::{Instrument, Portfolio};

use crate::Error;
use crate::figures::{AccountDetail, CurrencyFigures};
use crate::priced::PricedMarket;
use crate::standard::StandardMargin;
use crate::whatif::{LiquidationPoint, liquidation_points, marginal_margin};

/// Which optional sections to compute.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// The Greek approximation beside full revaluation.
    pub greek_approximation: bool,
    /// The per-position baseline to compare with.
    pub baseline: Option<StandardMargin>,
    /// Marginal margin of each position.
    pub marginal: bool,
    /// Liquidation moves per underlying.
    pub liquidation: bool,
}

/// A currency's requirements and equity as fixed-point money: requirements rounded up, equity
/// rounded down, so that every rounding favours solvency. This is the one place where margin
/// floats become money.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantised {
    /// Initial margin, rounded up.
    pub initial_margin: Money,
    /// Maintenance margin, rounded up.
    pub maintenance_margin: Money,
    /// Equity, rounded down.
    pub equity: Money,
}

impl Quantised {
    /// Quantises `figures`.
    ///
    /// # Errors
    /// `NotFinite` or out-of-range figures (never produced by the engine).
    pub fn of(figures: &CurrencyFigures) -> Result<Quantised, Error> {
        let currency = figures.currency;
        let money = |name: &str, value: f64, rounding| {
            Money::from_f64(value, currency, rounding).map_err(|_| {
                let why = format!(
                    "{value:e} {currency} is beyond the range of fixed-point money (±{:e})",
                    Money::MAX_F64
                );
                Error::new(format!("{currency}.{name}"), crate::ErrorKind::OutOfRange(why))
            })
        };
        let quantised = Quantised {
            initial_margin: money("initial_margin", figures.initial_margin, Rounding::Up)?,
            maintenance_margin: money(
                "maintenance_margin",
                figures.maintenance_margin,
                Rounding::Up,
            )?,
            equity: money("equity", figures.equity, Rounding::Down)?,
        };
        debug_assert!(quantised.initial_margin.to_f64() >= figures.initial_margin - 1e-9);
        Ok(quantised)
    }
}

/// One position of the report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositionLine {
    /// Instrument.
    pub instrument: Instrument,
    /// Signed size.
    pub size: f64,
    /// Value (options) in `currency`.
    pub value: f64,
    /// Currency of the value and of the marginal figures.
    pub currency: Currency,
    /// The price the engine values one unit at, in the instrument's price unit (the forward of
    /// a future, an option's model value in its settlement currency).
    pub mark: f64,
    /// The price its P&L counts from, when known.
    pub entry: Option<f64>,
    /// P&L from the entry to the mark in the settlement currency, when the entry is known: in
    /// equity for a future; for an option, shown only (its premium left the balance at the
    /// trade and its value at the mark is in equity).
    pub unrealised_pnl: Option<f64>,
    /// A perpetual's funding accrued since it was last paid, in the settlement currency (in
    /// equity until a settlement pays it), when its funding index is known.
    pub accrued_funding: Option<f64>,
    /// ∂IM/∂size, when asked for.
    pub marginal_im: Option<f64>,
    /// ∂MM/∂size, when asked for.
    pub marginal_mm: Option<f64>,
    /// Standard (per-position) IM in USD, when a baseline is given.
    pub standard_im: Option<f64>,
    /// Exposure to the underlying's index, in its coins (∂ USD value / ∂ index of the whole
    /// position, an option at its own implied volatility): the coins a hedge would sell.
    pub delta_coins: f64,
    /// ∂ USD value / ∂ implied volatility of the whole position, per vol point (0.01).
    pub vega_usd_per_vol_point: f64,
}

/// The baseline comparison in USD.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// Name and version of the baseline methodology.
    pub methodology: String,
    /// Sum of per-position IMs.
    pub initial_margin: f64,
    /// Sum of per-position MMs.
    pub maintenance_margin: f64,
    /// Portfolio IM converted to USD.
    pub portfolio_initial_margin: f64,
    /// Baseline IM minus portfolio IM: the capital portfolio margin releases (negative: costs).
    pub released: f64,
}

/// The Greek approximation of the same account.
#[derive(Debug, Clone, PartialEq)]
pub struct GreekComparison {
    /// Figures computed from approximated rows.
    pub figures: Vec<CurrencyFigures>,
    /// Their scenario P&L per unit.
    pub detail: AccountDetail,
}

/// Everything about one portfolio's margin.
#[derive(Debug, Clone, PartialEq)]
pub struct MarginReport {
    /// `name@version` of the methodology.
    pub methodology: String,
    /// Valuation time.
    pub valuation: UnixNanos,
    /// Figures per currency.
    pub figures: Vec<CurrencyFigures>,
    /// The same, quantised.
    pub quantised: Vec<Quantised>,
    /// Scenario P&L, attribution and add-ons.
    pub detail: AccountDetail,
    /// Positions.
    pub positions: Vec<PositionLine>,
    /// Scenario sets of the units, by underlying.
    pub scenario_sets: BTreeMap<Currency, ScenarioSet>,
    /// Name of each add-on of the methodology.
    pub add_on_names: Vec<&'static str>,
    /// Greek approximation, when asked for.
    pub greek: Option<GreekComparison>,
    /// Per-position baseline, when asked for.
    pub baseline: Option<Baseline>,
    /// Liquidation moves, when asked for.
    pub liquidation: Vec<LiquidationPoint>,
    /// The instrument of every risk-array row referred to by `detail`.
    pub rows: Vec<Instrument>,
    /// The positions' Greeks per underlying.
    pub greeks: BTreeMap<Currency, Greeks>,
}

impl MarginReport {
    /// The instrument name of a risk-array row of `detail`.
    #[must_use]
    pub fn instrument_name(&self, row: usize) -> String {
        self.rows.get(row).map_or_else(|| format!("row {row}"), ToString::to_string)
    }
}

/// The name of an add-on kind, as reports print it.
#[must_use]
pub fn add_on_name(kind: &AddOnKind) -> &'static str {
    match kind {
        AddOnKind::LiquidationFriction { .. } => "liquidation friction",
        AddOnKind::Concentration { .. } => "concentration",
        AddOnKind::Roll { .. } => "roll",
        AddOnKind::BasisContingency { .. } => "basis contingency",
        AddOnKind::ContractMinimum { .. } => "contract minimum",
        AddOnKind::NakedShortOption { .. } => "naked short options",
        AddOnKind::PerpetualNotional { .. } => "perpetual notional",
        AddOnKind::DeltaShock { .. } => "delta shock",
        AddOnKind::ContractFloor { .. } => "contract floor",
        AddOnKind::OracleConfidence { .. } => "oracle confidence",
        AddOnKind::Depeg { .. } => "stable-coin de-peg",
    }
}

/// The positions' Greeks summed over one underlying.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Greeks {
    /// Exposure to the index, in coins of the underlying.
    pub delta_coins: f64,
    /// The same in USD at the index.
    pub delta_usd: f64,
    /// USD per vol point of implied volatility.
    pub vega_usd_per_vol_point: f64,
}

/// The P&L of `size` units of `instrument` from `entry` to `mark`, in its settlement currency.
fn unrealised(instrument: &Instrument, size: f64, entry: f64, mark: f64) -> f64 {
    if instrument.is_option() {
        size * (mark - entry)
    } else {
        product::delta_one_pnl(instrument, size, entry, mark)
    }
}

/// Adds `size` units of the instrument of `info` to `sum`.
fn add_greeks(sum: &mut Greeks, size: f64, info: &crate::InstrumentInfo) {
    sum.delta_coins += size * info.delta_coins;
    sum.delta_usd += size * info.delta_coins * info.index;
    sum.vega_usd_per_vol_point += size * info.vega_usd * VOL_POINT;
}

/// One vol point: implied volatility is a fraction (0.5 is 50 %), vega is quoted per point.
const VOL_POINT: f64 = 0.01;

/// Computes the full report of `portfolio` on a priced market whose universe holds every
/// instrument of the portfolio (the same figures whatever else the universe holds).
///
/// # Errors
/// Any engine error: unknown instrument, expired option, missing market data, bad collateral.
pub fn margin_report(
    priced: &PricedMarket,
    portfolio: &Portfolio,
    options: &ReportOptions,
) -> Result<MarginReport, Error> {
    let (arrays, market) = (priced.arrays(), priced.market());
    let account = priced.resolve(portfolio)?;
    let (figures, detail) = priced.account(&account)?;
    let quantised = (figures.iter().map(Quantised::of))
        .collect::<Result<_, _>>()
        .map_err(|e| with_largest_position(e, arrays, &account))?;
    let marginal = if options.marginal { marginal_margin(priced, &account)? } else { Vec::new() };
    let standard = options.baseline.as_ref().map(|b| b.lines(arrays, &account)).unwrap_or_default();
    let mut positions = Vec::with_capacity(portfolio.positions().len());
    let mut greeks: BTreeMap<Currency, Greeks> = BTreeMap::new();
    for p in portfolio.positions() {
        let Some(row) = arrays.position(&p.instrument) else {
            panic!("Invariant: a resolved portfolio's instruments have rows");
        };
        let info = arrays.info(row);
        let (size, mark) = (p.size, info.mark);
        let unrealised_pnl = p.entry.map(|entry| unrealised(&p.instrument, size, entry, mark));
        positions.push(PositionLine {
            instrument: p.instrument,
            size,
            value: size * arrays.base(row),
            currency: arrays.info(row).currency,
            mark,
            entry: p.entry,
            unrealised_pnl,
            accrued_funding: (p.funding.zip(info.funding_index))
                .map(|(paid, index)| product::funding_due(size, paid, index)),
            marginal_im: marginal.iter().find(|m| m.0 == row).map(|m| m.1),
            marginal_mm: marginal.iter().find(|m| m.0 == row).map(|m| m.2),
            standard_im: standard.iter().find(|l| l.row == row).map(|l| l.initial_margin),
            delta_coins: size * info.delta_coins,
            vega_usd_per_vol_point: size * info.vega_usd * VOL_POINT,
        });
        add_greeks(greeks.entry(p.instrument.underlying()).or_default(), size, info);
    }
    let greek = if options.greek_approximation {
        let (figures, detail) = priced.greek_approximation()?.account(&account)?;
        Some(GreekComparison { figures, detail })
    } else {
        None
    };
    let baseline = match &options.baseline {
        Some(b) => Some(baseline(b, arrays, &account, market, &figures)?),
        None => None,
    };
    let liquidation =
        if options.liquidation { liquidation_points(priced, portfolio)? } else { Vec::new() };
    let methodology = priced.methodology();
    Ok(MarginReport {
        methodology: format!("{}@{}", methodology.name, methodology.version),
        valuation: market.valuation(),
        figures,
        quantised,
        detail,
        positions,
        scenario_sets: arrays.scenario_sets().clone(),
        add_on_names: methodology.add_ons.iter().map(|a| add_on_name(&a.kind)).collect(),
        greek,
        baseline,
        liquidation,
        rows: arrays.instruments().to_vec(),
        greeks,
    })
}

/// `error` with the account's largest position (by USD notional) named: a figure beyond the
/// range of money comes from a position sized beyond any market, and the holder needs to know
/// which.
fn with_largest_position(
    error: Error,
    arrays: &crate::RiskArrays,
    account: &crate::ResolvedAccount,
) -> Error {
    let notional = |&(row, size): &(usize, f64)| (size * arrays.info(row).notional_usd).abs();
    let largest = account.positions.iter().max_by(|a, b| notional(a).total_cmp(&notional(b)));
    let Some(&(row, size)) = largest else { return error };
    let kind = match error.kind {
        crate::ErrorKind::OutOfRange(why) => crate::ErrorKind::OutOfRange(format!(
            "{why}; the largest position is {} (size {size:e})",
            arrays.instruments()[row]
        )),
        other => other,
    };
    Error { kind, ..error }
}

/// An account's figures summed over its currency lines in USD (each line at its currency's
/// USD price), with the scenario behind the largest line's loss: what a side-by-side comparison
/// of methodologies shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsdFigures {
    /// Initial margin.
    pub initial_margin: f64,
    /// Maintenance margin.
    pub maintenance_margin: f64,
    /// Scan loss after offsets.
    pub scan_loss: f64,
    /// Weighted add-ons in the initial margin.
    pub add_ons_im: f64,
    /// What set the largest line's scan loss (in USD), if any line has one.
    pub worst: Option<crate::Worst>,
}

impl UsdFigures {
    /// The sum of `figures` on `market`.
    ///
    /// # Errors
    /// `MissingMarketData` for a line whose currency has no USD price.
    pub fn of(figures: &[CurrencyFigures], market: &MarketSnapshot) -> Result<UsdFigures, Error> {
        let mut out = UsdFigures {
            initial_margin: 0.0,
            maintenance_margin: 0.0,
            scan_loss: 0.0,
            add_ons_im: 0.0,
            worst: None,
        };
        let mut largest = 0.0;
        for f in figures {
            let usd = market.usd_price(f.currency).map_err(|e| {
                let kind = crate::ErrorKind::MissingMarketData(e.to_string());
                Error::new(f.currency.to_string(), kind)
            })?;
            out.initial_margin += f.initial_margin * usd;
            out.maintenance_margin += f.maintenance_margin * usd;
            out.scan_loss += f.scan_loss * usd;
            out.add_ons_im += f.add_ons_im * usd;
            if f.worst.is_some() && f.scan_loss * usd > largest {
                largest = f.scan_loss * usd;
                out.worst = f.worst;
            }
        }
        Ok(out)
    }
}

fn baseline(
    standard: &StandardMargin,
    arrays: &crate::RiskArrays,
    account: &crate::ResolvedAccount,
    market: &MarketSnapshot,
    figures: &[CurrencyFigures],
) -> Result<Baseline, Error> {
    let (im, mm) = standard.totals(arrays, account);
    let portfolio_im = UsdFigures::of(figures, market)?.initial_margin;
    Ok(Baseline {
        methodology: format!("{}@{}", standard.name, standard.version),
        initial_margin: im,
        maintenance_margin: mm,
        portfolio_initial_margin: portfolio_im,
        released: im - portfolio_im,
    })
}
