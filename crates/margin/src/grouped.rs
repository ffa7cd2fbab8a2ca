//! Derive's grouped aggregation (PMRM_2): a static discount on per-expiry values and `−|p|`
//! skew contributions make aggregation non-linear, so option values are summed per expiry group
//! before they become P&L. Linear methodologies never come here.

use methodology::{Aggregation, ScenarioKind, ScenarioSet};

use crate::valuation::RiskArrays;

/// Derive-style aggregation: option values are summed per expiry, transformed (static
/// discount; absolute value in skew scenarios), and only then turned into P&L.
pub(crate) fn grouped_pnl(
    arrays: &RiskArrays,
    aggregation: Aggregation,
    held: &[(usize, f64)],
    set: &ScenarioSet,
    pnl: &mut [f64],
) {
    let mut start = 0;
    while start < held.len() {
        let info = arrays.info(held[start].0);
        if info.strike.is_none() {
            let (row, size) = held[start];
            for (cell, value) in pnl.iter_mut().zip(arrays.row(row)) {
                *cell += size * value;
            }
            start += 1;
            continue;
        }
        let years = info.years;
        let end = start
            + held[start..]
                .iter()
                .take_while(|(r, _)| {
                    arrays.info(*r).strike.is_some() && arrays.info(*r).years == years
                })
                .count();
        let group = &held[start..end];
        let mtm: f64 = group.iter().map(|&(row, size)| size * arrays.base(row)).sum();
        let rate = info.rate;
        for (s, (cell, scenario)) in pnl.iter_mut().zip(set.scenarios()).enumerate() {
            let value: f64 = group
                .iter()
                .map(|&(row, size)| size * (arrays.base(row) + arrays.row(row)[s]))
                .sum();
            let discounted = aggregation.static_discount.map_or(value, |d| {
                let factor = if value >= 0.0 {
                    d.long_base * (-years * (rate * d.long_rate_mult + d.long_rate_add)).exp()
                } else {
                    let undo_rate = (rate * years).exp();
                    undo_rate.min(
                        d.short_base
                            / (-years * (rate * d.short_rate_mult + d.short_rate_add)).exp(),
                    )
                };
                value * factor
            });
            let contribution = discounted - mtm;
            let skew = matches!(scenario.kind, ScenarioKind::Skew(_));
            *cell +=
                if skew && aggregation.skew_absolute { -contribution.abs() } else { contribution };
        }
        start = end;
    }
}
