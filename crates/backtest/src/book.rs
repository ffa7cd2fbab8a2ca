//! The books a backtest holds: accounts of legs defined relative to the spot, re-struck as
//! they approach expiry.
//!
//! A leg is an option at a moneyness and tenor, a future at a tenor, a perpetual, a delta hedge
//! or coins held: a definition, not a listed contract. On each replayed day a leg without a
//! contract, or whose contract would expire within the backtest's longest horizon, is struck
//! afresh at that day's spot: strike `moneyness × spot` on a grid of about 1 % of the spot,
//! expiry at 08:00 UTC `tenor` days later (Deribit's convention). So no position ever expires
//! inside a margin period of risk, and a strategy's character (a 30-day 10 %-out-of-the-money
//! strangle) stays the same over seven years of prices that rose a hundredfold. Dated futures
//! keep the USD size they were struck at; perpetuals are resized every day to their coin
//! amount; a delta hedge is a perpetual sized every day against the delta of the rest of the
//! account.
//!
//! [`Book::strategies`] gives the typical strategies ([`Strategy`]), [`Book::random`] seeded
//! random books, and [`relative_account`] turns a portfolio of listed contracts into legs by
//! reading its strikes and expiries against a reference market.

use basics::{Currency, NANOS_PER_DAY, UnixNanos};
use market::MarketSnapshot;
use product::{Instrument, InstrumentKind, OptionRight, Portfolio, Settlement};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, ErrorKind, Location};
use crate::limits::{ACCOUNTS_MAX, LEGS_MAX, MONEYNESS_MAX};

/// Hours after midnight UTC at which a struck contract expires (Deribit's 08:00).
const EXPIRY_HOUR_NANOS: i64 = 8 * 3_600 * 1_000_000_000;

/// What a leg holds, relative to the spot of the day it is struck.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Contract {
    /// A European option struck at `moneyness × spot`, expiring `tenor_days` later.
    Option {
        /// Call or put.
        right: OptionRight,
        /// Strike over spot when struck.
        moneyness: f64,
        /// Days from striking to expiry.
        tenor_days: u32,
    },
    /// A dated future expiring `tenor_days` after it is struck.
    Future {
        /// Days from striking to expiry.
        tenor_days: u32,
    },
    /// A perpetual of a fixed coin amount, resized daily.
    Perpetual,
    /// A perpetual sized each day so that the account's delta is zero (the leg's size is
    /// ignored).
    DeltaHedge,
    /// Coins of the underlying held as a balance.
    Spot,
}

impl Contract {
    /// The tenor of a dated contract.
    #[must_use]
    pub fn tenor_days(self) -> Option<u32> {
        match self {
            Contract::Option { tenor_days, .. } | Contract::Future { tenor_days } => {
                Some(tenor_days)
            }
            Contract::Perpetual | Contract::DeltaHedge | Contract::Spot => None,
        }
    }
}

/// One leg: a contract on an underlying and its size in coins (negative: short).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Leg {
    /// The underlying.
    pub underlying: Currency,
    /// Coin-settled (Deribit's `BTC-…`) or settled in USDC (`BTC_USDC-…`).
    pub settlement: Settlement,
    /// What is held.
    pub contract: Contract,
    /// Coins of exposure: an option's or linear contract's size, an inverse contract's USD size
    /// over the spot.
    pub size: f64,
}

/// An account: legs and constant cash balances (stable coins, USD).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountSpec {
    /// A name for reports.
    pub name: String,
    /// The legs.
    pub legs: Vec<Leg>,
    /// Balances that do not move with any underlying, by currency.
    pub cash: Vec<(Currency, f64)>,
}

