//! Capital metrics of a book: historical and filtered historical VaR and ES, one-day and
//! ten-day, plain and stressed, per account and for the book, with Euler contributions.
//!
//! The book is struck on the replay's last day (the as-of day) and revalued, by the margin
//! engine, on one shocked market per historical scenario: every pair of replayed days `h` days
//! apart gives each underlying's log return, the ratios of its two EWMA variances and the change
//! of its return response `z`, applied to the as-of day's state and valued `h` days later (so
//! time decay is in the loss). The losses form a [`LossMatrix`] and [`crate::capital`] gives the
//! figures:
//!
//! - **HS**: the scenarios as they happened;
//! - **FHS**: each day's return rescaled to today's volatility ([`filtered_scenarios`], the
//!   model's own `λ`); ten-day filtered returns are the sums of ten consecutive filtered days;
//! - **stressed**: the historical scenarios of the 250-day window (one year of trading days)
//!   whose book ES is the largest, the worst 12 months of the history.
//!
//! Accounts the engine refuses on the as-of day or in any scenario are left out of the matrix and
//! named; scenarios whose market cannot be built or priced are named and left out.

use std::collections::BTreeMap;
use std::sync::Arc;

use basics::{Currency, NANOS_PER_DAY, UnixNanos};
use margin::{AccountBook, Engine, Refresh};
use market::MarketSnapshot;

use crate::book::Book;
use crate::capital::{
    BookRisk, Levels, LossMatrix, TailRisk, account_risks, book_risk, filtered_scenarios,
};
use crate::coverage::BASEL_WINDOW_OBSERVATIONS;
use crate::error::{Error, ErrorKind};
use crate::holdings::{Holdings, Interner};
use crate::replay::{Replay, SurfaceState};

/// The long horizon, in days (Basel's ten-day VaR).
pub const LONG_HORIZON_DAYS: u32 = 10;

/// How a scenario set was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// Historical simulation.
    Historical,
    /// Filtered historical simulation (returns rescaled to today's volatility).
    Filtered,
    /// Historical simulation over the worst 250-day window.
    Stressed,
}

impl Method {
    /// The method's short name in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Method::Historical => "HS",
            Method::Filtered => "FHS",
            Method::Stressed => "stressed HS",
        }
    }
}

/// The figures of one method and horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// How the scenarios were made.
    pub method: Method,
    /// Their horizon.
    pub horizon_days: u32,
    /// How many there are.
    pub scenarios: usize,
    /// Each valued account's VaR and ES, in [`CapitalReport::accounts`] order.
    pub accounts: Vec<TailRisk>,
    /// The book's VaR, ES, tail and Euler contributions.
    pub book: BookRisk,
}

/// Capital metrics of a book.
#[derive(Debug, Clone, PartialEq)]
pub struct CapitalReport {
    /// The as-of day.
    pub as_of: UnixNanos,
    /// The levels.
    pub levels: Levels,
    /// The accounts in the matrix, by their index in the book.
    pub accounts: Vec<usize>,
    /// Accounts left out, with the engine's reason.
    pub excluded: Vec<(usize, String)>,
    /// Scenarios left out: their last day and why.
    pub skipped: Vec<(UnixNanos, String)>,
    /// The first and last scenario day of the stressed window.
    pub stressed_window: Option<(UnixNanos, UnixNanos)>,
    /// HS, FHS and stressed figures, one-day then ten-day.
    pub measures: Vec<Measure>,
}

/// Each account's loss in each scenario of one method and horizon (an `Err` where the engine
/// refused the account), by the scenario's last day.
struct Column {
    method: Method,
    horizon_days: u32,
    losses: Vec<(UnixNanos, Vec<Result<f64, String>>)>,
}

/// One scenario: the day it ends on and each underlying's shocked state.
struct Scenario {
    date: UnixNanos,
    states: Vec<(Currency, SurfaceState)>,
}

