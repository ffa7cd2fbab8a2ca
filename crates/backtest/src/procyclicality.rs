//! Procyclicality of a margin series: how much and how fast requirements rose.
//!
//! EMIR (RTS 153/2013, Article 28) asks a clearing house to limit procyclicality and to monitor
//! it; the measures here are the usual ones: per calendar year the ratio of the highest
//! requirement to the lowest (peak to trough), and the largest rises over one day and over 30
//! days, each relative to the requirement it rose from. A rise is measured between two valued
//! days exactly that far apart; a missing day is not bridged.
//!
//! [`Tally`] takes the series one day at a time and keeps only each year's extremes and the last
//! 31 days, so ten thousand accounts over seven years cost a few megabytes.

use basics::{NANOS_PER_DAY, UnixNanos};

/// The longest span a rise is measured over, in days.
pub const RISE_DAYS_LONG: i64 = 30;

/// One calendar year's extremes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YearRange {
    /// The year (UTC).
    pub year: i32,
    /// The highest requirement.
    pub peak: f64,
    /// The lowest requirement.
    pub trough: f64,
}

impl YearRange {
    /// `peak / trough`, or `None` for a trough of zero.
    #[must_use]
    pub fn peak_to_trough(&self) -> Option<f64> {
        (self.trough > 0.0).then(|| self.peak / self.trough)
    }
}

/// A rise of the requirement between two days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rise {
    /// The day it rose from.
    pub from: UnixNanos,
    /// The day it rose to.
    pub to: UnixNanos,
    /// `to / from − 1`.
    pub relative: f64,
    /// `to − from`.
    pub absolute: f64,
}

/// Every procyclicality measure of a series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Procyclicality {
    /// Each calendar year with a valued day.
    pub years: Vec<YearRange>,
    /// The largest rise over one day (by the tally's [`Ranking`]).
    pub one_day: Option<Rise>,
    /// The largest rise over [`RISE_DAYS_LONG`] days.
    pub thirty_day: Option<Rise>,
}

impl Procyclicality {
    /// The largest peak-to-trough ratio of any year.
    #[must_use]
    pub fn worst_year(&self) -> Option<f64> {
        self.years.iter().filter_map(YearRange::peak_to_trough).reduce(f64::max)
    }
}

/// Which rise is the largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ranking {
    /// The largest `to / from − 1`: for requirements in money.
    #[default]
    Relative,
    /// The largest `to − from`: for a margin rate, whose relative rise from a near-zero rate
    /// (an option far out of the money) says nothing.
    Absolute,
}

/// Slots of the ring of recent days: one more than the longest rise, so the day that far back
/// is still there.
const RECENT_SLOTS: usize = RISE_DAYS_LONG as usize + 1;

/// The measures of a series taken one day at a time, in date order.
///
/// Everything lives inline (the current year, a ring of the last 31 days by day number), so ten
/// thousand tallies pushed once a day each touch their own few cache lines and nothing else.
#[derive(Debug, Clone)]
pub struct Tally {
    ranking: Ranking,
    years: Vec<YearRange>,
    /// The first day (days since 1970) of the year after the last one pushed.
    next_year_day: i64,
    /// `(day, requirement)` of recent days at `day % RECENT_SLOTS`; `i64::MIN` marks an empty
    /// slot.
    recent: [(i64, f64); RECENT_SLOTS],
    last_day: i64,
    one_day: Option<Rise>,
    thirty_day: Option<Rise>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new(Ranking::Relative)
    }
}

impl Tally {
    /// An empty tally whose largest rises are ranked by `ranking`.
    #[must_use]
    pub fn new(ranking: Ranking) -> Tally {
        Tally {
            ranking,
            years: Vec::new(),
            next_year_day: i64::MIN,
            recent: [(i64::MIN, 0.0); RECENT_SLOTS],
            last_day: i64::MIN,
            one_day: None,
            thirty_day: None,
        }
    }

