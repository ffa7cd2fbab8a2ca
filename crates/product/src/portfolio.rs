//! Positions and portfolios in canonical form.

use std::collections::{BTreeMap, BTreeSet};

use basics::Currency;
use basics::Money;
use basics::limits::{BALANCES_MAX, POSITIONS_MAX};

use crate::{Error, ErrorKind, Instrument};

/// Largest absolute position size accepted, in the instrument's amount units. Larger numbers are
/// almost certainly unit mistakes and would lose precision in `f64` aggregation.
const POSITION_SIZE_ABS_MAX: f64 = 1e15;

/// Largest entry price accepted, in the instrument's price unit.
const ENTRY_PRICE_MAX: f64 = 1e15;
/// Largest cumulative funding index in absolute value (per unit of size, settlement currency).
pub const FUNDING_INDEX_MAX: f64 = 1e15;

/// A signed holding of one instrument: positive is long, negative is short, in Deribit's amount
/// units for that instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// The contract held.
    pub instrument: Instrument,
    /// Signed size in the instrument's amount units.
    pub size: f64,
    /// The price the position's profit and loss counts from, in the instrument's price unit
    /// (see [`Instrument::price_currency`]): its average entry price, or the mark at which its
    /// variation margin was last settled. A future or perpetual without one is taken as settled
    /// at the current mark (no unrealised P&L); an option's entry is its average premium, shown
    /// beside its value but never counted again, since the premium was paid from a balance.
    pub entry: Option<f64>,
    /// For a perpetual, the venue's cumulative funding index (funding per unit of size, in the
    /// settlement currency: a long pays its rise) up to which its funding has been paid; the
    /// funding accrued since, `-size × (index − funding)`, counts in equity until a settlement
    /// pays it. `None` accrues nothing (a service stamps the current index when it stores one).
    pub funding: Option<f64>,
}

impl Position {
    /// A position without an entry price or a funding index.
    #[must_use]
    pub const fn new(instrument: Instrument, size: f64) -> Position {
        Position { instrument, size, entry: None, funding: None }
    }
}

/// The funding a perpetual position of `size` owes (negative) or is owed since it was paid up to
/// `paid`, at the cumulative funding index `index`: a long pays a rising index.
#[must_use]
pub fn funding_due(size: f64, paid: f64, index: f64) -> f64 {
    -size * (index - paid)
}

/// A validated set of positions and currency balances, in canonical order.
///
/// Positions are sorted by instrument, zero sizes are dropped, and each instrument appears once;
/// balances are keyed by currency. Balances are signed: a negative balance is a debt (Derive's
/// negative cash). Whether a methodology accepts debts is for the margin layer to decide.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Portfolio {
    positions: Vec<Position>,
    balances: BTreeMap<Currency, Money>,
}

impl Portfolio {
    /// Validates and canonicalises positions and balances.
    ///
    /// # Errors
    /// `NotFinite` or `OutOfRange` for a bad size (field `positions[i].size`),
    /// `DuplicateInstrument` when an instrument or a balance currency repeats, `TooMany` past
    /// [`POSITIONS_MAX`] or [`BALANCES_MAX`].
    pub fn new(positions: Vec<Position>, balances: &[Money]) -> Result<Portfolio, Error> {
        if positions.len() > POSITIONS_MAX {
            return Err(Error::new("positions", ErrorKind::TooMany { limit: POSITIONS_MAX }));
        }
        if balances.len() > BALANCES_MAX {
            return Err(Error::new("balances", ErrorKind::TooMany { limit: BALANCES_MAX }));
        }
        let mut seen = BTreeMap::new();
        for (index, position) in positions.iter().enumerate() {
            check_size(position.size, &format!("positions[{index}].size"))?;
            if let Some(entry) = position.entry {
                check_price(entry, &format!("positions[{index}].entry"))?;
            }
            if let Some(funding) = position.funding {
                check_funding(
                    &position.instrument,
                    funding,
                    &format!("positions[{index}].funding"),
                )?;
            }
            if let Some(first) = seen.insert(position.instrument, index) {
                return Err(Error::new(
                    format!("positions[{index}].instrument"),
                    ErrorKind::DuplicateInstrument(format!(
                        "{} (first at positions[{first}])",
                        position.instrument
                    )),
                ));
            }
        }
        let mut balance_map = BTreeMap::new();
        for (index, balance) in balances.iter().enumerate() {
            if balance_map.insert(balance.currency(), *balance).is_some() {
                return Err(Error::new(
                    format!("balances[{index}].currency"),
                    ErrorKind::DuplicateInstrument(balance.currency().to_string()),
                ));
            }
        }
        balance_map.retain(|_, amount| amount.raw() != 0);
        let mut positions: Vec<Position> =
            positions.into_iter().filter(|p| p.size != 0.0).collect();
        positions.sort_by_key(|p| p.instrument);
        Ok(Portfolio { positions, balances: balance_map })
    }

