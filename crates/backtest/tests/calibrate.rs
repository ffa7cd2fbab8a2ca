//! Calibration on constructed price paths: the fitted range is the smallest step that covers,
//! the stressed period is the year that holds the stress, the anti-procyclicality options act
//! as their definitions say, and bad specifications are refused by name.

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

mod common;

use backtest::calibrate::{
    PRICE_RANGE_STEP, Parameters, Span, Spec, calibrate, current, sample, with_parameters,
};
use backtest::replay::{Replay, Window, replay};
use backtest::run::{Config, run};
use backtest::{Confidence, ErrorKind};
use basics::Currency;
use common::{day, history, methodology, model};
use margin::Engine;
use methodology::AntiProcyclicality;

/// Closes from a seeded walk: daily log returns uniform in ±`calm`, with the returns of
/// `shocks` (day, log return) added; the same seed gives the same path.
fn walk(days: usize, calm: f64, shocks: &[(usize, f64)]) -> Vec<f64> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut price = 20_000.0_f64;
    (0..days)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            #[allow(clippy::cast_precision_loss, reason = "53 bits of a 64-bit draw")]
            let uniform = (state >> 11) as f64 / (1_u64 << 53) as f64;
            let shock: f64 = shocks.iter().filter(|(d, _)| *d == i).map(|(_, r)| r).sum();
            price *= (calm * (2.0 * uniform - 1.0) + shock).exp();
            price
        })
        .collect()
}

fn replayed(closes: &[f64]) -> Replay {
    let h = history(closes);
    replay(&[(Currency::BTC, &h)], &model(), Window { from: None, to: None }).unwrap()
}

fn spec(fit: Span, test: Option<Span>, option: AntiProcyclicality) -> Spec {
    Spec {
        underlying: Currency::BTC,
        coverage: Confidence::from_basis_points(9_900).unwrap(),
        horizon_days: 1,
        fit,
        test,
        anti_procyclicality: option,
        lookback_years: 10,
    }
}

fn span(first: i64, last: i64) -> Span {
    Span { from: day(first), to: day(last) }
}

/// The in-sample exceedances of the long and the short perpetual under `parameters`.
fn perpetual_exceedances(r: &Replay, parameters: Parameters, fit: Span) -> [u32; 2] {
    use backtest::book::{AccountSpec, Book, Contract, Leg};
    let leg = |size| Leg {
        underlying: Currency::BTC,
        settlement: product::Settlement::Inverse,
        contract: Contract::Perpetual,
        size,
    };
    let account = |name: &str, size| AccountSpec {
        name: name.into(),
        legs: vec![leg(size)],
        cash: Vec::new(),
    };
    let book = Book::new(vec![account("long", 1.0), account("short", -1.0)]).unwrap();
    let m = with_parameters(&methodology("ballast-pm"), Currency::BTC, parameters).unwrap();
    let config = Config::new(vec![1], Confidence::VAR_BASEL).unwrap();
    let report = run(r, &Engine::new(m).unwrap(), &book, &config, &mut |_| {}).unwrap();
    [0, 1].map(|i| sample(&report.account_days[i], fit, 1).exceedances)
}

/// Two crashes and two rallies in 160 calm days, over a one-day horizon: at 99 % on the 126
/// observations after the surface model's warm-up, one exceedance passes and two fail, so the
/// fitted range down must cover the shallower crash and need not cover the deeper one (and
/// likewise up). The fit is feasible (every calibration account covers in sample) and minimal
/// (a quarter-percent narrower on either side fails).
#[test]
fn the_fitted_range_is_the_smallest_step_that_covers() {
    let shocks = [(40, -0.18), (70, -0.12), (100, 0.15), (130, 0.10)];
    let r = replayed(&walk(160, 0.01, &shocks));
    let fit = span(0, 159);
    let s = spec(fit, None, AntiProcyclicality::None);
    let outcome = calibrate(&r, &methodology("ballast-pm"), &s).unwrap();
    let p = outcome.parameters;
    assert_eq!(p, outcome.required);
    assert!(outcome.stressed.is_none());
    for account in &outcome.accounts {
        let rate =
            f64::from(account.in_sample.exceedances) / f64::from(account.in_sample.observations);
        assert!(rate <= 0.01, "{}: {:?}", account.name, account.in_sample);
        // Every replayed day but the last is an observation (the replay starts after the
        // surface model's warm-up).
        let observations = account.in_sample.observations as usize;
        assert_eq!(observations, r.days().len() - 1, "{:?}", account.in_sample);
        assert!(observations >= 100, "{observations}");
        assert!(account.out_of_sample.is_none());
    }
    // The crashes of 18 % and 12 % sit far outside the calm walk of ±1 % a day: the range
    // down lies between them, the range up between the rallies' 10 % and 15 %.
    // The add-ons carry part of the loss, so the range may fall a little short of the move.
    let fall = |r: f64| 1.0 - (-r).exp();
    let rise = |r: f64| r.exp() - 1.0;
    assert!(p.price_down > fall(0.12) - 0.04 && p.price_down < fall(0.18), "{p:?}");
    assert!(p.price_up > rise(0.10) - 0.04 && p.price_up < rise(0.15), "{p:?}");
    assert!(perpetual_exceedances(&r, p, fit).iter().all(|e| *e <= 1));
    let narrower_down = Parameters { price_down: p.price_down - PRICE_RANGE_STEP, ..p };
    assert!(perpetual_exceedances(&r, narrower_down, fit)[0] >= 2);
    let narrower_up = Parameters { price_up: p.price_up - PRICE_RANGE_STEP, ..p };
    assert!(perpetual_exceedances(&r, narrower_up, fit)[1] >= 2);
}

