//! Instruments and their Deribit names.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use basics::{Currency, UnixNanos, month_abbrev, month_from_abbrev};

use crate::{Error, ErrorKind};

/// Hour of day (UTC) at which Deribit's dated contracts expire.
const EXPIRY_HOUR_UTC: u32 = 8;

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptionRight {
    /// The right to buy at the strike.
    Call,
    /// The right to sell at the strike.
    Put,
}

impl OptionRight {
    /// +1 for a call, −1 for a put: the sign of the payoff's slope in the underlying.
    #[must_use]
    pub fn sign(self) -> f64 {
        match self {
            OptionRight::Call => 1.0,
            OptionRight::Put => -1.0,
        }
    }
}

/// When an option may be exercised. Every Deribit option is European; American exercise exists
/// for the pricing library and its binomial pricer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exercise {
    /// Only at expiry.
    European,
    /// At any time up to expiry.
    American,
}

/// The currency a contract pays out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Settlement {
    /// Coin-settled: quoted in USD but paid in the underlying coin (Deribit's `BTC-...`).
    Inverse,
    /// Settled in the quote currency, e.g. USDC (Deribit's `BTC_USDC-...`).
    Linear,
}

/// The kind of contract and its kind-specific terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InstrumentKind {
    /// A perpetual swap.
    Perpetual,
    /// A dated future.
    Future {
        /// Expiry instant.
        expiry: UnixNanos,
    },
    /// A European option.
    Option {
        /// Expiry instant.
        expiry: UnixNanos,
        /// Strike in quote-currency units per unit of underlying; finite and positive.
        strike: f64,
        /// Call or put.
        right: OptionRight,
    },
}

/// A listed contract: terms only, no market data.
///
/// Position sizes use Deribit's amount units: USD notional for inverse futures and perpetuals,
/// units of the underlying for options and for linear contracts.
#[derive(Debug, Clone, Copy)]
pub struct Instrument {
    underlying: Currency,
    quote: Currency,
    settlement: Settlement,
    kind: InstrumentKind,
}

impl Instrument {
    /// Builds an instrument after checking its terms.
    ///
    /// # Errors
    /// `OutOfRange` when an option's strike is not finite and positive, or when a linear contract
    /// is quoted in its own underlying.
    pub fn new(
        underlying: Currency,
        quote: Currency,
        settlement: Settlement,
        kind: InstrumentKind,
    ) -> Result<Instrument, Error> {
        if let InstrumentKind::Option { strike, .. } = kind
            && !(strike.is_finite() && strike > 0.0)
        {
            let why = format!("strike must be finite and positive, got {strike}");
            return Err(Error::new("strike", ErrorKind::OutOfRange(why)));
        }
        if underlying == quote {
            let why = format!("quote currency {quote} equals the underlying");
            return Err(Error::new("quote", ErrorKind::OutOfRange(why)));
        }
        Ok(Instrument { underlying, quote, settlement, kind })
    }

    /// A coin-settled option quoted in USD, Deribit's `BTC-27DEC24-60000-C`.
    ///
    /// # Errors
    /// As [`Instrument::new`].
    pub fn inverse_option(
        underlying: Currency,
        expiry: UnixNanos,
        strike: f64,
        right: OptionRight,
    ) -> Result<Instrument, Error> {
        let kind = InstrumentKind::Option { expiry, strike, right };
        Instrument::new(underlying, Currency::USD, Settlement::Inverse, kind)
    }

    /// The underlying asset.
    #[must_use]
    pub fn underlying(&self) -> Currency {
        self.underlying
    }

    /// The quote currency of prices and strikes.
    #[must_use]
    pub fn quote(&self) -> Currency {
        self.quote
    }

    /// How the contract settles.
    #[must_use]
    pub fn settlement(&self) -> Settlement {
        self.settlement
    }

    /// The currency in which profit and loss is paid.
    #[must_use]
    pub fn settlement_currency(&self) -> Currency {
        match self.settlement {
            Settlement::Inverse => self.underlying,
            Settlement::Linear => self.quote,
        }
    }

    /// The currency an entry or trade price is written in: the quote currency of a future or
    /// perpetual (USD per coin for Deribit's inverse `BTC-PERPETUAL`), the settlement currency
    /// of an option (BTC per BTC option, Deribit's premium convention; USDC for linear ones).
    #[must_use]
    pub fn price_currency(&self) -> Currency {
        if self.is_option() { self.settlement_currency() } else { self.quote }
    }

    /// The kind-specific terms.
    #[must_use]
    pub fn kind(&self) -> InstrumentKind {
        self.kind
    }

