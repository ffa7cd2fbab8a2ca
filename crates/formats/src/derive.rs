//! Derive's PMRM_2 portfolio cases, as Derive publishes them (one JSON file per case:
//! `Scenario`, `Parameters`, `Result`), converted into Ballast's domain values.
//!
//! A case becomes a [`DeriveCase`]: the methodology with every number taken from the case's
//! `Parameters`, a market snapshot, a portfolio, the feed data Derive publishes beside prices
//! (per-expiry rates and forwards, confidences) and the expected MM and IM. The margin engine
//! then computes the case like any other account. The conventions of the conversion, each one
//! Derive's own:
//!
//! - Values are in Derive's cash asset (the numeraire, written `USD` here): cash, perpetual
//!   unrealised P&L and funding are one `USD` balance; a collateral's price is its USD price over
//!   the stable coin's price (`USDC`, whose price drives the de-peg add-on).
//! - The case does not name its market, so the underlying is called [`UNDERLYING`], distinct
//!   from every collateral code; risk-cancelling collateral follows it whatever its name.
//! - Expiries are `REF_TIME + Expiry` seconds with `REF_TIME` = 1 630 000 000, the valuation
//!   time is `REF_TIME` (Derive's test harness); options are linear, settled in the numeraire,
//!   valued at their `MarkVol` with their expiry's `Forward` and `Rate`, the rate floored at 0
//!   as Derive's manager does.
//! - Skew scenarios are evaluated at an unchanged spot (Derive's setter requires a spot shock
//!   of 1 for them); their dampening factor is kept as the weight.
//! - Intermediate values of `Result` (scenario losses, contingencies) are for debugging and are
//!   not read; only `MM` and `IM` are.

use std::collections::BTreeMap;

use basics::{Currency, Money, Rounding, UnixNanos};
use margin::CurrencyFigures;
use market::{FeedData, InstrumentQuote, MarketSnapshot, UnderlyingInput};
use methodology::{
    AddOn, AddOnKind, Aggregation, CollateralRule, Methodology, Numeraire, Offsets, Requirement,
    Scenario, ScenarioKind, ScenarioSpec, SkewKind, SkewShock, StaticDiscount, Valuation,
    VolDynamics, VolMove, VolShock, VolShockKind,
};
use product::{Instrument, InstrumentKind, OptionRight, Portfolio, Position, Settlement};
use serde::Deserialize;

use crate::Error;

/// The underlying of every case (the files do not name it).
pub const UNDERLYING: Currency = Currency::from_static("UNDERLYING");

/// The stable coin whose price converts collateral and drives the de-peg add-on.
pub const STABLE: Currency = Currency::USDC;

/// Derive's test harness reference time, in Unix seconds: the valuation time of every case.
pub const REF_TIME_SECONDS: i64 = 1_630_000_000;

/// Derive's settlement averaging window before expiry, in minutes.
const SETTLEMENT_WINDOW_MINUTES: f64 = 30.0;

/// One case file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaseDocument {
    /// The account and its market.
    pub scenario: ScenarioDocument,
    /// Every parameter of the margin model.
    pub parameters: ParametersDocument,
    /// Derive's results.
    pub result: ResultDocument,
}

/// `Scenario`: the account and its market.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct ScenarioDocument {
    pub cash: f64,
    pub collaterals: Vec<CollateralDocument>,
    pub spot_price: f64,
    pub spot_confidence: f64,
    pub num_perps: f64,
    pub perp_price: f64,
    pub perp_confidence: f64,
    #[serde(rename = "UnrealisedPerpPNL")]
    pub unrealised_perp_pnl: f64,
    pub unrealised_funding: f64,
    pub stable_price: f64,
    pub stable_confidence: f64,
    pub options: Vec<OptionDocument>,
    pub option_feeds: Vec<OptionFeedDocument>,
}

/// One collateral balance with its feed and haircuts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct CollateralDocument {
    pub name: String,
    pub amount: f64,
    pub price: f64,
    pub confidence: f64,
    pub is_risk_cancelling: bool,
    #[serde(rename = "IMHaircut")]
    pub im_haircut: f64,
    #[serde(rename = "MMHaircut")]
    pub mm_haircut: f64,
}

/// One option position (Derive's intermediate skew fields are not read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct OptionDocument {
    /// Seconds from the reference time to expiry.
    pub expiry: i64,
    pub strike: f64,
    /// 1 for a call, 0 for a put.
    pub is_call: u8,
    pub mark_vol: f64,
    pub amount: f64,
}

