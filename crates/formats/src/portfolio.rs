//! Portfolios and multi-account books.
//!
//! ```json
//! {
//!   "positions": [ { "instrument": "BTC-27DEC24-100000-C", "size": -1.5 },
//!                  { "instrument": "BTC-PERPETUAL", "size": 20000, "entry": 64250.5 } ],
//!   "balances": { "BTC": "2.5", "USDC": 10000 }
//! }
//! ```
//!
//! A position's optional `entry` is the price its P&L counts from (the average entry price, or
//! the mark of its last settlement), in its price unit: a future or perpetual with one carries
//! its unrealised P&L into equity; without one it is taken as settled at the current mark. A
//! perpetual's optional `funding` is the venue's cumulative funding index up to which its
//! funding is paid: the funding accrued since, at the market's `funding_index`, counts in equity.
//!
//! Balances may be JSON numbers or decimal strings; strings are converted exactly, numbers from
//! their exact binary value, both rounded down to 1e-18 (collateral rounds down). A book of
//! accounts is `{ "accounts": [ { "id": "alice", "positions": [...], "balances": {...} } ] }`.

use std::collections::BTreeMap;

use basics::{Currency, Money, Rounding};
use product::{Instrument, Portfolio, Position};
use serde::{Deserialize, Serialize};

use crate::Error;

/// A portfolio document.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PortfolioDocument {
    /// Positions by instrument name.
    #[serde(default)]
    pub positions: Vec<PositionDocument>,
    /// Currency balances.
    #[serde(default)]
    pub balances: BTreeMap<String, AmountText>,
}

/// One position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// The margin report has a `PositionDocument` of its own; the API document names this one apart.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = PortfolioPosition))]
#[serde(deny_unknown_fields)]
pub struct PositionDocument {
    /// Deribit instrument name.
    pub instrument: String,
    /// Signed size in the instrument's amount units.
    pub size: f64,
    /// The price its P&L counts from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<f64>,
    /// A perpetual's funding index up to which its funding is paid, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<f64>,
}

/// An amount written as a JSON number or as a decimal string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum AmountText {
    /// Exact decimal text.
    Text(String),
    /// A JSON number.
    Number(f64),
}

impl AmountText {
    /// The amount in `currency`, rounded down to 1e-18.
    ///
    /// # Errors
    /// `Invalid` at `location` for text that is not a decimal or an out-of-range number.
    pub fn to_money(&self, currency: Currency, location: &str) -> Result<Money, Error> {
        let parsed = match self {
            AmountText::Text(text) => Money::parse(text, currency, Rounding::Down),
            AmountText::Number(value) => Money::from_f64(*value, currency, Rounding::Down),
        };
        parsed.map_err(|e| Error::invalid(location, e.kind.to_string()))
    }
}

impl PortfolioDocument {
    /// Parses the JSON text of a portfolio.
    ///
    /// # Errors
    /// `Syntax` for malformed JSON or unknown fields.
    pub fn from_json(text: &str) -> Result<PortfolioDocument, Error> {
        crate::from_json(text)
    }

    /// Validates the document into a canonical portfolio.
    ///
    /// # Errors
    /// The first bad instrument name, size or balance, by its path (`positions[2].size`).
    pub fn to_portfolio(&self) -> Result<Portfolio, Error> {
        let mut positions = Vec::with_capacity(self.positions.len());
        for (i, p) in self.positions.iter().enumerate() {
            let instrument = Instrument::parse(&p.instrument)
                .map_err(|e| Error::invalid(format!("positions[{i}].instrument"), e.to_string()))?;
            positions.push(Position {
                instrument,
                size: p.size,
                entry: p.entry,
                funding: p.funding,
            });
        }
        let mut balances = Vec::with_capacity(self.balances.len());
        for (code, amount) in &self.balances {
            let location = format!("balances.{code}");
            let currency: Currency = code
                .parse()
                .map_err(|e: basics::Error| Error::invalid(&location, e.kind.to_string()))?;
            balances.push(amount.to_money(currency, &location)?);
        }
        Portfolio::new(positions, &balances).map_err(Error::from)
    }

    /// The document form of a portfolio (balances as exact decimal strings).
    #[must_use]
    pub fn from_portfolio(portfolio: &Portfolio) -> PortfolioDocument {
        PortfolioDocument {
            positions: portfolio
                .positions()
                .iter()
                .map(|p| PositionDocument {
                    instrument: p.instrument.to_string(),
                    size: p.size,
                    entry: p.entry,
                    funding: p.funding,
                })
                .collect(),
            balances: portfolio
                .balances()
                .iter()
                .map(|(c, m)| (c.to_string(), AmountText::Text(basics::format_scaled(m.raw()))))
                .collect(),
        }
    }
}

