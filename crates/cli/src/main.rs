//! `ballast`: the command-line face of the engine.
//!
//! Each subcommand follows the same two steps: clap parses and validates the arguments (no IO),
//! then the command loads its files into validated domain values and runs. Errors from any layer
//! arrive here as typed errors naming the field at fault and are printed as one line, with a
//! non-zero exit code.

mod audit_cmd;
mod backtest_cmd;
mod bench;
mod bus_cmd;
mod calibrate_cmd;
mod compare;
mod conformance;
mod input;
mod liquidate_cmd;
mod margin_cmd;
mod methodology;
mod net_cmd;
mod oracle_cmd;
mod price;
mod profile;
mod serve;
mod settle_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: the bus worker's shard followers, the netter and the
/// refresh allocate from several threads at once, where glibc's arenas contend on their locks
/// and return memory page by page (the figures are in BENCHMARKS.md). The allocator changes no
/// result: every figure is computed the same way whatever the addresses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ballast: an open, reproducible portfolio-margin engine and risk oracle for crypto derivatives.
#[derive(Debug, Parser)]
#[command(name = "ballast", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Price options and compute Greeks from a JSON array of contracts (file or stdin).
    Price(price::PriceArgs),
    /// Invert option prices into implied volatilities (same input shape, with `price`).
    Iv(price::IvArgs),
    /// Portfolio margin of one portfolio, with the full report.
    Margin(margin_cmd::MarginArgs),
    /// List or show methodology profiles and their canonical hashes.
    Methodology(methodology::MethodologyArgs),
    /// Settle one portfolio on a market: futures at the mark, expired contracts at their price.
    Settle(settle_cmd::SettleArgs),
    /// One portfolio's margin under every bundled profile, side by side.
    Compare(compare::CompareArgs),
    /// Run a peer methodology's published test data through the engine.
    Conformance(conformance::ConformanceArgs),
    /// Run an oracle epoch with local keys: report, leaves and proofs as JSON.
    Attest(oracle_cmd::AttestArgs),
    /// Check a signed report and an account's proof offline.
    Verify(oracle_cmd::VerifyArgs),
    /// Run a federation node or aggregate a quorum of nodes.
    Oracle(oracle_cmd::OracleArgs),
    /// Measure valuation throughput and accuracy on this machine.
    Bench(bench::BenchArgs),
    /// Serve the HTTP + WebSocket API and the live dashboard (SQLite or PostgreSQL).
    Serve(serve::ServeArgs),
    /// Check the service's hash-chained audit log.
    Audit(audit_cmd::AuditArgs),
    /// Backtest a book on replayed price history: coverage, tests, zones, procyclicality.
    Backtest(backtest_cmd::BacktestArgs),
    /// VaR and ES of a book (HS and FHS, 1 and 10 days, plain and stressed), Euler shares.
    Var(backtest_cmd::VarArgs),
    /// Fit a methodology's price range and vol shock per underlying to a target coverage on
    /// history, in and out of sample, and write the new version.
    Calibrate(calibrate_cmd::CalibrateArgs),
    /// An account's liquidation plan: the steps, their expected cost, the margin they leave.
    Liquidate(liquidate_cmd::LiquidateArgs),
    /// Run a synthetic exchange through a price path under liquidation profiles: fund, bad
    /// debt, liquidations, ADL, the friction add-on's coverage, and charts.
    Simulate(liquidate_cmd::SimulateArgs),
    /// A cross-venue book netted per account: standalone per venue, netted, the allocation
    /// back to each venue, capital released.
    Net(net_cmd::NetArgs),
    /// The book sharded over worker processes on NATS JetStream: load it, run workers, and
    /// attest an epoch from their results (the same root as `attest` on the same book).
    Bus(bus_cmd::BusArgs),
}

/// The multi-threaded runtime of the commands that serve or talk to a network.
fn async_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Price(args) => price::run_price(&args),
        Command::Iv(args) => price::run_iv(&args),
        Command::Margin(args) => margin_cmd::run(&args),
        Command::Methodology(args) => methodology::run(&args),
        Command::Settle(args) => settle_cmd::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Conformance(args) => conformance::run(&args),
        Command::Attest(args) => oracle_cmd::run_attest(&args),
        Command::Verify(args) => oracle_cmd::run_verify(&args),
        Command::Oracle(args) => oracle_cmd::run_oracle(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Audit(args) => audit_cmd::run(&args),
        Command::Backtest(args) => backtest_cmd::run_backtest(&args),
        Command::Var(args) => backtest_cmd::run_var(&args),
        Command::Liquidate(args) => liquidate_cmd::run_liquidate(&args),
        Command::Simulate(args) => liquidate_cmd::run_simulate(&args),
        Command::Calibrate(args) => calibrate_cmd::run(&args),
        Command::Net(args) => net_cmd::run(&args),
        Command::Bus(args) => bus_cmd::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
