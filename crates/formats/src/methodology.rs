//! Methodology files (TOML): the "standard risk language" as text.
//!
//! A file describes either a portfolio methodology (scenarios, shocks, aggregation, add-ons,
//! collateral, offsets, requirement) or, with `kind = "per-position"`, a standard-margin
//! baseline. `docs/methodology.md` documents every key. [`Profile::hash`] is keccak-256 of the
//! normalised document's compact JSON: defaults written out, lists in their semantic order, maps
//! sorted. Two files that mean the same thing hash the same, whatever their comments, key order
//! or omitted defaults.

use std::collections::BTreeMap;

use basics::Currency;
use margin::standard::{StandardMargin, StandardRates};
use methodology::{
    AddOn, AddOnKind, Aggregation, CollateralRule, ExtremeDampener, ExtremeMoves, ExtremeWeighting,
    Methodology, Numeraire, Offsets, PriceGrid, Requirement, Scenario, ScenarioKind, ScenarioSpec,
    SkewKind, SkewShock, StaticDiscount, UnderlyingParameters, Valuation, VolDynamics, VolMove,
    VolShock, VolShockKind,
};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::Error;

/// A parsed methodology file.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// A portfolio (scenario-based) methodology.
    Portfolio(Box<Methodology>),
    /// A per-position baseline.
    PerPosition(StandardMargin),
}

impl Profile {
    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// `Syntax` for malformed TOML or unknown keys; `Invalid` naming the field otherwise.
    pub fn from_toml(text: &str) -> Result<Profile, Error> {
        let kind: KindProbe = toml::from_str(text).map_err(|e| Error::syntax(e.to_string()))?;
        if kind.kind.as_deref() == Some("per-position") {
            let document: convert::add_ons::StandardDocument =
                toml::from_str(text).map_err(|e| Error::syntax(e.to_string()))?;
            return document.to_domain().map(Profile::PerPosition);
        }
        let document: MethodologyDocument =
            toml::from_str(text).map_err(|e| Error::syntax(e.to_string()))?;
        let methodology = document.to_domain()?;
        methodology.validate().map_err(|e| Error::invalid(e.field, e.kind.to_string()))?;
        Ok(Profile::Portfolio(Box::new(methodology)))
    }

    /// Name of the profile.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Profile::Portfolio(m) => &m.name,
            Profile::PerPosition(s) => &s.name,
        }
    }

    /// Version of the profile.
    #[must_use]
    pub fn version(&self) -> &str {
        match self {
            Profile::Portfolio(m) => &m.version,
            Profile::PerPosition(s) => &s.version,
        }
    }

    /// Description of the profile.
    #[must_use]
    pub fn description(&self) -> &str {
        match self {
            Profile::Portfolio(m) => &m.description,
            Profile::PerPosition(s) => &s.description,
        }
    }

    /// The normalised document's compact JSON: the bytes that are hashed.
    #[must_use]
    pub fn canonical_json(&self) -> Vec<u8> {
        let value = match self {
            Profile::Portfolio(m) => serde_json::to_vec(&MethodologyDocument::from_domain(m)),
            Profile::PerPosition(s) => {
                serde_json::to_vec(&convert::add_ons::StandardDocument::from_domain(s))
            }
        };
        value.unwrap_or_default()
    }

    /// The normalised document as TOML: every default written out, lists in their semantic
    /// order (no comments); reading it back gives the same profile and hash.
    ///
    /// # Errors
    /// `Syntax` if the document cannot be written as TOML.
    pub fn to_toml(&self) -> Result<String, Error> {
        let text = match self {
            Profile::Portfolio(m) => toml::to_string(&MethodologyDocument::from_domain(m)),
            Profile::PerPosition(s) => {
                toml::to_string(&convert::add_ons::StandardDocument::from_domain(s))
            }
        };
        text.map_err(|e| Error::syntax(e.to_string()))
    }

    /// keccak-256 of [`Profile::canonical_json`].
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        Keccak256::digest(self.canonical_json()).into()
    }
}

