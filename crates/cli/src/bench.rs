//! `ballast bench`: the benchmark library (`bench`) run on this machine. The CLI supplies what
//! the library may not read itself: the wall clock, the process's memory and the terminal.

use std::time::Instant;

use anyhow::{Result, anyhow};
use clap::Args;

/// Arguments of `ballast bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Fewer repetitions and smaller problems (for a smoke test).
    #[arg(long)]
    pub quick: bool,
    /// Seed of the synthetic inputs.
    #[arg(long, default_value_t = 20_261_124)]
    pub seed: u64,
    /// Run one section only: `pricing`, `margin`, `epoch`, `backtest`, `liquidation` or
    /// `netting` (the last four run only when named).
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

/// The machine as the benchmarks see it: a monotonic clock from the start of the run, Linux's
/// memory figures, and standard output.
struct Machine {
    start: Instant,
}

impl bench::Host for Machine {
    fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn peak_rss_mib(&self) -> Option<f64> {
        peak_rss_mib()
    }

    fn print(&self, line: &str) {
        println!("{line}");
    }
}

/// Peak resident memory of this process so far, in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
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

/// Runs `ballast bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    let only = match args.only.as_deref() {
        None => None,
        Some("pricing") => Some(bench::Section::Pricing),
        Some("margin") => Some(bench::Section::Margin),
        Some("epoch") => Some(bench::Section::Epoch),
        Some("backtest") => Some(bench::Section::Backtest),
        Some("liquidation") => Some(bench::Section::Liquidation),
        Some("netting") => Some(bench::Section::Netting),
        Some(other) => {
            return Err(anyhow!(
                "--only {other:?}: expected pricing, margin, epoch, backtest, liquidation or \
                 netting"
            ));
        }
    };
    let options = bench::Options {
        quick: args.quick,
        seed: args.seed,
        only,
        instruments: args.instruments,
        accounts: args.accounts,
        positions: args.positions,
        methodology: crate::profile::load_methodology(&args.methodology)?,
        methodology_name: args.methodology.clone(),
    };
    println!("{}", machine_line());
    bench::run(&Machine { start: Instant::now() }, &options)?;
    Ok(())
}
