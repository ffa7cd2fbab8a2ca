//! Write endpoints: accounts, positions, balances (idempotency key required), markets and
//! methodologies (key optional: both are identified by their content).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use basics::Currency;
use formats::deribit::{BookSummaryEntry, IndexPrice};
use formats::market::MarketDocument;
use product::{Instrument, Position};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::audit::Note;
use crate::auth::Principal;
use crate::dto::{
    AccountView, CreateAccount, MarketAccepted, MethodologyUpload, MethodologyView, PositionInput,
    SetBalance, SetMethodology, SetPosition,
};
use crate::error::{Error, ErrorBody, ErrorKind};
use crate::model::{AccountRecord, MarketEntry, MethodologyEntry, Model, parse_money};
use crate::state::{Answer, Plan, Scope, Service, fingerprint};
use crate::store::Op;

/// Largest request body, bytes (a market snapshot of a large exchange fits).
pub const BODY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Longest idempotency key, characters.
const IDEMPOTENCY_KEY_CHARS_MAX: usize = 200;
/// Longest account id, characters.
const ACCOUNT_ID_CHARS_MAX: usize = 64;
/// The account id grammar of [`check_id`] as the OpenAPI document declares it (on the body's
/// `id` and on every `{id}` of an account path).
pub const ACCOUNT_ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";
/// The methodology of accounts created without one.
pub const DEFAULT_METHODOLOGY: &str = "ballast-pm";

/// The body, or why it was refused.
///
/// # Errors
/// `TooLarge` past [`BODY_BYTES_MAX`]; `Malformed` when it cannot be read.
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Error> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::new("body", ErrorKind::TooLarge { limit_bytes: BODY_BYTES_MAX })
        } else {
            Error::new("body", ErrorKind::Malformed(rejection.body_text()))
        }
    })
}

/// Parses a JSON body.
///
/// # Errors
/// `Malformed` with serde's message (line and column, unknown or missing field).
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::new("body", ErrorKind::Malformed(e.to_string())))
}

/// The query of a request.
///
/// # Errors
/// `Malformed` naming `query` with the extractor's message.
pub fn query<T>(
    query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, Error> {
    query
        .map(|axum::extract::Query(q)| q)
        .map_err(|e| Error::new("query", ErrorKind::Malformed(e.body_text())))
}

/// The idempotency key of a request and its fingerprint.
///
/// # Errors
/// `Malformed` when required and absent, empty, too long or not text.
fn key(
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    body: &[u8],
    required: bool,
) -> Result<Option<(String, String)>, Error> {
    let field = "Idempotency-Key";
    let Some(value) = headers.get(field) else {
        return if required {
            Err(Error::new(field, ErrorKind::Malformed("required on this write".into())))
        } else {
            Ok(None)
        };
    };
    let text = value
        .to_str()
        .map_err(|_| Error::new(field, ErrorKind::Malformed("not visible ASCII".into())))?;
    if text.is_empty() || text.chars().count() > IDEMPOTENCY_KEY_CHARS_MAX {
        let why = format!("1 to {IDEMPOTENCY_KEY_CHARS_MAX} characters");
        return Err(Error::new(field, ErrorKind::Malformed(why)));
    }
    Ok(Some((text.to_owned(), fingerprint(method.as_str(), uri.path(), body))))
}

/// A write's body and its idempotency key: what every write handler reads first.
///
/// # Errors
/// As [`body`] and [`key`].
pub(crate) fn body_and_key(
    raw: Result<Bytes, BytesRejection>,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    key_required: bool,
) -> Result<(Bytes, Option<(String, String)>), Error> {
    let bytes = body(raw)?;
    let key = key(headers, method, uri, &bytes, key_required)?;
    Ok((bytes, key))
}

/// A body that must be text (market documents).
///
/// # Errors
/// `Malformed` when it is not UTF-8.
fn body_text(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes).map_err(|e| Error::new("body", ErrorKind::Malformed(e.to_string())))
}

/// Checks an account id.
///
/// # Errors
/// `Invalid` naming `field`.
pub fn check_id(field: &str, id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.chars().count() <= ACCOUNT_ID_CHARS_MAX
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, "1 to 64 characters among A-Z a-z 0-9 . _ -"))
    }
}

pub(crate) fn instrument(field: &str, name: &str) -> Result<Instrument, Error> {
    Instrument::parse(name).map_err(|e| Error::invalid(field, e.to_string()))
}

