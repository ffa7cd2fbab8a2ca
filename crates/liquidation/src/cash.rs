//! Fixed-point money of the liquidation layer: cash in 1e-18 USD (the raw unit of
//! [`basics::Money`]), sizes in lots of 1e-8 of an instrument's amount unit and prices in ticks
//! of 1e-8 USD. The value of `lots` at `ticks` is their integer product scaled to cash, so a
//! transfer between two accounts at one price moves exactly what one pays and the other gets,
//! and variation margin at a common settlement price sums to zero over a book whose lots do.
//!
//! Every conversion from a float names its rounding: what an account pays (a fee, a penalty, a
//! loss share) rounds [`Rounding::Up`], what it is credited rounds [`Rounding::Down`], so
//! rounding never creates money for the account rounded.

use basics::{Currency, MONEY_SCALE, Money, Rounding};

use crate::error::{Error, ErrorKind};

/// Lots per unit of size: sizes are whole multiples of 1e-8 (a satoshi of a coin).
pub const LOTS_PER_UNIT: i64 = 100_000_000;
/// Ticks per USD of price.
pub const TICKS_PER_USD: i64 = 100_000_000;
/// Cash units per lot × tick: 1e18 / (1e8 · 1e8).
const CASH_PER_LOT_TICK: i128 = MONEY_SCALE / (LOTS_PER_UNIT as i128 * TICKS_PER_USD as i128);
const _: () =
    assert!(CASH_PER_LOT_TICK * LOTS_PER_UNIT as i128 * TICKS_PER_USD as i128 == MONEY_SCALE);

/// The largest size of one position, in units (ten million coins or contracts): with prices
/// below [`PRICE_MAX_USD`] a value stays far inside `i128`.
pub const SIZE_MAX_UNITS: f64 = 1e7;
/// The largest price a tick count may represent, in USD.
pub const PRICE_MAX_USD: f64 = 1e9;

/// Cash in 1e-18 USD.
pub type Cash = i128;

/// Lots of `size` units, rounded to the nearest lot (a size is a quantity, not money: it is
/// conserved by moving lots, never by rounding).
///
/// # Errors
/// `NotFinite`, or `OutOfRange` beyond [`SIZE_MAX_UNITS`], naming `field`.
pub fn lots_of(size: f64, field: &str) -> Result<i64, Error> {
    let size = Error::finite(field, size)?;
    if size.abs() > SIZE_MAX_UNITS {
        return Err(Error::range(field, format!("|size| must be at most {SIZE_MAX_UNITS:e}")));
    }
    // In range by the check above: |size| · 1e8 ≤ 1e15 < 2^53.
    Ok((size * LOTS_PER_UNIT as f64).round() as i64)
}

/// The size of `lots`, in units.
#[must_use]
pub fn size_of(lots: i64) -> f64 {
    lots as f64 / LOTS_PER_UNIT as f64
}

/// Ticks of a price, rounded as named.
///
/// # Errors
/// `NotFinite`, or `OutOfRange` for a negative price or one above [`PRICE_MAX_USD`].
pub fn ticks_of(price: f64, rounding: Rounding, field: &str) -> Result<i64, Error> {
    let price = Error::finite(field, price)?;
    if !(0.0..=PRICE_MAX_USD).contains(&price) {
        return Err(Error::range(field, format!("a price in [0, {PRICE_MAX_USD:e}] USD")));
    }
    let scaled = price * TICKS_PER_USD as f64;
    let ticks = match rounding {
        Rounding::Up => scaled.ceil(),
        Rounding::Down => scaled.floor(),
    };
    Ok(ticks as i64)
}

/// The value of `lots` at `ticks`, exactly.
#[must_use]
pub fn value(lots: i64, ticks: i64) -> Cash {
    i128::from(lots) * i128::from(ticks) * CASH_PER_LOT_TICK
}

/// Cash of a float amount in USD, rounded as named.
///
/// # Errors
/// `NotFinite` or an amount beyond the range of money, naming `field`.
pub fn cash_of(amount: f64, rounding: Rounding, field: &str) -> Result<Cash, Error> {
    let amount = Error::finite(field, amount)?;
    Money::from_f64(amount, Currency::USD, rounding)
        .map(|m| m.raw())
        .map_err(|e| Error::new(field, ErrorKind::OutOfRange(e.to_string())))
}

