//! Market replay: validated price history turned into one market snapshot per bar.
//!
//! Each bar of every underlying gives a [`SurfaceState`] (its close, two EWMA variances and the
//! standardised recent return), and the [`SurfaceModel`] turns the states of one time into a
//! [`MarketSnapshot`]: index, forwards, an SSVI surface over the model's tenors. The snapshot of
//! the bar stamped `t` is valued at `t + interval`, the instant its close was observed, so that
//! time to expiry counts from the price the market shows.
//!
//! A time is replayed only when every underlying has a bar there and its EWMA has warmed up;
//! every other time of the window is a [`MissingDay`] naming the underlying and why: a row the
//! history reader dropped (its line and problem), no row at all (a gap in the file), still
//! warming up, or a snapshot the market layer refused. Nothing is filled in: a missing close is
//! never interpolated, and a return across a gap counts as that many bars of variance.

mod model;

pub use model::{
    KEYS, LOOKBACK_DAYS_MAX, SurfaceModel, SurfaceParams, SurfaceState, TENOR_DAYS_MAX, TENORS_MAX,
    WARMUP_BARS_MAX,
};

use std::sync::Arc;

use basics::limits::UNDERLYINGS_MAX;
use basics::{Currency, NANOS_PER_DAY, UnixNanos};
use market::MarketSnapshot;

use crate::error::{Error, ErrorKind};
use crate::history::{History, Interval, Problem};
use crate::limits::BARS_MAX;

/// The span of bar times to replay, both ends included, cut to the span every underlying has
/// data for; `None` is that span's start (or end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first bar time replayed.
    pub from: Option<UnixNanos>,
    /// The last bar time replayed.
    pub to: Option<UnixNanos>,
}

/// One replayed time.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayDay {
    /// The bars' time (the start of the bar).
    pub date: UnixNanos,
    /// The market at the bars' close, valued at `date + interval`.
    pub market: Arc<MarketSnapshot>,
    /// Each underlying's state, in currency order.
    pub states: Vec<(Currency, SurfaceState)>,
}

/// Why a time of the window has no replayed market.
#[derive(Debug, Clone, PartialEq)]
pub enum Absence {
    /// The history reader dropped the underlying's row for this time.
    Dropped {
        /// The underlying.
        underlying: Currency,
        /// The row's line in its file.
        line: usize,
        /// Why it was dropped.
        problem: Problem,
    },
    /// The underlying's file has no row for this time.
    NoRow {
        /// The underlying.
        underlying: Currency,
    },
    /// The underlying's EWMA is still warming up.
    WarmingUp {
        /// The underlying.
        underlying: Currency,
    },
    /// The market layer refused the snapshot (its error, rendered).
    Market(String),
}

/// A time of the window without a replayed market, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingDay {
    /// The bar time.
    pub date: UnixNanos,
    /// Why (for the first underlying, in currency order, that lacks it).
    pub absence: Absence,
}

/// Replayed markets of a window, and every time of it that has none.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    interval: Interval,
    model: SurfaceModel,
    days: Vec<ReplayDay>,
    missing: Vec<MissingDay>,
}

impl Replay {
    /// The bar grid.
    #[must_use]
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// Bars in a year (365 days: crypto trades every day), the annualisation of variances.
    #[must_use]
    pub fn bars_per_year(&self) -> f64 {
        bars_per_year(self.interval)
    }

    /// The surface model the markets were made with.
    #[must_use]
    pub fn model(&self) -> &SurfaceModel {
        &self.model
    }

    /// The replayed times, ascending.
    #[must_use]
    pub fn days(&self) -> &[ReplayDay] {
        &self.days
    }

    /// The times of the window without a market, ascending.
    #[must_use]
    pub fn missing(&self) -> &[MissingDay] {
        &self.missing
    }

    /// The index of the day at `date`, if it was replayed.
    #[must_use]
    pub fn day_at(&self, date: UnixNanos) -> Option<usize> {
        self.days.binary_search_by_key(&date, |d| d.date).ok()
    }

    /// Why `date` has no market: its [`MissingDay`], if it is one of the window's.
    #[must_use]
    pub fn absence(&self, date: UnixNanos) -> Option<&Absence> {
        let index = self.missing.binary_search_by_key(&date, |m| m.date).ok()?;
        Some(&self.missing[index].absence)
    }
}

fn bars_per_year(interval: Interval) -> f64 {
    basics::DAYS_PER_YEAR * (NANOS_PER_DAY / interval.nanos()) as f64
}

/// Replays `underlyings` (each currency once, all on one bar grid) through `model` over
/// `window`.
///
/// # Errors
/// No underlyings or more than the market's limit, a currency given twice, histories on different
/// grids, a history without bars, a window that is empty or longer than [`BARS_MAX`] bars, and a
/// window in which no time could be replayed (`Missing`, with the first absence named).
pub fn replay(
    underlyings: &[(Currency, &History)],
    model: &SurfaceModel,
    window: Window,
) -> Result<Replay, Error> {
    let interval = check_underlyings(underlyings)?;
    let mut sorted: Vec<(Currency, &History)> = underlyings.to_vec();
    sorted.sort_by_key(|(c, _)| *c);
    let states: Vec<Vec<Option<SurfaceState>>> =
        sorted.iter().map(|(_, h)| states_of(h, model, interval)).collect();
    let (from, to) = span(&sorted, window)?;
    let step = interval.nanos();
    let mut days = Vec::new();
    let mut missing = Vec::new();
    let mut time = from;
    while time <= to {
        let date = UnixNanos(time);
        match day_states(&sorted, &states, date) {
            Ok(day) => {
                let valuation = UnixNanos(time + step);
                match model.snapshot(valuation, &day, bars_per_year(interval)) {
                    Ok(market) => {
                        days.push(ReplayDay { date, market: Arc::new(market), states: day });
                    }
                    Err(e) => {
                        missing.push(MissingDay { date, absence: Absence::Market(e.to_string()) });
                    }
                }
            }
            Err(absence) => missing.push(MissingDay { date, absence }),
        }
        time += step;
    }
    if days.is_empty() {
        let first =
            missing.first().map_or_else(|| "an empty window".to_owned(), |m| format!("{m:?}"));
        return Err(Error::new(
            "window",
            None,
            ErrorKind::OutOfRange(format!("no time replayed: {first}")),
        ));
    }
    Ok(Replay { interval, model: model.clone(), days, missing })
}

