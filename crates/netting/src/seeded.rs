//! Seeded books of cross-venue hedges, for the tests, the benchmark and the documentation's
//! table of capital released: three venues (an options protocol, a perpetuals exchange, a
//! lending protocol holding coins) and three strategies spread over them.

use basics::{Currency, Money, Rounding};
use margin::Engine;
use product::{Instrument, Portfolio, Position};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::book::{AccountInput, Leg};
use crate::venue::{Feed, Listing, Venue, VenueId, VenueKind};
use crate::{Error, ErrorKind};

/// A cross-venue hedge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Long BTC calls on the options protocol, their delta sold as perpetuals on the exchange.
    PerpVsOptions,
    /// Coins held on the lending protocol, sold forward as a dated future on the exchange.
    Basis,
    /// Calls sold on the options protocol, covered by coins held on the lending protocol and
    /// pledged to it.
    CoveredCall,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 3] =
        [Strategy::PerpVsOptions, Strategy::Basis, Strategy::CoveredCall];

    /// Its name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Strategy::PerpVsOptions => "perpetual against options",
            Strategy::Basis => "basis trade",
            Strategy::CoveredCall => "covered call, coin on another venue",
        }
    }
}

/// The three venues of the seeded books, all live at `as_of_secs`: `options` (a protocol on
/// chain 957, the controller), `perps` (an exchange listing perpetuals and futures) and
/// `lending` (a protocol on chain 1 holding coins only).
///
/// # Errors
/// Never for the fixed ids.
pub fn venues(
    options: Engine,
    perps: Engine,
    lending: Engine,
    as_of_secs: u64,
) -> Result<Vec<Venue>, Error> {
    let feed = Feed { as_of_secs, halted_at_secs: None };
    let venue = |id: &str, kind, listing, engine, liquidation: &str| -> Result<Venue, Error> {
        Ok(Venue {
            id: VenueId::new(id, "venues.id")?,
            kind,
            listing,
            engine,
            liquidation: liquidation.into(),
            floor: true,
            feed,
        })
    };
    let only_options = Listing { options: true, futures: false, perpetuals: false };
    let delta_one = Listing { options: false, futures: true, perpetuals: true };
    Ok(vec![
        venue("options", VenueKind::Protocol { chain_id: 957 }, only_options, options, "derive")?,
        venue("perps", VenueKind::Exchange, delta_one, perps, "hyperliquid")?,
        venue(
            "lending",
            VenueKind::Protocol { chain_id: 1 },
            Listing::default(),
            lending,
            "aave-v3",
        )?,
    ])
}

/// `count` accounts of `strategy`, drawn from `seed`, priced against an index near `index`
/// (BTC, in USD): sizes vary, strikes are near the money on the 25 Dec 2026 expiry.
///
/// # Errors
/// Never for the fixed instruments; a portfolio's own checks otherwise.
pub fn accounts(
    strategy: Strategy,
    count: usize,
    index: f64,
    seed: u64,
) -> Result<Vec<AccountInput>, Error> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let id = format!("{}-{i}", short(strategy));
        let (legs, liens) = match strategy {
            Strategy::PerpVsOptions => perp_vs_options(&mut rng, index)?,
            Strategy::Basis => basis(&mut rng, index)?,
            Strategy::CoveredCall => covered_call(&mut rng, index)?,
        };
        out.push(AccountInput { id, legs, liens });
    }
    Ok(out)
}

type Legs = (Vec<Leg>, Vec<(VenueId, VenueId, Money)>);

fn short(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::PerpVsOptions => "pvo",
        Strategy::Basis => "basis",
        Strategy::CoveredCall => "cc",
    }
}

fn instrument(name: &str) -> Result<Instrument, Error> {
    Instrument::parse(name).map_err(|e| Error::range("instrument", e.to_string()))
}

fn usdc(amount: f64) -> Result<Money, Error> {
    Money::from_f64(amount.round(), Currency::USDC, Rounding::Down)
        .map_err(|e| Error::range("balance", e.to_string()))
}

fn btc(amount: f64) -> Result<Money, Error> {
    Money::from_f64(amount, Currency::BTC, Rounding::Down)
        .map_err(|e| Error::range("balance", e.to_string()))
}

fn leg(
    venue: &str,
    positions: Vec<Position>,
    balances: &[Money],
    controller: bool,
) -> Result<Leg, Error> {
    let portfolio = Portfolio::new(positions, balances)
        .map_err(|e| Error::new("portfolio", ErrorKind::OutOfRange(e.to_string())))?;
    Ok(Leg { venue: VenueId::new(venue, "venue")?, portfolio, controller })
}

fn strike(rng: &mut ChaCha8Rng, strikes: &[u32]) -> u32 {
    strikes[rng.random_range(0..strikes.len())]
}

fn perp_vs_options(rng: &mut ChaCha8Rng, index: f64) -> Result<Legs, Error> {
    let calls = f64::from(rng.random_range(5_u32..=50));
    let k = strike(rng, &[90_000, 95_000, 100_000, 105_000]);
    let delta = 0.35 + 0.3 * rng.random::<f64>();
    let options = vec![Position::new(instrument(&format!("BTC-25DEC26-{k}-C"))?, calls)];
    let perp = vec![Position::new(
        instrument("BTC-PERPETUAL")?,
        -(calls * delta * index / 10.0).round() * 10.0,
    )];
    Ok((
        vec![
            leg("options", options, &[usdc(calls * index * 0.08)?], true)?,
            leg("perps", perp, &[usdc(calls * index * 0.06)?], false)?,
        ],
        Vec::new(),
    ))
}

fn basis(rng: &mut ChaCha8Rng, index: f64) -> Result<Legs, Error> {
    let coins = f64::from(rng.random_range(1_u32..=20));
    let future =
        vec![Position::new(instrument("BTC-25DEC26")?, -(coins * index / 10.0).round() * 10.0)];
    let pledged = (coins * 0.5 * 1e8).round() / 1e8;
    Ok((
        vec![
            leg("lending", Vec::new(), &[btc(coins)?], false)?,
            leg("perps", future, &[usdc(coins * index * 0.02)?], true)?,
        ],
        vec![(VenueId::new("lending", "from")?, VenueId::new("perps", "to")?, btc(pledged)?)],
    ))
}

fn covered_call(rng: &mut ChaCha8Rng, index: f64) -> Result<Legs, Error> {
    let coins = f64::from(rng.random_range(1_u32..=20));
    let k = strike(rng, &[105_000, 110_000, 115_000, 120_000]);
    let calls = vec![Position::new(instrument(&format!("BTC-25DEC26-{k}-C"))?, -coins)];
    Ok((
        vec![
            leg("lending", Vec::new(), &[btc(coins)?], false)?,
            leg("options", calls, &[usdc(coins * index * 0.02)?], true)?,
        ],
        vec![(VenueId::new("lending", "from")?, VenueId::new("options", "to")?, btc(coins)?)],
    ))
}
