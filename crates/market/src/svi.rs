//! Raw SVI smiles and their no-arbitrage conditions.
//!
//! Gatheral's raw SVI gives the total implied variance of one expiry as a function of the
//! log-moneyness `k = ln(K/F)`:
//!
//! ```text
//! w(k) = a + b · (ρ · (k − m) + √((k − m)² + σ²))
//! ```
//!
//! Five parameters capture level (`a`), wing slope (`b`), skew (`ρ`), location (`m`) and ATM
//! curvature (`σ`). A slice is free of butterfly arbitrage when the implied risk-neutral density
//! is non-negative, i.e. when Gatheral's
//!
//! ```text
//! g(k) = (1 − k·w'/(2w))² − (w'²/4)·(1/w + 1/4) + w''/2  ≥ 0
//! ```
//!
//! for every `k`, and when both wings grow no faster than Roger Lee's moment bound allows,
//! `b·(1 + |ρ|) ≤ 2`. Two slices are free of calendar arbitrage when total variance does not
//! decrease with expiry at any fixed `k`. [`SviSlice::new`] enforces the first; the surface
//! enforces the second.

use basics::UnixNanos;

use crate::error::finite;
use crate::{Error, ErrorKind};

/// Half-width of the log-moneyness window scanned for butterfly arbitrage, in units of the ATM
/// total volatility `√w(m)`, and its floor. Beyond ±12 standard deviations no strike trades.
const BUTTERFLY_WINDOW_STDEVS: f64 = 12.0;
const BUTTERFLY_WINDOW_MIN: f64 = 2.0;
/// Points of the butterfly scan.
pub(crate) const BUTTERFLY_GRID_POINTS: usize = 801;
/// Tolerance on `g(k)`, absorbing rounding in a density that is exactly zero at its minimum.
const BUTTERFLY_TOLERANCE: f64 = 1e-9;
/// Lee's bound on the asymptotic slope of total variance in log-moneyness.
const WING_SLOPE_MAX: f64 = 2.0;

/// Raw SVI parameters. Plain data: [`SviSlice`] validates them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SviParams {
    /// Level of total variance.
    pub a: f64,
    /// Slope of the wings (>= 0).
    pub b: f64,
    /// Skew, the asymmetry of the wings (|ρ| < 1).
    pub rho: f64,
    /// Horizontal location of the vertex.
    pub m: f64,
    /// ATM curvature (> 0).
    pub sigma: f64,
}

impl SviParams {
    /// Total implied variance `w(k)`.
    #[must_use]
    pub fn total_variance(&self, k: f64) -> f64 {
        let x = k - self.m;
        self.a + self.b * (self.rho * x + (x * x + self.sigma * self.sigma).sqrt())
    }

    /// `(w, w', w'')` at `k`.
    #[must_use]
    pub fn derivatives(&self, k: f64) -> (f64, f64, f64) {
        let x = k - self.m;
        let root = (x * x + self.sigma * self.sigma).sqrt();
        let w = self.a + self.b * (self.rho * x + root);
        let w1 = self.b * (self.rho + x / root);
        let w2 = self.b * self.sigma * self.sigma / (root * root * root);
        (w, w1, w2)
    }

    /// Gatheral's density factor `g(k)`; the risk-neutral density is `φ(d2)·g / √w`.
    #[must_use]
    pub fn butterfly_density(&self, k: f64) -> f64 {
        let (w, w1, w2) = self.derivatives(k);
        let term = 1.0 - k * w1 / (2.0 * w);
        term * term - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
    }

    /// The minimum total variance, `a + b·σ·√(1 − ρ²)`, reached at `k = m − ρσ/√(1 − ρ²)`.
    #[must_use]
    pub fn minimum_total_variance(&self) -> f64 {
        self.a + self.b * self.sigma * (1.0 - self.rho * self.rho).sqrt()
    }