/// A year of violent moves followed by calm: the floor's stressed period is that year, and the
/// floor's parameters are the larger of the calm fit's and the stressed year's fit, side by
/// side; without a floor the calm fit alone is narrower. A test window after the fit is
/// reported out of sample.
#[test]
fn the_floor_holds_the_stressed_years_parameters() {
    let stress: Vec<(usize, f64)> =
        (0..30).map(|k| (10 + 12 * k, if k % 2 == 0 { -0.14 } else { 0.12 })).collect();
    let closes = walk(560, 0.01, &stress);
    let r = replayed(&closes);
    let (fit, test) = (span(380, 519), span(520, 559));
    let base = methodology("ballast-pm");
    let floor = calibrate(&r, &base, &spec(fit, Some(test), AntiProcyclicality::Floor)).unwrap();
    let stressed = floor.stressed.unwrap();
    // The replay starts after the surface model's warm-up: the stressed year starts there and
    // holds every shock after it
    // (the first shock after it falls on day 34, the last on day 358).
    let first = r.days()[0].date;
    assert!(stressed.from.0 >= first.0 && stressed.from.0 <= day(33).0, "{stressed:?}");
    assert!(stressed.to.0 >= day(358).0, "{stressed:?}");
    let calm = calibrate(&r, &base, &spec(fit, None, AntiProcyclicality::None)).unwrap();
    let alone = calibrate(&r, &base, &spec(stressed, None, AntiProcyclicality::None)).unwrap();
    let (c, a, f) = (calm.parameters, alone.parameters, floor.parameters);
    assert_eq!(f.price_down, c.price_down.max(a.price_down));
    assert_eq!(f.price_up, c.price_up.max(a.price_up));
    assert_eq!(f.vol_scale, c.vol_scale.max(a.vol_scale));
    assert!(f.price_down > c.price_down && f.price_up > c.price_up, "{f:?} {c:?}");
    for account in &floor.accounts {
        let out = account.out_of_sample.unwrap();
        assert!(out.observations >= 35, "{}: {out:?}", account.name);
        assert!(account.stressed.unwrap().observations >= 300, "{}", account.name);
    }
}

/// The buffer keeps the current parameters while they lie between the required ones and the
/// required ones plus the buffer, and moves to the nearer bound otherwise.
#[test]
fn the_buffer_clamps_the_current_parameters_to_the_required_band() {
    let r = replayed(&walk(160, 0.01, &[(40, -0.18), (70, -0.12), (100, 0.15), (130, 0.10)]));
    let base = methodology("ballast-pm");
    let option = AntiProcyclicality::Buffer { fraction: 0.25 };
    let outcome = calibrate(&r, &base, &spec(span(0, 159), None, option)).unwrap();
    let (req, now, got) =
        (outcome.required, current(&base, Currency::BTC).unwrap(), outcome.parameters);
    let band = |r: f64, c: f64| c.clamp(r, r * 1.25);
    assert_eq!(got.price_down, band(req.price_down, now.price_down));
    assert_eq!(got.price_up, band(req.price_up, now.price_up));
    assert_eq!(got.vol_scale, band(req.vol_scale, now.vol_scale));
    assert!(got.price_down >= req.price_down && got.price_down <= 1.25 * req.price_down);
}

/// `with_parameters` writes the ranges it is given: read back, the grid's edges are the
/// parameters, and an unchanged range leaves the grid's moves as they were.
#[test]
fn the_written_grid_has_the_fitted_edges() {
    let base = methodology("ballast-pm");
    let now = current(&base, Currency::BTC).unwrap();
    let p = Parameters { price_down: 0.2175, price_up: 0.3, vol_scale: 0.5 };
    let written = with_parameters(&base, Currency::BTC, p).unwrap();
    let back = current(&written, Currency::BTC).unwrap();
    assert!((back.price_down - p.price_down).abs() < 1e-15, "{back:?}");
    assert!((back.price_up - p.price_up).abs() < 1e-15, "{back:?}");
    let same = with_parameters(&base, Currency::BTC, now).unwrap();
    assert_eq!(
        same.scenario_spec(Currency::BTC).price_grid,
        base.scenario_spec(Currency::BTC).price_grid
    );
    // Another underlying keeps the base's grid.
    assert_eq!(
        written.scenario_spec(Currency::ETH).price_grid,
        base.scenario_spec(Currency::ETH).price_grid
    );
}

/// Each refused specification names its field.
#[test]
fn bad_specifications_are_refused_by_name() {
    let r = replayed(&walk(200, 0.01, &[]));
    let base = methodology("ballast-pm");
    let none = AntiProcyclicality::None;
    let refused = |s: Spec| calibrate(&r, &base, &s).unwrap_err();
    for horizon in [0, 30] {
        let e = refused(Spec { horizon_days: horizon, ..spec(span(0, 150), None, none) });
        assert_eq!(e.field, "horizon_days", "{horizon}");
        assert!(matches!(e.kind, ErrorKind::OutOfRange(_)));
    }
    assert_eq!(refused(spec(span(0, 150), Some(span(100, 199)), none)).field, "test");
    assert_eq!(refused(spec(span(150, 10), None, none)).field, "fit");
    assert_eq!(refused(spec(span(300, 400), None, none)).field, "fit");
    // 60 days give fewer than the 100 observations a fit needs: refused before any search.
    let e = refused(spec(span(0, 60), None, none));
    assert_eq!(e.field, "fit");
    assert!(e.to_string().contains("observations"), "{e}");
    // 200 days hold no stressed year for the floor.
    let e = refused(spec(span(0, 199), None, AntiProcyclicality::Floor));
    assert_eq!(e.field, "lookback_years");
}
