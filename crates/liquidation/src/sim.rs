//! A seeded, replayable exchange run through a price path, step by step: variation margin,
//! margin on the full engine, breaches, liquidation plans, auctions and market sales, fees,
//! the insurance fund, auto-deleveraging and socialised loss. After every step an independent
//! [`crate::audit`] checks the books and fails the run on any violation.
//!
//! The exchange lists a USDC-settled perpetual and six options (80 %, 100 % and 120 % of the
//! first index, calls and puts, expiring [`OPTION_TENOR_DAYS`] after the first market) on one
//! underlying. Traders come in pairs holding opposite books, so that every contract's lots sum
//! to zero; each deposits a seeded multiple (the cushion) of its initial margin. A market maker
//! with deep cash is the counterparty of market sales and the backstop vault; liquidators with
//! seeded capital and required returns bid in auctions and unwind what they buy to the maker.
//!
//! Money is fixed point ([`crate::cash`]): perpetuals settle variation margin at each step's
//! mark in whole ticks, trades move `lots × ticks` between two accounts, fees and loss shares
//! round against the account that pays. Prices do not move inside a step: a step is the
//! interval in which the venue runs its rounds, and the profile's `round_secs` and the step
//! length bound how many rounds it runs.

use std::sync::Arc;

use basics::{Currency, Money, NANOS_PER_DAY, Rounding, UnixNanos};
use margin::health::{Health, Status};
use margin::{AccountBook, Engine, PricedMarket, ResolvedAccount};
use market::MarketSnapshot;
use product::{Instrument, InstrumentKind, OptionRight, Portfolio, Position, Settlement};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::audit::Auditor;
use crate::cash::{self, Cash, lots_of, size_of, ticks_of, value};
use crate::error::Error;
use crate::execute::{execute_plan, socialise, step_state, unwind_liquidators};
use crate::limits::{LIQUIDATORS_MAX, SIM_ACCOUNTS_MAX, SIM_STEPS_MAX};
use crate::plan::{Plan, plan};
use crate::profile::Profile;

/// Days from the first market to the options' expiry.
pub const OPTION_TENOR_DAYS: i64 = 120;
/// Strikes of the listed options as fractions of the first index.
const STRIKE_FRACTIONS: [f64; 3] = [0.8, 1.0, 1.2];

/// The exchange a simulation starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Seed of every draw.
    pub seed: u64,
    /// Traders (rounded up to an even number: they come in opposite pairs).
    pub traders: usize,
    /// Liquidators bidding in auctions.
    pub liquidators: usize,
    /// Notional each liquidator may take per step, USD.
    pub liquidator_capacity_usd: f64,
    /// The insurance fund at the start, USD.
    pub fund_usd: f64,
    /// The market maker's cash, USD.
    pub maker_cash_usd: f64,
    /// Smallest and largest deposit as a multiple of the initial margin.
    pub cushion: (f64, f64),
    /// The underlying.
    pub underlying: Currency,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            seed: 1,
            traders: 1_000,
            liquidators: 8,
            liquidator_capacity_usd: 5e6,
            fund_usd: 1e6,
            maker_cash_usd: 1e10,
            cushion: (1.02, 2.5),
            underlying: Currency::BTC,
        }
    }
}

/// Who an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A trader.
    Trader,
    /// A liquidator (its index among the liquidators).
    Liquidator(usize),
    /// The market maker and backstop vault.
    Maker,
}

/// One account of the simulated exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// Who it is.
    pub role: Role,
    /// Lots held per listed contract (index into the universe), non-zero only.
    pub lots: Vec<(usize, i64)>,
    /// Cash, USDC in 1e-18 units (negative: bad debt not yet covered).
    pub cash: Cash,
    /// Cash deposited at the start.
    pub deposit: Cash,
    /// Whether the account is in liquidation.
    pub in_liquidation: bool,
}

impl Account {
    pub(crate) fn lots_of(&self, instrument: usize) -> i64 {
        self.lots.iter().find(|(i, _)| *i == instrument).map_or(0, |(_, l)| *l)
    }

