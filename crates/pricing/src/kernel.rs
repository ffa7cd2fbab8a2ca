//! Lane-generic arithmetic for the batch kernels.
//!
//! Every kernel is written once against the [`Lane`] trait and instantiated twice: for `f64`
//! (one option at a time) and for `wide::f64x4` (four at a time, AVX2). Both instantiations
//! execute the same IEEE operations in the same order, and the only fused operation, [`Lane::fma`],
//! is a true single-rounding fused multiply-add on every build (the hardware instruction where the
//! target has FMA, the correctly rounded software `f64::mul_add` otherwise). So the scalar and
//! SIMD results are bit-identical, on any machine and with any target features; the tests check
//! it bit for bit.
//!
//! The transcendental functions are our own, built only from those operations:
//! - `exp` on `[-600, 0]`: Cody-Waite reduction by ln 2 and a degree-9 minimax polynomial
//!   (relative error 1.5e-14, `scripts/fit_exp_minimax.py`); 2^n is assembled from the bits of
//!   the rounding shifter, which works on AVX2 (no vector f64-to-i64 conversion needed).
//! - `ln` on positive normal numbers: exponent extraction, reduction to [√½, √2) and the
//!   `atanh` series in `s = (m − 1)/(m + 1)` to `s^17` (relative error below 1e-15).
//! - the normal tail `N(−z) = φ(z) · M(z)` through a (6, 7) rational fit of the Mills ratio `M`
//!   on [0, 12] with relative error 5.7e-13 (`scripts/fit_mills_ratio.py` reproduces the
//!   coefficients). One `exp` serves both `N(d1)` and `N(d2)` because `F·φ(d1) = K·φ(d2)`.

// The kernels are generic helpers that must inline into each instantiation's loop: an
// out-of-line call per lane would cost more than the arithmetic.
#![allow(clippy::inline_always)]

use std::ops::{Add, Div, Mul, Neg, Sub};

use wide::{f64x4, f64x8, u64x4, u64x8};

/// One or several `f64` lanes.
pub(crate) trait Lane:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    fn splat(value: f64) -> Self;
    /// `self * b + c` with a single rounding.
    fn fma(self, b: Self, c: Self) -> Self;
    fn abs(self) -> Self;
    fn sqrt(self) -> Self;
    /// `if self < other { self } else { other }`: the smaller of two non-NaN values, with the
    /// tie (±0) resolved the same way in every instantiation.
    fn min(self, other: Self) -> Self;
    /// `if self > other { self } else { other }`.
    fn max(self, other: Self) -> Self;
    /// `if test >= 0 { when_nonneg } else { when_neg }`, lane by lane.
    fn select_nonneg(test: Self, when_nonneg: Self, when_neg: Self) -> Self;
    /// `if test > limit { when_greater } else { otherwise }`, lane by lane.
    fn select_greater(test: Self, limit: Self, when_greater: Self, otherwise: Self) -> Self;
    /// 2^n from the result of adding [`SHIFTER`] to n (n an integer in [-1022, 1023]): the
    /// shifter's low mantissa bits hold n; adding the exponent bias and shifting it into the
    /// exponent field drops the shifter's own bits.
    fn pow2_from_shifted(self) -> Self;
    /// For a positive normal number: its mantissa scaled into [1, 2) and its biased exponent as
    /// an exact float.
    fn split_exponent(self) -> (Self, Self);
}

const MANTISSA_MASK: u64 = (1 << 52) - 1;
const ONE_BITS: u64 = 0x3ff0_0000_0000_0000;
const TWO_POW_52_BITS: u64 = 0x4330_0000_0000_0000;
const TWO_POW_52: f64 = 4_503_599_627_370_496.0;

