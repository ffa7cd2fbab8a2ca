//! European options under Black-76 and Black-Scholes-Merton, linear and inverse.
//!
//! Every combination is priced as `V = D · G(F, σ, T)`, where `F` is the forward, `D` the discount
//! factor of the settlement currency, and `G` the undiscounted Black value `B` (linear) or `B / F`
//! (inverse: the coin value of a USD payoff). Greeks come from one set of partial derivatives of
//! `B` and the chain rule through `F(u, T, r)` and `D(T, r)`, where `u` is the model's underlying
//! input (the forward for Black-76, the spot for BSM). Writing the chain rule once is what keeps
//! the four variants consistent; the finite-difference tests check every Greek of every variant.
//!
//! Inverse options: a coin-settled option paying `(S_T - K)^+ / S_T` coins is worth
//! `e^{-q T} · B(F) / F` coins, where `q` is the coin's own rate. Deribit sets all rates to zero,
//! so its mark price is `B(F) / F`. For Black-76 the `rate` input is therefore the rate of the
//! settlement currency (USD for linear, the coin for inverse); for BSM the coin's rate is the
//! `dividend` (foreign) yield.

use implied_vol::{DefaultSpecialFn, PriceBlackScholes};
use product::{OptionRight, Settlement};

use crate::normal::{norm_cdf, norm_pdf};
use crate::{Error, ErrorKind};
use basics::limits::{EXPIRY_YEARS_MAX, FEED_RATE_ABS_MAX, VOLATILITY_MAX};

/// The pricing model, which decides what the underlying input means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Black-76: the underlying input is the forward of the option's expiry.
    Black76,
    /// Black-Scholes-Merton: the underlying input is the spot; the forward is
    /// `spot · e^{(rate - dividend) · years}`.
    BlackScholesMerton,
}

/// The terms and market inputs of one European option, before validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EuropeanSpec {
    /// Pricing model.
    pub model: Model,
    /// Forward (Black-76) or spot (BSM), in quote currency per unit of underlying.
    pub underlying: f64,
    /// Strike, in quote currency per unit of underlying.
    pub strike: f64,
    /// Time to expiry in ACT/365 years.
    pub years: f64,
    /// Lognormal volatility as a decimal.
    pub vol: f64,
    /// Continuously compounded rate: of the quote currency for BSM; of the settlement currency for
    /// Black-76 (see the module documentation).
    pub rate: f64,
    /// Continuous dividend or foreign-currency yield (BSM only; must be zero for Black-76).
    pub dividend: f64,
    /// Call or put.
    pub right: OptionRight,
    /// Linear (value in quote currency) or inverse (value in coins of the underlying).
    pub settlement: Settlement,
}

/// A validated [`EuropeanSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EuropeanInputs {
    spec: EuropeanSpec,
}

impl EuropeanInputs {
    /// Validates the inputs once, so that pricers never see NaN, negative time or volatility.
    ///
    /// # Errors
    /// `NotFinite` or `OutOfRange` naming the field.
    pub fn new(spec: EuropeanSpec) -> Result<EuropeanInputs, Error> {
        let finite = |field, value: f64| {
            if value.is_finite() { Ok(()) } else { Err(Error::new(field, ErrorKind::NotFinite)) }
        };
        let underlying_name = match spec.model {
            Model::Black76 => "forward",
            Model::BlackScholesMerton => "spot",
        };
        finite(underlying_name, spec.underlying)?;
        finite("strike", spec.strike)?;
        finite("years", spec.years)?;
        finite("vol", spec.vol)?;
        finite("rate", spec.rate)?;
        finite("dividend", spec.dividend)?;
        if spec.underlying <= 0.0 {
            return Err(Error::range(
                underlying_name,
                format!("must be > 0, got {}", spec.underlying),
            ));
        }
        if spec.strike <= 0.0 {
            return Err(Error::range("strike", format!("must be > 0, got {}", spec.strike)));
        }
        if !(0.0..=EXPIRY_YEARS_MAX).contains(&spec.years) {
            let rule = format!("must be in [0, {EXPIRY_YEARS_MAX}], got {}", spec.years);
            return Err(Error::range("years", rule));
        }
        if !(0.0..=VOLATILITY_MAX).contains(&spec.vol) {
            let rule = format!("must be in [0, {VOLATILITY_MAX}], got {}", spec.vol);
            return Err(Error::range("vol", rule));
        }
        for (field, value) in [("rate", spec.rate), ("dividend", spec.dividend)] {
            if value.abs() > FEED_RATE_ABS_MAX {
                let rule = format!("|{field}| must be <= {FEED_RATE_ABS_MAX}, got {value}");
                return Err(Error::range(field, rule));
            }
        }
        if spec.model == Model::Black76 && spec.dividend != 0.0 {
            let why = "a dividend yield applies only to the bsm model; black76 takes the forward";
            return Err(Error::new("dividend", ErrorKind::Unsupported(why.into())));
        }
        Ok(EuropeanInputs { spec })
    }

