//! Tables (Markdown pipes, readable in a terminal and pasteable into a document) and JSON of
//! backtest and capital reports.

use std::fmt::Write as _;

use backtest::coverage::LikelihoodRatio;
use backtest::procyclicality::{Procyclicality, Rise};
use backtest::run::{
    CoverageReport, DayPoint, Report, SeriesReport, SideBySide, VERDICT_HORIZON_DAYS, Verdict,
    least_margin, verdicts,
};
use backtest::var::{CapitalReport, Measure, Method};
use serde_json::{Value, json};

use super::Loaded;

/// Missing days named one by one in the text summary; the JSON lists them all.
const MISSING_SHOWN_MAX: usize = 20;
/// Skips named one by one in the text summary; the JSON lists every listed skip.
const SKIPS_SHOWN_MAX: usize = 20;
/// The columns of a coverage cell group.
const COVERAGE_COLUMNS: [&str; 8] = [
    "exceedances",
    "rate",
    "Kupiec POF LR (p)",
    "Christoffersen ind. LR (p)",
    "joint LR (p)",
    "zone",
    "250-day windows G/Y/R (most exceedances)",
    "largest excess (USD)",
];

/// What every table starts with: the inputs that reproduce it.
pub struct Header {
    lines: Vec<String>,
    json: Value,
}

impl Header {
    pub fn of(loaded: &Loaded, what: &str) -> Header {
        let days = loaded.replay.days();
        let (first, last) = (days.first().map(|d| d.date), days.last().map(|d| d.date));
        let underlyings: Vec<String> = loaded.underlyings.iter().map(ToString::to_string).collect();
        let model = loaded.replay.model().params();
        let missing: Vec<String> = loaded
            .replay
            .missing()
            .iter()
            .map(|m| format!("{}: {:?}", day(m.date), m.absence))
            .collect();
        let mut lines = vec![
            format!("methodology: {what}"),
            format!(
                "history: {} daily closes, {} to {}, {} days replayed, {} without a market",
                underlyings.join(" + "),
                first.map_or_else(String::new, day),
                last.map_or_else(String::new, day),
                days.len(),
                missing.len()
            ),
            format!("surface model: {} ({})", model.name, loaded.surface_hash),
            format!("book: {} accounts", loaded.book.accounts().len()),
        ];
        lines.extend(missing.iter().take(MISSING_SHOWN_MAX).map(|m| format!("  no market {m}")));
        if missing.len() > MISSING_SHOWN_MAX {
            lines.push(format!("  … and {} more (see --json)", missing.len() - MISSING_SHOWN_MAX));
        }
        let json = json!({
            "methodology": what,
            "underlyings": underlyings,
            "first_day": first.map(day),
            "last_day": last.map(day),
            "days": days.len(),
            "missing_days": missing,
            "surface": { "name": model.name, "hash": loaded.surface_hash },
            "accounts": loaded.book.accounts().len(),
        });
        Header { lines, json }
    }

    fn text(&self) -> String {
        self.lines.iter().fold(String::new(), |mut out, line| {
            let _ = writeln!(out, "{line}");
            out
        })
    }
}

/// `YYYY-MM-DD` of a bar time.
pub use backtest::history::format_day as day;

/// A Markdown table's header and rule: the first `left` columns left-aligned, the rest right.
fn table_head(out: &mut String, columns: &[&str], left: usize) {
    let _ = writeln!(out, "| {} |", columns.join(" | "));
    let rule: Vec<&str> =
        (0..columns.len()).map(|i| if i < left { "---" } else { "---:" }).collect();
    let _ = writeln!(out, "| {} |", rule.join(" | "));
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_owned(), |x| format!("{:.2} %", 100.0 * x))
}

fn rise(r: Option<Rise>) -> String {
    r.map_or_else(|| "–".to_owned(), |r| format!("{:+.1} % ({})", 100.0 * r.relative, day(r.to)))
}

/// A likelihood ratio and its p-value; a statistic clamped at zero can be −0, printed as 0.
fn ratio(l: LikelihoodRatio) -> String {
    format!("{:.2} ({:.3})", l.statistic + 0.0, l.p_value)
}

