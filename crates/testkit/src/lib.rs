//! Test fixtures: the bundled files, parsed.
//!
//! - [`sample_market`], [`ballast_pm`], [`deribit_standard`]: the bundled sample market
//!   (`examples/market.json`) and methodologies, parsed.
//!
//! Used by tests only (a dev-dependency everywhere, which tidy checks); the seeded synthetic
//! exchanges and books are `bench::synthetic`.

// Fixtures: the bundled files are checked by tests, so a failure here is a
// defect in the build itself, reported loudly rather than handled.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use formats::methodology::Profile;
use margin::standard::StandardMargin;
use market::MarketSnapshot;
use methodology::Methodology;

/// The bundled sample market, shared as the engine takes it.
///
/// # Panics
/// If the bundled file is invalid (a test asserts it is not).
#[must_use]
pub fn sample_market() -> Arc<MarketSnapshot> {
    Arc::new(
        formats::bundled::sample_market().expect("Invariant: the bundled sample market is valid"),
    )
}

/// The bundled Ballast PM methodology.
///
/// # Panics
/// If the bundled file is invalid.
#[must_use]
pub fn ballast_pm() -> Methodology {
    match formats::bundled::bundled("ballast-pm").expect("Invariant: ballast-pm is bundled") {
        Profile::Portfolio(m) => *m,
        Profile::PerPosition(_) => panic!("Invariant: ballast-pm is a portfolio methodology"),
    }
}

/// The bundled Deribit standard-margin baseline.
///
/// # Panics
/// If the bundled file is invalid.
#[must_use]
pub fn deribit_standard() -> StandardMargin {
    match formats::bundled::bundled("deribit-standard")
        .expect("Invariant: deribit-standard is bundled")
    {
        Profile::PerPosition(s) => s,
        Profile::Portfolio(_) => {
            panic!("Invariant: deribit-standard is a per-position methodology")
        }
    }
}