    /// The validated inputs.
    #[must_use]
    pub fn spec(&self) -> &EuropeanSpec {
        &self.spec
    }

    /// The same option at another volatility.
    ///
    /// # Errors
    /// When `vol` is out of range.
    pub fn with_vol(&self, vol: f64) -> Result<EuropeanInputs, Error> {
        EuropeanInputs::new(EuropeanSpec { vol, ..self.spec })
    }

    /// The forward of the option's expiry.
    #[must_use]
    pub fn forward(&self) -> f64 {
        self.carry().forward
    }

    pub(crate) fn carry(&self) -> Carry {
        let s = &self.spec;
        let inverse = s.settlement == Settlement::Inverse;
        match s.model {
            Model::Black76 => Carry {
                forward: s.underlying,
                forward_by_underlying: 1.0,
                forward_by_years: 0.0,
                forward_by_rate: 0.0,
                settle_rate: s.rate,
                log_discount_by_rate: -s.years,
            },
            Model::BlackScholesMerton => {
                let forward = s.underlying * ((s.rate - s.dividend) * s.years).exp();
                Carry {
                    forward,
                    forward_by_underlying: forward / s.underlying,
                    forward_by_years: (s.rate - s.dividend) * forward,
                    forward_by_rate: s.years * forward,
                    settle_rate: if inverse { s.dividend } else { s.rate },
                    log_discount_by_rate: if inverse { 0.0 } else { -s.years },
                }
            }
        }
    }
}

/// How the forward and the discount factor depend on the model's inputs.
pub(crate) struct Carry {
    pub(crate) forward: f64,
    forward_by_underlying: f64,
    forward_by_years: f64,
    forward_by_rate: f64,
    /// Rate that discounts the settlement currency.
    pub(crate) settle_rate: f64,
    /// ∂ ln D / ∂ rate.
    log_discount_by_rate: f64,
}

/// Value and sensitivities of one option. See the crate documentation for units; for inverse
/// options every figure is in coins.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Greeks {
    /// Present value.
    pub price: f64,
    /// ∂V/∂u, u being the forward (Black-76) or the spot (BSM).
    pub delta: f64,
    /// ∂²V/∂u².
    pub gamma: f64,
    /// ∂V/∂σ.
    pub vega: f64,
    /// −∂V/∂T: value change per year of time passing, other inputs fixed.
    pub theta: f64,
    /// ∂V/∂rate (for Black-76 the forward is held fixed).
    pub rho: f64,
    /// ∂²V/∂u∂σ.
    pub vanna: f64,
    /// ∂²V/∂σ².
    pub volga: f64,
}

/// The undiscounted value `G` and its partials in `F`, `σ` and `T` (at fixed `F`).
#[derive(Debug, Clone, Copy)]
struct Partials {
    value: f64,
    by_f: f64,
    by_ff: f64,
    by_vol: f64,
    by_years: f64,
    by_f_vol: f64,
    by_vol_vol: f64,
}