/// The typical strategies a clearing house backtests, each one coin of exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    /// Short a 30-day 90 % put and a 30-day 110 % call.
    ShortStrangle,
    /// One coin held and a 30-day 110 % call sold against it.
    CoveredCall,
    /// Short a 30-day at-the-money call and put, delta-hedged daily with the perpetual.
    DeltaHedgedStraddle,
    /// Short a 30-day at-the-money call, long a 90-day one.
    CalendarSpread,
    /// One coin held and a 90-day future sold against it.
    BasisTrade,
    /// Short a 30-day 90 % put.
    NakedShortPut,
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 6] = [
        Strategy::ShortStrangle,
        Strategy::CoveredCall,
        Strategy::DeltaHedgedStraddle,
        Strategy::CalendarSpread,
        Strategy::BasisTrade,
        Strategy::NakedShortPut,
    ];

    /// The strategy's name on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Strategy::ShortStrangle => "short-strangle",
            Strategy::CoveredCall => "covered-call",
            Strategy::DeltaHedgedStraddle => "delta-hedged-straddle",
            Strategy::CalendarSpread => "calendar-spread",
            Strategy::BasisTrade => "basis-trade",
            Strategy::NakedShortPut => "naked-short-put",
        }
    }

    /// The strategy named `name`.
    ///
    /// # Errors
    /// `UnknownName` listing the known names.
    pub fn parse(name: &str) -> Result<Strategy, Error> {
        Strategy::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            let known: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
            Error::new("strategy", None, ErrorKind::UnknownName(known.join(", ")))
        })
    }

    /// The strategy's legs on `underlying`, coin-settled.
    #[must_use]
    pub fn legs(self, underlying: Currency) -> Vec<Leg> {
        let leg =
            |contract, size| Leg { underlying, settlement: Settlement::Inverse, contract, size };
        let option =
            |right, moneyness, tenor_days| Contract::Option { right, moneyness, tenor_days };
        let (call, put) = (OptionRight::Call, OptionRight::Put);
        match self {
            Strategy::ShortStrangle => {
                vec![leg(option(put, 0.9, 30), -1.0), leg(option(call, 1.1, 30), -1.0)]
            }
            Strategy::CoveredCall => {
                vec![leg(Contract::Spot, 1.0), leg(option(call, 1.1, 30), -1.0)]
            }
            Strategy::DeltaHedgedStraddle => vec![
                leg(option(call, 1.0, 30), -1.0),
                leg(option(put, 1.0, 30), -1.0),
                leg(Contract::DeltaHedge, 0.0),
            ],
            Strategy::CalendarSpread => {
                vec![leg(option(call, 1.0, 30), -1.0), leg(option(call, 1.0, 90), 1.0)]
            }
            Strategy::BasisTrade => {
                vec![leg(Contract::Spot, 1.0), leg(Contract::Future { tenor_days: 90 }, -1.0)]
            }
            Strategy::NakedShortPut => vec![leg(option(put, 0.9, 30), -1.0)],
        }
    }
}

/// Validated accounts.
#[derive(Debug, Clone, PartialEq)]
pub struct Book {
    accounts: Vec<AccountSpec>,
}

impl Book {
    /// Validates `accounts`.
    ///
    /// # Errors
    /// No accounts or more than [`ACCOUNTS_MAX`]; an account with no legs and no cash, or more
    /// than [`LEGS_MAX`] legs; a size or cash amount that is not finite; a moneyness outside
    /// `(0, MONEYNESS_MAX]`; a tenor of zero days. Each names the account by its index.
    pub fn new(accounts: Vec<AccountSpec>) -> Result<Book, Error> {
        if accounts.is_empty() {
            return Err(Error::range("accounts", "at least one account"));
        }
        if accounts.len() > ACCOUNTS_MAX {
            return Err(Error::limit("accounts", "ACCOUNTS_MAX", ACCOUNTS_MAX));
        }
        for (index, account) in accounts.iter().enumerate() {
            check_account(account).map_err(|e| Error { at: Some(Location::Index(index)), ..e })?;
        }
        Ok(Book { accounts })
    }

    /// One account per strategy and underlying, named `strategy/UNDERLYING`.
    ///
    /// # Errors
    /// As [`Book::new`] (no strategies or no underlyings).
    pub fn strategies(strategies: &[Strategy], underlyings: &[Currency]) -> Result<Book, Error> {
        let accounts = underlyings
            .iter()
            .flat_map(|u| strategies.iter().map(move |s| (*s, *u)))
            .map(|(s, u)| AccountSpec {
                name: format!("{}/{u}", s.name()),
                legs: s.legs(u),
                cash: Vec::new(),
            })
            .collect();
        Book::new(accounts)
    }

