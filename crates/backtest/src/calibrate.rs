//! Calibration: the price range and volatility shock of one underlying that make a
//! methodology's initial margin cover a target share of the realised losses over a margin
//! period of risk, on a replayed history.
//!
//! Two stages, each a bisection on a grid of steps (the margin of the calibration books only
//! grows with each parameter, so the smallest feasible step is found exactly):
//! 1. the **price range**, down and up, on a long and a short perpetual of one coin: their
//!    margin is the grid's edge move times the notional plus the add-ons, so each side is fitted
//!    by the account that loses on it;
//! 2. the **volatility shock's scale** (the methodology-wide shock's up and down multiplied by
//!    one factor, written as the underlying's own shock), with those ranges, on the option
//!    strategies of [`VOL_STRATEGIES`]: the smallest scale at which every one of them covers.
//!
//! An account covers when its exceedance rate in the fit window is at most the target's tail
//! probability (at 99 %, 13 exceedances in 1,300 observations pass and 14 fail). An
//! observation belongs to a window when its start and the end of its horizon both lie inside,
//! so an in-sample figure never reads a price after the window. The anti-procyclicality
//! options of EMIR article 28 act on the fitted parameters ([`AntiProcyclicality`]): a buffer
//! released in stress, a weight on the stressed period's observations, or a floor at the
//! parameters the stressed period alone requires. The stressed period is the year of largest
//! realised variance in the lookback before the fit's end, never after it.
//!
//! The fitted parameters are then held against every calibration account in sample and, when
//! a test window is given, out of sample.

use basics::{Currency, NANOS_PER_DAY, UnixNanos};
use margin::Engine;
use methodology::{AntiProcyclicality, ExtremeWeighting, Methodology, PriceGrid, Sample};
use product::Settlement;

use crate::book::{AccountSpec, Book, Contract, Leg, Strategy};
use crate::confidence::Confidence;
use crate::error::{Error, ErrorKind};
use crate::replay::Replay;
use crate::run::{Config, DayPoint, Report, run};

/// The grid of price ranges searched, as a fraction of the spot: a quarter of a percent.
pub const PRICE_RANGE_STEP: f64 = 1.0 / PRICE_RANGE_STEPS_PER_UNIT;
/// Steps of the price range per unit. A step's range is `k / 400`, the double nearest to its
/// decimal (`0.2075`, never `0.20750000000000002`), so a hand-written file reads as the same bits.
const PRICE_RANGE_STEPS_PER_UNIT: f64 = 400.0;
/// Steps of the widest price range searched (90 %).
pub const PRICE_RANGE_STEPS_MAX: u32 = 360;
/// The grid of volatility-shock scales searched.
pub const VOL_SCALE_STEP: f64 = 1.0 / VOL_SCALE_STEPS_PER_UNIT;
/// Steps of the volatility scale per unit (each scale `k / 20`, as for the price range).
const VOL_SCALE_STEPS_PER_UNIT: f64 = 20.0;
/// A scaled volatility shock is rounded to this many parts per unit (four decimals), so that
/// the file carries `0.175` rather than `0.5 × 0.35 = 0.17500000000000002`.
const VOL_SHOCK_PARTS_PER_UNIT: f64 = 10_000.0;
/// Steps of the largest scale searched (4×).
pub const VOL_SCALE_STEPS_MAX: u32 = 80;
/// The largest relative volatility shock down a scale may reach: implied vol stays positive.
pub const VOL_DOWN_MAX: f64 = 0.9;
/// Calendar days of the stressed period.
pub const STRESSED_PERIOD_DAYS: i64 = 365;
/// Fewest in-sample observations a fit accepts.
pub const FIT_OBSERVATIONS_MIN: u32 = 100;
/// Fewest replayed days of a stressed period.
pub const STRESSED_DAYS_MIN: usize = 250;
/// Days searched back for the stressed period per year of lookback.
const DAYS_PER_YEAR: i64 = 365;

/// The option strategies whose coverage fits the volatility shock.
pub const VOL_STRATEGIES: [Strategy; 5] = [
    Strategy::ShortStrangle,
    Strategy::CoveredCall,
    Strategy::DeltaHedgedStraddle,
    Strategy::CalendarSpread,
    Strategy::NakedShortPut,
];

/// Bar dates from `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first bar date.
    pub from: UnixNanos,
    /// The last bar date.
    pub to: UnixNanos,
}

