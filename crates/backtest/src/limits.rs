//! The bounds of this crate's inputs, named with their unit last.
//!
//! They live here rather than in `basics::limits` while the crate is the only reader; each one
//! keeps a loop or an allocation bounded whatever the input.

/// Data rows of one price file: a century of hourly bars (876,600) fits.
pub const BARS_MAX: usize = 1_000_000;
/// Observations of one coverage series (pairs of requirement and realised loss).
pub const OBSERVATIONS_MAX: usize = 1_000_000;
/// Accounts of one loss matrix: an exchange's whole book.
pub const ACCOUNTS_MAX: usize = 4_000_000;
/// Historical scenarios of one loss matrix or return series: forty years of daily returns.
pub const HISTORY_SCENARIOS_MAX: usize = 10_000;
/// Cells of one loss matrix (16 GiB of `f64`), so that accounts × scenarios stays addressable
/// and a matrix fits the memory of the machines that run the bulk computation.
pub const MATRIX_CELLS_MAX: usize = 2_000_000_000;
/// Longest horizon of a multi-day figure, in days: a year of trading days.
pub const HORIZON_DAYS_MAX: usize = 250;

// Historical scenarios are returns between bars, so a series of them comes from one price file.
const _: () = assert!(HISTORY_SCENARIOS_MAX < BARS_MAX);
// A horizon sum needs at least one more day than the horizon to be a sample of more than one.
const _: () = assert!(HORIZON_DAYS_MAX < HISTORY_SCENARIOS_MAX);
// The Basel traffic light needs one full window of observations.
const _: () = assert!(OBSERVATIONS_MAX >= crate::coverage::BASEL_WINDOW_OBSERVATIONS);
// A book of the largest account count must fit with a Basel year of 250 scenarios.
const _: () = assert!(ACCOUNTS_MAX * 250 <= MATRIX_CELLS_MAX);

/// Legs of one backtest account: a strategy, not an exchange account's whole inventory.
pub const LEGS_MAX: usize = 64;
/// Largest strike over spot of a spot-relative option leg.
pub const MONEYNESS_MAX: f64 = 10.0;
/// Skipped observations a backtest report lists one by one; past it they are only counted (a
/// methodology that refuses every account every day would otherwise list millions).
pub const SKIPS_LISTED_MAX: usize = 10_000;
/// Accounts whose daily series a backtest report keeps (for charts); larger books keep the
/// book's series and each account's statistics only.
pub const SERIES_ACCOUNTS_MAX: usize = 64;
