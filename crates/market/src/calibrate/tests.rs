use super::*;

const YEAR_DAYS: f64 = 365.0;

/// Quotes read off known parameters, with unit weights.
fn quotes_from(params: &SviParams, years: f64, forward: f64, strikes: &[f64]) -> Vec<QuotePoint> {
    strikes
        .iter()
        .map(|&strike| {
            let w = params.total_variance((strike / forward).ln());
            QuotePoint { strike, implied_vol: (w / years).sqrt(), weight: 1.0 }
        })
        .collect()
}

/// Deribit-style BTC strikes around a 60,000 forward: every 1,000 near the money, then 2,000,
/// 5,000 and 10,000 apart in the wings (50 strikes, 20,000 to 150,000).
fn btc_strikes() -> Vec<f64> {
    let strikes: Vec<f64> = [20, 25, 30, 32, 35, 38, 40, 42, 44]
        .into_iter()
        .chain(45..=75)
        .chain([78, 80, 85, 90, 100, 110, 120, 130, 140, 150])
        .map(|thousands| f64::from(thousands) * 1_000.0)
        .collect();
    assert_eq!(strikes.len(), 50);
    strikes
}

/// A month-ahead BTC chain in the shape Deribit shows: marks from a smile that is not SVI (a
/// quadratic in log-moneyness, 47 % to 88 %, put skew), rounded to 0.01 vol points as Deribit
/// prints `mark_iv`. Returns `(years, forward, quotes)`.
pub(super) fn deribit_btc_chain(count: usize) -> (f64, f64, Vec<QuotePoint>) {
    let (years, forward) = (30.0 / YEAR_DAYS, 60_000.0);
    let points = btc_strikes()
        .into_iter()
        .take(count)
        .map(|strike: f64| {
            let k = (strike / forward).ln();
            let vol = 0.50 - 0.15 * k + 0.18 * k * k;
            QuotePoint { strike, implied_vol: (vol * 1e4).round() / 1e4, weight: 1.0 }
        })
        .collect();
    (years, forward, points)
}

fn btc_month() -> SviParams {
    SviParams { a: 0.02, b: 0.12, rho: -0.25, m: 0.02, sigma: 0.15 }
}

/// Checks that quotes generated from `truth` calibrate back to it.
#[track_caller]
fn check_recovery(name: &str, truth: SviParams, years: f64, forward: f64, strikes: &[f64]) {
    truth.check().unwrap();
    let points = quotes_from(&truth, years, forward, strikes);
    let fit = calibrate(UnixNanos(0), years, forward, &points).unwrap();
    let (got, diagnostics) = (fit.slice.params(), fit.diagnostics);
    assert!(diagnostics.vol_error_rmse < 1e-6, "{name}: {diagnostics:?}");
    assert!(diagnostics.vol_error_max < 1e-6, "{name}: {diagnostics:?}");
    assert!(diagnostics.converged && !diagnostics.butterfly_enforced, "{name}: {diagnostics:?}");
    assert_eq!(diagnostics.points_used, strikes.len());
    let pairs = [
        (got.a, truth.a),
        (got.b, truth.b),
        (got.rho, truth.rho),
        (got.m, truth.m),
        (got.sigma, truth.sigma),
    ];
    for (fitted, expected) in pairs {
        assert!((fitted - expected).abs() < 1e-5, "{name}: {got:?} vs {truth:?}");
    }
    // Between the quotes, too, the recovered smile is the true one.
    for pair in strikes.windows(2) {
        let strike = 0.5 * (pair[0] + pair[1]);
        let expected = (truth.total_variance((strike / forward).ln()) / years).sqrt();
        assert!((fit.slice.implied_vol(strike) - expected).abs() < 1e-6, "{name}: K = {strike}");
    }
}

