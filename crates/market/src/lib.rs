//! Market data, validated once and immutable afterwards.
//!
//! - [`SviParams`] / [`SviSlice`]: one expiry's smile in raw SVI, checked for butterfly arbitrage
//!   (Gatheral's density factor) and Lee's wing bound.
//! - [`VolSurface`]: slices joined by linear interpolation of total variance at fixed forward
//!   log-moneyness, checked for calendar arbitrage.
//! - [`calibrate`]: fits a slice to quoted (strike, implied vol) points, with fit diagnostics.
//! - [`ForwardCurve`]: forwards per expiry with constant-carry interpolation.
//! - [`MarketSnapshot`]: everything above for every underlying, plus stable-coin prices, rates and
//!   instrument quotes and what a venue's oracles publish beside them ([`FeedData`]: per-expiry
//!   rates and forwards, feed confidences), at one explicit valuation time.
//!
//! **Architecture Invariant:** this crate knows nothing about positions or portfolios, and reads
//! no clock: the valuation time is an input.

mod calibrate;
mod error;
mod feeds;
mod forward;
mod snapshot;
mod surface;
mod svi;

pub use calibrate::{
    CALIBRATION_POINTS_MIN, Calibration, ExpiryQuotes, FitDiagnostics, QuotePoint, calibrate,
    calibrate_surface,
};
pub use error::{Error, ErrorKind};
pub use feeds::FeedData;
pub use forward::{ForwardCurve, ForwardPoint};
pub use snapshot::{
    InstrumentQuote, MarketSnapshot, SnapshotBuilder, UnderlyingInput, UnderlyingMarket,
};
pub use surface::VolSurface;
pub use svi::{SviParams, SviSlice};
