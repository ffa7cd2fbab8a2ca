//! The backtest: a book held through replayed markets, margined every day, and its realised
//! losses over the margin period of risk set against the margin called the day before.
//!
//! On every replayed day the loop
//!
//! 1. strikes the legs that need it ([`crate::book`]) and prices the day's market once, through
//!    the engine's facade ([`Engine::price_valuable`]), for every contract held today and on
//!    each earlier day a horizon looks back to;
//! 2. refreshes every account on it ([`margin::PricedMarket::refresh`]): initial and maintenance
//!    margin and equity, in USD at the day's prices;
//! 3. for each horizon `h` revalues the accounts as they stood `h` days earlier on today's
//!    market (full revaluation by the same engine), so the realised loss of day `t` over `h`
//!    days is `equity_t − equity_(t+h)` of the day-`t` holdings, and sets it against day `t`'s
//!    requirements.
//!
//! The statistics ([`crate::coverage`]) are those of every account and of the book (the sum of
//! the accounts' requirements against the sum of their losses, on the days every account was
//! valued). Every observation that cannot be formed is counted and named in the report's
//! [`Skip`]s: a day without a market (with the replay's reason), a day the methodology could not
//! price, an account the engine refused (its error), the last days whose horizon runs past the
//! window. A methodology that values no observation at all is an [`ErrorKind::Unvalued`] error.

mod tally;
mod verdict;

pub use tally::{CoverageReport, WindowSummary};
pub use verdict::{Failure, VERDICT_HORIZON_DAYS, Verdict, least_margin, verdict, verdicts};

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use basics::{NANOS_PER_DAY, UnixNanos};
use margin::{AccountBook, Engine, PricedMarket, Refresh};
use methodology::Methodology;
use rayon::prelude::*;

use crate::book::Book;
use crate::confidence::Confidence;
use crate::error::{Error, ErrorKind};
use crate::holdings::{DayBook, Holdings, Interner};
use crate::limits::{HORIZON_DAYS_MAX, SERIES_ACCOUNTS_MAX, SKIPS_LISTED_MAX};
use crate::procyclicality::Procyclicality;
use crate::replay::Replay;
use tally::Tally;

/// What a backtest measures; no default, every caller names its horizons and level.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    horizons_days: Vec<u32>,
    confidence: Confidence,
}

impl Config {
    /// Horizons (sorted and deduplicated here) and the coverage level.
    ///
    /// # Errors
    /// No horizon, or one of 0 or more than [`HORIZON_DAYS_MAX`] days.
    pub fn new(mut horizons_days: Vec<u32>, confidence: Confidence) -> Result<Config, Error> {
        horizons_days.sort_unstable();
        horizons_days.dedup();
        let bad = |h: &u32| *h == 0 || *h as usize > HORIZON_DAYS_MAX;
        if horizons_days.is_empty() || horizons_days.iter().any(bad) {
            let rule = format!("one or more horizons in [1, {HORIZON_DAYS_MAX}] days");
            return Err(Error::range("horizon_days", rule));
        }
        Ok(Config { horizons_days, confidence })
    }

    /// The horizons, ascending.
    #[must_use]
    pub fn horizons_days(&self) -> &[u32] {
        &self.horizons_days
    }

    /// The coverage level.
    #[must_use]
    pub fn confidence(&self) -> Confidence {
        self.confidence
    }
}

/// The horizons the issue asks for: 1 and 2 days, the methodology's own margin period of risk
/// (rounded up to whole days, at least one) and any `extra`.
#[must_use]
pub fn standard_horizons(methodology: &Methodology, extra: &[u32]) -> Vec<u32> {
    let own = methodology.valuation.horizon_days.ceil().max(1.0);
    let own = if own.is_finite() && own <= HORIZON_DAYS_MAX as f64 { own as u32 } else { 1 };
    let mut out: Vec<u32> = [1, 2, own].into_iter().chain(extra.iter().copied()).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Where a long run is, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Days done.
    pub done: usize,
    /// Days in all.
    pub days: usize,
    /// The day just done.
    pub date: UnixNanos,
}

/// An observation (or a whole day's) that could not be formed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    /// The day the observation starts (its requirement's day).
    pub date: UnixNanos,
    /// The horizon, or `None` for every horizon of that day.
    pub horizon_days: Option<u32>,
    /// The account, or `None` for every account.
    pub account: Option<usize>,
    /// Why.
    pub reason: String,
}

