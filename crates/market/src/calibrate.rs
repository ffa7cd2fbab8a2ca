//! Calibration of raw SVI slices, and of whole surfaces, to quoted implied volatilities.
//!
//! The method is the quasi-explicit calibration of Zeliade Systems ("Quasi-explicit calibration of
//! Gatheral's SVI model", 2009). For a fixed vertex `m` and curvature `σ`, raw SVI is linear in
//! its three other parameters:
//!
//! ```text
//! w(k) = a + p·(k − m) + b·√((k − m)² + σ²),   p = b·ρ
//! ```
//!
//! Zeliade writes the same model with `y = (k − m)/σ`, `d = ρbσ = σp` and `c = bσ`; dividing by
//! σ keeps the normal equations of order `k` when σ is small. The weighted least-squares fit of
//! total variance in `(a, p, b)` is a convex quadratic programme over a polytope:
//!
//! - `|p| ≤ ρ_max·b`: `|ρ| < 1`, and with it `b ≥ 0` (Zeliade's `|d| ≤ c`);
//! - `b + |p| ≤ 2`: Lee's wing bound `b(1 + |ρ|) ≤ 2`, the bound [`SviParams::check`] enforces
//!   (Zeliade's `|d| ≤ 4σ − c` is the weaker Rogers–Tehranchi bound `b(1 + |ρ|) ≤ 4`);
//! - `a + σ(b − |p|) ≥ floor`: positive total variance. Since `√(b² − p²) ≥ b − |p|`, this is a
//!   linear sufficient condition for the SVI minimum `a + σ√(b² − p²)` to stay positive. It is
//!   looser than Zeliade's `a ≥ 0`, which would reject the negative `a` of many steep smiles;
//! - `a ≤ max w`: keeps the search domain bounded (Zeliade's upper bound);
//! - for a surface, `w(k_j) ≥ w_previous(k_j)` at chosen `k_j`: calendar order, also linear.
//!
//! The programme is solved exactly by the dual active-set method of Goldfarb and Idnani (1983):
//! it starts from the unconstrained solution, which it returns when feasible, and otherwise adds
//! and drops constraints until it reaches the optimum on the right face, edge or vertex. The outer
//! problem over `(m, ln σ)` is a bounded Nelder–Mead search started from the best cells of a fixed
//! grid. Nothing here is random and every loop has a fixed bound.
//!
//! The polytope does not exclude butterfly arbitrage, which is non-linear in the parameters. When
//! the best fit has some, the search runs again with every candidate shrunk, if needed, towards
//! the flat smile at its weighted mean variance (ρ fixed, `b` scaled, `a` moved towards the flat
//! level) until Gatheral's density factor is non-negative: a feasible, arbitrage-free point
//! always exists on that segment, so the refit never fails for lack of one.
//!
//! A surface is fitted expiry by expiry. When an independent fit lets total variance fall below
//! the previous slice anywhere on the scan of [`VolSurface::new`], the slice is refitted with
//! `w(k_j) ≥ w_previous(k_j) + 1e-9` as extra linear constraints of the inner programme: first on
//! an even grid over both slices' scan windows, then, round by round, also at every remaining
//! crossing (a cutting-plane method), until the gap is non-negative at every local minimum.

use basics::UnixNanos;
use basics::limits::{
    CALIBRATION_ITERATIONS_MAX, EXPIRIES_MAX, EXPIRY_YEARS_MAX, SURFACE_STRIKES_MAX, VOLATILITY_MAX,
};

use crate::error::finite;
use crate::svi::BUTTERFLY_GRID_POINTS;
use crate::{Error, ErrorKind, SviParams, SviSlice, VolSurface};

/// Fewest quotes a slice calibration accepts: SVI has five parameters.
pub const CALIBRATION_POINTS_MIN: usize = 5;

/// Largest `|ρ|` a fit may reach; [`SviParams::check`] requires `|ρ| < 1` strictly.
const RHO_ABS_MAX: f64 = 0.999;
/// Lee's bound `b(1 + |ρ|) ≤ 2` less a relative margin of 1e-9, so that rounding in the
/// conversion back to `(b, ρ)` cannot push a fit over the bound [`SviParams::check`] enforces.
const WING_SLOPE_FIT_MAX: f64 = 2.0 * (1.0 - 1e-9);
/// Floor on the SVI minimum total variance, as a fraction of the smallest quoted total variance.
const VARIANCE_FLOOR_FRACTION: f64 = 1e-6;
/// How far beyond the quoted log-moneyness range the vertex `m` may go, in quoted spans.
const VERTEX_OUTSIDE_SPANS: f64 = 1.0;
/// Bounds on σ, as fractions of the quoted log-moneyness span.
const SIGMA_SPAN_FRACTION_MIN: f64 = 1e-3;
const SIGMA_SPAN_FRACTION_MAX: f64 = 4.0;
/// Starting grid of the outer search: vertices spread evenly over the quoted range, σ as
/// fractions of its span. Nelder–Mead runs from the best `START_RUNS` cells.
const START_VERTEX_POINTS: usize = 7;
const START_SIGMA_FRACTIONS: [f64; 5] = [0.01, 0.04, 0.15, 0.5, 1.5];
const START_RUNS: usize = 3;
/// First simplex: a step of this fraction of the span in `m` and of this much in `ln σ`. The
/// restart after convergence uses steps `SIMPLEX_RESTART_FRACTION` times smaller.
const SIMPLEX_STEP_VERTEX_FRACTION: f64 = 0.1;
const SIMPLEX_STEP_LOG_SIGMA: f64 = 0.5;
const SIMPLEX_RESTART_FRACTION: f64 = 0.01;
/// Nelder–Mead stops when the simplex is this small in both `m` and `ln σ`, or when its values
/// agree to `SIMPLEX_SPREAD_TOLERANCE` (relative) and it is below `SIMPLEX_DIAMETER_LOOSE`.
const SIMPLEX_DIAMETER_TOLERANCE: f64 = 1e-10;
const SIMPLEX_DIAMETER_LOOSE: f64 = 1e-6;
const SIMPLEX_SPREAD_TOLERANCE: f64 = 1e-13;
/// Steps of the active-set QP; each adds or drops one constraint, and three variables need few.
const QP_STEPS_MAX: usize = 100;
/// Constraint violation tolerated by the QP, relative to the constraint's scale.
const QP_FEASIBILITY_TOLERANCE: f64 = 1e-12;
/// Relative size below which a pivot or curvature counts as zero.
const PIVOT_TOLERANCE: f64 = 1e-14;
/// Butterfly repair during the search: a coarse scan of `g` over the arbitrage window, which must
/// stay above a small margin, and the bisection steps along the segment to the flat smile.
const BUTTERFLY_COARSE_POINTS: usize = 201;
const BUTTERFLY_COARSE_MARGIN: f64 = 1e-7;
const BUTTERFLY_BISECTION_STEPS: usize = 24;
/// The final repair bisects with the scan of [`SviParams::check`], to 2^-40.
const BUTTERFLY_FINAL_BISECTION_STEPS: usize = 40;
/// Calendar refit: points of the first constraint grid, total-variance margin above the previous
/// slice, and the cutting-plane rounds, each of which adds every remaining crossing as a new
/// constraint and refits.
const CALENDAR_GRID_POINTS: usize = 101;
const CALENDAR_MARGIN: f64 = 1e-9;
const CALENDAR_ROUNDS_MAX: usize = 16;
/// Golden-section steps that locate a calendar dip between two scan points: 0.618^60 of the scan
/// step is far below any resolution that matters.
const GOLDEN_SECTION_STEPS: usize = 60;

