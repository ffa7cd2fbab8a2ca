//! `ballast conformance`: run a peer methodology's own published test data through the engine.
//!
//! Each suite reads the peer's files as they are published (never copied into this repository),
//! prints one line per case and a last line `N passed, M failed`, and exits non-zero on a failure.

mod derive;
mod span;

use clap::{Args, Subcommand};

/// Arguments of `ballast conformance`.
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Debug, Subcommand)]
enum Suite {
    /// Derive's PMRM_2 test cases: one JSON file per case in DIR.
    DerivePmrm2(derive::DeriveArgs),
    /// A SPAN risk-parameter file (XML): regenerate every risk array and composite delta.
    Span(span::SpanArgs),
}

/// Runs the chosen suite.
///
/// # Errors
/// Unreadable files, or any failed case.
pub fn run(args: &ConformanceArgs) -> anyhow::Result<()> {
    match &args.suite {
        Suite::DerivePmrm2(a) => derive::run(a),
        Suite::Span(a) => span::run(a),
    }
}