/// The feeds of one expiry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct OptionFeedDocument {
    pub feed_expiry: i64,
    pub forward: f64,
    pub forward_confidence: f64,
    pub rate: f64,
    pub rate_confidence: f64,
    pub option_vol_confidences: f64,
}

/// `Parameters`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct ParametersDocument {
    pub scenarios: Vec<ScenarioParameters>,
    pub skew_shock: SkewShockParameters,
    pub vol_shock: VolShockParameters,
    pub margin: MarginParameters,
    pub basis_contingency: BasisContingencyParameters,
    pub other_contingency: OtherContingencyParameters,
}

/// One scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct ScenarioParameters {
    pub spot_shock: f64,
    /// `Up`, `Down`, `None`, `LINEAR` or `ABS`.
    pub vol_shock_direction: String,
    pub dampening_factor: f64,
}

/// `SkewShock`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub struct SkewShockParameters {
    pub linear_scale_cap: f64,
    pub linear_cbase: f64,
    pub abs_scale_cap: f64,
    pub abs_cbase: f64,
    pub min_k_star: f64,
    pub min_width_scale: f64,
    pub vol_param_static: f64,
    pub vol_param_scale: f64,
}

/// `VolShock`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub struct VolShockParameters {
    #[serde(rename = "VOLRANGEUP")]
    pub vol_range_up: f64,
    pub min_vol_eval_shocked: f64,
    #[serde(rename = "VOLRANGEDOWN")]
    pub vol_range_down: f64,
    #[serde(rename = "SHORTTERMPOWER")]
    pub short_term_power: f64,
    #[serde(rename = "LONGTERMPOWER")]
    pub long_term_power: f64,
    /// Days.
    pub dte_floor: f64,
}

/// `Margin`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub struct MarginParameters {
    pub mm_loss_factor: f64,
    pub im_loss_factor: f64,
    pub short_rate_multscale: f64,
    pub long_rate_multscale: f64,
    pub short_rate_addscale: f64,
    pub long_rate_addscale: f64,
    pub base_static_discount: f64,
    pub base_static_discount_neg: f64,
}

/// `BasisContingency`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub struct BasisContingencyParameters {
    pub scenario_spot_up: f64,
    pub scenario_spot_down: f64,
    pub basis_cont_add_factor: f64,
    pub basis_cont_mult_factor: f64,
}

/// `OtherContingency`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub struct OtherContingencyParameters {
    pub peg_loss_threshold: f64,
    pub peg_loss_factor: f64,
    pub conf_threshold: f64,
    pub conf_margin: f64,
    pub mm_perp_percent: f64,
    pub im_perp_percent: f64,
    pub mm_option_percent: f64,
    pub im_option_percent: f64,
}

/// `Result`: only the final figures are read.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct ResultDocument {
    /// Maintenance margin, net of mark-to-market (equity − requirement).
    #[serde(rename = "MM")]
    pub mm: f64,
    /// Initial margin, net of mark-to-market.
    #[serde(rename = "IM")]
    pub im: f64,
}

/// A case in domain values.
#[derive(Debug, Clone, PartialEq)]
pub struct DeriveCase {
    /// The methodology with the case's parameters.
    pub methodology: Methodology,
    /// The market, with the per-expiry rates and forwards and the feed confidences published
    /// with it.
    pub market: MarketSnapshot,
    /// The account.
    pub portfolio: Portfolio,
    /// Derive's net maintenance margin.
    pub expected_mm: f64,
    /// Derive's net initial margin.
    pub expected_im: f64,
}

impl CaseDocument {
    /// Parses a case file.
    ///
    /// # Errors
    /// `Syntax` for malformed JSON or a missing field.
    pub fn from_json(text: &str) -> Result<CaseDocument, Error> {
        crate::from_json(text)
    }

    /// Converts the case; `base` supplies the methodology's identity (name, version,
    /// description, sources), every number comes from the case's `Parameters`.
    ///
    /// # Errors
    /// `Invalid` or `Missing` naming the path of the offending value.
    pub fn to_case(&self, base: &Methodology) -> Result<DeriveCase, Error> {
        let methodology = self.methodology(base)?;
        methodology.validate().map_err(|e| Error::nested("Parameters", &e.field, e.kind))?;
        let market = self.market(self.feeds()?)?;
        let portfolio = self.portfolio()?;
        Ok(DeriveCase {
            methodology,
            market,
            portfolio,
            expected_mm: self.result.mm,
            expected_im: self.result.im,
        })
    }

