//! Per-account statistics kept while a backtest runs: a bit per observation, the excess of each
//! exceedance, the procyclicality tally and the margin-to-notional sums.

use crate::confidence::Confidence;
use crate::coverage::{
    BASEL_WINDOW_OBSERVATIONS, Coverage, WindowZone, Zone, coverage_of_flags, window_zones_of_flags,
};
use crate::error::Error;
use crate::procyclicality;

/// Exceedance flags, a bit each, in time order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags {
    words: Vec<u64>,
    len: usize,
}

impl Flags {
    fn push(&mut self, flag: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        if flag {
            let last = self.words.len() - 1;
            self.words[last] |= 1 << (self.len % 64);
        }
        self.len += 1;
    }

    fn to_vec(&self) -> Vec<bool> {
        (0..self.len).map(|i| self.words[i / 64] >> (i % 64) & 1 == 1).collect()
    }
}

/// One requirement's observations over one horizon.
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    flags: Flags,
    excesses: Vec<f64>,
}

impl Series {
    pub(crate) fn push(&mut self, requirement: f64, loss: f64) {
        let exceeded = loss > requirement;
        self.flags.push(exceeded);
        if exceeded {
            self.excesses.push(loss - requirement);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.flags.len
    }

    /// The coverage statistics and window zones, `None` without observations; the zones of every
    /// window only when `keep_windows`.
    pub(crate) fn finish(
        &self,
        confidence: Confidence,
        keep_windows: bool,
    ) -> Result<Option<CoverageReport>, Error> {
        if self.flags.len == 0 {
            return Ok(None);
        }
        let flags = self.flags.to_vec();
        let coverage = coverage_of_flags(&flags, &self.excesses, confidence)?;
        let zones = if flags.len() >= BASEL_WINDOW_OBSERVATIONS {
            window_zones_of_flags(&flags, confidence, BASEL_WINDOW_OBSERVATIONS)?
        } else {
            Vec::new()
        };
        let windows = WindowSummary::of(&zones);
        let zones = if keep_windows { zones } else { Vec::new() };
        Ok(Some(CoverageReport { coverage, windows, zones }))
    }
}

/// The coverage of one requirement over one horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageReport {
    /// Exceedances, Kupiec, Christoffersen, the zone of the whole series, magnitudes.
    pub coverage: Coverage,
    /// The Basel zones of the 250-observation windows, counted.
    pub windows: WindowSummary,
    /// Each window's zone (one per start), kept for the book and for small books' accounts.
    pub zones: Vec<WindowZone>,
}

/// How many 250-observation windows fell in each zone, and the worst of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowSummary {
    /// Windows (0 when the series is shorter than one).
    pub windows: usize,
    /// Green windows.
    pub green: usize,
    /// Yellow windows.
    pub yellow: usize,
    /// Red windows.
    pub red: usize,
    /// The first window with the most exceedances.
    pub worst: Option<WindowZone>,
}

impl WindowSummary {
    fn of(zones: &[WindowZone]) -> WindowSummary {
        let count = |zone| zones.iter().filter(|w| w.zone == zone).count();
        let worst =
            zones.iter().copied().reduce(|a, b| if b.exceedances > a.exceedances { b } else { a });
        WindowSummary {
            windows: zones.len(),
            green: count(Zone::Green),
            yellow: count(Zone::Yellow),
            red: count(Zone::Red),
            worst,
        }
    }
}

/// Everything kept for one account (or the book).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    /// Per horizon: initial margin, then maintenance margin.
    pub(crate) horizons: Vec<(Series, Series)>,
    /// Observations that could not be formed, per horizon.
    pub(crate) skipped: Vec<usize>,
    pub(crate) procyclicality: procyclicality::Tally,
    pub(crate) rate_procyclicality: procyclicality::Tally,
    pub(crate) ratio_sum: f64,
    pub(crate) ratio_days: usize,
    pub(crate) days_valued: usize,
    pub(crate) first_refusal: Option<String>,
}

impl Tally {
    pub(crate) fn new(horizons: usize) -> Tally {
        Tally {
            horizons: vec![(Series::default(), Series::default()); horizons],
            skipped: vec![0; horizons],
            rate_procyclicality: procyclicality::Tally::new(procyclicality::Ranking::Absolute),
            ..Tally::default()
        }
    }

    pub(crate) fn refused(&mut self, why: &str) {
        if self.first_refusal.is_none() {
            self.first_refusal = Some(why.to_owned());
        }
    }
}
