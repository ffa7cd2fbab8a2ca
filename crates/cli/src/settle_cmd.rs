//! `ballast settle`: one portfolio settled on a market (futures' variation margin at the mark,
//! expired contracts at the market's settlement price), printed as the portfolio it leaves and
//! the cash each position moved.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use formats::portfolio::PortfolioDocument;
use margin::Engine;
use product::Instrument;

use crate::margin_cmd::load_portfolio;
use crate::profile::{load_market, load_methodology};

/// Arguments of `ballast settle`.
#[derive(Debug, Args)]
pub struct SettleArgs {
    /// Market snapshot (Ballast JSON, with `settlements` for expired contracts); the bundled
    /// sample market when absent.
    #[arg(long)]
    pub market: Option<PathBuf>,
    /// Portfolio (Ballast JSON; futures with their `entry` price).
    #[arg(long)]
    pub portfolio: PathBuf,
    /// Methodology (bundled name or TOML file): it values the marks, and decides whether a
    /// settlement may leave a debt.
    #[arg(long, default_value = "ballast-pm")]
    pub methodology: String,
    /// Print only the settled portfolio, as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ballast settle`.
pub fn run(args: &SettleArgs) -> Result<()> {
    let market = load_market(args.market.as_ref())?;
    let portfolio = load_portfolio(&args.portfolio)?;
    let valuation = market.valuation();
    let live: Vec<Instrument> = (portfolio.positions().iter())
        .map(|p| p.instrument)
        .filter(|i| i.expiry().is_none_or(|expiry| expiry > valuation))
        .collect();
    let priced = Engine::new(load_methodology(&args.methodology)?)?.price(&market, &live)?;
    let settled = priced.settle(&portfolio)?;
    let document = PortfolioDocument::from_portfolio(&settled.portfolio);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    let mut out = String::new();
    let _ = writeln!(out, "{:<26} {:>10} {:>14} {:>16}  cash", "position", "kind", "size", "price");
    for f in &settled.flows {
        let kind = f.kind.name();
        let _ = writeln!(
            out,
            "{:<26} {kind:>10} {:>14} {:>16.4}  {}",
            f.instrument.to_string(),
            f.size,
            f.price,
            f.amount
        );
    }
    let _ = writeln!(out, "\nsettled portfolio:\n{}", serde_json::to_string_pretty(&document)?);
    print!("{out}");
    Ok(())
}
