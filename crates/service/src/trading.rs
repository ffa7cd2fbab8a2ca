//! Writes with trade economics: trades at a price (premiums paid, futures' P&L realised) and
//! settlement (futures' variation margin at the mark, expired contracts at their settlement
//! price). Both compute the new holdings with the engine's own functions
//! ([`margin::whatif::what_if`], [`margin::PricedMarket::settle`]) on the model's current market,
//! so a what-if's "after" is exactly the account a trade leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use margin::Scratch;
use margin::whatif::Trade;
use product::{Instrument, Portfolio};

use crate::audit::Note;
use crate::auth::Principal;
use crate::dto::{SettlementFlowView, SettlementView, TradesView, WhatIfRequest};
use crate::error::{Error, ErrorBody};
use crate::model::{AccountRecord, Model};
use crate::reads::{fill_views, trades_of};
use crate::state::{Plan, Scope, Service};
use crate::store::Op;
use crate::writes::{account_view, body_and_key, existing, finish, json, parse};

/// Records trades that happened, with their economics: each at its price or at the mark, an
/// option's premium paid from (or received into) its settlement currency's balance, a future's
/// entry averaged or its P&L realised. Refused, with nothing changed, when the account could
/// not be margined afterwards (a premium the balances cannot pay under a methodology without
/// debt, say).
#[utoipa::path(post, path = "/api/accounts/{id}/trades", request_body = WhatIfRequest,
    params(("id" = String, Path),
        ("Idempotency-Key" = String, Header, description = "Required")),
    responses((status = 200, body = TradesView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn record_trades(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, true)?;
        let request: WhatIfRequest = parse(&bytes)?;
        let trades = trades_of(&request)?;
        let cross = request.cross_spread;
        service.write(key, |model| plan_trades(model, &id, &trades, cross)).await
    };
    finish(run.await)
}

/// The plan of [`record_trades`].
///
/// # Errors
/// `NotFound` for an unknown account, `Invalid` without a market or for a refused trade.
pub fn plan_trades(
    model: &Model,
    id: &str,
    trades: &[Trade],
    cross_spread: bool,
) -> Result<Plan, Error> {
    let record = existing(model, id)?;
    let market = (model.market.as_ref())
        .ok_or_else(|| Error::invalid("market", "none yet: trades are valued on the market"))?;
    let Some(methodology) = model.methodologies.get(&record.methodology) else {
        panic!("Invariant: a stored account's methodology is stored");
    };
    let portfolio = record.portfolio()?;
    let universe: BTreeSet<Instrument> = (portfolio.positions().iter().map(|p| p.instrument))
        .chain(trades.iter().map(|t| t.instrument))
        .collect();
    let universe: Vec<Instrument> = universe.into_iter().collect();
    let priced = (methodology.engine.price(&market.snapshot, &universe))
        .map_err(|e| Error::invalid(e.field, format!("cannot be valued: {}", e.kind)))?;
    let mut trades = trades.to_vec();
    if cross_spread {
        crate::reads::cross_spread(&priced, &mut trades)?;
    }
    let what_if = margin::whatif::what_if(&priced, &portfolio, &trades, &mut Scratch::default())?;
    let after = record_of(record, &what_if.portfolio);
    model.check_account(&after)?;
    let answer =
        TradesView { fills: fill_views(&what_if), account: account_view(model, id, &after) };
    Ok(Plan {
        ops: changes(id, record, &after),
        answer: json(StatusCode::OK, &answer),
        methodology: None,
        market: None,
        scope: Scope::Account { methodology: record.methodology.clone(), account: id.to_owned() },
    })
}