/// What one underlying's fit aims at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    /// The underlying whose parameters are fitted.
    pub underlying: Currency,
    /// The coverage aimed at.
    pub coverage: Confidence,
    /// The margin period of risk, in days.
    pub horizon_days: u32,
    /// The fit window.
    pub fit: Span,
    /// The out-of-sample window.
    pub test: Option<Span>,
    /// The anti-procyclicality option.
    pub anti_procyclicality: AntiProcyclicality,
    /// Years searched back from the fit's end for the stressed period.
    pub lookback_years: u32,
}

impl Spec {
    /// The first date the calibration reads: the fit's start, or the start of the lookback
    /// before the fit's end when the option searches it for a stressed period. A replay for
    /// [`calibrate`] runs from here to [`Spec::replay_to`].
    #[must_use]
    pub fn replay_from(&self) -> UnixNanos {
        if self.anti_procyclicality.needs_stressed_period() {
            UnixNanos(self.fit.from.0.min(self.lookback_start()))
        } else {
            self.fit.from
        }
    }

    /// The last date the calibration reads: the end of the test window, or of the fit.
    #[must_use]
    pub fn replay_to(&self) -> UnixNanos {
        self.test.map_or(self.fit.to, |t| t.to)
    }

    fn lookback_start(&self) -> i64 {
        self.fit.to.0 - i64::from(self.lookback_years) * DAYS_PER_YEAR * NANOS_PER_DAY
    }
}

/// The fitted parameters of one underlying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parameters {
    /// The grid's largest move down, as a positive fraction.
    pub price_down: f64,
    /// The grid's largest move up.
    pub price_up: f64,
    /// The factor on the base methodology's volatility shock.
    pub vol_scale: f64,
}

/// One calibration account's samples under the fitted parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountResult {
    /// `strategy/UNDERLYING`.
    pub name: String,
    /// In the fit window.
    pub in_sample: Sample,
    /// In the stressed period, when one was used.
    pub stressed: Option<Sample>,
    /// In the test window, when one was given.
    pub out_of_sample: Option<Sample>,
}

/// The outcome of one underlying's calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// What was aimed at.
    pub spec: Spec,
    /// The parameters the target required before the anti-procyclicality option.
    pub required: Parameters,
    /// The parameters written.
    pub parameters: Parameters,
    /// The stressed period, when the option used one.
    pub stressed: Option<Span>,
    /// Every calibration account under `parameters`.
    pub accounts: Vec<AccountResult>,
    /// Backtests run.
    pub runs: usize,
}

/// How a candidate is judged.
#[derive(Debug, Clone, Copy)]
enum Criterion {
    /// The exceedance rate in one window.
    Window(Span),
    /// `(1 − weight)` of the fit window's rate plus `weight` of the stressed period's.
    Weighted { fit: Span, stressed: Span, weight: f64 },
}

/// Fits `spec.underlying`'s price range and volatility shock in `base` on `replay` (a replay
/// of that underlying covering the fit window, the lookback and the test window).
///
/// # Errors
/// A horizon outside 1–29 days, windows out of order or outside the replay, fewer than
/// [`FIT_OBSERVATIONS_MIN`] observations in the fit, no stressed year in the lookback when the
/// option needs one, a target no step of the search reaches (naming the account), and the
/// engine's or the backtest's own errors.
pub fn calibrate(replay: &Replay, base: &Methodology, spec: &Spec) -> Result<Fit, Error> {
    check_spec(replay, spec)?;
    let mut fitter = Fitter { replay, base, spec, runs: 0 };
    let stressed = if spec.anti_procyclicality.needs_stressed_period() {
        Some(stressed_period(replay, spec)?)
    } else {
        None
    };
    let required = match (spec.anti_procyclicality, stressed) {
        (AntiProcyclicality::StressedWeight { weight }, Some(stressed)) => {
            fitter.fit(Criterion::Weighted { fit: spec.fit, stressed, weight })?
        }
        (AntiProcyclicality::Floor, Some(stressed)) => {
            let recent = fitter.fit(Criterion::Window(spec.fit))?;
            let stress = fitter.fit(Criterion::Window(stressed))?;
            Parameters {
                price_down: recent.price_down.max(stress.price_down),
                price_up: recent.price_up.max(stress.price_up),
                vol_scale: recent.vol_scale.max(stress.vol_scale),
            }
        }
        _ => fitter.fit(Criterion::Window(spec.fit))?,
    };
    let parameters = match spec.anti_procyclicality {
        AntiProcyclicality::Buffer { fraction } => {
            buffered(required, current(base, spec.underlying)?, fraction)
        }
        _ => required,
    };
    let accounts = fitter.evaluate(parameters, stressed)?;
    Ok(Fit { spec: *spec, required, parameters, stressed, accounts, runs: fitter.runs })
}

