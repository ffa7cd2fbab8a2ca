//! Cross-venue books (`ballast net --book`): venues with their methodology, listing, liquidation
//! profile and feed, and accounts with one leg per venue, liens and a controller.
//!
//! ```json
//! { "venues": [ { "id": "deribit", "kind": "exchange", "methodology": "ballast-pm",
//!                 "liquidation": "deribit", "floor": true, "as_of": "2026-12-01T08:00:00Z" } ],
//!   "accounts": [ { "id": "alice",
//!                   "venues": [ { "venue": "deribit", "controller": true,
//!                                 "positions": [ … ], "balances": { "BTC": "2" } } ],
//!                   "liens": [ { "from": "aave", "to": "deribit", "currency": "BTC",
//!                                "amount": "1" } ] } ] }
//! ```
//!
//! The shapes are read here; the rules between them (known venues, one controller, liens no
//! larger than the collateral) are `netting::CrossBook::new`'s, with the same paths.

use basics::Currency;
use margin::Engine;
use netting::{AccountInput, Feed, Leg, Listing, Venue, VenueId, VenueKind};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::parse_rfc3339;
use crate::portfolio::{AmountText, PortfolioDocument};

/// A cross-venue book document.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueBookDocument {
    /// The venues.
    pub venues: Vec<VenueDocument>,
    /// The accounts.
    pub accounts: Vec<CrossAccountDocument>,
}

/// Where a venue runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VenueKindText {
    /// A centralised exchange.
    Exchange,
    /// A protocol on a chain (`chain_id` required).
    Protocol,
}

/// A contract kind a venue lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListedKind {
    /// Options.
    Option,
    /// Dated futures.
    Future,
    /// Perpetuals.
    Perpetual,
}

/// One venue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueDocument {
    /// Its id.
    pub id: String,
    /// Exchange or protocol.
    pub kind: VenueKindText,
    /// The chain of a protocol (EIP-155 id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// Its methodology: a bundled name or a file the reader resolves.
    pub methodology: String,
    /// Its liquidation profile (a bundled name of the `liquidation` crate).
    pub liquidation: String,
    /// What it lists (everything when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lists: Option<Vec<ListedKind>>,
    /// Whether it agrees to the whole-book floor.
    #[serde(default)]
    pub floor: bool,
    /// RFC 3339 time of its last reported state.
    pub as_of: String,
    /// RFC 3339 time at which it halted, if it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted_at: Option<String>,
}

/// One account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossAccountDocument {
    /// Unique id.
    pub id: String,
    /// One leg per venue.
    pub venues: Vec<LegDocument>,
    /// Collateral pledged between its venues.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub liens: Vec<LienDocument>,
}

/// An account's holdings at one venue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegDocument {
    /// The venue's id.
    pub venue: String,
    /// Whether the venue is the account's controller.
    #[serde(default)]
    pub controller: bool,
    /// Positions and balances there.
    #[serde(flatten)]
    pub portfolio: PortfolioDocument,
}

/// A lien of collateral from one venue to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LienDocument {
    /// The venue that holds the collateral.
    pub from: String,
    /// The venue it is pledged to.
    pub to: String,
    /// The currency.
    pub currency: String,
    /// The amount (rounded down to 1e-18).
    pub amount: AmountText,
}

impl VenueBookDocument {
    /// Parses the JSON text of a cross-venue book.
    ///
    /// # Errors
    /// `Syntax` for malformed JSON.
    pub fn from_json(text: &str) -> Result<VenueBookDocument, Error> {
        crate::from_json(text)
    }

