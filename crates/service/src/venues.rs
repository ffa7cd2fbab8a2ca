//! Cross-venue netting in the service: `POST /api/netting` nets a posted book, `PUT
//! /api/netting/book` stores one (in the database, beside the accounts) and `GET /api/netting`
//! nets the stored one, each per account on the current market, computed by the `netting`
//! library and written as `formats::venues::NettingDocument`, exactly as `ballast net --json`
//! writes it for the same book, market and time.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use formats::venues::{NettingDocument, VenueBookDocument};
use netting::{CrossBook, Netter, Policy};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::Note;
use crate::auth::Principal;
use crate::error::{Error, ErrorBody, ErrorKind};
use crate::model::{MethodologyEntry, Model};
use crate::state::{Plan, Scope, Service};
use crate::store::Op;
use crate::writes::{body, body_and_key, finish, json, parse, query};

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
    Ok(axum::Json(net(&service, &document, &q).await?))
}

/// Nets the stored cross-venue book (`PUT /api/netting/book`) on the current market: the same
/// document `POST /api/netting` answers for that book, bit for bit.
///
/// # Errors
/// `NotFound` naming `book` before any book is stored; otherwise as `POST /api/netting` (a
/// stored book whose methodology has since become ambiguous is refused the same way).
#[utoipa::path(get, path = "/api/netting", params(NettingQuery),
    responses((status = 200, body = NettingDocument), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn net_stored(
    State(service): State<Arc<Service>>,
    q: Result<Query<NettingQuery>, QueryRejection>,
) -> Result<axum::Json<NettingDocument>, Error> {
    let q = query(q)?;
    let stored = service.model().venue_book.clone();
    let document = stored.ok_or_else(|| Error::new("book", ErrorKind::NotFound))?;
    Ok(axum::Json(net(&service, &document, &q).await?))
}

/// What a stored book holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VenueBookStored {
    /// The venues' ids, in the book's order.
    pub venues: Vec<String>,
    /// Accounts in the book.
    pub accounts: usize,
}

/// Replaces the stored cross-venue book, which `GET /api/netting` nets on each read and the
/// dashboard shows per venue. The book is checked whole before it is stored (its venues'
/// methodologies among the stored ones, its liquidation profiles bundled, every account's legs,
/// liens and controller valid): a refused book leaves the stored one as it was.
///
/// # Errors
/// As `POST /api/netting` for the book itself; `Conflict` for an idempotency key reused for
/// another request.
#[utoipa::path(put, path = "/api/netting/book", request_body = VenueBookDocument,
    responses((status = 200, body = VenueBookStored), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn store_book(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, false)?;
        let document: VenueBookDocument = parse(&bytes)?;
        let canonical =
            serde_json::to_string(&document).map_err(|e| Error::invalid("body", e.to_string()))?;
        let stored = VenueBookStored {
            venues: document.venues.iter().map(|v| v.id.clone()).collect(),
            accounts: document.accounts.len(),
        };
        let subject = format!("{} venues, {} accounts", stored.venues.len(), stored.accounts);
        let note = Note::of(&principal.key, "netting.book", subject, &bytes);
        service
            .write_noted(key, Some(note), |model| {
                let (venues, accounts) = parts(model, &document)?;
                CrossBook::new(venues, accounts)?;
                Ok(Plan {
                    ops: vec![Op::VenueBook { document: canonical }],
                    answer: json(StatusCode::OK, &stored),
                    methodology: None,
                    market: None,
                    scope: Scope::Nothing,
                })
            })
            .await
    };
    finish(run.await)
}

/// The book's venues and accounts, its methodologies read from the stored ones and its
/// liquidation profiles checked against the bundled ones.
fn parts(
    model: &Model,
    document: &VenueBookDocument,
) -> Result<(Vec<netting::Venue>, Vec<netting::AccountInput>), Error> {
    let stored = model.methodologies.values();
    let (venues, accounts) = document
        .to_parts(|name| methodology(stored.clone(), name).map(|entry| entry.engine.clone()))?;
    for (i, venue) in venues.iter().enumerate() {
        liquidation::Profile::bundled(&venue.liquidation)
            .map_err(|e| Error::invalid(format!("venues[{i}].liquidation"), e.to_string()))?;
    }
    Ok((venues, accounts))
}

/// Nets `document` on the current market at the query's time and policy.
async fn net(
    service: &Service,
    document: &VenueBookDocument,
    q: &NettingQuery,
) -> Result<NettingDocument, Error> {
    let (venues, accounts, market) = {
        let model = service.model();
        let (venues, accounts) = parts(&model, document)?;
        let market = model.market.clone().ok_or_else(|| Error::invalid("market", "none yet"))?;
        (venues, accounts, market)
    };
    let now_secs = match &q.at {
        Some(text) => u64::try_from(formats::parse_rfc3339(text, "at")?.secs())
            .map_err(|_| Error::invalid("at", "before 1970"))?,
        None => u64::try_from(market.snapshot.valuation().secs())
            .map_err(|_| Error::invalid("market", "before 1970"))?,
    };
    let policy = Policy::new(q.stale_after_secs.unwrap_or(600), q.grace_secs.unwrap_or(3_600))?;
    tokio::task::spawn_blocking(move || {
        let book = CrossBook::new(venues, accounts)?;
        let standard = formats::bundled::standard_set()?;
        let netter = Netter::new(&book, &market.snapshot, &standard, policy, now_secs)?;
        let results = netter.run(&book);
        let ids: Vec<&str> = book.accounts().iter().map(|a| a.id.as_str()).collect();
        Ok::<_, Error>(NettingDocument::of(&standard, now_secs, &ids, &results))
    })
    .await
    .map_err(|e| Error::storage("netting", e))?
}
