//! Helpers shared by the backtest's integration tests.

#![allow(dead_code, reason = "each test file uses a part")]

use std::fmt::Write as _;

use backtest::history::{Gaps, History, Interval, Policy, ReadConfig, read_csv};
use backtest::replay::SurfaceModel;
use basics::{NANOS_PER_DAY, UnixNanos, civil_from_days};
use formats::bundled::bundled;
use formats::methodology::Profile;
use methodology::Methodology;

/// The bundled surface file.
pub const SURFACE: &str = include_str!("../../../../examples/replay/surface.toml");

/// The shared price files, never copied into the repository.
pub const HISTORY_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/history");

pub fn model() -> SurfaceModel {
    SurfaceModel::from_toml(SURFACE).unwrap()
}

pub fn methodology(name: &str) -> Methodology {
    let Profile::Portfolio(m) = bundled(name).unwrap() else { panic!("{name} is a portfolio") };
    *m
}

/// A daily history from 2019-01-01 with the given closes (open = close, a 1 % range around it).
pub fn history(closes: &[f64]) -> History {
    let mut text = String::from("date,open,high,low,close,volume\n");
    let start = basics::days_from_civil(2019, 1, 1);
    for (i, close) in closes.iter().enumerate() {
        let (y, m, d) = civil_from_days(start + i as i64);
        let (high, low) = (close * 1.01, close * 0.99);
        let _ = writeln!(text, "{y:04}-{m:02}-{d:02},{close},{high},{low},{close},1");
    }
    let config = ReadConfig { interval: Interval::Day, rows: Policy::Skip, gaps: Gaps::Report };
    read_csv(&text, config).unwrap()
}

/// The bar time of day `i` of [`history`].
pub fn day(i: i64) -> UnixNanos {
    UnixNanos((basics::days_from_civil(2019, 1, 1) + i) * NANOS_PER_DAY)
}

/// A real price file, or `None` outside CI when it is absent (skipped loudly); under CI a
/// missing file fails the test.
pub fn real(name: &str) -> Option<History> {
    let path = std::path::Path::new(HISTORY_DIR).join(name);
    let there = path.exists();
    assert!(there || std::env::var_os("CI").is_none(), "{} is absent under CI", path.display());
    if !there {
        eprintln!("SKIPPED: {} is absent (it is required under CI)", path.display());
        return None;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let config = ReadConfig { interval: Interval::Day, rows: Policy::Skip, gaps: Gaps::Report };
    Some(read_csv(&text, config).unwrap())
}