/// One quoted implied volatility.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotePoint {
    /// Strike, in the units of the forward.
    pub strike: f64,
    /// Black implied volatility as a decimal (0.6 = 60 %).
    pub implied_vol: f64,
    /// Weight of the squared total-variance error (> 0). Vega-type weights are the caller's choice.
    pub weight: f64,
}

/// The quotes of one expiry, for [`calibrate_surface`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpiryQuotes<'a> {
    /// Expiry instant.
    pub expiry: UnixNanos,
    /// ACT/365 years from the valuation time to the expiry.
    pub years: f64,
    /// Forward of the expiry.
    pub forward: f64,
    /// The quotes.
    pub points: &'a [QuotePoint],
}

/// How well a calibrated slice fits its quotes, and what the calibration had to enforce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitDiagnostics {
    /// Quotes the fit used: all of them, since the calibration drops no outliers.
    pub points_used: usize,
    /// Root-mean-square implied-volatility error (decimal), weighted by the quote weights.
    pub vol_error_rmse: f64,
    /// Largest absolute implied-volatility error.
    pub vol_error_max: f64,
    /// Strike of the largest error.
    pub vol_error_max_strike: f64,
    /// Nelder–Mead iterations of the outer searches: every start, phase and refit together.
    pub iterations: u64,
    /// Smallest Gatheral density factor `g(k)` on the arbitrage scan of [`SviParams::check`].
    pub butterfly_density_min: f64,
    /// Whether the search that produced the slice met its tolerance before the iteration limit.
    pub converged: bool,
    /// Whether the best unconstrained fit had butterfly arbitrage, so the slice was refitted with
    /// the density constraint (its misfit is then larger than the quotes alone would allow).
    pub butterfly_enforced: bool,
    /// Whether the independent fit crossed the previous expiry's total variance, so the slice was
    /// refitted with the calendar constraint.
    pub calendar_enforced: bool,
}

/// A calibrated slice and its diagnostics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// The validated slice: it passes [`SviParams::check`].
    pub slice: SviSlice,
    /// How it fits.
    pub diagnostics: FitDiagnostics,
}

/// Fits a raw SVI slice to quoted implied volatilities, free of butterfly arbitrage.
///
/// The fit minimises the weighted squared error in total variance `σ_imp²·years`, in forward
/// log-moneyness `ln(strike/forward)`.
///
/// # Errors
/// `NotFinite`/`OutOfRange` for `years`, `forward` or a quote (`points[3].implied_vol`), `Missing`
/// below [`CALIBRATION_POINTS_MIN`] quotes, `TooMany` past `SURFACE_STRIKES_MAX`, `OutOfRange` for
/// a repeated strike, `Calibration` when no arbitrage-free fit is found.
pub fn calibrate(
    expiry: UnixNanos,
    years: f64,
    forward: f64,
    points: &[QuotePoint],
) -> Result<Calibration, Error> {
    let samples = validate(years, forward, points)?;
    let fit = fit_slice(&samples, &[])?;
    let slice = SviSlice::new(expiry, years, forward, fit.params)?;
    Ok(Calibration { slice, diagnostics: diagnose(&slice, points, &fit, false) })
}