/// The buffer released in stress: each parameter keeps its current value while that lies
/// between the required one and the required one plus the buffer, so a refit in calm keeps the
/// buffer and a refit in stress spends it before the margin rises.
fn buffered(required: Parameters, current: Parameters, fraction: f64) -> Parameters {
    let keep = |required: f64, current: f64| current.clamp(required, required * (1.0 + fraction));
    Parameters {
        price_down: keep(required.price_down, current.price_down),
        price_up: keep(required.price_up, current.price_up),
        vol_scale: keep(required.vol_scale, current.vol_scale),
    }
}

/// The parameters `base` has now for `underlying`: its grid's edges, and its volatility shock
/// up over the methodology-wide one (1 when the underlying has no shock of its own).
///
/// # Errors
/// A grid without a move down or up, a methodology-wide shock up that is not positive.
pub fn current(base: &Methodology, underlying: Currency) -> Result<Parameters, Error> {
    let (price_down, price_up) = edges(&base.scenario_spec(underlying).price_grid.moves)?;
    let own = base.by_underlying.get(&underlying).and_then(|u| u.vol_shock);
    let vol_scale = own.map_or(1.0, |own| own.up / base.vol_shock.up);
    scalable(base)?;
    Ok(Parameters { price_down, price_up, vol_scale })
}

/// The methodology-wide shock, which a scale multiplies.
fn scalable(base: &Methodology) -> Result<methodology::VolShock, Error> {
    if base.vol_shock.up > 0.0 {
        Ok(base.vol_shock)
    } else {
        Err(Error::range("vol_shock.up", "a positive methodology-wide shock to scale"))
    }
}

fn edges(moves: &[f64]) -> Result<(f64, f64), Error> {
    let down = -moves.iter().copied().fold(0.0, f64::min);
    let up = moves.iter().copied().fold(0.0, f64::max);
    if down > 0.0 && up > 0.0 {
        Ok((down, up))
    } else {
        Err(Error::range("scenarios.price_moves", "a grid with moves down and up to calibrate"))
    }
}

/// `base` with `parameters` for `underlying`: its grid's moves down and up rescaled to the
/// ranges (the steps kept), extreme moves inside the new grid dropped, a dampened tail's scale
/// set to the narrower range (so a tail's linear exposure stays capped at the grid's edge), and
/// its own volatility shock set to the methodology-wide shock's up and down times the scale,
/// rounded to four decimals (the shock down at most [`VOL_DOWN_MAX`]).
///
/// # Errors
/// A grid without moves on both sides, a methodology-wide shock up that is not positive, and
/// the methodology's own validation.
pub fn with_parameters(
    base: &Methodology,
    underlying: Currency,
    parameters: Parameters,
) -> Result<Methodology, Error> {
    let mut m = base.clone();
    let mut spec = base.scenario_spec(underlying).clone();
    let (down, up) = edges(&spec.price_grid.moves)?;
    let grid = &mut spec.price_grid;
    let steps = |below: bool| grid.moves.iter().filter(move |m| (**m < 0.0) == below && **m != 0.0);
    let (steps_down, steps_up) = (steps(true).count(), steps(false).count());
    let (steps_down, steps_up) = (u32::try_from(steps_down), u32::try_from(steps_up));
    let even = match (steps_down, steps_up) {
        (Ok(d), Ok(u)) => (PriceGrid::symmetric(down, d, up, u) == *grid).then_some((d, u)),
        _ => None,
    };
    match even {
        // An evenly spaced grid stays one, with the bits its `{ down, up, steps }` form reads as.
        Some((d, u)) => {
            *grid = PriceGrid::symmetric(parameters.price_down, d, parameters.price_up, u);
        }
        None => {
            for step in &mut grid.moves {
                *step *= if *step < 0.0 {
                    parameters.price_down / down
                } else {
                    parameters.price_up / up
                };
            }
        }
    }
    if let Some(extreme) = &mut spec.extreme {
        let outside = |m: f64| m < -parameters.price_down || m > parameters.price_up;
        let kept: Vec<(usize, f64)> =
            extreme.moves.iter().copied().enumerate().filter(|(_, m)| outside(*m)).collect();
        if let ExtremeWeighting::Explicit(weights) = &mut extreme.weighting {
            *weights = kept.iter().filter_map(|(i, _)| weights.get(*i).copied()).collect();
        }
        if let ExtremeWeighting::Dampened { scale } = &mut extreme.weighting {
            *scale = parameters.price_down.min(parameters.price_up);
        }
        extreme.moves = kept.into_iter().map(|(_, m)| m).collect();
    }
    m.scenarios_by_underlying.insert(underlying, spec);
    // The scale is always of the methodology-wide shock's size, so that refitting a calibrated
    // methodology finds the same scale instead of compounding it; the term shape (powers,
    // reference days) stays the underlying's own.
    let shock = *base.vol_shock_for(underlying);
    let size = scalable(base)?;
    let round = |x: f64| (x * VOL_SHOCK_PARTS_PER_UNIT).round() / VOL_SHOCK_PARTS_PER_UNIT;
    let scaled = methodology::VolShock {
        up: round(size.up * parameters.vol_scale),
        down: round(size.down * parameters.vol_scale).min(VOL_DOWN_MAX),
        ..shock
    };
    m.by_underlying.entry(underlying).or_default().vol_shock = Some(scaled);
    m.validate().map_err(|e| {
        Error::new("methodology", None, ErrorKind::Margin(format!("{}: {}", e.field, e.kind)))
    })?;
    Ok(m)
}