/// A price: finite and positive.
pub(crate) fn price(field: &str, price: f64) -> Result<f64, Error> {
    if price.is_finite() && price > 0.0 {
        Ok(price)
    } else {
        Err(Error::invalid(field, "a price must be a finite number above 0"))
    }
}

/// Enters every future and perpetual of `record` (of `only`, when given: the position a write
/// stores) held without an entry price at the engine's
/// mark on the current market, and pays every perpetual without a funding index up to the
/// market's (when it quotes one), so that its P&L and funding count from the moment it was
/// written.
///
/// # Errors
/// `Invalid` naming `positions.<instrument>.entry` when there is no market yet or the market
/// cannot value the instrument: the entry must then be given.
fn enter_at_mark(
    model: &Model,
    engine: &margin::Engine,
    record: &mut AccountRecord,
    only: Option<Instrument>,
) -> Result<(), Error> {
    let perpetual = |p: &Position| p.instrument.is_perpetual();
    let unentered = |p: &Position| p.entry.is_none() && !p.instrument.is_option();
    let unfunded = |p: &Position| p.funding.is_none() && perpetual(p);
    let written = |p: &&Position| only.is_none_or(|i| i == p.instrument);
    let missing: Vec<Instrument> = (record.positions.values().filter(written))
        .filter(|p| unentered(p) || unfunded(p))
        .map(|p| p.instrument)
        .collect();
    let first = record.positions.values().filter(written).find(|p| unentered(p));
    let first = first.map(|p| p.instrument);
    let required = |instrument: &Instrument, why: String| {
        let field = format!("positions.{instrument}.entry");
        Error::invalid(field, format!("{why}: give the price its P&L counts from"))
    };
    let Some(market) = model.market.as_ref() else {
        // Without a market only the entries are needed (there is no funding index to pay to).
        return first.map_or(Ok(()), |i| Err(required(&i, "no market yet".into())));
    };
    if missing.is_empty() {
        return Ok(());
    }
    let priced = engine.price_valuable(&market.snapshot, &missing);
    let (priced, refused) = match (priced, first) {
        (Ok(priced), _) => priced,
        (Err(_), None) => return Ok(()),
        (Err(e), Some(i)) => return Err(required(&i, format!("the market cannot be priced: {e}"))),
    };
    for instrument in missing {
        let Some(p) = record.positions.get_mut(&instrument) else { continue };
        if let Some(why) = refused.get(&instrument) {
            if p.entry.is_none() {
                return Err(required(
                    &instrument,
                    format!("the current market cannot value it: {why}"),
                ));
            }
            continue;
        }
        let fail = |e: margin::Error| required(&instrument, e.to_string());
        if p.entry.is_none() {
            p.entry = Some(priced.mark(&instrument).map_err(fail)?);
        }
        if perpetual(p) && p.funding.is_none() {
            p.funding = priced.funding_index(&instrument).map_err(fail)?;
        }
    }
    Ok(())
}

/// A funding index given for `instrument`, refused unless finite, in range and on a perpetual.
fn funding(field: &str, instrument: &Instrument, index: Option<f64>) -> Result<Option<f64>, Error> {
    let Some(index) = index else { return Ok(None) };
    product::check_funding(instrument, index, field).map_err(|e| match e.kind {
        product::ErrorKind::OutOfRange(rule) => Error::invalid(field, rule),
        kind => Error::invalid(field, kind.to_string()),
    })?;
    Ok(Some(index))
}

pub(crate) fn size(field: &str, size: f64) -> Result<f64, Error> {
    if size.is_finite() { Ok(size) } else { Err(Error::invalid(field, "not a finite number")) }
}

/// A balance amount, refused when negative (collateral is never a debt through this API).
fn amount(field: &str, currency: &str, text: &str) -> Result<Option<(Currency, String)>, Error> {
    let money = parse_money(currency, text).map_err(|e| Error::invalid(field, e.to_string()))?;
    if money.is_negative() {
        return Err(Error::invalid(field, "negative balance: collateral cannot be negative"));
    }
    let exact = basics::format_scaled(money.raw());
    Ok((money.raw() != 0).then_some((money.currency(), exact)))
}

pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Answer {
    Answer { status, body: serde_json::to_string(value).unwrap_or_default() }
}