    /// `accounts` random accounts from `seed`: one to four legs each on one of `underlyings`,
    /// options (calls or puts at 80–125 % moneyness, 14, 30 or 90 days) three times in five,
    /// futures (30 or 90 days), perpetuals or coins otherwise, sizes of 0.1 to 5 coins long or
    /// short (coins held long only), and a USDC balance of 0 to 50,000.
    ///
    /// # Errors
    /// As [`Book::new`] (no accounts, no underlyings, too many).
    pub fn random(seed: u64, accounts: usize, underlyings: &[Currency]) -> Result<Book, Error> {
        if underlyings.is_empty() {
            return Err(Error::range("underlyings", "at least one underlying"));
        }
        if accounts > ACCOUNTS_MAX {
            return Err(Error::limit("accounts", "ACCOUNTS_MAX", ACCOUNTS_MAX));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let specs = (0..accounts).map(|a| random_account(&mut rng, a, underlyings)).collect();
        Book::new(specs)
    }

    /// The accounts.
    #[must_use]
    pub fn accounts(&self) -> &[AccountSpec] {
        &self.accounts
    }

    /// The shortest tenor of any dated leg, in days.
    #[must_use]
    pub fn shortest_tenor_days(&self) -> Option<u32> {
        self.tenors().min()
    }

    /// The longest tenor of any dated leg, in days.
    #[must_use]
    pub fn longest_tenor_days(&self) -> Option<u32> {
        self.tenors().max()
    }

    fn tenors(&self) -> impl Iterator<Item = u32> + '_ {
        self.accounts.iter().flat_map(|a| a.legs.iter()).filter_map(|l| l.contract.tenor_days())
    }
}

fn check_account(account: &AccountSpec) -> Result<(), Error> {
    if account.legs.is_empty() && account.cash.is_empty() {
        return Err(Error::range("legs", "an account holds a leg or cash"));
    }
    if account.legs.len() > LEGS_MAX {
        return Err(Error::limit("legs", "LEGS_MAX", LEGS_MAX));
    }
    for leg in &account.legs {
        if !leg.size.is_finite() {
            return Err(Error::new("size", None, ErrorKind::NotFinite));
        }
        match leg.contract {
            Contract::Option { moneyness, tenor_days, .. } => {
                if !(moneyness > 0.0 && moneyness <= MONEYNESS_MAX) {
                    let rule = format!("{moneyness} is not in (0, {MONEYNESS_MAX}]");
                    return Err(Error::range("moneyness", rule));
                }
                check_tenor(tenor_days)?;
            }
            Contract::Future { tenor_days } => check_tenor(tenor_days)?,
            Contract::Perpetual | Contract::DeltaHedge | Contract::Spot => {}
        }
    }
    if account.cash.iter().any(|(_, amount)| !amount.is_finite()) {
        return Err(Error::new("cash", None, ErrorKind::NotFinite));
    }
    Ok(())
}

fn check_tenor(tenor_days: u32) -> Result<(), Error> {
    if tenor_days == 0 {
        return Err(Error::range("tenor_days", "at least one day"));
    }
    Ok(())
}

fn random_account(rng: &mut ChaCha8Rng, index: usize, underlyings: &[Currency]) -> AccountSpec {
    const MONEYNESS: [f64; 7] = [0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25];
    const OPTION_TENORS: [u32; 3] = [14, 30, 90];
    const FUTURE_TENORS: [u32; 2] = [30, 90];
    let underlying = underlyings[rng.random_range(0..underlyings.len())];
    let legs = (0..rng.random_range(1..=4_usize))
        .map(|_| {
            let size = f64::from(rng.random_range(1..=50_u32)) / 10.0;
            let size = if rng.random_bool(0.5) { size } else { -size };
            let contract = match rng.random_range(0..5_u32) {
                0..=2 => Contract::Option {
                    right: if rng.random_bool(0.5) { OptionRight::Call } else { OptionRight::Put },
                    moneyness: MONEYNESS[rng.random_range(0..MONEYNESS.len())],
                    tenor_days: OPTION_TENORS[rng.random_range(0..OPTION_TENORS.len())],
                },
                3 => Contract::Future {
                    tenor_days: FUTURE_TENORS[rng.random_range(0..FUTURE_TENORS.len())],
                },
                _ if rng.random_bool(0.5) => Contract::Perpetual,
                _ => Contract::Spot,
            };
            // Coins are held, never owed: a short balance is debt most methodologies refuse.
            let size = if contract == Contract::Spot { size.abs() } else { size };
            Leg { underlying, settlement: Settlement::Inverse, contract, size }
        })
        .collect();
    let cash = f64::from(rng.random_range(0..=50_u32)) * 1_000.0;
    AccountSpec { name: format!("random-{index}"), legs, cash: vec![(Currency::USDC, cash)] }
}

