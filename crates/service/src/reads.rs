//! Read endpoints: stored accounts, the health list, margin reports, what-ifs and risk arrays.
//! Reads use the published state (never the writer's lock), so they run while a recompute does.

use std::cell::RefCell;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use margin::Scratch;
use margin::report::{ReportOptions, margin_report};
use margin::whatif::{Trade, WhatIf};
use methodology::VolShockKind;
use serde::Deserialize;

use crate::auth::Principal;
use crate::compute::{Group, Health, LiveState, Status};
use crate::dto::{
    AccountView, FiguresView, FillView, HealthList, HealthRow, MarginView, MethodologyView,
    PreTradeView, RiskArrayView, RiskCell, RiskUnit, StaleView, WhatIfRequest, WhatIfView, finite,
    status_name,
};
use crate::error::{Error, ErrorBody, ErrorKind};
use crate::model::{MarketEntry, MethodologyEntry};
use crate::state::Service;
use crate::writes::{account_view, body, check_id, instrument, parse, price, size};

/// Largest page of the health list.
const PAGE_ACCOUNTS_MAX: usize = 1_000;
/// Default page of the health list.
const PAGE_ACCOUNTS_DEFAULT: usize = 50;
/// Longest search text of the health list (an account id is at most 64 characters).
const SEARCH_CHARS_MAX: usize = 64;

