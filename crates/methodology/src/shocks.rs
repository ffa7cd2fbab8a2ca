//! Volatility and skew shocks.
//!
//! Both peer families the methodology language must express shock volatility relative to a
//! 30-day reference and scale the shock with time to expiry, `(30d / max(T, floor))^p`, with a
//! steeper power for short expiries: short-dated volatility moves more. Deribit and Derive use
//! relative shocks (60 vol + 50 % = 90 vol); SPAN-style files use absolute ones (60 vol + 10 vol).
//!
//! The skew shock is Derive PMRM_2's, generalised: at an unchanged spot, each option's volatility
//! is multiplied by `1 + clamp(k · cap / k*, −cap, cap)` where `k = ln(K/F)` (or `|k|` for the
//! symmetric "abs" shock), `cap = cbase·√T + base_cap` and `k* = max(k*_min, √T · width ·
//! (static + √T · scale))`: a tilt (linear) or a smile steepening (abs) whose width grows like a
//! standard deviation of log-moneyness. The bound applies on the side of `k` only (`min(x, cap)`
//! for `k ≥ 0`, `max(x, −cap)` below), which differs from a clamp only when `cap < 0`.

use crate::error::check_range;
use crate::{Error, VolMove};

/// Relative (multiplicative) or absolute (additive) volatility shocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolShockKind {
    /// σ' = σ · (1 ± shock · scale).
    Relative,
    /// σ' = σ ± shock · scale.
    Absolute,
}

/// Term-scaled volatility shock parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolShock {
    /// Relative or absolute.
    pub kind: VolShockKind,
    /// Up shock at the reference tenor (a fraction for relative shocks, vol points for absolute).
    pub up: f64,
    /// Down shock at the reference tenor.
    pub down: f64,
    /// Reference tenor in days (30 for Deribit and Derive).
    pub reference_days: f64,
    /// Power applied to `reference / days` for expiries up to `power_switch_days`.
    pub short_power: f64,
    /// Power applied beyond `power_switch_days`.
    pub long_power: f64,
    /// Expiries of at most this many days use `short_power`.
    pub power_switch_days: f64,
    /// Floor on days to expiry in the scaling (avoids an infinite shock at expiry).
    pub floor_days: f64,
    /// Floor on the up-shocked volatility (0 for none).
    pub min_vol_up: f64,
}

impl VolShock {
    /// No shock at all (for methodologies that stress price only).
    #[must_use]
    pub fn none() -> VolShock {
        VolShock {
            kind: VolShockKind::Relative,
            up: 0.0,
            down: 0.0,
            reference_days: 30.0,
            short_power: 0.0,
            long_power: 0.0,
            power_switch_days: 30.0,
            floor_days: 1.0,
            min_vol_up: 0.0,
        }
    }

    /// Checks every parameter.
    ///
    /// # Errors
    /// `OutOfRange` naming the parameter under `vol_shock`.
    pub fn validate(&self) -> Result<(), Error> {
        check_range("vol_shock.up", self.up, 0.0, 100.0)?;
        check_range("vol_shock.down", self.down, 0.0, 100.0)?;
        check_range("vol_shock.reference_days", self.reference_days, 1e-6, 3650.0)?;
        check_range("vol_shock.short_power", self.short_power, 0.0, 10.0)?;
        check_range("vol_shock.long_power", self.long_power, 0.0, 10.0)?;
        check_range("vol_shock.power_switch_days", self.power_switch_days, 0.0, 3650.0)?;
        // A zero floor is Derive's minimum; an option at its expiry instant then has an
        // infinite scale, which the engine reports as a non-finite value, never silently.
        check_range("vol_shock.floor_days", self.floor_days, 0.0, 3650.0)?;
        check_range("vol_shock.min_vol_up", self.min_vol_up, 0.0, 100.0)
    }

    /// The tenor scale `(reference / max(days, floor))^p` for an expiry `years` ahead.
    #[must_use]
    pub fn scale(&self, years: f64) -> f64 {
        let days = years * basics::DAYS_PER_YEAR;
        let power = if days <= self.power_switch_days { self.short_power } else { self.long_power };
        (self.reference_days / days.max(self.floor_days)).powf(power)
    }

    /// The stressed volatility of an option with volatility `vol` expiring `years` ahead.
    #[must_use]
    pub fn shocked_vol(&self, vol: f64, years: f64, direction: VolMove) -> f64 {
        self.shocked_vol_at_scale(vol, self.scale(years), direction)
    }