/// The capital metrics of `book` on `replay`'s last day.
///
/// # Errors
/// A leg whose tenor is not longer than [`LONG_HORIZON_DAYS`]; a book the engine cannot value
/// on the as-of day (`Unvalued`); fewer scenarios than a tail needs; and the capital module's
/// limits.
pub fn capital(
    replay: &Replay,
    engine: &Engine,
    book: &Book,
    levels: Levels,
) -> Result<CapitalReport, Error> {
    if book.shortest_tenor_days().is_some_and(|t| t <= LONG_HORIZON_DAYS) {
        let rule = format!("every leg longer than the {LONG_HORIZON_DAYS}-day horizon");
        return Err(Error::range("tenor_days", rule));
    }
    let Some(as_of) = replay.days().last() else {
        return Err(Error::range("replay", "at least one day"));
    };
    let mut interner = Interner::default();
    let mut holdings = Holdings::new(book);
    let roll = i64::from(LONG_HORIZON_DAYS) * NANOS_PER_DAY;
    let ids = holdings.roll(book, &as_of.market, roll, &mut interner)?;
    let universe: Vec<_> = ids.iter().map(|&id| *interner.instrument(id)).collect();
    let (priced, refused) = engine.price_valuable(&as_of.market, &universe).map_err(unvalued)?;
    let mut rows = Vec::new();
    interner.rows(&priced, &ids, &mut rows);
    let day = holdings.day_book(book, &priced, &interner, &rows, ids, &refused);
    let mut valuer = Valuer {
        day: &day,
        interner: &interner,
        engine,
        universe: &universe,
        book: AccountBook::default(),
        refresh: Refresh::default(),
        rows: Vec::new(),
    };
    let base = valuer.equities(&as_of.market).map_err(unvalued)?;
    let mut report = CapitalReport {
        as_of: as_of.date,
        levels,
        accounts: Vec::new(),
        excluded: Vec::new(),
        skipped: Vec::new(),
        stressed_window: None,
        measures: Vec::new(),
    };
    let sets = [
        (Method::Historical, 1),
        (Method::Filtered, 1),
        (Method::Historical, LONG_HORIZON_DAYS),
        (Method::Filtered, LONG_HORIZON_DAYS),
    ];
    let mut columns = Vec::with_capacity(sets.len());
    for (method, horizon_days) in sets {
        let scenarios = scenarios(replay, method, horizon_days, &mut report.skipped)?;
        let losses = valuer.losses(replay, horizon_days, &base, scenarios, &mut report.skipped);
        columns.push(Column { method, horizon_days, losses });
    }
    exclude(&base, &columns, &mut report);
    measures(&columns, &mut report)?;
    Ok(report)
}

#[expect(clippy::needless_pass_by_value, reason = "the signature `map_err` takes")]
fn unvalued(e: margin::Error) -> Error {
    Error::new("methodology", None, ErrorKind::Unvalued(e.to_string()))
}

/// Values one day's holdings on any market of the as-of day's universe.
struct Valuer<'a> {
    day: &'a crate::holdings::DayBook,
    interner: &'a Interner,
    engine: &'a Engine,
    universe: &'a [product::Instrument],
    book: AccountBook,
    refresh: Refresh,
    rows: Vec<u32>,
}

