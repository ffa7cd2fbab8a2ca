//! The margin report as JSON (`ballast margin --json`, the service's margin resource).

use std::collections::BTreeMap;

use margin::report::MarginReport;
use methodology::{ScenarioKind, ScenarioSet, SkewKind, VolMove};
use serde::{Deserialize, Serialize};

use crate::format_rfc3339;

/// The report document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportDocument {
    /// `name@version`.
    pub methodology: String,
    /// Valuation time, RFC 3339.
    pub valuation_time: String,
    /// Figures per currency.
    pub currencies: Vec<CurrencyDocument>,
    /// Positions.
    pub positions: Vec<PositionDocument>,
    /// Risk units with their scenario P&L.
    pub units: Vec<UnitDocument>,
    /// Add-on values per unit.
    pub add_ons: Vec<AddOnDocument>,
    /// Greek approximation, when computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greek_approximation: Option<GreekDocument>,
    /// Per-position baseline, when computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineDocument>,
    /// Liquidation moves, when computed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub liquidation: Vec<LiquidationDocument>,
    /// The positions' Greeks per underlying.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub greeks: BTreeMap<String, GreeksDocument>,
}

/// Figures of one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrencyDocument {
    /// Currency.
    pub currency: String,
    /// Equity.
    pub equity: f64,
    /// Scan loss after offsets.
    pub scan_loss: f64,
    /// Add-ons in IM.
    pub add_ons_im: f64,
    /// Add-ons in MM.
    pub add_ons_mm: f64,
    /// Collateral haircuts in IM.
    pub haircut_im: f64,
    /// Collateral haircuts in MM.
    pub haircut_mm: f64,
    /// Initial margin.
    pub initial_margin: f64,
    /// Maintenance margin.
    pub maintenance_margin: f64,
    /// IM as an exact decimal, rounded up to 1e-18.
    pub initial_margin_exact: String,
    /// MM as an exact decimal, rounded up to 1e-18.
    pub maintenance_margin_exact: String,
    /// Equity as an exact decimal, rounded down to 1e-18.
    pub equity_exact: String,
    /// Underlying of the worst unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_underlying: Option<String>,
    /// Index of the worst scenario in that unit; absent when a contingency set the loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_scenario: Option<usize>,
    /// Whether a competing contingency (Derive's forward contingency), not a scenario, set the
    /// loss.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub worst_is_contingency: bool,
}

/// One position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PositionDocument {
    /// Instrument.
    pub instrument: String,
    /// Size.
    pub size: f64,
    /// Value in the unit currency.
    pub value: f64,
    /// Unit currency.
    pub currency: String,
    /// The engine's price of one unit, in the instrument's price unit.
    pub mark: f64,
    /// The price its P&L counts from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<f64>,
    /// P&L from the entry to the mark, in `pnl_currency`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrealised_pnl: Option<f64>,
    /// A perpetual's funding accrued since it was last paid, in `pnl_currency`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accrued_funding: Option<f64>,
    /// The settlement currency, in which P&L is paid.
    pub pnl_currency: String,
    /// ∂IM/∂size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marginal_im: Option<f64>,
    /// ∂MM/∂size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marginal_mm: Option<f64>,
    /// Standard IM in USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_im: Option<f64>,
    /// Exposure to the underlying's index, in its coins.
    #[serde(default)]
    pub delta_coins: f64,
    /// USD per vol point of implied volatility.
    #[serde(default)]
    pub vega_usd_per_vol_point: f64,
}

/// The positions' Greeks summed per underlying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GreeksDocument {
    /// Exposure to the index, in coins of the underlying.
    pub delta_coins: f64,
    /// The same in USD at the index.
    pub delta_usd: f64,
    /// USD per vol point of implied volatility.
    pub vega_usd_per_vol_point: f64,
}

/// A scenario, described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScenarioDocument {
    /// Relative move.
    pub spot_move: f64,
    /// `down`, `none`, `up`.
    pub vol: String,
    /// `regular`, `extreme`, `skew-linear`, `skew-linear-inverse`, `skew-abs`, `auxiliary`.
    pub kind: String,
    /// Weight.
    pub weight: f64,
}

