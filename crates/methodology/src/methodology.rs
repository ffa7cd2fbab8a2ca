//! The methodology: a complete, validated description of a margin model.

use std::collections::BTreeMap;

use basics::Currency;

use crate::error::check_range;
use crate::{Error, ErrorKind, Scenario, ScenarioSet, SkewKind, SkewShock, VolMove, VolShock};

/// The currency risk is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numeraire {
    /// Everything in USD at the scenario's prices: cross margin (Deribit X:PM, Derive, Ballast).
    Usd,
    /// Each settlement currency on its own, P&L in that currency at the scenario's prices:
    /// segregated margin (Deribit S:PM).
    Settlement,
}

/// How implied volatility responds to a move of the underlying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolDynamics {
    /// Each strike keeps its volatility.
    StickyStrike,
    /// Volatility is read from the surface at the new forward log-moneyness, so the smile moves
    /// with the spot and skew is respected under spot shocks (Ballast PM's default).
    StickyMoneyness,
    /// Each option keeps one volatility: its mark implied volatility when quoted, else the
    /// surface's at its strike (Deribit's and Derive's convention).
    MarkVol,
}

/// Revaluation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Valuation {
    /// Volatility dynamics under spot moves.
    pub dynamics: VolDynamics,
    /// Look-ahead (margin period of risk) in days: scenario values are taken this much later.
    pub horizon_days: f64,
    /// Length of the settlement averaging window before expiry, in minutes (0: none). Inside it
    /// the share `1 − T/window` of the forward is already fixed by the averaged settlement price,
    /// so a spot move `m` moves the forward by `m · T/window` only; at expiry (T = 0) the option
    /// is worth its payoff at the fixed price. Derive averages over the last 30 minutes.
    pub settlement_window_minutes: f64,
    /// The price at which a coin-settled instrument's scenario P&L (in coins) becomes USD in
    /// cross margin.
    pub coin_conversion: CoinConversion,
}

/// The price at which coin-settled scenario P&L is converted to USD in cross margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CoinConversion {
    /// At the scenario's own (shocked) index: the coins a position gains or loses are worth
    /// what the coin is worth in that scenario, which makes an inverse perpetual's USD P&L
    /// linear in the move.
    #[default]
    ScenarioPrice,
    /// At the current index: the coin pool's risk vector stays in coins, and the pool's
    /// requirement is converted once (Deribit's X:PM: an R2 capture of `pme/simulate` on a cross
    /// account reports the coin vector's worst case, 0.157462 ETH, not the USD-linear 0.18491).
    Index,
}

/// Relative price moves of the standard grid, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PriceGrid {
    /// Relative moves, e.g. `[-0.16, -0.12, ..., 0.16]`.
    pub moves: Vec<f64>,
}

impl PriceGrid {
    /// `steps_down` evenly spaced moves down to `-range_down`, zero, and `steps_up` up to
    /// `range_up`, in ascending order (Deribit's "9 evenly spaced buckets" is 4 / 4 steps).
    #[must_use]
    pub fn symmetric(range_down: f64, steps_down: u32, range_up: f64, steps_up: u32) -> PriceGrid {
        let down =
            (1..=steps_down).rev().map(|i| -range_down * f64::from(i) / f64::from(steps_down));
        let up = (1..=steps_up).map(|i| range_up * f64::from(i) / f64::from(steps_up));
        PriceGrid { moves: down.chain(std::iter::once(0.0)).chain(up).collect() }
    }

    /// The outermost grid move on the side of `spot_move` (the largest move up for a rise, the
    /// largest move down for a fall): the edge of the standard table. `None` when the grid has
    /// no move on that side, or for a zero move.
    #[must_use]
    pub fn edge(&self, spot_move: f64) -> Option<f64> {
        let same_side = self.moves.iter().copied().filter(|g| g * spot_move > 0.0);
        if spot_move > 0.0 { same_side.reduce(f64::max) } else { same_side.reduce(f64::min) }
    }
}

/// How the P&L of extreme moves is weighted.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtremeWeighting {
    /// A constant covered fraction (CME SPAN: 0.32 or 0.35).
    CoveredFraction(f64),
    /// `scale / |move|`: the linear exposure of every tail is capped at a `scale` move while
    /// convexity still shows (Derive, Paradex, Deribit's extended table).
    Dampened {
        /// The move to which linear exposure is capped.
        scale: f64,
    },
    /// One weight per move.
    Explicit(Vec<f64>),
}

