//! `ballast bench --only liquidation`: one account's liquidation plan on the full engine (a
//! four-leg hedged book on the sample market, Ballast's smallest step with the pro-rata plan
//! beside it), and a synthetic exchange of 100,000 traders through 30 daily steps of a seeded
//! path with a 40 % crash, under Ballast's profile, audited after every step.

use std::sync::Arc;

use backtest::replay::SurfaceModel;
use basics::{Currency, Money, Rounding, UnixNanos};
use formats::bundled::REPLAY_SURFACE_TOML as SURFACE_TOML;
use liquidation::path::{Generated, generated_markets};
use liquidation::sim::{Config, simulate};
use liquidation::{Profile, plan};
use margin::Engine;
use product::{Instrument, Portfolio, Position};

use crate::{Error, Host, Options, best_of, ensure};

/// The plan's book: a perpetual, a short call, a long put and an ETH perpetual, USDC-settled.
const LEGS: [(&str, f64); 4] = [
    ("BTC_USDC-PERPETUAL", 10.0),
    ("BTC_USDC-25DEC26-100000-C", -20.0),
    ("BTC_USDC-25DEC26-90000-P", 10.0),
    ("ETH_USDC-PERPETUAL", -50.0),
];

fn text_error(e: impl std::fmt::Display) -> Error {
    Error::new(e.to_string())
}

/// The liquidation section.
///
/// # Errors
/// The bundled inputs refused, a plan that does not reach its target, or an audit violation.
pub fn run(host: &dyn Host, args: &Options) -> Result<(), Error> {
    plan_figures(host, args)?;
    let (traders, steps) = if args.quick { (10_000, 10) } else { (100_000, 30) };
    let model = SurfaceModel::from_toml(SURFACE_TOML).map_err(text_error)?;
    let warmup = model.params().warmup_bars + 5;
    let generated = Generated {
        seed: args.seed,
        start: UnixNanos::from_civil(2020, 1, 1, 0),
        bars: warmup + steps,
        start_price: 8_000.0,
        daily_vol: 0.04,
        crash: Some((warmup + steps / 3, 0.4)),
    };
    let path = generated_markets(&model, &generated, steps)?;
    let engine = Engine::new(args.methodology.clone())?;
    let profile = Profile::bundled("ballast")?;
    let config = Config { seed: args.seed, traders, ..Config::default() };
    let start = host.seconds();
    let report = simulate(&engine, &path, &profile, &config)?;
    let seconds = host.seconds() - start;
    ensure(report.audits == steps, || "a step went unaudited".to_owned())?;
    let liquidations: usize = report.steps.iter().map(|s| s.liquidations).sum();
    host.print(&format!(
        "simulation: {traders} traders, {steps} daily steps (a 40 % crash on step {}), {}, \
         {} threads",
        steps / 3,
        args.methodology_name,
        rayon::current_num_threads()
    ));
    host.print(&format!(
        "  run, audited every step                    {seconds:>10.2} s ({liquidations} \
         liquidations, bad debt {:.0} USD, fund low {:.0} USD)",
        report.bad_debt_usd(),
        report.fund_min_usd
    ));
    Ok(())
}

fn plan_figures(host: &dyn Host, args: &Options) -> Result<(), Error> {
    let market = Arc::new(formats::bundled::sample_market().map_err(text_error)?);
    let engine = Engine::new(args.methodology.clone())?;
    let positions: Vec<Position> = LEGS
        .iter()
        .map(|(name, size)| Instrument::parse(name).map(|i| Position::new(i, *size)))
        .collect::<Result<_, _>>()
        .map_err(text_error)?;
    let probe = Portfolio::new(positions.clone(), &[]).map_err(text_error)?;
    let priced = engine.price_for(&market, &probe)?;
    let figures = priced.margin(&priced.entered(&probe)?)?;
    let (equity, mm) =
        figures.iter().fold((0.0, 0.0), |a, f| (a.0 + f.equity, a.1 + f.maintenance_margin));
    // Cash that leaves the book at 80 % of its MM.
    let cash =
        Money::from_f64(0.8 * mm - equity, Currency::USDC, Rounding::Down).map_err(text_error)?;
    let portfolio = Portfolio::new(positions, &[cash]).map_err(text_error)?;
    let profile = Profile::bundled("ballast")?;
    let mut planned = None;
    let repetitions = if args.quick { 5 } else { 50 };
    let seconds =
        best_of(host, repetitions, || planned = Some(plan(&priced, &portfolio, &profile)));
    let planned = planned.ok_or_else(|| Error::new("no plan ran"))??;
    ensure(planned.reached, || "the plan did not reach its target".to_owned())?;
    host.print(&format!(
        "liquidation plan: {} legs at 80 % of MM, {} trades, {} evaluations  {:>10.3} ms",
        LEGS.len(),
        planned.trades.len(),
        planned.evaluations,
        seconds * 1e3
    ));
    Ok(())
}
