//! Implied volatility: the volatility at which a model reproduces a price.
//!
//! The solver is Jäckel's "Let's Be Rational" as implemented by the `implied-vol` crate: it
//! reaches the maximum attainable double precision in two iterations for any input, where a
//! textbook Newton iteration stalls far out of the money. Measured round-trip error on this
//! project's grid (deep OTM, 1 day to 2 years, 5 % to 300 % vol) is in the tests below.

use implied_vol::{DefaultSpecialFn, ImpliedBlackVolatility};
use product::{OptionRight, Settlement};

use crate::{Error, ErrorKind, EuropeanInputs};

/// The volatility at which `inputs` (whose own `vol` is ignored) is worth `price`, in the
/// settlement currency of the option (coins for inverse options).
///
/// # Errors
/// `NotFinite` for a NaN price; `Unsupported` at zero time to expiry, where every volatility
/// gives the same price; `PriceOutsideBounds` when the price is below the discounted intrinsic
/// value or at or above the discounted forward (calls) or strike (puts).
pub fn implied_vol(price: f64, inputs: &EuropeanInputs) -> Result<f64, Error> {
    if !price.is_finite() {
        return Err(Error::new("price", ErrorKind::NotFinite));
    }
    let s = inputs.spec();
    if s.years <= 0.0 {
        let why = "at expiry the price does not depend on volatility";
        return Err(Error::new("years", ErrorKind::Unsupported(why.into())));
    }
    let carry = inputs.carry();
    let f = carry.forward;
    let discount = (-carry.settle_rate * s.years).exp();
    // Convert the price into the undiscounted Black value B(F, K, σ, T) in quote currency.
    let to_black = match s.settlement {
        Settlement::Linear => 1.0 / discount,
        Settlement::Inverse => f / discount,
    };
    let black = price * to_black;
    let is_call = s.right == OptionRight::Call;
    let intrinsic = if is_call { (f - s.strike).max(0.0) } else { (s.strike - f).max(0.0) };
    let ceiling = if is_call { f } else { s.strike };
    if black < intrinsic || black >= ceiling {
        return Err(Error::new(
            "price",
            ErrorKind::PriceOutsideBounds {
                lower: intrinsic / to_black,
                upper: ceiling / to_black,
            },
        ));
    }
    if black == intrinsic {
        return Ok(0.0);
    }
    let solved = ImpliedBlackVolatility::builder()
        .option_price(black)
        .forward(f)
        .strike(s.strike)
        .expiry(s.years)
        .is_call(is_call)
        .build()
        .and_then(|problem| problem.calculate::<DefaultSpecialFn>());
    match solved {
        Some(vol) if vol.is_finite() => Ok(vol),
        _ => Err(Error::new(
            "price",
            ErrorKind::PriceOutsideBounds {
                lower: intrinsic / to_black,
                upper: ceiling / to_black,
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::european::EuropeanSpec;
    use crate::{Model, price};

    fn inputs(
        model: Model,
        settlement: Settlement,
        right: OptionRight,
        k: f64,
        t: f64,
        v: f64,
    ) -> EuropeanInputs {
        EuropeanInputs::new(EuropeanSpec {
            model,
            underlying: 100.0,
            strike: k,
            years: t,
            vol: v,
            rate: 0.02,
            dividend: 0.0,
            right,
            settlement,
        })
        .unwrap()
    }

    /// Round-trips one option; `None` when its time value has underflowed and carries no
    /// information about the volatility. Otherwise the error in units of Jäckel's attainable
    /// precision: the price's relative rounding amplified by its sensitivity to volatility.
    fn round_trip(option: &EuropeanInputs) -> Option<f64> {
        let s = option.spec();
        let p = price(option);
        let f = option.forward();
        let intrinsic = (s.right.sign() * (f - s.strike)).max(0.0);
        let in_quote = if s.settlement == Settlement::Inverse { p * f } else { p };
        let time_value = in_quote - intrinsic;
        if time_value < 1e-250 * f || time_value < 4.0 * f64::EPSILON * intrinsic {
            return None;
        }
        let got = implied_vol(p, option).unwrap();
        let vega = crate::european(option).vega;
        let attainable = 4.0 * f64::EPSILON * p / (vega * s.vol) + 1e-13;
        Some((got - s.vol).abs() / s.vol / attainable)
    }

    /// Round trip over a wide grid: strikes from deep out of the money to deep in the money,
    /// one day to two years, 5 % to 300 % volatility, both models and settlements.
    #[test]
    fn round_trip_over_a_wide_grid() {
        let strikes = [5.0, 25.0, 50.0, 80.0, 95.0, 100.0, 105.0, 125.0, 200.0, 400.0, 1000.0];
        let years = [1.0 / 365.0, 7.0 / 365.0, 30.0 / 365.0, 0.25, 1.0, 2.0];
        let vols = [0.05, 0.2, 0.5, 0.8, 1.5, 3.0];
        let mut checked = 0;
        for model in [Model::Black76, Model::BlackScholesMerton] {
            for settlement in [Settlement::Linear, Settlement::Inverse] {
                for right in [OptionRight::Call, OptionRight::Put] {
                    for (&k, &t, &v) in grid(&strikes, &years, &vols) {
                        let option = inputs(model, settlement, right, k, t, v);
                        if let Some(error) = round_trip(&option) {
                            let case = format!("{model:?} {settlement:?} {right:?} K={k} T={t}");
                            assert!(error <= 1.0, "{case} v={v}: {error} x attainable");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 1500, "only {checked} cases were checked");
    }

    fn grid<'a>(
        a: &'a [f64],
        b: &'a [f64],
        c: &'a [f64],
    ) -> impl Iterator<Item = (&'a f64, &'a f64, &'a f64)> {
        a.iter().flat_map(move |x| b.iter().flat_map(move |y| c.iter().map(move |z| (x, y, z))))
    }

    #[test]
    fn rejects_prices_outside_bounds() {
        let call = inputs(Model::Black76, Settlement::Linear, OptionRight::Call, 80.0, 0.5, 0.5);
        let d = (-0.02f64 * 0.5).exp();
        let err = implied_vol(19.0 * d, &call).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::PriceOutsideBounds { .. }), "{err}");
        assert!(implied_vol(100.5 * d, &call).is_err());
        assert_eq!(implied_vol(20.0 * d, &call).unwrap(), 0.0);
        assert_eq!(implied_vol(f64::NAN, &call).unwrap_err().kind, ErrorKind::NotFinite);
        let expired = inputs(Model::Black76, Settlement::Linear, OptionRight::Call, 80.0, 0.0, 0.5);
        assert_eq!(implied_vol(20.0, &expired).unwrap_err().field, "years");
    }
}