/// The response of an answer.
#[must_use]
pub fn respond(answer: Answer) -> Response {
    (answer.status, [(header::CONTENT_TYPE, "application/json")], answer.body).into_response()
}

/// The stored view of an account.
#[must_use]
pub fn account_view(model: &Model, id: &str, record: &AccountRecord) -> AccountView {
    AccountView {
        id: id.to_owned(),
        methodology: record.methodology.clone(),
        methodology_label: model
            .methodologies
            .get(&record.methodology)
            .map_or_else(String::new, |m| m.label()),
        positions: record
            .positions
            .iter()
            .map(|(i, p)| PositionInput {
                instrument: i.to_string(),
                size: p.size,
                entry: p.entry,
                funding: p.funding,
            })
            .collect(),
        balances: record
            .balances
            .iter()
            .map(|(c, m)| (c.to_string(), basics::format_scaled(m.raw())))
            .collect(),
    }
}

pub(crate) fn finish(result: Result<Answer, Error>) -> Response {
    match result {
        Ok(answer) => respond(answer),
        Err(e) => e.into_response(),
    }
}

/// Creates an account with its methodology and, optionally, positions and balances.
#[utoipa::path(post, path = "/api/accounts", request_body = CreateAccount,
    params(("Idempotency-Key" = String, Header,
        description = "Required; a replay returns the first answer")),
    responses((status = 201, body = AccountView), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_account(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, true)?;
        let request: CreateAccount = parse(&bytes)?;
        service.write(key, |model| plan_create(model, &request)).await
    };
    finish(run.await)
}

/// The plan that creates an account.
///
/// # Errors
/// `Conflict` when it exists; `Invalid` naming the refused field.
pub fn plan_create(model: &Model, request: &CreateAccount) -> Result<Plan, Error> {
    check_id("id", &request.id)?;
    if model.accounts.contains_key(&request.id) {
        return Err(Error::new("id", ErrorKind::Conflict("the account exists".into())));
    }
    let reference = request.methodology.as_deref().unwrap_or(DEFAULT_METHODOLOGY);
    let entry = model.find_methodology("methodology", reference)?;
    let mut record = AccountRecord { methodology: entry.hash.clone(), ..Default::default() };
    let id = request.id.clone();
    let mut ops = vec![Op::Account { id: id.clone(), methodology: entry.hash.clone() }];
    for (i, p) in request.positions.iter().enumerate() {
        let field = format!("positions[{i}]");
        let instrument = instrument(&format!("{field}.instrument"), &p.instrument)?;
        let size = size(&format!("{field}.size"), p.size)?;
        let entry = p.entry.map(|e| price(&format!("{field}.entry"), e)).transpose()?;
        let funding = funding(&format!("{field}.funding"), &instrument, p.funding)?;
        let position = Position { instrument, size, entry, funding };
        if record.positions.insert(instrument, position).is_some() {
            return Err(Error::invalid(format!("{field}.instrument"), "listed twice"));
        }
    }
    record.positions.retain(|_, p| p.size != 0.0);
    enter_at_mark(model, &entry.engine, &mut record, None)?;
    for p in record.positions.values() {
        let (account, instrument) = (id.clone(), p.instrument.to_string());
        let (size, entry, funding) = (p.size, p.entry, p.funding);
        ops.push(Op::Position { account, instrument, size, entry, funding });
    }
    for (currency, value) in &request.balances {
        let field = format!("balances.{currency}");
        if let Some((code, exact)) = amount(&field, currency, &value.text())? {
            record.balances.insert(code, parse_money(currency, &exact)?);
            let (account, currency) = (id.clone(), code.to_string());
            ops.push(Op::Balance { account, currency, amount: Some(exact) });
        }
    }
    model.check_account(&record)?;
    let view = account_view(model, &id, &record);
    Ok(Plan {
        ops,
        answer: json(StatusCode::CREATED, &view),
        methodology: None,
        market: None,
        scope: Scope::Account { methodology: entry.hash.clone(), account: id },
    })
}

pub(crate) fn existing<'a>(model: &'a Model, id: &str) -> Result<&'a AccountRecord, Error> {
    check_id("id", id)?;
    model.accounts.get(id).ok_or_else(|| Error::new("id", ErrorKind::NotFound))
}

