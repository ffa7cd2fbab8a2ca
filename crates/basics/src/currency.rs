use std::fmt;
use std::str::FromStr;

use crate::{Error, ErrorKind};

/// An asset code such as `BTC`, `ETH`, `USD` or `USDC`.
///
/// Stored inline (at most [`Currency::LEN_MAX`] upper-case ASCII letters or digits) so that it is
/// `Copy` and orders the same way on every machine. The code is validated once, on construction.
/// Aligned to 8 bytes (16 in all): copies are then two whole words, where an 11-byte value was
/// copied as overlapping pieces that a read soon after could not take from the store buffer
/// (a stall the margin refresh met once per balance and unit).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(C, align(8))]
pub struct Currency {
    bytes: [u8; Currency::LEN_MAX],
    len: u8,
}

impl Currency {
    /// The longest accepted code, in bytes.
    pub const LEN_MAX: usize = 10;

    /// US dollar, the reporting currency of cross-margin accounts.
    pub const USD: Currency = Currency::from_static("USD");
    /// USD Coin, the settlement currency of Deribit's linear contracts.
    pub const USDC: Currency = Currency::from_static("USDC");
    /// Bitcoin.
    pub const BTC: Currency = Currency::from_static("BTC");
    /// Ether.
    pub const ETH: Currency = Currency::from_static("ETH");

    /// Builds a currency from a code known at compile time.
    ///
    /// # Panics
    /// At compile time (in a `const`) when the code is empty, too long or not upper-case
    /// alphanumeric ASCII.
    #[must_use]
    pub const fn from_static(code: &'static str) -> Currency {
        match Currency::from_bytes(code.as_bytes()) {
            Some(currency) => currency,
            None => panic!("Invariant: a static currency code is 1..=10 upper-case alphanumerics"),
        }
    }

    const fn from_bytes(code: &[u8]) -> Option<Currency> {
        if code.is_empty() || code.len() > Currency::LEN_MAX {
            return None;
        }
        let mut bytes = [0u8; Currency::LEN_MAX];
        let mut i = 0;
        while i < code.len() {
            let b = code[i];
            if !(b.is_ascii_uppercase() || b.is_ascii_digit()) {
                return None;
            }
            bytes[i] = b;
            i += 1;
        }
        Some(Currency { bytes, len: code.len() as u8 })
    }

    /// The code as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // The constructor admits only ASCII, so the slice is always valid UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }

    /// Whether the currency is a US-dollar stable coin or the dollar itself, i.e. a currency whose
    /// value is not shocked with any crypto underlying.
    #[must_use]
    pub fn is_usd_like(&self) -> bool {
        matches!(self.as_str(), "USD" | "USDC" | "USDT" | "DAI" | "USDE" | "PYUSD")
    }
}

impl FromStr for Currency {
    type Err = Error;

    fn from_str(text: &str) -> Result<Currency, Error> {
        let upper = text.trim().to_ascii_uppercase();
        Currency::from_bytes(upper.as_bytes()).ok_or_else(|| {
            Error::new(
                "currency",
                ErrorKind::Syntax(format!(
                    "1 to {} ASCII letters or digits, got {text:?}",
                    Currency::LEN_MAX
                )),
            )
        })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let btc: Currency = "btc".parse().unwrap();
        assert_eq!(btc, Currency::BTC);
        assert_eq!(btc.to_string(), "BTC");
        assert!("".parse::<Currency>().is_err());
        assert!("BT-C".parse::<Currency>().is_err());
        assert!("ABCDEFGHIJK".parse::<Currency>().is_err());
        assert!(Currency::USDC.is_usd_like());
        assert!(!Currency::ETH.is_usd_like());
    }

    #[test]
    fn orders_by_code() {
        let mut codes = [Currency::USDC, Currency::BTC, Currency::ETH, Currency::USD];
        codes.sort();
        let text: Vec<_> = codes.iter().map(Currency::as_str).collect();
        assert_eq!(text, ["BTC", "ETH", "USD", "USDC"]);
    }
}