/// `portfolio` as spot-relative legs read against `market`: each option's strike over its
/// underlying's index is its moneyness and its time to expiry (in whole days, at least one) its
/// tenor, each future's tenor likewise, inverse futures' and perpetuals' USD sizes over the index
/// their coins; balances of an underlying of `market` become coins held, other balances cash.
///
/// # Errors
/// `Market` naming an underlying `market` does not have; `OutOfRange` for a contract already
/// expired on `market` or a moneyness beyond [`MONEYNESS_MAX`].
pub fn relative_account(
    name: &str,
    portfolio: &Portfolio,
    market: &MarketSnapshot,
) -> Result<AccountSpec, Error> {
    let mut legs = Vec::with_capacity(portfolio.positions().len());
    for position in portfolio.positions() {
        let instrument = &position.instrument;
        let index = market
            .underlying(instrument.underlying())
            .map_err(|e| Error::new("portfolio", None, ErrorKind::Market(e.to_string())))?
            .index();
        let tenor = || tenor_days(market.valuation(), instrument);
        let coins = match instrument.settlement() {
            Settlement::Inverse if !instrument.is_option() => position.size / index,
            _ => position.size,
        };
        let contract = match instrument.kind() {
            InstrumentKind::Option { strike, right, .. } => {
                Contract::Option { right, moneyness: strike / index, tenor_days: tenor()? }
            }
            InstrumentKind::Future { .. } => Contract::Future { tenor_days: tenor()? },
            InstrumentKind::Perpetual => Contract::Perpetual,
        };
        let (underlying, settlement) = (instrument.underlying(), instrument.settlement());
        legs.push(Leg { underlying, settlement, contract, size: coins });
    }
    let mut cash = Vec::new();
    for (currency, amount) in portfolio.balances() {
        if market.underlyings().contains_key(currency) {
            let spot = Contract::Spot;
            legs.push(Leg {
                underlying: *currency,
                settlement: Settlement::Inverse,
                contract: spot,
                size: amount.to_f64(),
            });
        } else {
            cash.push((*currency, amount.to_f64()));
        }
    }
    let account = AccountSpec { name: name.to_owned(), legs, cash };
    check_account(&account)?;
    Ok(account)
}

fn tenor_days(valuation: UnixNanos, instrument: &Instrument) -> Result<u32, Error> {
    let expiry = instrument.expiry().map_or(valuation.0, |e| e.0);
    if expiry <= valuation.0 {
        return Err(Error::range("portfolio", format!("{instrument} has expired")));
    }
    let days = ((expiry - valuation.0) as f64 / NANOS_PER_DAY as f64).round().max(1.0);
    u32::try_from(days as i64).map_err(|_| Error::range("portfolio", "a tenor beyond u32 days"))
}

/// The expiry of a contract struck at `valuation` with `tenor_days`: 08:00 UTC of the day
/// `tenor_days` after the valuation's day.
#[must_use]
pub fn expiry_after(valuation: UnixNanos, tenor_days: u32) -> UnixNanos {
    let midnight = valuation.0.div_euclid(NANOS_PER_DAY) * NANOS_PER_DAY;
    UnixNanos(midnight + i64::from(tenor_days) * NANOS_PER_DAY + EXPIRY_HOUR_NANOS)
}

/// `price` on a grid of about 1 % of `spot` (a power of ten: 100 at a spot of 10,000, 0.01 at
/// 1.5), rounded to the nearest point and written as the shortest decimal, so that strikes print
/// as a venue would list them.
#[must_use]
pub fn round_strike(price: f64, spot: f64) -> f64 {
    let exponent = (spot / 100.0).log10().floor() as i32;
    if exponent >= 0 {
        let step = 10_f64.powi(exponent);
        ((price / step).round() * step).max(step)
    } else {
        let scale = 10_f64.powi(-exponent);
        ((price * scale).round() / scale).max(1.0 / scale)
    }
}
