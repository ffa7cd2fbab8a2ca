//! Prometheus metrics at `/metrics`: recompute latency and lag, accounts in breach, request
//! latency. One recorder per process (the `metrics` facade is global), installed on first use.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::compute::{LiveState, Status};

/// Histogram buckets in seconds: 50 µs to 10 s, about three per decade.
const BUCKETS_SECONDS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus handle; `None` when another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS_SECONDS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The metrics text.
#[must_use]
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// Records a recompute.
pub fn recomputed(seconds: f64, lag_seconds: f64) {
    metrics::histogram!("ballast_recompute_seconds").record(seconds);
    metrics::histogram!("ballast_recompute_lag_seconds").record(lag_seconds);
}

/// Records how long a write spent validating (`plan`), committing (`commit`) and publishing
/// (`publish`), by what it changed: `at` is its start and the end of each phase.
pub fn wrote(scope: &crate::state::Scope, at: [Instant; 4]) {
    let kind = match scope {
        crate::state::Scope::Nothing => "nothing",
        crate::state::Scope::Account { .. } => "account",
        crate::state::Scope::Methodologies => "methodologies",
        crate::state::Scope::Market(_) => "market",
    };
    for (phase, (from, to)) in
        ["plan", "commit", "publish"].into_iter().zip(at.iter().zip(&at[1..]))
    {
        let seconds = to.saturating_duration_since(*from).as_secs_f64();
        metrics::histogram!("ballast_write_phase_seconds", "scope" => kind, "phase" => phase)
            .record(seconds);
    }
}

/// Counts the rows one pruning deleted, by table.
pub fn pruned(pruned: &crate::store::Pruned) {
    let tables = [
        ("markets", pruned.markets),
        ("margin_history", pruned.samples),
        ("alerts", pruned.alerts),
        ("idempotency", pruned.receipts),
    ];
    for (table, rows) in tables {
        metrics::counter!("ballast_rows_pruned_total", "table" => table).increment(rows);
    }
}

/// Records the account counts of a publication (every change publishes, so the gauges are
/// current from the first start on).
pub fn published(published: &LiveState) {
    let mut counts = [0_usize; 3];
    for group in published.groups.values() {
        for status in group.health.iter().map(|h| h.status) {
            match status {
                Status::ImBreach => counts[0] += 1,
                Status::MmBreach => counts[1] += 1,
                Status::Unpriced => counts[2] += 1,
                Status::Healthy => {}
            }
        }
    }
    metrics::gauge!("ballast_accounts_in_breach", "kind" => "im").set(counts[0] as f64);
    metrics::gauge!("ballast_accounts_in_breach", "kind" => "mm").set(counts[1] as f64);
    metrics::gauge!("ballast_accounts_unpriced").set(counts[2] as f64);
    let accounts: usize = published.groups.values().map(|g| g.book.ids.len()).sum();
    metrics::gauge!("ballast_accounts").set(accounts as f64);
}

/// Middleware recording each request's latency by route and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "ballast_http_request_seconds",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .record(started.elapsed().as_secs_f64());
    response
}