impl Lane for f64 {
    fn splat(value: f64) -> f64 {
        value
    }
    fn fma(self, b: f64, c: f64) -> f64 {
        self.mul_add(b, c)
    }
    fn abs(self) -> f64 {
        f64::abs(self)
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
    fn min(self, other: f64) -> f64 {
        if self < other { self } else { other }
    }
    fn max(self, other: f64) -> f64 {
        if self > other { self } else { other }
    }
    fn select_nonneg(test: f64, when_nonneg: f64, when_neg: f64) -> f64 {
        if test >= 0.0 { when_nonneg } else { when_neg }
    }
    fn select_greater(test: f64, limit: f64, when_greater: f64, otherwise: f64) -> f64 {
        if test > limit { when_greater } else { otherwise }
    }
    fn pow2_from_shifted(self) -> f64 {
        f64::from_bits(self.to_bits().wrapping_add(1023) << 52)
    }
    fn split_exponent(self) -> (f64, f64) {
        let bits = self.to_bits();
        let mantissa = f64::from_bits((bits & MANTISSA_MASK) | ONE_BITS);
        let biased = f64::from_bits((bits >> 52) | TWO_POW_52_BITS) - TWO_POW_52;
        (mantissa, biased)
    }
}

/// The SIMD instantiations: `f64x4` is one AVX2 register, `f64x8` two (or one AVX-512 register),
/// which doubles the independent work in flight for a latency-bound kernel.
macro_rules! simd_lane {
    ($float:ident, $uint:ident, $lanes:literal) => {
        impl Lane for $float {
            fn splat(value: f64) -> $float {
                $float::splat(value)
            }
            #[cfg(target_feature = "fma")]
            fn fma(self, b: $float, c: $float) -> $float {
                self.mul_add(b, c)
            }
            #[cfg(not(target_feature = "fma"))]
            fn fma(self, b: $float, c: $float) -> $float {
                // `wide` would fall back to an unfused multiply and add here; the software fused
                // operation keeps results identical to FMA hardware.
                let (x, y, z) = (self.to_array(), b.to_array(), c.to_array());
                $float::new(std::array::from_fn(|i| x[i].mul_add(y[i], z[i])))
            }
            fn abs(self) -> $float {
                $float::abs(self)
            }
            fn sqrt(self) -> $float {
                $float::sqrt(self)
            }
            // x86's MINPD/MAXPD return the second operand unless the first is strictly smaller
            // (larger): exactly the tie rule of the trait, in one instruction.
            #[cfg(target_arch = "x86_64")]
            fn min(self, other: $float) -> $float {
                self.fast_min(other)
            }
            #[cfg(target_arch = "x86_64")]
            fn max(self, other: $float) -> $float {
                self.fast_max(other)
            }
            #[cfg(not(target_arch = "x86_64"))]
            fn min(self, other: $float) -> $float {
                self.simd_lt(other).select(self, other)
            }
            #[cfg(not(target_arch = "x86_64"))]
            fn max(self, other: $float) -> $float {
                self.simd_gt(other).select(self, other)
            }
            fn select_nonneg(test: $float, when_nonneg: $float, when_neg: $float) -> $float {
                test.simd_ge($float::ZERO).select(when_nonneg, when_neg)
            }
            fn select_greater(
                test: $float,
                limit: $float,
                when_greater: $float,
                otherwise: $float,
            ) -> $float {
                test.simd_gt(limit).select(when_greater, otherwise)
            }
            fn pow2_from_shifted(self) -> $float {
                let bits: $uint = wide::bytemuck::cast(self);
                wide::bytemuck::cast((bits + $uint::splat(1023)) << 52)
            }
            fn split_exponent(self) -> ($float, $float) {
                let bits: $uint = wide::bytemuck::cast(self);
                let mantissa = (bits & $uint::splat(MANTISSA_MASK)) | $uint::splat(ONE_BITS);
                let biased = (bits >> 52) | $uint::splat(TWO_POW_52_BITS);
                let biased: $float = wide::bytemuck::cast(biased);
                (wide::bytemuck::cast(mantissa), biased - $float::splat(TWO_POW_52))
            }
        }
    };
}

simd_lane!(f64x4, u64x4, 4);
simd_lane!(f64x8, u64x8, 8);

/// 1.5 · 2^52: adding it rounds any |x| < 2^51 to an integer held in the low mantissa bits.
const SHIFTER: f64 = 6_755_399_441_055_744.0;
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split so that `n · LN2_HI` is exact for |n| < 2^11 (fdlibm's split: `LN2_HI` has 32
/// trailing zero bits and `LN2_HI + LN2_LO` is ln 2 to double-double precision).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// Lower clamp of `exp`'s argument. Far above the subnormal range (which costs microcode assists
/// on x86) and far below anything that matters: e^-600 ≈ 2.7e-261.
const EXP_ARG_MIN: f64 = -600.0;

/// Minimax polynomial for e^r on [-ln(2)/2, ln(2)/2], degree 9 down to 0, relative error 1.5e-14
/// (`scripts/fit_exp_minimax.py 9`; the constant term is exactly 1).
const EXP_POLY: [f64; 10] = [
    2.747_678_190_741_075_7e-6,
    2.488_200_169_502_530_5e-5,
    1.984_160_313_338_263_8e-4,
    1.388_880_818_113_503_5e-3,
    8.333_333_007_736_567e-3,
    4.166_666_698_523_171e-2,
    1.666_666_666_774_592_7e-1,
    4.999_999_999_961_025_6e-1,
    9.999_999_999_999_132e-1,
    1.0,
];

/// e^x for x <= 0, with x clamped below at [`EXP_ARG_MIN`].
#[inline(always)]
pub(crate) fn exp_nonpositive<L: Lane>(x: L) -> L {
    let x = x.max(L::splat(EXP_ARG_MIN));
    let shifted = x.fma(L::splat(LOG2_E), L::splat(SHIFTER));
    let n = shifted - L::splat(SHIFTER);
    let r = n.fma(L::splat(-LN2_HI), x);
    let r = n.fma(L::splat(-LN2_LO), r);
    let mut p = L::splat(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = p.fma(r, L::splat(c));
    }
    p * shifted.pow2_from_shifted()
}

/// 1/(2k + 1) for k = 8 down to 0: the series of atanh(s)/s in s².
const ODD_INVERSES: [f64; 9] = [
    1.0 / 17.0,
    1.0 / 15.0,
    1.0 / 13.0,
    1.0 / 11.0,
    1.0 / 9.0,
    1.0 / 7.0,
    1.0 / 5.0,
    1.0 / 3.0,
    1.0,
];

/// ln(x) for positive normal x.
#[inline(always)]
pub(crate) fn ln_positive<L: Lane>(x: L) -> L {
    let (m, biased) = x.split_exponent();
    let e = biased - L::splat(1023.0);
    // Centre the mantissa on 1: m in [√½, √2).
    let big = std::f64::consts::SQRT_2;
    let m_red = L::select_greater(m, L::splat(big), m * L::splat(0.5), m);
    let e = L::select_greater(m, L::splat(big), e + L::splat(1.0), e);
    let s = (m_red - L::splat(1.0)) / (m_red + L::splat(1.0));
    let s2 = s * s;
    // ln m = 2 atanh s = 2s (1 + s²/3 + s⁴/5 + ... + s^16/17).
    let mut p = L::splat(ODD_INVERSES[0]);
    for &c in &ODD_INVERSES[1..] {
        p = p.fma(s2, L::splat(c));
    }
    let ln_m = (s + s) * p;
    e.fma(L::splat(LN2_HI), e.fma(L::splat(LN2_LO), ln_m))
}

/// Largest |d| fed to the Mills ratio: N(−40) ≈ 4e-350 is zero in double precision.
const MILLS_ARG_MAX: f64 = 40.0;
const INV_SQRT_TWO_PI: f64 = 0.398_942_280_401_432_7;
#[rustfmt::skip]
const MILLS_P: [f64; 7] = [
    0.000_404_838_355_643_712_6, 0.006_861_566_517_326_626, 0.054_954_023_922_695_446,
    0.262_172_817_608_378_13, 0.784_840_730_800_253_3, 1.413_213_340_045_236_5,
    1.253_314_137_316_219,
];
#[rustfmt::skip]
const MILLS_Q: [f64; 8] = [
    0.000_404_838_246_849_157_73, 0.006_861_574_507_145_971, 0.055_358_592_281_788_7,
    0.269_039_987_454_011_25, 0.838_904_702_665_566_3, 1.662_511_627_555_994_8,
    1.925_465_666_018_832_5, 1.0,
];

/// The normal tails `N(−z1)` and `N(−z2)` divided by `e^{−z1²/2}` (resp. that times F/K), from
/// the Mills ratio `M(z) = (1 − Φ(z)) / φ(z)` with `1/√(2π)` folded into the numerator. Both
/// ratios share one division, `1 / (Q(z1)·Q(z2))`: division is the slowest vector operation, and
/// the product of the denominators stays below 1e16 for z <= 40, far from overflow.
#[inline(always)]
fn tail_factors<L: Lane>(z1: L, z2: L) -> (L, L) {
    let z1 = z1.min(L::splat(MILLS_ARG_MAX));
    let z2 = z2.min(L::splat(MILLS_ARG_MAX));
    let scale = L::splat(INV_SQRT_TWO_PI);
    let (mut p1, mut p2) = (L::splat(MILLS_P[0]), L::splat(MILLS_P[0]));
    for &c in &MILLS_P[1..] {
        p1 = p1.fma(z1, L::splat(c));
        p2 = p2.fma(z2, L::splat(c));
    }
    let (mut q1, mut q2) = (L::splat(MILLS_Q[0]), L::splat(MILLS_Q[0]));
    for &c in &MILLS_Q[1..] {
        q1 = q1.fma(z1, L::splat(c));
        q2 = q2.fma(z2, L::splat(c));
    }
    let inverse = scale / (q1 * q2);
    (p1 * q2 * inverse, p2 * q1 * inverse)
}

/// Smallest total volatility σ√T used: below it the option is treated as (numerically) expired,
/// and the kernel returns its intrinsic value to within 1e-100 of the strike.
pub(crate) const TOTAL_VOL_MIN: f64 = 1e-100;

/// The undiscounted Black value divided by the strike, `B / K`, from `x = ln(F/K)`,
/// `fk = F/K`, total volatility `v = σ√T` (> 0) and `omega` = +1 (call) or −1 (put).
#[inline(always)]
pub(crate) fn black_over_strike<L: Lane>(x: L, fk: L, v: L, omega: L) -> L {
    let v = v.max(L::splat(TOTAL_VOL_MIN));
    let d1 = x / v + L::splat(0.5) * v;
    let d2 = d1 - v;
    let gauss = exp_nonpositive(L::splat(-0.5) * d1 * d1);
    // N(−|d1|) and N(−|d2|); φ(d2) = φ(d1)·F/K.
    let (m1, m2) = tail_factors(d1.abs(), d2.abs());
    let tail1 = gauss * m1;
    let tail2 = gauss * fk * m2;
    let one = L::splat(1.0);
    let n1 = L::select_nonneg(d1, one - tail1, tail1);
    let n2 = L::select_nonneg(d2, one - tail2, tail2);
    let call = fk.fma(n1, -n2);
    // Puts by parity, P/K = C/K − (F/K − 1): the absolute error stays at rounding level of
    // max(F, K), and the call is the only branch the kernel computes. `put_weight` is 1 for
    // puts and 0 for calls.
    let put_weight = L::splat(0.5) - L::splat(0.5) * omega;
    // Near expiry at the money the fit's 5.7e-13 relative error could leave a value a hair below
    // zero; an option is never worth less than nothing.
    put_weight.fma(one - fk, call).max(L::splat(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_ln_are_accurate() {
        let mut worst_exp: f64 = 0.0;
        let mut worst_ln: f64 = 0.0;
        for i in 0..=200_000 {
            let x = -600.0 * f64::from(i) / 200_000.0;
            let got: f64 = exp_nonpositive(x);
            worst_exp = worst_exp.max((got / x.exp() - 1.0).abs());
            let y = (f64::from(i) * 0.0035 - 350.0_f64).exp();
            let got_ln: f64 = ln_positive(y);
            let want = y.ln();
            worst_ln = worst_ln.max((got_ln - want).abs() / want.abs().max(1.0));
        }
        assert!(worst_exp < 2e-14, "exp relative error {worst_exp:e}");
        assert!(worst_ln < 1e-15, "ln error {worst_ln:e}");
    }

    #[test]
    fn normal_tail_is_accurate() {
        // Relative accuracy on the fitted range [0, 12]; beyond it N(−z) < 2e-33 and only the
        // absolute error matters.
        let mut worst_relative: f64 = 0.0;
        let mut worst_absolute: f64 = 0.0;
        for i in 0..=40_000 {
            let z = f64::from(i) * 0.001;
            let (m, _) = tail_factors(z, 0.0);
            let tail: f64 = exp_nonpositive(-0.5 * z * z) * m;
            let want = crate::norm_cdf(-z);
            if z <= 12.0 {
                worst_relative = worst_relative.max((tail / want - 1.0).abs());
            }
            worst_absolute = worst_absolute.max((tail - want).abs());
        }
        assert!(worst_relative < 1e-12, "tail relative error {worst_relative:e}");
        assert!(worst_absolute < 5e-13, "tail absolute error {worst_absolute:e}");
    }

    #[test]
    fn simd_lanes_equal_scalar_bit_for_bit() {
        let xs: [f64; 8] = [-3.0, -0.2, 0.0, 1e-9, 0.7, 2.5, -1e-12, 5.0];
        let vs = [1e-3, 0.05, 0.3, 1.0, 2.5, 1e-200, 0.0, 7.0];
        for (i, &x) in xs.iter().enumerate() {
            for (j, &v) in vs.iter().enumerate() {
                let omega = if (i + j) % 2 == 0 { 1.0 } else { -1.0 };
                let fk = x.exp();
                let scalar: f64 = black_over_strike(x, fk, v, omega);
                let lanes = black_over_strike(
                    f64x4::splat(x),
                    f64x4::splat(fk),
                    f64x4::new([v, 0.3, v, 1.0]),
                    f64x4::new([omega, 1.0, omega, -1.0]),
                )
                .to_array();
                assert_eq!(scalar.to_bits(), lanes[0].to_bits(), "x={x} v={v}");
                assert_eq!(lanes[0].to_bits(), lanes[2].to_bits());
                let y = (x + 10.0).abs() + 1e-3;
                assert_eq!(
                    ln_positive(y).to_bits(),
                    ln_positive(f64x4::splat(y)).to_array()[3].to_bits()
                );
            }
        }
    }
}
