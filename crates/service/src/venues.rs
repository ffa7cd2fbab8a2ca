//! `POST /api/netting`: a cross-venue book netted per account on the current market, computed by
//! the `netting` library and written as `formats::venues::NettingDocument`, exactly as
//! `ballast net --json` writes it for the same book, market and time.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use formats::venues::{NettingDocument, VenueBookDocument};
use netting::{CrossBook, Netter, Policy};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{Error, ErrorBody};
use crate::model::MethodologyEntry;
use crate::state::Service;
use crate::writes::{body, parse, query};

/// When and under which staleness policy a book is netted.
#[derive(Debug, Deserialize, IntoParams)]
pub struct NettingQuery {
    /// Netting time, RFC 3339 (the market's valuation time when absent).
    pub at: Option<String>,
    /// A venue whose feed is older than this, in seconds, is stale (default 600).
    pub stale_after_secs: Option<u64>,
    /// Grace period after a venue fails, in seconds (default 3,600).
    pub grace_secs: Option<u64>,
}

/// The stored methodology a venue names: by hash, by `name@version`, or by a name only one
/// stored methodology has.
fn methodology<'a>(
    stored: impl Iterator<Item = &'a Arc<MethodologyEntry>> + Clone,
    name: &str,
) -> Result<&'a Arc<MethodologyEntry>, String> {
    let exact = stored.clone().find(|m| m.hash == name || m.label() == name);
    if let Some(entry) = exact {
        return Ok(entry);
    }
    let mut by_name = stored.filter(|m| m.name == name);
    match (by_name.next(), by_name.next()) {
        (Some(entry), None) => Ok(entry),
        (Some(_), Some(_)) => Err(format!("{name:?} names several versions: give name@version")),
        (None, _) => Err(format!("no stored methodology {name:?} (hash, name@version or name)")),
    }
}

/// Nets the posted cross-venue book on the current market: per account, each venue's standalone
/// requirement, the netted requirement and its allocation back to the venues, the liens and the
/// capital released. A refused account carries its error and changes no other.
///
/// # Errors
/// `Malformed` for a body that is not a book; `Invalid` naming the first bad field of the book
/// (`venues[1].as_of`, `accounts[0].liens[0].amount`), an unknown methodology or liquidation
/// profile, or the query; `Invalid` naming `market` before any market.
#[utoipa::path(post, path = "/api/netting", request_body = VenueBookDocument,
    params(NettingQuery),
    responses((status = 200, body = NettingDocument), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn net_book(
    State(service): State<Arc<Service>>,
    q: Result<Query<NettingQuery>, QueryRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<NettingDocument>, Error> {
    let q = query(q)?;
    let document: VenueBookDocument = parse(&body(raw)?)?;
    let (venues, accounts, market) = {
        let model = service.model();
        let stored = model.methodologies.values();
        let (venues, accounts) = document
            .to_parts(|name| methodology(stored.clone(), name).map(|entry| entry.engine.clone()))?;
        let market = model.market.clone().ok_or_else(|| Error::invalid("market", "none yet"))?;
        (venues, accounts, market)
    };
    for (i, venue) in venues.iter().enumerate() {
        liquidation::Profile::bundled(&venue.liquidation)
            .map_err(|e| Error::invalid(format!("venues[{i}].liquidation"), e.to_string()))?;
    }
    let now_secs = match &q.at {
        Some(text) => u64::try_from(formats::parse_rfc3339(text, "at")?.secs())
            .map_err(|_| Error::invalid("at", "before 1970"))?,
        None => u64::try_from(market.snapshot.valuation().secs())
            .map_err(|_| Error::invalid("market", "before 1970"))?,
    };
    let policy = Policy::new(q.stale_after_secs.unwrap_or(600), q.grace_secs.unwrap_or(3_600))?;
    let document = tokio::task::spawn_blocking(move || {
        let book = CrossBook::new(venues, accounts)?;
        let standard = formats::bundled::standard_set()?;
        let netter = Netter::new(&book, &market.snapshot, &standard, policy, now_secs)?;
        let results = netter.run(&book);
        let ids: Vec<&str> = book.accounts().iter().map(|a| a.id.as_str()).collect();
        Ok::<_, Error>(NettingDocument::of(&standard, now_secs, &ids, &results))
    })
    .await
    .map_err(|e| Error::storage("netting", e))??;
    Ok(axum::Json(document))
}
