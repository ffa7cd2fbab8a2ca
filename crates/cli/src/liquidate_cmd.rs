//! `ballast liquidate` (an account's liquidation plan) and `ballast simulate` (an exchange run
//! through a price path under liquidation profiles, with its charts).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use backtest::replay::{SurfaceModel, Window, replay};
use basics::{Currency, UnixNanos};
use clap::Args;
use liquidation::coverage::coverage;
use liquidation::path::{Generated, generated_markets, markets};
use liquidation::sim::{Config, Report, side_by_side};
use liquidation::{Plan, Profile, compare, plan};
use margin::Engine;
use market::MarketSnapshot;

use crate::backtest_cmd::{HistoryFile, SURFACE_TOML, date};
use crate::input::read_text;
use crate::margin_cmd::load_portfolio;
use crate::profile::{load_market, load_methodology};

#[derive(Debug, Args)]
pub struct LiquidateArgs {
    /// Portfolio JSON.
    #[arg(long)]
    pub portfolio: PathBuf,
    /// Market JSON (the bundled sample market when absent).
    #[arg(long)]
    pub market: Option<PathBuf>,
    /// Margin methodology, bundled name or file.
    #[arg(long, default_value = "ballast-pm")]
    pub methodology: String,
    /// Liquidation profile, bundled name or TOML file.
    #[arg(long, default_value = "ballast")]
    pub profile: String,
    /// Plan under every selection (smallest, pro-rata, largest contributor).
    #[arg(long)]
    pub compare: bool,
}

/// A bundled liquidation profile or a TOML file.
fn load_liquidation(name_or_path: &str) -> Result<Profile> {
    let path = std::path::Path::new(name_or_path);
    if path.is_file() {
        let text = read_text(Some(path))?;
        return Profile::from_toml(&text).with_context(|| format!("in {}", path.display()));
    }
    Ok(Profile::bundled(name_or_path)?)
}

pub fn run_liquidate(args: &LiquidateArgs) -> Result<()> {
    let market = load_market(args.market.as_ref())?;
    let engine = Engine::new(load_methodology(&args.methodology)?)?;
    let portfolio = load_portfolio(&args.portfolio)?;
    let profile = load_liquidation(&args.profile)?;
    let priced = engine.price_for(&market, &portfolio)?;
    let plans = if args.compare {
        compare(&priced, &portfolio, &profile)?
    } else {
        vec![plan(&priced, &portfolio, &profile)?]
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "profile {} v{} ({})",
        profile.name,
        profile.version,
        formats::methodology::hash_hex(&profile.hash())
    );
    for p in &plans {
        render_plan(&mut out, p);
    }
    print!("{out}");
    Ok(())
}

fn render_plan(out: &mut String, p: &Plan) {
    let s = |s: &liquidation::Standing| {
        format!(
            "equity {:.2}  MM {:.2}  IM {:.2}  shortfall {:.2}  {}",
            s.equity_usd,
            s.maintenance_usd,
            s.initial_usd,
            s.shortfall_usd,
            s.status.name()
        )
    };
    let _ = writeln!(out, "\n{} (target equity >= {} x MM)", p.selection.name(), p.buffer_scale);
    let _ = writeln!(out, "  before  {}", s(&p.before));
    if !p.breached() {
        let _ = writeln!(out, "  not in liquidation: nothing to sell");
        return;
    }
    for t in &p.trades {
        let limit = t.limit_price.map_or(String::new(), |l| format!("  limit {l:.2}"));
        let _ = writeln!(
            out,
            "  round {:>3}  {:<32} {:>+14.6} at {:>12.4} (mark {:.4}, cost {:.2}){limit}  \
             -> shortfall {:.2}",
            t.round,
            t.instrument.to_string(),
            t.size,
            t.price,
            t.mark,
            t.cost_usd,
            t.shortfall_after_usd
        );
    }
    let _ = writeln!(out, "  after   {}", s(&p.after));
    let _ = writeln!(
        out,
        "  {} trade(s) in {} round(s), expected cost {:.2} USD + fees {:.2} USD, target {}{}; \
         {} engine evaluations",
        p.trades.len(),
        p.rounds,
        p.expected_cost_usd,
        p.fees_usd,
        if p.reached { "reached" } else { "NOT reached" },
        if p.backstop { ", whole account to the backstop" } else { "" },
        p.evaluations
    );
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Price history `BTC=path` (or a file named `btc-…`); a generated path when absent.
    #[arg(long)]
    pub history: Option<String>,
    /// First day replayed (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day replayed.
    #[arg(long)]
    pub to: Option<String>,
    /// Surface model (TOML); the bundled one when absent.
    #[arg(long)]
    pub surface: Option<PathBuf>,
    /// Generated path: daily steps after the model's warm-up.
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Generated path: daily volatility.
    #[arg(long, default_value_t = 0.04)]
    pub daily_vol: f64,
    /// Generated path: the step of a crash and its fall (`10:0.4`).
    #[arg(long)]
    pub crash: Option<String>,
    /// Liquidation profiles (repeat; every bundled one when absent, Ballast's first).
    #[arg(long = "liquidation")]
    pub liquidation: Vec<String>,
    /// Margin methodology.
    #[arg(long, default_value = "ballast-pm")]
    pub methodology: String,
    /// Traders.
    #[arg(long, default_value_t = 10_000)]
    pub traders: usize,
    /// Liquidators.
    #[arg(long, default_value_t = 8)]
    pub liquidators: usize,
    /// Insurance fund at the start, USD.
    #[arg(long, default_value_t = 1e6)]
    pub fund_usd: f64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Target coverage of the friction add-on's calibration.
    #[arg(long, default_value_t = 0.99)]
    pub coverage_target: f64,
    /// Write the charts of fund and traders' equity over time (SVG).
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Write the methodology with its friction add-ons' MM weight set to the weight that covers
    /// the first profile's liquidations at the target, as a new version (TOML).
    #[arg(long)]
    pub calibrated_out: Option<PathBuf>,
}

