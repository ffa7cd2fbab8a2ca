//! Scenarios rescaled to today's volatility, and figures over horizons longer than a day.

use crate::error::{Error, ErrorKind, Location};
use crate::limits::{HISTORY_SCENARIOS_MAX, HORIZON_DAYS_MAX};

/// RiskMetrics' decay factor for daily data (J.P. Morgan/Reuters, RiskMetrics Technical Document,
/// 1996): the weight of yesterday's variance in today's.
pub const RISKMETRICS_LAMBDA: f64 = 0.94;

/// Filtered historical simulation: each past return rescaled by the ratio of the current EWMA
/// volatility to the volatility at its own date, `r*_t = r_t · σ_(T+1) / σ_t`.
///
/// The variance forecast for date `t` uses the returns before it,
/// `σ²_(t+1) = λ σ²_t + (1 − λ) r²_t`; `σ_(T+1)` is the forecast after the last return. The
/// recursion starts from the series' own mean square, `σ²_1 = Σ r² / T`, so the filter needs no
/// outside input, and the start is forgotten at the rate `λ^t` (0.94^100 ≈ 0.2 %). A calm past
/// return is scaled up in a volatile present and a wild one scaled down, so the scenarios have
/// today's volatility and the past's shapes. `lambda` is usually [`RISKMETRICS_LAMBDA`].
///
/// # Errors
///
/// No returns or more than [`HISTORY_SCENARIOS_MAX`], a return that is not finite, `lambda` not
/// strictly between 0 and 1, or a variance that underflowed to zero before a non-zero return
/// (named by its index).
pub fn filtered_scenarios(returns: &[f64], lambda: f64) -> Result<Vec<f64>, Error> {
    check_series("returns", returns)?;
    if !(lambda > 0.0 && lambda < 1.0) {
        return Err(Error::range("lambda", format!("{lambda} is not strictly between 0 and 1")));
    }
    let mean_square = returns.iter().map(|r| r * r).sum::<f64>() / returns.len() as f64;
    let mut forecasts = Vec::with_capacity(returns.len());
    let mut variance = mean_square;
    for r in returns {
        forecasts.push(variance);
        variance = lambda * variance + (1.0 - lambda) * r * r;
    }
    let current = variance;
    let mut scaled = Vec::with_capacity(returns.len());
    for (index, (&r, &forecast)) in returns.iter().zip(&forecasts).enumerate() {
        if r == 0.0 {
            scaled.push(0.0);
        } else if forecast > 0.0 {
            scaled.push(r * (current / forecast).sqrt());
        } else {
            let kind = ErrorKind::OutOfRange("the EWMA variance underflowed to zero".to_owned());
            return Err(Error::new("returns", Some(Location::Index(index)), kind));
        }
    }
    Ok(scaled)
}

/// A one-day figure scaled to `horizon_days` by the square root of time, `x · √h`.
///
/// Exact only for independent, identically distributed daily P&L with zero mean; fat tails and
/// volatility clustering make it understate a crash's 10-day loss. Basel's 1996 market-risk rules
/// allowed it for the 10-day VaR; [`overlapping_sums`] is the alternative that keeps the path.
///
/// # Errors
///
/// A figure that is not finite, or a horizon of 0 or more than [`HORIZON_DAYS_MAX`].
pub fn square_root_of_time(one_day: f64, horizon_days: usize) -> Result<f64, Error> {
    if !one_day.is_finite() {
        return Err(Error::new("one_day", None, ErrorKind::NotFinite));
    }
    check_horizon(horizon_days, usize::MAX)?;
    Ok(one_day * (horizon_days as f64).sqrt())
}

/// The sums of every `horizon_days` consecutive daily values (P&L, or log returns, which add
/// over time): `daily.len() − h + 1` overlapping scenarios, the `i`-th covering days `i` to
/// `i + h − 1`. Each window is summed on its own, in day order, so no rounding drifts along the
/// series. Overlapping windows share days, so the sums are not independent: a VaR of them has
/// fewer effective observations than it has scenarios.
///
/// # Errors
///
/// No values or more than [`HISTORY_SCENARIOS_MAX`], a value that is not finite, or a horizon of
/// 0, more than [`HORIZON_DAYS_MAX`] or longer than the series.
pub fn overlapping_sums(daily: &[f64], horizon_days: usize) -> Result<Vec<f64>, Error> {
    check_series("daily", daily)?;
    check_horizon(horizon_days, daily.len())?;
    Ok(daily.windows(horizon_days).map(|window| window.iter().sum()).collect())
}

fn check_series(field: &'static str, values: &[f64]) -> Result<(), Error> {
    if values.is_empty() {
        return Err(Error::range(field, "at least one value"));
    }
    if values.len() > HISTORY_SCENARIOS_MAX {
        return Err(Error::limit(field, "HISTORY_SCENARIOS_MAX", HISTORY_SCENARIOS_MAX));
    }
    match values.iter().position(|value| !value.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::new(field, Some(Location::Index(index)), ErrorKind::NotFinite)),
    }
}

fn check_horizon(horizon_days: usize, length: usize) -> Result<(), Error> {
    if horizon_days == 0 {
        return Err(Error::range("horizon_days", "at least one day"));
    }
    if horizon_days > HORIZON_DAYS_MAX {
        return Err(Error::limit("horizon_days", "HORIZON_DAYS_MAX", HORIZON_DAYS_MAX));
    }
    if horizon_days > length {
        let rule = format!("a horizon of {horizon_days} days over {length} values");
        return Err(Error::range("horizon_days", rule));
    }
    Ok(())
}