/// Every skipped observation: the first [`SKIPS_LISTED_MAX`] listed, the rest counted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Skips {
    /// The listed skips, in the order met.
    pub listed: Vec<Skip>,
    /// Skips past the list's bound.
    pub unlisted: usize,
}

impl Skips {
    fn push(&mut self, skip: Skip) {
        if self.listed.len() < SKIPS_LISTED_MAX {
            self.listed.push(skip);
        } else {
            self.unlisted += 1;
        }
    }
}

/// One requirement's coverage over one horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct HorizonReport {
    /// The horizon.
    pub horizon_days: u32,
    /// Initial margin against the losses; `None` without observations.
    pub initial: Option<CoverageReport>,
    /// Maintenance margin against the losses.
    pub maintenance: Option<CoverageReport>,
    /// Observations that could not be formed.
    pub skipped: usize,
}

/// The statistics of one account, or of the book.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesReport {
    /// The account's name (`book` for the book).
    pub name: String,
    /// Coverage per horizon, in the config's order.
    pub horizons: Vec<HorizonReport>,
    /// Of the initial margin in USD. Legs are sized in coins, so this also rises and falls with
    /// the price level (a year in which BTC rose twentyfold has a peak-to-trough of about 20).
    pub procyclicality: Procyclicality,
    /// Of the margin rate, initial margin over gross notional: the methodology's own
    /// procyclicality, without the price level; its largest rises are ranked in points of
    /// notional ([`crate::procyclicality::Ranking::Absolute`]).
    pub rate_procyclicality: Procyclicality,
    /// The mean over valued days of initial margin over gross notional (days with notional).
    pub margin_to_notional: Option<f64>,
    /// Days with figures.
    pub days_valued: usize,
    /// The first reason a day had none.
    pub first_refusal: Option<String>,
}

/// One day's figures of an account or of the book, in USD.
#[derive(Debug, Clone, PartialEq)]
pub struct DayPoint {
    /// The day.
    pub date: UnixNanos,
    /// Initial margin.
    pub initial_margin: f64,
    /// Maintenance margin.
    pub maintenance_margin: f64,
    /// Equity (collateral and positions at the day's marks).
    pub equity: f64,
    /// Sum of `|size| ×` notional of every position.
    pub gross_notional: f64,
    /// The loss realised over each horizon from this day, when it was formed.
    pub losses: Vec<Option<f64>>,
}

/// A backtest's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// `name@version` of the methodology.
    pub methodology: String,
    /// The horizons, ascending.
    pub horizons_days: Vec<u32>,
    /// The coverage level.
    pub confidence: Confidence,
    /// Days replayed.
    pub days: usize,
    /// The book: every account summed.
    pub book: SeriesReport,
    /// Every account, in book order.
    pub accounts: Vec<SeriesReport>,
    /// The book's daily figures (valued days only).
    pub book_days: Vec<DayPoint>,
    /// Each account's daily figures, for books of at most [`SERIES_ACCOUNTS_MAX`] accounts.
    pub account_days: Vec<Vec<DayPoint>>,
    /// What could not be observed.
    pub skips: Skips,
}

/// One account's figures of one day.
#[derive(Debug, Clone, Copy)]
struct Valued {
    initial: f64,
    maintenance: f64,
    equity: f64,
    notional: f64,
}

/// A day's holdings and their figures, kept until the longest horizon has looked back at it.
struct PastDay {
    date: UnixNanos,
    /// Whether the methodology priced the day (an unpriced day is never looked back to).
    priced: bool,
    book: DayBook,
    valued: Vec<Option<Valued>>,
}