/// Fits every expiry in order, each free of butterfly arbitrage and none crossing the one
/// before: when an independent fit would let total variance fall from the previous expiry, that
/// slice is refitted with `w(k) ≥ w_previous(k)` imposed on the arbitrage scan window (reported by
/// [`FitDiagnostics::calendar_enforced`]). The result passes [`VolSurface::new`].
///
/// Returns the surface and one [`FitDiagnostics`] per expiry, in input order.
///
/// # Errors
/// As [`calibrate`], located by `expiries[i]`; `TooMany` past `EXPIRIES_MAX`; `OutOfRange` when
/// the expiries are not in strictly increasing order of `years` and `expiry`; `Calibration` when
/// no calendar-free fit is found.
pub fn calibrate_surface(
    expiries: &[ExpiryQuotes<'_>],
) -> Result<(VolSurface, Vec<FitDiagnostics>), Error> {
    if expiries.len() > EXPIRIES_MAX {
        return Err(Error::new("expiries", ErrorKind::TooMany { limit: EXPIRIES_MAX }));
    }
    let mut slices: Vec<SviSlice> = Vec::with_capacity(expiries.len());
    let mut diagnostics = Vec::with_capacity(expiries.len());
    for (index, quotes) in expiries.iter().enumerate() {
        let field = format!("expiries[{index}]");
        let calibration = match slices.last() {
            None => calibrate(quotes.expiry, quotes.years, quotes.forward, quotes.points),
            Some(previous) => calibrate_after(previous, quotes),
        }
        .map_err(|e| e.within(&field))?;
        slices.push(calibration.slice);
        diagnostics.push(calibration.diagnostics);
    }
    let surface = VolSurface::new(slices)?;
    assert!(
        surface.slices().len() == diagnostics.len(),
        "Invariant: one diagnostics record per calibrated slice"
    );
    Ok((surface, diagnostics))
}

/// Calibrates `quotes` so that its slice does not cross `previous`.
fn calibrate_after(previous: &SviSlice, quotes: &ExpiryQuotes<'_>) -> Result<Calibration, Error> {
    let (years, forward) = (finite("years", quotes.years)?, finite("forward", quotes.forward)?);
    if years <= previous.years() || quotes.expiry <= previous.expiry() {
        let rule = format!(
            "expiries must be in increasing order: {years} years ({:?}) follows {} years ({:?})",
            quotes.expiry,
            previous.years(),
            previous.expiry()
        );
        return Err(Error::range("years", rule));
    }
    let samples = validate(years, forward, quotes.points)?;
    let independent = fit_slice(&samples, &[])?;
    let slice = SviSlice::new(quotes.expiry, years, forward, independent.params)?;
    let mut crossings = calendar_crossings(previous, &slice)?;
    if crossings.is_empty() {
        let diagnostics = diagnose(&slice, quotes.points, &independent, false);
        return Ok(Calibration { slice, diagnostics });
    }
    let mut cuts = calendar_grid(previous, &slice, &samples);
    let mut iterations = independent.iterations;
    for _ in 0..CALENDAR_ROUNDS_MAX {
        cuts.append(&mut crossings);
        let floors: Vec<(f64, f64)> = cuts
            .iter()
            .map(|&k| (k, previous.params().total_variance(k) + CALENDAR_MARGIN))
            .collect();
        let mut fit = fit_slice(&samples, &floors)?;
        iterations += fit.iterations;
        fit.iterations = iterations;
        let slice = SviSlice::new(quotes.expiry, years, forward, fit.params)?;
        crossings = calendar_crossings(previous, &slice)?;
        if crossings.is_empty() {
            return Ok(Calibration {
                slice,
                diagnostics: diagnose(&slice, quotes.points, &fit, true),
            });
        }
    }
    let why = format!(
        "total variance still falls below the previous expiry after {CALENDAR_ROUNDS_MAX} refits"
    );
    Err(Error::new("points", ErrorKind::Calibration(why)))
}

/// One validated quote in fitting coordinates.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Forward log-moneyness.
    k: f64,
    /// Quoted total variance.
    w: f64,
    /// Weight, divided by the largest weight.
    weight: f64,
}

/// Checks the inputs and converts the quotes to fitting coordinates.
fn validate(years: f64, forward: f64, points: &[QuotePoint]) -> Result<Vec<Sample>, Error> {
    if finite("years", years)? <= 0.0 || years > EXPIRY_YEARS_MAX {
        let rule = format!("must be in (0, {EXPIRY_YEARS_MAX}], got {years}");
        return Err(Error::range("years", rule));
    }
    if finite("forward", forward)? <= 0.0 {
        return Err(Error::range("forward", format!("must be > 0, got {forward}")));
    }
    if points.len() < CALIBRATION_POINTS_MIN {
        let what = format!("at least {CALIBRATION_POINTS_MIN} quotes, got {}", points.len());
        return Err(Error::new("points", ErrorKind::Missing(what)));
    }
    if points.len() > SURFACE_STRIKES_MAX {
        return Err(Error::new("points", ErrorKind::TooMany { limit: SURFACE_STRIKES_MAX }));
    }
    for (index, point) in points.iter().enumerate() {
        validate_point(point).map_err(|e| e.within(&format!("points[{index}]")))?;
    }
    // Normalising by the largest weight keeps every weight in (0, 1] without overflow.
    let weight_max = points.iter().map(|p| p.weight).fold(0.0, f64::max);
    let samples: Vec<Sample> = points
        .iter()
        .map(|p| Sample {
            k: (p.strike / forward).ln(),
            w: p.implied_vol * p.implied_vol * years,
            weight: p.weight / weight_max,
        })
        .collect();
    if let Some(index) =
        samples.iter().position(|s| !(s.k.is_finite() && s.w > 0.0 && s.w.is_finite()))
    {
        let rule = "gives a log-moneyness or total variance that is not a positive finite number";
        return Err(Error::range(format!("points[{index}]"), rule));
    }
    check_distinct(points, &samples)?;
    Ok(samples)
}

/// Rejects two quotes at one strike, or at strikes so close that their log-moneyness is equal.
fn check_distinct(points: &[QuotePoint], samples: &[Sample]) -> Result<(), Error> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&i, &j| points[i].strike.total_cmp(&points[j].strike).then(i.cmp(&j)));
    for pair in order.windows(2) {
        let (first, second) = (pair[0], pair[1]);
        if samples[first].k == samples[second].k {
            let strike = points[second].strike;
            let rule = if points[first].strike == strike {
                format!("repeats the strike {strike} of points[{first}]")
            } else {
                format!("strike {strike} has the log-moneyness of points[{first}]")
            };
            return Err(Error::range(format!("points[{second}].strike"), rule));
        }
    }
    Ok(())
}

fn validate_point(point: &QuotePoint) -> Result<(), Error> {
    if finite("strike", point.strike)? <= 0.0 {
        return Err(Error::range("strike", format!("must be > 0, got {}", point.strike)));
    }
    let vol = finite("implied_vol", point.implied_vol)?;
    if vol <= 0.0 || vol > VOLATILITY_MAX {
        let rule = format!("must be in (0, {VOLATILITY_MAX}], got {vol}");
        return Err(Error::range("implied_vol", rule));
    }
    if finite("weight", point.weight)? <= 0.0 {
        return Err(Error::range("weight", format!("must be > 0, got {}", point.weight)));
    }
    Ok(())
}

