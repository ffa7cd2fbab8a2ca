//! Vocabulary types that every Ballast layer shares.
//!
//! This crate sits at the bottom of the workspace and knows nothing about options, markets or
//! margin. It gives the layers above a common language:
//!
//! - [`Currency`]: a short, validated asset code (`BTC`, `USDC`), cheap to copy and ordered so it
//!   can key a `BTreeMap` whose iteration order is observable.
//! - [`UnixNanos`] and the ACT/365 year fraction used by every pricer, plus civil-date helpers for
//!   instrument names such as `27DEC24`.
//! - [`Money`]: fixed-point amounts in 1e-18 units, tagged with a currency, created from `f64` only
//!   through a conversion that names its rounding direction.
//! - [`limits`]: every bound in the system, named with units last.
//! - [`keccak`]: Keccak-256 of four messages at once, for bulk commitments.
//!
//! Nothing here reads the clock, the environment or a random source.

mod currency;
mod error;
pub mod keccak;
pub mod limits;
mod money;
mod time;

pub use currency::Currency;
pub use error::{Error, ErrorKind};
pub use money::{MONEY_SCALE, Money, Rounding, format_scaled};
pub use time::{
    DAYS_PER_YEAR, NANOS_PER_DAY, NANOS_PER_YEAR, UnixNanos, civil_from_days, days_from_civil,
    month_abbrev, month_from_abbrev, year_fraction,
};
