//! Backtests in the service: `POST /api/backtests` replays the price history sent with the
//! request under methodologies (stored ones and the bundled profiles) and stores each one's
//! summary; `GET /api/backtests` answers the latest backtest of each methodology, which the
//! dashboard shows.
//!
//! The run is the `backtest` library's on the inputs `ballast backtest` reads (the bundled
//! replay surface, the typical strategies, the same verdict), so the command on the same files
//! and window gives the same figures, bit for bit. It runs on a blocking thread, one at a time
//! (a second request meanwhile is answered 409), and nothing is stored until it has finished:
//! a refused history or an unknown methodology changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use backtest::book::{Book, Strategy};
use backtest::history::{
    Gaps, History, Policy, ReadConfig, format_day, interval_of, parse_day, read_csv,
};
use backtest::replay::{SurfaceModel, Window, replay};
use backtest::run::{
    Report, SeriesReport, SideBySide, VERDICT_HORIZON_DAYS, least_margin, side_by_side, verdicts,
};
use backtest::{Confidence, calibrate::keccak};
use basics::{Currency, UnixNanos};
use formats::methodology::{Profile, hash_hex};
use margin::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::Note;
use crate::auth::Principal;
use crate::dto::MethodologyView;
use crate::error::{Error, ErrorBody, ErrorKind};
use crate::model::{MethodologyEntry, Model};
use crate::state::{Plan, Scope, Service};
use crate::store::Op;
use crate::writes::{body_and_key, finish, json, parse};

/// Methodologies one request may backtest.
pub const METHODOLOGIES_PER_RUN_MAX: usize = 16;

/// A backtest to run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestRequest {
    /// Daily OHLCV CSV text by underlying (`date,open,high,low,close,volume`, as
    /// `ballast backtest --history` reads a file); dirty rows are skipped and counted.
    pub histories: BTreeMap<String, String>,
    /// First bar date replayed (YYYY-MM-DD); the first bar when absent.
    #[serde(default)]
    pub from: Option<String>,
    /// Last bar date replayed (YYYY-MM-DD); the last bar when absent.
    #[serde(default)]
    pub to: Option<String>,
    /// Stored methodologies (hash, name or name@version) or bundled profile names; every
    /// stored methodology and every bundled portfolio profile when absent.
    #[serde(default)]
    pub methodologies: Option<Vec<String>>,
    /// Strategies held on every underlying (`short-strangle`, …); all six when absent.
    #[serde(default)]
    pub strategies: Option<Vec<String>>,
}

/// One run: every methodology's backtest on the same inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BacktestRun {
    /// The run's number (increasing).
    pub run: i64,
    /// The methodology (`name@version`) that covers with the least margin; `None` when none
    /// covers.
    pub least_margin: Option<String>,
    /// One per methodology, in the order run.
    pub backtests: Vec<BacktestView>,
}

/// One methodology's backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BacktestView {
    /// The run it belongs to.
    pub run: i64,
    /// The methodology.
    pub methodology: MethodologyView,
    /// What it ran on.
    pub inputs: BacktestInputs,
    /// Why it could not be run under this methodology; then there is no verdict.
    pub error: Option<String>,
    /// Whether it covers at the target, and at what margin.
    pub verdict: Option<VerdictView>,
    /// Each account, then the book.
    pub series: Vec<SeriesView>,
}

/// The inputs of a run, identified so that a reader can rerun it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BacktestInputs {
    /// Each price file: its underlying, keccak-256 of its text and the rows skipped.
    pub histories: Vec<HistoryView>,
    /// Keccak-256 of the replay surface model (the bundled `examples/replay/surface.toml`).
    pub surface: String,
    /// First and last replayed day (YYYY-MM-DD).
    pub first_day: String,
    /// Last replayed day.
    pub last_day: String,
    /// Days replayed.
    pub days_replayed: usize,
    /// Days of the window without a market (each named by `ballast backtest`).
    pub days_without_market: usize,
    /// The strategies held on every underlying.
    pub strategies: Vec<String>,
    /// The confidence of the initial margin's coverage (0.99).
    pub confidence: f64,
}

