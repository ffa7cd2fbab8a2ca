use super::*;

const TOL_HAUG: f64 = 1e-4;

fn bsm(right: OptionRight, k: f64, s: f64, q: f64, r: f64, t: f64, v: f64) -> EuropeanInputs {
    EuropeanInputs::new(EuropeanSpec {
        model: Model::BlackScholesMerton,
        underlying: s,
        strike: k,
        years: t,
        vol: v,
        rate: r,
        dividend: q,
        right,
        settlement: Settlement::Linear,
    })
    .unwrap()
}

fn spec(model: Model, settlement: Settlement, right: OptionRight) -> EuropeanSpec {
    EuropeanSpec {
        model,
        underlying: 100.0,
        strike: 100.0,
        years: 0.5,
        vol: 0.6,
        rate: 0.03,
        dividend: if model == Model::BlackScholesMerton { 0.01 } else { 0.0 },
        right,
        settlement,
    }
}

type HaugCase = (OptionRight, f64, f64, f64, f64, f64, f64, f64);

/// E. G. Haug, "The Complete Guide to Option Pricing Formulas" (1998), pp. 2-8, 24 and 27, as
/// tabulated in QuantLib's test-suite/europeanoption.cpp: (right, strike, spot, q, r, t, vol,
/// value). Values are quoted to 1e-4.
#[rustfmt::skip]
const HAUG_VALUES: [HaugCase; 42] = {
    use OptionRight::{Call as C, Put as P};
    [
        (C, 65.0, 60.0, 0.00, 0.08, 0.25, 0.30, 2.1334),
        (P, 95.0, 100.0, 0.05, 0.10, 0.50, 0.20, 2.4648),
        (P, 19.0, 19.0, 0.10, 0.10, 0.75, 0.28, 1.7011),
        (C, 19.0, 19.0, 0.10, 0.10, 0.75, 0.28, 1.7011),
        (C, 1.60, 1.56, 0.08, 0.06, 0.50, 0.12, 0.0291),
        (P, 70.0, 75.0, 0.05, 0.10, 0.50, 0.35, 4.0870),
        (C, 100.0, 90.0, 0.10, 0.10, 0.10, 0.15, 0.0205),
        (C, 100.0, 100.0, 0.10, 0.10, 0.10, 0.15, 1.8734),
        (C, 100.0, 110.0, 0.10, 0.10, 0.10, 0.15, 9.9413),
        (C, 100.0, 90.0, 0.10, 0.10, 0.10, 0.25, 0.3150),
        (C, 100.0, 100.0, 0.10, 0.10, 0.10, 0.25, 3.1217),
        (C, 100.0, 110.0, 0.10, 0.10, 0.10, 0.25, 10.3556),
        (C, 100.0, 90.0, 0.10, 0.10, 0.10, 0.35, 0.9474),
        (C, 100.0, 100.0, 0.10, 0.10, 0.10, 0.35, 4.3693),
        (C, 100.0, 110.0, 0.10, 0.10, 0.10, 0.35, 11.1381),
        (C, 100.0, 90.0, 0.10, 0.10, 0.50, 0.15, 0.8069),
        (C, 100.0, 100.0, 0.10, 0.10, 0.50, 0.15, 4.0232),
        (C, 100.0, 110.0, 0.10, 0.10, 0.50, 0.15, 10.5769),
        (C, 100.0, 90.0, 0.10, 0.10, 0.50, 0.25, 2.7026),
        (C, 100.0, 100.0, 0.10, 0.10, 0.50, 0.25, 6.6997),
        (C, 100.0, 110.0, 0.10, 0.10, 0.50, 0.25, 12.7857),
        (C, 100.0, 90.0, 0.10, 0.10, 0.50, 0.35, 4.9329),
        (C, 100.0, 100.0, 0.10, 0.10, 0.50, 0.35, 9.3679),
        (C, 100.0, 110.0, 0.10, 0.10, 0.50, 0.35, 15.3086),
        (P, 100.0, 90.0, 0.10, 0.10, 0.10, 0.15, 9.9210),
        (P, 100.0, 100.0, 0.10, 0.10, 0.10, 0.15, 1.8734),
        (P, 100.0, 110.0, 0.10, 0.10, 0.10, 0.15, 0.0408),
        (P, 100.0, 90.0, 0.10, 0.10, 0.10, 0.25, 10.2155),
        (P, 100.0, 100.0, 0.10, 0.10, 0.10, 0.25, 3.1217),
        (P, 100.0, 110.0, 0.10, 0.10, 0.10, 0.25, 0.4551),
        (P, 100.0, 90.0, 0.10, 0.10, 0.10, 0.35, 10.8479),
        (P, 100.0, 100.0, 0.10, 0.10, 0.10, 0.35, 4.3693),
        (P, 100.0, 110.0, 0.10, 0.10, 0.10, 0.35, 1.2376),
        (P, 100.0, 90.0, 0.10, 0.10, 0.50, 0.15, 10.3192),
        (P, 100.0, 100.0, 0.10, 0.10, 0.50, 0.15, 4.0232),
        (P, 100.0, 110.0, 0.10, 0.10, 0.50, 0.15, 1.0646),
        (P, 100.0, 90.0, 0.10, 0.10, 0.50, 0.25, 12.2149),
        (P, 100.0, 100.0, 0.10, 0.10, 0.50, 0.25, 6.6997),
        (P, 100.0, 110.0, 0.10, 0.10, 0.50, 0.25, 3.2734),
        (P, 100.0, 90.0, 0.10, 0.10, 0.50, 0.35, 14.4452),
        (P, 100.0, 100.0, 0.10, 0.10, 0.50, 0.35, 9.3679),
        (C, 40.0, 42.0, 0.08, 0.04, 0.75, 0.35, 5.0975),
    ]
};