#[derive(Deserialize)]
struct KindProbe {
    #[serde(default)]
    kind: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

/// `0x`-prefixed lower-case hex of a hash.
#[must_use]
pub fn hash_hex(hash: &[u8; 32]) -> String {
    format!("0x{}", hex(hash))
}

/// A portfolio methodology document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodologyDocument {
    /// `portfolio` (the default).
    #[serde(default = "portfolio_kind")]
    pub kind: String,
    /// Short name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Sources of the rules and numbers.
    #[serde(default)]
    pub sources: Vec<String>,
    /// `usd` or `settlement`.
    pub numeraire: String,
    /// Revaluation settings.
    pub valuation: ValuationDocument,
    /// Default scenarios.
    pub scenarios: ScenariosDocument,
    /// Scenarios by underlying.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scenarios_by_underlying: BTreeMap<String, ScenariosDocument>,
    /// Volatility shock.
    pub vol_shock: VolShockDocument,
    /// Skew shock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew_shock: Option<SkewShockDocument>,
    /// Aggregation.
    #[serde(default)]
    pub aggregation: AggregationDocument,
    /// Add-ons.
    #[serde(default)]
    pub add_ons: Vec<AddOnDocument>,
    /// Collateral rules by currency.
    #[serde(default)]
    pub collateral: BTreeMap<String, CollateralDocument>,
    /// Rule for other currencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collateral_default: Option<CollateralDocument>,
    /// Offsets.
    #[serde(default)]
    pub offsets: OffsetsDocument,
    /// Requirement.
    pub requirement: RequirementDocument,
    /// Parameters set apart for particular underlyings (omitted from the hash when empty, so
    /// files written before the key existed keep their hash).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_underlying: BTreeMap<String, UnderlyingDocument>,
    /// How `ballast calibrate` fitted the parameters (omitted from the hash when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<CalibrationDocument>,
}

/// `[calibration]`: the record `ballast calibrate` writes (docs/calibration.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationDocument {
    /// The coverage of the initial margin aimed at.
    pub target_coverage: f64,
    /// The margin period of risk, in days.
    pub horizon_days: u32,
    /// `none`, `buffer`, `stressed-weight` or `floor`.
    pub anti_procyclicality: String,
    /// The buffer fraction or the stressed weight (with `buffer` and `stressed-weight`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_procyclicality_share: Option<f64>,
    /// Years searched back for the stressed period.
    pub lookback_years: u32,
    /// The surface model's canonical hash.
    pub surface_model: String,
    /// The canonical hash of the methodology the fit started from.
    pub base: String,
    /// The fit of each underlying.
    pub underlyings: BTreeMap<String, UnderlyingCalibrationDocument>,
}

/// `[calibration.underlyings.CODE]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlyingCalibrationDocument {
    /// The history file's name.
    pub history: String,
    /// keccak-256 of its bytes.
    pub history_keccak: String,
    /// First and last bar date of the fit.
    pub fit: [String; 2],
    /// The out-of-sample window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<[String; 2]>,
    /// The stressed period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stressed: Option<[String; 2]>,
    /// Price range down, up and the vol-shock scale before the anti-procyclicality option.
    pub required: [f64; 3],
    /// The price range down written.
    pub price_down: f64,
    /// The price range up written.
    pub price_up: f64,
    /// The scale of the base volatility shock.
    pub vol_scale: f64,
    /// `[exceedances, observations]` of each calibration account in sample.
    pub in_sample: BTreeMap<String, [u32; 2]>,
    /// The same out of sample.
    #[serde(default)]
    pub out_of_sample: BTreeMap<String, [u32; 2]>,
}

/// `[by_underlying.CODE]`: what one underlying sets apart; each key left out keeps the
/// methodology-wide value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlyingDocument {
    /// The underlying's volatility shock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vol_shock: Option<VolShockDocument>,
    /// Fraction of the underlying's aggregated gains kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gain_fraction: Option<f64>,
    /// The underlying's add-ons: the methodology's kinds in the same order, own parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_ons: Option<Vec<AddOnDocument>>,
}

fn portfolio_kind() -> String {
    "portfolio".into()
}