/// A price file of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    /// Underlying.
    pub underlying: String,
    /// Keccak-256 of the CSV text, hex.
    pub keccak: String,
    /// Rows the reader skipped (zero prices, duplicates, bars outside their range…).
    pub rows_skipped: usize,
}

/// Whether a methodology covers at the target horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VerdictView {
    /// The horizon judged, days.
    pub horizon_days: u32,
    /// Every account and the book exceeded on at most the target's share of their days.
    pub covers: bool,
    /// It covers with the least margin of its run.
    pub least_margin: bool,
    /// The book's mean initial margin over gross notional.
    pub margin_to_notional: Option<f64>,
    /// The first series that does not cover: its name.
    pub failing_series: Option<String>,
    /// And why.
    pub failing_reason: Option<String>,
}

/// One account's (or the book's) coverage at the verdict's horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SeriesView {
    /// Account name, or `book`.
    pub name: String,
    /// Losses above the initial margin.
    pub exceedances: usize,
    /// Observations.
    pub observations: usize,
    /// Kupiec's proportion-of-failures p-value.
    pub kupiec_p: Option<f64>,
    /// Christoffersen's independence p-value.
    pub christoffersen_p: Option<f64>,
    /// Basel zone of the whole series (`green`, `yellow`, `red`).
    pub zone: Option<String>,
    /// 250-day windows in each zone: green, yellow, red.
    pub windows: [usize; 3],
    /// Mean initial margin over gross notional.
    pub margin_to_notional: Option<f64>,
}

/// Runs a backtest under methodologies and stores the summaries: the latest of each
/// methodology is what `GET /api/backtests` answers.
#[utoipa::path(post, path = "/api/backtests", request_body = BacktestRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    responses((status = 201, body = BacktestRun), (status = 422, body = ErrorBody)))]
pub async fn run_backtests(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, false)?;
        let request: BacktestRequest = parse(&bytes)?;
        let engines = methodologies(&service.model(), request.methodologies.as_deref())?;
        let Ok(_running) = service.backtest_slot().try_acquire() else {
            let why = "a backtest is running: retry when it has finished";
            return Err(Error::new("backtests", ErrorKind::Conflict(why.into())));
        };
        let views = tokio::task::spawn_blocking(move || backtest(&request, &engines))
            .await
            .map_err(|e| Error::storage("backtest", e))??;
        let subject = format!("{} methodologies", views.len());
        let note = Note::of(&principal.key, "backtest", subject, &bytes);
        service.write_noted(key, Some(note), |model| Ok(plan(model, views))).await
    };
    finish(run.await)
}

/// The latest backtest of each methodology, by methodology name.
#[utoipa::path(get, path = "/api/backtests",
    responses((status = 200, body = Vec<BacktestView>)))]
pub async fn latest_backtests(State(service): State<Arc<Service>>) -> Response {
    let model = service.model();
    let mut latest: Vec<&BacktestView> = model.backtests.values().map(AsRef::as_ref).collect();
    latest.sort_by(|a, b| {
        (&a.methodology.name, &a.methodology.version, &a.methodology.hash).cmp(&(
            &b.methodology.name,
            &b.methodology.version,
            &b.methodology.hash,
        ))
    });
    finish(Ok(json(StatusCode::OK, &latest)))
}