impl Valuer<'_> {
    /// Each account's loss from `base` in each scenario, valued `horizon_days` after the as-of
    /// day; a scenario whose market cannot be built or priced is named in `skipped`.
    fn losses(
        &mut self,
        replay: &Replay,
        horizon_days: u32,
        base: &[Result<f64, String>],
        scenarios: Vec<Scenario>,
        skipped: &mut Vec<(UnixNanos, String)>,
    ) -> Vec<(UnixNanos, Vec<Result<f64, String>>)> {
        let Some(as_of) = replay.days().last() else { return Vec::new() };
        let valuation = as_of.market.valuation();
        let later = UnixNanos(valuation.0 + i64::from(horizon_days) * NANOS_PER_DAY);
        let mut losses = Vec::with_capacity(scenarios.len());
        for scenario in scenarios {
            let bars = replay.bars_per_year();
            let market = match replay.model().snapshot(later, &scenario.states, bars) {
                Ok(market) => Arc::new(market),
                Err(e) => {
                    skipped.push((scenario.date, e.to_string()));
                    continue;
                }
            };
            match self.equities(&market) {
                Ok(equities) => {
                    let column =
                        base.iter().zip(equities).map(|(b, e)| Ok(b.clone()? - e?)).collect();
                    losses.push((scenario.date, column));
                }
                Err(e) => skipped.push((scenario.date, e.to_string())),
            }
        }
        losses
    }

    /// Each account's equity in USD on `market`, or why the engine refused it.
    fn equities(
        &mut self,
        market: &Arc<MarketSnapshot>,
    ) -> Result<Vec<Result<f64, String>>, margin::Error> {
        let (priced, _) = self.engine.price_valuable(market, self.universe)?;
        self.interner.rows(&priced, &self.day.ids, &mut self.rows);
        let mut refused = BTreeMap::new();
        self.day.resolve(self.interner, &self.rows, &mut self.book, &mut refused);
        priced.refresh_into(&self.book, &mut self.refresh);
        Ok((0..self.day.accounts())
            .map(|a| {
                if let Some(why) = refused.get(&a) {
                    return Err(why.clone());
                }
                let lines = self.refresh.account(a).map_err(ToString::to_string)?;
                let mut equity = 0.0;
                for line in lines {
                    let usd = market.usd_price(line.figures.currency).map_err(|e| e.to_string())?;
                    equity += line.figures.equity * usd;
                }
                Ok(equity)
            })
            .collect())
    }
}

/// The scenarios of `method` over `horizon` days: each pair of replayed days that far apart.
fn scenarios(
    replay: &Replay,
    method: Method,
    horizon: u32,
    skipped: &mut Vec<(UnixNanos, String)>,
) -> Result<Vec<Scenario>, Error> {
    let days = replay.days();
    let Some(today) = days.last() else { return Ok(Vec::new()) };
    let span = i64::from(horizon) * NANOS_PER_DAY;
    let mut pairs = Vec::new();
    for (i, day) in days.iter().enumerate() {
        let from = UnixNanos(day.date.0 - span);
        match replay.day_at(from) {
            Some(j) => pairs.push((j, i)),
            None if i > 0
                && from >= days[0].date
                && horizon == 1
                && method == Method::Historical =>
            {
                skipped.push((day.date, format!("no market on {from:?}, the day before")));
            }
            None => {}
        }
    }
    let filtered =
        if method == Method::Filtered { Some(filtered_returns(replay, &pairs)?) } else { None };
    let mut out = Vec::with_capacity(pairs.len());
    for (k, &(j, i)) in pairs.iter().enumerate() {
        let states = today
            .states
            .iter()
            .zip(days[j].states.iter().zip(&days[i].states))
            .enumerate()
            .map(|(u, ((currency, now), ((_, then), (_, later))))| {
                let r = match &filtered {
                    Some(f) => f[u][k],
                    None => (later.spot / then.spot).ln(),
                };
                let z = replay.model().params().z_abs_max;
                (
                    *currency,
                    SurfaceState {
                        spot: now.spot * r.exp(),
                        variance_bar: now.variance_bar * later.variance_bar / then.variance_bar,
                        long_variance_bar: now.long_variance_bar * later.long_variance_bar
                            / then.long_variance_bar,
                        trend: (now.trend + later.trend - then.trend).clamp(-z, z),
                    },
                )
            })
            .collect();
        out.push(Scenario { date: days[i].date, states });
    }
    Ok(out)
}

/// Per underlying, the filtered return of each pair: one-day returns rescaled to today's
/// volatility, and for longer pairs the sum of the filtered one-day returns they span.
fn filtered_returns(replay: &Replay, pairs: &[(usize, usize)]) -> Result<Vec<Vec<f64>>, Error> {
    let days = replay.days();
    let one_day: Vec<(usize, usize)> = (1..days.len())
        .filter(|&i| days[i].date.0 - days[i - 1].date.0 == NANOS_PER_DAY)
        .map(|i| (i - 1, i))
        .collect();
    let lambda = replay.model().params().lambda;
    let mut out = Vec::new();
    for u in 0..days[0].states.len() {
        let returns: Vec<f64> = one_day
            .iter()
            .map(|&(j, i)| (days[i].states[u].1.spot / days[j].states[u].1.spot).ln())
            .collect();
        let filtered = filtered_scenarios(&returns, lambda)?;
        let by_end: BTreeMap<usize, f64> = one_day.iter().map(|p| p.1).zip(filtered).collect();
        let sums = pairs
            .iter()
            .map(|&(j, i)| (j + 1..=i).map(|d| by_end.get(&d).copied().unwrap_or(0.0)).sum::<f64>())
            .collect();
        out.push(sums);
    }
    Ok(out)
}

