//! The record of how a methodology's parameters were fitted to history.
//!
//! `ballast calibrate` writes it into the methodology it produces, so the record is part of
//! the file's canonical hash: two methodologies with the same parameters but fitted on
//! different histories, windows or targets are different versions. The engine never reads
//! it; it is there so that anyone can refit the parameters and compare.

use std::collections::BTreeMap;

use basics::Currency;

use crate::error::{Error, check_range};

/// EMIR's anti-procyclicality options (Regulation 153/2013, article 28), as applied to the
/// fitted parameters rather than to each day's margin: a grid methodology's margin follows
/// its parameters, so damping the parameters damps the margin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AntiProcyclicality {
    /// The parameters that reach the target, nothing more.
    None,
    /// A buffer of `fraction` over the required parameters, released in stress: a refit keeps
    /// the previous parameters while they lie between the required ones and the required ones
    /// plus the buffer, so margins do not rise until the buffer is used up (EMIR: 25 %).
    Buffer {
        /// The buffer over the required parameter, e.g. 0.25.
        fraction: f64,
    },
    /// The stressed period's observations weigh `weight` in the coverage the fit must reach,
    /// the fit window's `1 − weight` (EMIR: at least 25 %).
    StressedWeight {
        /// The stressed observations' weight, e.g. 0.25.
        weight: f64,
    },
    /// The parameters are never below those that reach the target on the stressed period
    /// found in the lookback (EMIR: ten years).
    Floor,
}

impl AntiProcyclicality {
    /// Whether the option reads a stressed period (the weight and the floor do).
    #[must_use]
    pub fn needs_stressed_period(self) -> bool {
        matches!(self, AntiProcyclicality::StressedWeight { .. } | AntiProcyclicality::Floor)
    }
}

/// Exceedances over observations of one account in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Losses above the initial margin.
    pub exceedances: u32,
    /// Observations counted.
    pub observations: u32,
}

/// The fit of one underlying.
#[derive(Debug, Clone, PartialEq)]
pub struct UnderlyingCalibration {
    /// The history file's name, as given.
    pub history: String,
    /// keccak-256 of the history file's bytes, `0x`-prefixed hex.
    pub history_keccak: String,
    /// First and last bar date of the fit window, `YYYY-MM-DD`.
    pub fit: [String; 2],
    /// The out-of-sample window, if one was tested.
    pub test: Option<[String; 2]>,
    /// The stressed period found in the lookback before the fit's end, if the option used one.
    pub stressed: Option<[String; 2]>,
    /// Relative price moves down and up, and the volatility shock's scale, that the target
    /// required before the anti-procyclicality option.
    pub required: [f64; 3],
    /// The price range down written into the methodology.
    pub price_down: f64,
    /// The price range up written into the methodology.
    pub price_up: f64,
    /// The scale applied to the base methodology's volatility shock.
    pub vol_scale: f64,
    /// Each calibration account's in-sample sample.
    pub in_sample: BTreeMap<String, Sample>,
    /// Each calibration account's out-of-sample sample.
    pub out_of_sample: BTreeMap<String, Sample>,
}

/// How a methodology was fitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The coverage of the initial margin aimed at, e.g. 0.99.
    pub target_coverage: f64,
    /// The margin period of risk the losses are taken over, in days.
    pub horizon_days: u32,
    /// The anti-procyclicality option.
    pub anti_procyclicality: AntiProcyclicality,
    /// Years searched back from the fit's end for the stressed period.
    pub lookback_years: u32,
    /// The canonical hash of the replay's surface model.
    pub surface_model: String,
    /// The canonical hash of the methodology the fit started from.
    pub base: String,
    /// The fit of each underlying.
    pub underlyings: BTreeMap<Currency, UnderlyingCalibration>,
}

impl Calibration {
    /// Checks the ranges of the record's numbers.
    ///
    /// # Errors
    /// `OutOfRange` naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        check_range("calibration.target_coverage", self.target_coverage, 0.5, 0.9999)?;
        if self.horizon_days == 0 || self.horizon_days > 30 {
            return Err(Error::range("calibration.horizon_days", "1 to 30 days"));
        }
        match self.anti_procyclicality {
            AntiProcyclicality::Buffer { fraction: share }
            | AntiProcyclicality::StressedWeight { weight: share } => {
                check_range("calibration.anti_procyclicality", share, 0.0, 1.0)?;
            }
            AntiProcyclicality::None | AntiProcyclicality::Floor => {}
        }
        for (underlying, fit) in &self.underlyings {
            let path = format!("calibration.underlyings.{underlying}");
            for (name, value, high) in [
                ("price_down", fit.price_down, 1.0),
                ("price_up", fit.price_up, 10.0),
                ("vol_scale", fit.vol_scale, 100.0),
            ] {
                check_range(&format!("{path}.{name}"), value, 0.0, high)?;
            }
            for (i, value) in fit.required.iter().enumerate() {
                check_range(&format!("{path}.required[{i}]"), *value, 0.0, 100.0)?;
            }
            let samples = fit.in_sample.iter().chain(&fit.out_of_sample);
            if let Some((account, _)) =
                samples.clone().find(|(_, s)| s.exceedances > s.observations)
            {
                return Err(Error::range(
                    format!("{path}.{account}"),
                    "exceedances are at most the observations",
                ));
            }
        }
        Ok(())
    }
}
