//! `ballast bench --only pricing`: Black-76 throughput and accuracy (scalar, batch, SIMD,
//! streaming and in cache), and the risk-array kernel against the practical limit.

use pricing::batch::{Black76Batch, Execution, black_over_strike, black76_prices};
use pricing::{EuropeanInputs, EuropeanSpec, Model, OptionRight, Settlement, price};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Error, Host, Options, best_of, ensure};

struct Universe {
    forward: Vec<f64>,
    strike: Vec<f64>,
    years: Vec<f64>,
    vol: Vec<f64>,
    discount: Vec<f64>,
    omega: Vec<f64>,
}

impl Universe {
    fn new(n: usize, seed: u64) -> Universe {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut u = Universe {
            forward: Vec::with_capacity(n),
            strike: Vec::with_capacity(n),
            years: Vec::with_capacity(n),
            vol: Vec::with_capacity(n),
            discount: Vec::with_capacity(n),
            omega: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let f = 100.0 * rng.random_range(0.5..2.0);
            let years = rng.random_range(1.0 / 365.0..2.0);
            u.forward.push(f);
            u.strike.push(f * rng.random_range(-1.0f64..1.0f64).exp());
            u.years.push(years);
            u.vol.push(rng.random_range(0.2..1.5));
            u.discount.push((-0.03 * years).exp());
            u.omega.push(if rng.random_bool(0.5) { 1.0 } else { -1.0 });
        }
        u
    }

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

    fn accurate(&self, i: usize) -> f64 {
        let spec = EuropeanSpec {
            model: Model::Black76,
            underlying: self.forward[i],
            strike: self.strike[i],
            years: self.years[i],
            vol: self.vol[i],
            rate: 0.03,
            dividend: 0.0,
            right: if self.omega[i] > 0.0 { OptionRight::Call } else { OptionRight::Put },
            settlement: Settlement::Linear,
        };
        EuropeanInputs::new(spec).map_or(f64::NAN, |inputs| price(&inputs))
    }
}

fn report(host: &dyn Host, label: &str, valuations: usize, seconds: f64, threads: usize) {
    let ns = seconds * 1e9 / valuations as f64;
    let per_second = valuations as f64 / seconds;
    host.print(&format!(
        "  {label:<44} {ns:>8.2} ns/valuation {:>9.1} M/s total {:>9.1} M/s per core \
         ({threads} thread{})",
        per_second / 1e6,
        per_second / 1e6 / threads as f64,
        if threads == 1 { "" } else { "s" }
    ));
}

/// The pricing section: Black-76 valuations, scalar and batch, streaming and in cache, and the
/// risk-array kernel against the practical limit.
///
/// # Errors
/// A kernel error, or a kernel whose accuracy is off.
pub fn run(host: &dyn Host, args: &Options) -> Result<(), Error> {
    let (n, repetitions) = if args.quick { (100_000, 2) } else { (2_000_000, 7) };
    let universe = Universe::new(n, args.seed);
    let threads = rayon::current_num_threads();
    host.print(&format!(
        "pricing: {n} Black-76 options (seed {}), best of {repetitions}",
        args.seed
    ));

    let sample = n.min(200_000);
    let mut sink = 0.0;
    let accurate = best_of(host, repetitions, || {
        sink += (0..sample).map(|i| universe.accurate(i)).sum::<f64>();
    });
    report(host, "scalar, accurate (Let's Be Rational price)", sample, accurate, 1);

    let mut out = vec![0.0; n];
    let mut outcome = Ok(());
    let seconds = best_of(host, repetitions, || {
        outcome = black76_prices(&universe.batch(), &mut out, Execution::Scalar);
    });
    outcome?;
    report(host, "batch kernel, scalar instantiation", n, seconds, 1);
    in_cache_section(host, &universe, repetitions, threads);
    for (label, execution, used) in [
        ("batch kernel, SIMD, streaming 2M-option arrays", Execution::Simd, 1),
        ("batch kernel, SIMD, streaming, all cores", Execution::SimdParallel, threads),
    ] {
        let mut outcome = Ok(());
        let seconds = best_of(host, repetitions, || {
            outcome = black76_prices(&universe.batch(), &mut out, execution);
        });
        outcome?;
        report(host, label, n, seconds, used);
    }
    let worst = (0..sample)
        .map(|i| (out[i] - universe.accurate(i)).abs() / universe.forward[i])
        .fold(0.0, f64::max);
    host.print(&format!(
        "  kernel vs accurate price: max |error| / forward = {worst:.2e} over {sample} options"
    ));
    ensure(worst < 1e-9, || format!("kernel error {worst:e} exceeds 1e-9 of the forward"))?;
    std::hint::black_box(sink);
    risk_array_section(host, &universe, repetitions, threads)
}

