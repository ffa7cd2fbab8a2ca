//! Which methodologies of a side-by-side cover at the target, and which of those asks the
//! least margin: the question a venue choosing a methodology asks of the table.
//!
//! A series covers at a horizon when its initial margin was exceeded on at most the target's
//! tail share of its observations ([`Confidence::admits`]: at 99 %, 17 in 1,795 pass and 18
//! fail), the rule `ballast calibrate` fits to. A methodology covers when every account and the
//! book do; a series without observations at that horizon is not judged and does not cover.
//! Too few exceedances do not count against a methodology (Kupiec's test rejects a margin that
//! is too safe as well): what the safety costs is the margin rate, and "least margin" compares
//! the book's mean initial margin over gross notional among the methodologies that cover.

use super::{Report, SeriesReport, SideBySide};

/// The horizon a side-by-side is judged at, days: the first columns of `ballast backtest`'s
/// table, and the horizon Ballast PM's scenarios value at (`valuation.horizon_days`).
pub const VERDICT_HORIZON_DAYS: u32 = 1;

/// How one methodology's backtest fared at the target horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The horizon judged.
    pub horizon_days: u32,
    /// The first series (in report order, the book last) that does not cover, and why; `None`
    /// when all of them cover.
    pub failure: Option<Failure>,
    /// The book's mean initial margin over gross notional; `None` on a book without notional.
    pub margin_rate: Option<f64>,
}

/// A series that does not cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The account's name, or `book`.
    pub series: String,
    /// Its exceedances over its observations, or why it has none.
    pub reason: String,
}

impl Verdict {
    /// Whether the methodology covers and has a margin rate to compare.
    #[must_use]
    pub fn covers(&self) -> bool {
        self.failure.is_none() && self.margin_rate.is_some()
    }
}

/// The verdict on `report` at `horizon_days`, at the report's own confidence.
#[must_use]
pub fn verdict(report: &Report, horizon_days: u32) -> Verdict {
    let failure = report
        .accounts
        .iter()
        .chain(std::iter::once(&report.book))
        .find_map(|series| series_failure(report, series, horizon_days));
    Verdict { horizon_days, failure, margin_rate: report.book.margin_to_notional }
}

fn series_failure(report: &Report, series: &SeriesReport, horizon_days: u32) -> Option<Failure> {
    let fail = |reason: String| Some(Failure { series: series.name.clone(), reason });
    let Some(horizon) = series.horizons.iter().find(|h| h.horizon_days == horizon_days) else {
        return fail(format!("no {horizon_days}-day horizon in the backtest"));
    };
    let Some(initial) = &horizon.initial else {
        return fail(format!("no {horizon_days}-day observations"));
    };
    let (exceedances, observations) = (initial.coverage.exceedances, initial.coverage.observations);
    if report.confidence.admits(exceedances, observations) {
        return None;
    }
    let percent = 100.0 * exceedances as f64 / observations as f64;
    fail(format!(
        "{exceedances}/{observations} exceedances ({percent:.2} %) over the {:.2} % allowed",
        100.0 * report.confidence.tail_probability()
    ))
}

/// The verdict of each row of a side-by-side at `horizon_days`, `None` where it has no backtest.
#[must_use]
pub fn verdicts(rows: &[SideBySide], horizon_days: u32) -> Vec<Option<Verdict>> {
    rows.iter()
        .map(|r| r.outcome.as_ref().ok().map(|report| verdict(report, horizon_days)))
        .collect()
}

/// Among `verdicts` (one per methodology, `None` where it has no backtest), the index of the one
/// that covers with the least margin rate; the first on a tie, `None` when none covers.
#[must_use]
pub fn least_margin(verdicts: &[Option<Verdict>]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, verdict) in verdicts.iter().enumerate() {
        let Some(v) = verdict.as_ref().filter(|v| v.covers()) else { continue };
        let Some(rate) = v.margin_rate else { continue };
        if best.is_none_or(|(_, least)| rate < least) {
            best = Some((i, rate));
        }
    }
    best.map(|(i, _)| i)
}