/// The engines a request names, each once: stored methodologies first, then bundled profiles.
fn methodologies(
    model: &Model,
    references: Option<&[String]>,
) -> Result<Vec<Arc<MethodologyEntry>>, Error> {
    let mut out: Vec<Arc<MethodologyEntry>> = Vec::new();
    let mut push = |entry: Arc<MethodologyEntry>| {
        if !out.iter().any(|e| e.hash == entry.hash) {
            out.push(entry);
        }
    };
    match references {
        None => {
            model.methodologies.values().for_each(|m| push(Arc::clone(m)));
            for (name, text) in formats::bundled::BUNDLED {
                if let Ok(Profile::Portfolio(_)) = Profile::from_toml(text) {
                    push(Arc::new(bundled(name, text)?));
                }
            }
        }
        Some(references) => {
            for (i, reference) in references.iter().enumerate() {
                let field = format!("methodologies[{i}]");
                let stored = model.find_methodology(&field, reference);
                match (stored, formats::bundled::bundled_text(reference)) {
                    (Ok(entry), _) => push(entry),
                    (Err(_), Some(text)) => {
                        push(Arc::new(MethodologyEntry::parse(text).map_err(|e| {
                            Error::invalid(field, format!("{reference}: {}", e.kind))
                        })?));
                    }
                    (Err(e), None) => return Err(e),
                }
            }
        }
    }
    if out.is_empty() || out.len() > METHODOLOGIES_PER_RUN_MAX {
        let why = format!("1 to {METHODOLOGIES_PER_RUN_MAX} methodologies");
        return Err(Error::invalid("methodologies", why));
    }
    Ok(out)
}

fn bundled(name: &str, text: &str) -> Result<MethodologyEntry, Error> {
    MethodologyEntry::parse(text).map_err(|e| Error::storage(format!("bundled {name}"), e))
}

/// Replays the request's histories and backtests the strategies under every engine.
fn backtest(
    request: &BacktestRequest,
    engines: &[Arc<MethodologyEntry>],
) -> Result<Vec<BacktestView>, Error> {
    let (histories, files) = histories(request)?;
    let window = Window {
        from: day(request.from.as_deref(), "from")?,
        to: day(request.to.as_deref(), "to")?,
    };
    let model = SurfaceModel::from_toml(formats::bundled::REPLAY_SURFACE_TOML)
        .map_err(|e| Error::storage("the bundled replay surface", e))?;
    let pairs: Vec<(Currency, &History)> = histories.iter().map(|(c, h)| (*c, h)).collect();
    let replayed =
        replay(&pairs, &model, window).map_err(|e| Error::invalid("histories", e.to_string()))?;
    let strategies = strategies(request.strategies.as_deref())?;
    let underlyings: Vec<Currency> =
        histories.iter().map(|(c, _)| *c).collect::<BTreeSet<_>>().into_iter().collect();
    let book = Book::strategies(&strategies, &underlyings)
        .map_err(|e| Error::invalid("strategies", e.to_string()))?;
    let named: Vec<(String, Engine)> =
        engines.iter().map(|e| (e.label(), e.engine.clone())).collect();
    let rows = side_by_side(&replayed, &named, &book, &[], Confidence::VAR_BASEL, &mut |_, _| {});
    let days = replayed.days();
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Err(Error::invalid("histories", "no day of the window could be replayed"));
    };
    let inputs = BacktestInputs {
        histories: files,
        surface: hash_hex(&model.hash()),
        first_day: format_day(first.date),
        last_day: format_day(last.date),
        days_replayed: days.len(),
        days_without_market: replayed.missing().len(),
        strategies: strategies.iter().map(|s| s.name().to_owned()).collect(),
        confidence: f64::from(Confidence::VAR_BASEL.basis_points()) / 10_000.0,
    };
    Ok(views(&rows, engines, &inputs))
}

/// Price files read, by underlying.
type Read = Vec<(Currency, History)>;

/// The request's price files read (rows that cannot be used skipped and counted), each
/// underlying once.
fn histories(request: &BacktestRequest) -> Result<(Read, Vec<HistoryView>), Error> {
    if request.histories.is_empty() {
        return Err(Error::invalid("histories", "at least one underlying"));
    }
    let (mut histories, mut files) = (Vec::new(), Vec::new());
    for (code, text) in &request.histories {
        let field = format!("histories.{code}");
        let underlying: Currency =
            code.parse().map_err(|e: basics::Error| Error::invalid(&field, e.to_string()))?;
        if histories.iter().any(|(c, _)| *c == underlying) {
            return Err(Error::invalid(field, format!("{underlying} is given twice")));
        }
        let config =
            ReadConfig { interval: interval_of(text), rows: Policy::Skip, gaps: Gaps::Report };
        let history = read_csv(text, config).map_err(|e| Error::invalid(&field, e.to_string()))?;
        files.push(HistoryView {
            underlying: code.clone(),
            keccak: hash_hex(&keccak(text.as_bytes())),
            rows_skipped: history.report().skipped.len(),
        });
        histories.push((underlying, history));
    }
    Ok((histories, files))
}