    /// The expiry, or `None` for a perpetual.
    #[must_use]
    pub fn expiry(&self) -> Option<UnixNanos> {
        match self.kind {
            InstrumentKind::Perpetual => None,
            InstrumentKind::Future { expiry } | InstrumentKind::Option { expiry, .. } => {
                Some(expiry)
            }
        }
    }

    /// Whether the contract is a perpetual (the only one that pays funding).
    #[must_use]
    pub fn is_perpetual(&self) -> bool {
        matches!(self.kind, InstrumentKind::Perpetual)
    }

    /// Whether the contract is an option.
    #[must_use]
    pub fn is_option(&self) -> bool {
        matches!(self.kind, InstrumentKind::Option { .. })
    }

    /// Parses a Deribit instrument name.
    ///
    /// # Errors
    /// `InstrumentName` naming the part that does not follow the convention.
    pub fn parse(name: &str) -> Result<Instrument, Error> {
        parse_name(name).map_err(|why| Error::new(name, ErrorKind::InstrumentName(why)))
    }

    fn sort_key(&self) -> (Currency, Currency, Settlement, u8, i64, u64, u8) {
        // Strikes are finite and positive, so their bit patterns order like their values.
        match self.kind {
            InstrumentKind::Perpetual => (self.underlying, self.quote, self.settlement, 0, 0, 0, 0),
            InstrumentKind::Future { expiry } => {
                (self.underlying, self.quote, self.settlement, 1, expiry.0, 0, 0)
            }
            InstrumentKind::Option { expiry, strike, right } => {
                let r = u8::from(right == OptionRight::Put);
                (self.underlying, self.quote, self.settlement, 2, expiry.0, strike.to_bits(), r)
            }
        }
    }
}

impl PartialEq for Instrument {
    fn eq(&self, other: &Instrument) -> bool {
        self.sort_key() == other.sort_key()
    }
}

// Lawful: the only float field, the strike, is validated finite on construction.
impl Eq for Instrument {}

impl PartialOrd for Instrument {
    fn partial_cmp(&self, other: &Instrument) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Instrument {
    /// Orders by underlying, quote, settlement, then perpetual < future < option, then expiry,
    /// strike and right: the canonical order of positions in a portfolio.
    fn cmp(&self, other: &Instrument) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl std::hash::Hash for Instrument {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.sort_key().hash(state);
    }
}

impl FromStr for Instrument {
    type Err = Error;

    fn from_str(name: &str) -> Result<Instrument, Error> {
        Instrument::parse(name)
    }
}

impl fmt::Display for Instrument {
    /// Prints the Deribit name; the exact inverse of [`Instrument::parse`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.underlying.as_str())?;
        if self.settlement == Settlement::Linear {
            write!(f, "_{}", self.quote)?;
        }
        match self.kind {
            InstrumentKind::Perpetual => f.write_str("-PERPETUAL"),
            InstrumentKind::Future { expiry } => write!(f, "-{}", DateCode(expiry)),
            InstrumentKind::Option { expiry, strike, right } => {
                let letter = if right == OptionRight::Call { 'C' } else { 'P' };
                let strike_text = format!("{strike}").replace('.', "d");
                write!(f, "-{}-{strike_text}-{letter}", DateCode(expiry))
            }
        }
    }
}

/// Deribit's date code, e.g. `27DEC24` or `5JAN24` (no leading zero on the day).
struct DateCode(UnixNanos);

impl fmt::Display for DateCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.0.civil_date();
        write!(f, "{day}{}{:02}", month_abbrev(month), year.rem_euclid(100))
    }
}

fn parse_name(name: &str) -> Result<Instrument, String> {
    let mut parts = name.split('-');
    let pair = parts.next().unwrap_or_default();
    let (base_text, quote_text) = match pair.split_once('_') {
        Some((base, quote)) => (base, Some(quote)),
        None => (pair, None),
    };
    let underlying: Currency =
        base_text.parse().map_err(|_| format!("bad underlying {base_text:?}"))?;
    let (quote, settlement) = match quote_text {
        Some(text) => {
            (text.parse().map_err(|_| format!("bad quote {text:?}"))?, Settlement::Linear)
        }
        None => (Currency::USD, Settlement::Inverse),
    };
    let rest: Vec<&str> = parts.collect();
    let kind = match rest.as_slice() {
        ["PERPETUAL"] => InstrumentKind::Perpetual,
        [date] => InstrumentKind::Future { expiry: parse_date(date)? },
        [date, strike, right] => {
            let right = match *right {
                "C" => OptionRight::Call,
                "P" => OptionRight::Put,
                other => return Err(format!("option right must be C or P, got {other:?}")),
            };
            InstrumentKind::Option {
                expiry: parse_date(date)?,
                strike: parse_strike(strike)?,
                right,
            }
        }
        _ => return Err("expected UNDERLYING[_QUOTE]-(PERPETUAL|DATE|DATE-STRIKE-C|P)".into()),
    };
    Instrument::new(underlying, quote, settlement, kind).map_err(|e| e.kind.to_string())
}

