//! What the engine computes for an account: figures per currency, and the details a report
//! shows beside them (each unit's scenario P&L, attribution at the worst scenario, add-ons).

use basics::Currency;

/// Most risk units (underlying × currency) in one account.
pub const UNITS_MAX: usize = 256;

/// What set a currency's loss: the worst scenario of the unit with the largest loss, or a
/// contingency that competes with the scan loss and exceeded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worst {
    /// A scenario of the underlying's set.
    Scenario {
        /// Underlying of the unit with the largest loss.
        underlying: Currency,
        /// Index in that underlying's scenario set.
        index: usize,
    },
    /// A competing contingency of the underlying (Derive's forward contingency).
    Contingency {
        /// Underlying whose contingency set the loss.
        underlying: Currency,
    },
}

impl Worst {
    /// The underlying of the unit behind the loss.
    #[must_use]
    pub fn underlying(self) -> Currency {
        match self {
            Worst::Scenario { underlying, .. } | Worst::Contingency { underlying } => underlying,
        }
    }

    /// The scenario's index in its underlying's set, when a scenario set the loss.
    #[must_use]
    pub fn scenario(self) -> Option<usize> {
        match self {
            Worst::Scenario { index, .. } => Some(index),
            Worst::Contingency { .. } => None,
        }
    }
}

/// An account's margin in one currency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurrencyFigures {
    /// Currency of every figure.
    pub currency: Currency,
    /// Mark-to-market equity: collateral plus option values.
    pub equity: f64,
    /// Worst scenario loss after cross-underlying offsets (>= 0).
    pub scan_loss: f64,
    /// Weighted sum of add-ons in the initial margin.
    pub add_ons_im: f64,
    /// Weighted sum of add-ons in the maintenance margin.
    pub add_ons_mm: f64,
    /// Collateral haircuts in the initial margin.
    pub haircut_im: f64,
    /// Collateral haircuts in the maintenance margin.
    pub haircut_mm: f64,
    /// Initial margin requirement.
    pub initial_margin: f64,
    /// Maintenance margin requirement.
    pub maintenance_margin: f64,
    /// The scenario behind the scan loss, if any unit exists.
    pub worst: Option<Worst>,
}

impl CurrencyFigures {
    /// All-zero figures in `currency`.
    #[must_use]
    pub fn empty(currency: Currency) -> CurrencyFigures {
        CurrencyFigures {
            currency,
            equity: 0.0,
            scan_loss: 0.0,
            add_ons_im: 0.0,
            add_ons_mm: 0.0,
            haircut_im: 0.0,
            haircut_mm: 0.0,
            initial_margin: 0.0,
            maintenance_margin: 0.0,
            worst: None,
        }
    }
}

/// One risk unit's scenario P&L, kept when a caller asks for details.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitDetail {
    /// Underlying.
    pub underlying: Currency,
    /// Currency of the P&L.
    pub currency: Currency,
    /// Weighted scenario P&L (auxiliary scenarios included, unweighted gains reduced).
    pub pnl: Vec<f64>,
    /// Index of the worst scenario.
    pub worst: usize,
    /// Loss of the unit before offsets.
    pub loss: f64,
    /// Each position's contribution to the P&L of the worst scenario: (row, contribution).
    pub attribution: Vec<(usize, f64)>,
    /// Collateral's contribution to the worst scenario.
    pub collateral_at_worst: f64,
}

/// One add-on's value for one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct AddOnLine {
    /// Index of the add-on in the methodology.
    pub index: usize,
    /// Underlying of the unit.
    pub underlying: Currency,
    /// Currency of the value.
    pub currency: Currency,
    /// Value before weights.
    pub value: f64,
}

/// Details of an account's computation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountDetail {
    /// Every risk unit.
    pub units: Vec<UnitDetail>,
    /// Every add-on of every unit.
    pub add_ons: Vec<AddOnLine>,
}
