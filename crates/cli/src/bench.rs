//! `ballast bench`: throughput and accuracy measured on this machine.
//!
//! Timings use the wall clock (allowed here, in the CLI layer) and report the best of several
//! repetitions, which is the least noisy estimate of what the code costs on a shared machine.
//! Every section also checks what it computed, so a fast wrong kernel cannot report a figure.

use std::time::Instant;

use anyhow::{Result, ensure};
use clap::Args;
use pricing::batch::{Black76Batch, Execution, black_over_strike, black76_prices};
use pricing::{EuropeanInputs, EuropeanSpec, Model, OptionRight, Settlement, price};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Arguments of `ballast bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Fewer repetitions and smaller problems (for a smoke test).
    #[arg(long)]
    pub quick: bool,
    /// Seed of the synthetic inputs.
    #[arg(long, default_value_t = 20_261_124)]
    pub seed: u64,
    /// Run one section only: `pricing`, `margin` or `epoch` (the epoch runs only when named).
    #[arg(long)]
    pub only: Option<String>,
    /// Listed instruments of the synthetic exchange (margin section).
    #[arg(long, default_value_t = 2_000)]
    pub instruments: usize,
    /// Accounts of the synthetic book (margin section).
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: usize,
    /// Positions per account (margin section).
    #[arg(long, default_value_t = 20)]
    pub positions: usize,
    /// Methodology of the margin section: bundled name or TOML file.
    #[arg(long, default_value = "ballast-pm")]
    pub methodology: String,
}

/// Best wall time in seconds of `repetitions` runs of `f`.
pub fn best_of(repetitions: usize, mut f: impl FnMut()) -> f64 {
    (0..repetitions)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

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

fn report(label: &str, valuations: usize, seconds: f64, threads: usize) {
    let ns = seconds * 1e9 / valuations as f64;
    let per_second = valuations as f64 / seconds;
    println!(
        "  {label:<44} {ns:>8.2} ns/valuation {:>9.1} M/s total {:>9.1} M/s per core \
         ({threads} thread{})",
        per_second / 1e6,
        per_second / 1e6 / threads as f64,
        if threads == 1 { "" } else { "s" }
    );
}

fn pricing_section(args: &BenchArgs) -> Result<()> {
    let (n, repetitions) = if args.quick { (100_000, 2) } else { (2_000_000, 7) };
    let universe = Universe::new(n, args.seed);
    let threads = rayon::current_num_threads();
    println!("pricing: {n} Black-76 options (seed {}), best of {repetitions}", args.seed);

    let sample = n.min(200_000);
    let mut sink = 0.0;
    let accurate =
        best_of(repetitions, || sink += (0..sample).map(|i| universe.accurate(i)).sum::<f64>());
    report("scalar, accurate (Let's Be Rational price)", sample, accurate, 1);

    let mut out = vec![0.0; n];
    let seconds = best_of(repetitions, || {
        black76_prices(&universe.batch(), &mut out, Execution::Scalar).unwrap_or(());
    });
    report("batch kernel, scalar instantiation", n, seconds, 1);
    in_cache_section(&universe, repetitions, threads);
    for (label, execution, used) in [
        ("batch kernel, SIMD, streaming 2M-option arrays", Execution::Simd, 1),
        ("batch kernel, SIMD, streaming, all cores", Execution::SimdParallel, threads),
    ] {
        let seconds = best_of(repetitions, || {
            black76_prices(&universe.batch(), &mut out, execution).unwrap_or(());
        });
        report(label, n, seconds, used);
    }
    let worst = (0..sample)
        .map(|i| (out[i] - universe.accurate(i)).abs() / universe.forward[i])
        .fold(0.0, f64::max);
    println!(
        "  kernel vs accurate price: max |error| / forward = {worst:.2e} over {sample} options"
    );
    ensure!(worst < 1e-9, "kernel error {worst:e} exceeds 1e-9 of the forward");
    std::hint::black_box(sink);
    risk_array_section(&universe, repetitions, threads)
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
fn in_cache_section(universe: &Universe, repetitions: usize, threads: usize) {
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
            black76_prices(&batch, &mut out, Execution::Simd).unwrap_or(());
            std::hint::black_box(&mut out);
        }
    };
    let one = best_of(repetitions, || run(0));
    report("batch kernel, SIMD, in-cache chunks", passes * CHUNK_OPTIONS, one, 1);
    let all = best_of(repetitions, || {
        rayon::scope(|s| {
            for t in 0..threads {
                s.spawn(move |_| run(t));
            }
        });
    });
    report(
        "batch kernel, SIMD, in-cache chunks, all cores",
        threads * passes * CHUNK_OPTIONS,
        all,
        threads,
    );
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
fn risk_array_section(universe: &Universe, repetitions: usize, threads: usize) -> Result<()> {
    let ([x, fk, v, omega], instruments, scenarios) = risk_rows(universe);
    let rows = x.len();
    println!("risk arrays: {instruments} instruments x {scenarios} scenarios (21 price x 3 vol)");
    let mut out = vec![0.0; rows];
    for (label, execution, used) in [
        ("risk-array kernel, SIMD, streaming rows", Execution::Simd, 1),
        ("risk-array kernel, SIMD, streaming rows, all cores", Execution::SimdParallel, threads),
    ] {
        let seconds = best_of(repetitions, || {
            black_over_strike(&x, &fk, &v, &omega, &mut out, execution).unwrap_or(());
        });
        report(label, rows, seconds, used);
    }
    // In cache: one chunk of rows per thread, revalued until the total matches the streaming run.
    let passes = rows / CHUNK_OPTIONS;
    let run = |chunk: usize| {
        let range = chunk * CHUNK_OPTIONS..(chunk + 1) * CHUNK_OPTIONS;
        let mut out = vec![0.0; CHUNK_OPTIONS];
        for _ in 0..passes {
            let (x, fk) = (&x[range.clone()], &fk[range.clone()]);
            let (v, omega) = (&v[range.clone()], &omega[range.clone()]);
            black_over_strike(x, fk, v, omega, &mut out, Execution::Simd).unwrap_or(());
            std::hint::black_box(&mut out);
        }
    };
    let one = best_of(repetitions, || run(0));
    report("risk-array kernel, SIMD, in-cache rows", passes * CHUNK_OPTIONS, one, 1);
    let all = best_of(repetitions, || {
        rayon::scope(|s| {
            for t in 0..threads {
                s.spawn(move |_| run(t));
            }
        });
    });
    report(
        "risk-array kernel, SIMD, in-cache rows, all cores",
        threads * passes * CHUNK_OPTIONS,
        all,
        threads,
    );
    let range = 0..CHUNK_OPTIONS;
    let mut floor_out = vec![0.0; CHUNK_OPTIONS];
    let floor = best_of(repetitions, || {
        for _ in 0..passes {
            let (x, fk) = (&x[range.clone()], &fk[range.clone()]);
            let (v, omega) = (&v[range.clone()], &omega[range.clone()]);
            floor_black_over_strike(x, fk, v, omega, &mut floor_out);
            std::hint::black_box(&mut floor_out);
        }
    });
    report("practical limit: A&S 26.2.17 kernel, in-cache rows", passes * CHUNK_OPTIONS, floor, 1);
    println!(
        "  Ballast's kernel takes {:.2}x the practical limit's time per valuation",
        one / floor
    );
    let mut ours = vec![0.0; CHUNK_OPTIONS];
    let (xs, fks, vs, omegas) =
        (&x[range.clone()], &fk[range.clone()], &v[range.clone()], &omega[range]);
    black_over_strike(xs, fks, vs, omegas, &mut ours, Execution::Simd)?;
    let gap = ours.iter().zip(&floor_out).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    println!("  (the limit kernel differs from Ballast's by up to {gap:.1e} of the strike)");
    ensure!(gap < 1e-6, "the reference kernel disagrees with Ballast's by {gap:e}");
    Ok(())
}

fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let features = [
        ("avx2", cfg!(target_feature = "avx2")),
        ("fma", cfg!(target_feature = "fma")),
        ("avx512f", cfg!(target_feature = "avx512f")),
    ];
    let enabled: Vec<&str> = features.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect();
    format!(
        "machine: {cpu}, {} logical cores; compiled for: {}",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        enabled.join(" ")
    )
}

/// The least work a full refresh of `book` does as designed, on the same threads and chunks: per
/// account and underlying, `Σ size · row` over the padded `f64` rows and the smallest scenario
/// cell. No collateral, add-ons, offsets or output. It times how fast this machine streams the
/// rows the accounts hold, the floor under the refresh; the sum of the worst cells is returned
/// so that none of it can be optimised away.
fn sparse_sum_alone(arrays: &margin::RiskArrays, book: &margin::AccountBook) -> f64 {
    use rayon::prelude::*;
    let underlyings: Vec<basics::Currency> =
        arrays.instruments().iter().map(product::Instrument::underlying).collect();
    // A small number per underlying, cheaper to compare than the currency code.
    let slots: Vec<usize> =
        underlyings.iter().map(|u| underlyings.partition_point(|v| v < u)).collect();
    let starts: Vec<usize> = (0..underlyings.len()).map(|r| arrays.row_start(r)).collect();
    let cells: Vec<usize> = (0..underlyings.len()).map(|r| arrays.row(r).len()).collect();
    // Chunks of the book's own size, without allocating anything inside the timed call.
    let chunk = margin::BOOK_CHUNK_ACCOUNTS;
    (0..book.len().div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            let mut total = 0.0;
            for a in c * chunk..((c + 1) * chunk).min(book.len()) {
                let held = book.account(a).0;
                for unit in held.chunk_by(|x, y| slots[x.0] == slots[y.0]) {
                    total += worst_cell(arrays.all_rows(), &starts, unit, cells[unit[0].0]);
                }
            }
            total
        })
        .sum()
}

/// The smallest of the first `len` cells of `Σ size · row` over `held`: 32 cells at a time so
/// that the sums stay in registers, then 8 at a time (rows are zero-padded to whole blocks of 8).
fn worst_cell(flat: &[f64], starts: &[usize], held: &[(usize, f64)], len: usize) -> f64 {
    fn pass<const N: usize>(
        flat: &[f64],
        starts: &[usize],
        held: &[(usize, f64)],
        at: usize,
    ) -> [f64; N] {
        let mut sums = [0.0; N];
        for &(row, size) in held {
            for (sum, value) in sums.iter_mut().zip(&flat[starts[row] + at..][..N]) {
                *sum += size * value;
            }
        }
        sums
    }
    // Lane-wise over whole blocks of 8 (a vector minimum), cell by cell past the last scenario.
    let least = |worst: f64, sums: &[f64], at: usize| {
        let mut lanes = [worst; 8];
        let whole = (len - at).min(sums.len()) / 8 * 8;
        for block in sums[..whole].chunks_exact(8) {
            for (lane, cell) in lanes.iter_mut().zip(block) {
                *lane = lane.min(*cell);
            }
        }
        let tail = sums[whole..].iter().take(len - at - whole);
        tail.chain(&lanes).fold(worst, |w, s| w.min(*s))
    };
    let mut worst = f64::INFINITY;
    let mut at = 0;
    while at + 32 <= len.next_multiple_of(8) {
        worst = least(worst, &pass::<32>(flat, starts, held, at), at);
        at += 32;
    }
    while at < len {
        worst = least(worst, &pass::<8>(flat, starts, held, at), at);
        at += 8;
    }
    worst
}

/// Peak resident memory of this process so far, in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The margin engine on a synthetic exchange: risk arrays, a full refresh, one what-if.
fn margin_section(args: &BenchArgs) -> Result<()> {
    use margin::{Context, Engine};
    let (instruments_wanted, accounts, repetitions) = if args.quick {
        (400, 20_000, 2)
    } else {
        (args.instruments.clamp(10, 1_000_000), args.accounts.max(1), 5)
    };
    let positions = args.positions.clamp(1, 1_000);
    let engine = Engine::new(crate::profile::load_methodology(&args.methodology)?)?;
    let (market, instruments) = testkit::synthetic_exchange(instruments_wanted);
    let scenarios = engine.methodology().scenario_set(basics::Currency::BTC)?.len();
    println!(
        "margin: {}, {} instruments, {scenarios} scenarios per underlying, best of {repetitions}",
        args.methodology,
        instruments.len()
    );
    let mut arrays = None;
    let seconds = best_of(repetitions, || arrays = engine.risk_arrays(&market, &instruments).ok());
    let arrays = arrays.ok_or_else(|| anyhow::anyhow!("risk arrays failed"))?;
    println!(
        "  instrument risk arrays                       {:>10.2} ms ({} cells, {:.1} MiB)",
        seconds * 1e3,
        arrays.cells(),
        arrays.cells() as f64 * 8.0 / 1_048_576.0
    );
    let liquidity = engine.liquidity(&market, &arrays);
    let ctx = Context::new(&engine, &arrays, &market, &liquidity);
    let futures: Vec<usize> =
        (0..instruments.len()).filter(|&i| !instruments[i].is_option()).collect();
    let book = testkit::synthetic_book(args.seed, accounts, positions, instruments.len(), &futures);
    let (positions_held, balances_held) = book.entries();
    let book_mib =
        (positions_held * 16 + balances_held * 24 + 2 * 8 * accounts) as f64 / 1_048_576.0;
    let mut lines = Vec::new();
    // The output buffer is kept between refreshes, as a service does.
    let seconds = best_of(repetitions, || {
        if engine.refresh_into(&ctx, &book, &mut lines).is_err() {
            lines.clear();
        }
    });
    ensure!(
        lines.len() >= accounts,
        "refresh produced {} lines for {accounts} accounts",
        lines.len()
    );
    println!(
        "  full refresh: {accounts} accounts x {positions} positions  {:>10.2} ms \
         ({:.0} ns per account, {} threads; book {book_mib:.0} MiB)",
        seconds * 1e3,
        seconds * 1e9 / accounts as f64,
        rayon::current_num_threads()
    );
    let mut least = 0.0;
    let seconds = best_of(repetitions, || least = sparse_sum_alone(&arrays, &book));
    std::hint::black_box(least);
    println!(
        "  floor: the same book's sparse sum alone      {:>10.2} ms (each unit's sum of \
         size x row and its worst cell, nothing else)",
        seconds * 1e3
    );
    what_if_section(args, &engine, &ctx, &book, &instruments[futures[0]], repetitions);
    println!("  peak resident memory                         {:>10.0} MiB", peak_rss_mib());
    // After the memory figure: the digest's buffer is the benchmark's, not the engine's.
    println!("  digest of every account's figures            {}", refresh_digest(&lines));
    Ok(())
}

/// Keccak-256 of every figure of a refresh, bit for bit: two builds, machines or thread counts
/// that print the same digest computed the same margins.
fn refresh_digest(lines: &[margin::RefreshLine]) -> String {
    let mut bytes = Vec::with_capacity(lines.len() * 96);
    for line in lines {
        let f = &line.figures;
        bytes.extend_from_slice(&(line.account as u64).to_le_bytes());
        bytes.extend_from_slice(f.currency.as_str().as_bytes());
        let values = [
            f.equity,
            f.scan_loss,
            f.add_ons_im,
            f.add_ons_mm,
            f.haircut_im,
            f.haircut_mm,
            f.initial_margin,
            f.maintenance_margin,
        ];
        for v in values {
            bytes.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        if let Some(worst) = f.worst {
            bytes.extend_from_slice(worst.underlying.as_str().as_bytes());
            bytes.extend_from_slice(&(worst.scenario as u64).to_le_bytes());
        }
    }
    oracle::keccak256(&bytes).to_string()
}

/// One account's what-if (before and after one trade), timed over many rounds.
fn what_if_section(
    args: &BenchArgs,
    engine: &margin::Engine,
    ctx: &margin::Context<'_>,
    book: &margin::AccountBook,
    traded: &product::Instrument,
    repetitions: usize,
) {
    let account = book.resolved(0);
    let trade = [product::Position { instrument: *traded, size: 10_000.0 }];
    let mut scratch = margin::Scratch::default();
    let rounds = if args.quick { 200 } else { 5_000 };
    let seconds = best_of(repetitions, || {
        for _ in 0..rounds {
            std::hint::black_box(
                margin::whatif::what_if(engine, ctx, &account, &trade, &mut scratch).ok(),
            );
        }
    });
    println!(
        "  what-if of one account (before and after)    {:>10.2} us",
        seconds * 1e6 / f64::from(rounds)
    );
}

/// Runs `ballast bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    println!("{}", machine_line());
    match args.only.as_deref() {
        None => {
            pricing_section(args)?;
            margin_section(args)
        }
        Some("pricing") => pricing_section(args),
        Some("margin") => margin_section(args),
        Some("epoch") => crate::bench_epoch::run(args),
        Some(other) => Err(anyhow::anyhow!("--only {other:?}: expected pricing, margin or epoch")),
    }
}

#[cfg(test)]
mod tests {
    use super::worst_cell;

    /// The floor's kernel against the plain definition: for scenario counts around the
    /// 8- and 32-cell blocks, the smallest of `Σ size · row` over the first `len` cells, with
    /// the padding (which holds a smaller value here) never counted.
    #[test]
    fn the_floors_kernel_finds_the_smallest_summed_cell() {
        for len in [1_usize, 7, 8, 9, 31, 32, 33, 44, 60, 64, 70] {
            let padded = len.next_multiple_of(8);
            let rows = 3;
            let flat: Vec<f64> = (0..rows * padded)
                .map(|i| if i % padded < len { ((i * 37) % 23) as f64 - 11.0 } else { -1e9 })
                .collect();
            let starts: Vec<usize> = (0..rows).map(|r| r * padded).collect();
            let held = [(0, 1.5), (2, -0.5), (1, 2.0)];
            let plain = (0..len)
                .map(|s| held.iter().map(|&(r, q)| q * flat[starts[r] + s]).sum::<f64>())
                .fold(f64::INFINITY, f64::min);
            assert_eq!(worst_cell(&flat, &starts, &held, len), plain, "length {len}");
        }
    }
}