#[test]
fn recovers_known_smiles() {
    check_recovery("BTC month, put skew", btc_month(), 30.0 / YEAR_DAYS, 60_000.0, &btc_strikes());
    let eth_strikes: Vec<f64> = (6..=24).map(|i| f64::from(i) * 250.0).collect();
    let eth = SviParams { a: 0.035, b: 0.16, rho: -0.1, m: 0.05, sigma: 0.2 };
    check_recovery("ETH two months", eth, 60.0 / YEAR_DAYS, 3_000.0, &eth_strikes);
    let steep_strikes: Vec<f64> = (108..=132).map(|i| f64::from(i) * 500.0).collect();
    let steep = SviParams { a: 0.001, b: 0.04, rho: -0.2, m: 0.0, sigma: 0.015 };
    check_recovery("two days, steep", steep, 2.0 / YEAR_DAYS, 60_000.0, &steep_strikes);
    let long_strikes: Vec<f64> = (2..=20).map(|i| f64::from(i) * 10_000.0).collect();
    let flat = SviParams { a: 0.3, b: 0.08, rho: -0.05, m: 0.1, sigma: 0.6 };
    check_recovery("eighteen months, flat", flat, 1.5, 62_000.0, &long_strikes);
    // Five quotes, as many as parameters, still determine the smile.
    let five = [40_000.0, 52_000.0, 60_000.0, 68_000.0, 90_000.0];
    check_recovery("five quotes", btc_month(), 30.0 / YEAR_DAYS, 60_000.0, &five);
    // A negative level, which Zeliade's a >= 0 would have excluded.
    let negative = SviParams { a: -0.01, b: 0.15, rho: -0.3, m: 0.05, sigma: 0.3 };
    check_recovery("negative level", negative, 0.25, 60_000.0, &btc_strikes()[5..45]);
}

/// Equal vols are the degenerate SVI `b = 0`, where ρ, m and σ are free: the fit must still be
/// exact and arbitrage-free.
#[test]
fn fits_a_flat_smile() {
    let strikes = btc_strikes();
    let points: Vec<QuotePoint> = strikes
        .iter()
        .map(|&strike| QuotePoint { strike, implied_vol: 0.55, weight: 1.0 })
        .collect();
    let fit = calibrate(UnixNanos(0), 0.1, 60_000.0, &points).unwrap();
    fit.slice.params().check().unwrap();
    assert!(fit.diagnostics.vol_error_max < 1e-9, "{:?}", fit.diagnostics);
    assert!(fit.slice.params().b < 1e-9, "{:?}", fit.slice.params());
}

#[test]
fn noisy_quotes_fit_to_the_noise_level() {
    let (years, forward) = (30.0 / YEAR_DAYS, 60_000.0);
    let truth = btc_month();
    let pattern = [1.0, -0.6, 0.2, -1.0, 0.7, -0.3, 0.5, -0.8, 0.0, 0.4, -0.2];
    let amplitude = 0.005;
    let mut points = quotes_from(&truth, years, forward, &btc_strikes());
    for (point, shift) in points.iter_mut().zip(pattern.iter().cycle()) {
        point.implied_vol += amplitude * shift;
    }
    let noise_rms = (points
        .iter()
        .zip(pattern.iter().cycle())
        .map(|(_, s)| (amplitude * s).powi(2))
        .sum::<f64>()
        / points.len() as f64)
        .sqrt();
    let fit = calibrate(UnixNanos(0), years, forward, &points).unwrap();
    let diagnostics = fit.diagnostics;
    fit.slice.params().check().unwrap();
    assert!(diagnostics.butterfly_density_min >= -1e-9, "{diagnostics:?}");
    // Five parameters absorb a little of the noise; a fit far below it would be over-fitting and
    // one above it would be a poor optimum.
    let ratio = diagnostics.vol_error_rmse / noise_rms;
    assert!((0.7..=1.02).contains(&ratio), "rmse/noise = {ratio}, {diagnostics:?}");
    for point in &points {
        let truth_vol = (truth.total_variance((point.strike / forward).ln()) / years).sqrt();
        let gap = (fit.slice.implied_vol(point.strike) - truth_vol).abs();
        assert!(gap < amplitude, "K = {}: fit is {gap} from the true smile", point.strike);
    }
}

/// Axel Vogt's slice (Gatheral & Jacquier 2014, section 5.2) has butterfly arbitrage near k = 1.
/// Its own quotes must produce an arbitrage-free slice, with the unavoidable misfit reported.
#[test]
fn vogts_arbitrageable_quotes_give_an_arbitrage_free_slice() {
    assert!(vogt().check().is_err());
    let points = vogt_quotes();
    let fit = calibrate(UnixNanos(0), 1.0, 100.0, &points).unwrap();
    let diagnostics = fit.diagnostics;
    fit.slice.params().check().unwrap();
    assert!(diagnostics.butterfly_enforced, "{diagnostics:?}");
    assert!(diagnostics.butterfly_density_min >= 0.0, "{diagnostics:?}");
    // The quotes determine Vogt's parameters exactly, so any arbitrage-free slice misses them;
    // the repair should cost well under a vol point.
    assert!(diagnostics.vol_error_rmse > 1e-5, "{diagnostics:?}");
    assert!(diagnostics.vol_error_rmse < 0.01, "{diagnostics:?}");
    assert!(diagnostics.vol_error_max >= diagnostics.vol_error_rmse, "{diagnostics:?}");
}