    /// Adds the requirement of `date` (later than every date before, by whole days; a
    /// requirement that is not finite is ignored).
    pub fn push(&mut self, date: UnixNanos, requirement: f64) {
        if !requirement.is_finite() {
            return;
        }
        let day = date.0.div_euclid(NANOS_PER_DAY);
        debug_assert!(day > self.last_day, "Invariant: a procyclicality series is in date order");
        self.last_day = day;
        if day >= self.next_year_day || self.years.is_empty() {
            let year = date.civil_date().0;
            self.next_year_day = basics::days_from_civil(year + 1, 1, 1);
            self.years.push(YearRange { year, peak: requirement, trough: requirement });
        }
        if let Some(range) = self.years.last_mut() {
            range.peak = range.peak.max(requirement);
            range.trough = range.trough.min(requirement);
        }
        let back = |tally: &Tally, days: i64| {
            let (d, value) = tally.recent[(day - days).rem_euclid(RECENT_SLOTS as i64) as usize];
            (d == day - days).then(|| (UnixNanos(d * NANOS_PER_DAY), value))
        };
        let (one, long) = (back(self, 1), back(self, RISE_DAYS_LONG));
        self.one_day = self.larger(self.one_day, one, date, requirement);
        self.thirty_day = self.larger(self.thirty_day, long, date, requirement);
        self.recent[day.rem_euclid(RECENT_SLOTS as i64) as usize] = (day, requirement);
    }

    /// The larger of `kept` and the rise from `back` to `(date, requirement)`.
    fn larger(
        &self,
        kept: Option<Rise>,
        back: Option<(UnixNanos, f64)>,
        date: UnixNanos,
        requirement: f64,
    ) -> Option<Rise> {
        let Some((from, base)) = back.filter(|(_, base)| *base > 0.0) else { return kept };
        let rise = Rise {
            from,
            to: date,
            relative: requirement / base - 1.0,
            absolute: requirement - base,
        };
        let larger = match self.ranking {
            Ranking::Relative => kept.is_none_or(|r| rise.relative > r.relative),
            Ranking::Absolute => kept.is_none_or(|r| rise.absolute > r.absolute),
        };
        if larger { Some(rise) } else { kept }
    }

    /// The measures of the days pushed.
    #[must_use]
    pub fn finish(&self) -> Procyclicality {
        Procyclicality {
            years: self.years.clone(),
            one_day: self.one_day,
            thirty_day: self.thirty_day,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> UnixNanos {
        UnixNanos(n * NANOS_PER_DAY)
    }

    /// A series with a known answer: 100 on days 0–9, 150 on days 10–39, 120 after. The largest
    /// one-day rise is day 9 to day 10 (+50 %), the first largest 30-day rise day 0 to day 30.
    #[test]
    fn rises_and_ranges_are_the_hand_computed_ones() {
        let mut tally = Tally::default();
        for n in 0..60 {
            let value = match n {
                0..=9 => 100.0,
                10..=39 => 150.0,
                _ => 120.0,
            };
            tally.push(day(n), value);
        }
        let p = tally.finish();
        let one = p.one_day.unwrap_or_else(|| panic!("a rise"));
        assert_eq!((one.from, one.to, one.relative, one.absolute), (day(9), day(10), 0.5, 50.0));
        let thirty = p.thirty_day.unwrap_or_else(|| panic!("a rise"));
        assert_eq!(thirty.relative, 0.5);
        assert_eq!(thirty.from, day(0));
        assert_eq!(p.years.len(), 1);
        assert_eq!(p.worst_year(), Some(1.5));
    }

    /// Ranked by absolute rise, a margin rate's rise from 0.1 % to 1 % is smaller than one from
    /// 10 % to 12 %; ranked by relative rise it is larger.
    #[test]
    fn rates_rank_by_points() {
        let mut points = Tally::new(Ranking::Absolute);
        let mut ratio = Tally::new(Ranking::Relative);
        for (n, v) in [(0, 0.001), (1, 0.01), (10, 0.10), (11, 0.12)] {
            points.push(day(n), v);
            ratio.push(day(n), v);
        }
        assert_eq!(points.finish().one_day.map(|r| r.to), Some(day(11)));
        assert_eq!(ratio.finish().one_day.map(|r| r.to), Some(day(1)));
    }

    /// A missing day is not bridged: two days apart is neither a one-day nor a 30-day rise.
    #[test]
    fn gaps_are_not_bridged() {
        let mut tally = Tally::default();
        tally.push(day(0), 100.0);
        tally.push(day(2), 200.0);
        assert_eq!(tally.finish().one_day, None);
    }
}
