//! The oracle-confidence charge on what a venue's feeds publish (`market::FeedData`).

/// The oracle-confidence charge on `notional`: `(1 − c) · factor · notional` when the
/// confidence `c` is below `threshold`, else nothing.
#[must_use]
pub fn confidence_charge(confidence: f64, notional: f64, threshold: f64, factor: f64) -> f64 {
    if confidence < threshold { (1.0 - confidence) * factor * notional } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::confidence_charge;

    /// Derive's test_30 (defi-pm.md 5.1): one perp, perp confidence 0.1 below the 0.55
    /// threshold, spot 3000: the oracle contingency is (1 − 0.1) · 1 · 3000 = 2700.
    #[test]
    fn charge_follows_derive_test_30() {
        assert!((confidence_charge(0.1, 3000.0, 0.55, 1.0) - 2700.0).abs() < 1e-9);
        assert_eq!(confidence_charge(0.55, 3000.0, 0.55, 1.0), 0.0);
    }
}