#[test]
fn fits_a_deribit_shaped_chain() {
    let (years, forward, points) = deribit_btc_chain(50);
    let vols = points.iter().map(|p| p.implied_vol);
    let (low, high) = vols.clone().fold((f64::INFINITY, 0.0_f64), |(l, h), v| (l.min(v), h.max(v)));
    assert!(low > 0.45 && high < 0.90, "{low}..{high}");
    let fit = calibrate(UnixNanos(0), years, forward, &points).unwrap();
    let diagnostics = fit.diagnostics;
    fit.slice.params().check().unwrap();
    assert!(diagnostics.converged, "{diagnostics:?}");
    assert!(diagnostics.vol_error_rmse < 0.005, "{diagnostics:?}");
    assert!(diagnostics.vol_error_max < 0.015, "{diagnostics:?}");
    // Put skew survives the fit: the 40,000 put is richer than the 80,000 call.
    assert!(fit.slice.implied_vol(40_000.0) > fit.slice.implied_vol(80_000.0) + 0.1);
    assert!(fit.slice.params().rho < 0.0, "{:?}", fit.slice.params());
}

/// Quotes of three BTC expiries (30, 60 and 90 days, forward 60,000) from SVI slices of which the
/// middle one crosses below the first near the money: `(days, quotes)` per expiry.
pub(super) fn crossing_surface_quotes() -> Vec<(f64, Vec<QuotePoint>)> {
    let strikes = btc_strikes();
    let truths = [
        (30.0, btc_month()),
        // Lower at the money than the 30-day slice (total variance 0.029 against 0.038), with
        // steeper wings: it crosses below the 30-day slice near the money only.
        (60.0, SviParams { a: 0.01, b: 0.16, rho: -0.25, m: 0.02, sigma: 0.12 }),
        // Above both everywhere, with steeper wings still.
        (90.0, SviParams { a: 0.05, b: 0.18, rho: -0.25, m: 0.03, sigma: 0.2 }),
    ];
    truths
        .iter()
        .map(|(days, truth)| (*days, quotes_from(truth, days / YEAR_DAYS, 60_000.0, &strikes)))
        .collect()
}

pub(super) fn expiry_quotes(quotes: &[(f64, Vec<QuotePoint>)]) -> Vec<ExpiryQuotes<'_>> {
    quotes
        .iter()
        .map(|(days, points)| ExpiryQuotes {
            expiry: UnixNanos((days * 86_400.0) as i64 * 1_000_000_000),
            years: days / YEAR_DAYS,
            forward: 60_000.0,
            points,
        })
        .collect()
}

/// Quotes read off Axel Vogt's arbitrageable slice (T = 1, forward 100), at k = -1.5 to 1.5.
pub(super) fn vogt_quotes() -> Vec<QuotePoint> {
    let strikes: Vec<f64> = (-15..=15).map(|i| 100.0 * (f64::from(i) * 0.1).exp()).collect();
    quotes_from(&vogt(), 1.0, 100.0, &strikes)
}

fn vogt() -> SviParams {
    SviParams { a: -0.0410, b: 0.1331, rho: 0.3060, m: 0.3586, sigma: 0.4153 }
}