fn check_underlyings(underlyings: &[(Currency, &History)]) -> Result<Interval, Error> {
    let Some((_, first)) = underlyings.first() else {
        return Err(Error::range("underlyings", "at least one history"));
    };
    if underlyings.len() > UNDERLYINGS_MAX {
        return Err(Error::limit("underlyings", "UNDERLYINGS_MAX", UNDERLYINGS_MAX));
    }
    let interval = first.interval();
    for (index, (currency, history)) in underlyings.iter().enumerate() {
        if history.interval() != interval {
            return Err(Error::range("underlyings", "every history on one bar grid"));
        }
        if history.bars().is_empty() {
            return Err(Error::range("underlyings", format!("{currency} has no bars")));
        }
        if underlyings[..index].iter().any(|(c, _)| c == currency) {
            return Err(Error::range("underlyings", format!("{currency} is given twice")));
        }
    }
    Ok(interval)
}

/// The window's first and last bar time, on the grid.
fn span(sorted: &[(Currency, &History)], window: Window) -> Result<(i64, i64), Error> {
    let bars =
        |h: &&History| h.bars().first().map(|b| b.time.0).zip(h.bars().last().map(|b| b.time.0));
    let ends: Vec<(i64, i64)> = sorted.iter().filter_map(|(_, h)| bars(h)).collect();
    let common_from = ends.iter().map(|e| e.0).max().unwrap_or(0);
    let common_to = ends.iter().map(|e| e.1).min().unwrap_or(0);
    let step = sorted[0].1.interval().nanos();
    // A window reaching past the data every underlying has is cut to it: times before the first
    // common bar or after the last are not gaps, there is simply no history there.
    let from = window.from.map_or(common_from, |t| t.0.div_euclid(step) * step).max(common_from);
    let to = window.to.map_or(common_to, |t| t.0.div_euclid(step) * step).min(common_to);
    if from > to {
        return Err(Error::range(
            "window",
            format!("{:?} is after {:?}", UnixNanos(from), UnixNanos(to)),
        ));
    }
    if (to - from) / step >= BARS_MAX as i64 {
        return Err(Error::limit("window", "BARS_MAX", BARS_MAX));
    }
    Ok((from, to))
}

/// Every underlying's state at `date`, or why one has none.
fn day_states(
    sorted: &[(Currency, &History)],
    states: &[Vec<Option<SurfaceState>>],
    date: UnixNanos,
) -> Result<Vec<(Currency, SurfaceState)>, Absence> {
    let mut out = Vec::with_capacity(sorted.len());
    for ((currency, history), states) in sorted.iter().zip(states) {
        let underlying = *currency;
        let Ok(index) = history.bars().binary_search_by_key(&date, |b| b.time) else {
            let dropped = history.report().skipped.iter().find(|s| s.time == date);
            return Err(match dropped {
                Some(s) => Absence::Dropped { underlying, line: s.line, problem: s.problem },
                None => Absence::NoRow { underlying },
            });
        };
        match states[index] {
            Some(state) => out.push((underlying, state)),
            None => return Err(Absence::WarmingUp { underlying }),
        }
    }
    Ok(out)
}

/// The state at every bar of `history`, `None` while the EWMAs warm up.
fn states_of(
    history: &History,
    model: &SurfaceModel,
    interval: Interval,
) -> Vec<Option<SurfaceState>> {
    let p = model.params();
    let bars = history.bars();
    let step = interval.nanos();
    // Per-bar variance of each return: a return across `g` bars spreads its square over them.
    let variances: Vec<f64> = bars
        .windows(2)
        .map(|w| {
            let r = (w[1].close / w[0].close).ln();
            r * r / ((w[1].time.0 - w[0].time.0) / step) as f64
        })
        .collect();
    let mut out = vec![None; bars.len()];
    let warmup = p.warmup_bars;
    if variances.len() < warmup {
        return out;
    }
    let start = variances[..warmup].iter().sum::<f64>() / warmup as f64;
    let (mut short, mut long) = (start, start);
    let lookback_nanos = i64::from(p.return_lookback_days) * NANOS_PER_DAY;
    for index in warmup..bars.len() {
        if index > warmup {
            let v = variances[index - 1];
            short = p.lambda * short + (1.0 - p.lambda) * v;
            long = p.long_run_lambda * long + (1.0 - p.long_run_lambda) * v;
        }
        let bar = &bars[index];
        let earlier = bars.partition_point(|b| b.time.0 <= bar.time.0 - lookback_nanos);
        let trend = match earlier.checked_sub(1) {
            Some(j) => {
                let spanned = ((bar.time.0 - bars[j].time.0) / step) as f64;
                let expected = (short * spanned).sqrt();
                let z = (bar.close / bars[j].close).ln() / expected;
                if z.is_finite() { z.clamp(-p.z_abs_max, p.z_abs_max) } else { 0.0 }
            }
            None => 0.0,
        };
        out[index] = Some(SurfaceState {
            spot: bar.close,
            variance_bar: short,
            long_variance_bar: long,
            trend,
        });
    }
    out
}
