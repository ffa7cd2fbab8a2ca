//! Exceedance statistics of a requirement series against the losses that followed it.
//!
//! An observation pairs a requirement (a VaR, a margin) with the loss realised over its horizon;
//! it is an exceedance when the loss is strictly greater than the requirement, so a loss equal
//! to the requirement was covered. At a confidence level `c` exceedances should be rare
//! (probability `p = 1 − c`), independent of each other, and not too many in any year:
//!
//! - Kupiec's proportion of failures: `LR_POF = −2 ln[(1 − p)^(T−x) p^x / ((1 − x/T)^(T−x)
//!   (x/T)^x)] ~ χ²(1)`;
//! - Christoffersen's independence, from the counts `n_ij` of days in state `j` after a day in
//!   state `i` (1 = exceedance): `LR_ind = −2 [ln L(π) − ln L(π₀, π₁)] ~ χ²(1)`, and conditional
//!   coverage `LR_cc = LR_POF + LR_ind ~ χ²(2)`;
//! - the Basel traffic light: with `F` the binomial distribution of exceedances in `T`
//!   observations, green while `F(x) < 95 %`, yellow while `F(x) < 99.99 %`, red from there
//!   (green 0–4, yellow 5–9, red 10 or more for 250 observations at 99 %).
//!
//! Every likelihood uses `0 · ln 0 = 0`, the limit by continuity, so that no exceedances, only
//! exceedances and no transitions out of a state give finite statistics instead of NaN.

mod distribution;

#[cfg(test)]
mod tests;

pub use distribution::{DegreesOfFreedom, binomial_cdf, chi_square_cdf, chi_square_survival};

use crate::confidence::Confidence;
use crate::error::{Error, ErrorKind, Location};
use crate::limits::OBSERVATIONS_MAX;

/// The Basel backtesting window: 250 trading days, one year.
pub const BASEL_WINDOW_OBSERVATIONS: usize = 250;
/// The cumulative probability at which the yellow zone begins (Basel: "equals or exceeds 95 %").
const YELLOW_CUMULATIVE: f64 = 0.95;
/// The cumulative probability at which the red zone begins (Basel: 99.99 %).
const RED_CUMULATIVE: f64 = 0.9999;

/// One requirement and the loss realised against it, losses positive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The figure that was meant to cover the loss.
    pub requirement: f64,
    /// The loss realised over the requirement's horizon (a gain is negative).
    pub loss: f64,
}

impl Observation {
    /// Whether the loss exceeded the requirement (strictly: an equal loss was covered).
    #[must_use]
    pub fn is_exceedance(self) -> bool {
        self.loss > self.requirement
    }
}

/// A likelihood-ratio statistic and its p-value under the null hypothesis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LikelihoodRatio {
    /// The statistic, at least 0.
    pub statistic: f64,
    /// The probability under the null of a statistic at least this large.
    pub p_value: f64,
}

impl LikelihoodRatio {
    /// Whether a test of size `size` (0.05 for a 5 % test) rejects the null.
    #[must_use]
    pub fn rejects(self, size: f64) -> bool {
        self.p_value < size
    }
}

/// Christoffersen's transition counts: `n_ij` days in state `j` following a day in state `i`,
/// 1 being an exceedance. They sum to the number of observations less one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transitions {
    /// Covered after covered.
    pub n00: usize,
    /// Exceedance after covered.
    pub n01: usize,
    /// Covered after exceedance.
    pub n10: usize,
    /// Exceedance after exceedance.
    pub n11: usize,
}

impl Transitions {
    /// The counts of a sequence of exceedance flags.
    pub fn count(flags: impl IntoIterator<Item = bool>) -> Transitions {
        let mut counts = Transitions::default();
        let mut previous = None;
        for flag in flags {
            match (previous, flag) {
                (None, _) => {}
                (Some(false), false) => counts.n00 += 1,
                (Some(false), true) => counts.n01 += 1,
                (Some(true), false) => counts.n10 += 1,
                (Some(true), true) => counts.n11 += 1,
            }
            previous = Some(flag);
        }
        counts
    }
}