/// Sets the size of a position (0 closes it).
#[utoipa::path(put, path = "/api/accounts/{id}/positions/{instrument}", request_body = SetPosition,
    params(("id" = String, Path), ("instrument" = String, Path),
        ("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_position(
    State(service): State<Arc<Service>>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, true)?;
        let request: SetPosition = parse(&bytes)?;
        service
            .write(key, |model| {
                let mut record = existing(model, &id)?.clone();
                let instrument = instrument("instrument", &name)?;
                let size = size("size", request.size)?;
                let entry = request.entry.map(|e| price("entry", e)).transpose()?;
                let funding = funding("funding", &instrument, request.funding)?;
                if size == 0.0 {
                    record.positions.remove(&instrument);
                } else {
                    let kept = record.positions.get(&instrument);
                    let entry = entry.or(kept.and_then(|p| p.entry));
                    let funding = funding.or(kept.and_then(|p| p.funding));
                    let position = Position { instrument, size, entry, funding };
                    record.positions.insert(instrument, position);
                    let Some(methodology) = model.methodologies.get(&record.methodology) else {
                        panic!("Invariant: a stored account's methodology is stored");
                    };
                    // Only the position written: it is the one this write stores.
                    enter_at_mark(model, &methodology.engine, &mut record, Some(instrument))?;
                }
                model.check_account(&record)?;
                let held = record.positions.get(&instrument);
                let (entry, funding) = (held.and_then(|p| p.entry), held.and_then(|p| p.funding));
                let instrument = instrument.to_string();
                let op = Op::Position { account: id.clone(), instrument, size, entry, funding };
                Ok(account_plan(model, &id, &record, op))
            })
            .await
    };
    finish(run.await)
}

/// Deletes an account, its positions and its balances.
#[utoipa::path(delete, path = "/api/accounts/{id}", params(("id" = String, Path),
        ("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_account(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (_, key) = body_and_key(raw, &headers, &method, &uri, true)?;
        service
            .write(key, |model| {
                let record = existing(model, &id)?;
                Ok(regroup_plan(model, &id, record, Op::DeleteAccount { id: id.clone() }))
            })
            .await
    };
    finish(run.await)
}

/// Moves an account to another stored methodology; refused, with nothing changed, when the
/// account cannot be margined under it.
#[utoipa::path(put, path = "/api/accounts/{id}/methodology", request_body = SetMethodology,
    params(("id" = String, Path),
        ("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_methodology(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, true)?;
        let request: SetMethodology = parse(&bytes)?;
        // Which rules margin an account is a risk parameter: audited like a methodology.
        let subject = format!("{id} -> {}", request.methodology);
        let note = Note::of(&principal.key, "account.methodology", subject, &bytes);
        service
            .write_noted(key, Some(note), |model| {
                let entry = model.find_methodology("methodology", &request.methodology)?;
                let record = AccountRecord {
                    methodology: entry.hash.clone(),
                    ..existing(model, &id)?.clone()
                };
                model.check_account(&record)?;
                let op = Op::AccountMethodology { id: id.clone(), methodology: entry.hash.clone() };
                Ok(regroup_plan(model, &id, &record, op))
            })
            .await
    };
    finish(run.await)
}

/// Sets a collateral balance (0 removes it; negative amounts are refused).
#[utoipa::path(put, path = "/api/accounts/{id}/balances/{currency}", request_body = SetBalance,
    params(("id" = String, Path), ("currency" = String, Path),
        ("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 200, body = AccountView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_balance(
    State(service): State<Arc<Service>>,
    Path((id, currency)): Path<(String, String)>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, true)?;
        let request: SetBalance = parse(&bytes)?;
        service
            .write(key, |model| {
                let mut record = existing(model, &id)?.clone();
                let code: Currency = currency
                    .parse()
                    .map_err(|e: basics::Error| Error::invalid("currency", e.to_string()))?;
                let exact = amount("amount", &currency, &request.amount.text())?;
                match &exact {
                    Some((_, text)) => {
                        record.balances.insert(code, parse_money(&currency, text)?);
                    }
                    None => _ = record.balances.remove(&code),
                }
                model.check_account(&record)?;
                let op = Op::Balance {
                    account: id.clone(),
                    currency: code.to_string(),
                    amount: exact.map(|e| e.1),
                };
                Ok(account_plan(model, &id, &record, op))
            })
            .await
    };
    finish(run.await)
}