    pub(crate) fn add_lots(&mut self, instrument: usize, lots: i64) {
        match self.lots.iter().position(|(i, _)| *i == instrument) {
            Some(at) => {
                self.lots[at].1 += lots;
                if self.lots[at].1 == 0 {
                    self.lots.remove(at);
                }
            }
            None if lots != 0 => {
                self.lots.push((instrument, lots));
                self.lots.sort_by_key(|(i, _)| *i);
            }
            None => {}
        }
    }
}

/// What happened in a step, recorded for the auditor and the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A trade: `lots` (signed, the buyer's side as seen from `buyer`) of a contract between
    /// two accounts at `ticks`, with the cash it moved to the seller.
    Fill {
        /// Contract.
        instrument: usize,
        /// Receiving the lots.
        buyer: usize,
        /// Giving them.
        seller: usize,
        /// Lots moved (positive).
        lots: i64,
        /// Price in ticks.
        ticks: i64,
        /// Why: 'm' market sale, 'a' auction, 'b' backstop, 'd' deleveraging, 'u' unwind.
        kind: char,
        /// The account being liquidated, when the fill is a liquidation's.
        liquidated: Option<usize>,
        /// The worst price the liquidated account's order accepted (dYdX's fillable price).
        limit_ticks: Option<i64>,
        /// The mark, in ticks.
        mark_ticks: i64,
    },
    /// An auction's discount paid by the liquidated account to the winning liquidator.
    Auction {
        /// Liquidated account.
        account: usize,
        /// Winner.
        liquidator: usize,
        /// Seconds after the auction started when the bid came.
        secs: f64,
        /// The discount the schedule gives then.
        discount: f64,
        /// The share of equity sold, the discount's base.
        base: Cash,
        /// Payment (the discount on the base, rounded up).
        paid: Cash,
    },
    /// A cash transfer.
    Transfer {
        /// Paying account (`None`: the fund).
        from: Option<usize>,
        /// Receiving account (`None`: the fund).
        to: Option<usize>,
        /// Amount.
        amount: Cash,
        /// Why: "fund-fee", "liquidator-fee", "fund-payout", "adl", "socialised", "backstop".
        why: &'static str,
    },
}

/// One step's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepFigures {
    /// Valuation time.
    pub time: UnixNanos,
    /// Index of the underlying, USD.
    pub index_usd: f64,
    /// Insurance fund after the step, USD.
    pub fund_usd: f64,
    /// Accounts below MM at the step's market.
    pub breaches: usize,
    /// Accounts liquidated (a plan executed, a backstop or a bankruptcy).
    pub liquidations: usize,
    /// Of those, bankruptcies (equity below zero).
    pub bankruptcies: usize,
    /// Of those, backstops.
    pub backstops: usize,
    /// Counterparties deleveraged.
    pub adl_events: usize,
    /// Loss taken by deleveraged counterparties, USD.
    pub adl_usd: f64,
    /// Loss socialised over positive balances, USD.
    pub socialised_usd: f64,
    /// Loss left as bad debt, USD.
    pub unresolved_usd: f64,
    /// Paid by the fund, USD.
    pub fund_paid_usd: f64,
    /// What the liquidated accounts lost against the mark (depth cost, discounts, fees), USD.
    pub liquidation_cost_usd: f64,
    /// Traders' total equity, USD.
    pub trader_equity_usd: f64,
    /// Orders not filled because the depth was worse than their limit.
    pub unfilled: usize,
}

/// A liquidation's realised cost beside the friction add-on charged on its book.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrictionSample {
    /// What the account lost against the mark by being liquidated (depth cost, discount,
    /// fees), USD.
    pub realised_usd: f64,
    /// The friction add-on in its MM (weighted) on the book before the liquidation, USD.
    pub charged_usd: f64,
    /// The add-on before its MM weight, USD.
    pub unweighted_usd: f64,
}

