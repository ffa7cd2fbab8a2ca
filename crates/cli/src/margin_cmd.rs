//! `ballast margin`: one portfolio's margin, with a readable report or JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use formats::portfolio::PortfolioDocument;
use formats::report::{ReportDocument, describe_scenarios};
use margin::Engine;
use margin::report::{MarginReport, ReportOptions, margin_report};

use crate::input::read_text;
use crate::profile::{load_baseline, load_market, load_methodology};

/// Arguments of `ballast margin`.
#[derive(Debug, Args)]
pub struct MarginArgs {
    /// Market snapshot (Ballast JSON); the bundled sample market when absent.
    #[arg(long)]
    pub market: Option<PathBuf>,
    /// Portfolio (Ballast JSON).
    #[arg(long)]
    pub portfolio: PathBuf,
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
    let market = load_market(args.market.as_ref())?;
    let methodology = load_methodology(&args.methodology)?;
    let text = read_text(Some(&args.portfolio))?;
    let portfolio = PortfolioDocument::from_json(&text)
        .and_then(|d| d.to_portfolio())
        .with_context(|| format!("in {}", args.portfolio.display()))?;
    let baseline =
        if args.baseline == "none" { None } else { Some(load_baseline(&args.baseline)?) };
    let engine = Engine::new(methodology)?;
    let options = ReportOptions {
        greek_approximation: true,
        baseline,
        marginal: true,
        liquidation: !args.no_liquidation,
    };
    let report = margin_report(&engine, &market, &portfolio, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ReportDocument::from_report(&report))?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
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
            p.unit.to_string(),
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
            let set = r.scenario_sets.get(&w.underlying)?;
            let scenario = describe_scenarios(set).get(w.scenario).cloned();
            Some(match scenario {
                Some(s) => format!(
                    "{} {} {}, vol {} (scenario {})",
                    w.underlying,
                    s.kind,
                    signed_percent(s.spot_move),
                    s.vol,
                    w.scenario
                ),
                None => format!("{} contingency (scenario {})", w.underlying, w.scenario),
            })
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
