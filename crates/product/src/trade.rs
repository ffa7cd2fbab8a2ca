//! Trades at a price: what a fill does to a position's size, its entry price and the balances.
//!
//! A future or perpetual exchanges no premium: its profit and loss counts from its entry price.
//! Adding to a position averages the entry (in price for linear contracts, in `1 / price` for
//! inverse ones, so the P&L of the combined position is the sum of its parts); reducing it
//! realises the P&L of the part closed into the settlement currency's balance; a trade through
//! zero closes the old position and opens the rest at the fill price. An option's premium moves
//! from the buyer's balance at once, `size × price` in its settlement currency; its entry is the
//! average premium, for display. Every cash amount is the decimal its float prints as
//! ([`Money::from_f64_decimal`]: 10 × 0.02 is 0.2), rounded down to 1e-18 (towards −∞): a credit
//! is never more, a debit never less, than that amount.

use basics::{Money, Rounding};

use crate::instrument::Settlement;
use crate::portfolio::{check_price, check_size};
use crate::{Error, ErrorKind, Instrument, Portfolio, Position};

/// A trade: `size` of `instrument` bought (positive) or sold (negative) at `price`, in the
/// instrument's price unit ([`Instrument::price_currency`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fill {
    /// The contract traded.
    pub instrument: Instrument,
    /// Signed size in the instrument's amount units.
    pub size: f64,
    /// Price per unit.
    pub price: f64,
}

/// A portfolio after fills, and the cash each fill moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Filled {
    /// The holdings and balances after every fill.
    pub portfolio: Portfolio,
    /// Per fill, in order: the premium paid (negative) or received, or the P&L realised, in the
    /// instrument's settlement currency.
    pub cash: Vec<Money>,
}

/// Profit of `size` from `from` to `to`, in the settlement currency.
#[must_use]
pub fn delta_one_pnl(instrument: &Instrument, size: f64, from: f64, to: f64) -> f64 {
    match instrument.settlement() {
        Settlement::Linear => size * (to - from),
        Settlement::Inverse => size * (1.0 / from - 1.0 / to),
    }
}

impl Portfolio {
    /// The portfolio after `fills`, applied in order.
    ///
    /// # Errors
    /// `NotFinite` or `OutOfRange` for a bad size or price (`fills[i].size`, `fills[i].price`),
    /// `MissingEntry` for a future or perpetual held without an entry price (its P&L basis is
    /// unknown: enter it at the mark first), `OutOfRange` for a cash amount or balance past the
    /// money range, and as [`Portfolio::new`].
    pub fn with_fills(&self, fills: &[Fill]) -> Result<Filled, Error> {
        let mut positions: Vec<Position> = self.positions().to_vec();
        let mut balances = self.balances().clone();
        let mut cash = Vec::with_capacity(fills.len());
        for (index, fill) in fills.iter().enumerate() {
            check_size(fill.size, &format!("fills[{index}].size"))?;
            check_price(fill.price, &format!("fills[{index}].price"))?;
            let at = positions.binary_search_by(|p| p.instrument.cmp(&fill.instrument));
            let held = at.map_or(Position::new(fill.instrument, 0.0), |i| positions[i]);
            let (position, amount) = apply(held, fill, index)?;
            let currency = fill.instrument.settlement_currency();
            let money = Money::from_f64_decimal(amount, currency, Rounding::Down).map_err(|e| {
                Error::new(format!("fills[{index}].price"), ErrorKind::OutOfRange(e.to_string()))
            })?;
            let balance = balances.entry(currency).or_insert_with(|| Money::zero(currency));
            *balance = balance.checked_add(money).map_err(|e| {
                Error::new(format!("balances.{currency}"), ErrorKind::OutOfRange(e.to_string()))
            })?;
            cash.push(money);
            match at {
                Ok(i) => positions[i] = position,
                Err(i) => positions.insert(i, position),
            }
        }
        let balances: Vec<Money> = balances.into_values().collect();
        let portfolio = Portfolio::new(positions, &balances)?;
        Ok(Filled { portfolio, cash })
    }
}

/// One fill on one holding: the new holding and the cash it moves (unrounded).
fn apply(held: Position, fill: &Fill, index: usize) -> Result<(Position, f64), Error> {
    let (s, t, price) = (held.size, fill.size, fill.price);
    let after = s + t;
    check_size(after, &format!("fills[{index}].size"))?;
    if fill.instrument.is_option() {
        let entry = match held.entry {
            _ if s == 0.0 || after * s < 0.0 => Some(price),
            Some(e) if s * t > 0.0 => Some((s * e + t * price) / after),
            kept => kept,
        };
        return Ok((Position { size: after, entry, ..held }, -t * price));
    }
    if s == 0.0 {
        return Ok((Position { size: t, entry: Some(price), ..held }, 0.0));
    }
    let Some(e) = held.entry else {
        let field = format!("positions.{}.entry", fill.instrument);
        return Err(Error::new(field, ErrorKind::MissingEntry));
    };
    if s * t > 0.0 {
        let entry = match fill.instrument.settlement() {
            Settlement::Linear => (s * e + t * price) / after,
            Settlement::Inverse => after / (s / e + t / price),
        };
        return Ok((Position { size: after, entry: Some(entry), ..held }, 0.0));
    }
    let closed = if t.abs() < s.abs() { -t } else { s };
    let realised = delta_one_pnl(&fill.instrument, closed, e, price);
    let entry = if after * s < 0.0 { price } else { e };
    Ok((Position { size: after, entry: Some(entry), ..held }, realised))
}

