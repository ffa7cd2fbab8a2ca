//! The benchmarks `ballast bench` runs: pricing throughput and accuracy, the margin engine on a
//! synthetic exchange (priced market, full refresh, its floor, a what-if), one oracle epoch, and
//! a backtest with capital metrics.
//!
//! Every section also checks what it computed, so a fast wrong kernel cannot report a figure,
//! and the margin section prints a digest of every account's figures ([`digest`]), so that two
//! builds printing the same digest computed the same margins.
//!
//! **API Boundary:** this crate reads no clock, no file and no environment. The caller passes a
//! [`Host`]: its monotonic clock, its memory probe and where lines go. Timings report the best of
//! several repetitions, the least noisy estimate of what the code costs on a shared machine.

mod backtest_section;
pub mod digest;
mod epoch_section;
mod liquidation_section;
mod margin_section;
mod netting_section;
mod pricing_section;
pub mod synthetic;

use std::fmt;

pub use margin_section::sparse_sum_alone;
use methodology::Methodology;

/// What the benchmarks need from the machine they run on.
pub trait Host: Sync {
    /// Seconds on a monotonic clock, from any origin.
    fn seconds(&self) -> f64;
    /// Peak resident memory of this process so far, in MiB, when the platform tells.
    fn peak_rss_mib(&self) -> Option<f64>;
    /// Shows one line of results.
    fn print(&self, line: &str);
}

/// A benchmark section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Black-76 valuations and the risk-array kernel.
    Pricing,
    /// The margin engine on a synthetic exchange.
    Margin,
    /// One oracle epoch, step by step.
    Epoch,
    /// A seven-year daily backtest of 10,000 accounts, and VaR/ES of 1,000,000 accounts.
    Backtest,
    /// One account's liquidation plan, and an exchange of 100,000 traders through 30 daily
    /// steps with a crash.
    Liquidation,
    /// Capital released by cross-venue netting on seeded hedges, and 1,000,000 accounts netted
    /// over 3 venues.
    Netting,
}

/// What to run, on what.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fewer repetitions and smaller problems (a smoke test).
    pub quick: bool,
    /// Seed of the synthetic inputs.
    pub seed: u64,
    /// One section only; pricing and margin when `None` (the epoch runs only when named).
    pub only: Option<Section>,
    /// Listed instruments of the synthetic exchange.
    pub instruments: usize,
    /// Accounts of the synthetic book.
    pub accounts: usize,
    /// Positions per account.
    pub positions: usize,
    /// The methodology of the margin and epoch sections.
    pub methodology: Methodology,
    /// Its name as the user gave it, for the headings.
    pub methodology_name: String,
}

/// A benchmark that could not produce its figure: what failed and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// What went wrong.
    pub reason: String,
}

impl Error {
    fn new(reason: impl Into<String>) -> Error {
        Error { reason: reason.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Error {}

macro_rules! from_errors {
    ($($source:ty),*) => {
        $(impl From<$source> for Error {
            fn from(e: $source) -> Error {
                Error::new(e.to_string())
            }
        })*
    };
}
from_errors!(
    margin::Error,
    epoch::Error,
    pricing::Error,
    oracle::Error,
    methodology::Error,
    liquidation::Error
);

/// `Ok` when `holds`, else the error `reason()` describes.
fn ensure(holds: bool, reason: impl FnOnce() -> String) -> Result<(), Error> {
    if holds { Ok(()) } else { Err(Error::new(reason())) }
}

/// Best wall time in seconds of `repetitions` runs of `f`, on the host's clock.
pub fn best_of(host: &dyn Host, repetitions: usize, mut f: impl FnMut()) -> f64 {
    (0..repetitions)
        .map(|_| {
            let start = host.seconds();
            f();
            host.seconds() - start
        })
        .fold(f64::INFINITY, f64::min)
}

/// Runs the sections `options` names.
///
/// # Errors
/// The first section that fails, with the reason.
pub fn run(host: &dyn Host, options: &Options) -> Result<(), Error> {
    match options.only {
        None => {
            pricing_section::run(host, options)?;
            margin_section::run(host, options)
        }
        Some(Section::Pricing) => pricing_section::run(host, options),
        Some(Section::Margin) => margin_section::run(host, options),
        Some(Section::Epoch) => epoch_section::run(host, options),
        Some(Section::Backtest) => backtest_section::run(host, options),
        Some(Section::Liquidation) => liquidation_section::run(host, options),
        Some(Section::Netting) => netting_section::run(host, options),
    }
}