fn coverage_cells(c: Option<&CoverageReport>) -> Vec<String> {
    let Some(c) = c else { return vec!["–".to_owned(); COVERAGE_COLUMNS.len()] };
    let (v, w) = (&c.coverage, &c.windows);
    let most = w.worst.map_or_else(String::new, |z| format!(" ({})", z.exceedances));
    vec![
        format!("{}/{}", v.exceedances, v.observations),
        format!("{:.2} %", 100.0 * v.rate),
        ratio(v.proportion_of_failures),
        ratio(v.independence),
        ratio(v.conditional_coverage),
        v.zone.name().to_owned(),
        format!("{}/{}/{}{most}", w.green, w.yellow, w.red),
        v.magnitudes.max.map_or_else(|| "–".to_owned(), |m| format!("{m:.0}")),
    ]
}

fn worst_year(p: &Procyclicality) -> String {
    let ratios = p.years.iter().filter_map(|y| y.peak_to_trough().map(|r| (r, y.year)));
    let worst = ratios.reduce(|a, b| if b.0 > a.0 { b } else { a });
    worst.map_or_else(|| "–".to_owned(), |(r, y)| format!("{r:.2} ({y})"))
}

fn rise_cells(p: &Procyclicality) -> [String; 3] {
    [worst_year(p), rise(p.one_day), rise(p.thirty_day)]
}

/// A margin rate's rise in points of notional.
fn points(r: Option<Rise>) -> String {
    r.map_or_else(|| "–".to_owned(), |r| format!("{:+.2} pp ({})", 100.0 * r.absolute, day(r.to)))
}

fn rate_cells(p: &Procyclicality) -> [String; 3] {
    [worst_year(p), points(p.one_day), points(p.thirty_day)]
}

fn series_of(report: &Report) -> impl Iterator<Item = &SeriesReport> {
    report.accounts.iter().chain(std::iter::once(&report.book))
}

/// One methodology's report: coverage per account and horizon, then procyclicality, then what
/// was skipped.
pub fn report(header: &Header, report: &Report) -> String {
    let mut out = header.text();
    let level = report.confidence;
    let _ = writeln!(out, "\ncoverage of the initial margin at {level:?}\n");
    let mut columns = vec!["account", "horizon"];
    columns.extend(COVERAGE_COLUMNS);
    columns.push("skipped");
    table_head(&mut out, &columns, 1);
    for series in series_of(report) {
        for h in &series.horizons {
            let cells = coverage_cells(h.initial.as_ref()).join(" | ");
            let (name, days) = (&series.name, h.horizon_days);
            let _ = writeln!(out, "| {name} | {days} d | {cells} | {} |", h.skipped);
        }
    }
    let _ = writeln!(
        out,
        "\nmargin and procyclicality: of the margin rate (IM / gross notional), then of IM in \
         USD, which also follows the price level (legs are sized in coins)\n"
    );
    let mut columns = vec!["account", "days valued", "IM / gross notional"];
    columns.extend(["rate: worst year peak/trough", "rate: 1-day rise", "rate: 30-day rise"]);
    columns.extend(["USD: worst year", "USD: 1-day rise", "USD: 30-day rise", "first refusal"]);
    table_head(&mut out, &columns, 1);
    for s in series_of(report) {
        let rate = rate_cells(&s.rate_procyclicality).join(" | ");
        let usd = rise_cells(&s.procyclicality).join(" | ");
        let refusal = s.first_refusal.as_deref().unwrap_or("–");
        let ratio = percent(s.margin_to_notional);
        let _ = writeln!(
            out,
            "| {} | {} | {ratio} | {rate} | {usd} | {refusal} |",
            s.name, s.days_valued
        );
    }
    exceedance_lines(&mut out, report);
    skips(&mut out, report);
    out
}

/// The days whose loss over horizon `h` exceeded the initial margin, from a daily series.
fn exceedance_days(days: &[DayPoint], h: usize) -> Vec<String> {
    days.iter()
        .filter(|d| d.losses.get(h).copied().flatten().is_some_and(|l| l > d.initial_margin))
        .map(|d| day(d.date))
        .collect()
}

