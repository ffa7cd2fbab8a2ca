//! Scenario P&L vectors on a linear scenario set, and the scan loss of a sum of them.
//!
//! A venue that commits an account's P&L under every scenario of a standard set lets a third
//! party net that account's risk with its positions at other venues without seeing any of them:
//! the vectors add up, and the scan loss of the sum is the scan loss of the combined book. That
//! holds only where the scan loss is a function of the summed P&L alone, which is what *linear*
//! means here: P&L in USD (cross margin), every scenario weighted 1 and a candidate for the worst,
//! gains kept whole, no extended cells and no grouped aggregation. Every other methodology is
//! refused as a standard set by name.

use basics::Currency;
use methodology::{Numeraire, Offsets};

use crate::book::AccountSlices;
use crate::figures::Worst;
use crate::kernels::accumulate;
use crate::priced::PricedMarket;
use crate::scratch::{Scratch, UnitSummary};
use crate::{Error, ErrorKind};

/// Where each underlying's scenarios lie in a vector: underlyings in the market's order (sorted),
/// each with its scenario count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorLayout {
    /// (underlying, number of scenarios), in vector order.
    pub units: Vec<(Currency, usize)>,
}

impl VectorLayout {
    /// Cells of a whole vector.
    #[must_use]
    pub fn len(&self) -> usize {
        self.units.iter().map(|u| u.1).sum()
    }

    /// Whether the layout has no cell.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The scan loss of a vector, with each underlying's worst scenario and its Euler share.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorScan {
    /// Worst loss after the methodology's cross-underlying offsets (>= 0).
    pub scan: f64,
    /// One entry per underlying of the layout, in its order.
    pub units: Vec<UnitScan>,
}

/// One underlying's part of a [`VectorScan`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitScan {
    /// The underlying.
    pub underlying: Currency,
    /// Its worst scenario: the first of the smallest P&L, in the set's order (the engine's own
    /// rule for ties).
    pub worst: usize,
    /// Its loss before offsets, `max(0, −pnl[worst])`.
    pub loss: f64,
    /// Its Euler share of `scan` (`loss · ∂scan/∂loss`): the shares sum to `scan`, because the
    /// offsets are homogeneous of degree one in the losses.
    pub share: f64,
}

impl UnitScan {
    /// The worst scenario as the engine names it.
    #[must_use]
    pub fn worst(&self) -> Worst {
        Worst::Scenario { underlying: self.underlying, index: self.worst }
    }
}

impl PricedMarket {
    /// Whether this market's methodology is linear (see the module's documentation), and if not
    /// the first reason.
    ///
    /// # Errors
    /// `Methodology` naming what makes the scan loss depend on more than the summed P&L.
    pub fn check_linear(&self) -> Result<(), Error> {
        match &self.nonlinear {
            None => Ok(()),
            Some(what) => Err(Error::new(
                "methodology",
                ErrorKind::Methodology(format!("not linear: {what}")),
            )),
        }
    }

    /// The first reason the scan loss depends on more than the summed P&L, if any: computed
    /// once per priced market ([`PricedMarket::check_linear`] is asked per vector).
    pub(crate) fn nonlinear_reason(&self) -> Option<String> {
        if self.methodology().numeraire != Numeraire::Usd {
            return Some("P&L per settlement currency (numeraire must be usd)".into());
        }
        if self.engine.grouped() {
            return Some("grouped aggregation".into());
        }
        for slot in &self.slots {
            let len = slot.set.len();
            if slot.extended.is_some() {
                return Some(format!("{}: extended cells", slot.currency));
            }
            if slot.gain_fraction != 1.0 {
                return Some(format!("{}: gains reduced", slot.currency));
            }
            if !slot.all_candidates || slot.weights[..len].iter().any(|w| *w != 1.0) {
                return Some(format!("{}: weighted or excluded scenarios", slot.currency));
            }
        }
        None
    }

    /// The layout of this market's vectors.
    #[must_use]
    pub fn vector_layout(&self) -> VectorLayout {
        VectorLayout { units: self.slots.iter().map(|s| (s.currency, s.set.len())).collect() }
    }

