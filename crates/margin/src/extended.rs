//! Deribit's extended table: the treatment of the extreme cells of a unit's scenario P&L
//! (coin P&L converted at the grid's edge price, an allowance per step beyond the edge, gains
//! clipped), with its per-scenario constants computed once per underlying.

use basics::Currency;
use methodology::{ExtremeDampener, Methodology, ScenarioKind, ScenarioSet};

/// An extreme dampener with its per-scenario constants, computed once per underlying.
pub(crate) struct ExtendedCells {
    dampener: ExtremeDampener,
    /// (scenario index, extreme move `m`, edge move `e` of the grid on the same side).
    cells: Vec<(usize, f64, f64)>,
}

impl ExtendedCells {
    pub(crate) fn new(
        methodology: &Methodology,
        underlying: Currency,
        set: &ScenarioSet,
    ) -> Option<Self> {
        let spec = methodology.scenario_spec(underlying);
        let extreme = spec.extreme.as_ref()?;
        let dampener = extreme.dampener.clone()?;
        // The generated extremes come first among the extreme-kind scenarios, in their order.
        let cells = set
            .scenarios()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == ScenarioKind::Extreme)
            .take(extreme.moves.len())
            .filter_map(|(i, s)| Some((i, s.spot_move, spec.price_grid.edge(s.spot_move)?)))
            .collect();
        Some(ExtendedCells { dampener, cells })
    }

    /// The edge conversion `(1 + m)/(1 + e)` of each extreme cell, by scenario index, when the
    /// dampener converts coin P&L at the edge price.
    pub(crate) fn edge_conversions(&self) -> Vec<(usize, f64)> {
        if !self.dampener.convert_at_edge {
            return Vec::new();
        }
        self.cells.iter().map(|&(s, m, e)| (s, (1.0 + m) / (1.0 + e))).collect()
    }

    /// Applies the treatment to a unit's weighted P&L: coin P&L converted at the edge price,
    /// the allowance `amount · (|m|/|e| − 1)⁺` added, gains clipped to zero.
    /// `coin_index` is the underlying's index when the unit's currency is the underlying itself;
    /// `unit_usd` is the USD price of the unit's currency otherwise.
    pub(crate) fn apply(
        &self,
        pnl: &mut [f64],
        currency: Currency,
        coin_index: Option<f64>,
        unit_usd: f64,
    ) {
        let amount = self.dampener.amount_for(currency);
        for &(s, m, e) in &self.cells {
            let steps = ((m / e).abs().max(1.0)) - 1.0;
            let (convert, price) = match coin_index {
                Some(index) if self.dampener.convert_at_edge => {
                    ((1.0 + m) / (1.0 + e), index * (1.0 + e))
                }
                Some(index) => (1.0, index * (1.0 + m)),
                None => (1.0, unit_usd),
            };
            pnl[s] = (pnl[s] * convert + steps * amount / price).min(0.0);
        }
    }
}
