//! Price paths for the simulator: the markets of a backtest replay (history such as BTC's
//! March 2020, or a generated series, through the same surface model), and seeded generated
//! daily bars written as the history reader's CSV, so that a generated path is validated and
//! replayed by exactly the code a historical one is.

use std::fmt::Write as _;
use std::sync::Arc;

use backtest::history::{Gaps, Interval, Policy, ReadConfig, read_csv};
use backtest::replay::{Replay, SurfaceModel, Window, replay};
use basics::Currency;
use basics::{NANOS_PER_DAY, UnixNanos};
use market::MarketSnapshot;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Error;
use crate::limits::SIM_STEPS_MAX;

/// The markets of a replay, in time order.
#[must_use]
pub fn markets(replay: &Replay) -> Vec<Arc<MarketSnapshot>> {
    replay.days().iter().map(|d| Arc::clone(&d.market)).collect()
}

/// A generated daily series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Generated {
    /// Seed of the returns.
    pub seed: u64,
    /// The first bar's day.
    pub start: UnixNanos,
    /// Bars.
    pub bars: usize,
    /// The first open, USD.
    pub start_price: f64,
    /// Daily volatility of the log returns.
    pub daily_vol: f64,
    /// A crash: on this bar the close falls by this fraction (0.4: −40 %).
    pub crash: Option<(usize, f64)>,
}

/// `generated` as CSV (`date,open,high,low,close,volume`): Gaussian log returns (Box–Muller on
/// the seeded stream), the crash bar's close cut by its fraction, high and low just outside
/// open and close.
///
/// # Errors
/// `OutOfRange` naming the field: no bars or more than [`SIM_STEPS_MAX`], a start price that is
/// not positive and finite, a volatility outside `[0, 1]`, a crash outside the bars or of a
/// fraction outside `[0, 1)`.
pub fn generated_csv(generated: &Generated) -> Result<String, Error> {
    let g = generated;
    if g.bars == 0 || g.bars > SIM_STEPS_MAX {
        return Err(Error::limit("bars", "SIM_STEPS_MAX", SIM_STEPS_MAX));
    }
    if !(g.start_price.is_finite() && g.start_price > 0.0) {
        return Err(Error::range("start_price", "a positive price"));
    }
    if !(0.0..=1.0).contains(&g.daily_vol) {
        return Err(Error::range("daily_vol", "a daily volatility in [0, 1]"));
    }
    if let Some((bar, drop)) = g.crash
        && (bar >= g.bars || !(0.0..1.0).contains(&drop))
    {
        return Err(Error::range("crash", "a bar of the series and a fall in [0, 1)"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(g.seed);
    let mut out = String::from("date,open,high,low,close,volume\n");
    let mut open = g.start_price;
    for bar in 0..g.bars {
        let (u, v): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
        let normal = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        let mut close = open * (g.daily_vol * normal - 0.5 * g.daily_vol * g.daily_vol).exp();
        if let Some((at, drop)) = g.crash
            && at == bar
        {
            close = open * (1.0 - drop);
        }
        let (high, low) = (open.max(close) * 1.001, open.min(close) * 0.999);
        let day = backtest::history::format_day(UnixNanos(g.start.0 + bar as i64 * NANOS_PER_DAY));
        let _ = writeln!(out, "{day},{open},{high},{low},{close},1000");
        open = close;
    }
    Ok(out)
}

/// The last `steps` markets of `generated` (its bars include the model's warm-up) replayed
/// through `model` as BTC: written as CSV, read by the history reader and replayed, as a
/// historical path is.
///
/// # Errors
/// As [`generated_csv`]; `OutOfRange` naming `generated` when the reader or the replay refuses
/// the series or leaves fewer than `steps` markets.
pub fn generated_markets(
    model: &SurfaceModel,
    generated: &Generated,
    steps: usize,
) -> Result<Vec<Arc<MarketSnapshot>>, Error> {
    let csv = generated_csv(generated)?;
    let config = ReadConfig { interval: Interval::Day, rows: Policy::Refuse, gaps: Gaps::Refuse };
    let refused = |e: backtest::Error| Error::range("generated", e.to_string());
    let history = read_csv(&csv, config).map_err(refused)?;
    let window = Window { from: None, to: None };
    let replayed = replay(&[(Currency::BTC, &history)], model, window).map_err(refused)?;
    let mut all = markets(&replayed);
    if all.len() < steps {
        let why = format!("{} markets after the warm-up, {steps} asked", all.len());
        return Err(Error::range("generated", why));
    }
    all.drain(..all.len() - steps);
    Ok(all)
}