    /// [`VolShock::shocked_vol`] with the tenor scale already computed (it depends only on the
    /// expiry, so risk arrays compute it once per instrument rather than once per scenario).
    #[must_use]
    pub fn shocked_vol_at_scale(&self, vol: f64, scale: f64, direction: VolMove) -> f64 {
        match (direction, self.kind) {
            (VolMove::None, _) => vol,
            (VolMove::Up, VolShockKind::Relative) => {
                (vol * (1.0 + self.up * scale)).max(self.min_vol_up)
            }
            (VolMove::Up, VolShockKind::Absolute) => (vol + self.up * scale).max(self.min_vol_up),
            (VolMove::Down, VolShockKind::Relative) => vol * (1.0 - self.down * scale).max(0.0),
            (VolMove::Down, VolShockKind::Absolute) => (vol - self.down * scale).max(0.0),
        }
    }
}

/// The two skew scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkewKind {
    /// Tilt: volatility rises above the forward (the call wing) and falls below it.
    Linear,
    /// The opposite tilt: the put wing rises, as it does in crypto sell-offs.
    LinearInverse,
    /// Steepening: volatility rises in both wings.
    Absolute,
}

/// Skew shock parameters (Derive PMRM_2's `SkewShockParameters`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkewShock {
    /// Cap of the linear tilt at T = 0.
    pub linear_base_cap: f64,
    /// Growth of the linear cap with √T.
    pub linear_cbase: f64,
    /// Cap of the steepening at T = 0.
    pub abs_base_cap: f64,
    /// Growth of the steepening cap with √T.
    pub abs_cbase: f64,
    /// Smallest width k*.
    pub min_k_star: f64,
    /// Width scale.
    pub width_scale: f64,
    /// Static volatility parameter of the width.
    pub vol_param_static: f64,
    /// √T-proportional volatility parameter of the width.
    pub vol_param_scale: f64,
}

impl SkewShock {
    /// Checks every parameter.
    ///
    /// # Errors
    /// `OutOfRange` naming the parameter under `skew_shock`.
    pub fn validate(&self) -> Result<(), Error> {
        check_range("skew_shock.linear_base_cap", self.linear_base_cap, 0.0, 10.0)?;
        check_range("skew_shock.linear_cbase", self.linear_cbase, -10.0, 10.0)?;
        check_range("skew_shock.abs_base_cap", self.abs_base_cap, 0.0, 10.0)?;
        check_range("skew_shock.abs_cbase", self.abs_cbase, -10.0, 10.0)?;
        check_range("skew_shock.min_k_star", self.min_k_star, 0.0, 10.0)?;
        check_range("skew_shock.width_scale", self.width_scale, 0.0, 10.0)?;
        check_range("skew_shock.vol_param_static", self.vol_param_static, 0.0, 10.0)?;
        check_range("skew_shock.vol_param_scale", self.vol_param_scale, -20.0, 20.0)
    }