#[test]
fn haug_reference_values() {
    for (i, &(right, k, s, q, r, t, v, expected)) in HAUG_VALUES.iter().enumerate() {
        let got = price(&bsm(right, k, s, q, r, t, v));
        assert!((got - expected).abs() <= TOL_HAUG, "case {i}: {got} vs {expected}");
    }
}

#[test]
fn haug_greek_values() {
    use OptionRight::{Call, Put};
    let g = european(&bsm(Call, 100.0, 105.0, 0.10, 0.10, 0.5, 0.36));
    assert!((g.delta - 0.5946).abs() < TOL_HAUG, "delta {}", g.delta);
    let g = european(&bsm(Put, 100.0, 105.0, 0.10, 0.10, 0.5, 0.36));
    assert!((g.delta + 0.3566).abs() < TOL_HAUG, "put delta {}", g.delta);
    for right in [Call, Put] {
        let g = european(&bsm(right, 60.0, 55.0, 0.0, 0.10, 0.75, 0.30));
        assert!((g.gamma - 0.0278).abs() < TOL_HAUG, "gamma {}", g.gamma);
        assert!((g.vega - 18.9358).abs() < TOL_HAUG, "vega {}", g.vega);
    }
    let g = european(&bsm(Put, 405.0, 430.0, 0.05, 0.07, 1.0 / 12.0, 0.20));
    assert!((g.theta + 31.1924).abs() < TOL_HAUG, "theta {}", g.theta);
    let g = european(&bsm(Call, 75.0, 72.0, 0.0, 0.09, 1.0, 0.19));
    assert!((g.rho - 38.7325).abs() < TOL_HAUG, "rho {}", g.rho);
}

/// py_vollib's doctests: `black('c', 100, 100, .5, .02, .2)` = 5.5811067246048118 and
/// `black_scholes('c', 100, 90, .5, .01, .2)` = 12.111581435.
#[test]
fn vollib_reference_values() {
    let black = EuropeanInputs::new(EuropeanSpec {
        rate: 0.02,
        vol: 0.2,
        ..spec(Model::Black76, Settlement::Linear, OptionRight::Call)
    })
    .unwrap();
    assert!((price(&black) - 5.581_106_724_604_812).abs() < 1e-12);
    let bs = bsm(OptionRight::Call, 90.0, 100.0, 0.0, 0.01, 0.5, 0.2);
    assert!((price(&bs) - 12.111_581_435).abs() < 1e-9, "{}", price(&bs));
}

