//! Option pricing: prices, Greeks, implied volatility, trees and batch kernels.
//!
//! Pricers are pure functions of validated inputs; they hold no market state. The layout:
//!
//! - [`EuropeanInputs`] and [`european`]: Black-76 (on a forward) and Black-Scholes-Merton (on a
//!   spot with a dividend or foreign yield), for linear (quote-settled) and inverse
//!   (coin-settled, Deribit-style) options, with analytic delta, gamma, vega, theta, rho, vanna
//!   and volga. One set of undiscounted Black partials feeds every model through the chain rule,
//!   so the four model/settlement combinations cannot drift apart.
//! - [`implied_vol`]: the inverse in volatility, through the Let's-Be-Rational solver of the
//!   `implied-vol` crate (machine precision in two iterations).
//! - [`binomial`]: a Leisen-Reimer tree for American exercise.
//! - [`batch`]: struct-of-arrays SIMD kernels for risk arrays, multi-core through rayon, whose
//!   results are bit-identical for every thread count and to their own scalar instantiation.
//!
//! Units: years are ACT/365, volatilities and rates are decimals (0.6 = 60 %), vega and volga are
//! per unit of volatility (not per vol point), theta is per year, rho per unit of rate. Inverse
//! option values and Greeks are in coins of the underlying.

pub mod batch;
pub mod binomial;
mod error;
mod european;
mod implied;
mod kernel;
mod normal;

pub use error::{Error, ErrorKind};
pub use european::{EuropeanInputs, EuropeanSpec, Greeks, Model, european, price};
pub use implied::implied_vol;
pub use normal::{norm_cdf, norm_pdf};
pub use product::{Exercise, OptionRight, Settlement};