fn load_path(args: &SimulateArgs) -> Result<Vec<Arc<MarketSnapshot>>> {
    let surface = match &args.surface {
        Some(path) => read_text(Some(path))?,
        None => SURFACE_TOML.to_owned(),
    };
    let model = SurfaceModel::from_toml(&surface)?;
    let Some(spec) = &args.history else {
        let warmup = model.params().warmup_bars + 5;
        let crash = match &args.crash {
            Some(text) => {
                let (at, drop) = text.split_once(':').context("--crash STEP:FALL")?;
                Some((warmup + at.parse::<usize>()?, drop.parse::<f64>()?))
            }
            None => None,
        };
        let generated = Generated {
            seed: args.seed,
            start: UnixNanos::from_civil(2020, 1, 1, 0),
            bars: warmup + args.steps,
            start_price: 8_000.0,
            daily_vol: args.daily_vol,
            crash,
        };
        return Ok(generated_markets(&model, &generated, args.steps)?);
    };
    let file = HistoryFile::read(spec)?;
    let window = Window { from: date(args.from.as_deref())?, to: date(args.to.as_deref())? };
    let replayed = replay(&[(file.underlying, &file.parse()?)], &model, window)?;
    Ok(markets(&replayed))
}

pub fn run_simulate(args: &SimulateArgs) -> Result<()> {
    let path = load_path(args)?;
    let engine = Engine::new(load_methodology(&args.methodology)?)?;
    let names: Vec<String> = if args.liquidation.is_empty() {
        liquidation::profile::BUNDLED.iter().map(|(n, _)| (*n).to_owned()).collect()
    } else {
        args.liquidation.clone()
    };
    let profiles = names.iter().map(|n| load_liquidation(n)).collect::<Result<Vec<_>>>()?;
    let underlying = path[0].underlyings().keys().next().copied().unwrap_or(Currency::BTC);
    let config = Config {
        seed: args.seed,
        traders: args.traders,
        liquidators: args.liquidators,
        fund_usd: args.fund_usd,
        underlying,
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let runs = side_by_side(&engine, &path, &profiles, &config)?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut out = String::new();
    let first = path[0].valuation();
    let last = path[path.len() - 1].valuation();
    let _ = writeln!(
        out,
        "{} steps ({} .. {}), {} traders, fund {:.0} USD, seed {}, methodology {}; {:.1} s",
        path.len(),
        backtest::history::format_day(first),
        backtest::history::format_day(last),
        args.traders,
        args.fund_usd,
        args.seed,
        args.methodology,
        elapsed
    );
    render_header(&mut out);
    for r in runs.reports.iter().chain(runs.pro_rata.iter()) {
        render_row(&mut out, r, args.fund_usd, args.coverage_target)?;
    }
    if let (Some(slice), Some(smallest)) = (&runs.pro_rata, runs.reports.first()) {
        let _ = writeln!(
            out,
            "\nbad debt avoided by {}'s smallest step against the pro-rata slice: {:.2} USD \
             ({:.2} vs {:.2})",
            smallest.profile,
            slice.bad_debt_usd() - smallest.bad_debt_usd(),
            smallest.bad_debt_usd(),
            slice.bad_debt_usd()
        );
    }
    print!("{out}");
    if let (Some(out), Some(first)) = (&args.calibrated_out, runs.reports.first()) {
        write_calibrated(engine.methodology(), first, args.coverage_target, out)?;
    }
    if let Some(file) = &args.chart {
        std::fs::write(file, chart(&runs.reports))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// The methodology with every liquidation-friction add-on's MM weight (and its IM weight, when
/// below) set to the weight covering `report`'s liquidations at `target`, as the next version.
fn write_calibrated(
    methodology: &methodology::Methodology,
    report: &Report,
    target: f64,
    out: &std::path::Path,
) -> Result<()> {
    let covered = coverage(&report.friction, target)?;
    let Some(weight) = covered.calibrated_mm_weight else {
        anyhow::bail!(
            "no MM weight covers {:.1} % of {}'s liquidations ({} of {} uncoverable)",
            100.0 * target,
            report.profile,
            covered.uncoverable,
            covered.liquidations
        );
    };
    let mut calibrated = methodology.clone();
    let own = calibrated.by_underlying.values_mut().filter_map(|p| p.add_ons.as_mut());
    for add_on in calibrated.add_ons.iter_mut().chain(own.flatten()) {
        if matches!(add_on.kind, methodology::AddOnKind::LiquidationFriction { .. }) {
            add_on.mm_weight = weight;
            add_on.im_weight = add_on.im_weight.max(weight);
        }
    }
    calibrated.version = crate::calibrate_cmd::next_version(&methodology.version);
    calibrated.validate().map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.kind))?;
    let report_text = format!(
        "friction MM weight {weight:.6} covers {:.1} % of {} liquidations under {}",
        100.0 * target,
        covered.liquidations,
        report.profile
    );
    let profile = formats::methodology::Profile::Portfolio(Box::new(calibrated));
    crate::calibrate_cmd::write(Some(&out.to_path_buf()), &profile, report_text)
}

fn render_header(out: &mut String) {
    let _ = writeln!(
        out,
        "\n{:<22} {:>12} {:>12} {:>9} {:>7} {:>7} {:>7} {:>12} {:>12} {:>9} {:>9}",
        "profile",
        "fund drop",
        "bad debt",
        "liquid.",
        "bankr.",
        "ADL",
        "unfill",
        "socialised",
        "cost",
        "coverage",
        "MM wt"
    );
}

fn render_row(out: &mut String, r: &Report, fund: f64, target: f64) -> Result<()> {
    let c = coverage(&r.friction, target)?;
    let count =
        |f: fn(&liquidation::sim::StepFigures) -> usize| r.steps.iter().map(f).sum::<usize>();
    let weight = c.calibrated_mm_weight.map_or("-".to_owned(), |w| format!("{w:.3}"));
    let _ = writeln!(
        out,
        "{:<22} {:>12.0} {:>12.0} {:>9} {:>7} {:>7} {:>7} {:>12.0} {:>12.0} {:>8.1}% {:>9}",
        r.profile,
        (fund - r.fund_min_usd).max(0.0),
        r.bad_debt_usd(),
        count(|s| s.liquidations),
        count(|s| s.bankruptcies),
        count(|s| s.adl_events),
        count(|s| s.unfilled),
        r.total(|s| s.socialised_usd),
        r.total(|s| s.liquidation_cost_usd),
        100.0 * c.coverage,
        weight
    );
    Ok(())
}

/// One figure of a step, charted over the steps.
type Series = fn(&liquidation::sim::StepFigures) -> f64;

/// Two line charts (the fund, the traders' equity) with one line per profile.
fn chart(reports: &[Report]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 220.0;
    const COLOURS: [&str; 6] = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#30638e", "#66a182"];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n",
        2.0 * H + 40.0
    );
    let panels: [(&str, Series); 2] = [
        ("insurance fund (USD)", |s| s.fund_usd),
        ("traders' equity (USD)", |s| s.trader_equity_usd),
    ];
    for (k, (title, f)) in panels.iter().enumerate() {
        let top = k as f64 * (H + 20.0) + 20.0;
        let values: Vec<f64> = reports.iter().flat_map(|r| r.steps.iter().map(f)).collect();
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| (a.0.min(*v), a.1.max(*v)));
        let span = (hi - lo).max(1.0);
        let _ =
            writeln!(svg, "<text x=\"50\" y=\"{}\">{title}: {lo:.0} .. {hi:.0}</text>", top - 5.0);
        for (i, r) in reports.iter().enumerate() {
            let n = r.steps.len().max(2) - 1;
            let points: Vec<String> = (r.steps.iter().enumerate())
                .map(|(t, s)| {
                    format!(
                        "{:.1},{:.1}",
                        50.0 + (W - 60.0) * t as f64 / n as f64,
                        top + H - 10.0 - (H - 20.0) * (f(s) - lo) / span
                    )
                })
                .collect();
            let colour = COLOURS[i % COLOURS.len()];
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
                points.join(" ")
            );
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>",
                W - 110.0,
                top + 14.0 * (i as f64 + 1.0),
                r.profile
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}
