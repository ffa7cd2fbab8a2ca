//! History and retention: every account's margin sampled at a fixed step, the alert log, and the
//! market pushes thinned by age; the housekeeping task that writes and prunes them, and the read
//! endpoints (JSON, or CSV with `format=csv`).
//!
//! **Bounds.** Under a [`Retention`] of `raw_secs`, `step_secs` and `kept_secs`, the database
//! holds at most: every market push of the last `raw_secs`, then the first of each `step_secs`
//! back to `kept_secs`, and the current market whatever its age; one margin sample per account
//! per `step_secs` for `kept_secs`, written only when the account's row (status, health,
//! figures, staleness) changed since its last sample, so a quiet book adds nothing; the alerts
//! of the last `kept_secs`; the idempotency receipts of the last
//! [`RECEIPTS_KEPT_SECS`](crate::store::RECEIPTS_KEPT_SECS).
//!
//! A sample is the account's row of the health list at that moment (`reads::health_row` on
//! the published state), so its figures are the bits every other route shows for that market.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::compute::{Alert, LiveState};
use crate::dto::{FiguresView, StaleView, finite};
use crate::error::{Error, ErrorBody, ErrorKind};
use crate::state::{Service, unix_secs};
use crate::store::{AlertRow, MarketRow, Sample, Window};
use crate::writes::{check_id, query};

/// Rows of one history answer unless `limit` says otherwise.
pub const HISTORY_ROWS_DEFAULT: usize = 1_000;
/// Rows of one history answer at most (a longer window is read page by page).
pub const HISTORY_ROWS_MAX: usize = 10_000;
/// How often queued alerts are stored: the alert log is at most this far behind the feed.
const ALERTS_FLUSHED_EVERY: Duration = Duration::from_secs(1);

/// What the database keeps, and at which resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Market pushes kept as received for this many seconds back from now.
    pub raw_secs: i64,
    /// The resolution past the raw window, and how often every account's margin is sampled.
    pub step_secs: i64,
    /// Nothing older is kept (except the current market), seconds.
    pub kept_secs: i64,
}

impl Default for Retention {
    /// The last hour of pushes raw, then one a minute; a sample a minute; a week in all.
    fn default() -> Retention {
        Retention { raw_secs: 3_600, step_secs: 60, kept_secs: 7 * 86_400 }
    }
}

impl Retention {
    /// Checks the windows are consistent.
    ///
    /// # Errors
    /// `Invalid` naming the field: a step that is not positive, a negative raw window, or a
    /// horizon shorter than the raw window or the step.
    pub fn check(&self) -> Result<(), Error> {
        if self.step_secs <= 0 {
            return Err(Error::invalid("retention.step_secs", "must be positive"));
        }
        if self.raw_secs < 0 {
            return Err(Error::invalid("retention.raw_secs", "must not be negative"));
        }
        if self.kept_secs < self.raw_secs.max(self.step_secs) {
            let why = "must be at least the raw window and the step";
            return Err(Error::invalid("retention.kept_secs", why));
        }
        Ok(())
    }
}

/// `alerts` of a publication at Unix second `at` on market `market_seq`, as log rows (their
/// `seq` is assigned when stored).
#[must_use]
pub fn alert_rows(alerts: &[Alert], at: i64, market_seq: Option<i64>) -> Vec<AlertRow> {
    let row = |a: &Alert| AlertRow {
        seq: 0,
        at,
        account: a.account.clone(),
        from: a.from.name().to_owned(),
        to: a.to.name().to_owned(),
        health: json(&finite(a.health)),
        market_seq: market_seq.unwrap_or(0),
    };
    alerts.iter().map(row).collect()
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|e| panic!("Invariant: a view of finite numbers serialises: {e}"))
}

/// The sample at Unix second `at` of every account of `published` whose row differs from the
/// one last sampled (`last` holds a digest per account and is updated; accounts no longer in
/// the book are forgotten).
#[must_use]
pub fn samples(published: &LiveState, at: i64, last: &mut BTreeMap<String, u64>) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for group in published.groups.values() {
        for i in 0..group.book.ids.len() {
            let row = crate::reads::health_row(group, i);
            let sample = Sample {
                account: row.id,
                at,
                market_seq: published.market_seq.unwrap_or(0),
                status: row.status,
                health: json(&row.health),
                figures: json(&row.figures),
                stale: json(&row.stale),
                error: row.error.unwrap_or_default(),
            };
            let mut hasher = DefaultHasher::new();
            (&sample.status, &sample.health, &sample.figures).hash(&mut hasher);
            (&sample.stale, &sample.error).hash(&mut hasher);
            let digest = hasher.finish();
            if last.get(&sample.account) == Some(&digest) {
                seen.insert(sample.account, digest);
            } else {
                seen.insert(sample.account.clone(), digest);
                out.push(sample);
            }
        }
    }
    *last = seen;
    out
}