/// The plan of a change that moves an account between methodology groups, or out of its own:
/// every group is rebuilt.
fn regroup_plan(model: &Model, id: &str, record: &AccountRecord, op: Op) -> Plan {
    Plan { scope: Scope::Methodologies, ..account_plan(model, id, record, op) }
}

fn account_plan(model: &Model, id: &str, record: &AccountRecord, op: Op) -> Plan {
    Plan {
        ops: vec![op],
        answer: json(StatusCode::OK, &account_view(model, id, record)),
        methodology: None,
        market: None,
        scope: Scope::Account { methodology: record.methodology.clone(), account: id.to_owned() },
    }
}

/// Stores a market snapshot (Ballast's market JSON) and recomputes every account on it.
#[utoipa::path(post, path = "/api/markets", request_body(content = Object,
        description = "Ballast market JSON (docs/formats.md)"),
    params(Force, ("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    responses((status = 202, body = MarketAccepted), (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn push_market(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Query(force): Query<Force>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, false)?;
        let text = body_text(&bytes)?;
        let parsed = parse_market(text)?;
        let note = market_note(&principal, &parsed, &force, &bytes);
        let held = service.published().held_underlyings();
        let plan = |model: &Model| checked_market_plan(model, &parsed, &force, &held);
        service.write_noted(key, Some(note), plan).await
    };
    finish(run.await)
}

/// The audit note of a market push: its valuation time, and the reason of a forced one.
fn market_note(principal: &Principal, parsed: &ParsedMarket, force: &Force, body: &[u8]) -> Note {
    let valuation = &parsed.valuation_time;
    let mode = match force.mode {
        PushMode::Merge => "merged",
        PushMode::Replace => "replacing",
    };
    let subject = match (&force.reason, force.force) {
        (Some(reason), true) => format!("valuation {valuation}, {mode}, forced: {reason}"),
        _ => format!("valuation {valuation}, {mode}"),
    };
    Note::of(&principal.key, "market", subject, body)
}

/// A validated market: the snapshot and its canonical document.
pub struct ParsedMarket {
    snapshot: Arc<market::MarketSnapshot>,
    valuation_time: String,
    stored: Arc<String>,
    document: MarketDocument,
}

/// Parses and validates a market document.
///
/// # Errors
/// `Malformed` or `Invalid`, located in the document.
pub fn parse_market(text: &str) -> Result<ParsedMarket, Error> {
    let document = MarketDocument::from_json(text)?;
    canonical(&document.to_snapshot()?)
}

/// The canonical document of `snapshot`, and the snapshot read back from it: what is served
/// is exactly what a restart will load from the database.
fn canonical(snapshot: &market::MarketSnapshot) -> Result<ParsedMarket, Error> {
    let canonical = MarketDocument::from_snapshot(snapshot);
    let stored = Arc::new(serde_json::to_string(&canonical).unwrap_or_default());
    let snapshot = Arc::new(canonical.to_snapshot()?);
    let valuation_time = canonical.valuation_time.clone();
    Ok(ParsedMarket { snapshot, valuation_time, stored, document: canonical })
}

/// The index price of a Deribit book push.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct DeribitIndex {
    /// `public/get_index_price`'s `index_price`; the book's `estimated_delivery_price` when
    /// absent.
    pub index: Option<f64>,
}

/// Stores a market built from Deribit's `public/get_book_summary_by_currency` result (bare or in
/// its JSON-RPC envelope; SVI fitted per expiry to the mark IVs by
/// `formats::deribit::snapshot_from_book`) and recomputes every account on it.
#[utoipa::path(post, path = "/api/markets/deribit", params(DeribitIndex, Force,
        ("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    request_body(content = Object, description = "Deribit book summary result"),
    responses((status = 202, body = MarketAccepted), (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[allow(clippy::too_many_arguments, reason = "axum extractors, one per part of the request")]
pub async fn push_deribit_market(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Query(index): Query<DeribitIndex>,
    Query(force): Query<Force>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, false)?;
        let text = body_text(&bytes)?;
        let entries: Vec<BookSummaryEntry> = formats::deribit::parse_result(text)?;
        let index = index
            .index
            .map(|index_price| IndexPrice { index_price, estimated_delivery_price: None });
        let book = formats::deribit::snapshot_from_book(&entries, index.as_ref(), None)?;
        let parsed = canonical(&book.snapshot)?;
        let note = market_note(&principal, &parsed, &force, &bytes);
        let held = service.published().held_underlyings();
        let plan = |model: &Model| checked_market_plan(model, &parsed, &force, &held);
        service.write_noted(key, Some(note), plan).await
    };
    finish(run.await)
}

/// Largest relative move of an underlying's index from one accepted market to the next, either
/// way (a doubling or a halving) unless the push is forced with a reason: beyond it a push is
/// far likelier a broken feed (an index of 1e308, a price in cents) than a market.
pub const INDEX_JUMP_MAX: f64 = 1.0;
/// Longest reason a forced push may give, in bytes.
pub const FORCE_REASON_BYTES_MAX: usize = 500;

/// An operator's override of the push checks, with the reason it is recorded under.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct Force {
    /// Accept a market whose index jumps beyond the bound or whose valuation time goes back.
    #[serde(default)]
    pub force: bool,
    /// Why (required with `force`, at most 500 bytes).
    pub reason: Option<String>,
    /// `merge` (the default): the pushed underlyings replace theirs in the current market and
    /// the others are kept; `replace`: the push is the whole market.
    #[serde(default)]
    #[param(inline)]
    pub mode: PushMode,
}

