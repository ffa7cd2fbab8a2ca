//! Forward prices per expiry.
//!
//! Forwards are observed at listed expiries (from futures, or from Deribit's `underlying_price`
//! for options). Between two observations the curve interpolates the log-basis `ln(F/S)` linearly
//! in time, i.e. assumes a constant carry rate between them; before the first observation it uses
//! the first carry rate, after the last one the last carry rate. With no observation at all the
//! forward equals the index (zero carry), which is Deribit's convention for its risk matrix.

use basics::{UnixNanos, limits::EXPIRIES_MAX};

use crate::error::finite;
use crate::{Error, ErrorKind};

/// One observed forward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardPoint {
    /// Expiry of the forward.
    pub expiry: UnixNanos,
    /// ACT/365 years from the valuation time.
    pub years: f64,
    /// Forward price.
    pub forward: f64,
}

/// A validated forward curve of one underlying.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardCurve {
    index: f64,
    points: Vec<ForwardPoint>,
}

impl ForwardCurve {
    /// Validates and sorts the observations.
    ///
    /// # Errors
    /// `OutOfRange` for a non-positive index or forward, an expiry not after the valuation time,
    /// or a repeated expiry; `TooMany` past [`EXPIRIES_MAX`].
    pub fn new(index: f64, mut points: Vec<ForwardPoint>) -> Result<ForwardCurve, Error> {
        if finite("index", index)? <= 0.0 {
            return Err(Error::range("index", format!("must be > 0, got {index}")));
        }
        if points.len() > EXPIRIES_MAX {
            return Err(Error::new("forwards", ErrorKind::TooMany { limit: EXPIRIES_MAX }));
        }
        points.sort_by_key(|p| p.expiry);
        for (i, point) in points.iter().enumerate() {
            let field = format!("forwards[{:?}]", point.expiry);
            if finite(&field, point.forward)? <= 0.0 {
                return Err(Error::range(field, format!("must be > 0, got {}", point.forward)));
            }
            if finite(&field, point.years)? <= 0.0 {
                let rule =
                    format!("expiry must be after the valuation time ({} years)", point.years);
                return Err(Error::range(field, rule));
            }
            if i > 0 && points[i - 1].expiry == point.expiry {
                return Err(Error::range(field, "the same expiry is given twice"));
            }
        }
        Ok(ForwardCurve { index, points })
    }

    /// The index (spot) price.
    #[must_use]
    pub fn index(&self) -> f64 {
        self.index
    }

    /// The observed points, by expiry.
    #[must_use]
    pub fn points(&self) -> &[ForwardPoint] {
        &self.points
    }

    /// The forward for a time `years` ahead (`years` >= 0).
    #[must_use]
    pub fn forward(&self, years: f64) -> f64 {
        self.index * self.log_basis(years).exp()
    }

    fn log_basis(&self, years: f64) -> f64 {
        let basis = |p: &ForwardPoint| (p.forward / self.index).ln();
        let (Some(first), Some(last)) = (self.points.first(), self.points.last()) else {
            return 0.0;
        };
        if years <= first.years {
            return basis(first) * years / first.years;
        }
        if years >= last.years {
            return basis(last) * years / last.years;
        }
        let upper = self.points.partition_point(|p| p.years < years);
        let (lo, hi) = (&self.points[upper - 1], &self.points[upper]);
        let weight = (years - lo.years) / (hi.years - lo.years);
        basis(lo) + weight * (basis(hi) - basis(lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(days: i64, forward: f64) -> ForwardPoint {
        let years = days as f64 / 365.0;
        ForwardPoint { expiry: UnixNanos(days * basics::NANOS_PER_DAY), years, forward }
    }

    #[test]
    fn reproduces_observations_and_interpolates_carry() {
        let curve = ForwardCurve::new(100.0, vec![point(365, 110.0), point(30, 101.0)]).unwrap();
        assert!((curve.forward(30.0 / 365.0) - 101.0).abs() < 1e-12);
        assert!((curve.forward(1.0) - 110.0).abs() < 1e-12);
        // Constant carry between the points: the log-basis is linear in time.
        let mid = curve.forward(f64::midpoint(30.0 / 365.0, 1.0));
        let expected =
            100.0 * f64::midpoint((101.0f64 / 100.0).ln(), (110.0f64 / 100.0).ln()).exp();
        assert!((mid - expected).abs() < 1e-12);
        assert_eq!(curve.forward(0.0), 100.0);
        let empty = ForwardCurve::new(100.0, vec![]).unwrap();
        assert_eq!(empty.forward(2.0), 100.0);
    }

    #[test]
    fn rejects_bad_points() {
        assert_eq!(ForwardCurve::new(-1.0, vec![]).unwrap_err().field, "index");
        assert!(ForwardCurve::new(100.0, vec![point(30, 0.0)]).is_err());
        assert!(ForwardCurve::new(100.0, vec![point(0, 100.0)]).is_err());
        assert!(ForwardCurve::new(100.0, vec![point(30, 100.0), point(30, 101.0)]).is_err());
    }
}