/// One view per methodology of a side-by-side, with the verdicts and the least margin.
fn views(
    rows: &[SideBySide],
    engines: &[Arc<MethodologyEntry>],
    inputs: &BacktestInputs,
) -> Vec<BacktestView> {
    let verdicts = verdicts(rows, VERDICT_HORIZON_DAYS);
    let least = least_margin(&verdicts);
    let mut out = Vec::with_capacity(rows.len());
    for (i, ((row, entry), judged)) in rows.iter().zip(engines).zip(&verdicts).enumerate() {
        let methodology = MethodologyView {
            hash: entry.hash.clone(),
            name: entry.name.clone(),
            version: entry.version.clone(),
            toml: None,
        };
        let (error, series) = match &row.outcome {
            Ok(report) => (None, series(report)),
            Err(e) => (Some(e.to_string()), Vec::new()),
        };
        let verdict = judged.as_ref().map(|v| VerdictView {
            horizon_days: v.horizon_days,
            covers: v.covers(),
            least_margin: least == Some(i),
            margin_to_notional: v.margin_rate,
            failing_series: v.failure.as_ref().map(|f| f.series.clone()),
            failing_reason: v.failure.as_ref().map(|f| f.reason.clone()),
        });
        let inputs = inputs.clone();
        out.push(BacktestView { run: 0, methodology, inputs, error, verdict, series });
    }
    out
}

fn series(report: &Report) -> Vec<SeriesView> {
    report.accounts.iter().chain(std::iter::once(&report.book)).map(series_view).collect()
}

fn series_view(s: &SeriesReport) -> SeriesView {
    let initial = (s.horizons.iter().find(|h| h.horizon_days == VERDICT_HORIZON_DAYS))
        .and_then(|h| h.initial.as_ref());
    SeriesView {
        name: s.name.clone(),
        exceedances: initial.map_or(0, |c| c.coverage.exceedances),
        observations: initial.map_or(0, |c| c.coverage.observations),
        kupiec_p: initial.map(|c| c.coverage.proportion_of_failures.p_value),
        christoffersen_p: initial.map(|c| c.coverage.independence.p_value),
        zone: initial.map(|c| c.coverage.zone.name().to_owned()),
        windows: initial.map_or([0; 3], |c| [c.windows.green, c.windows.yellow, c.windows.red]),
        margin_to_notional: s.margin_to_notional,
    }
}

fn strategies(names: Option<&[String]>) -> Result<Vec<Strategy>, Error> {
    let Some(names) = names else { return Ok(Strategy::ALL.to_vec()) };
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            Strategy::parse(n)
                .map_err(|e| Error::invalid(format!("strategies[{i}]"), e.to_string()))
        })
        .collect()
}

fn day(text: Option<&str>, field: &str) -> Result<Option<UnixNanos>, Error> {
    text.map(|t| {
        parse_day(t).ok_or_else(|| Error::invalid(field, format!("{t:?} is not a date YYYY-MM-DD")))
    })
    .transpose()
}

/// The plan that stores `views` as the next run.
fn plan(model: &Model, mut views: Vec<BacktestView>) -> Plan {
    let run = model.backtest_run + 1;
    let mut ops = Vec::with_capacity(views.len());
    for view in &mut views {
        view.run = run;
        ops.push(Op::Backtest {
            run,
            methodology: view.methodology.hash.clone(),
            name: format!("{}@{}", view.methodology.name, view.methodology.version),
            summary: serde_json::to_string(view).unwrap_or_default(),
        });
    }
    let least_margin = views
        .iter()
        .find(|v| v.verdict.as_ref().is_some_and(|v| v.least_margin))
        .map(|v| format!("{}@{}", v.methodology.name, v.methodology.version));
    let answer = json(StatusCode::CREATED, &BacktestRun { run, least_margin, backtests: views });
    Plan { ops, answer, methodology: None, market: None, scope: Scope::Nothing }
}