#[test]
fn put_call_parity_all_variants() {
    for model in [Model::Black76, Model::BlackScholesMerton] {
        for settlement in [Settlement::Linear, Settlement::Inverse] {
            for strike in [20.0, 80.0, 100.0, 125.0, 400.0] {
                for years in [1.0 / 365.0, 0.25, 2.0] {
                    let call = EuropeanInputs::new(EuropeanSpec {
                        strike,
                        years,
                        ..spec(model, settlement, OptionRight::Call)
                    })
                    .unwrap();
                    let put = EuropeanInputs::new(EuropeanSpec {
                        right: OptionRight::Put,
                        ..*call.spec()
                    })
                    .unwrap();
                    let f = call.forward();
                    let carry = call.carry();
                    let d = (-carry.settle_rate * years).exp();
                    let expected = match settlement {
                        Settlement::Linear => d * (f - strike),
                        Settlement::Inverse => d * (1.0 - strike / f),
                    };
                    let got = price(&call) - price(&put);
                    let scale = match settlement {
                        Settlement::Linear => f,
                        Settlement::Inverse => 1.0,
                    };
                    assert!(
                        (got - expected).abs() <= 1e-13 * scale,
                        "{model:?} {settlement:?} K={strike} T={years}: {got} vs {expected}"
                    );
                }
            }
        }
    }
}

/// The price as a function of one bumped input, for finite differences.
fn bumped(base: &EuropeanSpec, field: &str, h: f64) -> f64 {
    let mut s = *base;
    match field {
        "underlying" => s.underlying += h,
        "vol" => s.vol += h,
        "years" => s.years += h,
        "rate" => s.rate += h,
        _ => unreachable!(),
    }
    price(&EuropeanInputs::new(s).unwrap())
}

fn central(base: &EuropeanSpec, field: &str, h: f64) -> f64 {
    (bumped(base, field, h) - bumped(base, field, -h)) / (2.0 * h)
}

fn second(base: &EuropeanSpec, field: &str, h: f64) -> f64 {
    (bumped(base, field, h) - 2.0 * bumped(base, field, 0.0) + bumped(base, field, -h)) / (h * h)
}

fn assert_close(what: &str, analytic: f64, numeric: f64, scale: f64) {
    let err = (analytic - numeric).abs();
    assert!(err <= 2e-6 * scale, "{what}: analytic {analytic} vs numeric {numeric} (err {err:e})");
}

#[test]
fn greeks_match_finite_differences() {
    for model in [Model::Black76, Model::BlackScholesMerton] {
        for settlement in [Settlement::Linear, Settlement::Inverse] {
            for right in [OptionRight::Call, OptionRight::Put] {
                for (strike, years, vol) in
                    [(100.0, 0.5, 0.6), (70.0, 0.1, 0.9), (140.0, 1.5, 0.35), (95.0, 0.02, 1.2)]
                {
                    let base =
                        EuropeanSpec { strike, years, vol, ..spec(model, settlement, right) };
                    let g = european(&EuropeanInputs::new(base).unwrap());
                    let label = format!("{model:?} {settlement:?} {right:?} K={strike} T={years}");
                    let scale = match settlement {
                        Settlement::Linear => 100.0,
                        Settlement::Inverse => 1.0,
                    };
                    let u = base.underlying;
                    assert_close(
                        &format!("{label} delta"),
                        g.delta,
                        central(&base, "underlying", 1e-4 * u),
                        scale / u,
                    );
                    assert_close(
                        &format!("{label} gamma"),
                        g.gamma,
                        second(&base, "underlying", 1e-3 * u),
                        10.0 * scale / (u * u),
                    );
                    assert_close(
                        &format!("{label} vega"),
                        g.vega,
                        central(&base, "vol", 1e-5),
                        scale,
                    );
                    assert_close(
                        &format!("{label} theta"),
                        g.theta,
                        -central(&base, "years", 1e-6),
                        scale,
                    );
                    assert_close(
                        &format!("{label} rho"),
                        g.rho,
                        central(&base, "rate", 1e-6),
                        scale,
                    );
                    assert_close(
                        &format!("{label} volga"),
                        g.volga,
                        second(&base, "vol", 1e-3),
                        10.0 * scale,
                    );
                    // Vanna as the vol derivative of the analytic delta.
                    let delta_at = |dv: f64| {
                        european(
                            &EuropeanInputs::new(EuropeanSpec { vol: vol + dv, ..base }).unwrap(),
                        )
                        .delta
                    };
                    let vanna = (delta_at(1e-5) - delta_at(-1e-5)) / 2e-5;
                    assert_close(&format!("{label} vanna"), g.vanna, vanna, scale / u);
                }
            }
        }
    }
}