/// Each series' daily points, where the report kept them: the accounts', then the book's.
fn daily_of(report: &Report) -> impl Iterator<Item = (&SeriesReport, &[DayPoint])> {
    let accounts = report.accounts.iter().zip(report.account_days.iter().map(Vec::as_slice));
    accounts.chain(std::iter::once((&report.book, report.book_days.as_slice())))
}

fn exceedance_lines(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "
1-day exceedances of the initial margin, by the day they start
"
    );
    for (series, days) in daily_of(report) {
        let list = exceedance_days(days, 0);
        let shown = list.iter().take(SKIPS_SHOWN_MAX).cloned().collect::<Vec<_>>().join(", ");
        let more = list.len().saturating_sub(SKIPS_SHOWN_MAX);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let _ = writeln!(
            out,
            "  {}: {}{more}",
            series.name,
            if list.is_empty() { "none" } else { &shown }
        );
    }
}

fn skips(out: &mut String, report: &Report) {
    let skips = &report.skips;
    let (listed, unlisted) = (skips.listed.len(), skips.unlisted);
    let _ = writeln!(out, "\nskipped observations: {listed} listed, {unlisted} more counted");
    for s in skips.listed.iter().take(SKIPS_SHOWN_MAX) {
        let horizon =
            s.horizon_days.map_or_else(|| "every horizon".to_owned(), |h| format!("{h} d"));
        let account = s.account.map_or("every account", |a| report.accounts[a].name.as_str());
        let _ = writeln!(out, "  {} ({horizon}, {account}): {}", day(s.date), s.reason);
    }
    if listed > SKIPS_SHOWN_MAX {
        let _ = writeln!(out, "  … and {} more (see --json)", listed - SKIPS_SHOWN_MAX);
    }
}

fn ratio_json(l: LikelihoodRatio) -> Value {
    json!({ "statistic": l.statistic + 0.0, "p_value": l.p_value })
}

fn coverage_json(c: Option<&CoverageReport>) -> Value {
    let Some(c) = c else { return Value::Null };
    let v = &c.coverage;
    let t = v.transitions;
    json!({
        "observations": v.observations,
        "exceedances": v.exceedances,
        "rate": v.rate,
        "kupiec_pof": ratio_json(v.proportion_of_failures),
        "christoffersen_independence": ratio_json(v.independence),
        "conditional_coverage": ratio_json(v.conditional_coverage),
        "transitions_n00_n01_n10_n11": [t.n00, t.n01, t.n10, t.n11],
        "zone": v.zone.name(),
        "zone_bounds": { "yellow_from": v.bounds.yellow_from, "red_from": v.bounds.red_from },
        "excesses_worst_first": v.magnitudes.worst_first,
        "excess_mean": v.magnitudes.mean,
        "windows": {
            "count": c.windows.windows,
            "green": c.windows.green,
            "yellow": c.windows.yellow,
            "red": c.windows.red,
            "most_exceedances": c.windows.worst.map(|w| w.exceedances),
        },
    })
}

fn procyclicality_json(p: &Procyclicality) -> Value {
    let rise = |r: Option<Rise>| {
        r.map(|r| {
            let (from, to) = (day(r.from), day(r.to));
            json!({ "from": from, "to": to, "relative": r.relative, "absolute": r.absolute })
        })
    };
    let years: Vec<Value> = p
        .years
        .iter()
        .map(|y| {
            let ratio = y.peak_to_trough();
            json!({ "year": y.year, "peak": y.peak, "trough": y.trough, "peak_to_trough": ratio })
        })
        .collect();
    json!({
        "years": years,
        "largest_one_day_rise": rise(p.one_day),
        "largest_thirty_day_rise": rise(p.thirty_day),
    })
}