#[test]
fn surface_refits_a_crossing_expiry_above_the_previous_one() {
    let quotes = crossing_surface_quotes();
    let expiries = expiry_quotes(&quotes);
    // Fitted one by one, the first two slices cross; the last does not cross the second.
    let independent: Vec<SviSlice> = expiries
        .iter()
        .map(|e| calibrate(e.expiry, e.years, e.forward, e.points).unwrap().slice)
        .collect();
    let crossing = VolSurface::new(independent[..2].to_vec()).unwrap_err();
    assert!(matches!(crossing.kind, ErrorKind::Arbitrage(_)), "{crossing}");
    assert!(VolSurface::new(independent[1..].to_vec()).is_ok());
    let (surface, diagnostics) = calibrate_surface(&expiries).unwrap();
    assert_eq!(surface.slices().len(), 3);
    assert!(VolSurface::new(surface.slices().to_vec()).is_ok());
    assert!(!diagnostics[0].calendar_enforced && diagnostics[0].vol_error_rmse < 1e-6);
    assert!(diagnostics[1].calendar_enforced, "{:?}", diagnostics[1]);
    assert!(diagnostics[1].vol_error_rmse > 1e-4, "{:?}", diagnostics[1]);
    assert!(diagnostics[1].vol_error_rmse < 0.05, "{:?}", diagnostics[1]);
    assert!(!diagnostics[2].calendar_enforced && diagnostics[2].vol_error_rmse < 1e-6);
    let (near, middle) = (surface.slices()[0].params(), surface.slices()[1].params());
    // Finer than the surface's own scan, and without its tolerance.
    for i in -3000..=3000 {
        let k = f64::from(i) * 0.001;
        let gap = middle.total_variance(k) - near.total_variance(k);
        assert!(gap >= 0.0, "k = {k}: total variance falls by {}", -gap);
    }
    for slice in surface.slices() {
        slice.params().check().unwrap();
    }
}