/// Extreme moves beyond the standard grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtremeMoves {
    /// Relative moves, e.g. `[-0.66, -0.33, 0.5, 1.0]`.
    pub moves: Vec<f64>,
    /// Volatility shock applied with them.
    pub vol: VolMove,
    /// Their weighting.
    pub weighting: ExtremeWeighting,
    /// Deribit's extended-table treatment of the aggregated extreme P&L; `None` leaves the
    /// weighted P&L as it is.
    pub dampener: Option<ExtremeDampener>,
}

/// Deribit's extended table, applied to each risk unit's aggregated P&L of every extreme move
/// `m`, with `e` the outermost grid move on the same side (the edge of the standard table).
///
/// Why: the extended table exists to catch large short positions in far out-of-the-money
/// options. A fixed USD allowance per extra grid width (`amount_usd · (|m|/|e| − 1)`) is added
/// back after aggregation, so small books and linear exposure (already capped at the edge move
/// by the `scale / |m|` weighting) do not pay for tails, while a large short strip still does.
/// Extreme cells never count as gains: they may only raise the margin.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtremeDampener {
    /// Allowance in USD per grid width beyond the edge, for units without a specific amount.
    pub amount_usd: f64,
    /// Allowance by the risk unit's currency (Deribit: per settlement currency).
    pub amount_usd_by_currency: BTreeMap<Currency, f64>,
    /// In units whose currency is the underlying itself (coin-settled, segregated margin), the
    /// weighted P&L and the allowance are converted to coins at the edge price `(1 + e)·S`
    /// rather than at the shocked price `(1 + m)·S`: the weighting caps linear exposure at the
    /// edge move, and converting at the edge keeps that cap in coins too.
    pub convert_at_edge: bool,
}

impl ExtremeDampener {
    /// The allowance in USD for a unit in `currency`.
    #[must_use]
    pub fn amount_for(&self, currency: Currency) -> f64 {
        self.amount_usd_by_currency.get(&currency).copied().unwrap_or(self.amount_usd)
    }
}

/// The scenarios of one underlying.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScenarioSpec {
    /// Standard price grid.
    pub price_grid: PriceGrid,
    /// Volatility moves combined with every grid move.
    pub vol_moves: Vec<VolMove>,
    /// Volatility moves at the outermost grid moves, when different (Derive: up only).
    pub edge_vol_moves: Option<Vec<VolMove>>,
    /// Extreme moves.
    pub extreme: Option<ExtremeMoves>,
    /// Skew scenarios at an unchanged spot.
    pub skews: Vec<SkewKind>,
    /// Scenarios listed one by one, after the generated ones.
    pub explicit: Vec<Scenario>,
    /// Spot moves evaluated without vol shock for add-ons only (never the worst loss).
    pub auxiliary_moves: Vec<f64>,
}

/// Derive's static discount of per-expiry scenario values: long (positive) values are haircut,
/// short (negative) values inflated, the inflation capped at undoing the rate discount.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StaticDiscount {
    /// Base factor on positive values.
    pub long_base: f64,
    /// Rate multiplier in the exponent for positive values.
    pub long_rate_mult: f64,
    /// Additive rate in the exponent for positive values.
    pub long_rate_add: f64,
    /// Base factor on negative values.
    pub short_base: f64,
    /// Rate multiplier in the exponent for negative values.
    pub short_rate_mult: f64,
    /// Additive rate in the exponent for negative values.
    pub short_rate_add: f64,
}

/// How instrument P&L combines into an account's scenario P&L.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregation {
    /// Static discount per expiry (Derive); `None` keeps aggregation linear.
    pub static_discount: Option<StaticDiscount>,
    /// Skew scenarios count each expiry's contribution as `−|p|` (Derive's approximation of
    /// rotating the skew the adverse way for every expiry).
    pub skew_absolute: bool,
    /// Fraction of a scenario's aggregate gain that is kept (Deribit's `pnl_offset`); losses count
    /// in full.
    pub gain_fraction: f64,
}