fn series_json(series: &SeriesReport) -> Value {
    let horizons: Vec<Value> = series
        .horizons
        .iter()
        .map(|h| {
            json!({
                "horizon_days": h.horizon_days,
                "initial_margin": coverage_json(h.initial.as_ref()),
                "maintenance_margin": coverage_json(h.maintenance.as_ref()),
                "skipped": h.skipped,
            })
        })
        .collect();
    json!({
        "name": series.name,
        "days_valued": series.days_valued,
        "margin_to_gross_notional": series.margin_to_notional,
        "horizons": horizons,
        "procyclicality_usd": procyclicality_json(&series.procyclicality),
        "procyclicality_rate": procyclicality_json(&series.rate_procyclicality),
        "first_refusal": series.first_refusal,
    })
}

fn exceedances_json(report: &Report) -> Value {
    let by_series: serde_json::Map<String, Value> = daily_of(report)
        .map(|(series, days)| {
            let per_horizon: Vec<Value> = (report.horizons_days.iter().enumerate())
                .map(|(h, span)| json!({ "horizon_days": span, "days": exceedance_days(days, h) }))
                .collect();
            (series.name.clone(), Value::Array(per_horizon))
        })
        .collect();
    Value::Object(by_series)
}

fn report_value(report: &Report) -> Value {
    let skips: Vec<Value> = report
        .skips
        .listed
        .iter()
        .map(|s| {
            let account = s.account.map(|a| report.accounts[a].name.clone());
            let (date, horizon) = (day(s.date), s.horizon_days);
            json!({ "date": date, "horizon_days": horizon, "account": account, "reason": s.reason })
        })
        .collect();
    json!({
        "methodology": report.methodology,
        "confidence_basis_points": report.confidence.basis_points(),
        "horizons_days": report.horizons_days,
        "days": report.days,
        "book": series_json(&report.book),
        "accounts": report.accounts.iter().map(series_json).collect::<Vec<_>>(),
        "exceedance_days": exceedances_json(report),
        "skipped": skips,
        "skipped_unlisted": report.skips.unlisted,
    })
}