    /// Writes an account's scenario P&L in USD (positions, accrued cash and the moves of coin
    /// collateral) into `out`, laid out as [`PricedMarket::vector_layout`]; underlyings the
    /// account does not touch are zero. Each cell has the bits of the engine's own weighted P&L
    /// for the same account, so the scan of one account's vector is the engine's scan loss.
    ///
    /// # Errors
    /// As [`PricedMarket::account_into`]; `OutOfRange` when `out` is not the layout's length;
    /// `Methodology` when the methodology is not linear.
    pub fn scenario_vector_into(
        &self,
        account: AccountSlices<'_>,
        scratch: &mut Scratch,
        out: &mut [f64],
    ) -> Result<(), Error> {
        self.check_linear()?;
        let offsets = self.slot_offsets();
        if out.len() != offsets.last().copied().unwrap_or(0) {
            return Err(Error::new("vector", ErrorKind::OutOfRange("length".into())));
        }
        let positions = account.positions;
        self.resolve_balances(account.balances, scratch)?;
        if !account.entries.is_empty() || !account.fundings.is_empty() {
            self.accrue_entries(positions, account.entries, account.fundings, scratch)?;
        }
        self.collect_units(positions, scratch)?;
        out.fill(0.0);
        let Scratch { pnl, starts, units, balances } = scratch;
        for unit in units.iter() {
            assert!(unit.currency == Currency::USD, "Invariant: cross-margin units are in USD");
            let slot = &self.slots[unit.slot];
            let len = slot.set.len();
            let cells = &mut pnl[unit.pnl_start..unit.pnl_start + slot.cells];
            accumulate(
                cells,
                &positions[unit.start..unit.end],
                self.arrays.all_rows(),
                &starts[unit.start..unit.end],
            );
            let collateral: f64 = balances
                .iter()
                .filter(|b| b.shocked_slot == Some(unit.slot))
                .map(|b| b.amount * b.price)
                .sum();
            let target = &mut out[offsets[unit.slot]..][..len];
            for ((o, c), m) in target.iter_mut().zip(&cells[..len]).zip(&slot.moves) {
                // The engine's weighing with a weight of 1, so the bits are the same.
                *o = (*c + collateral * m) * 1.0;
            }
        }
        if out.iter().any(|c| !c.is_finite()) {
            return Err(Error::new("vector", ErrorKind::NotFinite("scenario P&L".into())));
        }
        Ok(())
    }

    /// The scan loss of `vector` (laid out as [`PricedMarket::vector_layout`]) under this
    /// methodology's offsets, with each underlying's Euler share.
    ///
    /// # Errors
    /// `Methodology` when the methodology is not linear, `OutOfRange` when the length is not
    /// the layout's, `NotFinite` for a NaN or infinite cell.
    pub fn vector_scan(&self, vector: &[f64]) -> Result<VectorScan, Error> {
        self.check_linear()?;
        let offsets = self.slot_offsets();
        if vector.len() != offsets.last().copied().unwrap_or(0) {
            return Err(Error::new("vector", ErrorKind::OutOfRange("length".into())));
        }
        if vector.iter().any(|c| !c.is_finite()) {
            return Err(Error::new("vector", ErrorKind::NotFinite("scenario P&L".into())));
        }
        let mut summaries = Vec::with_capacity(self.slots.len());
        let mut units = Vec::with_capacity(self.slots.len());
        for (i, slot) in self.slots.iter().enumerate() {
            let cells = &vector[offsets[i]..offsets[i + 1]];
            let min = cells.iter().copied().fold(f64::INFINITY, f64::min);
            let worst = cells.iter().position(|c| *c == min).unwrap_or(0);
            let loss = (-min).max(0.0);
            let direction = slot.moves[worst].signum();
            summaries.push(UnitSummary::for_loss(i, loss, worst, direction));
            units.push(UnitScan { underlying: slot.currency, worst, loss, share: loss });
        }
        let scan = self.combined_loss_in(&summaries, Currency::USD);
        if let Offsets::Correlation { credit_cap, .. } = &self.methodology().offsets {
            let floor = (1.0 - credit_cap) * units.iter().map(|u| u.loss).sum::<f64>();
            for (a, unit) in summaries.iter().zip(&mut units) {
                unit.share = if scan > floor && scan > 0.0 {
                    let pull: f64 = summaries.iter().map(|b| self.credit_sign(a, b) * b.loss).sum();
                    a.loss * pull / scan
                } else {
                    (1.0 - credit_cap) * a.loss
                };
            }
        }
        Ok(VectorScan { scan, units })
    }

    /// Start of each slot's cells in a vector, and the total length last.
    fn slot_offsets(&self) -> &[usize] {
        &self.vector_offsets
    }
}
