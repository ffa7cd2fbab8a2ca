//! Portfolio margin: the worst loss of the whole portfolio over a grid of stress scenarios, plus
//! the cost of liquidating it and contingencies.
//!
//! The engine works in two steps, which is what makes it fast enough for a whole exchange:
//!
//! 1. [`Engine::price`] revalues every instrument of a universe once per scenario of its
//!    underlying (full revaluation on the volatility surface, through the SIMD kernel of
//!    `pricing`) and gives the [`PricedMarket`], the one facade every caller goes through.
//! 2. [`PricedMarket::account_into`] aggregates an account as a sparse sum of size × row, adds
//!    collateral, applies scenario weights and offsets, computes the add-ons and forms IM and MM.
//!    [`PricedMarket::refresh`] does it for a whole [`AccountBook`] in parallel, one result per
//!    account.
//!
//! Around it: [`report`] (the full report with the Greek approximation beside full revaluation and
//! the per-position baseline), [`whatif`] (hypothetical trades, marginal margin, liquidation
//! prices, pre-trade checks), [`settle`] (futures' variation margin and expiries into balances)
//! and [`standard`] (Deribit's per-position standard margin).
//!
//! **Architecture Invariants:** margin never returns a silently partial number (anything it cannot
//! value is an [`Error`]); floating point becomes fixed-point [`basics::Money`] only in
//! [`report::Quantised`], requirements rounded up and equity rounded down.

mod addons;
mod aggregate;
mod book;
mod engine;
mod error;
mod extended;
mod feeds;
mod figures;
mod grouped;
pub mod health;
pub mod kernels;
mod priced;
mod refresh;
pub mod report;
mod scratch;
pub mod settle;
pub mod standard;
mod valuation;
mod vectors;
pub mod whatif;

pub use addons::{UnderlyingLiquidity, UnitSums, VEGA_BUCKETS_MAX, bucket_of};
pub use book::{AccountBook, AccountSlices, BOOK_CHUNK_ACCOUNTS, ResolvedAccount};
pub use engine::Engine;
pub use error::{Error, ErrorKind};
pub use feeds::confidence_charge;
pub use figures::{AccountDetail, AddOnLine, CurrencyFigures, UNITS_MAX, UnitDetail, Worst};
pub use priced::PricedMarket;
pub use refresh::{Refresh, RefreshLine};
pub use scratch::Scratch;
pub use valuation::{InstrumentInfo, RiskArrays};
pub use vectors::{UnitScan, VectorLayout, VectorScan};

/// A seeded linear congruential sequence for the unit tests: each call `draw(n)` gives a number
/// in `0..n` (Knuth's MMIX multiplier and increment, the high bits kept).
#[cfg(test)]
pub(crate) fn test_draws(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |n| {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    }
}