/// Settles every account on the current market: each future's variation margin at the mark
/// (its entry reset to the mark), each contract expired at the valuation time at the
/// settlement price the market carries for its expiry. An account that cannot be settled (an
/// expired contract without a settlement price) is named with its reason and left as it was;
/// the others settle.
#[utoipa::path(post, path = "/api/settlements",
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    responses((status = 200, body = SettlementView), (status = 422, body = ErrorBody)))]
pub async fn settle_all(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    method: Method,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let run = async {
        let (bytes, key) = body_and_key(raw, &headers, &method, &uri, false)?;
        let note = Note::of(&principal.key, "settlement", "every account".into(), &bytes);
        service.write_noted(key, Some(note), plan_settlement).await
    };
    finish(run.await)
}

/// The plan of [`settle_all`].
///
/// # Errors
/// `Invalid` without a market.
pub fn plan_settlement(model: &Model) -> Result<Plan, Error> {
    let market = (model.market.as_ref())
        .ok_or_else(|| Error::invalid("market", "none yet: settlement needs one"))?;
    let valuation = market.snapshot.valuation();
    let (mut ops, mut flows, mut refused, mut settled) =
        (Vec::new(), Vec::new(), BTreeMap::new(), 0);
    for (hash, methodology) in &model.methodologies {
        let live: Vec<Instrument> = (model.held(hash).into_iter())
            .filter(|i| i.expiry().is_none_or(|expiry| expiry > valuation))
            .collect();
        let (priced, _) = (methodology.engine.price_valuable(&market.snapshot, &live))
            .map_err(|e| Error::invalid(e.field, format!("cannot be valued: {}", e.kind)))?;
        for (id, record) in model.accounts.iter().filter(|(_, r)| &r.methodology == hash) {
            let outcome = record.portfolio().and_then(|p| Ok(priced.settle(&p)?));
            let done = match outcome {
                Ok(done) => done,
                Err(e) => {
                    refused.insert(id.clone(), e.to_string());
                    continue;
                }
            };
            let after = record_of(record, &done.portfolio);
            if after == *record {
                continue;
            }
            settled += 1;
            ops.extend(changes(id, record, &after));
            flows.extend(done.flows.iter().map(|f| SettlementFlowView {
                account: id.clone(),
                instrument: f.instrument.to_string(),
                kind: f.kind.name().to_owned(),
                size: f.size,
                price: f.price,
                amount: basics::format_scaled(f.amount.raw()),
                currency: f.amount.currency().to_string(),
            }));
        }
    }
    let answer =
        SettlementView { market_seq: market.seq, accounts_settled: settled, flows, refused };
    Ok(Plan {
        ops,
        answer: json(StatusCode::OK, &answer),
        methodology: None,
        market: None,
        scope: Scope::Methodologies,
    })
}

/// `record` holding `portfolio`'s positions and balances.
fn record_of(record: &AccountRecord, portfolio: &Portfolio) -> AccountRecord {
    AccountRecord {
        methodology: record.methodology.clone(),
        positions: portfolio.positions().iter().map(|p| (p.instrument, *p)).collect(),
        balances: portfolio.balances().clone(),
    }
}

/// The stored operations that turn `before` into `after`.
fn changes(id: &str, before: &AccountRecord, after: &AccountRecord) -> Vec<Op> {
    let mut ops = Vec::new();
    let instruments: BTreeSet<&Instrument> =
        before.positions.keys().chain(after.positions.keys()).collect();
    for instrument in instruments {
        let now = after.positions.get(instrument);
        if before.positions.get(instrument) != now {
            ops.push(Op::Position {
                account: id.to_owned(),
                instrument: instrument.to_string(),
                size: now.map_or(0.0, |p| p.size),
                entry: now.and_then(|p| p.entry),
                funding: now.and_then(|p| p.funding),
            });
        }
    }
    let currencies: BTreeSet<_> = before.balances.keys().chain(after.balances.keys()).collect();
    for currency in currencies {
        let now = after.balances.get(currency);
        if before.balances.get(currency) != now {
            ops.push(Op::Balance {
                account: id.to_owned(),
                currency: currency.to_string(),
                amount: now.map(|m| basics::format_scaled(m.raw())),
            });
        }
    }
    ops
}