    fn methodology(&self, base: &Methodology) -> Result<Methodology, Error> {
        let p = &self.parameters;
        let collateral = self
            .scenario
            .collaterals
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let currency = collateral_currency(&c.name, i)?;
                let rule = CollateralRule {
                    im_haircut: c.im_haircut,
                    mm_haircut: c.mm_haircut,
                    risk_cancelling: c.is_risk_cancelling,
                    underlying: c.is_risk_cancelling.then_some(UNDERLYING),
                };
                Ok((currency, rule))
            })
            .chain(std::iter::once(Ok((Currency::USD, cash_rule()))))
            .collect::<Result<BTreeMap<_, _>, Error>>()?;
        Ok(Methodology {
            numeraire: Numeraire::Usd,
            scenarios: scenario_spec(p)?,
            scenarios_by_underlying: BTreeMap::new(),
            vol_shock: vol_shock(&p.vol_shock),
            skew_shock: Some(skew_shock(&p.skew_shock)),
            valuation: Valuation {
                dynamics: VolDynamics::MarkVol,
                horizon_days: 0.0,
                settlement_window_minutes: SETTLEMENT_WINDOW_MINUTES,
                coin_conversion: methodology::CoinConversion::ScenarioPrice,
            },
            aggregation: Aggregation {
                static_discount: Some(static_discount(&p.margin)),
                skew_absolute: true,
                gain_fraction: 1.0,
            },
            add_ons: add_ons(p),
            collateral,
            collateral_default: None,
            offsets: Offsets::None,
            requirement: Requirement {
                im_loss_factor: p.margin.im_loss_factor,
                mm_loss_factor: p.margin.mm_loss_factor,
                allow_debt: true,
            },
            ..base.clone()
        })
    }

    /// The market, with the case's published feeds inside it.
    fn market(&self, feeds: FeedData) -> Result<MarketSnapshot, Error> {
        let s = &self.scenario;
        let forwards = s
            .option_feeds
            .iter()
            .filter(|f| f.feed_expiry > 0)
            .map(|f| (expiry_instant(f.feed_expiry), f.forward))
            .collect();
        let perpetual_mark = (s.num_perps != 0.0).then_some(s.perp_price);
        let input =
            UnderlyingInput { index: s.spot_price, forwards, perpetual_mark, ..Default::default() };
        let mut builder = MarketSnapshot::builder(UnixNanos::from_secs(REF_TIME_SECONDS))
            .underlying(UNDERLYING, input)
            .usd_price(STABLE, s.stable_price)
            .feeds(feeds);
        for (i, c) in s.collaterals.iter().enumerate() {
            builder = builder.usd_price(collateral_currency(&c.name, i)?, c.price / s.stable_price);
        }
        for (i, o) in s.options.iter().enumerate() {
            let quote = InstrumentQuote { mark_iv: Some(o.mark_vol), ..InstrumentQuote::default() };
            builder = builder.quote(option(o, i)?, quote);
        }
        builder.build().map_err(|e| Error::nested("Scenario", &e.field, e.kind))
    }

    fn portfolio(&self) -> Result<Portfolio, Error> {
        let s = &self.scenario;
        let mut positions = Vec::with_capacity(s.options.len() + 1);
        for (i, o) in s.options.iter().enumerate() {
            positions.push(Position::new(option(o, i)?, o.amount));
        }
        if s.num_perps != 0.0 {
            let kind = InstrumentKind::Perpetual;
            let perpetual = Instrument::new(UNDERLYING, Currency::USD, Settlement::Linear, kind)?;
            positions.push(Position::new(perpetual, s.num_perps));
        }
        // The perpetual's unrealised P&L and funding are part of the account's value, as cash.
        let cash = s.cash + s.unrealised_perp_pnl + s.unrealised_funding;
        let mut balances = vec![money(cash, Currency::USD, "Scenario.Cash")?];
        for (i, c) in s.collaterals.iter().enumerate() {
            let location = format!("Scenario.Collaterals[{i}].Amount");
            balances.push(money(c.amount, collateral_currency(&c.name, i)?, &location)?);
        }
        Portfolio::new(positions, &balances)
            .map_err(|e| Error::nested("Scenario", &e.field, e.kind))
    }

    fn feeds(&self) -> Result<FeedData, Error> {
        let s = &self.scenario;
        let mut feeds = FeedData::default();
        for f in &s.option_feeds {
            let expiry = expiry_instant(f.feed_expiry);
            // Derive's manager floors every published rate at zero.
            feeds.expiry_rates.insert((Currency::USD, expiry), f.rate.max(0.0));
            feeds.expiry_forwards.insert((UNDERLYING, expiry), f.forward);
            let confidence =
                f.forward_confidence.min(f.rate_confidence).min(f.option_vol_confidences);
            feeds.expiry_confidence.insert((UNDERLYING, expiry), confidence);
        }
        feeds.index_confidence.insert(UNDERLYING, s.spot_confidence);
        feeds.perpetual_confidence.insert(UNDERLYING, s.perp_confidence);
        for (i, c) in s.collaterals.iter().enumerate() {
            feeds.currency_confidence.insert(collateral_currency(&c.name, i)?, c.confidence);
        }
        for (i, o) in s.options.iter().enumerate() {
            if !s.option_feeds.iter().any(|f| f.feed_expiry == o.expiry) {
                return Err(Error::missing(
                    format!("Scenario.Options[{i}].Expiry"),
                    format!("an OptionFeeds entry for expiry {}", o.expiry),
                ));
            }
        }
        feeds.validate().map_err(|e| Error::nested("Scenario", &e.field, e.kind))?;
        Ok(feeds)
    }
}

