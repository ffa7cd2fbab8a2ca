//! The venue leaves of a cross-venue book: what each venue's contract reads about each account
//! netted across venues.
//!
//! Definitions attested (and documented in `docs/formats.md`): the account field is the one of
//! the account's own leaf ([`crate::account_id`], or salted); the venue field is
//! [`oracle::venue_key`] of the venue id; the chain is the venue's EIP-155 id, 0 for an exchange;
//! the amounts are the netting's, already in USD fixed point with their rounding (credited
//! requirements up, equity and liens in down, liens out up); the status is the netting's, its
//! grace end included; the vector hash is the leg's commitment on the standard set.

use netting::{CrossBook, NettedAccount, Status, VenueKind};
use oracle::{B256, VenueResult, VenueStatus, venue_key};

use crate::{Error, ErrorKind, account_id};

/// One venue result per leg of every account of `netted`, in the given account order and each
/// account's venue order; `salt_secret` salts the account field as the epoch's account leaves
/// are salted.
///
/// # Errors
/// `UnknownVenue`, naming the account, for a leg at a venue the book does not hold.
pub fn venue_results(
    book: &CrossBook,
    netted: &[NettedAccount],
    salt_secret: Option<&[u8]>,
) -> Result<Vec<VenueResult>, Error> {
    let mut out = Vec::with_capacity(netted.iter().map(|a| a.legs.len()).sum());
    for account in netted {
        let key = match salt_secret {
            Some(secret) => {
                oracle::salted_account_id(&oracle::account_salt(secret, &account.id), &account.id)
            }
            None => account_id(&account.id),
        };
        let status = match account.status {
            Status::Netted => VenueStatus::Netted,
            Status::Standalone(_) => VenueStatus::Standalone,
            Status::Grace { until_secs, .. } => VenueStatus::Grace { until_secs },
        };
        for leg in &account.legs {
            let Some(venue) = book.venues().get(&leg.venue) else {
                let kind = ErrorKind::UnknownVenue(leg.venue.to_string());
                return Err(Error { account: Some(account.id.clone()), kind });
            };
            let chain_id = match venue.kind {
                VenueKind::Exchange => 0,
                VenueKind::Protocol { chain_id } => chain_id,
            };
            out.push(VenueResult {
                account: key,
                venue: venue_key(leg.venue.as_str()),
                chain_id,
                initial_margin: leg.credited.im,
                maintenance_margin: leg.credited.mm,
                equity: leg.equity,
                lien_in: leg.lien_in,
                lien_out: leg.lien_out,
                status,
                controller: leg.controller,
                vector_hash: B256::from(leg.vector_hash),
            });
        }
    }
    Ok(out)
}