/// The practical limit on this machine: the cheapest credible Black-76 formulation, with
/// Abramowitz & Stegun's 26.2.17 polynomial for N(x) (absolute error 7.5e-8, published constants)
/// and `wide`'s own `exp`, in the same 4-lane layout and on the same cache-resident rows. It is
/// four orders of magnitude less accurate than Ballast's kernel and exists only as a yardstick.
fn floor_black_over_strike(x: &[f64], fk: &[f64], v: &[f64], omega: &[f64], out: &mut [f64]) {
    use wide::f64x4;
    const P: f64 = 0.231_641_9;
    const B: [f64; 5] =
        [1.330_274_429, -1.821_255_978, 1.781_477_937, -0.356_563_782, 0.319_381_530];
    let tail = |z: f64x4, density: f64x4| {
        let t = f64x4::splat(1.0) / z.mul_add(f64x4::splat(P), f64x4::splat(1.0));
        let mut poly = f64x4::splat(B[0]);
        for b in &B[1..] {
            poly = poly.mul_add(t, f64x4::splat(*b));
        }
        density * poly * t
    };
    let load = |s: &[f64], i: usize| f64x4::new([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    for i in (0..out.len() / 4 * 4).step_by(4) {
        let (x, fk, v, omega) = (load(x, i), load(fk, i), load(v, i), load(omega, i));
        let d1 = x / v + f64x4::splat(0.5) * v;
        let d2 = d1 - v;
        let density = (f64x4::splat(-0.5) * d1 * d1).exp() * f64x4::splat(0.398_942_280_401_432_7);
        let (t1, t2) = (tail(d1.abs(), density), tail(d2.abs(), density * fk));
        let one = f64x4::splat(1.0);
        let n1 = d1.simd_ge(f64x4::ZERO).select(one - t1, t1);
        let n2 = d2.simd_ge(f64x4::ZERO).select(one - t2, t2);
        let call = fk * n1 - n2;
        let put_weight = f64x4::splat(0.5) - f64x4::splat(0.5) * omega;
        out[i..i + 4].copy_from_slice(&put_weight.mul_add(one - fk, call).to_array());
    }
}

/// Options per cache-resident chunk: seven input/output arrays of this length fit in L2.
const CHUNK_OPTIONS: usize = 4_096;

/// The kernel on cache-resident chunks, which is how the margin engine feeds it (each instrument's
/// scenario rows are built just before they are valued): one chunk per thread, revalued until the
/// total reaches the universe size.
fn in_cache_section(host: &dyn Host, universe: &Universe, repetitions: usize, threads: usize) {
    let passes = universe.forward.len() / CHUNK_OPTIONS;
    let run = |chunk: usize| {
        let range = chunk * CHUNK_OPTIONS..(chunk + 1) * CHUNK_OPTIONS;
        let batch = Black76Batch {
            forward: &universe.forward[range.clone()],
            strike: &universe.strike[range.clone()],
            years: &universe.years[range.clone()],
            vol: &universe.vol[range.clone()],
            discount: &universe.discount[range.clone()],
            omega: &universe.omega[range],
        };
        let mut out = vec![0.0; CHUNK_OPTIONS];
        for _ in 0..passes {
            // The same inputs valued in the streaming run, which checks every outcome.
            let valued = black76_prices(&batch, &mut out, Execution::Simd);
            std::hint::black_box((valued.is_ok(), &mut out));
        }
    };
    let label = "batch kernel, SIMD, in-cache chunks";
    time_in_cache(host, label, passes, (repetitions, threads), run);
}

/// Times `run` (one pass series over chunk `t`) on one thread, then on chunks `0..threads` at
/// once, and reports both as `label` and `label, all cores`; returns the one-thread time.
fn time_in_cache(
    host: &dyn Host,
    label: &str,
    passes: usize,
    (repetitions, threads): (usize, usize),
    run: impl Fn(usize) + Sync,
) -> f64 {
    let one = best_of(host, repetitions, || run(0));
    report(host, label, passes * CHUNK_OPTIONS, one, 1);
    let all = best_of(host, repetitions, || {
        rayon::scope(|s| {
            for t in 0..threads {
                let run = &run;
                s.spawn(move |_| run(t));
            }
        });
    });
    let valuations = threads * passes * CHUNK_OPTIONS;
    report(host, &format!("{label}, all cores"), valuations, all, threads);
    one
}

/// Rows of a price x vol grid (21 moves x 3 vol shocks) for the first instruments of the universe:
/// (x, fk, v, omega) per row, the instrument count and the scenario count.
fn risk_rows(universe: &Universe) -> ([Vec<f64>; 4], usize, usize) {
    let moves: Vec<f64> = (-10..=10).map(|i| f64::from(i) * 0.02).collect();
    let vol_shocks = [0.75, 1.0, 1.4];
    let scenarios = moves.len() * vol_shocks.len();
    let instruments = (universe.forward.len() / scenarios).min(50_000);
    let mut columns: [Vec<f64>; 4] =
        std::array::from_fn(|_| Vec::with_capacity(instruments * scenarios));
    for i in 0..instruments {
        let base = universe.forward[i] / universe.strike[i];
        let sqrt_t = universe.years[i].sqrt();
        for m in &moves {
            for shock in vol_shocks {
                columns[0].push((base * (1.0 + m)).ln());
                columns[1].push(base * (1.0 + m));
                columns[2].push(universe.vol[i] * shock * sqrt_t);
                columns[3].push(universe.omega[i]);
            }
        }
    }
    (columns, instruments, scenarios)
}

/// Risk-array valuations: each instrument revalued on a price x vol grid, where the price shock
/// only shifts log-moneyness, so the kernel gets precomputed rows.
fn risk_array_section(
    host: &dyn Host,
    universe: &Universe,
    repetitions: usize,
    threads: usize,
) -> Result<(), Error> {
    let ([x, fk, v, omega], instruments, scenarios) = risk_rows(universe);
    let rows = x.len();
    host.print(&format!(
        "risk arrays: {instruments} instruments x {scenarios} scenarios (21 price x 3 vol)"
    ));
    let mut out = vec![0.0; rows];
    for (label, execution, used) in [
        ("risk-array kernel, SIMD, streaming rows", Execution::Simd, 1),
        ("risk-array kernel, SIMD, streaming rows, all cores", Execution::SimdParallel, threads),
    ] {
        let mut outcome = Ok(());
        let seconds = best_of(host, repetitions, || {
            outcome = black_over_strike(&x, &fk, &v, &omega, &mut out, execution);
        });
        outcome?;
        report(host, label, rows, seconds, used);
    }
    // In cache: one chunk of rows per thread, revalued until the total matches the streaming run.
    let passes = rows / CHUNK_OPTIONS;
    let run = |chunk: usize| {
        let range = chunk * CHUNK_OPTIONS..(chunk + 1) * CHUNK_OPTIONS;
        let mut out = vec![0.0; CHUNK_OPTIONS];
        for _ in 0..passes {
            let (x, fk) = (&x[range.clone()], &fk[range.clone()]);
            let (v, omega) = (&v[range.clone()], &omega[range.clone()]);
            // The same rows valued in the streaming run, which checks every outcome.
            let valued = black_over_strike(x, fk, v, omega, &mut out, Execution::Simd);
            std::hint::black_box((valued.is_ok(), &mut out));
        }
    };
    let label = "risk-array kernel, SIMD, in-cache rows";
    let one = time_in_cache(host, label, passes, (repetitions, threads), run);
    against_the_limit(host, [&x, &fk, &v, &omega], passes, repetitions, one)
}

/// Ballast's kernel on one in-cache chunk (`ours_seconds` for `passes` passes) against the
/// practical limit on the same rows: time and agreement.
fn against_the_limit(
    host: &dyn Host,
    [x, fk, v, omega]: [&[f64]; 4],
    passes: usize,
    repetitions: usize,
    ours_seconds: f64,
) -> Result<(), Error> {
    let one = ours_seconds;
    let range = 0..CHUNK_OPTIONS;
    let mut floor_out = vec![0.0; CHUNK_OPTIONS];
    let floor = best_of(host, repetitions, || {
        for _ in 0..passes {
            let (x, fk) = (&x[range.clone()], &fk[range.clone()]);
            let (v, omega) = (&v[range.clone()], &omega[range.clone()]);
            floor_black_over_strike(x, fk, v, omega, &mut floor_out);
            std::hint::black_box(&mut floor_out);
        }
    });
    report(
        host,
        "practical limit: A&S 26.2.17 kernel, in-cache rows",
        passes * CHUNK_OPTIONS,
        floor,
        1,
    );
    host.print(&format!(
        "  Ballast's kernel takes {:.2}x the practical limit's time per valuation",
        one / floor
    ));
    let mut ours = vec![0.0; CHUNK_OPTIONS];
    let (xs, fks, vs, omegas) =
        (&x[range.clone()], &fk[range.clone()], &v[range.clone()], &omega[range]);
    black_over_strike(xs, fks, vs, omegas, &mut ours, Execution::Simd)?;
    let gap = ours.iter().zip(&floor_out).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    host.print(&format!(
        "  (the limit kernel differs from Ballast's by up to {gap:.1e} of the strike)"
    ));
    ensure(gap < 1e-6, || format!("the reference kernel disagrees with Ballast's by {gap:e}"))?;
    Ok(())
}