/// A Basel traffic-light zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Zone {
    /// As many exceedances as an accurate model plausibly gives.
    Green,
    /// More than 95 % of accurate models would give: a supervisor's plus factor applies.
    Yellow,
    /// More than 99.99 % of accurate models would give: the model is presumed wrong.
    Red,
}

impl Zone {
    /// The zone's name in reports: `green`, `yellow`, `red`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Zone::Green => "green",
            Zone::Yellow => "yellow",
            Zone::Red => "red",
        }
    }
}

/// Where the zones begin for one sample size and level, from the binomial distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneBounds {
    /// The fewest exceedances that are yellow: the first `x` with `F(x) ≥ 95 %`.
    pub yellow_from: usize,
    /// The fewest exceedances that are red: the first `x` with `F(x) ≥ 99.99 %`.
    pub red_from: usize,
}

impl ZoneBounds {
    /// The bounds for `observations` at `confidence`.
    ///
    /// # Errors
    ///
    /// When `observations` is 0 or more than [`OBSERVATIONS_MAX`].
    pub fn new(observations: usize, confidence: Confidence) -> Result<ZoneBounds, Error> {
        check_count("observations", observations)?;
        let p = confidence.tail_probability();
        let (mut yellow_from, mut red_from) = (None, None);
        let mut cumulative = 0.0;
        for (x, probability) in distribution::binomial_probabilities(observations, p).enumerate() {
            cumulative += probability;
            if yellow_from.is_none() && cumulative >= YELLOW_CUMULATIVE {
                yellow_from = Some(x);
            }
            if cumulative >= RED_CUMULATIVE {
                red_from = Some(x);
                break;
            }
        }
        // Rounding can leave the total a hair under 99.99 % only if no count is red at all.
        let red_from = red_from.unwrap_or(observations + 1);
        let yellow_from = yellow_from.unwrap_or(red_from);
        assert!(yellow_from <= red_from, "Invariant: yellow begins no later than red");
        Ok(ZoneBounds { yellow_from, red_from })
    }

    /// The zone of `exceedances`.
    #[must_use]
    pub fn zone(self, exceedances: usize) -> Zone {
        if exceedances < self.yellow_from {
            Zone::Green
        } else if exceedances < self.red_from {
            Zone::Yellow
        } else {
            Zone::Red
        }
    }
}

/// The excess losses of the exceedances, `loss − requirement`, worst first.
#[derive(Debug, Clone, PartialEq)]
pub struct Magnitudes {
    /// Every excess, largest first.
    pub worst_first: Vec<f64>,
    /// Their mean (summed worst first), or `None` without exceedances.
    pub mean: Option<f64>,
    /// The largest, or `None` without exceedances.
    pub max: Option<f64>,
}

/// Every statistic of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// `T`, the observations.
    pub observations: usize,
    /// `x`, the exceedances.
    pub exceedances: usize,
    /// `x / T`.
    pub rate: f64,
    /// Kupiec's proportion of failures.
    pub proportion_of_failures: LikelihoodRatio,
    /// The transition counts behind the independence test.
    pub transitions: Transitions,
    /// Christoffersen's independence.
    pub independence: LikelihoodRatio,
    /// Christoffersen's conditional coverage (two degrees of freedom).
    pub conditional_coverage: LikelihoodRatio,
    /// The traffic-light bounds for `T` observations.
    pub bounds: ZoneBounds,
    /// The zone of the whole series.
    pub zone: Zone,
    /// How far the exceedances went.
    pub magnitudes: Magnitudes,
}

/// Every statistic of `observations` at `confidence`.
///
/// # Errors
///
/// No observations, more than [`OBSERVATIONS_MAX`], or a requirement or loss that is not finite
/// (named by its index).
pub fn coverage(observations: &[Observation], confidence: Confidence) -> Result<Coverage, Error> {
    check_observations(observations)?;
    let flags: Vec<bool> = observations.iter().map(|o| o.is_exceedance()).collect();
    of_flags(&flags, magnitudes(observations), confidence)
}

