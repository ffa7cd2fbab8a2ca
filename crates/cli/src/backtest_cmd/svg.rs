//! SVG charts of a backtest, written as plain text: the margin against the realised loss with
//! the exceedances marked, and the exceedances of every 250-day window against the Basel zones.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use backtest::coverage::{BASEL_WINDOW_OBSERVATIONS, ZoneBounds};
use backtest::run::{DayPoint, Report, SeriesReport};

use super::render::day;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 400.0;
const MARGIN_LEFT: f64 = 90.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 30.0;
const MARGIN_BOTTOM: f64 = 40.0;

/// Writes the charts of the book and of every account with a daily series into `dir`, named
/// `{methodology}-{account}-margin.svg` and `…-windows.svg`.
pub fn write_charts(dir: &Path, methodology: &str, report: &Report) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut series: Vec<(&SeriesReport, &[DayPoint])> = vec![(&report.book, &report.book_days)];
    series.extend(report.accounts.iter().zip(&report.account_days).map(|(s, d)| (s, d.as_slice())));
    for (s, days) in series {
        let stem = format!("{methodology}-{}", s.name.replace(['/', ' '], "-"));
        let title =
            format!("{methodology}, {}: initial margin and realised 1-day loss (USD)", s.name);
        write(dir, &format!("{stem}-margin.svg"), &margin_chart(&title, days))?;
        if let Some(windows) = windows_chart(methodology, s, days, report) {
            write(dir, &format!("{stem}-windows.svg"), &windows)?;
        }
    }
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Maps data to the plot area.
struct Frame {
    x_max: f64,
    y_min: f64,
    y_max: f64,
}

impl Frame {
    fn x(&self, i: f64) -> f64 {
        MARGIN_LEFT + (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) * i / self.x_max.max(1.0)
    }

    fn y(&self, v: f64) -> f64 {
        let span = (self.y_max - self.y_min).max(f64::MIN_POSITIVE);
        HEIGHT - MARGIN_BOTTOM - (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM) * (v - self.y_min) / span
    }
}

fn open(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(out, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN_LEFT}\" y=\"18\" font-size=\"13\">{}</text>",
        escape(title)
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Axes, five value ticks and a date label at the first day of each year.
fn axes(out: &mut String, frame: &Frame, dates: &[String]) {
    let (bottom, top) = (HEIGHT - MARGIN_BOTTOM, MARGIN_TOP);
    let right = WIDTH - MARGIN_RIGHT;
    let _ = writeln!(
        out,
        "<path d=\"M{MARGIN_LEFT} {top}V{bottom}H{right}\" stroke=\"black\" fill=\"none\"/>"
    );
    for k in 0..=4 {
        let v = frame.y_min + (frame.y_max - frame.y_min) * f64::from(k) / 4.0;
        let y = frame.y(v);
        let _ = writeln!(
            out,
            "<path d=\"M{MARGIN_LEFT} {y:.1}H{right}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text>",
            MARGIN_LEFT - 4.0,
            y + 4.0
        );
    }
    let mut year = "";
    for (i, date) in dates.iter().enumerate() {
        if date.get(..4) != Some(year) {
            year = date.get(..4).unwrap_or("");
            let x = frame.x(i as f64);
            let _ = writeln!(
                out,
                "<path d=\"M{x:.1} {bottom}v4\" stroke=\"black\"/>\
                 <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{year}</text>",
                bottom + 16.0
            );
        }
    }
}

fn polyline(
    out: &mut String,
    frame: &Frame,
    values: impl Iterator<Item = (usize, f64)>,
    style: &str,
) {
    let points: Vec<String> =
        values.map(|(i, v)| format!("{:.1},{:.1}", frame.x(i as f64), frame.y(v))).collect();
    if !points.is_empty() {
        let _ = writeln!(out, "<polyline points=\"{}\" fill=\"none\" {style}/>", points.join(" "));
    }
}

/// Initial and maintenance margin, the realised 1-day loss, and a red circle at each
/// exceedance of the initial margin.
fn margin_chart(title: &str, days: &[DayPoint]) -> String {
    let loss = |d: &DayPoint| d.losses.first().copied().flatten();
    let values = days
        .iter()
        .flat_map(|d| [d.initial_margin, d.maintenance_margin].into_iter().chain(loss(d)));
    let (y_min, y_max) = values.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let frame =
        Frame { x_max: days.len().saturating_sub(1) as f64, y_min, y_max: y_max.max(y_min + 1.0) };
    let mut out = String::new();
    open(&mut out, title);
    let dates: Vec<String> = days.iter().map(|d| day(d.date)).collect();
    axes(&mut out, &frame, &dates);
    polyline(
        &mut out,
        &frame,
        days.iter().enumerate().filter_map(|(i, d)| loss(d).map(|l| (i, l))),
        "stroke=\"#999\" stroke-width=\"0.7\"",
    );
    polyline(
        &mut out,
        &frame,
        days.iter().enumerate().map(|(i, d)| (i, d.maintenance_margin)),
        "stroke=\"#e69f00\" stroke-dasharray=\"4 3\"",
    );
    polyline(
        &mut out,
        &frame,
        days.iter().enumerate().map(|(i, d)| (i, d.initial_margin)),
        "stroke=\"#0072b2\" stroke-width=\"1.5\"",
    );
    for (i, d) in days.iter().enumerate() {
        if let Some(l) = loss(d).filter(|l| *l > d.initial_margin) {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"none\" stroke=\"#d55e00\" \
                 stroke-width=\"1.5\"><title>{}: loss {l:.0} &gt; IM {:.0}</title></circle>",
                frame.x(i as f64),
                frame.y(l),
                day(d.date),
                d.initial_margin
            );
        }
    }
    let legend = "<text x=\"{x}\" y=\"{y}\" fill=\"{c}\">{t}</text>";
    for (k, (color, text)) in [
        ("#0072b2", "initial margin"),
        ("#e69f00", "maintenance margin"),
        ("#999", "realised 1-day loss"),
        ("#d55e00", "exceedance"),
    ]
    .iter()
    .enumerate()
    {
        let line = legend
            .replace("{x}", &format!("{}", WIDTH - 170.0))
            .replace("{y}", &format!("{}", MARGIN_TOP + 14.0 * (k as f64 + 1.0)))
            .replace("{c}", color)
            .replace("{t}", text);
        let _ = writeln!(out, "{line}");
    }
    out.push_str("</svg>\n");
    out
}

