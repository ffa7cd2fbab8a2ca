//! Price history: OHLCV bars read from CSV text, validated, with every dirty row accounted for.
//!
//! Real feeds are dirty: the bundled daily files carry all-zero bars, missing days, bars whose
//! open lies above their high, and repeated dates. A backtest that read a zero as a price would
//! report a −100 % day; one that ignored a missing day would call a two-day move a one-day move.
//! So every row either becomes a [`Bar`] that passed every check, or is refused
//! ([`Policy::Refuse`]: the first problem is an [`Error`] naming its line and kind), or is
//! dropped and listed ([`Policy::Skip`]: the [`Report`] names its line and kind). Gaps between
//! the bars kept are refused or listed by their own choice, [`Gaps`]: a daily series with a
//! known exchange outage may be usable where a bad bar never is.
//!
//! The text is `date,open,high,low,close,volume` (the first column may be named `time`), one
//! bar per line, oldest first, UTC. Lines that are not six fields, and numbers or times that do
//! not parse, are refused under both policies: they mean the file is not the shape this reader
//! knows, not that the feed had a bad bar. Blank lines are ignored; a byte-order mark and CRLF
//! line ends are accepted.

mod time;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::fmt;

use basics::UnixNanos;

use crate::error::{Error, ErrorKind, Location};
use crate::limits::BARS_MAX;

/// Nanoseconds in one hour.
const NANOS_PER_HOUR: i64 = 3_600 * 1_000_000_000;
/// The value columns after the time, in file order.
const VALUE_COLUMNS: [&str; 5] = ["open", "high", "low", "close", "volume"];

/// The spacing of a bar series: the grid every bar's time must lie on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// One bar per UTC day, stamped at midnight.
    Day,
    /// One bar per hour, stamped on the whole hour.
    Hour,
}

impl Interval {
    /// The interval's length in nanoseconds.
    #[must_use]
    pub fn nanos(self) -> i64 {
        match self {
            Interval::Day => basics::NANOS_PER_DAY,
            Interval::Hour => NANOS_PER_HOUR,
        }
    }
}

/// What to do with a row that is not a valid bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The first bad row is an error naming its line and its [`Problem`].
    Refuse,
    /// Bad rows are dropped and each is listed in the [`Report`]. Of two rows with the same
    /// time the first is kept: which is right cannot be told from the file, and the report names
    /// both lines.
    Skip,
}

/// What to do when consecutive kept bars are more than one interval apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gaps {
    /// The first gap is an error naming the line of the bar after it.
    Refuse,
    /// Gaps are kept and each is listed in the [`Report`].
    Report,
}

/// How to read a price file; there is no default, so every caller states the grid and both
/// policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadConfig {
    /// The grid the bars lie on.
    pub interval: Interval,
    /// Bad rows.
    pub rows: Policy,
    /// Missing bars.
    pub gaps: Gaps,
}

/// One validated bar: prices positive and finite, `low ≤ open, close ≤ high`, volume at least 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// The start of the bar, on the interval's grid.
    pub time: UnixNanos,
    /// The first price.
    pub open: f64,
    /// The highest price.
    pub high: f64,
    /// The lowest price.
    pub low: f64,
    /// The last price.
    pub close: f64,
    /// Volume in units of the base asset (coins).
    pub volume: f64,
}

/// Which price of a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Price {
    /// The first price.
    Open,
    /// The highest price.
    High,
    /// The lowest price.
    Low,
    /// The last price.
    Close,
}

/// What is wrong with a row, or with the time between two kept bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A price is zero or negative (an all-zero bar reports its open).
    NonPositivePrice(Price),
    /// The high is below the low.
    HighBelowLow,
    /// The open is outside `[low, high]`.
    OpenOutsideRange,
    /// The close is outside `[low, high]`.
    CloseOutsideRange,
    /// The volume is negative.
    NegativeVolume,
    /// The time is not on the interval's grid (midnight UTC for days, the whole hour for hours).
    OffGrid,
    /// The time equals that of the bar kept from an earlier line.
    Duplicate {
        /// The line of the bar kept.
        first_line: usize,
    },
    /// The time is before that of the last bar kept.
    Unordered {
        /// The line of the last bar kept.
        previous_line: usize,
    },
    /// Bars are missing between the last bar kept and this one.
    Gap {
        /// How many intervals are missing.
        missing: u64,
    },
}