    /// The volatility multiplier of an option at log-moneyness `k = ln(K/F)`, `years` ahead.
    #[must_use]
    pub fn multiplier(&self, kind: SkewKind, k: f64, years: f64) -> f64 {
        let sqrt_t = years.max(0.0).sqrt();
        let (base_cap, cbase, moneyness) = match kind {
            SkewKind::Linear => (self.linear_base_cap, self.linear_cbase, k),
            SkewKind::LinearInverse => (self.linear_base_cap, self.linear_cbase, -k),
            SkewKind::Absolute => (self.abs_base_cap, self.abs_cbase, k.abs()),
        };
        let cap = cbase * sqrt_t + base_cap;
        let width =
            sqrt_t * self.width_scale * (self.vol_param_static + sqrt_t * self.vol_param_scale);
        let k_star = width.max(self.min_k_star);
        // The cap bounds the tilt on the side of the moneyness: `min(x, cap)` above the forward,
        // `max(x, −cap)` below. For a positive cap this is `clamp(x, −cap, cap)`; a negative cap
        // (a strongly negative `cbase` at long tenors) inverts the tilt, and Derive then keeps
        // the larger of the two inverted values, which is what this form reproduces.
        // With k* = 0 (allowed at T = 0) an option at the forward is not tilted at all.
        let tilt = if moneyness == 0.0 { 0.0 } else { moneyness * cap / k_star };
        let tilt = if moneyness >= 0.0 { tilt.min(cap) } else { tilt.max(-cap) };
        (1.0 + tilt).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive_vol_shock() -> VolShock {
        VolShock {
            kind: VolShockKind::Relative,
            up: 0.5,
            down: 0.275,
            reference_days: 30.0,
            short_power: 0.3,
            long_power: 0.13,
            power_switch_days: 30.0,
            floor_days: 1.0,
            min_vol_up: 0.45,
        }
    }

    /// Derive PMRM_2 test_12 (../shared/research/defi-pm.md 1.4): T = 794,852 s, mark vol
    /// 0.453804 → multipliers 1.712811 (up) and 0.607954 (down), vols 0.777281 and 0.275892.
    #[test]
    fn reproduces_derive_test_12_multipliers() {
        let shock = derive_vol_shock();
        let years = 794_852.0 / (365.0 * 86_400.0);
        let vol = 0.453_803_924_321_583;
        let up = shock.shocked_vol(vol, years, VolMove::Up);
        let down = shock.shocked_vol(vol, years, VolMove::Down);
        assert!((up / vol - 1.712_811_375_927_374).abs() < 1e-12, "{}", up / vol);
        assert!((down / vol - 0.607_953_743_239_944_3).abs() < 1e-12, "{}", down / vol);
        assert!((up - 0.777_280_524_018_492_5).abs() < 1e-12);
        assert_eq!(shock.shocked_vol(vol, years, VolMove::None), vol);
        // The up floor binds for low vols.
        assert_eq!(shock.shocked_vol(0.1, 2.0, VolMove::Up), 0.45);
    }

    /// Derive test_12's skew intermediates: k = 0.043151, caps 0.142062, k* = 0.370941,
    /// multiplier 1.016526 (the same for linear and abs, since k > 0).
    #[test]
    fn reproduces_derive_test_12_skew() {
        let skew = SkewShock {
            linear_base_cap: 0.15,
            linear_cbase: -0.05,
            abs_base_cap: 0.15,
            abs_cbase: -0.05,
            min_k_star: 0.01,
            width_scale: 4.0,
            vol_param_static: 0.6,
            vol_param_scale: -0.1,
        };
        let years = 794_852.0 / (365.0 * 86_400.0);
        let k = 0.043_151_017_850_228_957;
        let m = skew.multiplier(SkewKind::Linear, k, years);
        assert!((m - 1.016_525_862_345_59).abs() < 1e-12, "{m}");
        assert_eq!(m, skew.multiplier(SkewKind::Absolute, k, years));
        // Below the forward the tilt lowers volatility, the steepening raises it.
        assert!(skew.multiplier(SkewKind::Linear, -k, years) < 1.0);
        assert_eq!(skew.multiplier(SkewKind::LinearInverse, -k, years), m);
        assert!(skew.multiplier(SkewKind::Absolute, -k, years) > 1.0);
    }

    /// Derive's test_128 (linear `cbase` = −10): at T = 8,657,252 s the cap is −5.089462 and an
    /// option at k = −0.566680 has the multiplier 6.089462 in the case file, i.e. `1 − cap`
    /// (`max(x, −cap)` with x = 2.51), where a symmetric clamp would give 1 + 2.51.
    #[test]
    fn negative_cap_bounds_on_the_side_of_k() {
        let skew = SkewShock {
            linear_base_cap: 0.15,
            linear_cbase: -10.0,
            abs_base_cap: 0.15,
            abs_cbase: -0.05,
            min_k_star: 0.01,
            width_scale: 4.0,
            vol_param_static: 0.6,
            vol_param_scale: -0.1,
        };
        let years = 8_657_252.0 / (365.0 * 86_400.0);
        let m = skew.multiplier(SkewKind::Linear, -0.566_679_858_739_895_5, years);
        assert!((m - 6.089_462_377_677_98).abs() < 1e-12, "{m}");
    }

    #[test]
    fn absolute_shocks_and_validation() {
        let shock = VolShock {
            kind: VolShockKind::Absolute,
            up: 0.1,
            down: 0.1,
            min_vol_up: 0.0,
            ..derive_vol_shock()
        };
        let at_30d = shock.shocked_vol(0.5, 30.0 / 365.0, VolMove::Up);
        assert!((at_30d - 0.6).abs() < 1e-15);
        assert_eq!(shock.shocked_vol(0.05, 30.0 / 365.0, VolMove::Down), 0.0);
        let bad = VolShock { short_power: f64::NAN, ..shock };
        assert_eq!(bad.validate().unwrap_err().field, "vol_shock.short_power");
    }
}