/// The housekeeping task: stores queued alerts every second and, every `retention.step_secs`
/// (on multiples of it), samples every account's margin and prunes what `retention` no longer
/// keeps. A failed step is reported and retried on the next tick; queued alerts are kept.
pub async fn housekeeping(service: Arc<Service>, retention: Retention) {
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut next_step = 0;
    let mut tick = tokio::time::interval(ALERTS_FLUSHED_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let alerts = service.take_alerts();
        if let Err(e) = service.store().insert_alerts(&alerts).await {
            eprintln!("error: alert log: {e}");
            service.put_back_alerts(alerts);
        }
        let now = i64::try_from(unix_secs()).unwrap_or(i64::MAX);
        if now < next_step {
            continue;
        }
        next_step = now - now.rem_euclid(retention.step_secs) + retention.step_secs;
        let published = service.published();
        let sampled = tokio::task::spawn_blocking(move || {
            let samples = samples(&published, now, &mut last);
            (samples, last)
        })
        .await;
        let Ok((samples, kept)) = sampled else {
            eprintln!("error: margin history: the sampling task failed");
            last = BTreeMap::new();
            continue;
        };
        last = kept;
        if let Err(e) = service.store().insert_samples(&samples).await {
            eprintln!("error: margin history: {e}");
            // Sample every account again next time rather than miss a change.
            last.clear();
        }
        match service.store().prune(now, &retention).await {
            Ok(pruned) => crate::metrics::pruned(&pruned),
            Err(e) => eprintln!("error: retention: {e}"),
        }
    }
}

/// How a history answer is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON (the default).
    #[default]
    Json,
    /// CSV with a header line, one line per row (per currency for margin samples).
    Csv,
}

/// The window of a history read.
#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Earliest Unix second, inclusive (default: the beginning).
    pub from: Option<i64>,
    /// Latest Unix second, exclusive (default: none).
    pub to: Option<i64>,
    /// The cursor of the previous page (its `next_after`): rows strictly after it.
    pub after: Option<i64>,
    /// Rows at most (default 1,000, at most 10,000).
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<usize>,
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<Format>,
}

/// The window of an alert-log read.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AlertQuery {
    /// Only this account's alerts.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub account: Option<String>,
    /// Earliest Unix second, inclusive (default: the beginning).
    pub from: Option<i64>,
    /// Latest Unix second, exclusive (default: none).
    pub to: Option<i64>,
    /// The cursor of the previous page (its `next_before`): alerts logged before it.
    pub before: Option<i64>,
    /// Alerts at most (default 1,000, at most 10,000).
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<usize>,
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<Format>,
}

/// The store's window for `from`, `to`, the cursor and `limit`.
///
/// # Errors
/// `Malformed` naming `limit` outside 1..=10,000, or `to` not after `from`.
fn window(
    from: Option<i64>,
    to: Option<i64>,
    cursor: Option<i64>,
    limit: Option<usize>,
) -> Result<Window, Error> {
    let limit = limit.unwrap_or(HISTORY_ROWS_DEFAULT);
    if !(1..=HISTORY_ROWS_MAX).contains(&limit) {
        let why = format!("between 1 and {HISTORY_ROWS_MAX}");
        return Err(Error::new("limit", ErrorKind::Malformed(why)));
    }
    let (from, to) = (from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX));
    if to <= from {
        return Err(Error::new("to", ErrorKind::Malformed("must be after from".into())));
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(Window { from, to, after: cursor, limit })
}

/// One margin sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SampleView {
    /// Unix second of the sample.
    pub at: i64,
    /// The market the figures are on.
    pub market_seq: Option<i64>,
    /// `healthy`, `im-breach`, `mm-breach` or `unpriced`.
    pub status: String,
    /// Equity / MM (null when unbounded or unpriced).
    pub health: Option<f64>,
    /// Figures per currency (the kept ones when `stale` is set).
    pub figures: Vec<FiguresView>,
    /// Why the account could not be valued.
    pub error: Option<String>,
    /// Where kept figures come from, when the market could not value the account.
    pub stale: Option<StaleView>,
}