impl Problem {
    /// The column the problem is about, as the file names it.
    #[must_use]
    pub fn column(self) -> &'static str {
        match self {
            Problem::NonPositivePrice(Price::Open) | Problem::OpenOutsideRange => "open",
            Problem::NonPositivePrice(Price::High) | Problem::HighBelowLow => "high",
            Problem::NonPositivePrice(Price::Low) => "low",
            Problem::NonPositivePrice(Price::Close) | Problem::CloseOutsideRange => "close",
            Problem::NegativeVolume => "volume",
            Problem::OffGrid
            | Problem::Duplicate { .. }
            | Problem::Unordered { .. }
            | Problem::Gap { .. } => "time",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NonPositivePrice(_) => write!(f, "{} price is not positive", self.column()),
            Problem::HighBelowLow => f.write_str("high is below low"),
            Problem::OpenOutsideRange => f.write_str("open is outside [low, high]"),
            Problem::CloseOutsideRange => f.write_str("close is outside [low, high]"),
            Problem::NegativeVolume => f.write_str("volume is negative"),
            Problem::OffGrid => f.write_str("time is not on the bar grid"),
            Problem::Duplicate { first_line } => {
                write!(f, "time repeats the bar of line {first_line}")
            }
            Problem::Unordered { previous_line } => {
                write!(f, "time is before the bar of line {previous_line}")
            }
            Problem::Gap { missing } => write!(f, "{missing} bars missing before this one"),
        }
    }
}

/// A row dropped by [`Policy::Skip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// Its line (1-based, the header being line 1).
    pub line: usize,
    /// Its time as written.
    pub time: UnixNanos,
    /// Why it was dropped.
    pub problem: Problem,
}

/// Consecutive kept bars more than one interval apart, listed by [`Gaps::Report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The line of the bar after the gap.
    pub line: usize,
    /// The time of the bar before the gap.
    pub after: UnixNanos,
    /// The time of the bar after the gap.
    pub before: UnixNanos,
    /// Intervals missing from the kept series between the two.
    pub missing: u64,
    /// How many of those the file had a row for that was skipped; `missing − skipped` intervals
    /// have no row in the file at all.
    pub skipped: u64,
}

/// Every row dropped and every gap kept, in file order, for the caller to print or check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The rows dropped.
    pub skipped: Vec<Skipped>,
    /// The gaps between kept bars.
    pub gaps: Vec<Gap>,
}

/// A validated bar series: strictly ascending times on one grid, and the report of what was
/// dropped or missing on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    interval: Interval,
    bars: Vec<Bar>,
    report: Report,
}

impl History {
    /// The grid of the bars.
    #[must_use]
    pub fn interval(&self) -> Interval {
        self.interval
    }

    /// The bars, oldest first, times strictly ascending.
    #[must_use]
    pub fn bars(&self) -> &[Bar] {
        &self.bars
    }

    /// What was dropped and what is missing.
    #[must_use]
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The bar stamped `time`, if one was kept.
    #[must_use]
    pub fn bar_at(&self, time: UnixNanos) -> Option<&Bar> {
        let index = self.bars.binary_search_by_key(&time, |bar| bar.time).ok()?;
        Some(&self.bars[index])
    }
}

/// The interval a price file's text is on: hourly when its header names the first column
/// `time`, daily otherwise (the shapes of the bundled files).
#[must_use]
pub fn interval_of(text: &str) -> Interval {
    if text.lines().next().is_some_and(|header| header.trim_start().starts_with("time")) {
        Interval::Hour
    } else {
        Interval::Day
    }
}

/// The UTC date of `at` as `YYYY-MM-DD`, the form [`parse_day`] reads.
#[must_use]
pub fn format_day(at: UnixNanos) -> String {
    let (y, m, d) = at.civil_date();
    format!("{y:04}-{m:02}-{d:02}")
}