/// One methodology's report as JSON.
pub fn report_json(header: &Header, report: &Report) -> String {
    let value = json!({ "inputs": header.json, "report": report_value(report) });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn exceedances(h: Option<&backtest::run::HorizonReport>) -> String {
    let c = h.and_then(|h| h.initial.as_ref());
    c.map_or_else(
        || "–".to_owned(),
        |c| format!("{}/{}", c.coverage.exceedances, c.coverage.observations),
    )
}

fn row_cells(methodology: &str, series: &SeriesReport) -> String {
    let first = series.horizons.first();
    let tests = match first.and_then(|h| h.initial.as_ref()) {
        None => vec!["–".to_owned(); 5],
        Some(c) => {
            let (v, w) = (&c.coverage, &c.windows);
            vec![
                format!("{:.3}", v.proportion_of_failures.p_value),
                format!("{:.3}", v.independence.p_value),
                format!("{:.3}", v.conditional_coverage.p_value),
                v.zone.name().to_owned(),
                format!("{}/{}/{}", w.green, w.yellow, w.red),
            ]
        }
    };
    let longer: Vec<String> = (series.horizons.iter().skip(1))
        .map(|h| format!("{} d: {}", h.horizon_days, exceedances(Some(h))))
        .collect();
    format!(
        "| {methodology} | {} | {} | {} | {} | {} | {} |",
        series.name,
        exceedances(first),
        tests.join(" | "),
        longer.join(", "),
        percent(series.margin_to_notional),
        rate_cells(&series.rate_procyclicality).join(" | "),
    )
}

/// Every methodology's rows side by side.
pub fn side_by_side(header: &Header, rows: &[SideBySide], hashes: &[String]) -> String {
    let mut out = header.text();
    let _ = writeln!(
        out,
        "\ncoverage of the initial margin at 99 %: 1-day exceedances, p-values of Kupiec's POF, \
         Christoffersen's independence and the joint test, the Basel zone of the whole series \
         and the zones of its 250-day windows; then the longer horizons' exceedances, the mean \
         margin rate (IM / gross notional) and the margin rate's procyclicality\n"
    );
    let mut columns = vec!["methodology", "account", "1-day exc.", "Kupiec p", "Chr. p"];
    columns.extend(["joint p", "zone", "windows G/Y/R", "longer horizons", "IM / notional"]);
    columns.extend(["rate: worst year peak/trough", "rate: 1-day rise", "rate: 30-day rise"]);
    table_head(&mut out, &columns, 2);
    for row in rows {
        match &row.outcome {
            Ok(report) => {
                for series in series_of(report) {
                    let _ = writeln!(out, "{}", row_cells(&row.name, series));
                }
            }
            Err(e) => {
                let blanks = " |".repeat(columns.len() - 2);
                let _ = writeln!(out, "| {} | cannot value: {e} |{blanks}", row.name);
            }
        }
    }
    verdicts_table(&mut out, rows);
    let _ = writeln!(out);
    for (row, hash) in rows.iter().zip(hashes) {
        let skipped = row.outcome.as_ref().map_or(0, |r| r.skips.listed.len() + r.skips.unlisted);
        let _ = writeln!(
            out,
            "{}: {hash}, {skipped} skips named (by day, horizon or account)",
            row.name
        );
    }
    out
}

/// Which methodologies cover at the target and which of them asks the least margin.
fn verdicts_table(out: &mut String, rows: &[SideBySide]) {
    let judged = verdicts(rows, VERDICT_HORIZON_DAYS);
    let least = least_margin(&judged);
    let _ = writeln!(
        out,
        "\ncovers at 99 % of the {VERDICT_HORIZON_DAYS}-day loss: every account and the book \
         exceeded on at most 1 % of their observations; least margin: the lowest book IM / \
         gross notional among those that cover\n"
    );
    table_head(
        out,
        &["methodology", "covers", "first series that does not", "book IM / notional"],
        3,
    );
    for (i, (row, v)) in rows.iter().zip(&judged).enumerate() {
        let (covers, why, rate) = match v {
            None => ("no".to_owned(), "cannot value".to_owned(), "–".to_owned()),
            Some(v) => {
                let covers = match (v.covers(), least == Some(i)) {
                    (true, true) => "yes, least margin",
                    (true, false) => "yes",
                    (false, _) => "no",
                };
                let why = v
                    .failure
                    .as_ref()
                    .map_or("–".to_owned(), |f| format!("{}: {}", f.series, f.reason));
                (
                    covers.to_owned(),
                    why,
                    v.margin_rate.map_or("–".to_owned(), |r| format!("{:.2} %", 100.0 * r)),
                )
            }
        };
        let _ = writeln!(out, "| {} | {covers} | {why} | {rate} |", row.name);
    }
}

fn verdict_value(v: &Verdict, least: bool) -> Value {
    json!({
        "horizon_days": v.horizon_days,
        "covers": v.covers(),
        "least_margin": least,
        "margin_to_notional": v.margin_rate,
        "failure": v.failure.as_ref().map(|f| json!({ "series": f.series, "reason": f.reason })),
    })
}

/// Every methodology's report as JSON.
pub fn side_by_side_json(header: &Header, rows: &[SideBySide], hashes: &[String]) -> String {
    let judged = verdicts(rows, VERDICT_HORIZON_DAYS);
    let least = least_margin(&judged);
    let values: Vec<Value> = rows
        .iter()
        .zip(hashes)
        .enumerate()
        .map(|(i, (row, hash))| match &row.outcome {
            Ok(r) => json!({
                "methodology": row.name,
                "hash": hash,
                "verdict": judged[i].as_ref().map(|v| verdict_value(v, least == Some(i))),
                "report": report_value(r),
            }),
            Err(e) => json!({ "methodology": row.name, "hash": hash, "error": e.to_string() }),
        })
        .collect();
    let least_name = least.map(|i| rows[i].name.clone());
    let value =
        json!({ "inputs": header.json, "methodologies": values, "least_margin": least_name });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// The six figure sets, in table order.
const SETS: [(Method, u32); 6] = [
    (Method::Historical, 1),
    (Method::Historical, 10),
    (Method::Filtered, 1),
    (Method::Filtered, 10),
    (Method::Stressed, 1),
    (Method::Stressed, 10),
];

fn measure_cell(m: Option<&Measure>, row: Option<usize>) -> String {
    let Some(m) = m else { return "– / –".to_owned() };
    let risk = row.map_or(m.book.risk, |r| m.accounts[r]);
    format!("{:.0} / {:.0}", risk.var, risk.es)
}

/// Capital metrics: VaR and ES per account and for the book, with Euler contributions.
pub fn capital(header: &Header, report: &CapitalReport, names: &[&str]) -> String {
    let mut out = header.text();
    let find = |(method, horizon): (Method, u32)| {
        report.measures.iter().find(|m| m.method == method && m.horizon_days == horizon)
    };
    let (var, es) = (report.levels.var, report.levels.es);
    let _ = writeln!(out, "\nas of {}: VaR {var:?} / ES {es:?}, USD", day(report.as_of));
    if let Some((first, last)) = report.stressed_window {
        let (first, last) = (day(first), day(last));
        let _ = writeln!(
            out,
            "stressed window (the 250 1-day scenarios of largest book ES): {first} to {last}"
        );
    }
    let counts: Vec<String> = SETS
        .iter()
        .map(|&(m, h)| format!("{} {h} d: {}", m.name(), find((m, h)).map_or(0, |m| m.scenarios)))
        .collect();
    let _ = writeln!(out, "scenarios: {}\n", counts.join(", "));
    let titles: Vec<String> =
        SETS.iter().map(|(m, h)| format!("{} {h} d VaR / ES", m.name())).collect();
    let mut columns = vec!["account"];
    columns.extend(titles.iter().map(String::as_str));
    columns.push("Euler share of HS 1-day ES");
    table_head(&mut out, &columns, 1);
    let hs = find((Method::Historical, 1));
    for (row, &a) in report.accounts.iter().enumerate() {
        let cells: Vec<String> = SETS.iter().map(|&s| measure_cell(find(s), Some(row))).collect();
        let euler =
            hs.map_or_else(|| "–".to_owned(), |m| format!("{:.0}", m.book.contributions[row]));
        let _ = writeln!(out, "| {} | {} | {euler} |", names[a], cells.join(" | "));
    }
    let cells: Vec<String> = SETS.iter().map(|&s| measure_cell(find(s), None)).collect();
    let total = hs.map_or(0.0, |m| m.book.contributions.iter().sum::<f64>());
    let _ = writeln!(out, "| book | {} | {total:.0} |", cells.join(" | "));
    for (a, why) in &report.excluded {
        let _ = writeln!(out, "excluded {}: {why}", names[*a]);
    }
    let _ = writeln!(out, "scenarios left out: {}", report.skipped.len());
    for (date, why) in report.skipped.iter().take(SKIPS_SHOWN_MAX) {
        let _ = writeln!(out, "  {}: {why}", day(*date));
    }
    out
}

/// Capital metrics as JSON.
pub fn capital_json(header: &Header, report: &CapitalReport, names: &[&str]) -> String {
    let measures: Vec<Value> = report
        .measures
        .iter()
        .map(|m| {
            let accounts: Vec<Value> = (report.accounts.iter().enumerate())
                .map(|(row, &a)| {
                    let (risk, euler) = (m.accounts[row], m.book.contributions[row]);
                    json!({
                        "account": names[a],
                        "var": risk.var,
                        "es": risk.es,
                        "euler_contribution_to_book_es": euler,
                    })
                })
                .collect();
            json!({
                "method": m.method.name(),
                "horizon_days": m.horizon_days,
                "scenarios": m.scenarios,
                "book": { "var": m.book.risk.var, "es": m.book.risk.es },
                "accounts": accounts,
            })
        })
        .collect();
    let excluded: Vec<Value> = report
        .excluded
        .iter()
        .map(|(a, why)| json!({ "account": names[*a], "reason": why }))
        .collect();
    let left_out: Vec<Value> =
        report.skipped.iter().map(|(d, why)| json!({ "date": day(*d), "reason": why })).collect();
    let value = json!({
        "inputs": header.json,
        "as_of": day(report.as_of),
        "var_basis_points": report.levels.var.basis_points(),
        "es_basis_points": report.levels.es.basis_points(),
        "stressed_window": report.stressed_window.map(|(a, b)| [day(a), day(b)]),
        "measures": measures,
        "excluded": excluded,
        "scenarios_left_out": left_out,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
