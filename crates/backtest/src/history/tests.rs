use super::*;

const HEADER: &str = "date,open,high,low,close,volume";

const SKIP_DAILY: ReadConfig =
    ReadConfig { interval: Interval::Day, rows: Policy::Skip, gaps: Gaps::Report };
const STRICT_DAILY: ReadConfig =
    ReadConfig { interval: Interval::Day, rows: Policy::Refuse, gaps: Gaps::Refuse };
const STRICT_HOURLY: ReadConfig =
    ReadConfig { interval: Interval::Hour, rows: Policy::Refuse, gaps: Gaps::Refuse };

/// A file of `shared/history/` (the README there gives its provenance and its dirty rows).
fn shared(name: &str) -> String {
    let path = format!("{}/../../../shared/history/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn day(year: i32, month: u32, day: u32) -> UnixNanos {
    UnixNanos::from_civil(year, month, day, 0)
}

/// Gaps that the file itself has (some interval with no row at all), as (date after, absent).
fn file_gaps(history: &History) -> Vec<((i32, u32, u32), u64)> {
    let gaps = history.report().gaps.iter().filter(|gap| gap.missing > gap.skipped);
    gaps.map(|gap| (gap.before.civil_date(), gap.missing - gap.skipped)).collect()
}

fn skipped_dates(history: &History, keep: impl Fn(Problem) -> bool) -> Vec<(i32, u32, u32)> {
    let skipped = history.report().skipped.iter().filter(|skip| keep(skip.problem));
    skipped.map(|skip| skip.time.civil_date()).collect()
}

/// The BTC daily file: 2,751 bars from 2013-04-23 to 2020-12-07, two all-zero bars (2016-09-05,
/// 2016-10-01) and 12 gaps, and the 12 March 2020 close of 4,841.67, all as the README states.
#[test]
fn btc_daily_has_the_dirty_rows_the_readme_names() {
    let history = read_csv(&shared("btc-usd-daily.csv"), SKIP_DAILY).unwrap();
    let report = history.report();
    assert_eq!(history.bars().len() + report.skipped.len(), 2_751);
    assert_eq!(history.bars()[0].time, day(2013, 4, 23));
    assert_eq!(history.bars().last().unwrap().time, day(2020, 12, 7));
    let zero = |problem| problem == Problem::NonPositivePrice(Price::Open);
    assert_eq!(skipped_dates(&history, zero), [(2016, 9, 5), (2016, 10, 1)]);
    assert_eq!(report.skipped.len(), 2);
    assert_eq!(report.skipped[0].line, 1_200);
    // The README's count; the dates and lengths are the file's, read by eye with `sed -n`.
    let gaps = file_gaps(&history);
    assert_eq!(gaps.len(), 12);
    assert_eq!(gaps[0], ((2014, 2, 26), 21));
    assert_eq!(gaps[11], ((2017, 4, 29), 2));
    assert_eq!(gaps.iter().map(|(_, absent)| absent).sum::<u64>(), 35);
    // Each zero bar dropped leaves a one-day hole, listed as a gap made only by skipping.
    let made = report.gaps.iter().filter(|gap| gap.missing == gap.skipped);
    let made: Vec<_> = made.map(|gap| (gap.before.civil_date(), gap.missing)).collect();
    assert_eq!(made, [((2016, 9, 6), 1), ((2016, 10, 2), 1)]);
    assert_eq!(history.bar_at(day(2020, 3, 12)).unwrap().close, 4_841.67);
    assert_eq!(history.bar_at(day(2016, 9, 5)), None);
}

/// The ETH daily file: 1,664 rows, the two all-zero bars of the README, and its "7 gaps", which
/// are the 7 steps between consecutive rows that are not one day: 2 real gaps (5 days absent)
/// and 5 repeated dates (2018-04-05 to 2018-04-09, each listed twice with different closes).
/// Five early rows also have an open or close outside their own range, which the README does
/// not mention.
#[test]
fn eth_daily_has_the_dirty_rows_the_readme_names() {
    let history = read_csv(&shared("eth-usd-daily.csv"), SKIP_DAILY).unwrap();
    let report = history.report();
    assert_eq!(history.bars().len() + report.skipped.len(), 1_664);
    let zero = |problem| problem == Problem::NonPositivePrice(Price::Open);
    assert_eq!(skipped_dates(&history, zero), [(2016, 9, 5), (2016, 10, 1)]);
    // 2016-05-20 and 2016-05-23 are dropped (open above the high), so the kept series jumps from
    // 05-19 to 05-24: four days missing, two of them skipped rows, two (05-21, 05-22) absent.
    assert_eq!(file_gaps(&history), [((2016, 5, 24), 2), ((2017, 4, 18), 3)]);
    assert_eq!((report.gaps[0].missing, report.gaps[0].skipped), (4, 2));
    let repeated = |problem| matches!(problem, Problem::Duplicate { .. });
    let repeats = skipped_dates(&history, repeated);
    assert_eq!(repeats, [(2018, 4, 5), (2018, 4, 6), (2018, 4, 7), (2018, 4, 8), (2018, 4, 9)]);
    assert_eq!(file_gaps(&history).len() + repeats.len(), 7);
    let first = report.skipped.iter().find(|skip| repeated(skip.problem)).unwrap();
    assert_eq!((first.line, first.problem), (684, Problem::Duplicate { first_line: 683 }));
    let outside = |p| matches!(p, Problem::OpenOutsideRange | Problem::CloseOutsideRange);
    assert_eq!(skipped_dates(&history, outside).len(), 5);
    assert_eq!(report.skipped.len(), 12);
    assert!(report.to_string().contains("line 3 (2016-05-20T00:00:00Z): skipped: open is outside"));
}

/// The hourly file is clean: 20,111 bars from 2017-07-01T11 to 2019-10-17T09 (README), read
/// under both refusing policies.
#[test]
fn btc_hourly_is_clean() {
    let history = read_csv(&shared("btc-usd-hourly.csv"), STRICT_HOURLY).unwrap();
    assert_eq!(history.bars().len(), 20_111);
    assert_eq!(history.bars()[0].time, UnixNanos::from_civil(2017, 7, 1, 11));
    assert_eq!(history.bars().last().unwrap().time, UnixNanos::from_civil(2019, 10, 17, 9));
    assert_eq!(*history.report(), Report::default());
}

/// Refusing bad rows stops at the first zero bar (line 1,200); refusing gaps as well stops at
/// the first gap (21 days before 2014-02-26, line 290); ETH's first bad row is its third line.
#[test]
fn refuse_names_the_first_problem_and_its_line() {
    let btc = shared("btc-usd-daily.csv");
    let rows_only = ReadConfig { gaps: Gaps::Report, ..STRICT_DAILY };
    let error = read_csv(&btc, rows_only).unwrap_err();
    let zero = ErrorKind::Bar(Problem::NonPositivePrice(Price::Open));
    assert_eq!(error, Error::new("open", Some(Location::Line(1_200)), zero));
    assert_eq!(error.to_string(), "line 1200, open: open price is not positive");
    let error = read_csv(&btc, STRICT_DAILY).unwrap_err();
    let gap = ErrorKind::Bar(Problem::Gap { missing: 21 });
    assert_eq!(error, Error::new("time", Some(Location::Line(290)), gap));
    let error = read_csv(&shared("eth-usd-daily.csv"), rows_only).unwrap_err();
    assert_eq!((error.at, error.kind), (Some(Location::Line(3)), bar(Problem::OpenOutsideRange)));
}

fn bar(problem: Problem) -> ErrorKind {
    ErrorKind::Bar(problem)
}

/// One dirty row after a clean one: `Refuse` names line 3 and the problem, `Skip` drops the row
/// and lists it, keeping the clean bars around it.
#[track_caller]
fn check(bad_row: &str, expect: Problem) {
    let text = format!("{HEADER}\n2020-01-01,10,12,9,11,5\n{bad_row}\n2020-01-03,11,12,10,11,5\n");
    let error = read_csv(&text, ReadConfig { gaps: Gaps::Report, ..STRICT_DAILY }).unwrap_err();
    assert_eq!(error, Error::new(expect.column(), Some(Location::Line(3)), bar(expect)));
    let history = read_csv(&text, SKIP_DAILY).unwrap();
    let time = parse_row(3, bad_row).unwrap().time;
    assert_eq!(history.report().skipped, [Skipped { line: 3, time, problem: expect }]);
    assert_eq!(history.bars().len(), 2);
}

#[test]
fn each_dirty_kind_is_named() {
    check("2020-01-02,0,0,0,0,0", Problem::NonPositivePrice(Price::Open));
    check("2020-01-02,10,12,9,-1,5", Problem::NonPositivePrice(Price::Close));
    check("2020-01-02,10,9,12,11,5", Problem::HighBelowLow);
    check("2020-01-02,13,12,9,11,5", Problem::OpenOutsideRange);
    check("2020-01-02,10,12,9,8.5,5", Problem::CloseOutsideRange);
    check("2020-01-02,10,12,9,11,-5", Problem::NegativeVolume);
    check("2020-01-01,10,12,9,11,5", Problem::Duplicate { first_line: 2 });
    check("2019-12-31,10,12,9,11,5", Problem::Unordered { previous_line: 2 });
    check("2020-01-02T12:00:00Z,10,12,9,11,5", Problem::OffGrid);
}

/// A gap is refused by `Gaps::Refuse`, and listed by `Gaps::Report` with how much of it the file
/// has no row for; a dropped bar inside a gap counts as skipped, not absent.
#[test]
fn gaps_are_refused_or_listed() {
    let text = format!("{HEADER}\n2020-01-01,10,12,9,11,5\n2020-01-04,10,12,9,11,5\n");
    let error = read_csv(&text, STRICT_DAILY).unwrap_err();
    assert_eq!(error.kind, bar(Problem::Gap { missing: 2 }));
    let history = read_csv(&text, SKIP_DAILY).unwrap();
    let (after, before) = (day(2020, 1, 1), day(2020, 1, 4));
    let gap = Gap { line: 3, after, before, missing: 2, skipped: 0 };
    assert_eq!(history.report().gaps, [gap]);
    let text = "time,open,high,low,close,volume\n2020-01-01T00,1,1,1,1,0\n\
                2020-01-01T01,0,0,0,0,0\n2020-01-01T01,0,0,0,0,0\n2020-01-01T03,1,1,1,1,0\n";
    let skip_hourly = ReadConfig { rows: Policy::Skip, gaps: Gaps::Report, ..STRICT_HOURLY };
    let history = read_csv(text, skip_hourly).unwrap();
    let gaps = &history.report().gaps;
    assert_eq!((gaps.len(), gaps[0].missing, gaps[0].skipped), (1, 2, 1));
    let printed = history.report().to_string();
    assert_eq!(printed.lines().count(), 3, "{printed}");
    assert!(printed.ends_with("(1 of them skipped)\n"), "{printed}");
}

/// Every accepted time form names the same instant; RFC 3339 offsets are applied.
#[test]
fn time_forms() {
    let eleven = Some(UnixNanos::from_civil(2017, 7, 1, 11));
    for text in [
        "2017-07-01T11",
        "2017-07-01T11:00:00Z",
        "2017-07-01t11:00:00z",
        "2017-07-01 11:00:00.000000000Z",
        "2017-07-01T12:00:00+01:00",
        "2017-07-01T06:30:00-04:30",
    ] {
        assert_eq!(time::parse_time(text), eleven, "{text}");
    }
    assert_eq!(time::parse_time("2017-07-01"), Some(day(2017, 7, 1)));
    let half = UnixNanos(UnixNanos::from_civil(2017, 7, 1, 11).0 + 500_000_000);
    assert_eq!(time::parse_time("2017-07-01T11:00:00.5Z"), Some(half));
    assert_eq!(time::parse_time("1969-12-31"), Some(UnixNanos(-basics::NANOS_PER_DAY)));
    for text in [
        "2019-02-29",
        "2020-13-01",
        "2020-01-01T24",
        "2020-01-01T10:60:00Z",
        "2020-01-01T10:00:60Z",
        "2020-01-01T10:00:00",
        "2020-01-01T10:00:00.Z",
        "2020-01-01T10:00:00.1234567890Z",
        "2020-01-01T10:00:00+0100",
        "2020-1-01",
        "20200101",
        "+020-01-01",
    ] {
        assert_eq!(time::parse_time(text), None, "{text}");
    }
}

/// Lines that are not the shape of a price file are refused under every policy.
#[test]
fn malformed_text_is_refused_under_every_policy() {
    let syntax = |text: &str| read_csv(text, SKIP_DAILY).unwrap_err();
    let error = syntax("date,open,high,low,close\n");
    assert_eq!((error.field, error.at), ("header", Some(Location::Line(1))));
    assert_eq!(syntax("").field, "header");
    let error = syntax(&format!("{HEADER}\n2020-01-01,1,1,1,1\n"));
    assert_eq!((error.field, error.at), ("row", Some(Location::Line(2))));
    let error = syntax(&format!("{HEADER}\n\n2020-01-01,1,1,x,1,1\n"));
    assert_eq!((error.field, error.at), ("low", Some(Location::Line(3))));
    let error = syntax(&format!("{HEADER}\n2020-01-01,1,NaN,1,1,1\n"));
    assert_eq!((error.field, error.kind), ("high", ErrorKind::NotFinite));
    let error = syntax(&format!("{HEADER}\n2020-01-01,1,1,1,1,inf\n"));
    assert_eq!((error.field, error.kind), ("volume", ErrorKind::NotFinite));
    let error = syntax(&format!("{HEADER}\n2020-02-30,1,1,1,1,1\n"));
    assert_eq!(error.field, "time");
    assert!(error.to_string().starts_with("line 2, time: expected a time as YYYY-MM-DD"));
}

/// A byte-order mark, CRLF line ends and a header naming the first column `time` are accepted.
#[test]
fn byte_order_mark_and_crlf() {
    let text = "\u{feff}time,open,high,low,close,volume\r\n2020-01-01,1,2,1,2,3\r\n";
    let history = read_csv(text, STRICT_DAILY).unwrap();
    let expect =
        Bar { time: day(2020, 1, 1), open: 1.0, high: 2.0, low: 1.0, close: 2.0, volume: 3.0 };
    assert_eq!(history.bars(), [expect]);
}

/// More than `BARS_MAX` rows are refused at the first row beyond the limit.
#[test]
fn rows_beyond_the_limit_are_refused() {
    let mut text = String::from(HEADER);
    text.push('\n');
    for _ in 0..=BARS_MAX {
        text.push_str("2020-01-01,1,1,1,1,1\n");
    }
    let error = read_csv(&text, SKIP_DAILY).unwrap_err();
    let kind = ErrorKind::Limit { limit: "BARS_MAX", max: BARS_MAX };
    assert_eq!(error, Error::new("bars", Some(Location::Line(BARS_MAX + 2)), kind));
}

/// A window's edge is a real date and nothing else; the header says the interval.
#[test]
fn window_days_and_intervals_are_read_strictly() {
    assert_eq!(parse_day("2020-03-12"), Some(UnixNanos::from_civil(2020, 3, 12, 0)));
    for bad in ["2019-02-29", "2020-3-12", "2020-03-12T00", "2020-03-12 ", "", "12/03/2020"] {
        assert_eq!(parse_day(bad), None, "{bad:?}");
    }
    assert_eq!(interval_of("time,open,high,low,close,volume\n"), Interval::Hour);
    assert_eq!(interval_of("date,open,high,low,close,volume\n"), Interval::Day);
    assert_eq!(interval_of(""), Interval::Day);
}