    /// The log-moneyness window scanned for arbitrage: wide enough to contain every strike that
    /// could carry a non-negligible price.
    #[must_use]
    pub fn scan_window(&self) -> (f64, f64) {
        let atm = self.total_variance(self.m).max(0.0).sqrt();
        let half = (BUTTERFLY_WINDOW_STDEVS * atm).max(BUTTERFLY_WINDOW_MIN);
        (self.m - half, self.m + half)
    }

    /// Checks the parameter domain and the absence of butterfly arbitrage.
    ///
    /// # Errors
    /// `NotFinite`/`OutOfRange` naming the parameter, or `Arbitrage` with the offending `k`.
    pub fn check(&self) -> Result<(), Error> {
        for (name, value) in
            [("a", self.a), ("b", self.b), ("rho", self.rho), ("m", self.m), ("sigma", self.sigma)]
        {
            finite(name, value)?;
        }
        if self.b < 0.0 {
            return Err(Error::range("b", format!("must be >= 0, got {}", self.b)));
        }
        if self.rho.abs() >= 1.0 {
            return Err(Error::range("rho", format!("|rho| must be < 1, got {}", self.rho)));
        }
        if self.sigma <= 0.0 {
            return Err(Error::range("sigma", format!("must be > 0, got {}", self.sigma)));
        }
        let minimum = self.minimum_total_variance();
        if minimum < 0.0 {
            let what = format!("total variance reaches {minimum:e} < 0");
            return Err(Error::new("a", ErrorKind::Arbitrage(what)));
        }
        let slope = self.b * (1.0 + self.rho.abs());
        if slope > WING_SLOPE_MAX {
            let what =
                format!("wing slope b(1+|rho|) = {slope} exceeds Lee's bound {WING_SLOPE_MAX}");
            return Err(Error::new("b", ErrorKind::Arbitrage(what)));
        }
        if let Some((k, g)) = self.worst_butterfly() {
            let what = format!("butterfly: density factor g({k:.4}) = {g:e} < 0");
            return Err(Error::new("params", ErrorKind::Arbitrage(what)));
        }
        Ok(())
    }

    /// The point of the scan window where `g` is most negative, if it is below tolerance.
    #[must_use]
    pub fn worst_butterfly(&self) -> Option<(f64, f64)> {
        let (low, high) = self.scan_window();
        let step = (high - low) / (BUTTERFLY_GRID_POINTS - 1) as f64;
        let mut worst: Option<(f64, f64)> = None;
        for i in 0..BUTTERFLY_GRID_POINTS {
            let k = low + step * i as f64;
            let g = self.butterfly_density(k);
            let w = self.total_variance(k);
            let bad = !g.is_finite() || g < -BUTTERFLY_TOLERANCE || w <= 0.0;
            if bad && worst.is_none_or(|(_, worst_g)| g < worst_g) {
                worst = Some((k, if w <= 0.0 { -1.0 } else { g }));
            }
        }
        worst
    }
}

/// One validated expiry of a volatility surface: its forward, time to expiry and SVI smile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SviSlice {
    expiry: UnixNanos,
    years: f64,
    forward: f64,
    params: SviParams,
}

impl SviSlice {
    /// Validates a slice: positive time and forward, SVI domain, no butterfly arbitrage.
    ///
    /// # Errors
    /// As [`SviParams::check`], or `OutOfRange` for `years`/`forward`.
    pub fn new(
        expiry: UnixNanos,
        years: f64,
        forward: f64,
        params: SviParams,
    ) -> Result<SviSlice, Error> {
        finite("years", years)?;
        finite("forward", forward)?;
        if years <= 0.0 {
            return Err(Error::range(
                "years",
                format!("the expiry must be after the valuation time, got {years}"),
            ));
        }
        if forward <= 0.0 {
            return Err(Error::range("forward", format!("must be > 0, got {forward}")));
        }
        params.check()?;
        Ok(SviSlice { expiry, years, forward, params })
    }

    /// Expiry instant.
    #[must_use]
    pub fn expiry(&self) -> UnixNanos {
        self.expiry
    }