    /// The venues (each methodology through `engine_of(name)`) and the accounts, as
    /// read; `netting::CrossBook::new` then checks the rules between them.
    ///
    /// # Errors
    /// The first invalid value, by its path (`venues[1].as_of`,
    /// `accounts[0].venues[1].positions[0].size`).
    pub fn to_parts(
        &self,
        mut engine_of: impl FnMut(&str) -> Result<Engine, String>,
    ) -> Result<(Vec<Venue>, Vec<AccountInput>), Error> {
        let mut venues = Vec::with_capacity(self.venues.len());
        for (i, v) in self.venues.iter().enumerate() {
            venues.push(v.to_venue(&format!("venues[{i}]"), &mut engine_of)?);
        }
        let mut accounts = Vec::with_capacity(self.accounts.len());
        for (i, a) in self.accounts.iter().enumerate() {
            accounts.push(a.to_input(&format!("accounts[{i}]"))?);
        }
        Ok((venues, accounts))
    }
}

fn venue_id(text: &str, location: &str) -> Result<VenueId, Error> {
    VenueId::new(text, location).map_err(|e| Error::invalid(location, e.to_string()))
}

fn secs(text: &str, location: &str) -> Result<u64, Error> {
    let at = parse_rfc3339(text, location)?;
    u64::try_from(at.secs()).map_err(|_| Error::invalid(location, "before 1970"))
}

impl VenueDocument {
    fn to_venue(
        &self,
        location: &str,
        engine_of: &mut impl FnMut(&str) -> Result<Engine, String>,
    ) -> Result<Venue, Error> {
        let kind = match (self.kind, self.chain_id) {
            (VenueKindText::Exchange, None) => VenueKind::Exchange,
            (VenueKindText::Protocol, Some(chain_id)) => VenueKind::Protocol { chain_id },
            (VenueKindText::Exchange, Some(_)) => {
                return Err(Error::invalid(
                    format!("{location}.chain_id"),
                    "an exchange has no chain",
                ));
            }
            (VenueKindText::Protocol, None) => {
                return Err(Error::missing(
                    format!("{location}.chain_id"),
                    "the protocol's chain id",
                ));
            }
        };
        let listing = match &self.lists {
            None => Listing::ALL,
            Some(kinds) => Listing {
                options: kinds.contains(&ListedKind::Option),
                futures: kinds.contains(&ListedKind::Future),
                perpetuals: kinds.contains(&ListedKind::Perpetual),
            },
        };
        let halted_at_secs = match &self.halted_at {
            Some(text) => Some(secs(text, &format!("{location}.halted_at"))?),
            None => None,
        };
        Ok(Venue {
            id: venue_id(&self.id, &format!("{location}.id"))?,
            kind,
            listing,
            engine: engine_of(&self.methodology)
                .map_err(|e| Error::invalid(format!("{location}.methodology"), e))?,
            liquidation: self.liquidation.clone(),
            floor: self.floor,
            feed: Feed {
                as_of_secs: secs(&self.as_of, &format!("{location}.as_of"))?,
                halted_at_secs,
            },
        })
    }
}

impl CrossAccountDocument {
    fn to_input(&self, location: &str) -> Result<AccountInput, Error> {
        let mut legs = Vec::with_capacity(self.venues.len());
        for (j, leg) in self.venues.iter().enumerate() {
            let at = format!("{location}.venues[{j}]");
            let portfolio = leg
                .portfolio
                .to_portfolio()
                .map_err(|e| Error { location: format!("{at}.{}", e.location), kind: e.kind })?;
            legs.push(Leg {
                venue: venue_id(&leg.venue, &format!("{at}.venue"))?,
                portfolio,
                controller: leg.controller,
            });
        }
        let mut liens = Vec::with_capacity(self.liens.len());
        for (l, lien) in self.liens.iter().enumerate() {
            let at = format!("{location}.liens[{l}]");
            let currency: Currency = (lien.currency.parse()).map_err(|e: basics::Error| {
                Error::invalid(format!("{at}.currency"), e.kind.to_string())
            })?;
            let amount = lien.amount.to_money(currency, &format!("{at}.amount"))?;
            liens.push((
                venue_id(&lien.from, &format!("{at}.from"))?,
                venue_id(&lien.to, &format!("{at}.to"))?,
                amount,
            ));
        }
        Ok(AccountInput { id: self.id.clone(), legs, liens })
    }
}
