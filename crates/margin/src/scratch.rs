//! Per-thread scratch space of the aggregation: reused between accounts, so that a warm
//! refresh allocates nothing per account.

use basics::Currency;

use crate::addons::UnitSums;

/// Reusable buffers for [`crate::PricedMarket::account_into`].
#[derive(Debug, Default)]
pub struct Scratch {
    pub(crate) pnl: Vec<f64>,
    pub(crate) starts: Vec<usize>,
    pub(crate) units: Vec<UnitSummary>,
    pub(crate) balances: Vec<Collateral>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct UnitSummary {
    pub(crate) slot: usize,
    pub(crate) currency: Currency,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) pnl_start: usize,
    pub(crate) loss: f64,
    pub(crate) worst: usize,
    pub(crate) direction: f64,
    pub(crate) sums: UnitSums,
    /// Σ size · base value of the unit's positions (their contribution to equity).
    pub(crate) value: f64,
}

impl UnitSummary {
    /// A USD unit of `slot` that only carries a loss, its worst scenario and that scenario's
    /// direction: what the offsets read.
    pub(crate) fn for_loss(slot: usize, loss: f64, worst: usize, direction: f64) -> UnitSummary {
        UnitSummary {
            slot,
            currency: Currency::USD,
            start: 0,
            end: 0,
            pnl_start: 0,
            loss,
            worst,
            direction,
            sums: UnitSums::default(),
            value: 0.0,
        }
    }
}

/// A balance with everything the computation needs about its currency.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Collateral {
    pub(crate) currency: Currency,
    pub(crate) amount: f64,
    /// USD per unit (cross margin) or 1 (segregated margin).
    pub(crate) price: f64,
    /// Haircut on its value in the maintenance margin.
    pub(crate) mm_haircut: f64,
    /// Haircut in the initial margin on top of the maintenance haircut.
    pub(crate) im_haircut: f64,
    /// Slot of the underlying when the currency is one and moves with it.
    pub(crate) shocked_slot: Option<usize>,
}