/// `[valuation]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuationDocument {
    /// `sticky-strike`, `sticky-moneyness` or `mark-vol`.
    pub dynamics: String,
    /// Look-ahead in days.
    #[serde(default)]
    pub horizon_days: f64,
    /// Settlement averaging window before expiry, in minutes (omitted from the hash when 0, so
    /// files written before the key existed keep their hash).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub settlement_window_minutes: f64,
    /// Where cross margin converts coin-settled scenario P&L to USD: `scenario` (the shocked
    /// index, the default, omitted from the hash) or `index` (the current index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coin_pnl_at: Option<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// Price moves: an explicit list or an evenly spaced range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PriceMovesDocument {
    /// Explicit relative moves, in order.
    List(Vec<f64>),
    /// `steps_down` moves down to `-down`, zero, `steps_up` moves up to `up`.
    Range {
        /// Largest move down (positive number).
        down: f64,
        /// Largest move up.
        up: f64,
        /// Steps below zero.
        steps_down: u32,
        /// Steps above zero.
        steps_up: u32,
    },
}

/// `[scenarios]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenariosDocument {
    /// Grid price moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_moves: Option<PriceMovesDocument>,
    /// Vol moves at each grid move: `down`, `none`, `up`.
    #[serde(default)]
    pub vol_moves: Vec<String>,
    /// Vol moves at the outermost grid moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_vol_moves: Option<Vec<String>>,
    /// Extreme moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extreme: Option<ExtremeDocument>,
    /// Skew scenarios: `linear`, `abs`.
    #[serde(default)]
    pub skews: Vec<String>,
    /// Scenarios listed one by one.
    #[serde(default)]
    pub explicit: Vec<ScenarioDocument>,
    /// Auxiliary spot moves (add-ons only).
    #[serde(default)]
    pub auxiliary_moves: Vec<f64>,
}

/// `[scenarios.extreme]`: exactly one of `covered_fraction`, `dampening_scale`, `weights`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtremeDocument {
    /// Relative moves.
    pub moves: Vec<f64>,
    /// Vol move with them.
    pub vol: String,
    /// Constant covered fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered_fraction: Option<f64>,
    /// Weight `scale / |move|`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dampening_scale: Option<f64>,
    /// One weight per move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<f64>>,
    /// Deribit's extended-table treatment after aggregation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dampener: Option<DampenerDocument>,
}

/// `[scenarios.extreme.dampener]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DampenerDocument {
    /// Allowance in USD per grid width beyond the edge.
    pub amount_usd: f64,
    /// Allowance by risk-unit currency.
    #[serde(default)]
    pub by_currency: BTreeMap<String, f64>,
    /// Coin units converted at the edge price.
    pub convert_at_edge: bool,
}

/// One explicit scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDocument {
    /// Relative move.
    pub spot_move: f64,
    /// `down`, `none`, `up`.
    pub vol: String,
    /// `regular`, `extreme`, `skew-linear`, `skew-abs`, `auxiliary`.
    pub kind: String,
    /// Weight.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// `[vol_shock]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolShockDocument {
    /// `relative` or `absolute`.
    pub kind: String,
    /// Up shock.
    pub up: f64,
    /// Down shock.
    pub down: f64,
    /// Reference tenor in days.
    #[serde(default = "thirty")]
    pub reference_days: f64,
    /// Power for short expiries.
    #[serde(default)]
    pub short_power: f64,
    /// Power for long expiries.
    #[serde(default)]
    pub long_power: f64,
    /// Switch between the powers, in days.
    #[serde(default = "thirty")]
    pub power_switch_days: f64,
    /// Floor on days to expiry.
    #[serde(default = "one")]
    pub floor_days: f64,
    /// Floor on the up-shocked vol.
    #[serde(default)]
    pub min_vol_up: f64,
}

fn thirty() -> f64 {
    30.0
}

/// `[skew_shock]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkewShockDocument {
    /// Linear cap at T = 0.
    pub linear_base_cap: f64,
    /// Linear cap slope in √T.
    pub linear_cbase: f64,
    /// Abs cap at T = 0.
    pub abs_base_cap: f64,
    /// Abs cap slope in √T.
    pub abs_cbase: f64,
    /// Minimum width.
    pub min_k_star: f64,
    /// Width scale.
    pub width_scale: f64,
    /// Static width parameter.
    pub vol_param_static: f64,
    /// √T width parameter.
    pub vol_param_scale: f64,
}

/// `[aggregation]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregationDocument {
    /// Fraction of gains kept.
    #[serde(default = "one")]
    pub gain_fraction: f64,
    /// Skew contributions per expiry as −|p|.
    #[serde(default)]
    pub skew_absolute: bool,
    /// Static discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_discount: Option<StaticDiscountDocument>,
}