/// `amount · fraction` with `fraction` in `[0, 1]`, rounded as named: a fraction of a balance
/// computed in integers (the fraction's 53-bit mantissa times the amount), never through a
/// float of the amount.
#[must_use]
pub fn scale(amount: Cash, fraction: f64, rounding: Rounding) -> Cash {
    const DENOMINATOR: i128 = 1 << 52;
    debug_assert!((0.0..=1.0).contains(&fraction), "Invariant: a fraction in [0, 1]");
    let numerator = (fraction * DENOMINATOR as f64).round() as i128;
    let product = amount * numerator;
    match rounding {
        Rounding::Up => {
            product.div_euclid(DENOMINATOR) + i128::from(product.rem_euclid(DENOMINATOR) != 0)
        }
        Rounding::Down => product.div_euclid(DENOMINATOR),
    }
}

/// Cash as a float in USD, for reports and the engine.
#[must_use]
pub fn to_f64(cash: Cash) -> f64 {
    Money::from_raw(cash, Currency::USD).to_f64()
}

/// Splits `total` (non-negative) over `weights` (non-negative, not all zero) so that the parts
/// sum to `total` exactly: each part is rounded down, and the units left over go one each to
/// the largest remainders, ties to the lower index (Hamilton's method).
#[must_use]
pub fn split(total: Cash, weights: &[u128]) -> Vec<Cash> {
    // Weights are scaled down (by a power of two, the same for all) until their sum fits 64
    // bits, so that every product below fits 128: the split stays exact in total, the shares
    // proportional to within 2^-64.
    let wide: u128 = weights.iter().fold(0_u128, |s, w| s.saturating_add(*w));
    let shift = (128 - wide.leading_zeros()).saturating_sub(63);
    let scaled: Vec<u128> = weights.iter().map(|w| w >> shift).collect();
    let weights = &scaled[..];
    let sum: u128 = weights.iter().sum();
    if sum == 0 || total <= 0 {
        return vec![0; weights.len()];
    }
    let total_u = total as u128;
    // total · w / sum = q·w + r·w / sum with total = q·sum + r: q·w ≤ total < 2^127, and
    // r·w < 2^128 with r < sum < 2^64.
    let (q, r) = (total_u / sum, total_u % sum);
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let base = q * w + (r * w) / sum;
        parts.push(base);
        remainders.push(((r * w) % sum, i));
    }
    let given: u128 = parts.iter().sum();
    let mut left = total_u - given;
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in &remainders {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts.into_iter().map(|p| p as Cash).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_at_one_price_is_exact_and_signed() {
        let (lots, ticks) = (
            lots_of(0.123_456_78, "size").unwrap(),
            ticks_of(6_543.21, Rounding::Down, "p").unwrap(),
        );
        assert_eq!(value(lots, ticks) + value(-lots, ticks), 0);
        assert_eq!(value(lots, ticks), 12_345_678 * 654_321_000_000 * 100);
        assert_eq!(to_f64(value(LOTS_PER_UNIT, TICKS_PER_USD)), 1.0);
    }

    #[test]
    fn splits_sum_exactly_and_favour_the_largest_remainder() {
        let parts = split(10, &[1, 1, 1]);
        assert_eq!(parts, vec![4, 3, 3]);
        let parts = split(1_000_000_000_000_000_007, &[3, 5, 0, 11]);
        assert_eq!(parts.iter().sum::<i128>(), 1_000_000_000_000_000_007);
        assert_eq!(parts[2], 0);
        assert_eq!(split(5, &[0, 0]), vec![0, 0]);
        let huge = split(10_i128.pow(30) + 1, &[u128::MAX / 4, u128::MAX / 4, 1]);
        assert_eq!(huge.iter().sum::<i128>(), 10_i128.pow(30) + 1);
    }

    #[test]
    fn scaling_rounds_in_the_named_direction() {
        assert_eq!(scale(10, 0.25, Rounding::Down), 2);
        assert_eq!(scale(10, 0.25, Rounding::Up), 3);
        assert_eq!(scale(-10, 0.25, Rounding::Down), -3);
        assert_eq!(scale(8, 0.25, Rounding::Up), 2);
    }

    #[test]
    fn bad_sizes_and_prices_are_named() {
        assert_eq!(lots_of(f64::NAN, "positions[0].size").unwrap_err().field, "positions[0].size");
        assert!(ticks_of(-1.0, Rounding::Down, "price").is_err());
        assert!(lots_of(2e7, "size").is_err());
    }
}