fn check_spec(replay: &Replay, spec: &Spec) -> Result<(), Error> {
    if !(1..30).contains(&spec.horizon_days) {
        return Err(Error::range("horizon_days", "1 to 29 days (the strategies hold 30-day legs)"));
    }
    let windows = std::iter::once(("fit", spec.fit)).chain(spec.test.map(|t| ("test", t)));
    for (name, span) in windows {
        if span.from.0 > span.to.0 {
            return Err(Error::range(name, "a window's first date is not after its last"));
        }
        if replay.days().iter().all(|d| d.date.0 < span.from.0 || d.date.0 > span.to.0) {
            return Err(Error::range(name, "a window with replayed days"));
        }
    }
    let observations =
        replay.days().iter().filter(|d| observes(spec.fit, spec.horizon_days, d.date)).count();
    if observations < FIT_OBSERVATIONS_MIN as usize {
        let rule = format!(
            "{observations} observations in the fit window; at least {FIT_OBSERVATIONS_MIN}"
        );
        return Err(Error::range("fit", rule));
    }
    if let Some(test) = spec.test
        && test.from.0 <= spec.fit.to.0
    {
        return Err(Error::range("test", "the test window starts after the fit window ends"));
    }
    Ok(())
}

/// The year of largest realised variance (sum of squared log returns between replayed days)
/// starting in the lookback and ending by the fit's end.
///
/// # Errors
/// Fewer than 250 replayed days in any such year.
fn stressed_period(replay: &Replay, spec: &Spec) -> Result<Span, Error> {
    let start = spec.lookback_start();
    let points: Vec<(i64, f64)> = (replay.days().iter())
        .filter(|d| d.date.0 >= start && d.date.0 <= spec.fit.to.0)
        .filter_map(|d| {
            d.states.iter().find(|(c, _)| *c == spec.underlying).map(|(_, s)| (d.date.0, s.spot))
        })
        .collect();
    // prefix[i]: the squared log returns from the first day to day i.
    let mut prefix = vec![0.0; points.len()];
    for i in 1..points.len() {
        prefix[i] = prefix[i - 1] + (points[i].1 / points[i - 1].1).ln().powi(2);
    }
    let length = STRESSED_PERIOD_DAYS * NANOS_PER_DAY;
    let mut best = None::<(f64, usize, usize)>;
    let mut last = 0;
    for first in 0..points.len() {
        last = last.max(first);
        while last + 1 < points.len() && points[last + 1].0 < points[first].0 + length {
            last += 1;
        }
        let full = points[last].0 - points[first].0 >= length - 2 * NANOS_PER_DAY;
        let sum = prefix[last] - prefix[first];
        if full && last - first >= STRESSED_DAYS_MIN && best.is_none_or(|(b, _, _)| sum > b) {
            best = Some((sum, first, last));
        }
    }
    let Some((_, first, last)) = best else {
        return Err(Error::range("lookback_years", "a replayed year before the fit's end"));
    };
    Ok(Span { from: UnixNanos(points[first].0), to: UnixNanos(points[last].0) })
}