/// The undiscounted Black value `B(F, K, σ, T)`.
fn black_value(f: f64, k: f64, t: f64, vol: f64, right: OptionRight) -> f64 {
    if vol * t.sqrt() <= 0.0 {
        return (right.sign() * (f - k)).max(0.0);
    }
    // Let's-Be-Rational's price keeps full relative accuracy far out of the money, where the
    // textbook difference F·N(d1) − K·N(d2) cancels catastrophically.
    PriceBlackScholes::builder()
        .forward(f)
        .strike(k)
        .volatility(vol)
        .expiry(t)
        .is_call(right == OptionRight::Call)
        .build_unchecked()
        .calculate::<DefaultSpecialFn>()
}

fn black_partials(f: f64, k: f64, t: f64, vol: f64, right: OptionRight) -> Partials {
    let omega = right.sign();
    let v = vol * t.sqrt();
    if v <= 0.0 {
        // No optionality left: the discounted intrinsic value. Second-order terms are Dirac
        // masses at the strike and are reported as zero.
        let moneyness = omega * (f - k);
        let step = if moneyness > 0.0 {
            1.0
        } else if moneyness == 0.0 {
            0.5
        } else {
            0.0
        };
        return Partials {
            value: moneyness.max(0.0),
            by_f: omega * step,
            by_ff: 0.0,
            by_vol: 0.0,
            by_years: 0.0,
            by_f_vol: 0.0,
            by_vol_vol: 0.0,
        };
    }
    let d1 = (f / k).ln() / v + 0.5 * v;
    let d2 = d1 - v;
    let density = norm_pdf(d1);
    let sqrt_t = t.sqrt();
    Partials {
        value: black_value(f, k, t, vol, right),
        by_f: omega * norm_cdf(omega * d1),
        by_ff: density / (f * v),
        by_vol: f * density * sqrt_t,
        by_years: f * density * vol / (2.0 * sqrt_t),
        by_f_vol: -density * d2 / vol,
        by_vol_vol: f * density * sqrt_t * d1 * d2 / vol,
    }
}

/// The partials of `B / F` from those of `B`: the coin value of an inverse option.
fn inverse_partials(b: Partials, f: f64) -> Partials {
    let value = b.value / f;
    Partials {
        value,
        by_f: (b.by_f - value) / f,
        by_ff: b.by_ff / f - 2.0 * b.by_f / (f * f) + 2.0 * value / (f * f),
        by_vol: b.by_vol / f,
        by_years: b.by_years / f,
        by_f_vol: b.by_f_vol / f - b.by_vol / (f * f),
        by_vol_vol: b.by_vol_vol / f,
    }
}

/// Prices an option and computes all its Greeks.
#[must_use]
pub fn european(inputs: &EuropeanInputs) -> Greeks {
    let s = inputs.spec();
    let carry = inputs.carry();
    let f = carry.forward;
    let black = black_partials(f, s.strike, s.years, s.vol, s.right);
    let g = match s.settlement {
        Settlement::Linear => black,
        Settlement::Inverse => inverse_partials(black, f),
    };
    let discount = (-carry.settle_rate * s.years).exp();
    let price = discount * g.value;
    let f_u = carry.forward_by_underlying;
    let value_by_years =
        -carry.settle_rate * price + discount * (g.by_f * carry.forward_by_years + g.by_years);
    let greeks = Greeks {
        price,
        delta: discount * g.by_f * f_u,
        gamma: discount * g.by_ff * f_u * f_u,
        vega: discount * g.by_vol,
        theta: -value_by_years,
        rho: carry.log_discount_by_rate * price + discount * g.by_f * carry.forward_by_rate,
        vanna: discount * g.by_f_vol * f_u,
        volga: discount * g.by_vol_vol,
    };
    debug_assert!(greeks.price >= 0.0, "Invariant: an option is worth at least nothing");
    greeks
}

/// Prices an option (the `price` field of [`european`], without the Greeks' cost).
#[must_use]
pub fn price(inputs: &EuropeanInputs) -> f64 {
    let s = inputs.spec();
    let carry = inputs.carry();
    let f = carry.forward;
    let black = black_value(f, s.strike, s.years, s.vol, s.right);
    let g = match s.settlement {
        Settlement::Linear => black,
        Settlement::Inverse => black / f,
    };
    (-carry.settle_rate * s.years).exp() * g
}

#[cfg(test)]
mod tests;
