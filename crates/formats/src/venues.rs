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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VenueBookDocument {
    /// The venues.
    pub venues: Vec<VenueDocument>,
    /// The accounts.
    pub accounts: Vec<CrossAccountDocument>,
}

/// Where a venue runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum VenueKindText {
    /// A centralised exchange.
    Exchange,
    /// A protocol on a chain (`chain_id` required).
    Protocol,
}

/// A contract kind a venue lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A cross-venue book netted per account (`ballast net --json`, the service's `POST
/// /api/netting`): the same document, to the bit, for the same book, market and time.
///
/// Amounts are USD decimal strings of the exact fixed-point figures (requirements rounded up,
/// equity and liens in down, liens out up); the Euler contribution is an `f64` in USD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NettingDocument {
    /// The standard scenario set, `name@version`.
    pub standard: String,
    /// Its canonical hash, 0x hex: what every vector hash commits to.
    pub standard_hash: String,
    /// The netting time, RFC 3339.
    pub at: String,
    /// One entry per account of the book, in its order; a refused account has its error and
    /// no figures, and changes no other.
    pub accounts: Vec<NettedAccountDocument>,
}

/// One account netted across its venues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NettedAccountDocument {
    /// The account's id.
    pub id: String,
    /// `netted`, `standalone` or `grace`; absent for a refused account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Why it is standalone: `one-venue`, `no-controller`, `halted:<venue>`, `stale:<venue>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// End of the grace period, RFC 3339, while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<String>,
    /// What bounded the IM: `combined`, `floor` or `cap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<String>,
    /// Σ of the venues' standalone IM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standalone_im: Option<String>,
    /// Σ of the venues' standalone MM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standalone_mm: Option<String>,
    /// The IM in force (netted, or the standalone sum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netted_im: Option<String>,
    /// The MM in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netted_mm: Option<String>,
    /// Standalone IM less netted IM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_im: Option<String>,
    /// The legs, by venue id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legs: Vec<NettedLegDocument>,
    /// Why the account was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One leg of a netted account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NettedLegDocument {
    /// The venue.
    pub venue: String,
    /// Whether it is the account's controller.
    pub controller: bool,
    /// The venue's own IM for the leg alone.
    pub standalone_im: String,
    /// The venue's own MM for the leg alone.
    pub standalone_mm: String,
    /// The IM credited to the venue: its part of the netted IM.
    pub credited_im: String,
    /// The MM credited to the venue.
    pub credited_mm: String,
    /// The leg's equity at the venue.
    pub equity: String,
    /// Collateral pledged to the venue.
    pub lien_in: String,
    /// Collateral pledged away from it.
    pub lien_out: String,
    /// Equity − lien out + lien in: what the venue counts.
    pub collateral: String,
    /// The leg's Euler contribution to the combined scan loss, USD (negative for a hedge).
    pub contribution_usd: f64,
    /// keccak-256 of its vector on the standard set, 0x hex.
    pub vector_hash: String,
}

impl NettingDocument {
    /// The document of `results` (one per account of `ids`, in order) netted at `at_secs` on
    /// `standard`.
    #[must_use]
    pub fn of(
        standard: &netting::StandardSet,
        at_secs: u64,
        ids: &[&str],
        results: &[Result<netting::NettedAccount, netting::Error>],
    ) -> NettingDocument {
        assert!(ids.len() == results.len(), "Invariant: one netting result per account");
        let accounts = (ids.iter().zip(results))
            .map(|(id, result)| match result {
                Ok(n) => netted_account(n),
                Err(e) => NettedAccountDocument {
                    id: (*id).to_owned(),
                    status: None,
                    reason: None,
                    grace_until: None,
                    bound: None,
                    standalone_im: None,
                    standalone_mm: None,
                    netted_im: None,
                    netted_mm: None,
                    released_im: None,
                    legs: Vec::new(),
                    error: Some(e.to_string()),
                },
            })
            .collect();
        NettingDocument {
            standard: format!("{}@{}", standard.name, standard.version),
            standard_hash: crate::methodology::hash_hex(&standard.hash),
            at: rfc3339_secs(at_secs),
            accounts,
        }
    }
}

fn rfc3339_secs(secs: u64) -> String {
    // Netting times come from RFC 3339 text or a market's valuation, plus a grace period of at
    // most 30 days: far inside the nanosecond range of an i64.
    let Some(secs) = i64::try_from(secs).ok().filter(|s| *s <= i64::MAX / 1_000_000_000) else {
        panic!("Invariant: a netting time {secs} s fits UnixNanos");
    };
    crate::format_rfc3339(basics::UnixNanos::from_secs(secs))
}

fn amount(money: basics::Money) -> String {
    basics::format_scaled(money.raw())
}

fn netted_account(n: &netting::NettedAccount) -> NettedAccountDocument {
    use netting::{Bound, Fallback, Status};
    let reason = |f: &Fallback| match f {
        Fallback::OneVenue => "one-venue".to_owned(),
        Fallback::NoController => "no-controller".to_owned(),
        Fallback::Halted(v) => format!("halted:{v}"),
        Fallback::Stale(v) => format!("stale:{v}"),
    };
    let (status, why, grace_until) = match &n.status {
        Status::Netted => ("netted", None, None),
        Status::Standalone(f) => ("standalone", Some(reason(f)), None),
        Status::Grace { reason: f, until_secs } => {
            ("grace", Some(reason(f)), Some(rfc3339_secs(*until_secs)))
        }
    };
    let bound = match n.bound {
        Bound::Combined => "combined",
        Bound::Floor => "floor",
        Bound::Cap => "cap",
    };
    let legs = (n.legs.iter())
        .map(|l| NettedLegDocument {
            venue: l.venue.to_string(),
            controller: l.controller,
            standalone_im: amount(l.standalone.im),
            standalone_mm: amount(l.standalone.mm),
            credited_im: amount(l.credited.im),
            credited_mm: amount(l.credited.mm),
            equity: amount(l.equity),
            lien_in: amount(l.lien_in),
            lien_out: amount(l.lien_out),
            collateral: amount(l.credited_collateral()),
            contribution_usd: l.contribution,
            vector_hash: crate::methodology::hash_hex(&l.vector_hash),
        })
        .collect();
    NettedAccountDocument {
        id: n.id.clone(),
        status: Some(status.to_owned()),
        reason: why,
        grace_until,
        bound: Some(bound.to_owned()),
        standalone_im: Some(amount(n.standalone.im)),
        standalone_mm: Some(amount(n.standalone.mm)),
        netted_im: Some(amount(n.netted.im)),
        netted_mm: Some(amount(n.netted.mm)),
        released_im: Some(amount(n.released_im())),
        legs,
        error: None,
    }
}
