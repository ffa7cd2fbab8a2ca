//! Ordered scenario sets.

use basics::limits::SCENARIOS_MAX;

use crate::methodology::{ExtremeWeighting, ScenarioSpec};
use crate::{Error, ErrorKind, SkewKind};

/// Direction of the volatility shock of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VolMove {
    /// Volatility unchanged.
    None,
    /// Volatility shocked up.
    Up,
    /// Volatility shocked down.
    Down,
}

/// What a scenario is for, which decides how it enters the margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScenarioKind {
    /// A point of the standard price × vol grid.
    Regular,
    /// An extreme move whose P&L is weighted (covered fraction or dampening).
    Extreme,
    /// A skew shock at an unchanged spot.
    Skew(SkewKind),
    /// Evaluated for add-ons (e.g. a basis contingency) but never a candidate for the worst loss.
    Auxiliary,
}

/// One stress scenario for one underlying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    /// Relative move of the underlying (0.1 = +10 %).
    pub spot_move: f64,
    /// Volatility shock direction.
    pub vol: VolMove,
    /// Role of the scenario.
    pub kind: ScenarioKind,
    /// Weight applied to the scenario's P&L (1 for regular scenarios).
    pub weight: f64,
}

/// The ordered scenarios of one underlying. Order is observable (worst-scenario indices are
/// reported and attested), so it is fixed by the methodology: grid moves in the order given, each
/// with its volatility moves in the order given, then extreme moves, skews, explicit extras and
/// auxiliary scenarios.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScenarioSet {
    scenarios: Vec<Scenario>,
}

impl ScenarioSet {
    /// Generates the set described by `spec`.
    ///
    /// # Errors
    /// `TooMany` past [`SCENARIOS_MAX`]; `Inconsistent` for an empty set or an extreme move of 0
    /// under dampening (its weight would be infinite).
    pub fn generate(spec: &ScenarioSpec) -> Result<ScenarioSet, Error> {
        let mut scenarios = Vec::new();
        let moves = &spec.price_grid.moves;
        for (i, &spot_move) in moves.iter().enumerate() {
            let at_edge = i == 0 || i + 1 == moves.len();
            let vols = match (&spec.edge_vol_moves, at_edge && moves.len() > 1) {
                (Some(edge), true) => edge,
                _ => &spec.vol_moves,
            };
            for &vol in vols {
                scenarios.push(Scenario {
                    spot_move,
                    vol,
                    kind: ScenarioKind::Regular,
                    weight: 1.0,
                });
            }
        }
        if let Some(extreme) = &spec.extreme {
            for (i, &spot_move) in extreme.moves.iter().enumerate() {
                let weight = match &extreme.weighting {
                    ExtremeWeighting::CoveredFraction(fraction) => *fraction,
                    ExtremeWeighting::Dampened { scale } => {
                        if spot_move == 0.0 {
                            let why = "a dampened extreme move of 0 would have an infinite weight";
                            return Err(Error::new(
                                format!("scenarios.extreme.moves[{i}]"),
                                ErrorKind::Inconsistent(why.into()),
                            ));
                        }
                        scale / spot_move.abs()
                    }
                    ExtremeWeighting::Explicit(weights) => weights[i],
                };
                scenarios.push(Scenario {
                    spot_move,
                    vol: extreme.vol,
                    kind: ScenarioKind::Extreme,
                    weight,
                });
            }
        }
        for &skew in &spec.skews {
            scenarios.push(Scenario {
                spot_move: 0.0,
                vol: VolMove::None,
                kind: ScenarioKind::Skew(skew),
                weight: 1.0,
            });
        }
        scenarios.extend_from_slice(&spec.explicit);
        for &spot_move in &spec.auxiliary_moves {
            scenarios.push(Scenario {
                spot_move,
                vol: VolMove::None,
                kind: ScenarioKind::Auxiliary,
                weight: 1.0,
            });
        }
        if scenarios.len() > SCENARIOS_MAX {
            return Err(Error::new("scenarios", ErrorKind::TooMany { limit: SCENARIOS_MAX }));
        }
        if !scenarios.iter().any(|s| s.kind != ScenarioKind::Auxiliary) {
            return Err(Error::new(
                "scenarios",
                ErrorKind::Inconsistent("no scenario can set the margin".into()),
            ));
        }
        Ok(ScenarioSet { scenarios })
    }

    /// The scenarios, in their fixed order.
    #[must_use]
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// Number of scenarios.
    #[must_use]
    pub fn len(&self) -> usize {
        self.scenarios.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.scenarios.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methodology::{ExtremeMoves, PriceGrid};

    /// Derive PMRM_2's JSON test baseline: ±18 % edges with vol up only, ±13.5/9/4.5/0 with
    /// down/none/up, tails dampened as 0.036/|m|, then the two skew scenarios: 31 scenarios.
    #[test]
    fn generates_derive_like_grid() {
        let spec = ScenarioSpec {
            price_grid: PriceGrid {
                moves: vec![0.18, 0.135, 0.09, 0.045, 0.0, -0.045, -0.09, -0.135, -0.18],
            },
            vol_moves: vec![VolMove::Down, VolMove::None, VolMove::Up],
            edge_vol_moves: Some(vec![VolMove::Up]),
            extreme: Some(ExtremeMoves {
                moves: vec![-0.66, -0.33, 0.5, 1.0, 2.0, 3.0],
                vol: VolMove::Up,
                weighting: ExtremeWeighting::Dampened { scale: 0.036 },
                dampener: None,
            }),
            skews: vec![SkewKind::Linear, SkewKind::Absolute],
            explicit: vec![],
            auxiliary_moves: vec![],
        };
        let set = ScenarioSet::generate(&spec).unwrap();
        assert_eq!(set.len(), 2 + 7 * 3 + 6 + 2);
        let first = set.scenarios()[0];
        assert_eq!((first.spot_move, first.vol), (0.18, VolMove::Up));
        assert_eq!(set.scenarios()[1].vol, VolMove::Down);
        let tail = set.scenarios()[23];
        assert_eq!(tail.kind, ScenarioKind::Extreme);
        assert!((tail.weight - 0.036 / 0.66).abs() < 1e-15);
        assert_eq!(set.scenarios()[30].kind, ScenarioKind::Skew(SkewKind::Absolute));
    }

    #[test]
    fn rejects_empty_and_degenerate_sets() {
        let empty = ScenarioSpec::default();
        assert!(ScenarioSet::generate(&empty).is_err());
        let zero_tail = ScenarioSpec {
            price_grid: PriceGrid { moves: vec![0.1] },
            vol_moves: vec![VolMove::None],
            extreme: Some(ExtremeMoves {
                moves: vec![0.0],
                vol: VolMove::None,
                weighting: ExtremeWeighting::Dampened { scale: 0.1 },
                dampener: None,
            }),
            ..ScenarioSpec::default()
        };
        assert_eq!(
            ScenarioSet::generate(&zero_tail).unwrap_err().field,
            "scenarios.extreme.moves[0]"
        );
    }
}