/// What an add-on charges for. Deliberately exhaustive: a new add-on must be handled by every
/// match in the workspace (engine, reports, formats).
#[derive(Debug, Clone, PartialEq)]
pub enum AddOnKind {
    /// Cost of liquidating: half the bid/ask spread plus square-root market impact, per underlying,
    /// with option vega netted within expiry buckets.
    LiquidationFriction {
        /// Half-spread of delta-one contracts as a fraction of price, when not quoted.
        half_spread_fraction: f64,
        /// Half-spread of options in volatility points (times vega), when not quoted.
        half_spread_vol: f64,
        /// Coefficient Y of the impact `Y · σ_daily · √(Q / V) · notional`.
        impact_coefficient: f64,
        /// Daily volume assumed when an instrument has no volume quote (amount units of the
        /// underlying, per underlying); also the floor of any quoted volume.
        volume_floor: f64,
        /// Upper edges, in days, of the vega buckets; the last bucket is open-ended.
        vega_bucket_days: Vec<f64>,
    },
    /// A charge on the part of a position above a fraction of the instrument's open interest.
    Concentration {
        /// Free share of open interest.
        open_interest_fraction: f64,
        /// Charge per unit of excess notional (USD).
        rate: f64,
    },
    /// Roll (basis) shock per expiry: |net delta-one exposure| × max(min_move, annual_move × T),
    /// not netted across expiries (Deribit's roll shock).
    Roll {
        /// Annualised basis move.
        annualised_move: f64,
        /// Smallest move charged.
        min_move: f64,
    },
    /// Derive's forward contingency: per expiry, `min(ΔV(up), ΔV(down), 0) · (add + mult · T)`
    /// over the auxiliary spot moves, without vol shock.
    BasisContingency {
        /// Constant factor.
        add_factor: f64,
        /// Factor per year to expiry.
        mult_factor: f64,
        /// When true the contingency competes with the scan loss (the larger one sets the loss,
        /// as in Derive, where it is a pseudo-scenario); when false it adds to the margin.
        competes_with_scan: bool,
    },
    /// Per net short option contract, a fraction of the index: a far out-of-the-money short
    /// strip never margins to zero.
    ContractMinimum {
        /// Fraction of the index per contract.
        fraction_of_index: f64,
    },
    /// Derive's option contingency: naked shorts netted per strike (calls and puts together)
    /// times the spot times a fraction.
    NakedShortOption {
        /// Fraction of the spot per naked short.
        fraction: f64,
    },
    /// A fraction of the perpetual's spot notional (Derive's perp contingency).
    PerpetualNotional {
        /// Fraction of notional.
        fraction: f64,
    },
    /// A floor on each risk unit's requirement (OCC/FINRA TIMS's per-contract minimum): the
    /// unit is charged at least `usd_per_unit` for every unit of underlying held in any contract,
    /// long or short. The add-on is the shortfall `max(0, floor − unit loss)`, so the unit's loss
    /// plus the add-on is `max(loss, floor)`: it floors rather than adds.
    ContractFloor {
        /// USD per unit of underlying (TIMS: $0.375 × the contract multiplier per contract).
        usd_per_unit: f64,
    },
    /// Deribit's delta shock: above a USD threshold of net delta, a size-proportional charge.
    DeltaShock {
        /// Net delta (USD) above which the charge starts.
        threshold_usd: f64,
        /// Slope per coin of net delta.
        slope_per_coin: f64,
        /// Cap as a fraction of the net delta notional.
        max_fraction: f64,
    },
    /// Oracle confidence (Derive's oracle contingency): price feeds publish a confidence in
    /// [0, 1]; every exposure valued through a feed whose confidence is below `threshold` is
    /// charged `(1 − confidence) · factor` times its notional. A price the oracle is unsure of
    /// should not support margin at full value.
    OracleConfidence {
        /// Confidence below which the charge applies.
        threshold: f64,
        /// Multiple of the notional per unit of missing confidence.
        factor: f64,
    },
    /// Stable-coin de-peg: when the stable coin trades below `threshold`, the scan loss is
    /// multiplied by an extra `(threshold − price) · factor` (Derive's peg loss).
    Depeg {
        /// The stable coin.
        currency: Currency,
        /// Price below which the charge applies.
        threshold: f64,
        /// Extra loss multiple per unit of de-peg.
        factor: f64,
    },
}

/// An add-on and how much of it enters IM and MM.
#[derive(Debug, Clone, PartialEq)]
pub struct AddOn {
    /// What it charges for.
    pub kind: AddOnKind,
    /// Multiple in the initial margin.
    pub im_weight: f64,
    /// Multiple in the maintenance margin.
    pub mm_weight: f64,
}