/// Exceedances of the initial margin in each 250-day window (1-day horizon) over the green,
/// yellow and red bands; `None` without window zones.
fn windows_chart(
    methodology: &str,
    series: &SeriesReport,
    days: &[DayPoint],
    report: &Report,
) -> Option<String> {
    let coverage = series.horizons.first()?.initial.as_ref()?;
    if coverage.zones.is_empty() {
        return None;
    }
    let bounds = ZoneBounds::new(BASEL_WINDOW_OBSERVATIONS, report.confidence).ok()?;
    let observed: Vec<String> = days
        .iter()
        .filter(|d| d.losses.first().copied().flatten().is_some())
        .map(|d| day(d.date))
        .collect();
    let peak =
        coverage.zones.iter().map(|z| z.exceedances).max().unwrap_or(0).max(bounds.red_from + 1);
    let frame =
        Frame { x_max: observed.len().saturating_sub(1) as f64, y_min: 0.0, y_max: peak as f64 };
    let mut out = String::new();
    let title =
        format!("{methodology}, {}: exceedances per 250-day window (window start)", series.name);
    open(&mut out, &title);
    let right = WIDTH - MARGIN_RIGHT;
    for (from, to, color) in [
        (0.0, bounds.yellow_from as f64, "#e5f5e0"),
        (bounds.yellow_from as f64, bounds.red_from as f64, "#fff7bc"),
        (bounds.red_from as f64, peak as f64, "#fee0d2"),
    ] {
        let (y0, y1) = (frame.y(from), frame.y(to));
        let _ = writeln!(
            out,
            "<rect x=\"{MARGIN_LEFT}\" y=\"{y1:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
             fill=\"{color}\"/>",
            right - MARGIN_LEFT,
            y0 - y1
        );
    }
    axes(&mut out, &frame, &observed);
    polyline(
        &mut out,
        &frame,
        coverage.zones.iter().map(|z| (z.start, z.exceedances as f64)),
        "stroke=\"black\" stroke-width=\"1.2\"",
    );
    out.push_str("</svg>\n");
    Some(out)
}
