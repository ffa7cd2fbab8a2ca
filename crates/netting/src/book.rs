//! A cross-venue book: venues, and accounts whose positions and balances each belong to one of
//! them, with liens of collateral between venues and at most one controller per account.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use basics::{Currency, Money};
use product::Portfolio;
use rayon::prelude::*;

use crate::limits::{ACCOUNTS_MAX, LIENS_MAX, VENUES_MAX};
use crate::venue::{Venue, VenueId};
use crate::{Error, ErrorKind};

/// An account's holdings at one venue.
#[derive(Debug, Clone)]
pub struct Leg {
    /// The venue.
    pub venue: VenueId,
    /// What the account holds there.
    pub portfolio: Portfolio,
    /// Whether this venue is the account's controller: the one venue allowed to liquidate the
    /// account's collateral at the others (Euler's EVC rule: two controllers are invalid).
    pub controller: bool,
}

/// Collateral at one venue pledged to another, as an attested lien: the pledging venue keeps
/// the coins, the receiving venue counts their value and may seize them in a liquidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lien {
    /// The venue that holds the collateral.
    pub from: usize,
    /// The venue it is pledged to (the account's controller).
    pub to: usize,
    /// The amount pledged, in its currency.
    pub amount: Money,
}

impl Lien {
    /// The pledged currency.
    #[must_use]
    pub fn currency(&self) -> Currency {
        self.amount.currency()
    }
}

/// An account as read, before validation against the venues.
#[derive(Debug, Clone)]
pub struct AccountInput {
    /// Unique account id.
    pub id: String,
    /// Its holdings, one leg per venue.
    pub legs: Vec<Leg>,
    /// Its liens, as (from venue, to venue, amount).
    pub liens: Vec<(VenueId, VenueId, Money)>,
}

/// A validated account: legs sorted by venue, liens between venues it holds legs at.
#[derive(Debug, Clone)]
pub struct CrossAccount {
    /// Unique account id.
    pub id: String,
    /// Its legs, sorted by venue id, at most one per venue.
    pub legs: Vec<Leg>,
    /// Its liens; `from` and `to` index `legs`.
    pub liens: Vec<Lien>,
    /// The index in `legs` of its controller, if it has one.
    pub controller: Option<usize>,
}

/// Venues and the accounts that hold positions at them.
#[derive(Debug, Clone)]
pub struct CrossBook {
    venues: BTreeMap<VenueId, Venue>,
    accounts: Vec<CrossAccount>,
}

impl CrossBook {
    /// Validates a book: unique venue and account ids, every leg at a declared venue and in
    /// instruments it lists, at most one controller per account, liens only to the controller
    /// and never larger than what the pledging venue holds.
    ///
    /// # Errors
    /// The first refused input, by its path (`accounts[3].liens[0].amount`).
    pub fn new(venues: Vec<Venue>, accounts: Vec<AccountInput>) -> Result<CrossBook, Error> {
        if venues.len() > VENUES_MAX {
            return Err(Error::new(
                "venues",
                ErrorKind::Limit { limit: "VENUES_MAX", max: VENUES_MAX },
            ));
        }
        if accounts.len() > ACCOUNTS_MAX {
            return Err(Error::new(
                "accounts",
                ErrorKind::Limit { limit: "ACCOUNTS_MAX", max: ACCOUNTS_MAX },
            ));
        }
        let mut by_id = BTreeMap::new();
        for (i, venue) in venues.into_iter().enumerate() {
            let id = venue.id.clone();
            if by_id.insert(id.clone(), venue).is_some() {
                return Err(Error::new(
                    format!("venues[{i}].id"),
                    ErrorKind::Duplicate(id.to_string()),
                ));
            }
        }
        let repeats = repeats(&accounts);
        // Accounts are checked in parallel; the error reported is the first in the book's
        // order, as a check one account after another would find it.
        let checked: Vec<Result<CrossAccount, Error>> = (accounts.into_par_iter().enumerate())
            .map(|(i, account)| {
                let field = || format!("accounts[{i}]");
                if account.id.is_empty() {
                    return Err(Error::range(format!("{}.id", field()), "must not be empty"));
                }
                if let Some(first) = repeats.get(&i) {
                    return Err(Error::new(
                        format!("{}.id", field()),
                        ErrorKind::Duplicate(format!(
                            "{} (first at accounts[{first}])",
                            account.id
                        )),
                    ));
                }
                validate_account(&by_id, account, &field)
            })
            .collect();
        let validated = checked.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(CrossBook { venues: by_id, accounts: validated })
    }

    /// The venues, by id.
    #[must_use]
    pub fn venues(&self) -> &BTreeMap<VenueId, Venue> {
        &self.venues
    }

    /// The accounts, in the order given.
    #[must_use]
    pub fn accounts(&self) -> &[CrossAccount] {
        &self.accounts
    }
}