/// How a collateral currency counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollateralRule {
    /// Haircut on its value in the initial margin, on top of the maintenance haircut.
    pub im_haircut: f64,
    /// Haircut on its value in the maintenance margin.
    pub mm_haircut: f64,
    /// Whether its value moves with its underlying in the scenarios (a coin held against
    /// short calls offsets their risk). USD-like currencies never move.
    pub risk_cancelling: bool,
    /// The underlying whose moves a risk-cancelling currency follows when it is not itself an
    /// underlying (a liquid-staking token follows ETH); `None`: the currency itself.
    pub underlying: Option<Currency>,
}

/// Offsets between underlyings.
#[derive(Debug, Clone, PartialEq)]
pub enum Offsets {
    /// Per-underlying losses add up.
    None,
    /// Per-underlying worst losses combine as `√(Σ ρ_uv · s_u · s_v · L_u · L_v)`, where `s` is
    /// the direction of each worst price move, but never below `(1 − credit_cap) · Σ L_u`.
    Correlation {
        /// Correlation for pairs not listed.
        default_correlation: f64,
        /// Correlations by unordered pair.
        pairs: BTreeMap<(Currency, Currency), f64>,
        /// Largest fraction of the summed losses the offset may remove.
        credit_cap: f64,
    },
}

/// How IM and MM are formed from the scan loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Requirement {
    /// IM = im_loss_factor × scan loss + Σ im_weight × add-on.
    pub im_loss_factor: f64,
    /// MM = mm_loss_factor × scan loss + Σ mm_weight × add-on.
    pub mm_loss_factor: f64,
    /// Whether negative balances (borrowed cash) are accepted.
    pub allow_debt: bool,
}

/// Parameters one underlying sets apart from the methodology-wide ones: Deribit, for one, sets
/// its volatility range, gain offset, roll and delta-shock rates per currency. A field left out
/// keeps the methodology-wide value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnderlyingParameters {
    /// Volatility shock of the underlying's scenarios.
    pub vol_shock: Option<VolShock>,
    /// Fraction of the aggregated gains of the underlying's units that counts.
    pub gain_fraction: Option<f64>,
    /// Add-ons of the underlying's units: the methodology's add-ons, the same kinds in the same
    /// order (so that reports name them alike), with the underlying's own parameters.
    pub add_ons: Option<Vec<AddOn>>,
}

/// A complete margin methodology.
#[derive(Debug, Clone, PartialEq)]
pub struct Methodology {
    /// Short name, e.g. `ballast-pm`.
    pub name: String,
    /// Version of this parameter set.
    pub version: String,
    /// What it is.
    pub description: String,
    /// Where its rules and numbers come from.
    pub sources: Vec<String>,
    /// Risk currency.
    pub numeraire: Numeraire,
    /// Default scenarios.
    pub scenarios: ScenarioSpec,
    /// Scenarios for particular underlyings.
    pub scenarios_by_underlying: BTreeMap<Currency, ScenarioSpec>,
    /// Volatility shock.
    pub vol_shock: VolShock,
    /// Skew shock (required when any scenario set has skew scenarios).
    pub skew_shock: Option<SkewShock>,
    /// Revaluation settings.
    pub valuation: Valuation,
    /// Aggregation settings.
    pub aggregation: Aggregation,
    /// Add-ons.
    pub add_ons: Vec<AddOn>,
    /// Collateral rules by currency.
    pub collateral: BTreeMap<Currency, CollateralRule>,
    /// Rule for currencies not listed; `None` rejects them.
    pub collateral_default: Option<CollateralRule>,
    /// Cross-underlying offsets.
    pub offsets: Offsets,
    /// IM and MM.
    pub requirement: Requirement,
    /// Parameters set apart for particular underlyings.
    pub by_underlying: BTreeMap<Currency, UnderlyingParameters>,
    /// How the parameters were fitted to history, when `ballast calibrate` fitted them.
    pub calibration: Option<crate::Calibration>,
}

impl Methodology {
    /// The scenario specification of `underlying`.
    #[must_use]
    pub fn scenario_spec(&self, underlying: Currency) -> &ScenarioSpec {
        self.scenarios_by_underlying.get(&underlying).unwrap_or(&self.scenarios)
    }

    /// The scenario set of `underlying`.
    ///
    /// # Errors
    /// As [`ScenarioSet::generate`].
    pub fn scenario_set(&self, underlying: Currency) -> Result<ScenarioSet, Error> {
        ScenarioSet::generate(self.scenario_spec(underlying))
    }

