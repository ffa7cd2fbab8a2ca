//! `ballast conformance span FILE`: regenerate every risk array and composite delta of a SPAN
//! risk-parameter file from the file's own inputs, and compare with what the file publishes.
//!
//! Prints the file's contents, one line per kind of contract (how many arrays and composite
//! deltas match, the worst error and where), one line per failing contract, and a last line
//! `N passed, M failed`. With `--portfolio`, also prints that portfolio's SPAN margin.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use span::{
    ARRAY_TOLERANCE_CURRENCY, ArrayCheck, CheckedKind, DELTA_TOLERANCE_UNITS, SpanFile, SpanMargin,
    SpanPortfolio,
};

/// Arguments of this suite.
#[derive(Debug, Args)]
pub struct SpanArgs {
    /// The SPAN file (XML, e.g. Takasbank's `takas.spn`).
    path: PathBuf,
    /// A portfolio (JSON, see docs/formats.md) whose SPAN margin to print.
    #[arg(long)]
    portfolio: Option<PathBuf>,
}

/// Runs the suite.
///
/// # Errors
/// An unreadable or invalid file, or any contract whose array does not regenerate.
pub fn run(args: &SpanArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.path).with_context(|| format!("reading {}", args.path.display()))?;
    let file =
        SpanFile::from_bytes(&bytes).with_context(|| format!("parsing {}", args.path.display()))?;
    describe(&file);
    let checks = span::regenerate(&file)?;
    for kind in [CheckedKind::Option, CheckedKind::Future, CheckedKind::Physical] {
        summarise(kind, &checks);
    }
    for check in checks.iter().filter(|c| !c.passed()) {
        let (error, scenario) = check.array_error();
        println!(
            "FAIL {}: array error {error:.6} at scenario {}, delta error {:.6}",
            check.location,
            scenario + 1,
            check.delta_error()
        );
    }
    if let Some(path) = &args.portfolio {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let portfolio = SpanPortfolio::from_json(&text)
            .with_context(|| format!("parsing {}", path.display()))?;
        print_margin(&span::margin(&file, &portfolio)?);
    }
    let failed = checks.iter().filter(|c| !c.passed()).count();
    println!("{} passed, {failed} failed", checks.len() - failed);
    anyhow::ensure!(failed == 0, "{failed} risk arrays did not regenerate");
    Ok(())
}

fn describe(file: &SpanFile) {
    let products = |f: fn(&span::Exchange) -> usize| file.exchanges.iter().map(f).sum::<usize>();
    let futures = products(|e| e.futures.iter().map(|p| p.contracts.len()).sum());
    let physicals = products(|e| e.physicals.iter().map(|p| p.contracts.len()).sum());
    let series = products(|e| e.options.iter().map(|p| p.series.len()).sum());
    let options =
        products(|e| e.options.iter().flat_map(|p| &p.series).map(|s| s.options.len()).sum());
    println!(
        "SPAN file of {} for {} (created {}): {} exchanges, {} combined commodities, \
         {physicals} physicals, {futures} futures, {series} option series, {options} options, \
         {} inter-commodity spreads",
        file.clearing_org,
        file.business_date,
        file.created,
        file.exchanges.len(),
        file.combined.len(),
        file.inter_spreads.len()
    );
}

fn summarise(kind: CheckedKind, checks: &[ArrayCheck]) {
    let of_kind: Vec<&ArrayCheck> = checks.iter().filter(|c| c.kind == kind).collect();
    if of_kind.is_empty() {
        return;
    }
    let arrays = of_kind.iter().filter(|c| c.array_error().0 <= ARRAY_TOLERANCE_CURRENCY).count();
    let deltas = of_kind.iter().filter(|c| c.delta_error() <= DELTA_TOLERANCE_UNITS).count();
    let worst_array = of_kind.iter().max_by(|a, b| a.array_error().0.total_cmp(&b.array_error().0));
    let worst_delta = of_kind.iter().max_by(|a, b| a.delta_error().total_cmp(&b.delta_error()));
    println!(
        "{kind:?}: {arrays}/{n} risk arrays within {ARRAY_TOLERANCE_CURRENCY} currency units, \
         {deltas}/{n} composite deltas within {DELTA_TOLERANCE_UNITS}",
        n = of_kind.len()
    );
    if let (Some(a), Some(d)) = (worst_array, worst_delta) {
        let (error, scenario) = a.array_error();
        println!(
            "  worst array error {error:.6} {} at {} scenario {} (file {:.6}, ours {:.6}); \
             worst delta error {:.1e} at {}",
            a.currency,
            a.location,
            scenario + 1,
            a.published.losses[scenario],
            a.regenerated.losses[scenario],
            d.delta_error(),
            d.location
        );
    }
}

fn print_margin(m: &SpanMargin) {
    for c in &m.commodities {
        println!(
            "{} ({}): scan {:.2} (scenario {}), intra {:.2}, spot {:.2}, inter credit {:.2}, \
             short option minimum {:.2} ({} shorts), risk {:.2}, net option value {:.2}",
            c.code,
            c.currency,
            c.scan_risk,
            c.worst_scenario + 1,
            c.intra_spread_charge,
            c.spot_charge,
            c.inter_credit,
            c.short_option_minimum,
            c.short_option_contracts,
            c.risk_requirement,
            c.net_option_value
        );
    }
    for (currency, total) in &m.totals {
        println!("SPAN margin {currency}: {total:.2}");
    }
}