#[cfg(test)]
mod tests {
    use basics::Currency;

    use super::*;

    fn instrument(name: &str) -> Instrument {
        Instrument::parse(name).unwrap()
    }

    fn usdc(amount: &str) -> Money {
        Money::parse(amount, Currency::USDC, Rounding::Down).unwrap()
    }

    fn fill(name: &str, size: f64, price: f64) -> Fill {
        Fill { instrument: instrument(name), size, price }
    }

    /// Opening, adding and closing in pieces realises exactly the P&L of each piece from the
    /// average entry: buy 1 at 100 and 3 at 200 (average 175), sell 2 at 300 (+250), sell 2 at
    /// 150 (−50): +200 in all, and nothing held.
    #[test]
    fn linear_future_averages_and_realises() {
        let perp = "BTC_USDC-PERPETUAL";
        let base = Portfolio::new(vec![], &[usdc("1000")]).unwrap();
        let opened = base.with_fills(&[fill(perp, 1.0, 100.0), fill(perp, 3.0, 200.0)]).unwrap();
        let held = opened.portfolio.positions()[0];
        assert_eq!((held.size, held.entry), (4.0, Some(175.0)));
        let closed = opened.portfolio.with_fills(&[fill(perp, -2.0, 300.0)]).unwrap();
        assert_eq!(closed.cash, [usdc("250")]);
        let closed = closed.portfolio.with_fills(&[fill(perp, -2.0, 150.0)]).unwrap();
        assert_eq!(closed.cash, [usdc("-50")]);
        assert!(closed.portfolio.positions().is_empty());
        assert_eq!(closed.portfolio.balances()[&Currency::USDC], usdc("1200"));
    }

    /// Inverse contracts average in 1 / price, so the combined position's P&L at any price is
    /// the sum of its two parts' P&L; a flip realises the old position and opens at the fill.
    #[test]
    fn inverse_future_averages_in_reciprocal_price_and_flips() {
        let perp = instrument("BTC-PERPETUAL");
        let base = Portfolio::new(vec![], &[]).unwrap();
        let opened = base
            .with_fills(&[
                fill("BTC-PERPETUAL", 10_000.0, 50_000.0),
                fill("BTC-PERPETUAL", 30_000.0, 60_000.0),
            ])
            .unwrap();
        let held = opened.portfolio.positions()[0];
        let at = 70_000.0;
        let parts = delta_one_pnl(&perp, 10_000.0, 50_000.0, at)
            + delta_one_pnl(&perp, 30_000.0, 60_000.0, at);
        let whole = delta_one_pnl(&perp, held.size, held.entry.unwrap(), at);
        assert!((whole - parts).abs() < 1e-15, "{whole} against {parts}");
        let flipped = opened.portfolio.with_fills(&[fill("BTC-PERPETUAL", -50_000.0, at)]).unwrap();
        let held_after = flipped.portfolio.positions()[0];
        assert_eq!((held_after.size, held_after.entry), (-10_000.0, Some(at)));
        let realised = flipped.cash[0].to_f64();
        assert!((realised - whole).abs() < 1e-15);
        assert_eq!(flipped.cash[0].currency(), Currency::BTC);
    }

    /// An option's premium leaves the buyer's balance as the decimal it prints as (3 × 0.1 is
    /// a debit of 0.30000000000000004, never less); selling receives it.
    #[test]
    fn option_premium_moves_at_once() {
        let call = "BTC_USDC-25DEC26-100000-C";
        let base = Portfolio::new(vec![], &[usdc("10000")]).unwrap();
        let bought = base.with_fills(&[fill(call, 3.0, 1_500.0)]).unwrap();
        assert_eq!(bought.cash, [usdc("-4500")]);
        assert_eq!(bought.portfolio.positions()[0].entry, Some(1_500.0));
        let debit = base.with_fills(&[fill(call, 3.0, 0.1)]).unwrap().cash[0];
        assert_eq!(debit, usdc("-0.30000000000000004"));
        let sold = bought.portfolio.with_fills(&[fill(call, -3.0, 1_700.0)]).unwrap();
        assert!(sold.portfolio.positions().is_empty());
        assert_eq!(sold.portfolio.balances()[&Currency::USDC], usdc("10600"));
    }

    #[test]
    fn bad_fills_name_their_field() {
        let held =
            Portfolio::new(vec![Position::new(instrument("BTC-PERPETUAL"), 1_000.0)], &[]).unwrap();
        let err = held.with_fills(&[fill("BTC-PERPETUAL", 1.0, 50_000.0)]).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.kind),
            ("positions.BTC-PERPETUAL.entry", ErrorKind::MissingEntry)
        );
        let err = held.with_fills(&[fill("ETH-PERPETUAL", 1.0, -5.0)]).unwrap_err();
        assert_eq!(err.field, "fills[0].price");
        let err = held.with_fills(&[fill("ETH-PERPETUAL", f64::NAN, 5.0)]).unwrap_err();
        assert_eq!((err.field.as_str(), err.kind), ("fills[0].size", ErrorKind::NotFinite));
        let bad_entry = Position { entry: Some(f64::INFINITY), ..held.positions()[0] };
        let err = Portfolio::new(vec![bad_entry], &[]).unwrap_err();
        assert_eq!(err.field, "positions[0].entry");
    }
}