/// The outcome of one slice fit, before it becomes an [`SviSlice`].
#[derive(Debug, Clone, Copy)]
struct Fit {
    params: SviParams,
    iterations: u64,
    converged: bool,
    butterfly_enforced: bool,
}

/// Fits one slice above the calendar `floors` (pairs of `k` and least total variance): first
/// without the butterfly constraint, then, if the best fit has butterfly arbitrage, with it.
fn fit_slice(samples: &[Sample], floors: &[(f64, f64)]) -> Result<Fit, Error> {
    let mut problem = Problem::new(samples, floors);
    let free = search(&problem, None)?;
    let params = problem.params_at(free.point)?;
    if params.check().is_ok() {
        let (iterations, converged) = (free.iterations, free.converged);
        return Ok(Fit { params, iterations, converged, butterfly_enforced: false });
    }
    problem.enforce_butterfly = true;
    let repaired = search(&problem, Some(free.point))?;
    let mut params = problem.params_at(repaired.point)?;
    if density_min(&params, BUTTERFLY_GRID_POINTS) < 0.0 {
        // The coarse scan of the search can miss a dip between its points. The final repair uses
        // the scan of `SviParams::check`, without its rounding tolerance: the density must be
        // non-negative, not merely above -1e-9.
        let exact = |p: &SviParams| density_min(p, BUTTERFLY_GRID_POINTS) >= 0.0;
        params =
            shrink_to_flat(&params, problem.level_flat, BUTTERFLY_FINAL_BISECTION_STEPS, exact);
    }
    params.check().map_err(|e| {
        let why = format!("no arbitrage-free SVI fit found: {e}");
        Error::new("points", ErrorKind::Calibration(why))
    })?;
    let iterations = free.iterations + repaired.iterations;
    Ok(Fit { params, iterations, converged: repaired.converged, butterfly_enforced: true })
}

/// One half-space `normal · x ≥ bound` in the inner variables `x = (a, p, b)`.
#[derive(Debug, Clone, Copy)]
struct Halfspace {
    normal: Vec3,
    bound: f64,
}

type Vec3 = [f64; 3];
type Mat3 = [[f64; 3]; 3];

/// The reduced problem of one slice: everything the objective at `(m, ln σ)` needs.
struct Problem<'a> {
    samples: &'a [Sample],
    floors: &'a [(f64, f64)],
    /// Least SVI minimum total variance.
    variance_floor: f64,
    /// Upper bound on `a`.
    level_max: f64,
    /// Level of the flat smile that butterfly repairs shrink towards; it satisfies every
    /// constraint, calendar floors included.
    level_flat: f64,
    vertex_bounds: (f64, f64),
    log_sigma_bounds: (f64, f64),
    k_min: f64,
    span: f64,
    enforce_butterfly: bool,
}

