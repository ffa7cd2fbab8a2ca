//! `ballast backtest` and `ballast var`: price history replayed into markets, a book held
//! through them under one methodology or every bundled one, and capital metrics of the book.
//!
//! The command parses, loads files and calls the `backtest` library; what it prints comes from
//! [`render`] (tables, JSON) and [`svg`] (charts written as plain SVG text).

mod render;

pub(crate) use render::day;
mod svg;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use backtest::book::{Book, Strategy, relative_account};
use backtest::capital::Levels;
use backtest::history::{Gaps, History, Policy, ReadConfig, interval_of, parse_day, read_csv};
use backtest::replay::{Replay, SurfaceModel, Window, replay};
use backtest::run::{Config, Progress, run, side_by_side, standard_horizons};
use backtest::{Confidence, var};
use basics::{Currency, UnixNanos};
use clap::Args;
use formats::bundled::BUNDLED;
use formats::methodology::{Profile, hash_hex};
use formats::portfolio::{BookDocument, PortfolioDocument};
use margin::Engine;

use crate::input::read_text;
use crate::profile::{load_market, load_methodology, load_profile};

/// The bundled surface model (`examples/replay/surface.toml`).
pub(crate) use formats::bundled::REPLAY_SURFACE_TOML as SURFACE_TOML;
/// Days between two progress lines on standard error.
const PROGRESS_DAYS: usize = 250;

/// What both commands read: the history, the surface model, the window and the book.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Daily or hourly OHLCV files, `BTC=path` or a path whose name starts with the underlying
    /// (`btc-usd-daily.csv`).
    #[arg(long, num_args = 1.., required = true)]
    pub history: Vec<String>,
    /// Surface model (TOML); the bundled `examples/replay/surface.toml` when absent.
    #[arg(long)]
    pub surface: Option<PathBuf>,
    /// First bar date replayed (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<String>,
    /// Last bar date replayed (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<String>,
    /// A portfolio (Ballast JSON), held relative to the spot as read on `--reference-market`.
    #[arg(long, conflicts_with_all = ["book", "strategy", "random"])]
    pub portfolio: Option<PathBuf>,
    /// A book of accounts (Ballast JSON), each held like `--portfolio`.
    #[arg(long, conflicts_with_all = ["strategy", "random"])]
    pub book: Option<PathBuf>,
    /// The market that portfolio strikes and expiries are read against (moneyness, tenor); the
    /// bundled sample market when absent.
    #[arg(long)]
    pub reference_market: Option<PathBuf>,
    /// A strategy on every underlying (repeatable); every strategy when no book is given.
    #[arg(long)]
    pub strategy: Vec<String>,
    /// A seeded random book of this many accounts.
    #[arg(long, conflicts_with = "strategy")]
    pub random: Option<usize>,
    /// Seed of the random book.
    #[arg(long, default_value_t = 20_261_202)]
    pub seed: u64,
}

/// Arguments of `ballast backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Methodology: a bundled name or a TOML file.
    #[arg(long, default_value = "ballast-pm", conflicts_with = "all_methodologies")]
    pub methodology: String,
    /// Every bundled portfolio methodology, side by side.
    #[arg(long)]
    pub all_methodologies: bool,
    /// A horizon (days) beside 1, 2 and the methodology's own.
    #[arg(long)]
    pub horizon_days: Vec<u32>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
    /// Write SVG charts into this directory.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// No progress lines on standard error.
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `ballast var`.
#[derive(Debug, Args)]
pub struct VarArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Methodology whose engine revalues the book: a bundled name or a TOML file.
    #[arg(long, default_value = "ballast-pm")]
    pub methodology: String,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// What the inputs load into.
struct Loaded {
    replay: Replay,
    book: Book,
    underlyings: Vec<Currency>,
    surface_hash: String,
}