    /// The volatility shock of `underlying`'s scenarios.
    #[must_use]
    pub fn vol_shock_for(&self, underlying: Currency) -> &VolShock {
        self.by_underlying
            .get(&underlying)
            .and_then(|p| p.vol_shock.as_ref())
            .unwrap_or(&self.vol_shock)
    }

    /// The fraction of the aggregated gains of `underlying`'s units that counts.
    #[must_use]
    pub fn gain_fraction_for(&self, underlying: Currency) -> f64 {
        self.by_underlying
            .get(&underlying)
            .and_then(|p| p.gain_fraction)
            .unwrap_or(self.aggregation.gain_fraction)
    }

    /// The add-ons of `underlying`'s units.
    #[must_use]
    pub fn add_ons_for(&self, underlying: Currency) -> &[AddOn] {
        self.by_underlying
            .get(&underlying)
            .and_then(|p| p.add_ons.as_deref())
            .unwrap_or(&self.add_ons)
    }

    /// Every add-on list: the methodology's, then each underlying's own.
    pub fn all_add_ons(&self) -> impl Iterator<Item = &AddOn> {
        let own = self.by_underlying.values().filter_map(|p| p.add_ons.as_deref());
        self.add_ons.iter().chain(own.flatten())
    }

    /// The collateral rule of `currency`, if it is accepted.
    #[must_use]
    pub fn collateral_rule(&self, currency: Currency) -> Option<CollateralRule> {
        self.collateral.get(&currency).copied().or(self.collateral_default)
    }

    /// Checks every field once, so the engine can trust the methodology.
    ///
    /// # Errors
    /// The first invalid field, by its path.
    pub fn validate(&self) -> Result<(), Error> {
        if self.name.is_empty() || self.version.is_empty() {
            return Err(Error::range("methodology.name", "name and version must not be empty"));
        }
        self.vol_shock.validate()?;
        if let Some(skew) = &self.skew_shock {
            skew.validate()?;
        }
        check_range("valuation.horizon_days", self.valuation.horizon_days, 0.0, 365.0)?;
        check_range(
            "valuation.settlement_window_minutes",
            self.valuation.settlement_window_minutes,
            0.0,
            1440.0,
        )?;
        check_range("aggregation.gain_fraction", self.aggregation.gain_fraction, 0.0, 1.0)?;
        check_range("requirement.im_loss_factor", self.requirement.im_loss_factor, 0.0, 100.0)?;
        check_range("requirement.mm_loss_factor", self.requirement.mm_loss_factor, 0.0, 100.0)?;
        let specs = std::iter::once((String::from("scenarios"), &self.scenarios)).chain(
            self.scenarios_by_underlying
                .iter()
                .map(|(c, s)| (format!("scenarios_by_underlying.{c}"), s)),
        );
        for (path, spec) in specs {
            validate_spec(&path, spec, self.skew_shock.is_some())?;
        }
        for (i, add_on) in self.add_ons.iter().enumerate() {
            validate_add_on(&format!("add_ons[{i}]"), add_on)?;
        }
        if let Some(calibration) = &self.calibration {
            calibration.validate()?;
        }
        for (underlying, parameters) in &self.by_underlying {
            self.validate_underlying(&format!("by_underlying.{underlying}"), parameters)?;
        }
        let rules = self.collateral.iter().map(|(c, r)| (format!("collateral.{c}"), r));
        for (path, rule) in
            rules.chain(self.collateral_default.iter().map(|r| ("collateral_default".into(), r)))
        {
            check_range(&format!("{path}.im_haircut"), rule.im_haircut, 0.0, 1.0)?;
            check_range(&format!("{path}.mm_haircut"), rule.mm_haircut, 0.0, 1.0)?;
            if rule.im_haircut + rule.mm_haircut > 1.0 {
                return Err(Error::range(path, "im_haircut + mm_haircut must not exceed 1"));
            }
            if rule.underlying.is_some() && !rule.risk_cancelling {
                let why = "only a risk-cancelling currency follows an underlying".to_owned();
                return Err(Error::new(format!("{path}.underlying"), ErrorKind::Inconsistent(why)));
            }
        }
        if let Offsets::Correlation { default_correlation, pairs, credit_cap } = &self.offsets {
            check_range("offsets.default_correlation", *default_correlation, -1.0, 1.0)?;
            check_range("offsets.credit_cap", *credit_cap, 0.0, 1.0)?;
            for ((a, b), rho) in pairs {
                check_range(&format!("offsets.pairs.{a}-{b}"), *rho, -1.0, 1.0)?;
            }
        }
        Ok(())
    }
}