    /// ACT/365 years from the valuation time to the expiry.
    #[must_use]
    pub fn years(&self) -> f64 {
        self.years
    }

    /// Forward of the expiry, the reference of the slice's log-moneyness.
    #[must_use]
    pub fn forward(&self) -> f64 {
        self.forward
    }

    /// The SVI parameters.
    #[must_use]
    pub fn params(&self) -> &SviParams {
        &self.params
    }

    /// The same smile (in log-moneyness) around another forward. The SVI checks do not depend on
    /// the forward, so the result stays valid.
    #[must_use]
    pub fn with_forward(&self, forward: f64) -> SviSlice {
        assert!(
            forward > 0.0 && forward.is_finite(),
            "Invariant: a forward is finite and positive"
        );
        SviSlice { forward, ..*self }
    }

    /// Implied volatility at strike `strike`.
    #[must_use]
    pub fn implied_vol(&self, strike: f64) -> f64 {
        let w = self.params.total_variance((strike / self.forward).ln());
        (w / self.years).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typical BTC 30-day smile: 60 % ATM, put skew.
    pub(crate) fn btc_like() -> SviParams {
        SviParams { a: 0.02, b: 0.12, rho: -0.25, m: 0.02, sigma: 0.15 }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let p = btc_like();
        for k in [-1.2, -0.3, 0.0, 0.05, 0.7] {
            let (w, w1, w2) = p.derivatives(k);
            let h = 1e-5;
            let fd1 = (p.total_variance(k + h) - p.total_variance(k - h)) / (2.0 * h);
            let fd2 = (p.total_variance(k + h) - 2.0 * w + p.total_variance(k - h)) / (h * h);
            assert!((w1 - fd1).abs() < 1e-8 && (w2 - fd2).abs() < 1e-4, "k={k}");
        }
    }

    #[test]
    fn accepts_a_reasonable_smile() {
        let p = btc_like();
        assert!(p.check().is_ok());
        let slice = SviSlice::new(UnixNanos(0), 30.0 / 365.0, 100.0, p).unwrap();
        let atm = slice.implied_vol(100.0 * p.m.exp());
        assert!((atm - ((0.02_f64 + 0.12 * 0.15) / (30.0 / 365.0)).sqrt()).abs() < 1e-12);
    }

    /// Axel Vogt's slice, the example of butterfly arbitrage in Gatheral & Jacquier,
    /// "Arbitrage-free SVI volatility surfaces" (Quantitative Finance, 2014), section 5.2:
    /// a = -0.0410, b = 0.1331, m = 0.3586, rho = 0.3060, sigma = 0.4153, T = 1. Its density is
    /// negative near k = 1.
    #[test]
    fn rejects_vogts_known_bad_slice() {
        let vogt = SviParams { a: -0.0410, b: 0.1331, rho: 0.3060, m: 0.3586, sigma: 0.4153 };
        let (k, g) = vogt.worst_butterfly().expect("Vogt's slice has butterfly arbitrage");
        assert!(g < 0.0 && (0.5..1.5).contains(&k), "worst g({k}) = {g}");
        let err = SviSlice::new(UnixNanos(0), 1.0, 100.0, vogt).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Arbitrage(_)), "{err}");
    }

    #[test]
    fn rejects_bad_parameters_naming_them() {
        let p = btc_like();
        let cases = [
            (SviParams { b: -0.1, ..p }, "b"),
            (SviParams { rho: 1.0, ..p }, "rho"),
            (SviParams { sigma: 0.0, ..p }, "sigma"),
            (SviParams { a: f64::NAN, ..p }, "a"),
            (SviParams { a: -0.5, ..p }, "a"),
            (SviParams { b: 1.9, rho: 0.2, ..p }, "b"),
        ];
        for (bad, field) in cases {
            assert_eq!(bad.check().unwrap_err().field, field, "{bad:?}");
        }
        assert_eq!(SviSlice::new(UnixNanos(0), 0.0, 100.0, p).unwrap_err().field, "years");
    }
}
