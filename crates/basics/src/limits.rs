//! Every bound in Ballast, in one place, named with its unit last.
//!
//! A limit exists so that no input can make a loop, an allocation or a request unbounded. Where
//! two limits depend on each other the relation is checked at compile time below, with the reason.

/// Positions in one portfolio.
pub const POSITIONS_MAX: usize = 10_000;
/// Collateral balances in one portfolio.
pub const BALANCES_MAX: usize = 64;
/// Instruments in one market snapshot or exchange universe.
pub const INSTRUMENTS_MAX: usize = 1_000_000;
/// Underlyings in one market snapshot.
pub const UNDERLYINGS_MAX: usize = 256;
/// Expiries (SVI slices or forward points) per underlying.
pub const EXPIRIES_MAX: usize = 512;
/// Quoted points in one SVI calibration.
pub const SURFACE_STRIKES_MAX: usize = 4_096;
/// Scenarios in one methodology's scenario set, per underlying.
pub const SCENARIOS_MAX: usize = 4_096;
/// Iterations of any implied-vol or root search.
pub const IMPLIED_VOL_ITERATIONS_MAX: usize = 200;
/// Iterations of the SVI calibration's outer search.
pub const CALIBRATION_ITERATIONS_MAX: u64 = 2_000;
/// Steps of a binomial tree.
pub const BINOMIAL_STEPS_MAX: usize = 20_000;
/// Contracts in one `ballast price` request.
pub const PRICE_REQUESTS_MAX: usize = 1_000_000;
/// Bytes of one HTTP request body.
pub const REQUEST_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Bytes of one input file read by the CLI.
pub const INPUT_FILE_BYTES_MAX: u64 = 512 * 1024 * 1024;

/// Time to expiry accepted by pricers, in years.
pub const EXPIRY_YEARS_MAX: f64 = 50.0;
/// Volatility accepted by pricers and surfaces (10,000.0 = 1,000,000 %): venues publish marks far
/// beyond any plausible smile for deep in-the-money options hours from expiry (Derive's cases carry
/// mark vols of 1,886 and 2,511), and the engine must value what the market it is given quotes.
pub const VOLATILITY_MAX: f64 = 10_000.0;
/// Absolute flat discount rate of a currency accepted by snapshots, per year (2.0 = 200 %):
/// crypto funding and basis can be high, but beyond this an input is a units mistake.
pub const RATE_ABS_MAX: f64 = 2.0;
/// Absolute per-expiry rate accepted from a published feed, and so by pricers, per year (10.0 =
/// 1,000 %): wider than [`RATE_ABS_MAX`], since a venue's feed prices short expiries whose rates
/// can be extreme (Derive's cases go to 300 %) at a small discounting effect.
pub const FEED_RATE_ABS_MAX: f64 = 10.0;

// A feed may publish every rate a snapshot accepts.
const _: () = assert!(FEED_RATE_ABS_MAX >= RATE_ABS_MAX);
// A portfolio's positions must fit in the universe they are drawn from.
const _: () = assert!(POSITIONS_MAX <= INSTRUMENTS_MAX);
// A price request may hold every instrument of a universe.
const _: () = assert!(PRICE_REQUESTS_MAX >= INSTRUMENTS_MAX);
// SVI slices are per expiry, and a calibration needs more points than the five SVI parameters.
const _: () = assert!(SURFACE_STRIKES_MAX > 5);
