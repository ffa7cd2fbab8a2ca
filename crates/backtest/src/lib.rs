//! Backtests of margin figures: the price history they run on, how often and how far realised
//! losses exceeded the requirements, and the capital measures to compare them with.
//!
//! - [`history`]: OHLCV bars from CSV, validated row by row. Zero or negative prices, a high
//!   below the low, an open or close outside the bar's range, repeated or unordered times and
//!   gaps are each named by line and kind, and either refused or skipped and listed in a
//!   [`history::Report`]; a zero is never read as a price.
//! - [`coverage`]: exceedances of a requirement series, Kupiec's proportion-of-failures test,
//!   Christoffersen's independence and conditional-coverage tests (closed-form χ² p-values), the
//!   Basel traffic light for any sample size and level, rolling-window zones, and the
//!   exceedances' magnitudes.
//! - [`capital`]: historical-simulation VaR and ES of every account and of the book from a
//!   scenario loss matrix, Euler contributions to the book's ES, filtered historical simulation
//!   (EWMA volatility rescaling) and 10-day figures by the square root of time or by
//!   overlapping sums.
//! - [`replay`]: history turned into one market snapshot per day by a [`replay::SurfaceModel`]
//!   read from TOML and hashed like a methodology; every day without a market is named.
//! - [`book`]: spot-relative legs re-struck before they could expire inside a margin period of
//!   risk; the typical strategies, seeded random books, portfolios read against a market.
//! - [`run`]: the daily loop through the margin engine's facade (one priced market a day, every
//!   account refreshed), realised losses by full revaluation, coverage per account and for the
//!   book, every skipped observation named; [`run::side_by_side`] under several methodologies.
//! - [`calibrate`]: the price range and volatility shock of an underlying that make a
//!   methodology's margin reach a target coverage, with EMIR's anti-procyclicality options, in
//!   and out of sample.
//! - [`procyclicality`]: peak to trough per year, the largest 1-day and 30-day rises.
//! - [`var`]: VaR and ES of a book on the replay's last day, HS, FHS and stressed, 1 and 10
//!   days, with Euler contributions.
//!
//! Conventions: losses are positive and gains negative; a loss equal to its requirement is
//! covered; a [`Confidence`] is exact in basis points, so a tail of `n` scenarios holds exactly
//! `⌈n · (1 − α)⌉` of them; VaR is that order statistic and ES the mean of that many worst
//! losses, without interpolation; ties break towards the lower scenario index. Times are
//! [`basics::UnixNanos`] in UTC. Every input is bounded by a limit in [`limits`] and refused with
//! one [`Error`] naming the field, the place (line, index or cell) and the reason.
//!
//! Nothing here reads the clock, the environment, a file or an unseeded random source: callers
//! pass text and numbers (random books take a seed), and every figure has the same bits for any
//! thread count.

pub mod book;
pub mod calibrate;
pub mod capital;
mod confidence;
pub mod coverage;
mod error;
pub mod history;
mod holdings;
pub mod limits;
pub mod procyclicality;
pub mod replay;
pub mod run;
pub mod var;

pub use confidence::Confidence;
pub use error::{Error, ErrorKind, Location};