/// The search's state: what it runs on and how many backtests it ran.
struct Fitter<'a> {
    replay: &'a Replay,
    base: &'a Methodology,
    spec: &'a Spec,
    runs: usize,
}

impl Fitter<'_> {
    /// The price ranges, then the volatility scale, that meet `criterion`.
    fn fit(&mut self, criterion: Criterion) -> Result<Parameters, Error> {
        let u = self.spec.underlying;
        let perpetuals = Book::new(vec![perpetual(u, 1.0), perpetual(u, -1.0)])?;
        let (down, up) = self.bisect_sides(&perpetuals, criterion)?;
        let price = |k: u32| f64::from(k) / PRICE_RANGE_STEPS_PER_UNIT;
        let (price_down, price_up) = (price(down), price(up));
        let options = Book::strategies(&VOL_STRATEGIES, &[u])?;
        // The account that failed the last candidate: when nothing is feasible, the one that
        // fails at the largest scale, which the search tries first.
        let mut failing = None;
        let mut feasible = |k: u32| -> Result<bool, Error> {
            let vol_scale = f64::from(k) / VOL_SCALE_STEPS_PER_UNIT;
            let report = self.backtest(&options, Parameters { price_down, price_up, vol_scale })?;
            failing = self.failing(&report, criterion);
            Ok(failing.is_none())
        };
        let Some(k) = smallest(0, VOL_SCALE_STEPS_MAX, &mut feasible)? else {
            return Err(unreachable_target(&failing.unwrap_or_default(), "vol_scale"));
        };
        Ok(Parameters { price_down, price_up, vol_scale: f64::from(k) / VOL_SCALE_STEPS_PER_UNIT })
    }

    /// The smallest steps down and up at which the long and the short perpetual cover, searched
    /// together: one backtest per step of both bisections.
    fn bisect_sides(&mut self, book: &Book, criterion: Criterion) -> Result<(u32, u32), Error> {
        let mut sides = [(1, PRICE_RANGE_STEPS_MAX), (1, PRICE_RANGE_STEPS_MAX)];
        let mut first = true;
        while first || sides.iter().any(|(lo, hi)| lo < hi) {
            let mid = |(lo, hi): (u32, u32)| if first { hi } else { lo + (hi - lo) / 2 };
            let (down, up) = (mid(sides[0]), mid(sides[1]));
            let p = Parameters {
                price_down: f64::from(down) / PRICE_RANGE_STEPS_PER_UNIT,
                price_up: f64::from(up) / PRICE_RANGE_STEPS_PER_UNIT,
                vol_scale: 1.0,
            };
            let report = self.backtest(book, p)?;
            for (side, at) in [(0, down), (1, up)] {
                let ok = self.covers(&report.account_days[side], criterion);
                let (lo, hi) = &mut sides[side];
                match (first, ok) {
                    (true, false) => {
                        let name = &book.accounts()[side].name;
                        return Err(unreachable_target(name, "price range"));
                    }
                    (true, true) => {}
                    (false, true) => *hi = at,
                    (false, false) => *lo = at + 1,
                }
            }
            first = false;
        }
        Ok((sides[0].1, sides[1].1))
    }

    /// The first account of `report` that does not cover under `criterion`.
    fn failing(&self, report: &Report, criterion: Criterion) -> Option<String> {
        (report.account_days.iter().zip(&report.accounts))
            .find(|(days, _)| !self.covers(days, criterion))
            .map(|(_, account)| account.name.clone())
    }

    fn covers(&self, days: &[DayPoint], criterion: Criterion) -> bool {
        let alpha = self.spec.coverage.tail_probability();
        let rate = |span| {
            let s = sample(days, span, self.spec.horizon_days);
            f64::from(s.exceedances) / f64::from(s.observations.max(1))
        };
        match criterion {
            Criterion::Window(span) => {
                let s = sample(days, span, self.spec.horizon_days);
                self.spec.coverage.admits(s.exceedances as usize, s.observations as usize)
            }
            Criterion::Weighted { fit, stressed, weight } => {
                (1.0 - weight) * rate(fit) + weight * rate(stressed) <= alpha
            }
        }
    }

    fn backtest(&mut self, book: &Book, parameters: Parameters) -> Result<Report, Error> {
        let methodology = with_parameters(self.base, self.spec.underlying, parameters)?;
        let engine = Engine::new(methodology)
            .map_err(|e| Error::new("methodology", None, ErrorKind::Margin(e.to_string())))?;
        let config = Config::new(vec![self.spec.horizon_days], Confidence::VAR_BASEL)?;
        self.runs += 1;
        run(self.replay, &engine, book, &config, &mut |_| {})
    }

    /// Every calibration account (the perpetuals, the option strategies and the basis trade)
    /// under `parameters`, in and out of sample.
    fn evaluate(
        &mut self,
        parameters: Parameters,
        stressed: Option<Span>,
    ) -> Result<Vec<AccountResult>, Error> {
        let u = self.spec.underlying;
        let mut accounts = vec![perpetual(u, 1.0), perpetual(u, -1.0)];
        let strategies = VOL_STRATEGIES.iter().chain(&[Strategy::BasisTrade]);
        accounts.extend(strategies.map(|s| AccountSpec {
            name: format!("{}/{u}", s.name()),
            legs: s.legs(u),
            cash: Vec::new(),
        }));
        let book = Book::new(accounts)?;
        let report = self.backtest(&book, parameters)?;
        let h = self.spec.horizon_days;
        let results: Vec<AccountResult> = (report.accounts.iter().zip(&report.account_days))
            .map(|(account, days)| AccountResult {
                name: account.name.clone(),
                in_sample: sample(days, self.spec.fit, h),
                stressed: stressed.map(|s| sample(days, s, h)),
                out_of_sample: self.spec.test.map(|t| sample(days, t, h)),
            })
            .collect();
        if let Some(thin) = results.iter().find(|r| r.in_sample.observations < FIT_OBSERVATIONS_MIN)
        {
            let rule = format!(
                "{} has {} observations in the fit window; at least {FIT_OBSERVATIONS_MIN}",
                thin.name, thin.in_sample.observations
            );
            return Err(Error::range("fit", rule));
        }
        Ok(results)
    }
}

