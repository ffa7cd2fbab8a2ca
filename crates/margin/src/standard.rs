//! Per-position "standard" margin: Deribit's published formulas, the baseline every portfolio
//! margin result is compared with.
//!
//! Each position is margined alone and the charges add up, so hedges count for nothing
//! (Deribit's support article "Standard Margin"; futures rates from its 11 January 2022 notice).
//! Per contract, in coins of the underlying (`OTM` is the out-of-the-money amount, `S` the index,
//! `mark` the option's value):
//!
//! ```text
//! short call  IM = max(0.15 − OTM/S, 0.10) + mark             MM = 0.075 + mark
//! short put   IM = max(max(0.15 − OTM/S, 0.10) + mark, MM)    MM = max(0.075, 0.075·mark) + mark
//! long option IM = mark (the premium)                         MM = 0
//! future      IM = (2 % + size·increase) · notional   MM = (1 % + size·increase) · notional
//! ```
//!
//! with `increase` = 0.005 % per BTC and 0.0004 % per ETH of position size. Ballast evaluates them
//! in USD (coin amounts times the index), which is the cross-margin (X:SM) view.

use std::collections::BTreeMap;

use basics::Currency;
use product::OptionRight;

use crate::book::ResolvedAccount;
use crate::valuation::RiskArrays;

/// Standard-margin parameters of one underlying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StandardRates {
    /// Short-option IM base (0.15): the share of the underlying charged at the money.
    pub option_im_base: f64,
    /// Short-option IM floor (0.10).
    pub option_im_floor: f64,
    /// Short-option MM (0.075).
    pub option_mm: f64,
    /// Futures IM rate (0.02).
    pub future_im: f64,
    /// Futures MM rate (0.01).
    pub future_mm: f64,
    /// Rate increase per coin of position size (0.00005 for BTC).
    pub future_size_increase: f64,
}

/// A per-position methodology: rates per underlying and a default.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardMargin {
    /// Short name, e.g. `deribit-standard`.
    pub name: String,
    /// Version of the parameter set.
    pub version: String,
    /// What it is.
    pub description: String,
    /// Where the formulas and numbers come from.
    pub sources: Vec<String>,
    /// Rates by underlying.
    pub rates: BTreeMap<Currency, StandardRates>,
    /// Rates for other underlyings.
    pub default_rates: StandardRates,
}

/// Standard margin of one position, in USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StandardLine {
    /// Row of the instrument.
    pub row: usize,
    /// Initial margin.
    pub initial_margin: f64,
    /// Maintenance margin.
    pub maintenance_margin: f64,
}

impl StandardMargin {
    fn rates(&self, underlying: Currency) -> StandardRates {
        self.rates.get(&underlying).copied().unwrap_or(self.default_rates)
    }

    /// Per-position IM and MM in USD.
    #[must_use]
    pub fn lines(&self, arrays: &RiskArrays, account: &ResolvedAccount) -> Vec<StandardLine> {
        account
            .positions
            .iter()
            .map(|&(row, size)| {
                let info = arrays.info(row);
                let r = self.rates(info.underlying);
                let s = info.index;
                let (im, mm) = match (info.strike, info.right) {
                    (Some(strike), Some(right)) => {
                        let contracts = size.abs();
                        let mark = info.value_usd;
                        if size > 0.0 {
                            (contracts * mark, 0.0)
                        } else {
                            let otm = match right {
                                OptionRight::Call => (strike - s).max(0.0),
                                OptionRight::Put => (s - strike).max(0.0),
                            };
                            let im_rate = (r.option_im_base - otm / s).max(r.option_im_floor);
                            let (im, mm) = match right {
                                OptionRight::Call => (im_rate * s + mark, r.option_mm * s + mark),
                                OptionRight::Put => {
                                    let mm = (r.option_mm * s).max(r.option_mm * mark) + mark;
                                    ((im_rate * s + mark).max(mm), mm)
                                }
                            };
                            (contracts * im, contracts * mm)
                        }
                    }
                    _ => {
                        let coins = (size * info.delta_coins).abs();
                        let notional = size.abs() * info.notional_usd;
                        let increase = coins * r.future_size_increase;
                        ((r.future_im + increase) * notional, (r.future_mm + increase) * notional)
                    }
                };
                StandardLine { row, initial_margin: im, maintenance_margin: mm }
            })
            .collect()
    }

    /// Total standard IM and MM in USD.
    #[must_use]
    pub fn totals(&self, arrays: &RiskArrays, account: &ResolvedAccount) -> (f64, f64) {
        self.lines(arrays, account)
            .iter()
            .fold((0.0, 0.0), |(im, mm), l| (im + l.initial_margin, mm + l.maintenance_margin))
    }
}
