//! Splitting a netted requirement over venues in fixed point, so that the parts sum exactly.

use basics::{Currency, Money};

/// The unit of an allocation, in `Money` raw units: one micro-dollar (1e-6 USD, 1e12 raw).
pub const ALLOCATION_UNIT_RAW: i128 = 1_000_000_000_000;

/// `amount` rounded up to a whole [`ALLOCATION_UNIT_RAW`] (a requirement rounds up).
#[must_use]
pub fn round_up_to_unit(amount: Money) -> Money {
    let raw = amount.raw();
    let units =
        raw.div_euclid(ALLOCATION_UNIT_RAW) + i128::from(raw.rem_euclid(ALLOCATION_UNIT_RAW) != 0);
    Money::from_raw(units * ALLOCATION_UNIT_RAW, amount.currency())
}

/// Splits `total` (a whole number of allocation units) in proportion to `weights` (each >= 0)
/// by largest remainders: every part is first its share rounded down to a unit, then the units
/// left over go one at a time to the parts with the largest dropped fractions. **Ties** (equal
/// fractions) go to `first` (the account's controller) and then in index order (venue id
/// order). With no weight at all, `first` (or else the first part) carries the whole total.
/// The parts always sum to `total` exactly.
#[must_use]
pub fn allocate(total: Money, weights: &[f64], first: Option<usize>) -> Vec<Money> {
    let currency = total.currency();
    let mut parts = vec![Money::zero(currency); weights.len()];
    if weights.is_empty() {
        return parts;
    }
    assert!(
        total.raw() >= 0 && total.raw() % ALLOCATION_UNIT_RAW == 0,
        "Invariant: a requirement is a whole number of units"
    );
    let units = total.raw() / ALLOCATION_UNIT_RAW;
    let sum: f64 = weights.iter().map(|w| w.max(0.0)).sum();
    let lead = first.unwrap_or(0);
    if !(sum > 0.0 && sum.is_finite()) {
        parts[lead] = total;
        return parts;
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "units below 2^53 are exact; past that the remainder pass corrects"
    )]
    let exact: Vec<f64> = weights.iter().map(|w| units as f64 * (w.max(0.0) / sum)).collect();
    #[expect(
        clippy::cast_possible_truncation,
        reason = "floored and non-negative, below the total"
    )]
    let mut base: Vec<i128> = exact.iter().map(|e| e.floor().max(0.0) as i128).collect();
    // Float error may give one unit too many: take it back from the largest parts.
    while base.iter().sum::<i128>() > units {
        let largest = (0..base.len()).max_by_key(|&i| (base[i], std::cmp::Reverse(i))).unwrap_or(0);
        base[largest] -= 1;
    }
    #[expect(clippy::cast_precision_loss, reason = "a fraction of one unit")]
    let fraction = |i: usize| exact[i] - base[i] as f64;
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        fraction(b).total_cmp(&fraction(a)).then((b == lead).cmp(&(a == lead))).then(a.cmp(&b))
    });
    let mut left = units - base.iter().sum::<i128>();
    let mut k = 0;
    while left > 0 {
        base[order[k % order.len()]] += 1;
        left -= 1;
        k += 1;
    }
    for (part, b) in parts.iter_mut().zip(base) {
        *part = Money::from_raw(b * ALLOCATION_UNIT_RAW, currency);
    }
    parts
}

/// The sum of `amounts`, all in `currency`.
pub(crate) fn total(amounts: impl Iterator<Item = Money>, currency: Currency) -> Money {
    Money::from_raw(amounts.map(|m| m.raw()).sum(), currency)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(units: i128) -> Money {
        Money::from_raw(units * ALLOCATION_UNIT_RAW, Currency::USD)
    }

    #[test]
    fn parts_sum_exactly_and_ties_go_to_the_controller_then_in_order() {
        let parts = allocate(usd(10), &[1.0, 1.0, 1.0], Some(2));
        assert_eq!(parts, vec![usd(3), usd(3), usd(4)]);
        let parts = allocate(usd(11), &[1.0, 1.0, 1.0], None);
        assert_eq!(parts, vec![usd(4), usd(4), usd(3)]);
        for total in [0, 1, 7, 1_000_003, 123_456_789_012] {
            let weights = [0.3, 0.0, 2.5, 1e-9, 7.25];
            let parts = allocate(usd(total), &weights, Some(1));
            assert_eq!(parts.iter().map(Money::raw).sum::<i128>(), usd(total).raw());
            assert_eq!(parts[1], usd(0), "a zero weight gets nothing");
        }
    }

    #[test]
    fn without_weights_the_controller_carries_it() {
        assert_eq!(allocate(usd(5), &[0.0, 0.0], Some(1)), vec![usd(0), usd(5)]);
        assert_eq!(round_up_to_unit(Money::from_raw(1, Currency::USD)), usd(1));
        assert_eq!(round_up_to_unit(usd(3)), usd(3));
    }
}