/// Midnight UTC of a date `YYYY-MM-DD` (a window's edge), `None` for anything else or for a
/// date that does not exist (2019-02-29).
#[must_use]
pub fn parse_day(text: &str) -> Option<UnixNanos> {
    (text.len() == 10).then(|| time::parse_time(text)).flatten()
}

/// Reads and validates a price file's text.
///
/// # Errors
///
/// A header that is not `date|time,open,high,low,close,volume`; a line that is not six fields
/// or holds a number or time that does not parse; more than [`BARS_MAX`] rows; and, under
/// [`Policy::Refuse`] or [`Gaps::Refuse`], the first bad row or gap, as [`ErrorKind::Bar`].
pub fn read_csv(text: &str, config: ReadConfig) -> Result<History, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate().map(|(index, line)| (index + 1, line));
    let header = lines.next().map_or("", |(_, line)| line);
    check_header(header)?;
    let mut reader = Reader::new(config);
    let mut rows = 0_usize;
    for (line, row) in lines {
        if row.trim().is_empty() {
            continue;
        }
        rows += 1;
        if rows > BARS_MAX {
            let kind = ErrorKind::Limit { limit: "BARS_MAX", max: BARS_MAX };
            return Err(Error::new("bars", Some(Location::Line(line)), kind));
        }
        let bar = parse_row(line, row)?;
        reader.take(line, bar)?;
    }
    let Reader { bars, report, .. } = reader;
    assert!(
        bars.windows(2).all(|pair| pair[0].time < pair[1].time),
        "Invariant: kept bars are strictly ascending in time"
    );
    Ok(History { interval: config.interval, bars, report })
}

fn check_header(header: &str) -> Result<(), Error> {
    let mut fields = header.split(',').map(str::trim);
    let first = fields.next().unwrap_or("");
    let rest: Vec<&str> = fields.collect();
    if (first == "date" || first == "time") && rest == VALUE_COLUMNS {
        return Ok(());
    }
    let expected = "the header date,open,high,low,close,volume (or time,open,…)";
    Err(Error::new("header", Some(Location::Line(1)), ErrorKind::Syntax(expected.to_owned())))
}

fn parse_row(line: usize, row: &str) -> Result<Bar, Error> {
    let at = Some(Location::Line(line));
    let fields: Vec<&str> = row.split(',').map(str::trim).collect();
    let Some((time, values)) = fields.split_first() else {
        panic!("Invariant: splitting a line yields at least one field")
    };
    if values.len() != VALUE_COLUMNS.len() {
        let kind = ErrorKind::Syntax("six comma-separated fields".to_owned());
        return Err(Error::new("row", at, kind));
    }
    let time = time::parse_time(time)
        .ok_or_else(|| Error::new("time", at, ErrorKind::Syntax(time::TIME_FORMS.to_owned())))?;
    let mut numbers = [0.0; 5];
    for ((number, text), column) in numbers.iter_mut().zip(values).zip(VALUE_COLUMNS) {
        let value: f64 = text.parse().map_err(|_| {
            Error::new(column, at, ErrorKind::Syntax("a decimal number".to_owned()))
        })?;
        if !value.is_finite() {
            return Err(Error::new(column, at, ErrorKind::NotFinite));
        }
        *number = value;
    }
    let [open, high, low, close, volume] = numbers;
    Ok(Bar { time, open, high, low, close, volume })
}

/// The first problem of a bar's own values, checked in column order.
fn content_problem(bar: &Bar) -> Option<Problem> {
    let prices = [
        (bar.open, Price::Open),
        (bar.high, Price::High),
        (bar.low, Price::Low),
        (bar.close, Price::Close),
    ];
    if let Some((_, price)) = prices.into_iter().find(|(value, _)| *value <= 0.0) {
        return Some(Problem::NonPositivePrice(price));
    }
    let range = bar.low..=bar.high;
    if bar.high < bar.low {
        Some(Problem::HighBelowLow)
    } else if !range.contains(&bar.open) {
        Some(Problem::OpenOutsideRange)
    } else if !range.contains(&bar.close) {
        Some(Problem::CloseOutsideRange)
    } else if bar.volume < 0.0 {
        Some(Problem::NegativeVolume)
    } else {
        None
    }
}