/// Leaves out every account refused on the as-of day or in any scenario kept.
fn exclude(base: &[Result<f64, String>], columns: &[Column], report: &mut CapitalReport) {
    for (a, b) in base.iter().enumerate() {
        let why = b.as_ref().err().cloned().or_else(|| {
            columns
                .iter()
                .flat_map(|c| c.losses.iter())
                .find_map(|(_, column)| column[a].as_ref().err().cloned())
        });
        match why {
            Some(why) => report.excluded.push((a, why)),
            None => report.accounts.push(a),
        }
    }
}

fn measures(columns: &[Column], report: &mut CapitalReport) -> Result<(), Error> {
    if report.accounts.is_empty() {
        let first =
            report.excluded.first().map_or_else(|| "no account".to_owned(), |e| e.1.clone());
        return Err(Error::new("methodology", None, ErrorKind::Unvalued(first)));
    }
    let levels = report.levels;
    let mut stressed = None;
    for Column { method, horizon_days: horizon, losses } in columns {
        let matrix_cells = matrix(&report.accounts, losses);
        let scenarios = losses.len();
        let m = LossMatrix::new(&matrix_cells, report.accounts.len(), scenarios)?;
        let book = book_risk(&m, levels);
        if *method == Method::Historical && *horizon == 1 {
            stressed = worst_window(&book.losses, levels).map(|start| {
                let end = start + BASEL_WINDOW_OBSERVATIONS - 1;
                (losses[start].0, losses[end].0)
            });
        }
        report.measures.push(Measure {
            method: *method,
            horizon_days: *horizon,
            scenarios,
            accounts: account_risks(&m, levels),
            book,
        });
    }
    report.stressed_window = stressed;
    let Some((first, last)) = stressed else { return Ok(()) };
    for Column { horizon_days: horizon, losses, .. } in
        columns.iter().filter(|c| c.method == Method::Historical)
    {
        let inside: Vec<_> =
            losses.iter().filter(|(d, _)| *d >= first && *d <= last).cloned().collect();
        let cells = matrix(&report.accounts, &inside);
        let m = LossMatrix::new(&cells, report.accounts.len(), inside.len())?;
        report.measures.push(Measure {
            method: Method::Stressed,
            horizon_days: *horizon,
            scenarios: inside.len(),
            accounts: account_risks(&m, levels),
            book: book_risk(&m, levels),
        });
    }
    Ok(())
}

/// The kept accounts' losses, account after account.
fn matrix(accounts: &[usize], losses: &[(UnixNanos, Vec<Result<f64, String>>)]) -> Vec<f64> {
    let mut cells = Vec::with_capacity(accounts.len() * losses.len());
    for &a in accounts {
        cells.extend(losses.iter().map(|(_, column)| column[a].as_ref().map_or(f64::NAN, |l| *l)));
    }
    cells
}

/// The start of the 250-scenario window with the largest book ES, the first of equals.
fn worst_window(book: &[f64], levels: Levels) -> Option<usize> {
    if book.len() < BASEL_WINDOW_OBSERVATIONS {
        return None;
    }
    let mut best: Option<(usize, f64)> = None;
    for start in 0..=book.len() - BASEL_WINDOW_OBSERVATIONS {
        let window = &book[start..start + BASEL_WINDOW_OBSERVATIONS];
        let Ok(risk) = crate::capital::tail_risk(window, levels) else { continue };
        if best.is_none_or(|(_, es)| risk.es > es) {
            best = Some((start, risk.es));
        }
    }
    best.map(|(start, _)| start)
}