/// One risk unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnitDocument {
    /// Underlying.
    pub underlying: String,
    /// Currency.
    pub currency: String,
    /// Loss before offsets.
    pub loss: f64,
    /// Worst scenario index.
    pub worst: usize,
    /// The scenarios, in order.
    pub scenarios: Vec<ScenarioDocument>,
    /// P&L per scenario.
    pub pnl: Vec<f64>,
    /// Contribution of each position to the worst scenario.
    pub attribution: BTreeMap<String, f64>,
    /// Contribution of collateral to the worst scenario.
    pub collateral_at_worst: f64,
}

/// One add-on value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddOnDocument {
    /// Add-on name.
    pub name: String,
    /// Underlying.
    pub underlying: String,
    /// Currency.
    pub currency: String,
    /// Value before weights.
    pub value: f64,
}

/// Greek approximation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GreekDocument {
    /// Scan loss from approximated rows, per currency.
    pub scan_loss: BTreeMap<String, f64>,
    /// Approximated P&L per unit (same order as `units`).
    pub pnl: Vec<Vec<f64>>,
    /// Largest |full − approximation| per unit.
    pub largest_difference: Vec<f64>,
}

/// Baseline comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BaselineDocument {
    /// Baseline methodology.
    pub methodology: String,
    /// Baseline IM (USD).
    pub initial_margin: f64,
    /// Baseline MM (USD).
    pub maintenance_margin: f64,
    /// Portfolio IM (USD).
    pub portfolio_initial_margin: f64,
    /// Capital released (USD).
    pub released: f64,
}

/// Liquidation moves of one underlying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiquidationDocument {
    /// Underlying.
    pub underlying: String,
    /// Currency tested.
    pub currency: String,
    /// Equity − MM now.
    pub cushion: f64,
    /// Relative move down to the breach.
    pub move_down: Option<f64>,
    /// Relative move up to the breach.
    pub move_up: Option<f64>,
    /// Index at the downward breach.
    pub price_down: Option<f64>,
    /// Index at the upward breach.
    pub price_up: Option<f64>,
}

/// Describes scenario `s` of a set.
#[must_use]
pub fn describe_scenarios(set: &ScenarioSet) -> Vec<ScenarioDocument> {
    set.scenarios()
        .iter()
        .map(|s| ScenarioDocument {
            spot_move: s.spot_move,
            vol: match s.vol {
                VolMove::Down => "down",
                VolMove::None => "none",
                VolMove::Up => "up",
            }
            .into(),
            kind: match s.kind {
                ScenarioKind::Regular => "regular",
                ScenarioKind::Extreme => "extreme",
                ScenarioKind::Skew(SkewKind::Linear) => "skew-linear",
                ScenarioKind::Skew(SkewKind::LinearInverse) => "skew-linear-inverse",
                ScenarioKind::Skew(SkewKind::Absolute) => "skew-abs",
                ScenarioKind::Auxiliary => "auxiliary",
            }
            .into(),
            weight: s.weight,
        })
        .collect()
}