impl<'a> Problem<'a> {
    fn new(samples: &'a [Sample], floors: &'a [(f64, f64)]) -> Problem<'a> {
        let fold = |init: f64, pick: fn(f64, f64) -> f64, value: fn(&Sample) -> f64| {
            samples.iter().map(value).fold(init, pick)
        };
        let k_min = fold(f64::INFINITY, f64::min, |s| s.k);
        let k_max = fold(f64::NEG_INFINITY, f64::max, |s| s.k);
        let w_min = fold(f64::INFINITY, f64::min, |s| s.w);
        let w_max = fold(f64::NEG_INFINITY, f64::max, |s| s.w);
        let span = k_max - k_min;
        assert!(span > 0.0, "Invariant: validated quotes have distinct strikes");
        let floor_max = floors.iter().map(|f| f.1).fold(f64::NEG_INFINITY, f64::max);
        let level_max = w_max.max(floor_max);
        let weight_sum: f64 = samples.iter().map(|s| s.weight).sum();
        let w_mean = samples.iter().map(|s| s.weight * s.w).sum::<f64>() / weight_sum;
        let outside = VERTEX_OUTSIDE_SPANS * span;
        Problem {
            samples,
            floors,
            variance_floor: VARIANCE_FLOOR_FRACTION * w_min,
            level_max,
            level_flat: w_mean.max(floor_max).min(level_max),
            vertex_bounds: (k_min - outside, k_max + outside),
            log_sigma_bounds: (
                (SIGMA_SPAN_FRACTION_MIN * span).ln(),
                (SIGMA_SPAN_FRACTION_MAX * span).ln(),
            ),
            k_min,
            span,
            enforce_butterfly: false,
        }
    }

    /// Weighted sum of squared total-variance errors at `(m, ln σ)` and the parameters that reach
    /// it; infinite when the constraints cannot be met there.
    fn evaluate(&self, point: [f64; 2], work: &mut Vec<Halfspace>) -> (f64, Option<SviParams>) {
        let (m, sigma) = (point[0], point[1].exp());
        let (h, q) = self.normal_equations(m, sigma);
        self.constraints(m, sigma, work);
        let Some(x) = solve_qp(&h, &q, work) else { return (f64::INFINITY, None) };
        let b = x[2].max(0.0);
        let rho = if b > 0.0 { (x[1] / b).clamp(-RHO_ABS_MAX, RHO_ABS_MAX) } else { 0.0 };
        let mut params = SviParams { a: x[0], b, rho, m, sigma };
        if self.enforce_butterfly
            && density_min(&params, BUTTERFLY_COARSE_POINTS) < BUTTERFLY_COARSE_MARGIN
        {
            let coarse =
                |p: &SviParams| density_min(p, BUTTERFLY_COARSE_POINTS) >= BUTTERFLY_COARSE_MARGIN;
            params = shrink_to_flat(&params, self.level_flat, BUTTERFLY_BISECTION_STEPS, coarse);
        }
        let value = self.squared_error(&params);
        (if value.is_finite() { value } else { f64::INFINITY }, Some(params))
    }

    /// The parameters at a point the search found.
    fn params_at(&self, point: [f64; 2]) -> Result<SviParams, Error> {
        let mut work = Vec::new();
        self.evaluate(point, &mut work).1.ok_or_else(|| {
            let why = "the constraints admit no SVI parameters at the best (m, sigma)".to_owned();
            Error::new("points", ErrorKind::Calibration(why))
        })
    }

    fn squared_error(&self, params: &SviParams) -> f64 {
        self.samples
            .iter()
            .map(|s| {
                let error = params.total_variance(s.k) - s.w;
                s.weight * error * error
            })
            .sum()
    }

    /// `H` and `q` of the objective `½xᵀHx − qᵀx` (plus a constant), `x = (a, p, b)`.
    fn normal_equations(&self, m: f64, sigma: f64) -> (Mat3, Vec3) {
        let mut h = [[0.0; 3]; 3];
        let mut q = [0.0; 3];
        for sample in self.samples {
            let x = sample.k - m;
            let basis = [1.0, x, (x * x + sigma * sigma).sqrt()];
            for (row, &left) in h.iter_mut().zip(&basis) {
                for (cell, &right) in row.iter_mut().zip(&basis) {
                    *cell += sample.weight * left * right;
                }
            }
            for (cell, &value) in q.iter_mut().zip(&basis) {
                *cell += sample.weight * sample.w * value;
            }
        }
        (h, q)
    }

    /// The linear constraints at `(m, σ)`; see the module documentation.
    fn constraints(&self, m: f64, sigma: f64, out: &mut Vec<Halfspace>) {
        let slope = WING_SLOPE_FIT_MAX;
        let floor = self.variance_floor;
        out.clear();
        out.extend([
            Halfspace { normal: [0.0, -1.0, RHO_ABS_MAX], bound: 0.0 },
            Halfspace { normal: [0.0, 1.0, RHO_ABS_MAX], bound: 0.0 },
            Halfspace { normal: [0.0, -1.0, -1.0], bound: -slope },
            Halfspace { normal: [0.0, 1.0, -1.0], bound: -slope },
            Halfspace { normal: [1.0, -sigma, sigma], bound: floor },
            Halfspace { normal: [1.0, sigma, sigma], bound: floor },
            Halfspace { normal: [-1.0, 0.0, 0.0], bound: -self.level_max },
        ]);
        out.extend(self.floors.iter().map(|&(k, least)| {
            let x = k - m;
            Halfspace { normal: [1.0, x, (x * x + sigma * sigma).sqrt()], bound: least }
        }));
    }

    fn clamp(&self, point: [f64; 2]) -> [f64; 2] {
        [
            point[0].clamp(self.vertex_bounds.0, self.vertex_bounds.1),
            point[1].clamp(self.log_sigma_bounds.0, self.log_sigma_bounds.1),
        ]
    }

    /// The best cells of the starting grid, best first, after `first` when given.
    fn starts(&self, first: Option<[f64; 2]>, work: &mut Vec<Halfspace>) -> Vec<[f64; 2]> {
        let mut cells: Vec<(f64, [f64; 2])> = Vec::new();
        for i in 0..START_VERTEX_POINTS {
            let m = self.k_min + self.span * i as f64 / (START_VERTEX_POINTS - 1) as f64;
            for fraction in START_SIGMA_FRACTIONS {
                let point = self.clamp([m, (fraction * self.span).ln()]);
                let (value, _) = self.evaluate(point, work);
                if value.is_finite() {
                    cells.push((value, point));
                }
            }
        }
        // A stable sort keeps grid order among equal values, so the choice is deterministic.
        cells.sort_by(|x, y| x.0.total_cmp(&y.0));
        first.into_iter().chain(cells.iter().take(START_RUNS).map(|c| c.1)).collect()
    }
}

/// The result of an outer search.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    point: [f64; 2],
    value: f64,
    iterations: u64,
    converged: bool,
}

/// Minimises the problem's objective over `(m, ln σ)`: Nelder–Mead from each start, each run
/// followed by one restart with a fresh small simplex (a collapsed simplex is Nelder–Mead's known
/// failure), all within `CALIBRATION_ITERATIONS_MAX` iterations.
fn search(problem: &Problem<'_>, first: Option<[f64; 2]>) -> Result<Outcome, Error> {
    let mut work = Vec::new();
    let starts = problem.starts(first, &mut work);
    let mut best: Option<Outcome> = None;
    let mut iterations = 0;
    let step = [SIMPLEX_STEP_VERTEX_FRACTION * problem.span, SIMPLEX_STEP_LOG_SIGMA];
    let small = step.map(|s| s * SIMPLEX_RESTART_FRACTION);
    for start in starts {
        // One run from the start, then one restart from where it ended.
        let (mut from, mut size) = (start, step);
        for _ in 0..2 {
            let budget = CALIBRATION_ITERATIONS_MAX - iterations;
            let run = nelder_mead(problem, from, size, budget, &mut work);
            iterations += run.iterations;
            if best.is_none_or(|b| run.value < b.value) {
                best = Some(run);
            }
            (from, size) = (run.point, small);
        }
    }
    let Some(best) = best.filter(|b| b.value.is_finite()) else {
        let why = "no (m, sigma) on the starting grid admits parameters within the constraints";
        return Err(Error::new("points", ErrorKind::Calibration(why.to_owned())));
    };
    assert!(iterations <= CALIBRATION_ITERATIONS_MAX, "Invariant: the search stays in budget");
    Ok(Outcome { iterations, ..best })
}

type Vertex = ([f64; 2], f64);

