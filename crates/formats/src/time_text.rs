//! Instants as text: RFC 3339 timestamps and Deribit expiry codes.

use basics::UnixNanos;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Error;

/// Hour (UTC) of Deribit expiries.
const DERIBIT_EXPIRY_HOUR_UTC: u32 = 8;

/// Parses an RFC 3339 timestamp such as `2024-11-20T08:00:00Z` or `...+01:00`.
///
/// # Errors
/// `Invalid` at `location` with the parser's reason.
pub fn parse_rfc3339(text: &str, location: &str) -> Result<UnixNanos, Error> {
    let instant = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        Error::invalid(location, format!("not an RFC 3339 timestamp ({e}): {text:?}"))
    })?;
    let nanos = i64::try_from(instant.unix_timestamp_nanos())
        .map_err(|_| Error::invalid(location, format!("timestamp out of range: {text:?}")))?;
    Ok(UnixNanos(nanos))
}

/// Formats an instant as RFC 3339 in UTC (`Z`), with as many fractional digits as needed.
#[must_use]
pub fn format_rfc3339(instant: UnixNanos) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(instant.0))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{instant:?}"))
}

/// Parses an expiry given either as a Deribit date code (`27DEC24`, 08:00 UTC) or as an
/// RFC 3339 timestamp.
///
/// # Errors
/// `Invalid` at `location` when neither form parses.
pub fn parse_expiry(text: &str, location: &str) -> Result<UnixNanos, Error> {
    if text.contains('T') {
        return parse_rfc3339(text, location);
    }
    // Reuse the instrument-name parser for the date code: `X-27DEC24` is a future expiring then.
    let future = product::Instrument::parse(&format!("X-{text}")).map_err(|_| {
        Error::invalid(
            location,
            format!("expected a date code like 27DEC24 or RFC 3339, got {text:?}"),
        )
    })?;
    let expiry = future.expiry().ok_or_else(|| Error::invalid(location, "not a dated expiry"))?;
    debug_assert_eq!(
        expiry.0.rem_euclid(basics::NANOS_PER_DAY) / 3_600_000_000_000,
        i64::from(DERIBIT_EXPIRY_HOUR_UTC)
    );
    Ok(expiry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let code = parse_expiry("27DEC24", "x").unwrap();
        let stamp = parse_expiry("2024-12-27T08:00:00Z", "x").unwrap();
        assert_eq!(code, stamp);
        assert_eq!(parse_rfc3339("2024-12-27T09:00:00+01:00", "x").unwrap(), stamp);
        assert_eq!(format_rfc3339(stamp), "2024-12-27T08:00:00Z");
        let err = parse_expiry("27-12-2024", "smiles[0].expiry").unwrap_err();
        assert_eq!(err.location, "smiles[0].expiry");
    }
}