/// Runs the backtest of `book` on `replay` under `engine`'s methodology; `progress` hears of
/// every day done.
///
/// # Errors
/// A horizon longer than a leg's tenor (the leg would be re-struck every day and expire inside
/// its margin period of risk), a tenor beyond the surface's last slice, and `Unvalued` when no
/// observation could be formed (the first reason named).
pub fn run(
    replay: &Replay,
    engine: &Engine,
    book: &Book,
    config: &Config,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report, Error> {
    check_tenors(replay, book, config)?;
    let mut state = State::new(replay, engine, book, config);
    for day in 0..replay.days().len() {
        state.step(day)?;
        progress(Progress {
            done: day + 1,
            days: replay.days().len(),
            date: replay.days()[day].date,
        });
    }
    state.finish()
}

fn check_tenors(replay: &Replay, book: &Book, config: &Config) -> Result<(), Error> {
    let longest = config.horizons_days.last().copied().unwrap_or(1);
    if let Some(shortest) = book.shortest_tenor_days()
        && shortest <= longest
    {
        let rule = format!("a leg of {shortest} days is not longer than the {longest}-day horizon");
        return Err(Error::range("tenor_days", rule));
    }
    let surface = replay.model().horizon_days();
    if let Some(tenor) = book.longest_tenor_days()
        && tenor >= surface
    {
        let rule =
            format!("a leg of {tenor} days reaches past the surface's last slice ({surface} days)");
        return Err(Error::range("tenor_days", rule));
    }
    Ok(())
}

/// The loop's state between days.
struct State<'a> {
    replay: &'a Replay,
    engine: &'a Engine,
    book: &'a Book,
    config: &'a Config,
    interner: Interner,
    holdings: Holdings,
    past: VecDeque<PastDay>,
    tallies: Vec<Tally>,
    book_tally: Tally,
    book_days: Vec<DayPoint>,
    account_days: Vec<Vec<DayPoint>>,
    skips: Skips,
    rows: Vec<u32>,
    scratch_book: AccountBook,
    scratch_refresh: Refresh,
}

