//! Bar times: `YYYY-MM-DD`, `YYYY-MM-DDTHH`, and RFC 3339 date-times.

use basics::{UnixNanos, civil_from_days, days_from_civil};

/// Nanoseconds in one second.
const NANOS_PER_SECOND: i64 = 1_000_000_000;
/// Digits of a fraction of a second that nanoseconds can hold.
const FRACTION_DIGITS_MAX: usize = 9;

/// What a time column accepts, for error messages.
pub(crate) const TIME_FORMS: &str =
    "a time as YYYY-MM-DD, YYYY-MM-DDTHH or RFC 3339 (YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM))";

/// The instant a time field names, or `None` when it is none of the accepted forms.
///
/// A date alone is midnight UTC and `YYYY-MM-DDTHH` is that hour UTC (the forms the bundled
/// daily and hourly files use); an RFC 3339 time carries its own offset. The separator may be
/// `T`, `t` or a space and the zone `Z` or `z`, as RFC 3339 allows. Leap seconds (`:60`) are
/// refused: no bar grid has one.
pub(crate) fn parse_time(text: &str) -> Option<UnixNanos> {
    let bytes = text.as_bytes();
    let days = parse_date(bytes.get(..10)?)?;
    let rest = &bytes[10..];
    let day_nanos = days.checked_mul(basics::NANOS_PER_DAY)?;
    let Some((&separator, clock)) = rest.split_first() else {
        return Some(UnixNanos(day_nanos));
    };
    if !matches!(separator, b'T' | b't' | b' ') {
        return None;
    }
    let hour = digits(clock.get(..2)?)?;
    if hour > 23 {
        return None;
    }
    let hour_nanos = hour * 3_600 * NANOS_PER_SECOND;
    if clock.len() == 2 {
        return day_nanos.checked_add(hour_nanos).map(UnixNanos);
    }
    let in_day = parse_clock(&clock[2..])?;
    day_nanos.checked_add(hour_nanos)?.checked_add(in_day).map(UnixNanos)
}

/// Days since 1970-01-01 of `YYYY-MM-DD`, refusing dates that do not exist (2019-02-29).
fn parse_date(bytes: &[u8]) -> Option<i64> {
    if bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(&bytes[..4])?).ok()?;
    let month = u32::try_from(digits(&bytes[5..7])?).ok()?;
    let day = u32::try_from(digits(&bytes[8..10])?).ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    (civil_from_days(days) == (year, month, day)).then_some(days)
}

/// Nanoseconds after the hour of `:MM:SS[.fraction]` followed by `Z` or `±HH:MM`, the offset
/// already subtracted (so the result may be negative or past the hour).
fn parse_clock(bytes: &[u8]) -> Option<i64> {
    if bytes.len() < 7 || bytes[0] != b':' || bytes[3] != b':' {
        return None;
    }
    let minute = digits(&bytes[1..3])?;
    let second = digits(&bytes[4..6])?;
    if minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &bytes[6..];
    let mut fraction_nanos = 0;
    if let Some(after_point) = rest.strip_prefix(b".") {
        let count = after_point.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 || count > FRACTION_DIGITS_MAX {
            return None;
        }
        let scale = 10_i64.pow((FRACTION_DIGITS_MAX - count) as u32);
        fraction_nanos = digits(&after_point[..count])? * scale;
        rest = &after_point[count..];
    }
    let offset_secs = parse_offset(rest)?;
    Some((minute * 60 + second - offset_secs) * NANOS_PER_SECOND + fraction_nanos)
}

/// Seconds east of UTC of `Z`, `z` or `±HH:MM`.
fn parse_offset(bytes: &[u8]) -> Option<i64> {
    match bytes {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let secs = hours * 3_600 + minutes * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

/// The value of a run of ASCII digits, or `None` for anything else (signs included).
fn digits(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0, |acc, b| acc * 10 + i64::from(b - b'0')))
}