/// Each account that repeats an earlier id, by its index, with the index of the first. Ids are
/// grouped by a 64-bit fingerprint sorted in parallel (a sort of strings would chase a pointer
/// per comparison), then compared in full within each group, so a shared fingerprint is never
/// taken for a repeat.
fn repeats(accounts: &[AccountInput]) -> BTreeMap<usize, usize> {
    let fingerprints = BuildHasherDefault::<DefaultHasher>::default();
    let mut keyed: Vec<(u64, usize)> =
        (accounts.par_iter().enumerate()).map(|(i, a)| (fingerprints.hash_one(&a.id), i)).collect();
    keyed.par_sort_unstable();
    let mut out = BTreeMap::new();
    for group in keyed.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
        // Within a group the indices ascend: the first equal id found is the first occurrence.
        for (k, &(_, i)) in group.iter().enumerate() {
            let first = group[..k].iter().find(|(_, j)| accounts[*j].id == accounts[i].id);
            if let Some(&(_, first)) = first {
                out.insert(i, first);
            }
        }
    }
    out
}

fn validate_account(
    venues: &BTreeMap<VenueId, Venue>,
    account: AccountInput,
    field: &dyn Fn() -> String,
) -> Result<CrossAccount, Error> {
    let AccountInput { id, mut legs, liens } = account;
    for (j, leg) in legs.iter().enumerate() {
        let leg_field = || format!("{}.venues[{j}]", field());
        let Some(venue) = venues.get(&leg.venue) else {
            return Err(Error::new(
                format!("{}.venue", leg_field()),
                ErrorKind::UnknownVenue(leg.venue.to_string()),
            ));
        };
        for (k, position) in leg.portfolio.positions().iter().enumerate() {
            venue
                .check_listed(&position.instrument, || format!("{}.positions[{k}]", leg_field()))?;
        }
    }
    let mut controller: Option<&VenueId> = None;
    for leg in legs.iter().filter(|l| l.controller) {
        if let Some(first) = controller {
            return Err(Error::new(
                format!("{}.venues", field()),
                ErrorKind::TwoControllers(first.to_string(), leg.venue.to_string()),
            ));
        }
        controller = Some(&leg.venue);
    }
    legs.sort_by(|a, b| a.venue.cmp(&b.venue));
    if let Some(pair) = legs.windows(2).find(|w| w[0].venue == w[1].venue) {
        return Err(Error::new(
            format!("{}.venues", field()),
            ErrorKind::Duplicate(pair[0].venue.to_string()),
        ));
    }
    let controller = legs.iter().position(|l| l.controller);
    let liens = validate_liens(venues, &legs, controller, &liens, field)?;
    Ok(CrossAccount { id, legs, liens, controller })
}

fn validate_liens(
    venues: &BTreeMap<VenueId, Venue>,
    legs: &[Leg],
    controller: Option<usize>,
    liens: &[(VenueId, VenueId, Money)],
    field: &dyn Fn() -> String,
) -> Result<Vec<Lien>, Error> {
    if liens.len() > LIENS_MAX {
        return Err(Error::new(
            format!("{}.liens", field()),
            ErrorKind::Limit { limit: "LIENS_MAX", max: LIENS_MAX },
        ));
    }
    let leg_of = |venue: &VenueId, what: &str, l: usize| {
        let at = || format!("{}.liens[{l}].{what}", field());
        if !venues.contains_key(venue) {
            return Err(Error::new(at(), ErrorKind::UnknownVenue(venue.to_string())));
        }
        legs.iter().position(|leg| &leg.venue == venue).ok_or_else(|| {
            Error::new(
                at(),
                ErrorKind::UnknownVenue(format!("{venue} (the account holds nothing there)")),
            )
        })
    };
    let mut pledged: BTreeMap<(usize, Currency), i128> = BTreeMap::new();
    let mut out = Vec::with_capacity(liens.len());
    for (l, (from, to, amount)) in liens.iter().enumerate() {
        let from = leg_of(from, "from", l)?;
        let to = leg_of(to, "to", l)?;
        if from == to {
            return Err(Error::range(
                format!("{}.liens[{l}].to", field()),
                "a lien goes to another venue",
            ));
        }
        if controller != Some(to) {
            return Err(Error::new(
                format!("{}.liens[{l}].to", field()),
                ErrorKind::Controller(
                    "a lien pledges collateral to the account's controller".into(),
                ),
            ));
        }
        if amount.raw() <= 0 {
            return Err(Error::range(format!("{}.liens[{l}].amount", field()), "must be positive"));
        }
        let total = pledged.entry((from, amount.currency())).or_insert(0);
        *total = total.saturating_add(amount.raw());
        let total = *total;
        let held = legs[from].portfolio.balances().get(&amount.currency()).map_or(0, Money::raw);
        if total > held {
            return Err(Error::new(
                format!("{}.liens[{l}].amount", field()),
                ErrorKind::LienTooLarge {
                    pledged: Money::from_raw(total, amount.currency()).to_f64(),
                    held: Money::from_raw(held, amount.currency()).to_f64(),
                },
            ));
        }
        out.push(Lien { from, to, amount: *amount });
    }
    Ok(out)
}
