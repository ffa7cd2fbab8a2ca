use std::fmt;

use crate::error::Error;

/// A confidence level in basis points (9,900 is 99 %), exact so that tail counts are integers.
///
/// A tail of `n` scenarios at 99 % holds `⌈n · (1 − 0.99)⌉` of them. In binary floating point
/// `1000.0 * (1.0 - 0.99)` is 10.000000000000009, whose ceiling is 11: the tail would silently
/// grow by one. Basis points keep the count in integers (`⌈1000 · 100 / 10,000⌉ = 10`), and every
/// level regulators use (99 %, 99.5 %, 99.75 %, 97.5 %) is a whole number of them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Confidence {
    basis_points: u32,
}

/// Basis points in one whole.
const BASIS_POINTS_WHOLE: u32 = 10_000;

impl Confidence {
    /// 99 %: Basel's VaR backtest level and EMIR's level for listed derivatives.
    pub const VAR_BASEL: Confidence = Confidence { basis_points: 9_900 };
    /// 97.5 %: the FRTB expected-shortfall level.
    pub const ES_FRTB: Confidence = Confidence { basis_points: 9_750 };

    /// A level of `basis_points` / 10,000.
    ///
    /// # Errors
    ///
    /// When the level is not strictly between 0 and 10,000 basis points: a level of 0 or 100 %
    /// has an empty tail or no tail at all.
    pub fn from_basis_points(basis_points: u32) -> Result<Confidence, Error> {
        if basis_points == 0 || basis_points >= BASIS_POINTS_WHOLE {
            return Err(Error::range(
                "confidence",
                format!("{basis_points} basis points is not strictly between 0 and 10,000"),
            ));
        }
        Ok(Confidence { basis_points })
    }

    /// The level in basis points.
    #[must_use]
    pub fn basis_points(self) -> u32 {
        self.basis_points
    }

    /// The probability of an exceedance that the level allows, `1 − confidence` (0.01 at 99 %).
    #[must_use]
    pub fn tail_probability(self) -> f64 {
        f64::from(BASIS_POINTS_WHOLE - self.basis_points) / f64::from(BASIS_POINTS_WHOLE)
    }

    /// Whether `exceedances` in `observations` are within the level: a rate of at most
    /// `1 − confidence`, compared in integers so that no rounding can move the edge (at 99 %, 13
    /// in 1,300 pass and 14 fail). No observations admit nothing.
    #[must_use]
    pub fn admits(self, exceedances: usize, observations: usize) -> bool {
        let tail = u128::from(BASIS_POINTS_WHOLE - self.basis_points);
        observations > 0
            && exceedances as u128 * u128::from(BASIS_POINTS_WHOLE) <= observations as u128 * tail
    }

    /// The number of worst outcomes among `count` that form the tail, `⌈count · (1 − level)⌉`,
    /// computed in integers; at least 1 when `count` is at least 1.
    #[must_use]
    pub fn tail_count(self, count: usize) -> usize {
        let whole = u128::from(BASIS_POINTS_WHOLE);
        let tail = u128::from(BASIS_POINTS_WHOLE - self.basis_points);
        let count_tail = (count as u128 * tail).div_ceil(whole);
        assert!(count_tail <= count as u128, "Invariant: a tail is part of the sample");
        count_tail as usize
    }
}

impl fmt::Debug for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02} %", self.basis_points / 100, self.basis_points % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::Confidence;

    /// The edge of 99 %: 13 in 1,300 (exactly 1 %) and 17 in 1,795 pass, one more fails; 99.5 %
    /// allows half as many; no observations admit nothing.
    #[test]
    fn admits_is_the_exact_rate_edge() {
        let c = Confidence::VAR_BASEL;
        assert!(c.admits(13, 1_300) && !c.admits(14, 1_300));
        assert!(c.admits(17, 1_795) && !c.admits(18, 1_795));
        assert!(c.admits(0, 1) && !c.admits(1, 99) && c.admits(1, 100));
        let strict = Confidence::from_basis_points(9_950).unwrap_or(c);
        assert!(strict.admits(6, 1_300) && !strict.admits(7, 1_300));
        assert!(!c.admits(0, 0));
    }
}