thread_local! {
    /// What-if buffers, one per worker thread, so that a what-if allocates nothing for them.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// What an account's single-account reads price: its portfolio, its methodology's engine and
/// the current market, taken under one read of the model.
///
/// # Errors
/// `NotFound` for an account not stored; `Invalid` for a methodology not stored or no market.
pub(crate) fn account_inputs(
    service: &Service,
    id: &str,
) -> Result<(product::Portfolio, Arc<MethodologyEntry>, MarketEntry), Error> {
    let model = service.model();
    let record = model.accounts.get(id).ok_or_else(|| not_found(id))?;
    let entry = model.methodologies.get(&record.methodology).cloned();
    let entry = entry.ok_or_else(|| Error::invalid("methodology", "not stored"))?;
    let market = model.market.clone().ok_or_else(|| Error::invalid("market", "none yet"))?;
    Ok((record.portfolio()?, entry, market))
}

fn not_found(id: &str) -> Error {
    Error::new(format!("id {id}"), ErrorKind::NotFound)
}

/// The row of account `i` of `group`.
#[must_use]
pub fn health_row(group: &Group, i: usize) -> HealthRow {
    let Health { ratio, status } = group.health[i];
    let views = |lines: &[margin::RefreshLine]| -> Vec<FiguresView> {
        lines.iter().map(|l| FiguresView::of(&l.figures)).collect()
    };
    let (figures, error, stale) = match (group.figures(i), group.stale.get(&i)) {
        (Ok(lines), _) => (views(lines), None, None),
        (Err(why), None) => (Vec::new(), Some(why), None),
        (Err(why), Some(kept)) => {
            let then = StaleView {
                market_seq: kept.market_seq,
                status: status_name(kept.health.status),
                health: finite(kept.health.ratio),
            };
            (views(&kept.lines), Some(why), Some(then))
        }
    };
    HealthRow {
        id: group.book.ids[i].clone(),
        status: status_name(status),
        health: finite(ratio),
        figures,
        error,
        stale,
    }
}

/// An account's stored state.
///
/// # Errors
/// The JSON error of the first refused field.
#[utoipa::path(get, path = "/api/accounts/{id}", params(("id" = String, Path)),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody)))]
pub async fn get_account(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<axum::Json<AccountView>, Error> {
    check_id("id", &id)?;
    let model = service.model();
    let record = model.accounts.get(&id).ok_or_else(|| not_found(&id))?;
    Ok(axum::Json(account_view(&model, &id, record)))
}

/// Paging of the health list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct Page {
    /// Accounts to skip.
    #[serde(default)]
    pub offset: usize,
    /// Accounts to return (default 50, at most 1,000).
    pub limit: Option<usize>,
    /// Only accounts whose id contains this text (case-sensitive, at most 64 characters).
    #[param(max_length = 64)]
    pub q: Option<String>,
}

/// Accounts ordered by health (equity / MM), weakest first; unpriced accounts come first.
///
/// The counts cover every account; the rows only those the key may see (every account for the
/// risk roles, its own for an `account` key, none for a `viewer`: margin calls are private).
///
/// With `q`, the rows and counts cover the matching accounts only.
///
/// # Errors
/// `Malformed` for a bad `offset`, `limit` or `q`.
#[utoipa::path(get, path = "/api/accounts", params(Page),
    responses((status = 200, body = HealthList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn list_accounts(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<axum::Json<HealthList>, Error> {
    let page = crate::writes::query(page)?;
    let q = page.q.unwrap_or_default();
    if q.chars().count() > SEARCH_CHARS_MAX {
        let why = format!("at most {SEARCH_CHARS_MAX} characters");
        return Err(Error::new("q", ErrorKind::Malformed(why)));
    }
    let published = service.published();
    let matching = |id: &str| id.contains(q.as_str());
    let visible = |id: &str| principal.reads_account(id) && matching(id);
    Ok(axum::Json(health_list(&published, page.offset, page.limit, &matching, &visible)))
}

fn health_list(
    published: &LiveState,
    offset: usize,
    limit: Option<usize>,
    counted: &dyn Fn(&str) -> bool,
    visible: &dyn Fn(&str) -> bool,
) -> HealthList {
    let limit = limit.unwrap_or(PAGE_ACCOUNTS_DEFAULT).min(PAGE_ACCOUNTS_MAX);
    let groups: Vec<&Arc<Group>> = published.groups.values().collect();
    let mut order: Vec<(f64, usize, usize)> = Vec::new();
    let (mut total, mut im, mut mm) = (0, 0, 0);
    for (g, group) in groups.iter().enumerate() {
        for (i, Health { ratio, status }) in group.health.iter().enumerate() {
            let id = &group.book.ids[i];
            if !counted(id) {
                continue;
            }
            total += 1;
            match status {
                Status::ImBreach => im += 1,
                Status::MmBreach => mm += 1,
                _ => {}
            }
            if !visible(id) {
                continue;
            }
            let key = if *status == Status::Unpriced { f64::NEG_INFINITY } else { *ratio };
            order.push((key, g, i));
        }
    }
    let end = offset.saturating_add(limit).min(order.len());
    if end < order.len() {
        order.select_nth_unstable_by(end, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        order.truncate(end);
    }
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let accounts = order.iter().skip(offset).map(|&(_, g, i)| health_row(groups[g], i)).collect();
    HealthList {
        market_seq: published.market_seq,
        total,
        im_breaches: im,
        mm_breaches: mm,
        accounts,
    }
}

/// The full margin report of an account: figures, worst scenario, add-ons, attribution, the
/// standard-margin baseline and liquidation distances.
///
/// # Errors
/// The JSON error of the first refused field.
#[utoipa::path(get, path = "/api/accounts/{id}/margin", params(("id" = String, Path)),
    responses((status = 200, body = MarginView), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn get_margin(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<axum::Json<MarginView>, Error> {
    check_id("id", &id)?;
    let (portfolio, entry, market) = account_inputs(&service, &id)?;
    let standard = service.standard.clone();
    let report = tokio::task::spawn_blocking(move || {
        let options = ReportOptions {
            greek_approximation: false,
            baseline: Some(standard),
            marginal: true,
            liquidation: true,
        };
        let priced = entry.engine.price_for(&market.snapshot, &portfolio)?;
        margin_report(&priced, &portfolio, &options)
    })
    .await
    .map_err(|e| Error::storage("report", e))??;
    // The report's figures are already rounded as the oracle attests them.
    let Health { ratio, status } = Health::of_quantised(&report.quantised);
    let document = formats::report::ReportDocument::from_report(&report);
    Ok(axum::Json(MarginView {
        account: id,
        market_seq: Some(market.seq),
        status: status_name(status),
        health: finite(ratio),
        report: document,
    }))
}

/// Margin before and after hypothetical trades, on the current risk arrays: each trade at its
/// price or at the mark, options' premiums paid from the balances, futures averaging their entry
/// or realising P&L, exactly as `POST .../trades` would leave the account.
///
/// # Errors
/// The JSON error of the first refused field.
#[utoipa::path(post, path = "/api/accounts/{id}/what-if", request_body = WhatIfRequest,
    params(("id" = String, Path)),
    responses((status = 200, body = WhatIfView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn what_if(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<WhatIfView>, Error> {
    let checked = pre_trade_of(&service, id, raw)?;
    Ok(axum::Json(checked.what_if))
}

/// Whether the venue should accept hypothetical trades: accepted when equity after covers IM
/// after in every currency (rounded as attested), or when the trades reduce no currency's excess
/// of equity over IM; refused with the currency and figures otherwise.
///
/// # Errors
/// The JSON error of the first refused field.
#[utoipa::path(post, path = "/api/accounts/{id}/pre-trade", request_body = WhatIfRequest,
    params(("id" = String, Path)),
    responses((status = 200, body = PreTradeView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pre_trade(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<PreTradeView>, Error> {
    Ok(axum::Json(pre_trade_of(&service, id, raw)?))
}

/// The trades of a request.
///
/// # Errors
/// `Invalid` naming `trades[i].instrument`, `.size` or `.price`.
pub fn trades_of(request: &WhatIfRequest) -> Result<Vec<Trade>, Error> {
    let mut trades = Vec::with_capacity(request.trades.len());
    for (i, t) in request.trades.iter().enumerate() {
        let instrument = instrument(&format!("trades[{i}].instrument"), &t.instrument)?;
        let size = size(&format!("trades[{i}].size"), t.size)?;
        let price = t.price.map(|p| price(&format!("trades[{i}].price"), p)).transpose()?;
        trades.push(Trade { instrument, size, price });
    }
    Ok(trades)
}

/// Prices every trade of `trades` given without a price at the mark crossing half the spread
/// ([`margin::PricedMarket::crossing_price`]).
///
/// # Errors
/// `Invalid` naming `trades[i].instrument` when it cannot be priced so.
pub fn cross_spread(priced: &margin::PricedMarket, trades: &mut [Trade]) -> Result<(), Error> {
    for (i, t) in trades.iter_mut().enumerate().filter(|(_, t)| t.price.is_none()) {
        let price = priced.crossing_price(&t.instrument, t.size);
        let price = price
            .map_err(|e| Error::invalid(format!("trades[{i}].instrument"), e.kind.to_string()))?;
        t.price = Some(price);
    }
    Ok(())
}

/// The fills of a what-if, for the wire.
#[must_use]
pub fn fill_views(what_if: &WhatIf) -> Vec<FillView> {
    (what_if.fills.iter().zip(&what_if.cash))
        .map(|(f, cash)| FillView {
            instrument: f.instrument.to_string(),
            size: f.size,
            price: f.price,
            cash: basics::format_scaled(cash.raw()),
            currency: cash.currency().to_string(),
        })
        .collect()
}

fn pre_trade_of(
    service: &Service,
    id: String,
    raw: Result<Bytes, BytesRejection>,
) -> Result<PreTradeView, Error> {
    let request: WhatIfRequest = parse(&body(raw)?)?;
    let mut trades = trades_of(&request)?;
    let published = service.published();
    let (group, _) = published.find(&id).ok_or_else(|| not_found(&id))?;
    let priced = group.priced.as_ref().map_err(|why| Error::invalid("market", why.clone()))?;
    if request.cross_spread {
        cross_spread(priced, &mut trades)?;
    }
    let portfolio = {
        let model = service.model();
        model.accounts.get(&id).ok_or_else(|| not_found(&id))?.portfolio()?
    };
    let checked = SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        margin::whatif::pre_trade(priced, &portfolio, &trades, &mut scratch)
    })?;
    let what_if = WhatIfView {
        account: id,
        fills: fill_views(&checked.what_if),
        market_seq: published.market_seq,
        before: checked.what_if.before.iter().map(FiguresView::of).collect(),
        after: checked.what_if.after.iter().map(FiguresView::of).collect(),
    };
    Ok(PreTradeView { accepted: checked.accepted, reason: checked.reason, what_if })
}

/// The account's P&L under every scenario, with each scenario's price and vol move.
///
/// # Errors
/// The JSON error of the first refused field.
#[utoipa::path(get, path = "/api/accounts/{id}/risk-array", params(("id" = String, Path)),
    responses((status = 200, body = RiskArrayView), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn risk_array(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Result<axum::Json<RiskArrayView>, Error> {
    let published = service.published();
    let (group, i) = published.find(&id).ok_or_else(|| not_found(&id))?;
    let priced = group.priced.as_ref().map_err(|why| Error::invalid("market", why.clone()))?;
    // An account the market cannot value has no risk array: never an empty, partial one.
    group.figures(i).map_err(|why| Error::invalid(format!("id {id}"), why))?;
    let engine = priced.engine();
    let (figures, detail) = priced.account(&group.book.accounts.resolved(i))?;
    let units = detail
        .units
        .iter()
        .map(|u| {
            let shock = engine.methodology().vol_shock_for(u.underlying);
            let kind = match shock.kind {
                VolShockKind::Relative => "relative",
                VolShockKind::Absolute => "absolute",
            };
            let index = (priced.market().underlying(u.underlying))
                .map_or(f64::NAN, market::UnderlyingMarket::index);
            let described = (priced.arrays().scenario_sets())
                .get(&u.underlying)
                .map(formats::report::describe_scenarios)
                .unwrap_or_default();
            RiskUnit {
                underlying: u.underlying.to_string(),
                currency: u.currency.to_string(),
                index,
                worst: u.worst,
                loss: u.loss,
                vol_shock_kind: kind.to_owned(),
                vol_shock_up: shock.up,
                vol_shock_down: shock.down,
                vol_shock_reference_days: shock.reference_days,
                scenarios: described
                    .into_iter()
                    .zip(&u.pnl)
                    .map(|(s, pnl)| RiskCell {
                        price: index * (1.0 + s.spot_move),
                        spot_move: s.spot_move,
                        vol: s.vol,
                        kind: s.kind,
                        weight: s.weight,
                        pnl: *pnl,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(axum::Json(RiskArrayView {
        account: id,
        market_seq: published.market_seq,
        valuation_time: formats::format_rfc3339(priced.market().valuation()),
        figures: figures.iter().map(FiguresView::of).collect(),
        units,
    }))
}

/// Stored methodologies.
#[utoipa::path(get, path = "/api/methodologies",
    responses((status = 200, body = Vec<MethodologyView>)))]
pub async fn list_methodologies(
    State(service): State<Arc<Service>>,
) -> axum::Json<Vec<MethodologyView>> {
    let model = service.model();
    let views = model
        .methodologies
        .values()
        .map(|m| MethodologyView {
            hash: m.hash.clone(),
            name: m.name.clone(),
            version: m.version.clone(),
            toml: None,
        })
        .collect();
    axum::Json(views)
}

/// One methodology with its TOML, by hash, `name@version` or unique name.
///
/// # Errors
/// The JSON error of the first refused field.
#[utoipa::path(get, path = "/api/methodologies/{reference}", params(("reference" = String, Path)),
    responses((status = 200, body = MethodologyView), (status = 422, body = ErrorBody)))]
pub async fn get_methodology(
    State(service): State<Arc<Service>>,
    Path(reference): Path<String>,
) -> Result<axum::Json<MethodologyView>, Error> {
    let entry = service.model().find_methodology("reference", &reference)?;
    Ok(axum::Json(MethodologyView {
        hash: entry.hash.clone(),
        name: entry.name.clone(),
        version: entry.version.clone(),
        toml: Some(entry.toml.clone()),
    }))
}

/// The newest market snapshot (canonical Ballast market JSON).
#[utoipa::path(get, path = "/api/markets/latest",
    responses((status = 200, description = "Ballast market JSON"),
        (status = 404, body = ErrorBody)))]
pub async fn latest_market(State(service): State<Arc<Service>>) -> Response {
    let market = service.model().market.clone();
    match market {
        Some(m) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            m.document.as_ref().clone(),
        )
            .into_response(),
        None => Error::new("market", ErrorKind::NotFound).into_response(),
    }
}
