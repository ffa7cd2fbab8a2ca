//! Implied-volatility surfaces: SVI slices joined in total variance.
//!
//! Between two slices the surface interpolates total variance linearly in time at fixed forward
//! log-moneyness `k = ln(K/F(T))`. Linear interpolation preserves the absence of calendar
//! arbitrage when the slices themselves are ordered (`w_{i+1}(k) >= w_i(k)` for every `k`), which
//! the constructor checks. Before the first slice the first slice's implied volatility is held
//! (total variance scales with time); after the last slice the surface ends, because
//! extrapolating a term structure beyond its data silently invents a number.

use basics::limits::EXPIRIES_MAX;

use crate::svi::BUTTERFLY_GRID_POINTS;
use crate::{Error, ErrorKind, SviSlice};

/// Tolerance on total-variance decreases between consecutive slices: absorbs rounding only.
const CALENDAR_TOLERANCE: f64 = 1e-10;

/// A validated surface of one underlying.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VolSurface {
    slices: Vec<SviSlice>,
}

impl VolSurface {
    /// Sorts the slices by expiry and checks calendar arbitrage between neighbours.
    ///
    /// # Errors
    /// `TooMany` past [`EXPIRIES_MAX`], `OutOfRange` for a repeated expiry, `Arbitrage` naming the
    /// two expiries and the log-moneyness where total variance decreases.
    pub fn new(mut slices: Vec<SviSlice>) -> Result<VolSurface, Error> {
        if slices.len() > EXPIRIES_MAX {
            return Err(Error::new("surface", ErrorKind::TooMany { limit: EXPIRIES_MAX }));
        }
        slices.sort_by_key(SviSlice::expiry);
        for pair in slices.windows(2) {
            let (near, far) = (&pair[0], &pair[1]);
            let field = format!("surface[{:?}]", far.expiry());
            if near.expiry() == far.expiry() {
                return Err(Error::range(field, "the same expiry is given twice"));
            }
            if let Some((k, drop)) = calendar_violation(near, far) {
                let what = format!(
                    "total variance at k = {k:.4} falls by {drop:e} from {:?} to {:?}",
                    near.expiry(),
                    far.expiry()
                );
                return Err(Error::new(field, ErrorKind::Arbitrage(what)));
            }
        }
        Ok(VolSurface { slices })
    }

    /// A surface from slices that already passed [`VolSurface::new`] in the same order (only their
    /// forwards changed), skipping a second calendar check: total variance at fixed log-moneyness
    /// does not depend on the forward.
    pub(crate) fn from_valid_slices(slices: Vec<SviSlice>) -> VolSurface {
        debug_assert!(
            slices.windows(2).all(|w| w[0].expiry() < w[1].expiry()),
            "Invariant: slices stay sorted"
        );
        VolSurface { slices }
    }

    /// The slices, by expiry.
    #[must_use]
    pub fn slices(&self) -> &[SviSlice] {
        &self.slices
    }

    /// Years to the last slice, beyond which the surface does not extend (0 when empty).
    #[must_use]
    pub fn horizon_years(&self) -> f64 {
        self.slices.last().map_or(0.0, SviSlice::years)
    }

    /// Total implied variance at forward log-moneyness `k` and time `years`, or `None` beyond the
    /// last slice (or for an empty surface).
    #[must_use]
    pub fn total_variance(&self, k: f64, years: f64) -> Option<f64> {
        let first = self.slices.first()?;
        let last = self.slices.last()?;
        if years <= first.years() {
            return Some(first.params().total_variance(k) * years / first.years());
        }
        if years > last.years() {
            return None;
        }
        let upper = self.slices.partition_point(|s| s.years() < years);
        let hi = &self.slices[upper];
        if hi.years() == years {
            return Some(hi.params().total_variance(k));
        }
        let lo = &self.slices[upper - 1];
        let weight = (years - lo.years()) / (hi.years() - lo.years());
        let (w_lo, w_hi) = (lo.params().total_variance(k), hi.params().total_variance(k));
        Some(w_lo + weight * (w_hi - w_lo))
    }

    /// Implied volatility at forward log-moneyness `k` and time `years` (> 0).
    #[must_use]
    pub fn implied_vol(&self, k: f64, years: f64) -> Option<f64> {
        self.total_variance(k, years).map(|w| (w.max(0.0) / years).sqrt())
    }
}

/// The log-moneyness where total variance drops most from `near` to `far`, if it drops.
fn calendar_violation(near: &SviSlice, far: &SviSlice) -> Option<(f64, f64)> {
    let (lo_a, hi_a) = near.params().scan_window();
    let (lo_b, hi_b) = far.params().scan_window();
    let (low, high) = (lo_a.min(lo_b), hi_a.max(hi_b));
    let step = (high - low) / (BUTTERFLY_GRID_POINTS - 1) as f64;
    let mut worst: Option<(f64, f64)> = None;
    for i in 0..BUTTERFLY_GRID_POINTS {
        let k = low + step * i as f64;
        let drop = near.params().total_variance(k) - far.params().total_variance(k);
        if drop > CALENDAR_TOLERANCE && worst.is_none_or(|(_, d)| drop > d) {
            worst = Some((k, drop));
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SviParams;
    use basics::{NANOS_PER_DAY, UnixNanos};

    fn slice(days: i64, a: f64) -> SviSlice {
        let params = SviParams { a, b: 0.1, rho: -0.3, m: 0.0, sigma: 0.2 };
        SviSlice::new(UnixNanos(days * NANOS_PER_DAY), days as f64 / 365.0, 100.0, params).unwrap()
    }

    #[test]
    fn interpolates_in_total_variance() {
        let surface = VolSurface::new(vec![slice(90, 0.06), slice(30, 0.02)]).unwrap();
        let (t1, t2) = (30.0 / 365.0, 90.0 / 365.0);
        let w1 = surface.slices()[0].params().total_variance(0.1);
        let w2 = surface.slices()[1].params().total_variance(0.1);
        assert_eq!(surface.total_variance(0.1, t1), Some(w1));
        assert_eq!(surface.total_variance(0.1, t2), Some(w2));
        let mid = surface.total_variance(0.1, 0.5 * (t1 + t2)).unwrap();
        assert!((mid - 0.5 * (w1 + w2)).abs() < 1e-15);
        // Flat implied volatility before the first slice; nothing after the last.
        let short = surface.implied_vol(0.1, t1 / 4.0).unwrap();
        assert!((short - (w1 / t1).sqrt()).abs() < 1e-15);
        assert_eq!(surface.total_variance(0.1, t2 + 1e-9), None);
    }

    #[test]
    fn rejects_calendar_arbitrage() {
        let err = VolSurface::new(vec![slice(30, 0.05), slice(90, 0.02)]).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Arbitrage(_)), "{err}");
        assert!(err.field.contains("surface["), "{err}");
        assert!(VolSurface::new(vec![slice(30, 0.02), slice(30, 0.03)]).is_err());
    }
}