/// How a pushed market meets the current one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PushMode {
    /// The pushed underlyings replace theirs; every other underlying is kept.
    #[default]
    Merge,
    /// The push is the whole market: an underlying it lacks is gone.
    Replace,
}

impl Force {
    /// Whether the checks are overridden.
    ///
    /// # Errors
    /// `Invalid` for `force` without a reason, or a reason too long.
    fn overrides(&self) -> Result<bool, Error> {
        match (&self.reason, self.force) {
            (_, false) => Ok(false),
            (Some(r), true) if !r.trim().is_empty() && r.len() <= FORCE_REASON_BYTES_MAX => {
                Ok(true)
            }
            _ => Err(Error::invalid(
                "reason",
                format!("a forced push needs a reason of 1 to {FORCE_REASON_BYTES_MAX} bytes"),
            )),
        }
    }
}

/// Refuses a market that moves the valuation time back, or moves an underlying's index by more
/// than [`INDEX_JUMP_MAX`], against the last accepted one.
///
/// # Errors
/// `Invalid` naming the field: `valuation_time`, or `underlyings.BTC.index`.
fn check_against_last(model: &Model, market: &ParsedMarket) -> Result<(), Error> {
    let Some(last) = &model.market else { return Ok(()) };
    let (before, now) = (last.snapshot.valuation(), market.snapshot.valuation());
    if now < before {
        let why = format!(
            "goes back from {} to {}: a market never moves time backwards (force with a reason)",
            formats::format_rfc3339(before),
            formats::format_rfc3339(now)
        );
        return Err(Error::invalid("valuation_time", why));
    }
    for (code, underlying) in market.snapshot.underlyings() {
        let Ok(previous) = last.snapshot.underlying(*code) else { continue };
        let ratio = underlying.index() / previous.index();
        if !(1.0 / (1.0 + INDEX_JUMP_MAX)..=1.0 + INDEX_JUMP_MAX).contains(&ratio) {
            let why = format!(
                "moves {:e} from the last market's {:e}, beyond a factor of {} (force with a \
                 reason)",
                underlying.index(),
                previous.index(),
                1.0 + INDEX_JUMP_MAX
            );
            return Err(Error::invalid(format!("underlyings.{code}.index"), why));
        }
    }
    Ok(())
}

/// The plan that stores `market` (merged into the current one unless it replaces it) as the
/// newest, once it passes the checks against the last one and the held underlyings, or is
/// forced with a reason.
///
/// # Errors
/// As [`check_against_last`] and [`check_held`]; `Invalid` naming `reason` for a bad override.
pub fn checked_market_plan(
    model: &Model,
    pushed: &ParsedMarket,
    force: &Force,
    held: &BTreeSet<Currency>,
) -> Result<Plan, Error> {
    let merged = match (force.mode, &model.market) {
        (PushMode::Merge, Some(current)) => Some(merged(pushed, current)?),
        _ => None,
    };
    let market = merged.as_ref().unwrap_or(pushed);
    // A bad override is refused even when there is nothing yet to override.
    if !force.overrides()? {
        check_against_last(model, market)?;
        check_held(market, held)?;
    }
    Ok(market_plan(model, market))
}

