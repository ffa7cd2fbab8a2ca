//! What-if analysis: hypothetical trades, marginal margin, liquidation prices.
//!
//! Everything here reuses the engine itself, never a linearised shortcut: a what-if re-aggregates
//! the risk arrays, marginal margin differentiates the full engine, and a liquidation price is the
//! root of `equity(m) − MM(m)` over moves `m` of one underlying, each evaluation a full
//! revaluation on the moved market (sticky-moneyness surface).

use std::sync::Arc;

use basics::{Currency, Money};
use product::{Fill, Instrument, Portfolio};

use crate::book::{AccountSlices, ResolvedAccount};
use crate::figures::CurrencyFigures;
use crate::priced::PricedMarket;
use crate::report::Quantised;
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

/// A hypothetical trade: a size, at a price or, without one, at the engine's mark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    /// The contract traded.
    pub instrument: Instrument,
    /// Signed size in the instrument's amount units.
    pub size: f64,
    /// Price per unit in the instrument's price unit; the mark when absent.
    pub price: Option<f64>,
}

/// An account's figures before and after hypothetical trades.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatIf {
    /// Figures of the current account.
    pub before: Vec<CurrencyFigures>,
    /// Figures after the trades, with their premiums paid and P&L realised.
    pub after: Vec<CurrencyFigures>,
    /// The trades as filled (at their price, or at the mark).
    pub fills: Vec<Fill>,
    /// Per fill, the cash it moved in its settlement currency: premium paid (negative) or
    /// received, P&L realised.
    pub cash: Vec<Money>,
    /// The portfolio the trades would leave.
    pub portfolio: Portfolio,
}

/// Applies `trades` to `portfolio` with their economics (options' premiums from the balances,
/// futures averaging their entry or realising P&L, see [`Portfolio::with_fills`]) and margins
/// the result, on the same engine as the account itself. Futures held without an entry price
/// are first entered at the mark, which changes no figure.
///
/// # Errors
/// `UnknownInstrument` naming `trades[i].instrument` for a trade outside the universe priced;
/// `Portfolio` for a fill the product layer refuses; as [`PricedMarket::account_into`].
pub fn what_if(
    priced: &PricedMarket,
    portfolio: &Portfolio,
    trades: &[Trade],
    scratch: &mut Scratch,
) -> Result<WhatIf, Error> {
    let (mut what_if, after) = traded(priced, portfolio, trades, scratch)?;
    what_if.after = after?;
    Ok(what_if)
}

/// A what-if with its "after" figures apart: the trades are valid and the account is valued
/// before them, but the account they leave may not be margined (a balance gone negative under a
/// methodology without debt).
fn traded(
    priced: &PricedMarket,
    portfolio: &Portfolio,
    trades: &[Trade],
    scratch: &mut Scratch,
) -> Result<(WhatIf, Result<Vec<CurrencyFigures>, Error>), Error> {
    let mut fills = Vec::with_capacity(trades.len());
    for (i, trade) in trades.iter().enumerate() {
        let price = match trade.price {
            Some(price) => price,
            None => priced
                .mark(&trade.instrument)
                .map_err(|e| Error { field: format!("trades[{i}].instrument"), ..e })?,
        };
        fills.push(Fill { instrument: trade.instrument, size: trade.size, price });
    }
    let traded = fills.iter().map(|f| f.instrument).collect();
    let funded = priced.funded(&priced.entered(portfolio)?, &traded)?;
    let mut filled = funded.with_fills(&fills)?;
    // A perpetual opened by the trades starts paid up to the current funding index.
    filled.portfolio = priced.entered(&filled.portfolio)?;
    let mut before = Vec::new();
    priced.account_into(priced.resolve(portfolio)?.slices(), scratch, None, &mut before)?;
    let account = priced.resolve(&filled.portfolio)?;
    let mut after = Vec::new();
    let after = priced.account_into(account.slices(), scratch, None, &mut after).map(|()| after);
    let what_if =
        WhatIf { before, after: Vec::new(), fills, cash: filled.cash, portfolio: filled.portfolio };
    Ok((what_if, after))
}

/// A pre-trade check's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PreTrade {
    /// The figures before and after (none after when the account they leave cannot be
    /// margined).
    pub what_if: WhatIf,
    /// Whether the venue should accept the trades.
    pub accepted: bool,
    /// Why not, when refused: the currency and the figures that decided it.
    pub reason: Option<String>,
}

/// Decides whether `trades` may be accepted, on the rounded money the oracle attests: when every
/// currency's equity after covers its IM after, or when the trades leave no currency with less
/// excess (equity − IM) than before (a trade that reduces risk is never refused, even in an
/// account already below IM, unless its price eats the margin it frees). Trades that leave a
/// balance the methodology refuses (a premium or a realised loss beyond the balance, under a
/// methodology without debt) are refused with that reason.
///
/// # Errors
/// As [`what_if`], and figures beyond the range of money.
pub fn pre_trade(
    priced: &PricedMarket,
    portfolio: &Portfolio,
    trades: &[Trade],
    scratch: &mut Scratch,
) -> Result<PreTrade, Error> {
    let (mut what_if, after) = traded(priced, portfolio, trades, scratch)?;
    match after {
        Ok(after) => what_if.after = after,
        // The account the trades leave cannot be margined: refused, with the engine's reason.
        Err(
            e @ Error {
                kind: ErrorKind::NegativeCollateral | ErrorKind::CollateralNotAccepted, ..
            },
        ) => {
            let reason = Some(format!("{e}: the trades leave an account that cannot be margined"));
            return Ok(PreTrade { what_if, accepted: false, reason });
        }
        Err(e) => return Err(e),
    }
    let mut reason = None;
    for after in &what_if.after {
        let q = Quantised::of(after)?;
        let excess = q.equity.raw() - q.initial_margin.raw();
        if excess >= 0 {
            continue;
        }
        let before = match what_if.before.iter().find(|f| f.currency == after.currency) {
            Some(f) => {
                let b = Quantised::of(f)?;
                b.equity.raw() - b.initial_margin.raw()
            }
            None => 0,
        };
        if excess < before {
            reason = Some(format!(
                "{}: equity after {} below initial margin after {}, and the trades reduce \
                 the excess from {} to {}",
                after.currency,
                q.equity,
                q.initial_margin,
                basics::format_scaled(before),
                basics::format_scaled(excess),
            ));
            break;
        }
    }
    Ok(PreTrade { what_if, accepted: reason.is_none(), reason })
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
        let slices = AccountSlices { positions, ..account.slices() };
        priced.account_into(slices, scratch, None, &mut figures)?;
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
/// Futures held without an entry price are entered at the current mark first, so that their
/// P&L moves equity as the market moves away from it.
///
/// # Errors
/// As the engine on the moved markets.
pub fn liquidation_points(
    priced: &PricedMarket,
    portfolio: &Portfolio,
) -> Result<Vec<LiquidationPoint>, Error> {
    let (engine, market) = (priced.engine(), priced.market());
    let portfolio = &priced.entered(portfolio)?;
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