#[test]
fn rejects_bad_inputs_naming_the_field() {
    let (years, forward) = (30.0 / YEAR_DAYS, 60_000.0);
    let good = quotes_from(&btc_month(), years, forward, &btc_strikes()[10..30]);
    let edit = |index: usize, change: fn(&mut QuotePoint)| {
        let mut points = good.clone();
        change(&mut points[index]);
        points
    };
    let cases: Vec<(Vec<QuotePoint>, &str)> = vec![
        (edit(3, |p| p.implied_vol = f64::NAN), "points[3].implied_vol"),
        (edit(4, |p| p.implied_vol = 0.0), "points[4].implied_vol"),
        (edit(5, |p| p.implied_vol = -0.2), "points[5].implied_vol"),
        (edit(6, |p| p.implied_vol = VOLATILITY_MAX * 1.01), "points[6].implied_vol"),
        (edit(0, |p| p.strike = 0.0), "points[0].strike"),
        (edit(1, |p| p.strike = -50_000.0), "points[1].strike"),
        (edit(2, |p| p.strike = f64::INFINITY), "points[2].strike"),
        (edit(7, |p| p.weight = 0.0), "points[7].weight"),
        (edit(8, |p| p.weight = f64::NAN), "points[8].weight"),
        (edit(12, |p| p.strike = 55_000.0), "points[12].strike"),
        (good[..4].to_vec(), "points"),
    ];
    for (points, field) in cases {
        let err = calibrate(UnixNanos(0), years, forward, &points).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    let duplicate = edit(12, |p| p.strike = 55_000.0);
    let err = calibrate(UnixNanos(0), years, forward, &duplicate).unwrap_err();
    assert!(err.to_string().contains("points[9]"), "{err}");
    let nan = calibrate(UnixNanos(0), years, forward, &edit(3, |p| p.implied_vol = f64::NAN));
    assert_eq!(nan.unwrap_err().kind, ErrorKind::NotFinite);
    for (years, forward, field) in
        [(0.0, forward, "years"), (f64::NAN, forward, "years"), (years, -1.0, "forward")]
    {
        let err = calibrate(UnixNanos(0), years, forward, &good).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    let too_many = vec![good[0]; SURFACE_STRIKES_MAX + 1];
    let err = calibrate(UnixNanos(0), years, forward, &too_many).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TooMany { limit: SURFACE_STRIKES_MAX });
}

#[test]
fn surface_rejects_bad_inputs_naming_the_expiry() {
    let (years, forward) = (30.0 / YEAR_DAYS, 60_000.0);
    let good = quotes_from(&btc_month(), years, forward, &btc_strikes()[10..30]);
    let mut bad = good.clone();
    bad[2].implied_vol = f64::NAN;
    let at = |day: i64, years: f64, points| ExpiryQuotes {
        expiry: UnixNanos(day * 86_400_000_000_000),
        years,
        forward,
        points,
    };
    let err = calibrate_surface(&[at(30, years, &good), at(60, 2.0 * years, &bad)]).unwrap_err();
    assert_eq!(err.field, "expiries[1].points[2].implied_vol", "{err}");
    let err = calibrate_surface(&[at(60, 2.0 * years, &good), at(30, years, &good)]).unwrap_err();
    assert_eq!(err.field, "expiries[1].years", "{err}");
    let (surface, diagnostics) = calibrate_surface(&[]).unwrap();
    assert!(surface.slices().is_empty() && diagnostics.is_empty());
}

/// The active-set QP must find the same optimum as brute force over every active set of at most
/// three constraints (the optimum of a convex QP is the best feasible stationary point of some
/// face).
#[test]
fn qp_matches_brute_force_over_active_sets() {
    let truth = SviParams { a: -0.0410, b: 0.1331, rho: 0.3060, m: 0.3586, sigma: 0.4153 };
    let steep = SviParams { a: 0.01, b: 1.6, rho: 0.6, m: 0.0, sigma: 0.05 };
    let floors = [(-1.0, 0.4), (0.0, 0.02), (0.8, 0.3)];
    let strikes: Vec<f64> = (-12..=12).map(|i| 100.0 * (f64::from(i) * 0.1).exp()).collect();
    let mut checked = 0;
    for (params, floors) in [(truth, &floors[..0]), (steep, &floors[..0]), (truth, &floors[..])] {
        let points = quotes_from(&params, 1.0, 100.0, &strikes);
        let samples = validate(1.0, 100.0, &points).unwrap();
        let problem = Problem::new(&samples, floors);
        for (m, sigma) in [(0.3, 0.4), (-0.5, 0.05), (0.9, 1.2), (0.0, 0.01)] {
            let (h, q) = problem.normal_equations(m, sigma);
            let mut constraints = Vec::new();
            problem.constraints(m, sigma, &mut constraints);
            let objective = |x: &Vec3| 0.5 * dot(x, &mat_vec(&h, x)) - dot(&q, x);
            let fast = solve_qp(&h, &q, &constraints).unwrap();
            let slow = brute_force_qp(&h, &q, &constraints).unwrap();
            let (f_fast, f_slow) = (objective(&fast), objective(&slow));
            assert!(f_fast <= f_slow + 1e-12 * f_slow.abs().max(1e-6), "{f_fast} vs {f_slow}");
            for (x, y) in fast.iter().zip(&slow) {
                assert!((x - y).abs() < 1e-7, "{fast:?} vs {slow:?} at m = {m}, sigma = {sigma}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}

fn brute_force_qp(h: &Mat3, q: &Vec3, constraints: &[Halfspace]) -> Option<Vec3> {
    let h_inverse = invert(h)?;
    let n = constraints.len();
    let mut best: Option<(f64, Vec3)> = None;
    let mut subsets: Vec<Vec<usize>> = vec![vec![]];
    for i in 0..n {
        subsets.push(vec![i]);
        for j in i + 1..n {
            subsets.push(vec![i, j]);
            for l in j + 1..n {
                subsets.push(vec![i, j, l]);
            }
        }
    }
    for subset in subsets {
        // x = H⁻¹(q + N λ) with Nᵀx = bound.
        let base = mat_vec(&h_inverse, q);
        let columns: Vec<Vec3> =
            subset.iter().map(|&i| mat_vec(&h_inverse, &constraints[i].normal)).collect();
        let mut gram = [[0.0; 3]; 3];
        let mut rhs = [0.0; 3];
        for (row, &i) in subset.iter().enumerate() {
            rhs[row] = constraints[i].bound - dot(&constraints[i].normal, &base);
            for (col, column) in columns.iter().enumerate() {
                gram[row][col] = dot(&constraints[i].normal, column);
            }
        }
        let Some(lambda) = solve_linear(&gram, &rhs, subset.len()) else { continue };
        let mut x = base;
        for (column, weight) in columns.iter().zip(lambda) {
            for (value, entry) in x.iter_mut().zip(column) {
                *value += weight * entry;
            }
        }
        let feasible = constraints.iter().all(|c| dot(&c.normal, &x) >= c.bound - 1e-10);
        let value = 0.5 * dot(&x, &mat_vec(h, &x)) - dot(q, &x);
        if feasible && best.is_none_or(|(v, _)| value < v) {
            best = Some((value, x));
        }
    }
    best.map(|(_, x)| x)
}

#[test]
fn calibration_is_deterministic() {
    let (years, forward, points) = deribit_btc_chain(50);
    let first = calibrate(UnixNanos(0), years, forward, &points).unwrap();
    let second = calibrate(UnixNanos(0), years, forward, &points).unwrap();
    assert_eq!(first, second);
}
