//! Fixed-point, currency-tagged amounts.
//!
//! Risk maths runs in `f64`; balances, requirements and attested amounts are [`Money`]: an `i128`
//! count of 1e-18 units of one currency. The only way from `f64` to `Money` is
//! [`Money::from_f64`], which converts the exact binary value of the float (no intermediate
//! decimal rounding) and rounds in the direction the caller names. Margin requirements round
//! [`Rounding::Up`]; collateral and equity round [`Rounding::Down`], so every rounding error
//! favours solvency.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, Neg, Sub};

use crate::{Currency, Error, ErrorKind};

/// Units of [`Money::raw`] per whole unit of currency: amounts carry 18 decimals, the scale of
/// ERC-20 tokens and of the oracle's attested integers.
pub const MONEY_SCALE: i128 = 1_000_000_000_000_000_000;

/// A rounding direction, named for its effect on the signed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Towards positive infinity (ceiling): used for requirements.
    Up,
    /// Towards negative infinity (floor): used for collateral values and equity.
    Down,
}

/// An amount of one currency in 1e-18 units.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    raw: i128,
    currency: Currency,
}

impl Money {
    /// Zero of `currency`.
    #[must_use]
    pub const fn zero(currency: Currency) -> Money {
        Money { raw: 0, currency }
    }

    /// The largest magnitude of an amount, as an `f64` (about 1.7e20 units of a currency).
    pub const MAX_F64: f64 = i128::MAX as f64 / MONEY_SCALE as f64;

    /// An amount from its raw count of 1e-18 units.
    #[must_use]
    pub const fn from_raw(raw: i128, currency: Currency) -> Money {
        Money { raw, currency }
    }

    /// The raw count of 1e-18 units.
    #[must_use]
    pub const fn raw(&self) -> i128 {
        self.raw
    }

    /// The currency of the amount.
    #[must_use]
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// Converts the exact value of `value` to 1e-18 units, rounding in direction `rounding`.
    ///
    /// The conversion works on the float's binary mantissa and exponent, so it is exact up to the
    /// final rounding step and the same on every machine.
    ///
    /// # Errors
    /// `NotFinite` for NaN and infinities; `OutOfRange` when the amount does not fit an `i128`.
    pub fn from_f64(value: f64, currency: Currency, rounding: Rounding) -> Result<Money, Error> {
        if !value.is_finite() {
            return Err(Error::new("amount", ErrorKind::NotFinite));
        }
        let raw = f64_to_scaled(value, rounding)
            .ok_or_else(|| Error::new("amount", ErrorKind::OutOfRange))?;
        Ok(Money { raw, currency })
    }

    /// The amount a computed float stands for: its shortest round-trip decimal (what it prints
    /// as), rounded to 1e-18 in direction `rounding`. Cash computed from prices and sizes
    /// converts this way: a premium of 10 × 0.02 is 0.2, not the binary value of the float
    /// nearest to it, 0.2000000000000000111.
    ///
    /// # Errors
    /// As [`Money::from_f64`].
    pub fn from_f64_decimal(
        value: f64,
        currency: Currency,
        rounding: Rounding,
    ) -> Result<Money, Error> {
        if !value.is_finite() {
            return Err(Error::new("amount", ErrorKind::NotFinite));
        }
        Money::parse(&format!("{value:e}"), currency, rounding)
    }

    /// Parses a decimal such as `-1234.5` or `1e-3` exactly, rounding digits beyond the 18th
    /// decimal in direction `rounding`.
    ///
    /// # Errors
    /// `Syntax` when the text is not a decimal number; `OutOfRange` when it does not fit.
    pub fn parse(text: &str, currency: Currency, rounding: Rounding) -> Result<Money, Error> {
        let raw = parse_scaled(text.trim(), rounding)?;
        Ok(Money { raw, currency })
    }

    /// The nearest `f64` to the amount, for use in risk maths.
    #[must_use]
    pub fn to_f64(&self) -> f64 {
        let whole = self.raw / MONEY_SCALE;
        let frac = self.raw % MONEY_SCALE;
        whole as f64 + frac as f64 / MONEY_SCALE as f64
    }

    /// The sum, or an error when the currencies differ or the sum overflows.
    ///
    /// # Errors
    /// `CurrencyMismatch` or `OutOfRange`.
    pub fn checked_add(self, other: Money) -> Result<Money, Error> {
        self.same_currency(other)?;
        let raw =
            self.raw.checked_add(other.raw).ok_or(Error::new("sum", ErrorKind::OutOfRange))?;
        Ok(Money { raw, currency: self.currency })
    }

    fn same_currency(self, other: Money) -> Result<(), Error> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(Error::new(
                "amount",
                ErrorKind::CurrencyMismatch {
                    left: self.currency.to_string(),
                    right: other.currency.to_string(),
                },
            ))
        }
    }

    /// Whether the amount is below zero.
    #[must_use]
    pub const fn is_negative(&self) -> bool {
        self.raw < 0
    }
}