/// The series being built: the bars kept, the report, and what a gap needs to know.
struct Reader {
    config: ReadConfig,
    bars: Vec<Bar>,
    report: Report,
    /// The line of the last bar kept.
    last_line: usize,
    /// Times of rows dropped for their values since the last bar kept, to tell a gap the file
    /// has from one the skipping made.
    dropped_nanos: Vec<i64>,
}

impl Reader {
    fn new(config: ReadConfig) -> Reader {
        Reader {
            config,
            bars: Vec::new(),
            report: Report::default(),
            last_line: 0,
            dropped_nanos: Vec::new(),
        }
    }

    /// Keeps, drops or refuses one parsed row.
    fn take(&mut self, line: usize, bar: Bar) -> Result<(), Error> {
        let content = content_problem(&bar);
        if let Some(problem) = content.or_else(|| self.time_problem(&bar)) {
            if self.config.rows == Policy::Refuse {
                return Err(refusal(line, problem));
            }
            if content.is_some() {
                self.dropped_nanos.push(bar.time.0);
            }
            self.report.skipped.push(Skipped { line, time: bar.time, problem });
            return Ok(());
        }
        if let Some(gap) = self.gap_before(line, &bar) {
            if self.config.gaps == Gaps::Refuse {
                return Err(refusal(line, Problem::Gap { missing: gap.missing }));
            }
            self.report.gaps.push(gap);
        }
        self.bars.push(bar);
        self.last_line = line;
        self.dropped_nanos.clear();
        Ok(())
    }

    /// Whether the time is off the grid or not after the last bar kept.
    fn time_problem(&self, bar: &Bar) -> Option<Problem> {
        if bar.time.0.rem_euclid(self.config.interval.nanos()) != 0 {
            return Some(Problem::OffGrid);
        }
        let last = self.bars.last()?;
        match bar.time.cmp(&last.time) {
            Ordering::Equal => Some(Problem::Duplicate { first_line: self.last_line }),
            Ordering::Less => Some(Problem::Unordered { previous_line: self.last_line }),
            Ordering::Greater => None,
        }
    }

    /// The gap between the last bar kept and `bar` (on the grid and later), if there is one.
    fn gap_before(&mut self, line: usize, bar: &Bar) -> Option<Gap> {
        let last = self.bars.last()?;
        let step_nanos = self.config.interval.nanos();
        let steps = (bar.time.0 - last.time.0) / step_nanos;
        assert!(steps >= 1, "Invariant: a kept bar is at least one interval after the last");
        if steps == 1 {
            return None;
        }
        let (after, before) = (last.time.0, bar.time.0);
        self.dropped_nanos
            .retain(|&nanos| after < nanos && nanos < before && nanos.rem_euclid(step_nanos) == 0);
        self.dropped_nanos.sort_unstable();
        self.dropped_nanos.dedup();
        let missing = (steps - 1) as u64;
        let skipped = self.dropped_nanos.len() as u64;
        assert!(skipped <= missing, "Invariant: skipped rows lie inside the gap");
        Some(Gap { line, after: last.time, before: bar.time, missing, skipped })
    }
}

fn refusal(line: usize, problem: Problem) -> Error {
    Error::new(problem.column(), Some(Location::Line(line)), ErrorKind::Bar(problem))
}

impl fmt::Display for Report {
    /// One line per skipped row and per gap, in file order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut skips, mut gaps) = (self.skipped.iter().peekable(), self.gaps.iter().peekable());
        loop {
            let skip_first = match (skips.peek(), gaps.peek()) {
                (None, None) => return Ok(()),
                (Some(skip), Some(gap)) => skip.line < gap.line,
                (skip, _) => skip.is_some(),
            };
            if skip_first {
                let Some(skip) = skips.next() else { panic!("Invariant: peeked a skip") };
                writeln!(f, "line {} ({:?}): skipped: {}", skip.line, skip.time, skip.problem)?;
            } else {
                let Some(gap) = gaps.next() else { panic!("Invariant: peeked a gap") };
                writeln!(
                    f,
                    "line {}: {} intervals missing between {:?} and {:?} ({} of them skipped)",
                    gap.line, gap.missing, gap.after, gap.before, gap.skipped
                )?;
            }
        }
    }
}