/// Runs `ballast backtest`.
pub fn run_backtest(args: &BacktestArgs) -> Result<()> {
    let loaded = load(&args.input)?;
    let quiet = args.quiet;
    let mut progress = |name: &str, p: Progress| {
        if !quiet && (p.done.is_multiple_of(PROGRESS_DAYS) || p.done == p.days) {
            eprintln!("backtest {name}: {:?} ({}/{} days)", p.date, p.done, p.days);
        }
    };
    if args.all_methodologies {
        let engines = bundled_engines()?;
        let named: Vec<(String, Engine)> =
            engines.iter().map(|(n, _, e)| (n.clone(), e.clone())).collect();
        let rows = side_by_side(
            &loaded.replay,
            &named,
            &loaded.book,
            &args.horizon_days,
            Confidence::VAR_BASEL,
            &mut progress,
        );
        let hashes: Vec<String> = engines.iter().map(|(_, h, _)| h.clone()).collect();
        if let Some(dir) = &args.svg {
            for row in &rows {
                if let Ok(report) = &row.outcome {
                    svg::write_charts(dir, &row.name, report)?;
                }
            }
        }
        let header = render::Header::of(&loaded, "every bundled portfolio methodology");
        if args.json {
            println!("{}", render::side_by_side_json(&header, &rows, &hashes));
        } else {
            print!("{}", render::side_by_side(&header, &rows, &hashes));
        }
        return Ok(());
    }
    let profile = load_profile(&args.methodology)?;
    let hash = hash_hex(&profile.hash());
    let engine = Engine::new(load_methodology(&args.methodology)?)?;
    let horizons = standard_horizons(engine.methodology(), &args.horizon_days);
    let config = Config::new(horizons, Confidence::VAR_BASEL)?;
    let name = profile.name().to_owned();
    let report = run(&loaded.replay, &engine, &loaded.book, &config, &mut |p| progress(&name, p))?;
    if let Some(dir) = &args.svg {
        svg::write_charts(dir, &name, &report)?;
    }
    let header = render::Header::of(&loaded, &format!("{} ({hash})", report.methodology));
    if args.json {
        println!("{}", render::report_json(&header, &report));
    } else {
        print!("{}", render::report(&header, &report));
    }
    Ok(())
}

/// Runs `ballast var`.
pub fn run_var(args: &VarArgs) -> Result<()> {
    let loaded = load(&args.input)?;
    let engine = Engine::new(load_methodology(&args.methodology)?)?;
    let levels = Levels { var: Confidence::VAR_BASEL, es: Confidence::ES_FRTB };
    let report = var::capital(&loaded.replay, &engine, &loaded.book, levels)?;
    let names: Vec<&str> = loaded.book.accounts().iter().map(|a| a.name.as_str()).collect();
    let header = render::Header::of(&loaded, &engine.methodology().name);
    if args.json {
        println!("{}", render::capital_json(&header, &report, &names));
    } else {
        print!("{}", render::capital(&header, &report, &names));
    }
    Ok(())
}

/// Every bundled portfolio methodology: name, canonical hash, engine.
fn bundled_engines() -> Result<Vec<(String, String, Engine)>> {
    let mut out = Vec::new();
    for (name, text) in BUNDLED {
        if let Profile::Portfolio(m) = Profile::from_toml(text)? {
            let hash = hash_hex(&Profile::Portfolio(m.clone()).hash());
            out.push(((*name).to_owned(), hash, Engine::new(*m)?));
        }
    }
    Ok(out)
}

fn load(args: &InputArgs) -> Result<Loaded> {
    let histories =
        args.history.iter().map(|spec| load_history(spec)).collect::<Result<Vec<_>>>()?;
    let surface_text = match &args.surface {
        Some(path) => read_text(Some(path))?,
        None => SURFACE_TOML.to_owned(),
    };
    let model = SurfaceModel::from_toml(&surface_text).with_context(|| {
        format!(
            "in {}",
            args.surface.as_ref().map_or("the bundled surface".into(), |p| p.display().to_string())
        )
    })?;
    let window = Window { from: date(args.from.as_deref())?, to: date(args.to.as_deref())? };
    let pairs: Vec<(Currency, &History)> = histories.iter().map(|(c, h)| (*c, h)).collect();
    let replay = replay(&pairs, &model, window)?;
    let underlyings: Vec<Currency> = {
        let mut u: Vec<Currency> = histories.iter().map(|(c, _)| *c).collect();
        u.sort();
        u
    };
    let book = load_book(args, &underlyings)?;
    Ok(Loaded { replay, book, underlyings, surface_hash: hash_hex(&model.hash()) })
}