/// Every statistic of a series given by its exceedance flags (in time order) and the excess
/// `loss − requirement` of each exceedance: what [`coverage`] computes from the observations, for
/// callers that keep a bit per observation instead of the whole series (a backtest of ten
/// thousand accounts).
///
/// # Errors
/// No flags or more than [`OBSERVATIONS_MAX`]; not one excess per exceedance; an excess that is
/// not finite and positive.
pub fn coverage_of_flags(
    flags: &[bool],
    excesses: &[f64],
    confidence: Confidence,
) -> Result<Coverage, Error> {
    check_count("observations", flags.len())?;
    let exceedances = flags.iter().filter(|&&flag| flag).count();
    if excesses.len() != exceedances {
        let rule = format!("{} excesses for {exceedances} exceedances", excesses.len());
        return Err(Error::range("excesses", rule));
    }
    if let Some(index) = excesses.iter().position(|e| !(e.is_finite() && *e > 0.0)) {
        let kind = ErrorKind::OutOfRange("an excess is finite and positive".to_owned());
        return Err(Error::new("excesses", Some(Location::Index(index)), kind));
    }
    let mut worst_first = excesses.to_vec();
    worst_first.sort_unstable_by(|a, b| b.total_cmp(a));
    of_flags(flags, magnitudes_of(worst_first), confidence)
}

fn of_flags(
    flags: &[bool],
    magnitudes: Magnitudes,
    confidence: Confidence,
) -> Result<Coverage, Error> {
    let count = flags.len();
    let exceedances = flags.iter().filter(|&&flag| flag).count();
    let transitions = Transitions::count(flags.iter().copied());
    let proportion_of_failures = kupiec(count, exceedances, confidence)?;
    let independence = christoffersen(transitions);
    let statistic = proportion_of_failures.statistic + independence.statistic;
    let p_value = chi_square_survival(statistic, DegreesOfFreedom::Two);
    let bounds = ZoneBounds::new(count, confidence)?;
    Ok(Coverage {
        observations: count,
        exceedances,
        rate: exceedances as f64 / count as f64,
        proportion_of_failures,
        transitions,
        independence,
        conditional_coverage: LikelihoodRatio { statistic, p_value },
        bounds,
        zone: bounds.zone(exceedances),
        magnitudes,
    })
}

/// Kupiec's proportion-of-failures test of `exceedances` in `observations` at `confidence`.
///
/// # Errors
///
/// When `observations` is 0 or more than [`OBSERVATIONS_MAX`], or `exceedances` is more than
/// `observations`.
pub fn kupiec(
    observations: usize,
    exceedances: usize,
    confidence: Confidence,
) -> Result<LikelihoodRatio, Error> {
    check_count("observations", observations)?;
    if exceedances > observations {
        let rule = format!("{exceedances} exceedances in {observations} observations");
        return Err(Error::range("exceedances", rule));
    }
    let (t, x) = (observations as f64, exceedances as f64);
    let p = confidence.tail_probability();
    let rate = x / t;
    let null = x_ln_y(t - x, 1.0 - p) + x_ln_y(x, p);
    let fitted = x_ln_y(t - x, 1.0 - rate) + x_ln_y(x, rate);
    Ok(ratio(null, fitted, DegreesOfFreedom::One))
}

/// Christoffersen's independence test of the transition counts.
///
/// Without any transition (fewer than two observations) the statistic is 0 and the p-value 1.
#[must_use]
pub fn christoffersen(transitions: Transitions) -> LikelihoodRatio {
    let Transitions { n00, n01, n10, n11 } = transitions;
    let [n00, n01, n10, n11] = [n00, n01, n10, n11].map(|n| n as f64);
    let fraction = |part: f64, whole: f64| if whole > 0.0 { part / whole } else { 0.0 };
    let pi0 = fraction(n01, n00 + n01);
    let pi1 = fraction(n11, n10 + n11);
    let pi = fraction(n01 + n11, n00 + n01 + n10 + n11);
    let null = x_ln_y(n00 + n10, 1.0 - pi) + x_ln_y(n01 + n11, pi);
    let fitted =
        x_ln_y(n00, 1.0 - pi0) + x_ln_y(n01, pi0) + x_ln_y(n10, 1.0 - pi1) + x_ln_y(n11, pi1);
    ratio(null, fitted, DegreesOfFreedom::One)
}

