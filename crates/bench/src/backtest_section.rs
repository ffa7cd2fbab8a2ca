//! `ballast bench --only backtest`: a seven-year daily backtest of 10,000 seeded random accounts
//! on a seeded synthetic BTC path (the replay, then the loop: one priced market per day, every
//! account refreshed on it and on each horizon's earlier holdings), and the historical VaR and
//! ES of 1,000,000 accounts × 1,000 scenarios with the book's Euler contributions.

use std::fmt::Write as _;

use backtest::book::Book;
use backtest::capital::{Levels, LossMatrix, account_risks, book_risk};
use backtest::history::{Gaps, Interval, Policy, ReadConfig, read_csv};
use backtest::replay::{SurfaceModel, Window, replay};
use backtest::run::{Config, run as backtest_run, standard_horizons};
use basics::Currency;
use margin::Engine;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{Error, Host, Options, ensure};
use formats::bundled::REPLAY_SURFACE_TOML as SURFACE_TOML;

/// Seven years of daily bars and the EWMA's warm-up.
const DAYS: usize = 7 * 365 + 30;

/// The backtest section.
///
/// # Errors
/// The surface model, the replay or the backtest refusing the synthetic inputs, or a figure that
/// fails its check.
pub fn run(host: &dyn Host, args: &Options) -> Result<(), Error> {
    let (accounts, days, var_accounts) =
        if args.quick { (1_000, 365 + 30, 100_000) } else { (10_000, DAYS, 1_000_000) };
    let model = SurfaceModel::from_toml(SURFACE_TOML).map_err(|e| Error::new(e.to_string()))?;
    let text = synthetic_history(args.seed, days);
    let config = ReadConfig { interval: Interval::Day, rows: Policy::Refuse, gaps: Gaps::Refuse };
    let history = read_csv(&text, config).map_err(|e| Error::new(e.to_string()))?;
    let start = host.seconds();
    let window = Window { from: None, to: None };
    let replayed = replay(&[(Currency::BTC, &history)], &model, window)
        .map_err(|e| Error::new(e.to_string()))?;
    let replay_seconds = host.seconds() - start;
    let book = Book::random(args.seed, accounts, &[Currency::BTC])
        .map_err(|e| Error::new(e.to_string()))?;
    let engine = Engine::new(args.methodology.clone())?;
    let horizons = standard_horizons(engine.methodology(), &[]);
    let config = Config::new(horizons.clone(), backtest::Confidence::VAR_BASEL)
        .map_err(|e| Error::new(e.to_string()))?;
    let start = host.seconds();
    let report = backtest_run(&replayed, &engine, &book, &config, &mut |_| {})
        .map_err(|e| Error::new(e.to_string()))?;
    let run_seconds = host.seconds() - start;
    let observed = report.accounts.iter().all(|a| {
        a.horizons.iter().all(|h| {
            h.initial.as_ref().map_or(0, |c| c.coverage.observations) + h.skipped == report.days
        })
    });
    ensure(observed, || "an observation is neither counted nor skipped".to_owned())?;
    host.print(&format!(
        "backtest: {}, {accounts} random accounts, {} days, horizons {horizons:?}, {} threads",
        args.methodology_name,
        replayed.days().len(),
        rayon::current_num_threads()
    ));
    host.print(&format!(
        "  replay ({} snapshots)                      {:>10.2} s",
        replayed.days().len(),
        replay_seconds
    ));
    let per = run_seconds * 1e6 / (accounts as f64 * replayed.days().len() as f64);
    host.print(&format!(
        "  backtest loop                                {run_seconds:>10.2} s \
         ({per:.2} us per account-day)"
    ));
    capital_figures(host, args.seed, var_accounts)
}

/// A seeded daily close path: log returns of 4 % a day with a fat tail (one day in fifty
/// three times as wide), from 10,000.
fn synthetic_history(seed: u64, days: usize) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut text = String::from("date,open,high,low,close,volume\n");
    let start = basics::days_from_civil(2014, 1, 1);
    let mut close = 10_000.0_f64;
    for i in 0..days {
        let uniform = |rng: &mut ChaCha8Rng| f64::from(rng.random_range(1..=1_000_000_u32)) / 1e6;
        // Box-Muller from two uniforms in (0, 1].
        let z = (-2.0 * uniform(&mut rng).ln()).sqrt()
            * (std::f64::consts::TAU * uniform(&mut rng)).cos();
        let scale = if rng.random_range(0..50_u32) == 0 { 0.12 } else { 0.04 };
        let open = close;
        close = (open * (scale * z).exp()).max(1.0);
        let (high, low) = (open.max(close) * 1.01, open.min(close) * 0.99);
        let (y, m, d) = basics::civil_from_days(start + i as i64);
        let _ = writeln!(text, "{y:04}-{m:02}-{d:02},{open},{high},{low},{close},1");
    }
    text
}

/// Historical VaR and ES of `accounts` × 1,000 seeded losses, and the book's.
fn capital_figures(host: &dyn Host, seed: u64, accounts: usize) -> Result<(), Error> {
    const SCENARIOS: usize = 1_000;
    let mut losses = vec![0.0_f64; accounts * SCENARIOS];
    losses.par_chunks_mut(SCENARIOS).enumerate().for_each(|(a, row)| {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed ^ (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for cell in row {
            *cell = f64::from(rng.random_range(-1_000_000..=1_000_000_i32));
        }
    });
    let matrix =
        LossMatrix::new(&losses, accounts, SCENARIOS).map_err(|e| Error::new(e.to_string()))?;
    let levels = Levels { var: backtest::Confidence::VAR_BASEL, es: backtest::Confidence::ES_FRTB };
    let start = host.seconds();
    let risks = account_risks(&matrix, levels);
    let account_seconds = host.seconds() - start;
    let start = host.seconds();
    let book = book_risk(&matrix, levels);
    let book_seconds = host.seconds() - start;
    let sum: f64 = book.contributions.iter().sum();
    ensure(
        risks.len() == accounts && (sum - book.risk.es).abs() <= 1e-6 * book.risk.es.abs(),
        || format!("Euler contributions sum to {sum}, the book's ES is {}", book.risk.es),
    )?;
    host.print(&format!("var: {accounts} accounts x {SCENARIOS} scenarios (VaR 99 %, ES 97.5 %)"));
    host.print(&format!(
        "  every account's VaR and ES                   {account_seconds:>10.2} s"
    ));
    host.print(&format!("  the book's VaR, ES and Euler contributions   {book_seconds:>10.2} s"));
    let memory = host.peak_rss_mib().map_or_else(|| "unknown".to_owned(), |m| format!("{m:.0}"));
    host.print(&format!("  peak resident memory                         {memory:>10} MiB"));
    Ok(())
}