impl Add for Money {
    type Output = Money;

    /// Adds two amounts of the same currency.
    ///
    /// # Panics
    /// When the currencies differ or the sum overflows: mixing currencies without an explicit
    /// conversion is a programming error.
    fn add(self, other: Money) -> Money {
        assert_eq!(self.currency, other.currency, "Invariant: only same-currency amounts add");
        Money { raw: self.raw + other.raw, currency: self.currency }
    }
}

impl Sub for Money {
    type Output = Money;

    fn sub(self, other: Money) -> Money {
        self + (-other)
    }
}

impl Neg for Money {
    type Output = Money;

    fn neg(self) -> Money {
        Money { raw: -self.raw, currency: self.currency }
    }
}

impl PartialOrd for Money {
    fn partial_cmp(&self, other: &Money) -> Option<Ordering> {
        (self.currency == other.currency).then(|| self.raw.cmp(&other.raw))
    }
}

impl fmt::Display for Money {
    /// Prints the exact decimal value with trailing zeros removed, then the currency.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_scaled(self.raw), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Formats a raw 1e-18 count as an exact decimal without trailing zeros.
#[must_use]
pub fn format_scaled(raw: i128) -> String {
    let sign = if raw < 0 { "-" } else { "" };
    let magnitude = raw.unsigned_abs();
    let scale = MONEY_SCALE as u128;
    let whole = magnitude / scale;
    let frac = magnitude % scale;
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{frac:018}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// Divides `numerator` by `2^shift`, rounding the quotient up (towards +inf) when `ceil`.
fn shift_right_rounded(numerator: u128, shift: u32, ceil: bool) -> u128 {
    if shift >= 128 {
        return u128::from(ceil && numerator != 0);
    }
    let quotient = numerator >> shift;
    let remainder = numerator & ((1u128 << shift) - 1);
    quotient + u128::from(ceil && remainder != 0)
}

fn f64_to_scaled(value: f64, rounding: Rounding) -> Option<i128> {
    if value == 0.0 {
        return Some(0);
    }
    let bits = value.to_bits();
    let negative = bits >> 63 == 1;
    let exponent_bits = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    // value = mantissa * 2^exponent exactly.
    let (mantissa, exponent) = if exponent_bits == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), exponent_bits - 1075)
    };
    // mantissa < 2^53 and 10^18 < 2^60, so the product fits comfortably in 113 bits.
    let product = u128::from(mantissa) * MONEY_SCALE as u128;
    // Rounding the magnitude up means rounding the signed value up only for positive values.
    let ceil_magnitude = (rounding == Rounding::Up) != negative;
    let magnitude = if exponent >= 0 {
        let shift = exponent as u32;
        if shift >= 127 || product.leading_zeros() <= shift {
            return None;
        }
        product << shift
    } else {
        shift_right_rounded(product, exponent.unsigned_abs(), ceil_magnitude)
    };
    let magnitude = i128::try_from(magnitude).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