/// The numeraire's cash: no haircut, negative balances (borrowing) accepted.
fn cash_rule() -> CollateralRule {
    CollateralRule { im_haircut: 0.0, mm_haircut: 0.0, risk_cancelling: false, underlying: None }
}

fn collateral_currency(name: &str, i: usize) -> Result<Currency, Error> {
    let location = format!("Scenario.Collaterals[{i}].Name");
    let currency: Currency =
        name.parse().map_err(|e: basics::Error| Error::invalid(&location, e.kind.to_string()))?;
    if [UNDERLYING, STABLE, Currency::USD].contains(&currency) {
        let why =
            format!("{currency} is reserved for the market's underlying, stable coin or cash");
        return Err(Error::invalid(location, why));
    }
    Ok(currency)
}

fn money(amount: f64, currency: Currency, location: &str) -> Result<Money, Error> {
    Money::from_f64(amount, currency, Rounding::Down)
        .map_err(|e| Error::invalid(location, e.kind.to_string()))
}

fn expiry_instant(seconds_to_expiry: i64) -> UnixNanos {
    UnixNanos::from_secs(REF_TIME_SECONDS + seconds_to_expiry)
}

fn option(o: &OptionDocument, i: usize) -> Result<Instrument, Error> {
    let right = match o.is_call {
        1 => OptionRight::Call,
        0 => OptionRight::Put,
        other => {
            let why = format!("IsCall must be 1 or 0, got {other}");
            return Err(Error::invalid(format!("Scenario.Options[{i}].IsCall"), why));
        }
    };
    let kind = InstrumentKind::Option { expiry: expiry_instant(o.expiry), strike: o.strike, right };
    Instrument::new(UNDERLYING, Currency::USD, Settlement::Linear, kind)
        .map_err(|e| Error::nested(&format!("Scenario.Options[{i}]"), &e.field, e.kind))
}