impl<'a> State<'a> {
    fn new(
        replay: &'a Replay,
        engine: &'a Engine,
        book: &'a Book,
        config: &'a Config,
    ) -> State<'a> {
        let horizons = config.horizons_days.len();
        let accounts = book.accounts().len();
        let series = if accounts <= SERIES_ACCOUNTS_MAX { accounts } else { 0 };
        State {
            replay,
            engine,
            book,
            config,
            interner: Interner::default(),
            holdings: Holdings::new(book),
            past: VecDeque::new(),
            tallies: vec![Tally::new(horizons); accounts],
            book_tally: Tally::new(horizons),
            book_days: Vec::new(),
            account_days: vec![Vec::new(); series],
            skips: Skips::default(),
            rows: Vec::new(),
            scratch_book: AccountBook::default(),
            scratch_refresh: Refresh::default(),
        }
    }

    fn longest_nanos(&self) -> i64 {
        i64::from(self.config.horizons_days.last().copied().unwrap_or(1)) * NANOS_PER_DAY
    }

    /// One replayed day: strike, price once, refresh today's book and each horizon's.
    fn step(&mut self, day: usize) -> Result<(), Error> {
        let replayed = &self.replay.days()[day];
        let (date, market) = (replayed.date, Arc::clone(&replayed.market));
        while self.past.front().is_some_and(|p| date.0 - p.date.0 > self.longest_nanos()) {
            self.past.pop_front();
        }
        let today =
            self.holdings.roll(self.book, &market, self.longest_nanos(), &mut self.interner)?;
        let looked_back: Vec<usize> = self.looking_back(date);
        let mut universe: Vec<u32> = today.clone();
        for &p in &looked_back {
            universe.extend_from_slice(&self.past[p].book.ids);
        }
        universe.sort_unstable();
        universe.dedup();
        let instruments: Vec<_> =
            universe.iter().map(|&id| *self.interner.instrument(id)).collect();
        let priced = match self.engine.price_valuable(&market, &instruments) {
            Ok(priced) => priced,
            Err(e) => {
                self.day_unvalued(date, &looked_back, &e.to_string());
                return Ok(());
            }
        };
        let (priced, refused) = priced;
        self.interner.rows(&priced, &universe, &mut self.rows);
        let book =
            self.holdings.day_book(self.book, &priced, &self.interner, &self.rows, today, &refused);
        let valued = self.value_today(date, &priced, &book);
        for &p in &looked_back {
            self.look_back(p, date, &priced);
        }
        self.name_unreachable(date, &valued);
        self.past.push_back(PastDay { date, priced: true, book, valued });
        Ok(())
    }

    /// Indices into `past` of the days a horizon looks back to from `date`.
    fn looking_back(&self, date: UnixNanos) -> Vec<usize> {
        (0..self.past.len())
            .filter(|&p| {
                let days = (date.0 - self.past[p].date.0) / NANOS_PER_DAY;
                (date.0 - self.past[p].date.0) % NANOS_PER_DAY == 0
                    && self.horizon_index(days).is_some()
            })
            .collect()
    }

    fn horizon_index(&self, days: i64) -> Option<usize> {
        self.config.horizons_days.iter().position(|&h| i64::from(h) == days)
    }

    /// The methodology could not price the day: its observations and those ending on it are
    /// skipped.
    fn day_unvalued(&mut self, date: UnixNanos, looked_back: &[usize], why: &str) {
        let reason = format!("the methodology cannot price {date:?}: {why}");
        self.skips.push(Skip { date, horizon_days: None, account: None, reason: reason.clone() });
        for tally in self.tallies.iter_mut().chain(std::iter::once(&mut self.book_tally)) {
            tally.refused(&reason);
            tally.skipped.iter_mut().for_each(|s| *s += 1);
        }
        for &p in looked_back {
            let past = &self.past[p];
            let days = (date.0 - past.date.0) / NANOS_PER_DAY;
            let Some(h) = self.horizon_index(days) else { continue };
            if !past.priced {
                continue;
            }
            let horizon_days = Some(self.config.horizons_days[h]);
            let skip =
                Skip { date: past.date, horizon_days, account: None, reason: reason.clone() };
            self.skips.push(skip);
            for (tally, then) in self.tallies.iter_mut().zip(&past.valued) {
                if then.is_some() {
                    tally.skipped[h] += 1;
                }
            }
            self.book_tally.skipped[h] += 1;
        }
        let valued = vec![None; self.book.accounts().len()];
        self.past.push_back(PastDay { date, priced: false, book: DayBook::default(), valued });
    }

    /// Refreshes today's book on today's market: each account's requirements, equity and
    /// notional, or its refusal.
    fn value_today(
        &mut self,
        date: UnixNanos,
        priced: &PricedMarket,
        book: &DayBook,
    ) -> Vec<Option<Valued>> {
        let mut refused = BTreeMap::new();
        book.resolve(&self.interner, &self.rows, &mut self.scratch_book, &mut refused);
        priced.refresh_into(&self.scratch_book, &mut self.scratch_refresh);
        // Accounts are independent: their figures and tallies are computed in parallel, and
        // only the refusals (rare, and listed in order) are handled one by one.
        let (refresh, rows) = (&self.scratch_refresh, &self.rows);
        let figures: Vec<Result<Valued, String>> = (0..book.accounts())
            .into_par_iter()
            .map(|a| {
                let (initial, maintenance, equity) = match refused.get(&a) {
                    Some(why) => return Err(why.clone()),
                    None => usd_figures(refresh, a, priced)?,
                };
                let info = |id: u32| priced.arrays().info(rows[id as usize] as usize);
                let notional = book.held(a).iter().map(|h| h.size.abs() * info(h.id).notional_usd);
                Ok(Valued { initial, maintenance, equity, notional: notional.sum() })
            })
            .collect();
        self.tallies.par_iter_mut().zip(&figures).for_each(|(tally, figures)| {
            if let Ok(v) = figures {
                record_day(tally, v, date);
            }
        });
        let mut valued = Vec::with_capacity(figures.len());
        for (a, figures) in figures.into_iter().enumerate() {
            match figures {
                Ok(v) => valued.push(Some(v)),
                Err(why) => {
                    let tally = &mut self.tallies[a];
                    tally.refused(&why);
                    tally.skipped.iter_mut().for_each(|s| *s += 1);
                    let skip = Skip { date, horizon_days: None, account: Some(a), reason: why };
                    self.skips.push(skip);
                    valued.push(None);
                }
            }
        }
        self.record_book_day(date, &valued);
        valued
    }

    fn record_book_day(&mut self, date: UnixNanos, valued: &[Option<Valued>]) {
        let horizons = self.config.horizons_days.len();
        for (a, v) in valued.iter().enumerate().take(self.account_days.len()) {
            if let Some(v) = v {
                self.account_days[a].push(point(date, v, horizons));
            }
        }
        if valued.iter().all(Option::is_some) {
            let sum = valued.iter().flatten().fold(
                Valued { initial: 0.0, maintenance: 0.0, equity: 0.0, notional: 0.0 },
                |s, v| Valued {
                    initial: s.initial + v.initial,
                    maintenance: s.maintenance + v.maintenance,
                    equity: s.equity + v.equity,
                    notional: s.notional + v.notional,
                },
            );
            record_day(&mut self.book_tally, &sum, date);
            self.book_days.push(point(date, &sum, horizons));
        }
    }

    /// Revalues the holdings of `past[p]` on today's market and records each account's loss.
    fn look_back(&mut self, p: usize, date: UnixNanos, priced: &PricedMarket) {
        let past = &self.past[p];
        let Some(h) = self.horizon_index((date.0 - past.date.0) / NANOS_PER_DAY) else { return };
        let horizon = self.config.horizons_days[h];
        if !past.priced {
            return;
        }
        let mut refused = BTreeMap::new();
        past.book.resolve(&self.interner, &self.rows, &mut self.scratch_book, &mut refused);
        priced.refresh_into(&self.scratch_book, &mut self.scratch_refresh);
        let refresh = &self.scratch_refresh;
        // Each account's loss (`None` where it had no figures on the earlier day), in parallel.
        let losses: Vec<Option<Result<f64, String>>> = (past.valued.par_iter().enumerate())
            .map(|(a, then)| {
                let then = then.as_ref()?;
                let later = match refused.get(&a) {
                    Some(why) => Err(why.clone()),
                    None => usd_figures(refresh, a, priced),
                };
                Some(later.map(|(_, _, equity)| then.equity - equity))
            })
            .collect();
        self.tallies.par_iter_mut().zip(&losses).zip(&past.valued).for_each(|((t, loss), then)| {
            if let (Some(Ok(loss)), Some(then)) = (loss, then) {
                let (initial, maintenance) = &mut t.horizons[h];
                initial.push(then.initial, *loss);
                maintenance.push(then.maintenance, *loss);
            }
        });
        let (mut book_requirement, mut book_maintenance, mut book_loss, mut complete) =
            (0.0, 0.0, 0.0, true);
        for (a, (loss, then)) in losses.into_iter().zip(&past.valued).enumerate() {
            let (Some(loss), Some(then)) = (loss, then) else {
                complete = false;
                continue;
            };
            match loss {
                Ok(loss) => {
                    book_requirement += then.initial;
                    book_maintenance += then.maintenance;
                    book_loss += loss;
                    if let Some(points) = self.account_days.get_mut(a)
                        && let Some(point) = points.iter_mut().rev().find(|d| d.date == past.date)
                    {
                        point.losses[h] = Some(loss);
                    }
                }
                Err(why) => {
                    complete = false;
                    self.tallies[a].skipped[h] += 1;
                    self.tallies[a].refused(&why);
                    let skip = Skip {
                        date: past.date,
                        horizon_days: Some(horizon),
                        account: Some(a),
                        reason: format!("revalued on {date:?}: {why}"),
                    };
                    self.skips.push(skip);
                }
            }
        }
        let sums = complete.then_some((book_requirement, book_maintenance, book_loss));
        self.record_book_loss(h, past.date, sums);
    }

    /// The book's observation of horizon `h` from `start`: the sums of the accounts'
    /// requirements and losses, or a skip when an account had none.
    fn record_book_loss(&mut self, h: usize, start: UnixNanos, sums: Option<(f64, f64, f64)>) {
        let Some((requirement, maintenance_requirement, loss)) = sums else {
            self.book_tally.skipped[h] += 1;
            return;
        };
        let (initial, maintenance) = &mut self.book_tally.horizons[h];
        initial.push(requirement, loss);
        maintenance.push(maintenance_requirement, loss);
        if let Some(point) = self.book_days.iter_mut().rev().find(|d| d.date == start) {
            point.losses[h] = Some(loss);
        }
    }

    /// Names the observations from `date` whose later day has no market (a missing day, or the
    /// end of the window).
    fn name_unreachable(&mut self, date: UnixNanos, valued: &[Option<Valued>]) {
        let last = self.replay.days().last().map_or(date, |d| d.date);
        for (h, &horizon) in self.config.horizons_days.iter().enumerate() {
            let later = UnixNanos(date.0 + i64::from(horizon) * NANOS_PER_DAY);
            if self.replay.day_at(later).is_some() {
                continue;
            }
            let reason = match self.replay.absence(later) {
                _ if later > last => format!("{later:?} is past the window's end"),
                Some(absence) => format!("no market on {later:?}: {absence:?}"),
                None => format!("no market on {later:?}"),
            };
            self.skips.push(Skip { date, horizon_days: Some(horizon), account: None, reason });
            for (tally, v) in self.tallies.iter_mut().zip(valued) {
                if v.is_some() {
                    tally.skipped[h] += 1;
                }
            }
            self.book_tally.skipped[h] += 1;
        }
    }

    fn finish(self) -> Result<Report, Error> {
        let confidence = self.config.confidence;
        let keep = self.book.accounts().len() <= SERIES_ACCOUNTS_MAX;
        let observed = self.tallies.iter().any(|t| t.horizons.iter().any(|(i, _)| i.len() > 0));
        if !observed {
            let first = self.tallies.iter().find_map(|t| t.first_refusal.clone());
            let first = first.unwrap_or_else(|| "no two days a horizon apart".to_owned());
            return Err(Error::new("methodology", None, ErrorKind::Unvalued(first)));
        }
        let accounts = (self.tallies.par_iter().zip(self.book.accounts()))
            .map(|(t, a)| series_report(&a.name, t, self.config, keep))
            .collect::<Result<Vec<_>, Error>>()?;
        let book = series_report("book", &self.book_tally, self.config, true)?;
        let methodology = self.engine.methodology();
        Ok(Report {
            methodology: format!("{}@{}", methodology.name, methodology.version),
            horizons_days: self.config.horizons_days.clone(),
            confidence,
            days: self.replay.days().len(),
            book,
            accounts,
            book_days: self.book_days,
            account_days: self.account_days,
            skips: self.skips,
        })
    }
}