impl Methodology {
    fn validate_underlying(&self, path: &str, p: &UnderlyingParameters) -> Result<(), Error> {
        if let Some(shock) = &p.vol_shock {
            shock.validate().map_err(|e| Error { field: format!("{path}.{}", e.field), ..e })?;
        }
        if let Some(fraction) = p.gain_fraction {
            check_range(&format!("{path}.gain_fraction"), fraction, 0.0, 1.0)?;
        }
        let Some(add_ons) = &p.add_ons else { return Ok(()) };
        let same_kinds = add_ons.len() == self.add_ons.len()
            && add_ons
                .iter()
                .zip(&self.add_ons)
                .all(|(a, b)| std::mem::discriminant(&a.kind) == std::mem::discriminant(&b.kind));
        if !same_kinds {
            let why = "must list the methodology's add-ons, the same kinds in the same order, \
                       each with its own parameters"
                .to_owned();
            return Err(Error::new(format!("{path}.add_ons"), ErrorKind::Inconsistent(why)));
        }
        for (i, add_on) in add_ons.iter().enumerate() {
            validate_add_on(&format!("{path}.add_ons[{i}]"), add_on)?;
        }
        Ok(())
    }
}

fn validate_spec(path: &str, spec: &ScenarioSpec, has_skew_shock: bool) -> Result<(), Error> {
    for (i, m) in spec.price_grid.moves.iter().enumerate() {
        check_range(&format!("{path}.price_grid.moves[{i}]"), *m, -0.999, 100.0)?;
    }
    if let Some(extreme) = &spec.extreme {
        for (i, m) in extreme.moves.iter().enumerate() {
            check_range(&format!("{path}.extreme.moves[{i}]"), *m, -0.999, 100.0)?;
        }
        match &extreme.weighting {
            ExtremeWeighting::CoveredFraction(f) => {
                check_range(&format!("{path}.extreme.fraction"), *f, 0.0, 1.0)?;
            }
            ExtremeWeighting::Dampened { scale } => {
                check_range(&format!("{path}.extreme.scale"), *scale, 0.0, 100.0)?;
            }
            ExtremeWeighting::Explicit(weights) => {
                if weights.len() != extreme.moves.len() {
                    let why =
                        format!("{} weights for {} moves", weights.len(), extreme.moves.len());
                    return Err(Error::new(
                        format!("{path}.extreme.weights"),
                        ErrorKind::Inconsistent(why),
                    ));
                }
                for (i, w) in weights.iter().enumerate() {
                    check_range(&format!("{path}.extreme.weights[{i}]"), *w, 0.0, 100.0)?;
                }
            }
        }
        if let Some(dampener) = &extreme.dampener {
            validate_dampener(&format!("{path}.extreme.dampener"), dampener, extreme, spec)?;
        }
    }
    let has_skew = !spec.skews.is_empty()
        || spec.explicit.iter().any(|s| matches!(s.kind, crate::ScenarioKind::Skew(_)));
    if has_skew && !has_skew_shock {
        let why = "skew scenarios need a [skew_shock] section".to_owned();
        return Err(Error::new(format!("{path}.skews"), ErrorKind::Inconsistent(why)));
    }
    for (i, s) in spec.explicit.iter().enumerate() {
        check_range(&format!("{path}.explicit[{i}].spot_move"), s.spot_move, -0.999, 100.0)?;
        if matches!(s.kind, crate::ScenarioKind::Skew(_)) && s.spot_move != 0.0 {
            // Options of a skew scenario are revalued on the base forward; a price move would
            // then reach delta-one positions and coin collateral but not the options.
            let why = "a skew scenario moves volatility only; its spot move must be 0".to_owned();
            let field = format!("{path}.explicit[{i}].spot_move");
            return Err(Error::new(field, ErrorKind::Inconsistent(why)));
        }
        check_range(&format!("{path}.explicit[{i}].weight"), s.weight, 0.0, 100.0)?;
    }
    for (i, m) in spec.auxiliary_moves.iter().enumerate() {
        check_range(&format!("{path}.auxiliary_moves[{i}]"), *m, -0.999, 100.0)?;
    }
    ScenarioSet::generate(spec)
        .map(|_| ())
        .map_err(|e| Error { field: format!("{path}.{}", e.field), kind: e.kind })
}