/// Nelder–Mead (reflection 1, expansion 2, contraction ½, shrink ½) inside the problem's box.
fn nelder_mead(
    problem: &Problem<'_>,
    start: [f64; 2],
    step: [f64; 2],
    budget: u64,
    work: &mut Vec<Halfspace>,
) -> Outcome {
    let mut evaluate = |point: [f64; 2]| {
        let point = problem.clamp(point);
        (point, problem.evaluate(point, work).0)
    };
    let start = problem.clamp(start);
    let mut simplex = [evaluate(start); 3];
    for axis in 0..2 {
        let mut point = start;
        point[axis] += step[axis];
        if problem.clamp(point)[axis] == start[axis] {
            point[axis] = start[axis] - step[axis];
        }
        simplex[axis + 1] = evaluate(point);
    }
    let mut iterations = 0;
    let mut converged = false;
    while iterations < budget {
        simplex.sort_by(|x, y| x.1.total_cmp(&y.1));
        if simplex_converged(&simplex) {
            converged = true;
            break;
        }
        iterations += 1;
        let [best, second, worst] = simplex;
        let centroid = [0.5 * (best.0[0] + second.0[0]), 0.5 * (best.0[1] + second.0[1])];
        let along = |t: f64| {
            [
                centroid[0] + t * (worst.0[0] - centroid[0]),
                centroid[1] + t * (worst.0[1] - centroid[1]),
            ]
        };
        let reflected = evaluate(along(-1.0));
        if reflected.1 < best.1 {
            let expanded = evaluate(along(-2.0));
            simplex[2] = if expanded.1 < reflected.1 { expanded } else { reflected };
        } else if reflected.1 < second.1 {
            simplex[2] = reflected;
        } else {
            let outside = reflected.1 < worst.1;
            let contracted = evaluate(along(if outside { -0.5 } else { 0.5 }));
            if contracted.1 < reflected.1.min(worst.1) {
                simplex[2] = contracted;
            } else {
                for vertex in &mut simplex[1..] {
                    let point = [0.5 * (best.0[0] + vertex.0[0]), 0.5 * (best.0[1] + vertex.0[1])];
                    *vertex = evaluate(point);
                }
            }
        }
    }
    simplex.sort_by(|x, y| x.1.total_cmp(&y.1));
    Outcome { point: simplex[0].0, value: simplex[0].1, iterations, converged }
}

/// Whether a sorted simplex is small enough to stop.
fn simplex_converged(simplex: &[Vertex; 3]) -> bool {
    let best = simplex[0];
    let diameter = simplex[1..]
        .iter()
        .flat_map(|v| [(v.0[0] - best.0[0]).abs(), (v.0[1] - best.0[1]).abs()])
        .fold(0.0, f64::max);
    let spread = simplex[2].1 - best.1;
    let flat = spread.is_finite() && spread <= SIMPLEX_SPREAD_TOLERANCE * best.1.abs();
    diameter <= SIMPLEX_DIAMETER_TOLERANCE || (flat && diameter <= SIMPLEX_DIAMETER_LOOSE)
}

/// Moves `params` along the segment to the flat smile at `level` (ρ, m and σ fixed, `b` scaled,
/// `a` interpolated) and returns the point nearest `params` that `ok` accepts, by bisection. The
/// flat end is always accepted: its density factor is 1. The segment stays inside the linear
/// constraints because both ends satisfy them.
fn shrink_to_flat(
    params: &SviParams,
    level: f64,
    steps: usize,
    ok: impl Fn(&SviParams) -> bool,
) -> SviParams {
    let at = |t: f64| SviParams { a: level + t * (params.a - level), b: t * params.b, ..*params };
    let (mut good, mut bad) = (0.0, 1.0);
    for _ in 0..steps {
        let middle = 0.5 * (good + bad);
        if ok(&at(middle)) {
            good = middle;
        } else {
            bad = middle;
        }
    }
    at(good)
}

/// The smallest density factor on `points` points of the arbitrage scan window; `-1` where total
/// variance is not positive, as in [`SviParams::worst_butterfly`].
fn density_min(params: &SviParams, points: usize) -> f64 {
    let (low, high) = params.scan_window();
    let step = (high - low) / (points - 1) as f64;
    (0..points)
        .map(|i| {
            let k = low + step * i as f64;
            let g = params.butterfly_density(k);
            if params.total_variance(k) > 0.0 && g.is_finite() { g } else { -1.0 }
        })
        .fold(f64::INFINITY, f64::min)
}

/// Minimises `½xᵀHx − qᵀx` subject to `normal·x ≥ bound` for every half-space, by the dual
/// active-set method of Goldfarb and Idnani: start at the unconstrained minimum, then repeatedly
/// take the most violated constraint and move along the direction that satisfies it while keeping
/// the active ones, dropping an active constraint whenever its multiplier would turn negative.
/// Returns `None` when `H` is singular or the constraints are inconsistent.
fn solve_qp(h: &Mat3, q: &Vec3, constraints: &[Halfspace]) -> Option<Vec3> {
    let h_inverse = invert(h)?;
    let mut x = mat_vec(&h_inverse, q);
    let mut active = ActiveSet::default();
    let mut adding: Option<(usize, f64)> = None;
    for _ in 0..QP_STEPS_MAX {
        let (p, multiplier) = match adding {
            Some(state) => state,
            None => match most_violated(constraints, &x, &active) {
                Some(p) => (p, 0.0),
                None => return Some(x),
            },
        };
        let normal = constraints[p].normal;
        let (z, r, reference) = step_directions(&h_inverse, constraints, &active, &normal)?;
        let curvature = dot(&normal, &z);
        let full = if active.len < 3 && curvature > PIVOT_TOLERANCE * reference {
            (constraints[p].bound - dot(&normal, &x)) / curvature
        } else {
            f64::INFINITY
        };
        let (partial, drop) = active.ratio_test(&r);
        let t = full.min(partial);
        if !t.is_finite() {
            return None;
        }
        for (value, direction) in x.iter_mut().zip(&z) {
            *value += t * direction;
        }
        active.shift(&r, t);
        if full <= partial {
            active.push(p, multiplier + t);
            adding = None;
        } else {
            active.remove(drop);
            adding = Some((p, multiplier + t));
        }
    }
    None
}

/// The active constraints of the QP (at most three, linearly independent) and their multipliers.
#[derive(Debug, Default)]
struct ActiveSet {
    index: [usize; 3],
    multiplier: [f64; 3],
    len: usize,
}

impl ActiveSet {
    fn contains(&self, i: usize) -> bool {
        self.index[..self.len].contains(&i)
    }

    fn push(&mut self, i: usize, multiplier: f64) {
        assert!(self.len < 3, "Invariant: at most three independent constraints are active");
        self.index[self.len] = i;
        self.multiplier[self.len] = multiplier;
        self.len += 1;
    }

