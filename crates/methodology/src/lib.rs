//! Methodology as data, and the scenarios it generates.
//!
//! A [`Methodology`] fully defines a margin model: the stress grid (price moves, vol shocks,
//! extreme moves with a covered fraction or dampening, skew shocks), how implied volatility
//! responds to a spot move (sticky strike, sticky moneyness on the SVI surface, or the option's
//! own mark vol), the look-ahead horizon, how P&L is aggregated, the add-ons with their IM and MM
//! weights, collateral treatment, cross-underlying offsets and how IM and MM are formed. It is
//! plain, validated data: the `formats` crate reads it from TOML and hashes its canonical form;
//! peer methodologies (Deribit PM, Derive PMRM_2, SPAN, TIMS) are instances of the same type.
//!
//! [`ScenarioSet::generate`] turns a methodology into the ordered list of [`Scenario`]s for one
//! underlying; [`VolShock::shocked_vol`] and [`SkewShock::multiplier`] give the stressed
//! volatility of one option under one scenario. Everything here is deterministic.
//!
//! **Architecture Invariant:** this crate knows market data (to read surfaces) but not positions.

mod calibration;
mod error;
mod methodology;
mod set;
mod shocks;

pub use calibration::{AntiProcyclicality, Calibration, Sample, UnderlyingCalibration};
pub use error::{Error, ErrorKind};
pub use methodology::{
    AddOn, AddOnKind, Aggregation, CoinConversion, CollateralRule, ExtremeDampener, ExtremeMoves,
    ExtremeWeighting, Methodology, Numeraire, Offsets, PriceGrid, Requirement, ScenarioSpec,
    StaticDiscount, UnderlyingParameters, Valuation, VolDynamics,
};
pub use set::{Scenario, ScenarioKind, ScenarioSet, VolMove};
pub use shocks::{SkewKind, SkewShock, VolShock, VolShockKind};