fn scenario_spec(p: &ParametersDocument) -> Result<ScenarioSpec, Error> {
    let explicit = p
        .scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let regular = |vol| Scenario {
                spot_move: s.spot_shock - 1.0,
                vol,
                kind: if s.dampening_factor == 1.0 {
                    ScenarioKind::Regular
                } else {
                    ScenarioKind::Extreme
                },
                weight: s.dampening_factor,
            };
            let skew = |kind| Scenario {
                spot_move: 0.0,
                vol: VolMove::None,
                kind: ScenarioKind::Skew(kind),
                weight: s.dampening_factor,
            };
            let skews = matches!(s.vol_shock_direction.as_str(), "LINEAR" | "ABS");
            if skews && s.spot_shock != 1.0 {
                return Err(Error {
                    location: format!("Parameters.Scenarios[{i}].SpotShock"),
                    kind: crate::ErrorKind::Refused(format!(
                        "a skew scenario moves volatility only, so its spot shock must be 1 (got \
                         {}), as Derive's setScenarios requires",
                        s.spot_shock
                    )),
                });
            }
            Ok(match s.vol_shock_direction.as_str() {
                "Up" => regular(VolMove::Up),
                "Down" => regular(VolMove::Down),
                "None" => regular(VolMove::None),
                "LINEAR" => skew(SkewKind::Linear),
                "ABS" => skew(SkewKind::Absolute),
                other => {
                    let location = format!("Parameters.Scenarios[{i}].VolShockDirection");
                    let why = format!(
                        "unknown direction {other:?}; expected Up, Down, None, LINEAR or ABS"
                    );
                    return Err(Error::invalid(location, why));
                }
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let b = &p.basis_contingency;
    Ok(ScenarioSpec {
        explicit,
        auxiliary_moves: vec![b.scenario_spot_up - 1.0, b.scenario_spot_down - 1.0],
        ..ScenarioSpec::default()
    })
}

fn vol_shock(v: &VolShockParameters) -> VolShock {
    VolShock {
        kind: VolShockKind::Relative,
        up: v.vol_range_up,
        down: v.vol_range_down,
        reference_days: 30.0,
        short_power: v.short_term_power,
        long_power: v.long_term_power,
        power_switch_days: 30.0,
        floor_days: v.dte_floor,
        min_vol_up: v.min_vol_eval_shocked,
    }
}

fn skew_shock(s: &SkewShockParameters) -> SkewShock {
    SkewShock {
        linear_base_cap: s.linear_scale_cap,
        linear_cbase: s.linear_cbase,
        abs_base_cap: s.abs_scale_cap,
        abs_cbase: s.abs_cbase,
        min_k_star: s.min_k_star,
        width_scale: s.min_width_scale,
        vol_param_static: s.vol_param_static,
        vol_param_scale: s.vol_param_scale,
    }
}

fn static_discount(m: &MarginParameters) -> StaticDiscount {
    StaticDiscount {
        long_base: m.base_static_discount,
        long_rate_mult: m.long_rate_multscale,
        long_rate_add: m.long_rate_addscale,
        short_base: m.base_static_discount_neg,
        short_rate_mult: m.short_rate_multscale,
        short_rate_add: m.short_rate_addscale,
    }
}

/// Derive's contingencies as add-ons. MM charges enter IM too (Derive's IM subtracts both), so
/// each MM charge has weight 1 in both and each IM-only charge weight 0 in MM.
fn add_ons(p: &ParametersDocument) -> Vec<AddOn> {
    let (b, o) = (&p.basis_contingency, &p.other_contingency);
    let both = |kind| AddOn { kind, im_weight: 1.0, mm_weight: 1.0 };
    let im_only = |kind| AddOn { kind, im_weight: 1.0, mm_weight: 0.0 };
    vec![
        both(AddOnKind::BasisContingency {
            add_factor: b.basis_cont_add_factor,
            mult_factor: b.basis_cont_mult_factor,
            competes_with_scan: true,
        }),
        both(AddOnKind::PerpetualNotional { fraction: o.mm_perp_percent }),
        im_only(AddOnKind::PerpetualNotional { fraction: o.im_perp_percent }),
        both(AddOnKind::NakedShortOption { fraction: o.mm_option_percent }),
        im_only(AddOnKind::NakedShortOption { fraction: o.im_option_percent }),
        im_only(AddOnKind::OracleConfidence { threshold: o.conf_threshold, factor: o.conf_margin }),
        im_only(AddOnKind::Depeg {
            currency: STABLE,
            threshold: o.peg_loss_threshold,
            factor: o.peg_loss_factor,
        }),
    ]
}

/// Relative tolerance of the conformance comparison (Derive's own harness: 1e-8).
pub const RELATIVE_TOLERANCE: f64 = 1e-8;

/// The error of `computed` against `expected`: relative (`|c − e| / |e|`) when `expected` is not
/// zero, absolute (`|c|`, in units of the numeraire) when it is, since no relative error exists
/// there. Either passes at [`RELATIVE_TOLERANCE`].
#[must_use]
pub fn comparison_error(computed: f64, expected: f64) -> f64 {
    if expected == 0.0 { computed.abs() } else { ((computed - expected) / expected).abs() }
}

/// Ballast's figures in Derive's convention.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetMargins {
    /// Equity − maintenance requirement.
    pub mm: f64,
    /// Equity − initial requirement.
    pub im: f64,
}

impl NetMargins {
    /// Ballast's figures of a case (cross margin: one USD line) in Derive's convention: MM and
    /// IM net of the account's mark-to-market.
    ///
    /// # Errors
    /// `Missing` when the figures have no USD line.
    pub fn of(figures: &[CurrencyFigures]) -> Result<NetMargins, Error> {
        let usd = figures
            .iter()
            .find(|f| f.currency == Currency::USD)
            .ok_or_else(|| Error::missing("figures", "a USD line"))?;
        Ok(NetMargins {
            mm: usd.equity - usd.maintenance_margin,
            im: usd.equity - usd.initial_margin,
        })
    }
}