/// A simulation's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Profile name.
    pub profile: String,
    /// Profile hash.
    pub profile_hash: [u8; 32],
    /// Per step.
    pub steps: Vec<StepFigures>,
    /// Every liquidation's realised cost against its friction add-on.
    pub friction: Vec<FrictionSample>,
    /// The fund's lowest point, USD.
    pub fund_min_usd: f64,
    /// Accounts in the exchange (traders, liquidators, maker).
    pub accounts: usize,
    /// Audits passed (one per step).
    pub audits: usize,
}

impl Report {
    /// Sum of a step figure.
    pub fn total(&self, f: impl Fn(&StepFigures) -> f64) -> f64 {
        self.steps.iter().map(f).sum()
    }

    /// Bad debt: what the fund could not pay (deleveraged, socialised, left), USD.
    #[must_use]
    pub fn bad_debt_usd(&self) -> f64 {
        self.total(|s| s.adl_usd + s.socialised_usd + s.unresolved_usd)
    }
}

/// The exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Listed contracts.
    pub universe: Vec<Instrument>,
    /// Every account: traders first, then liquidators, then the maker (last).
    pub accounts: Vec<Account>,
    /// The insurance fund.
    pub fund: Cash,
    /// Each perpetual's last settlement price in ticks (0 for options).
    pub settled: Vec<i64>,
    /// Liquidators' required markup over the depth cost of what they buy.
    pub markups: Vec<f64>,
    /// What the run must conserve: every cash balance plus the fund.
    pub total: Cash,
    /// Notional each liquidator may take per step, USD.
    pub capacity_usd: f64,
}

impl Exchange {
    /// The maker's index.
    #[must_use]
    pub fn maker(&self) -> usize {
        self.accounts.len() - 1
    }

    /// The liquidators' indices (they sit between the traders and the maker).
    #[must_use]
    pub fn liquidators(&self) -> std::ops::Range<usize> {
        self.maker() - self.markups.len()..self.maker()
    }

    /// Cash plus fund, the conserved total.
    #[must_use]
    pub fn money(&self) -> Cash {
        self.accounts.iter().map(|a| a.cash).sum::<Cash>() + self.fund
    }

    /// Account `a`'s positions as the engine takes them: perpetuals entered at their last
    /// settlement price, so their P&L counts from it.
    pub fn positions(&self, a: usize) -> impl Iterator<Item = Position> + '_ {
        self.accounts[a].lots.iter().map(|&(i, l)| {
            let mut p = Position::new(self.universe[i], size_of(l));
            if !self.universe[i].is_option() {
                p.entry = Some(self.settled[i] as f64 / cash::TICKS_PER_USD as f64);
            }
            p
        })
    }

    pub(crate) fn portfolio(&self, a: usize) -> Result<Portfolio, Error> {
        let balance = Money::from_raw(self.accounts[a].cash, Currency::USDC);
        Portfolio::new(self.positions(a).collect(), &[balance])
            .map_err(|e| Error::range(format!("accounts[{a}]"), e.to_string()))
    }

    fn resolve(
        &self,
        priced: &PricedMarket,
        a: usize,
        out: &mut ResolvedAccount,
    ) -> Result<(), Error> {
        let balances = [(Currency::USDC, cash::to_f64(self.accounts[a].cash))];
        priced
            .resolve_into(self.positions(a), balances, out)
            .map_err(|e| Error::margin(format!("accounts[{a}]"), e))
    }

    /// Every account's health on `priced`.
    ///
    /// # Errors
    /// An account the engine cannot value, named.
    pub fn health(&self, priced: &PricedMarket) -> Result<Vec<Health>, Error> {
        let mut book = AccountBook::default();
        let mut scratch = ResolvedAccount::default();
        for a in 0..self.accounts.len() {
            self.resolve(priced, a, &mut scratch)?;
            book.push(&scratch);
        }
        let refresh = priced.refresh(&book);
        (0..self.accounts.len())
            .map(|a| {
                let lines = refresh
                    .account(a)
                    .map_err(|e| Error::margin(format!("accounts[{a}]"), e.clone()))?;
                let figures: Vec<_> = lines.iter().map(|l| l.figures).collect();
                Health::of(&figures).map_err(|e| Error::margin(format!("accounts[{a}]"), e))
            })
            .collect()
    }
}