    fn remove(&mut self, slot: usize) {
        assert!(slot < self.len, "Invariant: only an active constraint is dropped");
        for j in slot..self.len - 1 {
            self.index[j] = self.index[j + 1];
            self.multiplier[j] = self.multiplier[j + 1];
        }
        self.len -= 1;
    }

    fn shift(&mut self, r: &Vec3, t: f64) {
        for (multiplier, change) in self.multiplier[..self.len].iter_mut().zip(r) {
            *multiplier = (*multiplier - t * change).max(0.0);
        }
    }

    /// The largest step before an active multiplier reaches zero, and its slot.
    fn ratio_test(&self, r: &Vec3) -> (f64, usize) {
        let scale = r[..self.len].iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let mut best = (f64::INFINITY, 0);
        for (slot, (&multiplier, &change)) in
            self.multiplier.iter().zip(r).take(self.len).enumerate()
        {
            if change > PIVOT_TOLERANCE * scale && multiplier / change < best.0 {
                best = (multiplier / change, slot);
            }
        }
        best
    }
}

/// The inactive constraint violated most (relative to its normal), if any beyond tolerance.
fn most_violated(constraints: &[Halfspace], x: &Vec3, active: &ActiveSet) -> Option<usize> {
    let mut worst: Option<(usize, f64)> = None;
    for (i, c) in constraints.iter().enumerate() {
        let norm = dot(&c.normal, &c.normal).sqrt();
        let slack = (dot(&c.normal, x) - c.bound) / norm;
        let tolerance = QP_FEASIBILITY_TOLERANCE * (1.0 + c.bound.abs() / norm);
        if slack < -tolerance && !active.contains(i) && worst.is_none_or(|(_, s)| slack < s) {
            worst = Some((i, slack));
        }
    }
    worst.map(|(i, _)| i)
}

/// For adding the constraint with `normal`: the primal direction `z = H⁻¹(n − N r)`, the change
/// `−r` of the active multipliers per unit of the new one, `r = (NᵀH⁻¹N)⁻¹NᵀH⁻¹n`, and `nᵀH⁻¹n`
/// as the scale of the curvature `nᵀz`.
fn step_directions(
    h_inverse: &Mat3,
    constraints: &[Halfspace],
    active: &ActiveSet,
    normal: &Vec3,
) -> Option<(Vec3, Vec3, f64)> {
    let hn = mat_vec(h_inverse, normal);
    let mut columns = [[0.0; 3]; 3];
    let mut gram = [[0.0; 3]; 3];
    let mut rhs = [0.0; 3];
    for slot in 0..active.len {
        columns[slot] = mat_vec(h_inverse, &constraints[active.index[slot]].normal);
    }
    for slot in 0..active.len {
        let row = &constraints[active.index[slot]].normal;
        rhs[slot] = dot(row, &hn);
        for (cell, column) in gram[slot].iter_mut().zip(&columns).take(active.len) {
            *cell = dot(row, column);
        }
    }
    let r = solve_linear(&gram, &rhs, active.len)?;
    let mut z = hn;
    for (column, &weight) in columns.iter().zip(&r).take(active.len) {
        for (value, &entry) in z.iter_mut().zip(column) {
            *value -= weight * entry;
        }
    }
    Some((z, r, dot(normal, &hn)))
}

fn dot(x: &Vec3, y: &Vec3) -> f64 {
    x[0] * y[0] + x[1] * y[1] + x[2] * y[2]
}

fn mat_vec(m: &Mat3, v: &Vec3) -> Vec3 {
    [dot(&m[0], v), dot(&m[1], v), dot(&m[2], v)]
}

/// The inverse of a 3×3 matrix, column by column.
fn invert(m: &Mat3) -> Option<Mat3> {
    let mut inverse = [[0.0; 3]; 3];
    for column in 0..3 {
        let mut unit = [0.0; 3];
        unit[column] = 1.0;
        let solution = solve_linear(m, &unit, 3)?;
        for (row, value) in inverse.iter_mut().zip(solution) {
            row[column] = value;
        }
    }
    Some(inverse)
}

