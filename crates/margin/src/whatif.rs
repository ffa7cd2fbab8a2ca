//! What-if analysis: hypothetical trades, marginal margin, liquidation prices.
//!
//! Everything here reuses the engine itself, never a linearised shortcut: a what-if re-aggregates
//! the risk arrays, marginal margin differentiates the full engine, and a liquidation price is the
//! root of `equity(m) − MM(m)` over moves `m` of one underlying, each evaluation a full
//! revaluation on the moved market (sticky-moneyness surface).

use std::sync::Arc;

use basics::Currency;
use product::{Portfolio, Position};

use crate::book::ResolvedAccount;
use crate::figures::CurrencyFigures;
use crate::priced::PricedMarket;
use crate::scratch::Scratch;
use crate::{Error, ErrorKind};

/// Largest relative move searched upwards for a liquidation price (+1000 %).
const LIQUIDATION_MOVE_UP_MAX: f64 = 10.0;
/// Largest relative move searched downwards (−99 %).
const LIQUIDATION_MOVE_DOWN_MAX: f64 = -0.99;
/// Grid points per direction used to bracket the first crossing.
const LIQUIDATION_BRACKET_STEPS: usize = 48;
/// Bisection steps after bracketing; 2^-40 of the bracket is far below a price tick.
const LIQUIDATION_BISECTION_STEPS_MAX: usize = 40;

/// An account's figures before and after hypothetical trades.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatIf {
    /// Figures of the current account.
    pub before: Vec<CurrencyFigures>,
    /// Figures after the trades.
    pub after: Vec<CurrencyFigures>,
}

/// Applies `trades` to `account` and recomputes; every traded instrument must have a row.
///
/// # Errors
/// `UnknownInstrument` for a trade without a row; as [`PricedMarket::account_into`] otherwise.
pub fn what_if(
    priced: &PricedMarket,
    account: &ResolvedAccount,
    trades: &[Position],
    scratch: &mut Scratch,
) -> Result<WhatIf, Error> {
    let mut after = account.clone();
    for trade in trades {
        let row = priced.arrays().position(&trade.instrument).ok_or_else(|| {
            Error::new(trade.instrument.to_string(), ErrorKind::UnknownInstrument)
        })?;
        match after.positions.binary_search_by_key(&row, |(r, _)| *r) {
            Ok(i) => after.positions[i].1 += trade.size,
            Err(i) => after.positions.insert(i, (row, trade.size)),
        }
    }
    after.positions.retain(|(_, size)| *size != 0.0);
    let mut before_figures = Vec::new();
    let mut after_figures = Vec::new();
    priced.account_into(
        &account.positions,
        &account.balances,
        scratch,
        None,
        &mut before_figures,
    )?;
    priced.account_into(&after.positions, &after.balances, scratch, None, &mut after_figures)?;
    Ok(WhatIf { before: before_figures, after: after_figures })
}

/// Marginal initial and maintenance margin of each position: ∂IM/∂size and ∂MM/∂size by central
/// differences on the full engine (one-sided where a position would cross zero), in the currency
/// of the position's unit.
///
/// # Errors
/// As [`PricedMarket::account_into`].
pub fn marginal_margin(
    priced: &PricedMarket,
    account: &ResolvedAccount,
) -> Result<Vec<(usize, f64, f64)>, Error> {
    let mut scratch = Scratch::default();
    let mut out = Vec::with_capacity(account.positions.len());
    let mut figures = Vec::new();
    let mut figure = |positions: &[(usize, f64)],
                      currency: Currency,
                      scratch: &mut Scratch|
     -> Result<(f64, f64), Error> {
        figures.clear();
        priced.account_into(positions, &account.balances, scratch, None, &mut figures)?;
        Ok(figures
            .iter()
            .find(|f| f.currency == currency)
            .map_or((0.0, 0.0), |f| (f.initial_margin, f.maintenance_margin)))
    };
    for (i, &(row, size)) in account.positions.iter().enumerate() {
        let currency = priced.arrays().info(row).currency;
        let h = (size.abs() * 1e-4).max(1e-6);
        let mut up = account.positions.clone();
        up[i].1 = size + h;
        let mut down = account.positions.clone();
        down[i].1 = size - h;
        let (im_up, mm_up) = figure(&up, currency, &mut scratch)?;
        let (im_down, mm_down) = figure(&down, currency, &mut scratch)?;
        out.push((row, (im_up - im_down) / (2.0 * h), (mm_up - mm_down) / (2.0 * h)));
    }
    Ok(out)
}