/// keccak-256 of the canonical portfolio: the compact JSON of
/// [`PortfolioDocument::from_portfolio`] (positions in the portfolio's canonical order, sizes as
/// shortest round-trip numbers, balances as exact decimal strings). Any two files describing the
/// same holdings hash alike, whatever their order, spacing or number spelling; the oracle commits
/// to this hash in every account's leaf.
#[must_use]
pub fn portfolio_hash(portfolio: &Portfolio) -> [u8; 32] {
    crate::canonical_hash(&PortfolioDocument::from_portfolio(portfolio))
}

/// A book of accounts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookDocument {
    /// The accounts, each with a unique id.
    pub accounts: Vec<AccountDocument>,
}

/// One account of a book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountDocument {
    /// Unique account id.
    pub id: String,
    /// The account's holdings.
    #[serde(flatten)]
    pub portfolio: PortfolioDocument,
}

impl BookDocument {
    /// Parses the JSON text of a book.
    ///
    /// # Errors
    /// `Syntax` for malformed JSON.
    pub fn from_json(text: &str) -> Result<BookDocument, Error> {
        crate::from_json(text)
    }

    /// Validates every account, keyed by id in order.
    ///
    /// # Errors
    /// A duplicate or empty id, or the first invalid account (`accounts[3].positions[0].size`).
    pub fn to_accounts(&self) -> Result<BTreeMap<String, Portfolio>, Error> {
        let mut accounts = BTreeMap::new();
        for (i, account) in self.accounts.iter().enumerate() {
            let location = format!("accounts[{i}]");
            if account.id.is_empty() {
                return Err(Error::invalid(format!("{location}.id"), "must not be empty"));
            }
            let portfolio = account.portfolio.to_portfolio().map_err(|e| Error {
                location: format!("{location}.{}", e.location),
                kind: e.kind,
            })?;
            if accounts.insert(account.id.clone(), portfolio).is_some() {
                return Err(Error::invalid(
                    format!("{location}.id"),
                    format!("duplicate id {:?}", account.id),
                ));
            }
        }
        Ok(accounts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portfolio_hash_is_canonical() {
        let hash = |text: &str| {
            portfolio_hash(&PortfolioDocument::from_json(text).unwrap().to_portfolio().unwrap())
        };
        let a = hash(
            r#"{"positions":[{"instrument":"BTC-PERPETUAL","size":1000},
            {"instrument":"BTC-27DEC24-100000-C","size":-1.5}],"balances":{"BTC":"0.10"}}"#,
        );
        // Same holdings: other order, spacing and spelling of the numbers.
        let b = hash(
            r#"{"balances":{"BTC":"0.100"},"positions":[
            {"instrument":"BTC-27DEC24-100000-C","size":-1.50},
            {"instrument":"BTC-PERPETUAL","size":1e3}]}"#,
        );
        assert_eq!(a, b);
        let c = hash(
            r#"{"positions":[{"instrument":"BTC-PERPETUAL","size":1000},
            {"instrument":"BTC-27DEC24-100000-C","size":-1.25}],"balances":{"BTC":"0.1"}}"#,
        );
        assert_ne!(a, c);
    }

    #[test]
    fn reads_positions_and_exact_balances() {
        let text = r#"{"positions":[{"instrument":"BTC-PERPETUAL","size":1000},
            {"instrument":"BTC-27DEC24-100000-C","size":-1.5}],
            "balances":{"BTC":"0.1","USDC":250.25}}"#;
        let portfolio = PortfolioDocument::from_json(text).unwrap().to_portfolio().unwrap();
        assert_eq!(portfolio.positions().len(), 2);
        assert_eq!(portfolio.balances()[&Currency::BTC].raw(), 100_000_000_000_000_000);
        assert_eq!(portfolio.balances()[&Currency::USDC].raw(), 250_250_000_000_000_000_000);
        let back = PortfolioDocument::from_portfolio(&portfolio).to_portfolio().unwrap();
        assert_eq!(back, portfolio);
    }

    #[test]
    fn errors_name_the_path() {
        let bad = r#"{"positions":[{"instrument":"BTC-PERPETUAL","size":1},
            {"instrument":"BTC-32DEC24","size":1}]}"#;
        let err = PortfolioDocument::from_json(bad).unwrap().to_portfolio().unwrap_err();
        assert_eq!(err.location, "positions[1].instrument");
        let bad = r#"{"balances":{"USDC":"12,5"}}"#;
        assert_eq!(
            PortfolioDocument::from_json(bad).unwrap().to_portfolio().unwrap_err().location,
            "balances.USDC"
        );
        let book = r#"{"accounts":[{"id":"a","positions":[]},{"id":"a"}]}"#;
        assert_eq!(
            BookDocument::from_json(book).unwrap().to_accounts().unwrap_err().location,
            "accounts[1].id"
        );
        let book = r#"{"accounts":[{"id":"a",
            "positions":[{"instrument":"BTC-PERPETUAL","size":1e400}]}]}"#;
        assert!(BookDocument::from_json(book).is_err());
    }
}
