//! `ballast compare`: one portfolio under every bundled profile, side by side.
//!
//! Each portfolio profile values the portfolio with its own scenarios and rules; the figures of
//! every currency line (segregated profiles margin each settlement currency apart) are converted
//! to USD at the snapshot's prices so that the rows compare. The per-position standard margin is
//! the yardstick: each row shows its IM as a multiple of it. A profile that cannot value the
//! portfolio (a missing surface, a refused collateral currency) shows the typed reason instead
//! of a number, and the others still run.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use formats::bundled::BUNDLED;
use formats::methodology::{Profile, hash_hex};
use formats::report::describe_scenarios;
use margin::Engine;
use margin::report::UsdFigures;
use margin::standard::StandardMargin;
use market::MarketSnapshot;
use methodology::Methodology;
use product::Portfolio;
use serde::Serialize;

use crate::margin_cmd::load_portfolio;
use crate::profile::load_market;

/// Arguments of `ballast compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Portfolio (Ballast JSON).
    #[arg(long)]
    pub portfolio: PathBuf,
    /// Market snapshot (Ballast JSON); the bundled sample market when absent.
    #[arg(long)]
    pub market: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// One profile's figures for the portfolio, in USD, or why there are none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Profile name.
    pub profile: String,
    /// Profile version.
    pub version: String,
    /// Canonical hash of the profile.
    pub hash: String,
    /// The figures, or the typed reason the profile cannot value the portfolio.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A row's figures or its error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The profile valued the portfolio.
    Figures(Figures),
    /// It could not; the error names the field at fault and why.
    Error(String),
}

/// Margin figures in USD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Initial margin.
    pub initial_margin_usd: f64,
    /// Maintenance margin.
    pub maintenance_margin_usd: f64,
    /// Worst scenario loss after offsets (0 for per-position profiles).
    pub scan_loss_usd: f64,
    /// Weighted add-ons in the initial margin.
    pub add_ons_im_usd: f64,
    /// The scenario behind the largest currency line's loss, e.g. `BTC −16.0 % vol up`.
    pub worst_scenario: Option<String>,
    /// Initial margin as a multiple of the per-position standard IM.
    pub im_vs_standard: Option<f64>,
}

/// Runs `ballast compare`.
pub fn run(args: &CompareArgs) -> Result<()> {
    let market = load_market(args.market.as_ref())?;
    let portfolio = load_portfolio(&args.portfolio)?;
    let rows = compare(&market, &portfolio)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", render(&rows));
    }
    Ok(())
}

/// Every bundled profile's row for `portfolio` on `market`, in the bundled order.
///
/// # Errors
/// Only when a bundled profile does not parse (a bug); valuation failures become rows.
pub fn compare(market: &Arc<MarketSnapshot>, portfolio: &Portfolio) -> Result<Vec<Row>> {
    let profiles: Vec<Profile> =
        BUNDLED.iter().map(|(_, text)| Profile::from_toml(text)).collect::<Result<_, _>>()?;
    let standard_im = profiles.iter().find_map(|p| match p {
        Profile::PerPosition(s) => {
            standard(s, market, portfolio).ok().map(|f| f.initial_margin_usd)
        }
        Profile::Portfolio(_) => None,
    });
    let rows = profiles
        .iter()
        .map(|profile| {
            let figures = match profile {
                Profile::Portfolio(m) => portfolio_figures(m, market, portfolio),
                Profile::PerPosition(s) => standard(s, market, portfolio),
            };
            let outcome = match figures {
                Ok(mut f) => {
                    f.im_vs_standard =
                        standard_im.filter(|s| *s > 0.0).map(|s| f.initial_margin_usd / s);
                    Outcome::Figures(f)
                }
                Err(e) => Outcome::Error(format!("{e:#}")),
            };
            Row {
                profile: profile.name().to_owned(),
                version: profile.version().to_owned(),
                hash: hash_hex(&profile.hash()),
                outcome,
            }
        })
        .collect();
    Ok(rows)
}

/// A portfolio profile's figures, every currency line converted to USD.
fn portfolio_figures(
    methodology: &Methodology,
    market: &Arc<MarketSnapshot>,
    portfolio: &Portfolio,
) -> Result<Figures> {
    let priced = Engine::new(methodology.clone())?.price_for(market, portfolio)?;
    let usd = UsdFigures::of(&priced.margin(portfolio)?, market)?;
    let worst_scenario = usd.worst.map(|worst| {
        let underlying = worst.underlying();
        let scenario = (priced.arrays().scenarios(underlying))
            .zip(worst.scenario())
            .and_then(|(set, index)| describe_scenarios(set).get(index).cloned());
        match scenario {
            Some(s) => {
                format!("{underlying} {} {:+.1} % vol {}", s.kind, s.spot_move * 100.0, s.vol)
            }
            None => format!("{underlying} contingency"),
        }
    });
    Ok(Figures {
        initial_margin_usd: usd.initial_margin,
        maintenance_margin_usd: usd.maintenance_margin,
        scan_loss_usd: usd.scan_loss,
        add_ons_im_usd: usd.add_ons_im,
        worst_scenario,
        im_vs_standard: None,
    })
}

/// The per-position standard margin. Its arrays come from the first bundled portfolio profile
/// (`ballast-pm`): the standard formulas read only marks, values and sizes from them.
fn standard(
    standard: &StandardMargin,
    market: &Arc<MarketSnapshot>,
    portfolio: &Portfolio,
) -> Result<Figures> {
    let methodology = match formats::bundled::bundled(BUNDLED[0].0)? {
        Profile::Portfolio(m) => *m,
        Profile::PerPosition(_) => anyhow::bail!("the first bundled profile is per-position"),
    };
    let priced = Engine::new(methodology)?.price_for(market, portfolio)?;
    let (im, mm) = standard.totals(priced.arrays(), &priced.resolve(portfolio)?);
    Ok(Figures {
        initial_margin_usd: im,
        maintenance_margin_usd: mm,
        scan_loss_usd: 0.0,
        add_ons_im_usd: 0.0,
        worst_scenario: None,
        im_vs_standard: None,
    })
}

/// The side-by-side table.
#[must_use]
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:<10} {:>14} {:>14} {:>14} {:>12} {:>9}  worst scenario",
        "profile", "version", "IM (USD)", "MM (USD)", "scan loss", "add-ons IM", "IM/std"
    );
    for row in rows {
        match &row.outcome {
            Outcome::Figures(f) => {
                let ratio = f.im_vs_standard.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"));
                let _ = writeln!(
                    out,
                    "{:<22} {:<10} {:>14.2} {:>14.2} {:>14.2} {:>12.2} {:>9}  {}",
                    row.profile,
                    row.version,
                    f.initial_margin_usd,
                    f.maintenance_margin_usd,
                    f.scan_loss_usd,
                    f.add_ons_im_usd,
                    ratio,
                    f.worst_scenario.as_deref().unwrap_or("-")
                );
            }
            Outcome::Error(why) => {
                let _ =
                    writeln!(out, "{:<22} {:<10} cannot value: {why}", row.profile, row.version);
            }
        }
    }
    out
}