/// The listed universe on `market`.
fn universe(market: &MarketSnapshot, underlying: Currency) -> Result<Vec<Instrument>, Error> {
    let index =
        market.underlying(underlying).map_err(|e| Error::range("path[0]", e.to_string()))?.index();
    let expiry = UnixNanos(market.valuation().0 + OPTION_TENOR_DAYS * NANOS_PER_DAY);
    let make = |kind| {
        Instrument::new(underlying, Currency::USDC, Settlement::Linear, kind)
            .map_err(|e| Error::range("universe", e.to_string()))
    };
    let mut out = vec![make(InstrumentKind::Perpetual)?];
    let step = 10f64.powf((index / 20.0).log10().floor());
    for fraction in STRIKE_FRACTIONS {
        let strike = (index * fraction / step).round() * step;
        for right in [OptionRight::Call, OptionRight::Put] {
            out.push(make(InstrumentKind::Option { expiry, strike, right })?);
        }
    }
    Ok(out)
}

/// One trader's book, drawn: a perpetual position, or options with or without a hedge.
fn draw_book(rng: &mut ChaCha8Rng, options: usize) -> Vec<(usize, f64)> {
    let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
    let size = (0.1 + 4.9 * rng.random::<f64>()) * sign;
    let round = |x: f64| (x * 100.0).round() / 100.0;
    match rng.random_range(0..10) {
        0..5 => vec![(0, round(size))],
        5..8 => {
            let option = 1 + rng.random_range(0..options);
            vec![(option, round(-size.abs())), (0, round(size * 0.5))]
        }
        _ => {
            let a = 1 + rng.random_range(0..options);
            let b = 1 + rng.random_range(0..options);
            if a == b { vec![(a, round(size))] } else { vec![(a, round(size)), (b, round(-size))] }
        }
    }
}

/// `traders` (rounded up to pairs) holding opposite drawn books, without cash yet.
fn traders(rng: &mut ChaCha8Rng, traders: usize, options: usize) -> Result<Vec<Account>, Error> {
    let pairs = traders.div_ceil(2);
    let mut accounts = Vec::with_capacity(2 * pairs);
    for _ in 0..pairs {
        let book = draw_book(rng, options);
        for side in [1.0, -1.0] {
            let lots = book
                .iter()
                .map(|&(i, s)| lots_of(s * side, "book").map(|l| (i, l)))
                .collect::<Result<Vec<_>, Error>>()?;
            let mut lots: Vec<(usize, i64)> = lots.into_iter().filter(|(_, l)| *l != 0).collect();
            lots.sort_by_key(|(i, _)| *i);
            accounts.push(Account {
                role: Role::Trader,
                lots,
                cash: 0,
                deposit: 0,
                in_liquidation: false,
            });
        }
    }
    Ok(accounts)
}

