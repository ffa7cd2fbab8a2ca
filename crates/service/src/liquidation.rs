//! `GET /api/accounts/{id}/liquidation`: an account's liquidation plan under a bundled
//! liquidation profile, on the current market and the account's own methodology, computed by
//! the `liquidation` library exactly as `ballast liquidate` computes it.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use liquidation::{Plan, Profile, Standing};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::{LiquidationView, PlannedTradeView, StandingView};
use crate::error::{Error, ErrorBody};
use crate::reads::account_inputs;
use crate::state::Service;
use crate::writes::{check_id, query};

/// The profile of a plan.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LiquidationQuery {
    /// A bundled liquidation profile: `ballast` (default), `deribit`, `derive`, `dydx-v4`,
    /// `hyperliquid` or `aave-v3`.
    pub profile: Option<String>,
}

fn standing(s: &Standing) -> StandingView {
    StandingView {
        equity_usd: s.equity_usd,
        maintenance_usd: s.maintenance_usd,
        initial_usd: s.initial_usd,
        shortfall_usd: s.shortfall_usd,
        status: s.status.name().to_owned(),
    }
}

/// A plan for the wire.
#[must_use]
pub fn view(account: String, market_seq: i64, profile: &Profile, plan: &Plan) -> LiquidationView {
    let trades = (plan.trades.iter())
        .map(|t| PlannedTradeView {
            round: t.round,
            instrument: t.instrument.to_string(),
            size: t.size,
            price: t.price,
            mark: t.mark,
            cost_usd: t.cost_usd,
            notional_usd: t.notional_usd,
            limit_price: t.limit_price,
            shortfall_after_usd: t.shortfall_after_usd,
        })
        .collect();
    LiquidationView {
        account,
        market_seq: Some(market_seq),
        profile: format!("{}@{}", profile.name, profile.version),
        profile_hash: formats::methodology::hash_hex(&profile.hash()),
        selection: plan.selection.name().to_owned(),
        buffer_scale: plan.buffer_scale,
        breached: plan.breached(),
        reached: plan.reached,
        backstop: plan.backstop,
        rounds: plan.rounds,
        expected_cost_usd: plan.expected_cost_usd,
        fees_usd: plan.fees_usd,
        before: standing(&plan.before),
        after: standing(&plan.after),
        trades,
    }
}

/// The account's liquidation plan: which positions, and how much of each, the profile sells
/// round by round to bring it back to its target, their expected cost against the depth model
/// and the margin they leave (nothing to sell for an account above MM).
///
/// # Errors
/// `NotFound` for an account not stored; `Invalid` naming `profile` for an unknown profile, or
/// the field the engine refused.
#[utoipa::path(get, path = "/api/accounts/{id}/liquidation",
    params(("id" = String, Path), LiquidationQuery),
    responses((status = 200, body = LiquidationView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn liquidation_plan(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    q: Result<Query<LiquidationQuery>, QueryRejection>,
) -> Result<axum::Json<LiquidationView>, Error> {
    check_id("id", &id)?;
    let q = query(q)?;
    let profile = Profile::bundled(q.profile.as_deref().unwrap_or("ballast"))?;
    let (portfolio, entry, market) = account_inputs(&service, &id)?;
    let seq = market.seq;
    let (plan, profile) = tokio::task::spawn_blocking(move || {
        let priced = entry.engine.price_for(&market.snapshot, &portfolio)?;
        let plan = liquidation::plan(&priced, &portfolio, &profile)?;
        Ok::<_, Error>((plan, profile))
    })
    .await
    .map_err(|e| Error::storage("liquidation", e))??;
    Ok(axum::Json(view(id, seq, &profile, &plan)))
}
