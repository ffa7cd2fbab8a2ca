//! Time as integer nanoseconds since the Unix epoch, and the ACT/365 year fraction.
//!
//! Every pricer in Ballast measures time to expiry as `(expiry_ns - valuation_ns) / NANOS_PER_YEAR`
//! with a 365-day year, the convention of Deribit and of Derive's on-chain maths. Keeping time as
//! an integer until that one division means two nodes with the same inputs compute the same year
//! fraction bit for bit.

use std::fmt;

/// Nanoseconds in one day.
pub const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;
/// Nanoseconds in one ACT/365 year.
pub const NANOS_PER_YEAR: i64 = 365 * NANOS_PER_DAY;
/// Days in the ACT/365 year, for daily volatilities and day counts in days.
pub const DAYS_PER_YEAR: f64 = 365.0;

/// An instant, as nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixNanos(pub i64);

impl UnixNanos {
    /// Builds an instant from whole seconds since the epoch.
    #[must_use]
    pub const fn from_secs(secs: i64) -> UnixNanos {
        UnixNanos(secs * 1_000_000_000)
    }

    /// Builds an instant from milliseconds since the epoch (Deribit's timestamps).
    #[must_use]
    pub const fn from_millis(millis: i64) -> UnixNanos {
        UnixNanos(millis * 1_000_000)
    }

    /// Builds the instant at `hour`:00 UTC on a civil date.
    #[must_use]
    pub fn from_civil(year: i32, month: u32, day: u32, hour: u32) -> UnixNanos {
        let days = days_from_civil(year, month, day);
        UnixNanos(days * NANOS_PER_DAY + i64::from(hour) * 3_600 * 1_000_000_000)
    }

    /// The civil date (year, month, day) in UTC.
    #[must_use]
    pub fn civil_date(self) -> (i32, u32, u32) {
        civil_from_days(self.0.div_euclid(NANOS_PER_DAY))
    }

    /// Whole seconds since the epoch, rounded towards negative infinity.
    #[must_use]
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }
}

impl fmt::Debug for UnixNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.civil_date();
        let in_day = self.0.rem_euclid(NANOS_PER_DAY);
        let secs = in_day / 1_000_000_000;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        )
    }
}

/// The ACT/365 year fraction from `from` to `to` (negative when `to` is earlier).
#[must_use]
pub fn year_fraction(from: UnixNanos, to: UnixNanos) -> f64 {
    (to.0 - from.0) as f64 / NANOS_PER_YEAR as f64
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
#[must_use]
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
#[must_use]
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

const MONTHS: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

/// The month number (1..=12) of an upper-case English abbreviation such as `DEC`.
#[must_use]
pub fn month_from_abbrev(text: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == text).map(|i| i as u32 + 1)
}

/// The upper-case English abbreviation of a month number (1..=12).
#[must_use]
pub fn month_abbrev(month: u32) -> &'static str {
    assert!((1..=12).contains(&month), "Invariant: a month number is in 1..=12");
    MONTHS[month as usize - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for days in (-200_000..200_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        // 2024-12-27T08:00:00Z, the expiry of BTC-27DEC24, is 1735286400 seconds.
        assert_eq!(UnixNanos::from_civil(2024, 12, 27, 8).secs(), 1_735_286_400);
        assert_eq!(format!("{:?}", UnixNanos::from_secs(1_735_286_400)), "2024-12-27T08:00:00Z");
        // Derive's REF_TIME 1630000000 is 2021-08-26T17:46:40Z.
        assert_eq!(format!("{:?}", UnixNanos::from_secs(1_630_000_000)), "2021-08-26T17:46:40Z");
    }

    #[test]
    fn year_fraction_is_act_365() {
        let t0 = UnixNanos::from_civil(2024, 1, 1, 0);
        let t1 = UnixNanos::from_civil(2025, 1, 1, 0);
        // 2024 is a leap year: 366 days are 366/365 ACT/365 years.
        assert_eq!(year_fraction(t0, t1), 366.0 / 365.0);
        assert_eq!(year_fraction(t1, t0), -366.0 / 365.0);
    }
}