fn parse_date(text: &str) -> Result<UnixNanos, String> {
    let bad = || format!("date must look like 27DEC24, got {text:?}");
    let day_len = text.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&day_len) || text.len() != day_len + 5 {
        return Err(bad());
    }
    let day: u32 = text[..day_len].parse().map_err(|_| bad())?;
    let month = month_from_abbrev(&text[day_len..day_len + 3]).ok_or_else(bad)?;
    let year_text = &text[day_len + 3..];
    if !year_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let year = 2000 + year_text.parse::<i32>().map_err(|_| bad())?;
    let expiry = UnixNanos::from_civil(year, month, day, EXPIRY_HOUR_UTC);
    // Reject impossible dates such as 31FEB24, which would silently roll into March.
    if expiry.civil_date() != (year, month, day) {
        return Err(format!("{text:?} is not a calendar date"));
    }
    Ok(expiry)
}

fn parse_strike(text: &str) -> Result<f64, String> {
    let bad = || format!("strike must be digits with an optional 'd' decimal, got {text:?}");
    let (whole, frac) = text.split_once('d').unwrap_or((text, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (text.contains('d') && !digits(frac)) {
        return Err(bad());
    }
    let strike: f64 = text.replace('d', ".").parse().map_err(|_| bad())?;
    // Only canonical spellings are accepted, so that printing gives back the same name.
    if format!("{strike}").replace('.', "d") != text {
        return Err(format!("strike {text:?} is not in canonical form"));
    }
    Ok(strike)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_deribit_names() {
        let call = Instrument::parse("BTC-27DEC24-60000-C").unwrap();
        assert_eq!(call.underlying(), Currency::BTC);
        assert_eq!(call.settlement(), Settlement::Inverse);
        assert_eq!(call.settlement_currency(), Currency::BTC);
        let InstrumentKind::Option { expiry, strike, right } = call.kind() else { panic!() };
        assert_eq!((strike, right), (60_000.0, OptionRight::Call));
        assert_eq!(expiry.secs(), 1_735_286_400);

        let perp = Instrument::parse("BTC-PERPETUAL").unwrap();
        assert_eq!(perp.kind(), InstrumentKind::Perpetual);
        let future = Instrument::parse("ETH-28JUN24").unwrap();
        assert_eq!(future.expiry(), Some(UnixNanos::from_civil(2024, 6, 28, 8)));

        let linear = Instrument::parse("XRP_USDC-5JAN24-0d625-P").unwrap();
        assert_eq!(linear.settlement(), Settlement::Linear);
        assert_eq!(linear.settlement_currency(), Currency::USDC);
        let InstrumentKind::Option { strike, .. } = linear.kind() else { panic!() };
        assert_eq!(strike, 0.625);
    }

    #[test]
    fn names_round_trip() {
        for name in [
            "BTC-27DEC24-60000-C",
            "ETH-5JAN24-2500-P",
            "BTC-PERPETUAL",
            "ETH-28JUN24",
            "SOL_USDC-PERPETUAL",
            "SOL_USDC-27DEC24-150-C",
            "XRP_USDC-5JAN24-0d625-P",
        ] {
            assert_eq!(Instrument::parse(name).unwrap().to_string(), name);
        }
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        for (name, why) in [
            ("BTC-27DEC24-60000-X", "option right"),
            ("BTC-31FEB24", "not a calendar date"),
            ("BTC-27DEX24", "date must look like"),
            ("BTC-27DEC24-60,000-C", "strike"),
            ("BTC-27DEC24-060000-C", "canonical"),
            ("BTC", "expected"),
            ("btc-perpetual-x-y-z", "expected"),
            ("B$C-PERPETUAL", "underlying"),
            ("BTC_BTC-PERPETUAL", "equals the underlying"),
        ] {
            let err = Instrument::parse(name).unwrap_err();
            assert!(err.to_string().contains(why), "{name}: {err}");
            assert_eq!(err.field, name);
        }
    }

    #[test]
    fn orders_canonically() {
        let names = ["BTC-27DEC24-60000-P", "BTC-27DEC24", "BTC-PERPETUAL", "BTC-27DEC24-50000-C"];
        let mut instruments: Vec<Instrument> =
            names.iter().map(|n| Instrument::parse(n).unwrap()).collect();
        instruments.sort();
        let sorted: Vec<String> = instruments.iter().map(ToString::to_string).collect();
        let expected =
            ["BTC-PERPETUAL", "BTC-27DEC24", "BTC-27DEC24-50000-C", "BTC-27DEC24-60000-P"];
        assert_eq!(sorted, expected);
    }
}
