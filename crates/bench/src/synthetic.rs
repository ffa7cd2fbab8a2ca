//! Seeded synthetic workloads: a deterministic exchange of BTC and ETH with as many listed
//! instruments as asked, and books of accounts with random but seeded positions in them. The
//! benchmarks and the tests run on these; nothing here reads the clock or an unseeded RNG.

// Every value built here is valid by construction (tests build the largest and smallest
// exchanges): a failure is a defect in this file, reported loudly rather than handled.
#![allow(clippy::expect_used)]

use basics::{Currency, Money, NANOS_PER_DAY, Rounding, UnixNanos};
use margin::{AccountBook, ResolvedAccount};
use market::{MarketSnapshot, SviParams, UnderlyingInput};
use product::{Instrument, InstrumentKind, OptionRight, Portfolio, Position, Settlement};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Valuation time of synthetic exchanges: 2026-11-20T08:00:00Z.
#[must_use]
pub fn valuation() -> UnixNanos {
    UnixNanos::from_civil(2026, 11, 20, 8)
}

/// A synthetic exchange with about `instruments` listed instruments on BTC and ETH: perpetuals,
/// a future per expiry and an option chain (calls and puts) per expiry, with smooth SVI surfaces.
///
/// # Panics
/// Never for `instruments` between 10 and 1,000,000: every contract and smile built here is
/// valid by construction, which the tests check.
#[must_use]
pub fn exchange(instruments: usize) -> (MarketSnapshot, Vec<Instrument>) {
    let valuation = valuation();
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
pub fn book(
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

/// Account `a` of a synthetic book as a portfolio (`instruments` are the book's rows): what the
/// oracle commits to and what a what-if starts from.
///
/// # Errors
/// A balance beyond the range of money, or a portfolio limit.
pub fn portfolio(
    book: &AccountBook,
    a: usize,
    instruments: &[Instrument],
) -> Result<Portfolio, crate::Error> {
    let account = book.account(a);
    let positions = (account.positions.iter())
        .map(|(row, size)| Position::new(instruments[*row], *size))
        .collect();
    let balances = (account.balances.iter())
        .map(|(c, amount)| Money::from_f64(*amount, *c, Rounding::Down))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| crate::Error::new(format!("account-{a}: {e}")))?;
    Portfolio::new(positions, &balances).map_err(|e| crate::Error::new(format!("account-{a}: {e}")))
}

#[cfg(test)]
mod tests {
    /// The smallest and a large exchange build, their instruments are sorted and unique, and the
    /// same seed gives the same book.
    #[test]
    fn exchanges_and_books_are_valid_and_seeded() {
        for wanted in [10, 2_000] {
            let (market, instruments) = super::exchange(wanted);
            assert!(instruments.windows(2).all(|w| w[0] < w[1]));
            assert!(instruments.iter().all(|i| market.underlying(i.underlying()).is_ok()));
        }
        let a = super::book(7, 100, 5, 50, &[0, 1]);
        assert_eq!(a, super::book(7, 100, 5, 50, &[0, 1]));
        assert_ne!(a, super::book(8, 100, 5, 50, &[0, 1]));
        assert_eq!(a.len(), 100);
    }
}
