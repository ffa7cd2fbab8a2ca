//! `ballast margin`: one portfolio's margin, with a readable report or JSON.
//!
//! The portfolio and market are Ballast's JSON files, or a Deribit account as Deribit's API
//! returns it: `private/get_positions`, `public/get_book_summary_by_currency` and optionally
//! `public/get_index_price`, each as the bare `result` or the whole JSON-RPC envelope.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use basics::Currency;
use clap::Args;
use formats::deribit::{
    BookSummaryEntry, IndexPrice, PositionEntry, parse_result, positions_to_portfolio,
    snapshot_from_book,
};
use formats::portfolio::PortfolioDocument;
use formats::report::{ReportDocument, describe_scenarios};
use margin::Engine;
use margin::report::{MarginReport, ReportOptions, margin_report};
use market::MarketSnapshot;
use product::Portfolio;

use crate::input::read_text;
use crate::profile::{load_baseline, load_market, load_methodology};

/// Arguments of `ballast margin`.
#[derive(Debug, Args)]
pub struct MarginArgs {
    /// Market snapshot (Ballast JSON); the bundled sample market when absent.
    #[arg(long, conflicts_with = "deribit_book")]
    pub market: Option<PathBuf>,
    /// Portfolio (Ballast JSON).
    #[arg(
        long,
        required_unless_present = "deribit_positions",
        conflicts_with = "deribit_positions"
    )]
    pub portfolio: Option<PathBuf>,
    /// Deribit `private/get_positions` result (bare or JSON-RPC envelope).
    #[arg(long, requires = "deribit_book")]
    pub deribit_positions: Option<PathBuf>,
    /// Deribit `public/get_book_summary_by_currency` result: the market.
    #[arg(long)]
    pub deribit_book: Option<PathBuf>,
    /// Deribit `public/get_index_price` result; the book's delivery-price estimate when absent.
    #[arg(long, requires = "deribit_book")]
    pub deribit_index: Option<PathBuf>,
    /// Valuation time (RFC 3339) for a Deribit book; its latest `creation_timestamp` otherwise.
    #[arg(long, requires = "deribit_book")]
    pub valuation_time: Option<String>,
    /// Methodology: a bundled name or a TOML file.
    #[arg(long, default_value = "ballast-pm")]
    pub methodology: String,
    /// Per-position baseline to compare with (bundled name or file); `none` to skip.
    #[arg(long, default_value = "deribit-standard")]
    pub baseline: String,
    /// Skip the liquidation-price search.
    #[arg(long)]
    pub no_liquidation: bool,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ballast margin`.
pub fn run(args: &MarginArgs) -> Result<()> {
    let market = match &args.deribit_book {
        Some(book) => std::sync::Arc::new(load_deribit_market(book, args)?),
        None => load_market(args.market.as_ref())?,
    };
    let methodology = load_methodology(&args.methodology)?;
    let portfolio = match (&args.portfolio, &args.deribit_positions) {
        (Some(path), _) => load_portfolio(path)?,
        (None, Some(path)) => load_deribit_positions(path)?,
        (None, None) => anyhow::bail!("give --portfolio or --deribit-positions"),
    };
    let baseline =
        if args.baseline == "none" { None } else { Some(load_baseline(&args.baseline)?) };
    let engine = Engine::new(methodology)?;
    let options = ReportOptions {
        greek_approximation: true,
        baseline,
        marginal: true,
        liquidation: !args.no_liquidation,
    };
    let report = margin_report(&engine.price_for(&market, &portfolio)?, &portfolio, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ReportDocument::from_report(&report))?);
    } else {
        print!("{}", render(&report));
        if args.deribit_positions.is_some() {
            print!("{}", settlement_summary(&report, &market, &portfolio));
        }
    }
    Ok(())
}

/// A Ballast portfolio file.
pub fn load_portfolio(path: &Path) -> Result<Portfolio> {
    let text = read_text(Some(path))?;
    PortfolioDocument::from_json(&text)
        .and_then(|d| d.to_portfolio())
        .with_context(|| format!("in {}", path.display()))
}

/// A Deribit account's positions (`private/get_positions`).
fn load_deribit_positions(path: &Path) -> Result<Portfolio> {
    let text = read_text(Some(path))?;
    let entries: Vec<PositionEntry> =
        parse_result(&text).with_context(|| format!("in {}", path.display()))?;
    positions_to_portfolio(&entries).with_context(|| format!("in {}", path.display()))
}

/// The market of a Deribit book summary (and index), with forwards and fitted smiles.
fn load_deribit_market(book: &Path, args: &MarginArgs) -> Result<MarketSnapshot> {
    let text = read_text(Some(book))?;
    let entries: Vec<BookSummaryEntry> =
        parse_result(&text).with_context(|| format!("in {}", book.display()))?;
    let index = match &args.deribit_index {
        Some(path) => Some(
            parse_result::<IndexPrice>(&read_text(Some(path))?)
                .with_context(|| format!("in {}", path.display()))?,
        ),
        None => None,
    };
    let valuation = args
        .valuation_time
        .as_deref()
        .map(|t| formats::parse_rfc3339(t, "--valuation-time"))
        .transpose()?;
    let built = snapshot_from_book(&entries, index.as_ref(), valuation)
        .with_context(|| format!("in {}", book.display()))?;
    for fit in &built.fits {
        eprintln!(
            "{} {}: SVI fit to {} mark IVs, RMSE {:.3} vol points",
            fit.underlying,
            formats::market::expiry_text(fit.expiry),
            fit.diagnostics.points_used,
            fit.diagnostics.vol_error_rmse * 100.0
        );
    }
    Ok(built.snapshot)
}

/// IM and MM in each settlement currency and in USD: Deribit states segregated margin in the
/// settlement currency and cross margin in USD, so both are shown.
fn settlement_summary(r: &MarginReport, market: &MarketSnapshot, p: &Portfolio) -> String {
    let mut out = String::from("\nDeribit account margin\n");
    let mut coins: Vec<Currency> =
        p.positions().iter().map(|x| x.instrument.settlement_currency()).collect();
    coins.sort();
    coins.dedup();
    for f in &r.figures {
        let usd = market.usd_price(f.currency).unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "  {:<5} IM {:>16.8}  MM {:>16.8}   (USD IM {:.2}, MM {:.2})",
            f.currency.to_string(),
            f.initial_margin,
            f.maintenance_margin,
            f.initial_margin * usd,
            f.maintenance_margin * usd
        );
        if f.currency == Currency::USD {
            for coin in coins.iter().filter(|c| **c != Currency::USD) {
                let Ok(price) = market.usd_price(*coin) else { continue };
                let _ = writeln!(
                    out,
                    "        in {:<5} IM {:>16.8}  MM {:>16.8}",
                    coin.to_string(),
                    f.initial_margin / price,
                    f.maintenance_margin / price
                );
            }
        }
    }
    out
}

fn signed_percent(move_: f64) -> String {
    format!("{:+.1} %", move_ * 100.0)
}

/// The human-readable report.
#[must_use]
pub fn render(r: &MarginReport) -> String {
    let mut out = String::new();
    let valuation = formats::format_rfc3339(r.valuation);
    let _ = writeln!(out, "Ballast margin report: {} at {valuation}\n", r.methodology);
    let _ = writeln!(
        out,
        "{:<26} {:>12} {:>16} {:>14} {:>14}",
        "position", "size", "value", "marginal IM", "standard IM"
    );
    for p in &r.positions {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"));
        let _ = writeln!(
            out,
            "{:<26} {:>12.4} {:>12.2} {:<3} {:>14} {:>14}",
            p.instrument.to_string(),
            p.size,
            p.value,
            p.currency.to_string(),
            opt(p.marginal_im),
            opt(p.standard_im)
        );
    }
    render_figures(&mut out, r);
    render_units(&mut out, r);
    render_comparisons(&mut out, r);
    out
}

fn render_figures(out: &mut String, r: &MarginReport) {
    for (f, q) in r.figures.iter().zip(&r.quantised) {
        let c = f.currency;
        let _ = writeln!(out, "\nFigures in {c}");
        let _ = writeln!(out, "  equity (mark to market)      {:>18.2}", f.equity);
        let worst = f.worst.and_then(|w| {
            let underlying = w.underlying();
            let Some(index) = w.scenario() else {
                return Some(format!("{underlying} contingency"));
            };
            let set = r.scenario_sets.get(&underlying)?;
            let s = describe_scenarios(set).get(index).cloned()?;
            let (kind, spot, vol) = (s.kind, signed_percent(s.spot_move), s.vol);
            Some(format!("{underlying} {kind} {spot}, vol {vol} (scenario {index})"))
        });
        let _ = writeln!(
            out,
            "  worst scenario loss          {:>18.2}   {}",
            f.scan_loss,
            worst.unwrap_or_default()
        );
        for line in r.detail.add_ons.iter().filter(|a| a.currency == c) {
            let name = r.add_on_names.get(line.index).copied().unwrap_or("add-on");
            let _ = writeln!(out, "  + {name:<26} {:>18.2}   ({})", line.value, line.underlying);
        }
        let _ = writeln!(
            out,
            "  collateral haircuts (IM/MM)  {:>18.2} / {:.2}",
            f.haircut_im, f.haircut_mm
        );
        let _ = writeln!(
            out,
            "  initial margin               {:>18.2}   exact, rounded up: {}",
            f.initial_margin, q.initial_margin
        );
        let _ = writeln!(
            out,
            "  maintenance margin           {:>18.2}   exact, rounded up: {}",
            f.maintenance_margin, q.maintenance_margin
        );
        let _ = writeln!(
            out,
            "  excess over IM / MM          {:>18.2} / {:.2}",
            f.equity - f.initial_margin,
            f.equity - f.maintenance_margin
        );
        if f.maintenance_margin > 0.0 {
            let _ = writeln!(
                out,
                "  health (equity / MM)         {:>18.3}",
                f.equity / f.maintenance_margin
            );
        }
    }
}

fn render_units(out: &mut String, r: &MarginReport) {
    for (u, unit) in r.detail.units.iter().enumerate() {
        let Some(set) = r.scenario_sets.get(&unit.underlying) else { continue };
        let scenarios = describe_scenarios(set);
        let _ = writeln!(
            out,
            "\nScenario P&L: {} in {} (loss {:.2}, worst scenario {})",
            unit.underlying, unit.currency, unit.loss, unit.worst
        );
        let _ =
            writeln!(out, "  {:>9} {:>16} {:>16} {:>16}", "move", "vol down", "vol none", "vol up");
        let mut moves: Vec<f64> =
            scenarios.iter().filter(|s| s.kind == "regular").map(|s| s.spot_move).collect();
        moves.dedup();
        for m in moves {
            let cell = |vol: &str| {
                scenarios
                    .iter()
                    .position(|s| s.kind == "regular" && s.spot_move == m && s.vol == vol)
                    .map_or_else(String::new, |i| format!("{:.2}", unit.pnl[i]))
            };
            let _ = writeln!(
                out,
                "  {:>9} {:>16} {:>16} {:>16}",
                signed_percent(m),
                cell("down"),
                cell("none"),
                cell("up")
            );
        }
        for (i, s) in scenarios.iter().enumerate().filter(|(_, s)| s.kind != "regular") {
            let _ = writeln!(
                out,
                "  {:<24} {:>9} weight {:<8.4} {:>16.2}",
                s.kind,
                signed_percent(s.spot_move),
                s.weight,
                unit.pnl[i]
            );
        }
        if let Some(approx) = r.greek.as_ref().and_then(|g| g.detail.units.get(u)) {
            let differences = approx.pnl.iter().zip(&unit.pnl).map(|(a, b)| (a - b).abs());
            let largest = differences.fold(0.0, f64::max);
            let _ = writeln!(
                out,
                "  Greek approximation: loss {:.2} vs full revaluation {:.2}; \
                 largest scenario difference {largest:.2}",
                approx.loss, unit.loss
            );
        }
        let _ = writeln!(out, "  attribution at the worst scenario:");
        for (row, value) in &unit.attribution {
            let _ = writeln!(out, "    {:<26} {value:>16.2}", r.instrument_name(*row));
        }
        if unit.collateral_at_worst != 0.0 {
            let _ = writeln!(out, "    {:<26} {:>16.2}", "collateral", unit.collateral_at_worst);
        }
    }
}

fn render_comparisons(out: &mut String, r: &MarginReport) {
    if let Some(b) = &r.baseline {
        let _ = writeln!(
            out,
            "\nBaseline {}: IM {:.2} USD, MM {:.2} USD",
            b.methodology, b.initial_margin, b.maintenance_margin
        );
        let verb = if b.released >= 0.0 { "releases" } else { "costs" };
        let _ = writeln!(
            out,
            "  portfolio margin {verb} {:.2} USD of initial margin ({:.2} vs {:.2})",
            b.released.abs(),
            b.portfolio_initial_margin,
            b.initial_margin
        );
    }
    for l in &r.liquidation {
        let fmt = |m: Option<f64>, p: Option<f64>| match (m, p) {
            (Some(m), Some(p)) => format!("{} (index {p:.2})", signed_percent(m)),
            _ => "none".to_owned(),
        };
        let _ = writeln!(
            out,
            "\nLiquidation ({} moving alone, MM in {}): cushion {:.2}; down {}; up {}",
            l.underlying,
            l.currency,
            l.cushion,
            fmt(l.move_down, l.price_down),
            fmt(l.move_up, l.price_up)
        );
    }
}