impl ReportDocument {
    /// The document of a report.
    #[must_use]
    pub fn from_report(r: &MarginReport) -> ReportDocument {
        let currencies = currencies(r);
        let units = units(r);
        let greek_approximation = greek(r);
        ReportDocument {
            methodology: r.methodology.clone(),
            valuation_time: format_rfc3339(r.valuation),
            currencies,
            positions: r
                .positions
                .iter()
                .map(|p| PositionDocument {
                    instrument: p.instrument.to_string(),
                    size: p.size,
                    value: p.value,
                    currency: p.currency.to_string(),
                    mark: p.mark,
                    entry: p.entry,
                    unrealised_pnl: p.unrealised_pnl,
                    accrued_funding: p.accrued_funding,
                    pnl_currency: p.instrument.settlement_currency().to_string(),
                    marginal_im: p.marginal_im,
                    marginal_mm: p.marginal_mm,
                    standard_im: p.standard_im,
                    delta_coins: p.delta_coins,
                    vega_usd_per_vol_point: p.vega_usd_per_vol_point,
                })
                .collect(),
            units,
            add_ons: r
                .detail
                .add_ons
                .iter()
                .map(|a| AddOnDocument {
                    name: r.add_on_names.get(a.index).copied().unwrap_or("add-on").to_owned(),
                    underlying: a.underlying.to_string(),
                    currency: a.currency.to_string(),
                    value: a.value,
                })
                .collect(),
            greek_approximation,
            greeks: greeks(r),
            baseline: r.baseline.as_ref().map(|b| BaselineDocument {
                methodology: b.methodology.clone(),
                initial_margin: b.initial_margin,
                maintenance_margin: b.maintenance_margin,
                portfolio_initial_margin: b.portfolio_initial_margin,
                released: b.released,
            }),
            liquidation: r
                .liquidation
                .iter()
                .map(|l| LiquidationDocument {
                    underlying: l.underlying.to_string(),
                    currency: l.currency.to_string(),
                    cushion: l.cushion,
                    move_down: l.move_down,
                    move_up: l.move_up,
                    price_down: l.price_down,
                    price_up: l.price_up,
                })
                .collect(),
        }
    }
}

fn currencies(r: &MarginReport) -> Vec<CurrencyDocument> {
    r.figures
        .iter()
        .zip(&r.quantised)
        .map(|(f, q)| CurrencyDocument {
            currency: f.currency.to_string(),
            equity: f.equity,
            scan_loss: f.scan_loss,
            add_ons_im: f.add_ons_im,
            add_ons_mm: f.add_ons_mm,
            haircut_im: f.haircut_im,
            haircut_mm: f.haircut_mm,
            initial_margin: f.initial_margin,
            maintenance_margin: f.maintenance_margin,
            initial_margin_exact: basics::format_scaled(q.initial_margin.raw()),
            maintenance_margin_exact: basics::format_scaled(q.maintenance_margin.raw()),
            equity_exact: basics::format_scaled(q.equity.raw()),
            worst_underlying: f.worst.map(|w| w.underlying().to_string()),
            worst_scenario: f.worst.and_then(margin::Worst::scenario),
            worst_is_contingency: matches!(f.worst, Some(margin::Worst::Contingency { .. })),
        })
        .collect()
}

fn units(r: &MarginReport) -> Vec<UnitDocument> {
    r.detail
        .units
        .iter()
        .map(|u| UnitDocument {
            underlying: u.underlying.to_string(),
            currency: u.currency.to_string(),
            loss: u.loss,
            worst: u.worst,
            scenarios: r
                .scenario_sets
                .get(&u.underlying)
                .map(describe_scenarios)
                .unwrap_or_default(),
            pnl: u.pnl.clone(),
            attribution: u
                .attribution
                .iter()
                .map(|(row, v)| (r.instrument_name(*row), *v))
                .collect(),
            collateral_at_worst: u.collateral_at_worst,
        })
        .collect()
}

fn greeks(r: &MarginReport) -> BTreeMap<String, GreeksDocument> {
    let document = |g: &margin::report::Greeks| GreeksDocument {
        delta_coins: g.delta_coins,
        delta_usd: g.delta_usd,
        vega_usd_per_vol_point: g.vega_usd_per_vol_point,
    };
    r.greeks.iter().map(|(underlying, g)| (underlying.to_string(), document(g))).collect()
}

fn greek(r: &MarginReport) -> Option<GreekDocument> {
    r.greek.as_ref().map(|g| GreekDocument {
        scan_loss: g.figures.iter().map(|f| (f.currency.to_string(), f.scan_loss)).collect(),
        pnl: g.detail.units.iter().map(|u| u.pnl.clone()).collect(),
        largest_difference: g
            .detail
            .units
            .iter()
            .zip(&r.detail.units)
            .map(|(a, b)| a.pnl.iter().zip(&b.pnl).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max))
            .collect(),
    })
}