/// Exceedances over observations of one account's days in `span`: an observation counts when
/// its start and its horizon's end lie in the window and the loss was valued.
#[must_use]
pub fn sample(days: &[DayPoint], span: Span, horizon_days: u32) -> Sample {
    let inside = days.iter().filter(|d| observes(span, horizon_days, d.date));
    let (mut exceedances, mut observations) = (0_u32, 0_u32);
    for day in inside {
        if let Some(Some(loss)) = day.losses.first() {
            observations += 1;
            exceedances += u32::from(*loss > day.initial_margin);
        }
    }
    Sample { exceedances, observations }
}

/// Whether an observation starting on `date` lies in `span`: its start and the end of its
/// horizon both inside.
fn observes(span: Span, horizon_days: u32, date: UnixNanos) -> bool {
    date.0 >= span.from.0 && date.0 + i64::from(horizon_days) * NANOS_PER_DAY <= span.to.0
}

/// The smallest `k` in `lo..=hi` with `feasible(k)`, when feasibility only grows with `k`;
/// `None` when even `hi` is not feasible.
fn smallest(
    mut lo: u32,
    mut hi: u32,
    feasible: &mut dyn FnMut(u32) -> Result<bool, Error>,
) -> Result<Option<u32>, Error> {
    if !feasible(hi)? {
        return Ok(None);
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if feasible(mid)? { hi = mid } else { lo = mid + 1 }
    }
    Ok(Some(hi))
}

fn unreachable_target(account: &str, parameter: &str) -> Error {
    let rule = format!("{account} does not reach the target at the largest {parameter} searched");
    Error::new("target", None, ErrorKind::OutOfRange(rule))
}

fn perpetual(underlying: Currency, size: f64) -> AccountSpec {
    let side = if size > 0.0 { "long" } else { "short" };
    AccountSpec {
        name: format!("{side}-perpetual/{underlying}"),
        legs: vec![Leg {
            underlying,
            settlement: Settlement::Inverse,
            contract: Contract::Perpetual,
            size,
        }],
        cash: Vec::new(),
    }
}

/// keccak-256 of a file's bytes, recorded beside a calibration so that its history is named
/// exactly.
#[must_use]
pub fn keccak(bytes: &[u8]) -> [u8; 32] {
    use sha3::{Digest, Keccak256};
    Keccak256::digest(bytes).into()
}
