//! Fixtures and seeded synthetic workloads.
//!
//! - [`sample_market`], [`ballast_pm`], [`deribit_standard`]: the bundled sample market
//!   (`examples/market.json`) and methodologies, parsed.
//! - [`synthetic_exchange`]: a deterministic exchange of BTC and ETH with as many listed
//!   instruments as asked (perpetuals, futures, and option chains over many expiries).
//! - [`synthetic_book`]: accounts with random but seeded positions in those instruments.
//!
//! Used by tests and by `ballast bench`; nothing here reads the clock or an unseeded RNG.

// Fixtures: the bundled files and generated markets are checked by tests, so a failure here is a
// defect in the build itself, reported loudly rather than handled.
#![allow(clippy::expect_used)]

use basics::{Currency, NANOS_PER_DAY, UnixNanos};
use formats::market::MarketDocument;
use formats::methodology::Profile;
use margin::standard::StandardMargin;
use margin::{AccountBook, ResolvedAccount};
use market::{MarketSnapshot, SviParams, UnderlyingInput};
use product::{Instrument, InstrumentKind, OptionRight, Settlement};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scenario::Methodology;

/// The bundled sample market's JSON text.
pub const SAMPLE_MARKET_JSON: &str = include_str!("../../../examples/market.json");

/// The bundled sample market.
///
/// # Panics
/// If the bundled file is invalid (a test asserts it is not).
#[must_use]
pub fn sample_market() -> MarketSnapshot {
    let document =
        MarketDocument::from_json(SAMPLE_MARKET_JSON).expect("Invariant: the sample market parses");
    document.to_snapshot().expect("Invariant: the sample market is valid")
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

/// Valuation time of synthetic exchanges: 2026-11-20T08:00:00Z.
#[must_use]
pub fn synthetic_valuation() -> UnixNanos {
    UnixNanos::from_civil(2026, 11, 20, 8)
}

/// A synthetic exchange with about `instruments` listed instruments on BTC and ETH: perpetuals,
/// a future per expiry and an option chain (calls and puts) per expiry, with smooth SVI surfaces.
///
/// # Panics
/// Never for `instruments` between 10 and 1,000,000.
#[must_use]
pub fn synthetic_exchange(instruments: usize) -> (MarketSnapshot, Vec<Instrument>) {
    let valuation = synthetic_valuation();
    let expiries: Vec<i64> = vec![1, 2, 3, 7, 14, 21, 35, 63, 91, 126, 182, 273, 364];
    // Per underlying: a perpetual, then per expiry one future and 2 x strikes options.
    let per_underlying = instruments / 2;
    let strikes_per_expiry =
        ((per_underlying.saturating_sub(1 + expiries.len())) / (2 * expiries.len())).max(1);
    let mut builder = MarketSnapshot::builder(valuation).usd_price(Currency::USDC, 0.9998);
    let mut listed = Vec::with_capacity(instruments);
    for (underlying, index, atm) in
        [(Currency::BTC, 95_000.0, 0.55), (Currency::ETH, 3_500.0, 0.65)]
    {
        let mut input = UnderlyingInput { index, ..UnderlyingInput::default() };
        listed.push(
            Instrument::new(
                underlying,
                Currency::USD,
                Settlement::Inverse,
                InstrumentKind::Perpetual,
            )
            .expect("Invariant: valid"),
        );
        for &days in &expiries {
            let expiry = UnixNanos(valuation.0 + days * NANOS_PER_DAY);
            let years = days as f64 / 365.0;
            let forward = index * (0.05 * years).exp();
            let sigma = 0.08 + 0.25 * years.sqrt();
            let b = 0.12 * years.sqrt() / 0.55;
            let vol = atm + 0.05 * (years / 0.6).sqrt().min(1.0);
            input.forwards.push((expiry, forward));
            input.smiles.push((
                expiry,
                SviParams { a: vol * vol * years - b * sigma, b, rho: -0.25, m: 0.0, sigma },
            ));
            listed.push(
                Instrument::new(
                    underlying,
                    Currency::USD,
                    Settlement::Inverse,
                    InstrumentKind::Future { expiry },
                )
                .expect("Invariant: valid"),
            );
            let width = 0.15 + 1.2 * vol * years.sqrt();
            for i in 0..strikes_per_expiry {
                let x = -width + 2.0 * width * (i as f64 + 0.5) / strikes_per_expiry as f64;
                let strike = round_strike(forward * x.exp(), index);
                for right in [OptionRight::Call, OptionRight::Put] {
                    let kind = InstrumentKind::Option { expiry, strike, right };
                    listed.push(
                        Instrument::new(underlying, Currency::USD, Settlement::Inverse, kind)
                            .expect("Invariant: valid"),
                    );
                }
            }
        }
        builder = builder.underlying(underlying, input);
    }
    listed.sort();
    listed.dedup();
    (builder.build().expect("Invariant: the synthetic market is valid"), listed)
}

fn round_strike(strike: f64, index: f64) -> f64 {
    let tick = if index > 10_000.0 { 100.0 } else { 5.0 };
    ((strike / tick).round() * tick).max(tick)
}

/// `accounts` accounts of `positions` positions each over the first `rows` rows of some risk
/// arrays, sizes between −10 and 10 contracts (futures in thousands of USD), and a USDC and a
/// coin balance each. The same seed gives the same book.
#[must_use]
pub fn synthetic_book(
    seed: u64,
    accounts: usize,
    positions: usize,
    rows: usize,
    futures_rows: &[usize],
) -> AccountBook {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut book = AccountBook::default();
    let mut account = ResolvedAccount::default();
    for _ in 0..accounts {
        account.positions.clear();
        while account.positions.len() < positions.min(rows) {
            let row = rng.random_range(0..rows);
            if account.positions.iter().any(|(r, _)| *r == row) {
                continue;
            }
            let contracts = f64::from(rng.random_range(-100..=100_i32)) / 10.0;
            let size = if futures_rows.contains(&row) { contracts * 10_000.0 } else { contracts };
            account.positions.push((row, if size == 0.0 { 0.1 } else { size }));
        }
        account.positions.sort_by_key(|(r, _)| *r);
        account.balances = vec![
            (Currency::BTC, f64::from(rng.random_range(0..20_u32))),
            (Currency::USDC, f64::from(rng.random_range(10_000..2_000_000_u32))),
        ];
        account.balances.sort_by_key(|(c, _)| *c);
        book.push(&account);
    }
    book
}