fn parse_scaled(text: &str, rounding: Rounding) -> Result<i128, Error> {
    let syntax =
        || Error::new("amount", ErrorKind::Syntax(format!("a decimal number, got {text:?}")));
    let range = || Error::new("amount", ErrorKind::OutOfRange);
    let (mantissa_text, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().map_err(|_| syntax())?),
        None => (text, 0),
    };
    let (negative, digits_text) = match mantissa_text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa_text.strip_prefix('+').unwrap_or(mantissa_text)),
    };
    let (whole, frac) = digits_text.split_once('.').unwrap_or((digits_text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(syntax());
    }
    // The value is digits * 10^(exponent - frac.len()); bring it to 1e-18 units.
    let mut digits: u128 = 0;
    let mut dropped_nonzero = false;
    let mut power = exponent.checked_sub(frac.len() as i32).ok_or_else(range)? + 18;
    for b in whole.bytes().chain(frac.bytes()) {
        digits = digits
            .checked_mul(10)
            .and_then(|d| d.checked_add(u128::from(b - b'0')))
            .ok_or_else(range)?;
    }
    while power < 0 {
        dropped_nonzero |= !digits.is_multiple_of(10);
        digits /= 10;
        power += 1;
    }
    for _ in 0..power {
        digits = digits.checked_mul(10).ok_or_else(range)?;
    }
    let ceil_magnitude = (rounding == Rounding::Up) != negative;
    if dropped_nonzero && ceil_magnitude {
        digits = digits.checked_add(1).ok_or_else(range)?;
    }
    let magnitude = i128::try_from(digits).map_err(|_| range())?;
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(raw: i128) -> Money {
        Money::from_raw(raw, Currency::USD)
    }

    /// A float converts as the decimal it prints as: 10 × 0.02 is 0.2 exactly (its binary value
    /// is 0.2000000000000000111), digits past 1e-18 round in the asked direction, and the
    /// out-of-range and non-finite are errors.
    #[test]
    fn converts_floats_as_the_decimals_they_print_as() {
        let money = |v: f64, r| Money::from_f64_decimal(v, Currency::BTC, r);
        assert_eq!(money(-(10.0 * 0.02), Rounding::Down).unwrap().raw(), -MONEY_SCALE / 5);
        assert_ne!(
            Money::from_f64(-(10.0 * 0.02), Currency::BTC, Rounding::Down).unwrap().raw(),
            -MONEY_SCALE / 5
        );
        let tiny = 1.234_567_890_123_456_7e-5;
        assert_eq!(money(tiny, Rounding::Down).unwrap().raw(), 12_345_678_901_234);
        assert_eq!(money(tiny, Rounding::Up).unwrap().raw(), 12_345_678_901_235);
        assert_eq!(money(-tiny, Rounding::Down).unwrap().raw(), -12_345_678_901_235);
        assert!(money(1e300, Rounding::Down).is_err());
        assert!(money(f64::NAN, Rounding::Down).is_err());
    }

    #[test]
    fn converts_exact_binary_values() {
        let half = Money::from_f64(0.5, Currency::USD, Rounding::Up).unwrap();
        assert_eq!(half.raw(), MONEY_SCALE / 2);
        // The double nearest 0.1 is 0.1000000000000000055511151231257827...; Python's
        // `Fraction(0.1) * 10**18` gives floor ...005 and ceiling ...006.
        let up = Money::from_f64(0.1, Currency::USD, Rounding::Up).unwrap();
        let down = Money::from_f64(0.1, Currency::USD, Rounding::Down).unwrap();
        assert_eq!(up.raw(), 100_000_000_000_000_006);
        assert_eq!(down.raw(), 100_000_000_000_000_005);
        let neg_up = Money::from_f64(-0.1, Currency::USD, Rounding::Up).unwrap();
        let neg_down = Money::from_f64(-0.1, Currency::USD, Rounding::Down).unwrap();
        assert_eq!(neg_up.raw(), -100_000_000_000_000_005);
        assert_eq!(neg_down.raw(), -100_000_000_000_000_006);
    }

    #[test]
    fn rejects_non_finite_and_huge() {
        assert_eq!(
            Money::from_f64(f64::NAN, Currency::USD, Rounding::Up).unwrap_err().kind,
            ErrorKind::NotFinite
        );
        assert_eq!(
            Money::from_f64(1e30, Currency::USD, Rounding::Up).unwrap_err().kind,
            ErrorKind::OutOfRange
        );
        assert!(Money::from_f64(1e20, Currency::USD, Rounding::Up).is_ok());
    }

    #[test]
    fn parses_decimals_exactly() {
        let p = |t: &str, r| Money::parse(t, Currency::USD, r).unwrap().raw();
        assert_eq!(p("1.5", Rounding::Up), 1_500_000_000_000_000_000);
        assert_eq!(p("-0.000000000000000001", Rounding::Up), -1);
        assert_eq!(p("1e-19", Rounding::Up), 1);
        assert_eq!(p("1e-19", Rounding::Down), 0);
        assert_eq!(p("-1e-19", Rounding::Down), -1);
        assert_eq!(p("2.5e3", Rounding::Down), 2_500 * MONEY_SCALE);
        for bad in ["", "-", "1.2.3", "abc", "1e", "--1"] {
            assert!(Money::parse(bad, Currency::USD, Rounding::Up).is_err(), "{bad}");
        }
    }

    #[test]
    fn prints_exact_decimals() {
        assert_eq!(usd(1_500_000_000_000_000_000).to_string(), "1.5 USD");
        assert_eq!(usd(-1).to_string(), "-0.000000000000000001 USD");
        assert_eq!(usd(7 * MONEY_SCALE).to_string(), "7 USD");
    }

    #[test]
    #[should_panic(expected = "Invariant")]
    fn adding_currencies_panics() {
        let _ = usd(1) + Money::from_raw(1, Currency::BTC);
    }

    proptest! {
        #[test]
        fn prop_rounding_brackets_the_value(x in -1e12f64..1e12) {
            let up = Money::from_f64(x, Currency::USD, Rounding::Up).unwrap().raw();
            let down = Money::from_f64(x, Currency::USD, Rounding::Down).unwrap().raw();
            prop_assert!(up - down <= 1 && up >= down);
            let back = Money::from_raw(down, Currency::USD).to_f64();
            prop_assert!((back - x).abs() <= x.abs() * 1e-15 + 1e-18);
        }

        #[test]
        fn prop_parse_display_round_trip(raw in any::<i64>()) {
            let m = usd(i128::from(raw) * 1_000_003);
            let text = format_scaled(m.raw());
            prop_assert_eq!(Money::parse(&text, Currency::USD, Rounding::Up).unwrap(), m);
        }
    }
}