impl Default for AggregationDocument {
    fn default() -> AggregationDocument {
        AggregationDocument { gain_fraction: 1.0, skew_absolute: false, static_discount: None }
    }
}

/// `[aggregation.static_discount]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticDiscountDocument {
    /// Base on positive values.
    pub long_base: f64,
    /// Rate multiplier on positive values.
    pub long_rate_mult: f64,
    /// Additive rate on positive values.
    pub long_rate_add: f64,
    /// Base on negative values.
    pub short_base: f64,
    /// Rate multiplier on negative values.
    pub short_rate_mult: f64,
    /// Additive rate on negative values.
    pub short_rate_add: f64,
}

/// One `[[add_ons]]` entry: `kind` plus the parameters of that kind (others are rejected).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddOnDocument {
    /// Kind, e.g. `liquidation-friction`.
    pub kind: String,
    /// Multiple in IM.
    #[serde(default = "one")]
    pub im_weight: f64,
    /// Multiple in MM.
    #[serde(default = "one")]
    pub mm_weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub half_spread_fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub half_spread_vol: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub impact_coefficient: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub volume_floor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub vega_bucket_days: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub open_interest_fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub annualised_move: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub min_move: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub add_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub mult_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub competes_with_scan: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub fraction_of_index: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub threshold_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub slope_per_coin: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub max_fraction: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub usd_per_unit: Option<f64>,
}

/// A collateral rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollateralDocument {
    /// IM haircut on top of the MM haircut.
    #[serde(default)]
    pub im_haircut: f64,
    /// MM haircut.
    #[serde(default)]
    pub mm_haircut: f64,
    /// Shocked with its underlying.
    #[serde(default)]
    pub risk_cancelling: bool,
    /// The underlying a risk-cancelling currency follows, when not itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlying: Option<String>,
}

/// `[offsets]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsetsDocument {
    /// `none` or `correlation`.
    pub method: String,
    /// Correlation of pairs not listed.
    #[serde(default)]
    pub default_correlation: f64,
    /// Largest share of summed losses removed.
    #[serde(default)]
    pub credit_cap: f64,
    /// Correlations keyed `A-B`.
    #[serde(default)]
    pub pairs: BTreeMap<String, f64>,
}

impl Default for OffsetsDocument {
    fn default() -> OffsetsDocument {
        OffsetsDocument {
            method: "none".into(),
            default_correlation: 0.0,
            credit_cap: 0.0,
            pairs: BTreeMap::new(),
        }
    }
}

/// `[requirement]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequirementDocument {
    /// Factor on the scan loss in IM.
    pub im_loss_factor: f64,
    /// Factor on the scan loss in MM.
    pub mm_loss_factor: f64,
    /// Whether debts are accepted.
    #[serde(default)]
    pub allow_debt: bool,
}

fn parse_currency(text: &str, location: &str) -> Result<Currency, Error> {
    text.parse().map_err(|e: basics::Error| Error::invalid(location, e.kind.to_string()))
}

fn vol_move(text: &str, location: &str) -> Result<VolMove, Error> {
    match text {
        "down" => Ok(VolMove::Down),
        "none" => Ok(VolMove::None),
        "up" => Ok(VolMove::Up),
        other => Err(Error::invalid(
            location,
            format!("unknown vol move {other:?}; expected down, none or up"),
        )),
    }
}

fn vol_move_text(m: VolMove) -> String {
    match m {
        VolMove::Down => "down",
        VolMove::None => "none",
        VolMove::Up => "up",
    }
    .into()
}

fn skew_kind(text: &str, location: &str) -> Result<SkewKind, Error> {
    match text {
        "linear" => Ok(SkewKind::Linear),
        "linear-inverse" => Ok(SkewKind::LinearInverse),
        "abs" => Ok(SkewKind::Absolute),
        other => Err(Error::invalid(
            location,
            format!("unknown skew {other:?}; expected linear, linear-inverse or abs"),
        )),
    }
}

fn skew_text(k: SkewKind) -> String {
    match k {
        SkewKind::Linear => "linear",
        SkewKind::LinearInverse => "linear-inverse",
        SkewKind::Absolute => "abs",
    }
    .into()
}

mod convert;

pub use convert::add_ons::{StandardDocument, StandardRatesDocument};