    /// The positions, sorted by instrument, without zero sizes.
    #[must_use]
    pub fn positions(&self) -> &[Position] {
        &self.positions
    }

    /// The currency balances, without zeros.
    #[must_use]
    pub fn balances(&self) -> &BTreeMap<Currency, Money> {
        &self.balances
    }

    /// Whether the portfolio holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.balances.is_empty()
    }

    /// The size held in `instrument`, zero if none.
    #[must_use]
    pub fn size_of(&self, instrument: &Instrument) -> f64 {
        self.positions
            .binary_search_by(|p| p.instrument.cmp(instrument))
            .map_or(0.0, |i| self.positions[i].size)
    }

    /// The underlyings of all positions, in order.
    #[must_use]
    pub fn underlyings(&self) -> BTreeSet<Currency> {
        self.positions.iter().map(|p| p.instrument.underlying()).collect()
    }

    /// The portfolio with every position size multiplied by `factor` (balances unchanged).
    ///
    /// # Errors
    /// When a scaled size is out of range or `factor` is not finite.
    pub fn scaled(&self, factor: f64) -> Result<Portfolio, Error> {
        let positions = self.positions.iter().map(|p| Position { size: p.size * factor, ..*p });
        Portfolio::new(positions.collect(), &self.balances.values().copied().collect::<Vec<_>>())
    }
}

/// A price must be finite, positive and below [`ENTRY_PRICE_MAX`].
pub(crate) fn check_price(price: f64, field: &str) -> Result<(), Error> {
    if !price.is_finite() {
        return Err(Error::new(field, ErrorKind::NotFinite));
    }
    if price <= 0.0 || price > ENTRY_PRICE_MAX {
        let rule = format!("0 < price <= {ENTRY_PRICE_MAX:e}, got {price:e}");
        return Err(Error::new(field, ErrorKind::OutOfRange(rule)));
    }
    Ok(())
}

/// A funding index of `instrument`: only a perpetual has one, finite and within
/// ±[`FUNDING_INDEX_MAX`] (it may be negative: shorts pay when it falls). The one check of
/// positions, market quotes and the service's writes.
///
/// # Errors
/// `OutOfRange` naming `field` for anything but a perpetual or beyond the bound; `NotFinite`.
pub fn check_funding(instrument: &Instrument, index: f64, field: &str) -> Result<(), Error> {
    if !instrument.is_perpetual() {
        let why = "only a perpetual pays funding".to_owned();
        return Err(Error::new(field, ErrorKind::OutOfRange(why)));
    }
    if !index.is_finite() {
        return Err(Error::new(field, ErrorKind::NotFinite));
    }
    if index.abs() > FUNDING_INDEX_MAX {
        let rule = format!("|index| <= {FUNDING_INDEX_MAX:e}, got {index:e}");
        return Err(Error::new(field, ErrorKind::OutOfRange(rule)));
    }
    Ok(())
}

pub(crate) fn check_size(size: f64, field: &str) -> Result<(), Error> {
    if !size.is_finite() {
        return Err(Error::new(field, ErrorKind::NotFinite));
    }
    if size.abs() > POSITION_SIZE_ABS_MAX {
        let rule = format!("|size| <= {POSITION_SIZE_ABS_MAX:e}, got {size:e}");
        return Err(Error::new(field, ErrorKind::OutOfRange(rule)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use basics::Rounding;

    fn position(name: &str, size: f64) -> Position {
        Position::new(Instrument::parse(name).unwrap(), size)
    }

    #[test]
    fn canonical_order_and_zero_removal() {
        let a = Portfolio::new(
            vec![position("BTC-27DEC24-60000-C", -1.0), position("BTC-PERPETUAL", 10.0)],
            &[],
        )
        .unwrap();
        let b = Portfolio::new(
            vec![
                position("BTC-PERPETUAL", 10.0),
                position("ETH-PERPETUAL", 0.0),
                position("BTC-27DEC24-60000-C", -1.0),
            ],
            &[Money::zero(Currency::USDC)],
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.positions()[0].instrument.to_string(), "BTC-PERPETUAL");
    }

    #[test]
    fn rejects_bad_positions_naming_the_field() {
        let err = Portfolio::new(vec![position("BTC-PERPETUAL", f64::NAN)], &[]).unwrap_err();
        assert_eq!((err.field.as_str(), err.kind), ("positions[0].size", ErrorKind::NotFinite));
        let dup = vec![position("BTC-PERPETUAL", 1.0), position("BTC-PERPETUAL", 2.0)];
        let err = Portfolio::new(dup, &[]).unwrap_err();
        assert_eq!(err.field, "positions[1].instrument");
        let usd = Money::parse("1", Currency::USDC, Rounding::Down).unwrap();
        let err = Portfolio::new(vec![], &[usd, usd]).unwrap_err();
        assert_eq!(err.field, "balances[1].currency");
    }
}