/// The traffic-light zone of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowZone {
    /// The index of the window's first observation.
    pub start: usize,
    /// Exceedances inside the window.
    pub exceedances: usize,
    /// Their zone.
    pub zone: Zone,
}

/// The zone of every window of `window` consecutive observations (one per start, so
/// `observations.len() − window + 1` of them), with the bounds for `window` observations.
///
/// # Errors
///
/// As [`coverage`] for the observations; a window of 0 or longer than the series.
pub fn window_zones(
    observations: &[Observation],
    confidence: Confidence,
    window: usize,
) -> Result<Vec<WindowZone>, Error> {
    check_observations(observations)?;
    let flags: Vec<bool> = observations.iter().map(|o| o.is_exceedance()).collect();
    window_zones_of_flags(&flags, confidence, window)
}

/// [`window_zones`] of a series given by its exceedance flags, in time order.
///
/// # Errors
/// No flags or more than [`OBSERVATIONS_MAX`]; a window of 0 or longer than the series.
pub fn window_zones_of_flags(
    flags: &[bool],
    confidence: Confidence,
    window: usize,
) -> Result<Vec<WindowZone>, Error> {
    check_count("observations", flags.len())?;
    if window == 0 || window > flags.len() {
        let rule = format!("a window of {window} in {} observations", flags.len());
        return Err(Error::range("window", rule));
    }
    let bounds = ZoneBounds::new(window, confidence)?;
    let mut exceedances = flags[..window].iter().filter(|&&flag| flag).count();
    let mut out = Vec::with_capacity(flags.len() - window + 1);
    out.push(WindowZone { start: 0, exceedances, zone: bounds.zone(exceedances) });
    for start in 1..=flags.len() - window {
        exceedances -= usize::from(flags[start - 1]);
        exceedances += usize::from(flags[start + window - 1]);
        out.push(WindowZone { start, exceedances, zone: bounds.zone(exceedances) });
    }
    Ok(out)
}

fn magnitudes(observations: &[Observation]) -> Magnitudes {
    let mut worst_first: Vec<f64> =
        observations.iter().filter(|o| o.is_exceedance()).map(|o| o.loss - o.requirement).collect();
    worst_first.sort_unstable_by(|a, b| b.total_cmp(a));
    magnitudes_of(worst_first)
}

fn magnitudes_of(worst_first: Vec<f64>) -> Magnitudes {
    let max = worst_first.first().copied();
    let mean = max.map(|_| worst_first.iter().sum::<f64>() / worst_first.len() as f64);
    Magnitudes { worst_first, mean, max }
}

/// `x · ln y`, with `0 · ln 0 = 0` (the limit by continuity).
fn x_ln_y(x: f64, y: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x * y.ln() }
}

/// `−2 (ln L_null − ln L_fitted)` and its p-value. The fitted likelihood is the maximum, so the
/// statistic is at least 0; rounding can leave it a hair below when the two coincide, and it is
/// clamped there.
fn ratio(null: f64, fitted: f64, dof: DegreesOfFreedom) -> LikelihoodRatio {
    let statistic = (-2.0 * (null - fitted)).max(0.0);
    assert!(statistic.is_finite(), "Invariant: a likelihood ratio of finite counts is finite");
    LikelihoodRatio { statistic, p_value: chi_square_survival(statistic, dof) }
}

fn check_count(field: &'static str, count: usize) -> Result<(), Error> {
    if count == 0 {
        return Err(Error::range(field, "at least one observation"));
    }
    if count > OBSERVATIONS_MAX {
        return Err(Error::limit(field, "OBSERVATIONS_MAX", OBSERVATIONS_MAX));
    }
    Ok(())
}

fn check_observations(observations: &[Observation]) -> Result<(), Error> {
    check_count("observations", observations.len())?;
    let bad = observations.iter().position(|o| !o.requirement.is_finite() || !o.loss.is_finite());
    match bad {
        None => Ok(()),
        Some(index) => {
            let field =
                if observations[index].requirement.is_finite() { "loss" } else { "requirement" };
            Err(Error::new(field, Some(Location::Index(index)), ErrorKind::NotFinite))
        }
    }
}
