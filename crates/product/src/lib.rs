//! Contract terms, and nothing else.
//!
//! An [`Instrument`] says what a contract pays: its underlying, its quote and settlement
//! currencies, and for options the strike, expiry, right and exercise style. It holds no prices,
//! volatilities or rates; those live in the `market` crate, and a pricer needs both.
//!
//! Instruments are named in Deribit's convention (`BTC-27DEC24-60000-C`, `BTC-PERPETUAL`,
//! `ETH-28JUN24`, `SOL_USDC-27DEC24-150-C`); [`Instrument::parse`] and its `Display` are exact
//! inverses. A [`Portfolio`] is a validated, canonically ordered set of [`Position`]s and currency
//! balances: two portfolios with the same holdings compare, print and hash the same.
//!
//! **Architecture Invariant:** this crate contains no market data.

mod error;
mod instrument;
mod portfolio;
mod trade;

pub use error::{Error, ErrorKind};
pub use instrument::{Exercise, Instrument, InstrumentKind, OptionRight, Settlement};
pub use portfolio::{FUNDING_INDEX_MAX, Portfolio, Position, check_funding, funding_due};
pub use trade::{Fill, Filled, delta_one_pnl};