/// `GET /api/accounts/{id}/history`: an account's margin samples, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    /// Account id.
    pub account: String,
    /// The samples.
    pub samples: Vec<SampleView>,
    /// The `after` of the next page, when there may be one.
    pub next_after: Option<i64>,
}

/// A JSON column read back.
fn parse<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::storage(column, e))
}

fn sample_view(s: Sample) -> Result<SampleView, Error> {
    Ok(SampleView {
        at: s.at,
        market_seq: (s.market_seq > 0).then_some(s.market_seq),
        health: parse("margin_history.health", &s.health)?,
        figures: parse("margin_history.figures", &s.figures)?,
        stale: parse("margin_history.stale", &s.stale)?,
        error: (!s.error.is_empty()).then_some(s.error),
        status: s.status,
    })
}

/// The next page's cursor: the last row's, when the page is full.
fn next<T>(rows: &[T], limit: i64, cursor: impl Fn(&T) -> i64) -> Option<i64> {
    let full = i64::try_from(rows.len()).is_ok_and(|n| n == limit);
    rows.last().filter(|_| full).map(cursor)
}

/// An account's margin over time: one sample per step in which its figures changed, oldest
/// first, from the health list (the same figures every route shows for that market).
///
/// # Errors
/// `NotFound` for an account not stored; `Malformed` for a bad window.
#[utoipa::path(get, path = "/api/accounts/{id}/history",
    params(("id" = String, Path), HistoryQuery),
    responses((status = 200, description = "the samples",
            content((HistoryView = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn account_history(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, Error> {
    check_id("id", &id)?;
    let q = query(q)?;
    let window = window(q.from, q.to, q.after, q.limit)?;
    if !service.model().accounts.contains_key(&id) {
        return Err(Error::new(format!("id {id}"), ErrorKind::NotFound));
    }
    let samples = service.store().samples(&id, window).await?;
    let next_after = next(&samples, window.limit, |s| s.at);
    let samples: Vec<SampleView> =
        samples.into_iter().map(sample_view).collect::<Result<_, _>>()?;
    if q.format.unwrap_or_default() == Format::Csv {
        return Ok(csv(&format!("{id}-history.csv"), &history_csv(&samples)));
    }
    Ok(axum::Json(HistoryView { account: id, samples, next_after }).into_response())
}

/// One logged status change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    /// Position in the log.
    pub seq: i64,
    /// Unix second of the publication that changed it.
    pub at: i64,
    /// Account id.
    pub account: String,
    /// Status before.
    pub from: String,
    /// Status after.
    pub to: String,
    /// Health after (null when unbounded or unpriced).
    pub health: Option<f64>,
    /// The market of that publication.
    pub market_seq: Option<i64>,
}

/// `GET /api/alerts`: the alert log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlertLog {
    /// The alerts.
    pub alerts: Vec<AlertView>,
    /// The `before` of the next page, when there may be one.
    pub next_before: Option<i64>,
}

/// The alert log: every status change the service published (IM or MM breach, unpriced, back
/// to healthy), newest first. A risk role reads every account's; an `account` key its own; a
/// `viewer` none (margin calls are private).
///
/// # Errors
/// `Forbidden` for an account the key may not see; `Malformed` for a bad window.
#[utoipa::path(get, path = "/api/alerts", params(AlertQuery),
    responses((status = 200, description = "the alerts",
            content((AlertLog = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn alert_log(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    q: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let q = query(q)?;
    let window = window(q.from, q.to, q.before, q.limit)?;
    let own: Vec<String> = principal.accounts.iter().cloned().collect();
    let accounts = match &q.account {
        Some(id) => {
            check_id("account", id)?;
            if !principal.reads_account(id) {
                let why = format!("this {} key may not see account {id}", principal.role);
                return Err(Error::new("account", ErrorKind::Forbidden(why)));
            }
            Some(std::slice::from_ref(id))
        }
        None if principal.role.reads_every_account() => None,
        None => Some(own.as_slice()),
    };
    let rows = service.store().alerts(accounts, window).await?;
    let next_before = next(&rows, window.limit, |a| a.seq);
    let alerts: Vec<AlertView> = rows.into_iter().map(alert_view).collect::<Result<_, _>>()?;
    if q.format.unwrap_or_default() == Format::Csv {
        return Ok(csv("alerts.csv", &alerts_csv(&alerts)));
    }
    Ok(axum::Json(AlertLog { alerts, next_before }).into_response())
}

fn alert_view(a: AlertRow) -> Result<AlertView, Error> {
    let health = parse("alerts.health", &a.health)?;
    let market_seq = (a.market_seq > 0).then_some(a.market_seq);
    Ok(AlertView {
        seq: a.seq,
        at: a.at,
        account: a.account,
        from: a.from,
        to: a.to,
        health,
        market_seq,
    })
}

/// One stored market push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MarketPointView {
    /// Sequence number.
    pub seq: i64,
    /// Unix second of its acknowledgement.
    pub received_at: i64,
    /// Valuation time, RFC 3339.
    pub valuation_time: String,
    /// Index price per underlying.
    pub indices: std::collections::BTreeMap<String, f64>,
}

/// `GET /api/markets/history`: the stored pushes, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MarketHistory {
    /// The pushes.
    pub markets: Vec<MarketPointView>,
    /// The `after` of the next page, when there may be one.
    pub next_after: Option<i64>,
}

/// The market pushes kept (every one of the raw window, then one per step), oldest first,
/// with each one's index prices; the window is on the time of acknowledgement.
///
/// # Errors
/// `Malformed` for a bad window.
#[utoipa::path(get, path = "/api/markets/history", params(HistoryQuery),
    responses((status = 200, description = "the pushes",
            content((MarketHistory = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody)))]
pub async fn market_history(
    State(service): State<Arc<Service>>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let q = query(q)?;
    let window = window(q.from, q.to, q.after, q.limit)?;
    let rows = service.store().markets(window).await?;
    let next_after = next(&rows, window.limit, |m| m.seq);
    let markets: Vec<MarketPointView> =
        rows.into_iter().map(market_view).collect::<Result<_, _>>()?;
    if q.format.unwrap_or_default() == Format::Csv {
        return Ok(csv("markets.csv", &markets_csv(&markets)));
    }
    Ok(axum::Json(MarketHistory { markets, next_after }).into_response())
}

fn market_view(m: MarketRow) -> Result<MarketPointView, Error> {
    let indices = parse("markets.indices", &m.indices)?;
    Ok(MarketPointView {
        seq: m.seq,
        received_at: m.received_at,
        valuation_time: m.valuation,
        indices,
    })
}

fn csv(file: &str, text: &str) -> Response {
    let disposition = format!("attachment; filename=\"{file}\"");
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
        (header::CONTENT_DISPOSITION, disposition),
    ];
    (headers, text.to_owned()).into_response()
}

/// A CSV field: quoted (with quotes doubled) when it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A number as JSON writes it (the shortest text that reads back to the same bits); empty
/// when absent.
fn number<T: ToString>(x: Option<T>) -> String {
    x.map(|x| x.to_string()).unwrap_or_default()
}

fn history_csv(samples: &[SampleView]) -> String {
    let mut out = String::from(
        "at,market_seq,status,health,stale_market_seq,currency,equity,initial_margin,\
         maintenance_margin,error\n",
    );
    for s in samples {
        let head = [
            s.at.to_string(),
            number(s.market_seq),
            s.status.clone(),
            number(s.health),
            number(s.stale.as_ref().and_then(|k| k.market_seq)),
        ]
        .join(",");
        let error = field(s.error.as_deref().unwrap_or_default());
        if s.figures.is_empty() {
            let _ = writeln!(out, "{head},,,,,{error}");
        }
        for f in &s.figures {
            let (equity, im, mm) = (f.equity, f.initial_margin, f.maintenance_margin);
            let _ = writeln!(out, "{head},{},{equity},{im},{mm},{error}", f.currency);
        }
    }
    out
}

fn alerts_csv(alerts: &[AlertView]) -> String {
    let mut out = String::from("seq,at,account,from,to,health,market_seq\n");
    for a in alerts {
        let (health, market) = (number(a.health), number(a.market_seq));
        let line = [a.seq.to_string(), a.at.to_string(), a.account.clone(), a.from.clone()];
        let _ = writeln!(out, "{},{},{health},{market}", line.join(","), a.to);
    }
    out
}

fn markets_csv(markets: &[MarketPointView]) -> String {
    let mut out = String::from("seq,received_at,valuation_time,underlying,index\n");
    for m in markets {
        for (underlying, index) in &m.indices {
            let (seq, at) = (m.seq, m.received_at);
            let _ = writeln!(out, "{seq},{at},{},{underlying},{index}", m.valuation_time);
        }
    }
    out
}