#[test]
fn inverse_value_is_linear_value_over_forward() {
    for right in [OptionRight::Call, OptionRight::Put] {
        let linear = EuropeanInputs::new(spec(Model::Black76, Settlement::Linear, right)).unwrap();
        let inverse =
            EuropeanInputs::new(spec(Model::Black76, Settlement::Inverse, right)).unwrap();
        let (l, i) = (price(&linear), price(&inverse));
        assert!((i * linear.forward() - l).abs() < 1e-12 * l);
        // Deribit's delta of an inverse option is N(d1) − mark price (in coins): F·∂V/∂F.
        let gl = european(&linear);
        let gi = european(&inverse);
        let d = (-0.03f64 * 0.5).exp();
        assert!((gi.delta * linear.forward() - (gl.delta - i / d * d)).abs() < 1e-12);
    }
}

#[test]
fn expiry_and_zero_vol_give_intrinsic_value() {
    for (model, settlement) in
        [(Model::Black76, Settlement::Linear), (Model::Black76, Settlement::Inverse)]
    {
        for strike in [80.0, 100.0, 120.0] {
            for (years, vol) in [(0.0, 0.6), (0.5, 0.0)] {
                let call = EuropeanInputs::new(EuropeanSpec {
                    strike,
                    years,
                    vol,
                    rate: 0.0,
                    ..spec(model, settlement, OptionRight::Call)
                })
                .unwrap();
                let intrinsic = (100.0 - strike).max(0.0);
                let expected = match settlement {
                    Settlement::Linear => intrinsic,
                    Settlement::Inverse => intrinsic / 100.0,
                };
                let g = european(&call);
                assert_eq!(g.price, expected);
                // Linear intrinsic value is piecewise linear in F; the inverse one, 1 − K/F for
                // an in-the-money call, curves with gamma −2K/F³.
                // At the money the delta is the half step (the limit of N(d1) as σ√T → 0).
                let gamma = match settlement {
                    Settlement::Inverse if strike < 100.0 => -2.0 * strike / 1e6,
                    Settlement::Inverse if strike == 100.0 => -1.0 / 1e4,
                    _ => 0.0,
                };
                assert!((g.gamma - gamma).abs() < 1e-18, "{settlement:?} K={strike}: {}", g.gamma);
            }
        }
    }
}

#[test]
fn rejects_bad_inputs_naming_the_field() {
    let base = spec(Model::Black76, Settlement::Linear, OptionRight::Call);
    let cases = [
        (EuropeanSpec { vol: f64::NAN, ..base }, "vol"),
        (EuropeanSpec { vol: -0.1, ..base }, "vol"),
        (EuropeanSpec { years: -1.0, ..base }, "years"),
        (EuropeanSpec { underlying: 0.0, ..base }, "forward"),
        (EuropeanSpec { strike: f64::INFINITY, ..base }, "strike"),
        (EuropeanSpec { rate: 50.0, ..base }, "rate"),
        (EuropeanSpec { dividend: 0.02, ..base }, "dividend"),
        (EuropeanSpec { model: Model::BlackScholesMerton, underlying: -5.0, ..base }, "spot"),
    ];
    for (bad, field) in cases {
        let err = EuropeanInputs::new(bad).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
}