fn point(date: UnixNanos, v: &Valued, horizons: usize) -> DayPoint {
    DayPoint {
        date,
        initial_margin: v.initial,
        maintenance_margin: v.maintenance,
        equity: v.equity,
        gross_notional: v.notional,
        losses: vec![None; horizons],
    }
}

fn record_day(tally: &mut Tally, v: &Valued, date: UnixNanos) {
    tally.days_valued += 1;
    tally.procyclicality.push(date, v.initial);
    if v.notional > 0.0 {
        tally.ratio_sum += v.initial / v.notional;
        tally.ratio_days += 1;
        tally.rate_procyclicality.push(date, v.initial / v.notional);
    }
}

/// Account `a`'s initial and maintenance margin and equity in USD at `priced`'s prices.
fn usd_figures(
    refresh: &Refresh,
    a: usize,
    priced: &PricedMarket,
) -> Result<(f64, f64, f64), String> {
    let lines = refresh.account(a).map_err(ToString::to_string)?;
    let mut sums = (0.0, 0.0, 0.0);
    for line in lines {
        let usd = priced.market().usd_price(line.figures.currency).map_err(|e| e.to_string())?;
        sums.0 += line.figures.initial_margin * usd;
        sums.1 += line.figures.maintenance_margin * usd;
        sums.2 += line.figures.equity * usd;
    }
    Ok(sums)
}