/// Solves the leading `n × n` block (`n ≤ 3`) of `m x = rhs` by Gaussian elimination with partial
/// pivoting; `None` when a pivot is negligible against the matrix's largest entry.
fn solve_linear(m: &Mat3, rhs: &Vec3, n: usize) -> Option<Vec3> {
    assert!(n <= 3, "Invariant: the QP has three variables");
    let mut a = *m;
    let mut b = *rhs;
    let scale =
        a.iter().take(n).flat_map(|row| row[..n].iter()).fold(0.0_f64, |s, v| s.max(v.abs()));
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        let size = a[pivot][col].abs();
        if size.is_nan() || size <= PIVOT_TOLERANCE * scale {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (pivot_row, pivot_rhs) = (a[col], b[col]);
        for (row, rhs) in a.iter_mut().zip(b.iter_mut()).take(n).skip(col + 1) {
            let factor = row[col] / pivot_row[col];
            for (cell, &above) in row.iter_mut().zip(&pivot_row).take(n).skip(col) {
                *cell -= factor * above;
            }
            *rhs -= factor * pivot_rhs;
        }
    }
    let mut x = [0.0; 3];
    for row in (0..n).rev() {
        let tail: f64 = (row + 1..n).map(|j| a[row][j] * x[j]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    Some(x)
}

/// Evenly spaced `k` over the arbitrage scan windows of both slices and the quoted range: the
/// first calendar constraints of a refit.
fn calendar_grid(previous: &SviSlice, independent: &SviSlice, samples: &[Sample]) -> Vec<f64> {
    let (low_a, high_a) = previous.params().scan_window();
    let (low_b, high_b) = independent.params().scan_window();
    let low = samples.iter().map(|s| s.k).fold(low_a.min(low_b), f64::min);
    let high = samples.iter().map(|s| s.k).fold(high_a.max(high_b), f64::max);
    let step = (high - low) / (CALENDAR_GRID_POINTS - 1) as f64;
    (0..CALENDAR_GRID_POINTS).map(|i| low + step * i as f64).collect()
}

/// Where total variance falls from `near` to `far`, empty when it never does. The gap
/// `w_far − w_near` is scanned on the grid [`VolSurface::new`] uses, and each local minimum is
/// refined by golden-section search between its grid neighbours: a refit touches the previous
/// slice at a few points, and between grid points the gap can dip below zero unseen.
///
/// # Errors
/// `Calibration` in the unexpected case that [`VolSurface::new`] rejects a pair whose gap is
/// nowhere negative.
fn calendar_crossings(near: &SviSlice, far: &SviSlice) -> Result<Vec<f64>, Error> {
    let (low_a, high_a) = near.params().scan_window();
    let (low_b, high_b) = far.params().scan_window();
    let (low, high) = (low_a.min(low_b), high_a.max(high_b));
    let step = (high - low) / (BUTTERFLY_GRID_POINTS - 1) as f64;
    let gap = |k: f64| far.params().total_variance(k) - near.params().total_variance(k);
    let values: Vec<f64> = (0..BUTTERFLY_GRID_POINTS).map(|i| gap(low + step * i as f64)).collect();
    let mut crossings = Vec::new();
    for (i, &value) in values.iter().enumerate() {
        let left = if i == 0 { f64::INFINITY } else { values[i - 1] };
        let right = values.get(i + 1).copied().unwrap_or(f64::INFINITY);
        if value > left || value > right {
            continue;
        }
        let k = low + step * i as f64;
        let refined = golden_section_min(gap, (k - step).max(low), (k + step).min(high));
        let deepest = if gap(refined) < value { refined } else { k };
        if gap(deepest) < 0.0 {
            crossings.push(deepest);
        }
    }
    if crossings.is_empty() {
        VolSurface::new(vec![*near, *far]).map_err(|e| {
            Error::new("points", ErrorKind::Calibration(format!("calendar check: {e}")))
        })?;
    }
    Ok(crossings)
}

/// The minimiser of a unimodal `f` on `[low, high]`, by golden-section search.
fn golden_section_min(f: impl Fn(f64) -> f64, low: f64, high: f64) -> f64 {
    let ratio = 0.5 * (5.0_f64.sqrt() - 1.0);
    let (mut low, mut high) = (low, high);
    let mut x1 = high - ratio * (high - low);
    let mut x2 = low + ratio * (high - low);
    let (mut f1, mut f2) = (f(x1), f(x2));
    for _ in 0..GOLDEN_SECTION_STEPS {
        if f1 <= f2 {
            high = x2;
            (x2, f2) = (x1, f1);
            x1 = high - ratio * (high - low);
            f1 = f(x1);
        } else {
            low = x1;
            (x1, f1) = (x2, f2);
            x2 = low + ratio * (high - low);
            f2 = f(x2);
        }
    }
    if f1 <= f2 { x1 } else { x2 }
}

/// Errors in implied volatility at the quotes, and the arbitrage margin of the slice.
fn diagnose(slice: &SviSlice, points: &[QuotePoint], fit: &Fit, calendar: bool) -> FitDiagnostics {
    let (mut squares, mut weights) = (0.0, 0.0);
    let (mut error_max, mut error_max_strike) = (0.0_f64, points.first().map_or(0.0, |p| p.strike));
    for point in points {
        let error = slice.implied_vol(point.strike) - point.implied_vol;
        squares += point.weight * error * error;
        weights += point.weight;
        if error.abs() > error_max {
            (error_max, error_max_strike) = (error.abs(), point.strike);
        }
    }
    FitDiagnostics {
        points_used: points.len(),
        vol_error_rmse: (squares / weights).sqrt(),
        vol_error_max: error_max,
        vol_error_max_strike: error_max_strike,
        iterations: fit.iterations,
        butterfly_density_min: density_min(slice.params(), BUTTERFLY_GRID_POINTS),
        converged: fit.converged,
        butterfly_enforced: fit.butterfly_enforced,
        calendar_enforced: calendar,
    }
}

#[cfg(test)]
mod tests;

/// The timing of a realistic calibration, kept out of the normal test run because a timed
/// assertion on a shared machine would be flaky. Run it with
/// `cargo test -p market --release --lib -- --ignored --nocapture calibration_time`.
#[cfg(test)]
mod speed {
    use std::time::Instant;

    use super::tests::{crossing_surface_quotes, deribit_btc_chain, expiry_quotes, vogt_quotes};
    use super::*;

    /// Mean time of `runs` calls of `f`, in microseconds.
    fn time_micros(runs: u32, mut f: impl FnMut()) -> f64 {
        let start = Instant::now();
        for _ in 0..runs {
            f();
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(runs)
    }

    #[test]
    #[ignore = "timing, not a check: run by hand in release mode"]
    fn calibration_time() {
        let (years, forward, chain) = deribit_btc_chain(50);
        assert_eq!(chain.len(), 50);
        let fit = calibrate(UnixNanos(0), years, forward, &chain).unwrap();
        let micros = time_micros(200, || {
            calibrate(UnixNanos(0), years, forward, &chain).unwrap();
        });
        let iterations = fit.diagnostics.iterations;
        println!("50-quote Deribit-shaped slice: {micros:.0} µs ({iterations} iterations)");
        let vogt = vogt_quotes();
        let fit = calibrate(UnixNanos(0), 1.0, 100.0, &vogt).unwrap();
        let micros = time_micros(20, || {
            calibrate(UnixNanos(0), 1.0, 100.0, &vogt).unwrap();
        });
        let iterations = fit.diagnostics.iterations;
        println!(
            "31-quote Vogt slice, butterfly repaired: {micros:.0} µs ({iterations} iterations)"
        );
        let quotes = crossing_surface_quotes();
        let expiries = expiry_quotes(&quotes);
        let micros = time_micros(20, || {
            calibrate_surface(&expiries).unwrap();
        });
        println!("3 x 50-quote surface, one calendar refit: {micros:.0} µs");
    }
}
