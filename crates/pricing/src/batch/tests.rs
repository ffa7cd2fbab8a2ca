use super::*;
use crate::european::EuropeanSpec;
use crate::{EuropeanInputs, Model, OptionRight, Settlement, price};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Owned {
    forward: Vec<f64>,
    strike: Vec<f64>,
    years: Vec<f64>,
    vol: Vec<f64>,
    discount: Vec<f64>,
    omega: Vec<f64>,
}

impl Owned {
    fn batch(&self) -> Black76Batch<'_> {
        Black76Batch {
            forward: &self.forward,
            strike: &self.strike,
            years: &self.years,
            vol: &self.vol,
            discount: &self.discount,
            omega: &self.omega,
        }
    }
}

/// A seeded universe spanning deep out of the money to deep in the money, a day to two years and
/// 5 % to 300 % volatility.
fn universe(n: usize, seed: u64) -> Owned {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut o = Owned {
        forward: vec![],
        strike: vec![],
        years: vec![],
        vol: vec![],
        discount: vec![],
        omega: vec![],
    };
    for _ in 0..n {
        let f = 100.0 * rng.random_range(0.5..2.0);
        let years = rng.random_range(1.0 / 365.0..2.0);
        o.forward.push(f);
        o.strike.push(f * rng.random_range(-2.5f64..2.5f64).exp());
        o.years.push(years);
        o.vol.push(rng.random_range(0.05..3.0));
        o.discount.push((-0.05 * years).exp());
        o.omega.push(if rng.random_bool(0.5) { 1.0 } else { -1.0 });
    }
    o
}

#[test]
fn kernel_matches_accurate_pricer_to_1e_12_of_forward() {
    let o = universe(20_000, 7);
    let mut out = vec![0.0; o.forward.len()];
    black76_prices(&o.batch(), &mut out, Execution::Simd).unwrap();
    let mut worst: f64 = 0.0;
    for (i, &kernel_price) in out.iter().enumerate() {
        let inputs = EuropeanInputs::new(EuropeanSpec {
            model: Model::Black76,
            underlying: o.forward[i],
            strike: o.strike[i],
            years: o.years[i],
            vol: o.vol[i],
            rate: -o.discount[i].ln() / o.years[i],
            dividend: 0.0,
            right: if o.omega[i] > 0.0 { OptionRight::Call } else { OptionRight::Put },
            settlement: Settlement::Linear,
        })
        .unwrap();
        let accurate = price(&inputs);
        worst = worst.max((kernel_price - accurate).abs() / o.forward[i]);
    }
    // The bar is 1e-9 of the forward; the kernel is designed for about 1e-12.
    assert!(worst < 1e-12, "worst error {worst:e} of the forward");
}

#[test]
fn results_are_identical_in_every_mode_and_thread_count() {
    let o = universe(10_003, 11);
    let run = |execution, threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut out = vec![0.0; o.forward.len()];
        pool.install(|| black76_prices(&o.batch(), &mut out, execution)).unwrap();
        out.iter().map(|v| v.to_bits()).collect::<Vec<u64>>()
    };
    let reference = run(Execution::Scalar, 1);
    let first_difference = |other: Vec<u64>| other.iter().zip(&reference).position(|(a, b)| a != b);
    assert_eq!(first_difference(run(Execution::Simd, 1)), None, "SIMD vs scalar");
    for threads in [1, 2, 3, 8] {
        let diff = first_difference(run(Execution::SimdParallel, threads));
        assert_eq!(diff, None, "{threads} threads vs scalar");
    }
}

#[test]
fn expired_and_zero_vol_options_are_intrinsic() {
    let o = Owned {
        forward: vec![100.0, 100.0, 100.0, 100.0],
        strike: vec![80.0, 120.0, 100.0, 120.0],
        years: vec![0.0, 0.0, 0.5, 0.5],
        vol: vec![0.5, 0.5, 0.0, 0.0],
        discount: vec![1.0; 4],
        omega: vec![1.0, -1.0, 1.0, -1.0],
    };
    let mut out = vec![0.0; 4];
    black76_prices(&o.batch(), &mut out, Execution::Simd).unwrap();
    for (got, want) in out.iter().zip([20.0, 20.0, 0.0, 20.0]) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}

#[test]
fn rejects_bad_batches_without_writing() {
    let mut o = universe(8, 3);
    o.vol[5] = f64::NAN;
    let mut out = vec![-1.0; 8];
    let err = black76_prices(&o.batch(), &mut out, Execution::Simd).unwrap_err();
    assert_eq!(err.field, "vol");
    assert!(err.to_string().contains("entry 5"), "{err}");
    assert!(out.iter().all(|&v| v == -1.0));
    o.vol[5] = 0.3;
    o.omega.pop();
    assert_eq!(black76_prices(&o.batch(), &mut out, Execution::Simd).unwrap_err().field, "omega");
}