/// The dampener's amounts must be sane, and every extreme move needs a grid edge on its side
/// (the allowance and the edge conversion are measured from it).
fn validate_dampener(
    path: &str,
    dampener: &ExtremeDampener,
    extreme: &ExtremeMoves,
    spec: &ScenarioSpec,
) -> Result<(), Error> {
    check_range(&format!("{path}.amount_usd"), dampener.amount_usd, 0.0, 1e15)?;
    for (currency, amount) in &dampener.amount_usd_by_currency {
        check_range(&format!("{path}.by_currency.{currency}"), *amount, 0.0, 1e15)?;
    }
    for (i, m) in extreme.moves.iter().enumerate() {
        if spec.price_grid.edge(*m).is_none() {
            let why = format!("extreme move {m} has no grid move on its side to measure from");
            return Err(Error::new(format!("{path}.moves[{i}]"), ErrorKind::Inconsistent(why)));
        }
    }
    Ok(())
}

fn validate_add_on(path: &str, add_on: &AddOn) -> Result<(), Error> {
    check_range(&format!("{path}.im_weight"), add_on.im_weight, 0.0, 100.0)?;
    check_range(&format!("{path}.mm_weight"), add_on.mm_weight, 0.0, 100.0)?;
    let p = |field: &str| format!("{path}.{field}");
    match &add_on.kind {
        AddOnKind::LiquidationFriction {
            half_spread_fraction,
            half_spread_vol,
            impact_coefficient,
            volume_floor,
            vega_bucket_days,
        } => {
            check_range(&p("half_spread_fraction"), *half_spread_fraction, 0.0, 1.0)?;
            check_range(&p("half_spread_vol"), *half_spread_vol, 0.0, 10.0)?;
            check_range(&p("impact_coefficient"), *impact_coefficient, 0.0, 100.0)?;
            check_range(&p("volume_floor"), *volume_floor, 1e-12, 1e15)?;
            if vega_bucket_days.windows(2).any(|w| w[0] >= w[1])
                || vega_bucket_days.iter().any(|d| d.is_nan() || *d <= 0.0)
            {
                return Err(Error::range(
                    p("vega_bucket_days"),
                    "bucket edges must be positive and increasing",
                ));
            }
        }
        AddOnKind::Concentration { open_interest_fraction, rate } => {
            check_range(&p("open_interest_fraction"), *open_interest_fraction, 0.0, 1.0)?;
            check_range(&p("rate"), *rate, 0.0, 10.0)?;
        }
        AddOnKind::Roll { annualised_move, min_move } => {
            check_range(&p("annualised_move"), *annualised_move, 0.0, 10.0)?;
            check_range(&p("min_move"), *min_move, 0.0, 1.0)?;
        }
        AddOnKind::BasisContingency { add_factor, mult_factor, .. } => {
            check_range(&p("add_factor"), *add_factor, 0.0, 100.0)?;
            check_range(&p("mult_factor"), *mult_factor, 0.0, 100.0)?;
        }
        AddOnKind::ContractMinimum { fraction_of_index } => {
            check_range(&p("fraction_of_index"), *fraction_of_index, 0.0, 1.0)?;
        }
        AddOnKind::NakedShortOption { fraction } | AddOnKind::PerpetualNotional { fraction } => {
            check_range(&p("fraction"), *fraction, 0.0, 10.0)?;
        }
        AddOnKind::ContractFloor { usd_per_unit } => {
            check_range(&p("usd_per_unit"), *usd_per_unit, 0.0, 1e9)?;
        }
        AddOnKind::DeltaShock { threshold_usd, slope_per_coin, max_fraction } => {
            check_range(&p("threshold_usd"), *threshold_usd, 0.0, 1e15)?;
            check_range(&p("slope_per_coin"), *slope_per_coin, 0.0, 1.0)?;
            check_range(&p("max_fraction"), *max_fraction, 0.0, 1.0)?;
        }
        AddOnKind::OracleConfidence { threshold, factor } => {
            check_range(&p("threshold"), *threshold, 0.0, 1.0)?;
            check_range(&p("factor"), *factor, 0.0, 100.0)?;
        }
        AddOnKind::Depeg { threshold, factor, .. } => {
            check_range(&p("threshold"), *threshold, 0.0, 100.0)?;
            check_range(&p("factor"), *factor, 0.0, 100.0)?;
        }
    }
    Ok(())
}