/// `pushed` merged into `current`: its underlyings replace theirs, the others are kept.
///
/// # Errors
/// `Invalid` when the merged market is not valid at the push's valuation time (a kept
/// underlying's expiry now in the past, say), naming the field and that it was kept.
fn merged(pushed: &ParsedMarket, current: &MarketEntry) -> Result<ParsedMarket, Error> {
    // The current snapshot's document is the stored one (`canonical` round-trips), without
    // parsing the stored JSON again on every push.
    let document = pushed.document.over(&MarketDocument::from_snapshot(&current.snapshot));
    let snapshot = document.to_snapshot().map_err(|e| {
        let why =
            format!("{} (kept from market #{}: push it anew, or replace)", e.kind, current.seq);
        Error::invalid(e.location, why)
    })?;
    canonical(&snapshot)
}

/// Refuses a market without an underlying that accounts hold: their margin would be unknown
/// from then on.
///
/// # Errors
/// `Invalid` naming `underlyings.<code>`.
fn check_held(market: &ParsedMarket, held: &BTreeSet<Currency>) -> Result<(), Error> {
    match held.iter().find(|code| !market.snapshot.underlyings().contains_key(code)) {
        None => Ok(()),
        Some(code) => Err(Error::invalid(
            format!("underlyings.{code}"),
            "missing, and accounts hold its instruments (force with a reason)",
        )),
    }
}

/// The plan that stores `market` as the newest.
#[must_use]
pub fn market_plan(model: &Model, market: &ParsedMarket) -> Plan {
    let seq = model.market.as_ref().map_or(1, |m| m.seq + 1);
    let accepted = MarketAccepted {
        seq,
        valuation_time: market.valuation_time.clone(),
        instruments: market.snapshot.quotes().len(),
    };
    let indices: std::collections::BTreeMap<String, f64> = (market.snapshot.underlyings().iter())
        .map(|(currency, underlying)| (currency.to_string(), underlying.index()))
        .collect();
    let op = Op::Market {
        seq,
        valuation: market.valuation_time.clone(),
        document: market.stored.as_ref().clone(),
        received_at: i64::try_from(crate::state::unix_secs()).unwrap_or(i64::MAX),
        indices: serde_json::to_string(&indices).unwrap_or_else(|e| {
            panic!("Invariant: a map of names to finite prices serialises to JSON: {e}")
        }),
    };
    let entry = MarketEntry {
        seq,
        snapshot: Arc::clone(&market.snapshot),
        document: Arc::clone(&market.stored),
    };
    Plan {
        ops: vec![op],
        answer: json(StatusCode::ACCEPTED, &accepted),
        methodology: None,
        market: Some(entry),
        scope: Scope::Market(seq),
    }
}

/// Stores a methodology (identified by its canonical hash; storing it again is a no-op).
#[utoipa::path(post, path = "/api/methodologies", request_body = MethodologyUpload,
    responses((status = 201, body = MethodologyView), (status = 200, body = MethodologyView),
        (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_methodology(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, false)?;
        let request: MethodologyUpload = parse(&bytes)?;
        let entry = Arc::new(
            MethodologyEntry::parse(&request.toml)
                .map_err(|e| Error::new(format!("toml.{}", e.field), e.kind))?,
        );
        let subject = format!("{} {}", entry.label(), entry.hash);
        let note = Note::of(&principal.key, "methodology", subject, &bytes);
        service.write_noted(key, Some(note), |model| Ok(methodology_plan(model, &entry))).await
    };
    finish(run.await)
}

/// The plan that stores `entry` (or answers 200 when it is stored already).
#[must_use]
pub fn methodology_plan(model: &Model, entry: &Arc<MethodologyEntry>) -> Plan {
    let view = MethodologyView {
        hash: entry.hash.clone(),
        name: entry.name.clone(),
        version: entry.version.clone(),
        toml: None,
    };
    if model.methodologies.contains_key(&entry.hash) {
        return Plan {
            ops: Vec::new(),
            answer: json(StatusCode::OK, &view),
            methodology: None,
            market: None,
            scope: Scope::Nothing,
        };
    }
    Plan {
        ops: vec![Op::Methodology {
            hash: entry.hash.clone(),
            name: entry.name.clone(),
            version: entry.version.clone(),
            toml: entry.toml.clone(),
        }],
        answer: json(StatusCode::CREATED, &view),
        methodology: Some(Arc::clone(entry)),
        market: None,
        scope: Scope::Methodologies,
    }
}
