//! The friction add-on checked against the liquidations it is meant to pay for: over a run's
//! liquidations, the share whose realised cost (depth cost, auction discount and fees against
//! the mark) the add-on charged in MM before the breach covered, and the add-on's MM weight
//! that would reach a target coverage.
//!
//! The add-on's unweighted value is linear in its weight, so the weight that covers a
//! liquidation is `realised / unweighted`, and the least weight covering a share `q` of them is
//! the `⌈n · q⌉`-th smallest of those ratios (no interpolation). A liquidation on a book the
//! add-on charged nothing for cannot be covered by any weight and is counted apart.

use crate::error::Error;
use crate::sim::FrictionSample;

/// The coverage of a run's liquidations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coverage {
    /// Liquidations seen.
    pub liquidations: usize,
    /// Those whose realised cost the weighted add-on covered.
    pub covered: usize,
    /// `covered / liquidations` (1 without liquidations).
    pub coverage: f64,
    /// Liquidations with a cost on a book the add-on charged nothing for.
    pub uncoverable: usize,
    /// The target coverage.
    pub target: f64,
    /// The least MM weight reaching the target, `None` when no weight can (too many
    /// uncoverable liquidations) or none was seen.
    pub calibrated_mm_weight: Option<f64>,
}

/// The coverage of `samples` and the MM weight reaching `target`.
///
/// # Errors
/// `OutOfRange` for a target outside `(0, 1]`.
pub fn coverage(samples: &[FrictionSample], target: f64) -> Result<Coverage, Error> {
    if !(target > 0.0 && target <= 1.0) {
        return Err(Error::range("target", "a coverage in (0, 1]"));
    }
    let n = samples.len();
    let covered = samples.iter().filter(|s| s.realised_usd <= s.charged_usd).count();
    let uncoverable =
        samples.iter().filter(|s| s.unweighted_usd <= 0.0 && s.realised_usd > 0.0).count();
    let mut ratios: Vec<f64> = samples
        .iter()
        .filter(|s| s.unweighted_usd > 0.0 || s.realised_usd <= 0.0)
        .map(|s| if s.realised_usd <= 0.0 { 0.0 } else { s.realised_usd / s.unweighted_usd })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let needed = (n as f64 * target).ceil() as usize;
    let calibrated_mm_weight =
        if n == 0 || needed > ratios.len() { None } else { Some(ratios[needed.max(1) - 1]) };
    Ok(Coverage {
        liquidations: n,
        covered,
        coverage: if n == 0 { 1.0 } else { covered as f64 / n as f64 },
        uncoverable,
        target,
        calibrated_mm_weight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(realised: f64, unweighted: f64, weight: f64) -> FrictionSample {
        FrictionSample {
            realised_usd: realised,
            charged_usd: unweighted * weight,
            unweighted_usd: unweighted,
        }
    }

    #[test]
    fn the_calibrated_weight_covers_exactly_the_target_share() {
        let samples: Vec<_> = (1..=100).map(|i| s(f64::from(i), 100.0, 0.5)).collect();
        let c = coverage(&samples, 0.99).unwrap();
        assert_eq!((c.covered, c.coverage), (50, 0.5));
        let w = c.calibrated_mm_weight.unwrap();
        assert_eq!(w, 0.99);
        let recharged: Vec<_> =
            samples.iter().map(|x| s(x.realised_usd, x.unweighted_usd, w)).collect();
        assert_eq!(coverage(&recharged, 0.99).unwrap().covered, 99);
        assert!(coverage(&samples, 0.0).is_err());
    }

    #[test]
    fn a_cost_the_add_on_never_charged_for_cannot_be_covered() {
        let samples = vec![s(5.0, 0.0, 1.0), s(1.0, 10.0, 1.0)];
        let c = coverage(&samples, 0.99).unwrap();
        assert_eq!(c.uncoverable, 1);
        assert_eq!(c.calibrated_mm_weight, None);
        assert_eq!(coverage(&samples, 0.5).unwrap().calibrated_mm_weight, Some(0.1));
    }
}