fn series_report(
    name: &str,
    tally: &Tally,
    config: &Config,
    keep: bool,
) -> Result<SeriesReport, Error> {
    let mut horizons = Vec::with_capacity(config.horizons_days.len());
    for (h, (initial, maintenance)) in tally.horizons.iter().enumerate() {
        horizons.push(HorizonReport {
            horizon_days: config.horizons_days[h],
            initial: initial.finish(config.confidence, keep)?,
            maintenance: maintenance.finish(config.confidence, keep)?,
            skipped: tally.skipped[h],
        });
    }
    Ok(SeriesReport {
        name: name.to_owned(),
        horizons,
        procyclicality: tally.procyclicality.finish(),
        rate_procyclicality: tally.rate_procyclicality.finish(),
        margin_to_notional: (tally.ratio_days > 0)
            .then(|| tally.ratio_sum / tally.ratio_days as f64),
        days_valued: tally.days_valued,
        first_refusal: tally.first_refusal.clone(),
    })
}

/// One methodology's row of a side-by-side comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct SideBySide {
    /// The name the caller gave the methodology.
    pub name: String,
    /// Its backtest, or why it has none.
    pub outcome: Result<Report, Error>,
}

/// The same replay and book under each of `engines` (name, engine), each with its
/// [`standard_horizons`] and `extra` ones, at `confidence`. One methodology's error does not stop
/// the others: it is that row's outcome.
pub fn side_by_side(
    replay: &Replay,
    engines: &[(String, Engine)],
    book: &Book,
    extra: &[u32],
    confidence: Confidence,
    progress: &mut dyn FnMut(&str, Progress),
) -> Vec<SideBySide> {
    engines
        .iter()
        .map(|(name, engine)| {
            let horizons = standard_horizons(engine.methodology(), extra);
            let outcome = Config::new(horizons, confidence)
                .and_then(|config| run(replay, engine, book, &config, &mut |p| progress(name, p)));
            SideBySide { name: name.clone(), outcome }
        })
        .collect()
}