/// Builds the exchange on the path's first market: traders in opposite pairs, each depositing a
/// seeded cushion over its initial margin, then the liquidators and the maker.
///
/// # Errors
/// A config out of range (named), or a market the engine cannot price.
pub fn exchange(
    engine: &Engine,
    first: &Arc<MarketSnapshot>,
    config: &Config,
) -> Result<Exchange, Error> {
    check_config(config)?;
    let universe = universe(first, config.underlying)?;
    let priced = engine.price(first, &universe).map_err(|e| Error::margin("path[0]", e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut accounts = traders(&mut rng, config.traders, universe.len() - 1)?;
    for j in 0..config.liquidators {
        let cash = cash::cash_of(
            config.liquidator_capacity_usd,
            Rounding::Down,
            "liquidator_capacity_usd",
        )?;
        accounts.push(Account {
            role: Role::Liquidator(j),
            lots: Vec::new(),
            cash,
            deposit: cash,
            in_liquidation: false,
        });
    }
    let maker = cash::cash_of(config.maker_cash_usd, Rounding::Down, "maker_cash_usd")?;
    accounts.push(Account {
        role: Role::Maker,
        lots: Vec::new(),
        cash: maker,
        deposit: maker,
        in_liquidation: false,
    });
    let settled = universe
        .iter()
        .map(|i| {
            if i.is_option() {
                Ok(0)
            } else {
                ticks_of(
                    priced.mark(i).map_err(|e| Error::margin("path[0]", e))?,
                    Rounding::Down,
                    "mark",
                )
            }
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let markups = (0..config.liquidators).map(|_| 0.2 + 1.8 * rng.random::<f64>()).collect();
    let fund = cash::cash_of(config.fund_usd, Rounding::Down, "fund_usd")?;
    let capacity_usd = config.liquidator_capacity_usd;
    let mut exchange =
        Exchange { universe, accounts, fund, settled, markups, total: 0, capacity_usd };
    deposit(&mut exchange, &priced, &mut rng, config)?;
    exchange.total = exchange.money();
    Ok(exchange)
}

/// Each trader deposits `cushion × IM − equity without cash`, so it starts above IM by a seeded
/// margin.
fn deposit(
    exchange: &mut Exchange,
    priced: &PricedMarket,
    rng: &mut ChaCha8Rng,
    config: &Config,
) -> Result<(), Error> {
    let traders: Vec<usize> = (0..exchange.accounts.len())
        .filter(|a| exchange.accounts[*a].role == Role::Trader)
        .collect();
    let mut book = AccountBook::default();
    let mut scratch = ResolvedAccount::default();
    for &a in &traders {
        exchange.resolve(priced, a, &mut scratch)?;
        book.push(&scratch);
    }
    let refresh = priced.refresh(&book);
    for (k, &a) in traders.iter().enumerate() {
        let lines =
            refresh.account(k).map_err(|e| Error::margin(format!("accounts[{a}]"), e.clone()))?;
        let (im, equity) = lines
            .iter()
            .fold((0.0, 0.0), |s, l| (s.0 + l.figures.initial_margin, s.1 + l.figures.equity));
        let cushion =
            config.cushion.0 + (config.cushion.1 - config.cushion.0) * rng.random::<f64>();
        // USDC counts at its collateral haircut; a little over the cushion covers it.
        let amount = (cushion * im - equity).max(0.0) * 1.01;
        let cash = cash::cash_of(amount, Rounding::Up, "deposit")?;
        exchange.accounts[a].cash = cash;
        exchange.accounts[a].deposit = cash;
    }
    Ok(())
}

fn check_config(config: &Config) -> Result<(), Error> {
    if config.traders == 0 || config.traders > SIM_ACCOUNTS_MAX {
        return Err(Error::limit("traders", "SIM_ACCOUNTS_MAX", SIM_ACCOUNTS_MAX));
    }
    if config.liquidators > LIQUIDATORS_MAX {
        return Err(Error::limit("liquidators", "LIQUIDATORS_MAX", LIQUIDATORS_MAX));
    }
    for (field, v) in [
        ("liquidator_capacity_usd", config.liquidator_capacity_usd),
        ("fund_usd", config.fund_usd),
        ("maker_cash_usd", config.maker_cash_usd),
    ] {
        if !v.is_finite() || !(0.0..=1e15).contains(&v) {
            return Err(Error::range(field, "a finite amount in [0, 1e15] USD"));
        }
    }
    let (lo, hi) = config.cushion;
    if !(lo.is_finite() && hi.is_finite() && 1.0 <= lo && lo <= hi && hi <= 100.0) {
        return Err(Error::range("cushion", "1 <= smallest <= largest <= 100"));
    }
    Ok(())
}

/// Runs `exchange` through `path` under `profile`, auditing every step.
///
/// # Errors
/// An empty or over-long path, a market the engine cannot price (named by its step), an
/// account it cannot value, and any audit violation (`OutOfRange` naming the step and the
/// rule broken).
pub fn simulate(
    engine: &Engine,
    path: &[Arc<MarketSnapshot>],
    profile: &Profile,
    config: &Config,
) -> Result<Report, Error> {
    let Some(first) = path.first() else { return Err(Error::range("path", "at least one market")) };
    if path.len() > SIM_STEPS_MAX {
        return Err(Error::limit("path", "SIM_STEPS_MAX", SIM_STEPS_MAX));
    }
    // Variation margin settles into balances, which a falling market drives below zero before
    // the account is liquidated: the run margins them as debt (equity counts the negative
    // balance) whatever the methodology's own rule for a venue's accepted balances.
    let mut methodology = engine.methodology().clone();
    methodology.requirement.allow_debt = true;
    let engine = &Engine::new(methodology).map_err(|e| Error::margin("methodology", e))?;
    let mut exchange = exchange(engine, first, config)?;
    let mut report = Report {
        profile: profile.name.clone(),
        profile_hash: profile.hash(),
        steps: Vec::with_capacity(path.len()),
        friction: Vec::new(),
        fund_min_usd: cash::to_f64(exchange.fund),
        accounts: exchange.accounts.len(),
        audits: 0,
    };
    let auditor = Auditor::new(profile);
    for (t, market) in path.iter().enumerate() {
        let field = format!("path[{t}]");
        let priced =
            engine.price(market, &exchange.universe).map_err(|e| Error::margin(&field, e))?;
        let mut events = Vec::new();
        let figures = step(
            &mut exchange,
            &priced,
            profile,
            config.seed ^ t as u64,
            &mut events,
            &mut report.friction,
        )?;
        auditor
            .check(&exchange, &priced, &events)
            .map_err(|v| Error::range(&field, format!("audit: {v}")))?;
        report.audits += 1;
        report.fund_min_usd = report.fund_min_usd.min(figures.fund_usd);
        report.steps.push(figures);
    }
    Ok(report)
}

/// Settles variation margin at this market's marks.
fn settle(exchange: &mut Exchange, priced: &PricedMarket) -> Result<(), Error> {
    for i in 0..exchange.universe.len() {
        if exchange.universe[i].is_option() {
            continue;
        }
        let mark = priced.mark(&exchange.universe[i]).map_err(|e| Error::margin("universe", e))?;
        let ticks = ticks_of(mark, Rounding::Down, "mark")?;
        let moved = ticks - exchange.settled[i];
        for account in &mut exchange.accounts {
            let lots = account.lots_of(i);
            if lots != 0 {
                account.cash += value(lots, moved);
            }
        }
        exchange.settled[i] = ticks;
    }
    Ok(())
}

/// One step: settle, find the breaches, plan them in parallel, execute in account order, then
/// let liquidators unwind and flag every account still below MM.
fn step(
    exchange: &mut Exchange,
    priced: &PricedMarket,
    profile: &Profile,
    seed: u64,
    events: &mut Vec<Event>,
    friction: &mut Vec<FrictionSample>,
) -> Result<StepFigures, Error> {
    settle(exchange, priced)?;
    let health = exchange.health(priced)?;
    let breached: Vec<usize> =
        (0..health.len()).filter(|a| health[*a].status == Status::MmBreach).collect();
    for (a, h) in health.iter().enumerate() {
        exchange.accounts[a].in_liquidation = h.status == Status::MmBreach;
    }
    let portfolios =
        breached.iter().map(|&a| exchange.portfolio(a)).collect::<Result<Vec<_>, Error>>()?;
    let plans: Vec<Result<(Plan, FrictionSample), Error>> = portfolios
        .par_iter()
        .map(|p| {
            let plan = plan(priced, p, profile)?;
            let charged = friction_charged(priced, p)?;
            Ok((plan, charged))
        })
        .collect();
    let mut figures = StepFigures {
        time: priced.market().valuation(),
        index_usd: priced
            .market()
            .underlying(exchange.universe[0].underlying())
            .map_or(f64::NAN, market::UnderlyingMarket::index),
        fund_usd: 0.0,
        breaches: breached.len(),
        liquidations: 0,
        bankruptcies: 0,
        backstops: 0,
        adl_events: 0,
        adl_usd: 0.0,
        socialised_usd: 0.0,
        unresolved_usd: 0.0,
        fund_paid_usd: 0.0,
        liquidation_cost_usd: 0.0,
        trader_equity_usd: 0.0,
        unfilled: 0,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut state = step_state(exchange, priced, profile, &mut rng)?;
    for (&a, planned) in breached.iter().zip(plans) {
        let (plan, sample) = planned?;
        let cost =
            execute_plan(exchange, priced, profile, a, &plan, &mut state, events, &mut figures)?;
        if let Some(realised) = cost {
            figures.liquidation_cost_usd += realised;
            friction.push(FrictionSample { realised_usd: realised, ..sample });
        }
    }
    socialise(exchange, &mut state, events, &mut figures);
    unwind_liquidators(exchange, priced, events)?;
    let after = exchange.health(priced)?;
    for (a, h) in after.iter().enumerate() {
        let account = &mut exchange.accounts[a];
        account.in_liquidation = h.status == Status::MmBreach;
    }
    figures.fund_usd = cash::to_f64(exchange.fund);
    figures.trader_equity_usd = trader_equity(exchange, priced)?;
    Ok(figures)
}

/// The friction add-on (weighted into MM, and unweighted) on `portfolio`'s book, USD.
fn friction_charged(priced: &PricedMarket, portfolio: &Portfolio) -> Result<FrictionSample, Error> {
    let resolved = priced
        .resolve(&priced.entered(portfolio).map_err(|e| Error::margin("portfolio", e))?)
        .map_err(|e| Error::margin("portfolio", e))?;
    let (_, detail) = priced.account(&resolved).map_err(|e| Error::margin("portfolio", e))?;
    let add_ons = priced.methodology().add_ons_for(
        priced.arrays().instruments().first().map_or(Currency::BTC, Instrument::underlying),
    );
    let (mut charged, mut unweighted) = (0.0, 0.0);
    for line in &detail.add_ons {
        let Some(add_on) = add_ons.get(line.index) else { continue };
        if matches!(add_on.kind, methodology::AddOnKind::LiquidationFriction { .. }) {
            let usd = priced.market().usd_price(line.currency).unwrap_or(1.0);
            charged += line.value * add_on.mm_weight * usd;
            unweighted += line.value * usd;
        }
    }
    Ok(FrictionSample { realised_usd: 0.0, charged_usd: charged, unweighted_usd: unweighted })
}

fn trader_equity(exchange: &Exchange, priced: &PricedMarket) -> Result<f64, Error> {
    let mut total = 0.0;
    for (a, account) in exchange.accounts.iter().enumerate() {
        if account.role != Role::Trader {
            continue;
        }
        total += cash::to_f64(account.cash);
        for &(i, l) in &account.lots {
            if exchange.universe[i].is_option() {
                let mark = priced
                    .mark(&exchange.universe[i])
                    .map_err(|e| Error::margin(format!("accounts[{a}]"), e))?;
                total += size_of(l) * mark;
            }
        }
    }
    Ok(total)
}

/// Runs under several profiles on one path and one exchange, side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct SideBySide {
    /// One report per profile, in the order given.
    pub reports: Vec<Report>,
    /// The first profile's rules with Derive's pro-rata slice instead of its selection, when
    /// that selection is [`crate::Selection::Smallest`]: how much bad debt the smallest step
    /// avoids.
    pub pro_rata: Option<Report>,
}

/// [`simulate`] under each of `profiles`.
///
/// # Errors
/// As [`simulate`], naming the profile.
pub fn side_by_side(
    engine: &Engine,
    path: &[Arc<MarketSnapshot>],
    profiles: &[Profile],
    config: &Config,
) -> Result<SideBySide, Error> {
    let run = |p: &Profile| {
        simulate(engine, path, p, config)
            .map_err(|e| Error { field: format!("{}: {}", p.name, e.field), ..e })
    };
    let reports = profiles.iter().map(run).collect::<Result<Vec<_>, Error>>()?;
    let pro_rata = match profiles.first() {
        Some(p) if p.selection == crate::Selection::Smallest => {
            let mut slice = p.with_selection(crate::Selection::ProRata);
            slice.name = format!("{}/pro-rata", p.name);
            Some(run(&slice)?)
        }
        _ => None,
    };
    Ok(SideBySide { reports, pro_rata })
}