/// Where maintenance margin is breached when one underlying moves alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiquidationPoint {
    /// The underlying moved.
    pub underlying: Currency,
    /// The currency whose MM is tested.
    pub currency: Currency,
    /// Equity minus MM now.
    pub cushion: f64,
    /// Relative move down at which equity meets MM (`Some(0.0)` if already breached; `None`
    /// if no breach down to −99 %).
    pub move_down: Option<f64>,
    /// Relative move up at which equity meets MM (`None` if none up to +1000 %).
    pub move_up: Option<f64>,
    /// Index at the downward breach.
    pub price_down: Option<f64>,
    /// Index at the upward breach.
    pub price_up: Option<f64>,
}

/// Liquidation moves of every underlying of `portfolio` from `priced`'s market, by root search
/// on the full engine: each evaluation prices the moved market for the portfolio's instruments.
///
/// # Errors
/// As the engine on the moved markets.
pub fn liquidation_points(
    priced: &PricedMarket,
    portfolio: &Portfolio,
) -> Result<Vec<LiquidationPoint>, Error> {
    let (engine, market) = (priced.engine(), priced.market());
    let instruments: Vec<_> = portfolio.positions().iter().map(|p| p.instrument).collect();
    let mut underlyings = portfolio.underlyings();
    underlyings.extend(portfolio.balances().keys().filter(|c| market.underlying(**c).is_ok()));
    let cushion = |underlying: Currency, currency: Currency, m: f64| -> Result<f64, Error> {
        let moved = if m == 0.0 {
            Arc::clone(market)
        } else {
            Arc::new(market.with_spot_move(underlying, m)?)
        };
        let moved = engine.price(&moved, &instruments)?;
        let figures = moved.figures(&moved.resolve(portfolio)?)?;
        Ok(figures
            .iter()
            .find(|f| f.currency == currency)
            .map_or(0.0, |f| f.equity - f.maintenance_margin))
    };
    let mut out = Vec::new();
    for underlying in underlyings {
        let currency = match engine.methodology().numeraire {
            methodology::Numeraire::Usd => Currency::USD,
            methodology::Numeraire::Settlement => portfolio
                .positions()
                .iter()
                .find(|p| p.instrument.underlying() == underlying)
                .map_or(underlying, |p| p.instrument.settlement_currency()),
        };
        let f = |m: f64| cushion(underlying, currency, m);
        let now = f(0.0)?;
        let index = market.underlying(underlying)?.index();
        let (move_down, move_up) = if now <= 0.0 {
            (Some(0.0), Some(0.0))
        } else {
            (
                first_crossing(&f, LIQUIDATION_MOVE_DOWN_MAX)?,
                first_crossing(&f, LIQUIDATION_MOVE_UP_MAX)?,
            )
        };
        out.push(LiquidationPoint {
            underlying,
            currency,
            cushion: now,
            move_down,
            move_up,
            price_down: move_down.map(|m| index * (1.0 + m)),
            price_up: move_up.map(|m| index * (1.0 + m)),
        });
    }
    Ok(out)
}

/// The first move from 0 towards `limit` where `f` turns negative (f(0) > 0), refined by
/// bisection. The bracketing grid is denser near zero, where liquidation matters most.
fn first_crossing(f: &dyn Fn(f64) -> Result<f64, Error>, limit: f64) -> Result<Option<f64>, Error> {
    let mut previous = 0.0;
    for step in 1..=LIQUIDATION_BRACKET_STEPS {
        let fraction = step as f64 / LIQUIDATION_BRACKET_STEPS as f64;
        let m = limit * fraction * fraction;
        if f(m)? <= 0.0 {
            let (mut safe, mut breached) = (previous, m);
            for _ in 0..LIQUIDATION_BISECTION_STEPS_MAX {
                let mid = 0.5 * (safe + breached);
                if f(mid)? <= 0.0 { breached = mid } else { safe = mid }
            }
            return Ok(Some(breached));
        }
        previous = m;
    }
    Ok(None)
}