/// A price file as read, before its rows are parsed.
pub(crate) struct HistoryFile {
    /// The underlying it is named for.
    pub underlying: Currency,
    /// Where it was read.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

impl HistoryFile {
    /// Reads `BTC=path`, or a path whose file name starts with the underlying's code.
    pub(crate) fn read(spec: &str) -> Result<HistoryFile> {
        let (code, path) = match spec.split_once('=') {
            Some((code, path)) => (code.to_owned(), PathBuf::from(path)),
            None => {
                let path = PathBuf::from(spec);
                let stem =
                    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let code = stem.split(['-', '_', '.']).next().unwrap_or("").to_uppercase();
                (code, path)
            }
        };
        let underlying: Currency =
            code.parse().map_err(|e| anyhow!("history {spec}: underlying {code:?}: {e}"))?;
        let text = read_text(Some(&path))?;
        Ok(HistoryFile { underlying, path, text })
    }

    /// Its bars (hourly when the header starts with `time`, daily otherwise).
    pub(crate) fn parse(&self) -> Result<History> {
        let interval = interval_of(&self.text);
        let config = ReadConfig { interval, rows: Policy::Skip, gaps: Gaps::Report };
        read_csv(&self.text, config).with_context(|| format!("in {}", self.path.display()))
    }
}

/// `BTC=path`, or a path whose file name starts with the underlying's code.
fn load_history(spec: &str) -> Result<(Currency, History)> {
    let file = HistoryFile::read(spec)?;
    Ok((file.underlying, file.parse()?))
}

pub(crate) fn date(text: Option<&str>) -> Result<Option<UnixNanos>> {
    let Some(text) = text else { return Ok(None) };
    parse_day(text).map(Some).ok_or_else(|| anyhow!("{text:?} is not a date YYYY-MM-DD"))
}

fn load_book(args: &InputArgs, underlyings: &[Currency]) -> Result<Book> {
    if let Some(accounts) = args.random {
        return Ok(Book::random(args.seed, accounts, underlyings)?);
    }
    if let Some(path) = &args.portfolio {
        let market = load_market(args.reference_market.as_ref())?;
        let portfolio = PortfolioDocument::from_json(&read_text(Some(path))?)
            .and_then(|d| d.to_portfolio())
            .with_context(|| format!("in {}", path.display()))?;
        let name =
            path.file_stem().map_or("portfolio".into(), |s| s.to_string_lossy().into_owned());
        return Ok(Book::new(vec![relative_account(&name, &portfolio, &market)?])?);
    }
    if let Some(path) = &args.book {
        return load_relative_book(path, args.reference_market.as_ref());
    }
    let strategies = if args.strategy.is_empty() {
        Strategy::ALL.to_vec()
    } else {
        args.strategy.iter().map(|s| Strategy::parse(s)).collect::<Result<Vec<_>, _>>()?
    };
    Ok(Book::strategies(&strategies, underlyings)?)
}

fn load_relative_book(path: &Path, reference: Option<&PathBuf>) -> Result<Book> {
    let market: Arc<market::MarketSnapshot> = load_market(reference)?;
    let document = BookDocument::from_json(&read_text(Some(path))?)
        .with_context(|| format!("in {}", path.display()))?;
    let accounts = document.to_accounts().with_context(|| format!("in {}", path.display()))?;
    let specs = accounts
        .iter()
        .map(|(id, portfolio)| {
            relative_account(id, portfolio, &market).with_context(|| format!("account {id}"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Book::new(specs)?)
}
