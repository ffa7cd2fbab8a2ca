//! Conversions between methodology documents and domain values.

use std::collections::BTreeMap;

// A conversion module is an extension of its parent's types, so it imports all of them.
#[allow(clippy::wildcard_imports)]
use super::*;
use methodology::{AntiProcyclicality, Calibration, CoinConversion, Sample, UnderlyingCalibration};

/// Collateral rules by currency, and the rule for other currencies.
type CollateralRules = (BTreeMap<Currency, CollateralRule>, Option<CollateralRule>);

/// Scenarios and parameters by underlying.
type SetApart = (BTreeMap<Currency, ScenarioSpec>, BTreeMap<Currency, UnderlyingParameters>);

impl MethodologyDocument {
    /// Converts into the domain methodology (validated by the caller).
    ///
    /// # Errors
    /// `Invalid` naming the key for unknown names, missing add-on parameters or foreign ones.
    pub fn to_domain(&self) -> Result<Methodology, Error> {
        if self.kind != "portfolio" {
            return Err(Error::invalid(
                "kind",
                format!("unknown kind {:?}; expected portfolio or per-position", self.kind),
            ));
        }
        let numeraire = match self.numeraire.as_str() {
            "usd" => Numeraire::Usd,
            "settlement" => Numeraire::Settlement,
            other => {
                return Err(Error::invalid(
                    "numeraire",
                    format!("unknown numeraire {other:?}; expected usd or settlement"),
                ));
            }
        };
        let dynamics = vol_dynamics(&self.valuation.dynamics)?;
        let (scenarios_by_underlying, by_underlying) = self.set_apart()?;
        let (collateral, collateral_default) = self.collateral_rules()?;
        let add_ons = self
            .add_ons
            .iter()
            .enumerate()
            .map(|(i, a)| a.to_domain(&format!("add_ons[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Methodology {
            name: self.name.clone(),
            version: self.version.clone(),
            description: self.description.clone(),
            sources: self.sources.clone(),
            numeraire,
            scenarios: self.scenarios.to_domain("scenarios")?,
            scenarios_by_underlying,
            vol_shock: self.vol_shock.to_domain("vol_shock")?,
            skew_shock: self.skew_shock.map(SkewShockDocument::to_domain),
            valuation: Valuation {
                dynamics,
                horizon_days: self.valuation.horizon_days,
                settlement_window_minutes: self.valuation.settlement_window_minutes,
                coin_conversion: coin_conversion(self.valuation.coin_pnl_at.as_deref())?,
            },
            aggregation: self.aggregation.to_domain(),
            add_ons,
            collateral,
            collateral_default,
            offsets: self.offsets.to_domain()?,
            requirement: Requirement {
                im_loss_factor: self.requirement.im_loss_factor,
                mm_loss_factor: self.requirement.mm_loss_factor,
                allow_debt: self.requirement.allow_debt,
            },
            by_underlying,
            calibration: self
                .calibration
                .as_ref()
                .map(CalibrationDocument::to_domain)
                .transpose()?,
        })
    }

    /// The scenarios and the parameters set apart for particular underlyings.
    fn set_apart(&self) -> Result<SetApart, Error> {
        let mut scenarios = BTreeMap::new();
        for (code, spec) in &self.scenarios_by_underlying {
            let path = format!("scenarios_by_underlying.{code}");
            scenarios.insert(parse_currency(code, &path)?, spec.to_domain(&path)?);
        }
        let mut parameters = BTreeMap::new();
        for (code, own) in &self.by_underlying {
            let path = format!("by_underlying.{code}");
            parameters.insert(parse_currency(code, &path)?, own.to_domain(&path)?);
        }
        Ok((scenarios, parameters))
    }

    /// The collateral rules by currency, and the default rule.
    fn collateral_rules(&self) -> Result<CollateralRules, Error> {
        let mut collateral = BTreeMap::new();
        for (code, rule) in &self.collateral {
            let path = format!("collateral.{code}");
            collateral.insert(parse_currency(code, &path)?, rule.to_domain(&path)?);
        }
        let default = self.collateral_default.as_ref();
        Ok((collateral, default.map(|r| r.to_domain("collateral_default")).transpose()?))
    }

    /// The normalised document of a domain methodology.
    #[must_use]
    pub fn from_domain(m: &Methodology) -> MethodologyDocument {
        MethodologyDocument {
            kind: portfolio_kind(),
            name: m.name.clone(),
            version: m.version.clone(),
            description: m.description.clone(),
            sources: m.sources.clone(),
            numeraire: match m.numeraire {
                Numeraire::Usd => "usd",
                Numeraire::Settlement => "settlement",
            }
            .into(),
            valuation: ValuationDocument {
                dynamics: match m.valuation.dynamics {
                    VolDynamics::StickyStrike => "sticky-strike",
                    VolDynamics::StickyMoneyness => "sticky-moneyness",
                    VolDynamics::MarkVol => "mark-vol",
                }
                .into(),
                horizon_days: m.valuation.horizon_days,
                settlement_window_minutes: m.valuation.settlement_window_minutes,
                coin_pnl_at: match m.valuation.coin_conversion {
                    CoinConversion::ScenarioPrice => None,
                    CoinConversion::Index => Some("index".to_owned()),
                },
            },
            scenarios: ScenariosDocument::from_domain(&m.scenarios),
            scenarios_by_underlying: m
                .scenarios_by_underlying
                .iter()
                .map(|(c, s)| (c.to_string(), ScenariosDocument::from_domain(s)))
                .collect(),
            vol_shock: VolShockDocument::from_domain(&m.vol_shock),
            skew_shock: m.skew_shock.map(|s| SkewShockDocument::from_domain(&s)),
            aggregation: AggregationDocument::from_domain(&m.aggregation),
            add_ons: m.add_ons.iter().map(AddOnDocument::from_domain).collect(),
            collateral: m
                .collateral
                .iter()
                .map(|(c, r)| (c.to_string(), CollateralDocument::from_domain(r)))
                .collect(),
            collateral_default: m.collateral_default.as_ref().map(CollateralDocument::from_domain),
            offsets: OffsetsDocument::from_domain(&m.offsets),
            requirement: RequirementDocument {
                im_loss_factor: m.requirement.im_loss_factor,
                mm_loss_factor: m.requirement.mm_loss_factor,
                allow_debt: m.requirement.allow_debt,
            },
            by_underlying: m
                .by_underlying
                .iter()
                .map(|(c, p)| (c.to_string(), UnderlyingDocument::from_domain(p)))
                .collect(),
            calibration: m.calibration.as_ref().map(CalibrationDocument::from_domain),
        }
    }
}

impl CalibrationDocument {
    fn to_domain(&self) -> Result<Calibration, Error> {
        let share = |name: &str| {
            self.anti_procyclicality_share.ok_or_else(|| {
                Error::invalid(
                    "calibration.anti_procyclicality_share",
                    format!("required with {name}"),
                )
            })
        };
        let anti_procyclicality = match self.anti_procyclicality.as_str() {
            "none" => AntiProcyclicality::None,
            "floor" => AntiProcyclicality::Floor,
            "buffer" => AntiProcyclicality::Buffer { fraction: share("buffer")? },
            "stressed-weight" => {
                AntiProcyclicality::StressedWeight { weight: share("stressed-weight")? }
            }
            other => {
                let why = format!(
                    "unknown option {other:?}; expected none, buffer, stressed-weight or floor"
                );
                return Err(Error::invalid("calibration.anti_procyclicality", why));
            }
        };
        let mut underlyings = BTreeMap::new();
        for (code, fit) in &self.underlyings {
            let path = format!("calibration.underlyings.{code}");
            underlyings.insert(parse_currency(code, &path)?, fit.to_domain());
        }
        Ok(Calibration {
            target_coverage: self.target_coverage,
            horizon_days: self.horizon_days,
            anti_procyclicality,
            lookback_years: self.lookback_years,
            surface_model: self.surface_model.clone(),
            base: self.base.clone(),
            underlyings,
        })
    }

    fn from_domain(c: &Calibration) -> CalibrationDocument {
        let (name, share) = match c.anti_procyclicality {
            AntiProcyclicality::None => ("none", None),
            AntiProcyclicality::Floor => ("floor", None),
            AntiProcyclicality::Buffer { fraction } => ("buffer", Some(fraction)),
            AntiProcyclicality::StressedWeight { weight } => ("stressed-weight", Some(weight)),
        };
        CalibrationDocument {
            target_coverage: c.target_coverage,
            horizon_days: c.horizon_days,
            anti_procyclicality: name.to_owned(),
            anti_procyclicality_share: share,
            lookback_years: c.lookback_years,
            surface_model: c.surface_model.clone(),
            base: c.base.clone(),
            underlyings: c
                .underlyings
                .iter()
                .map(|(u, fit)| (u.to_string(), UnderlyingCalibrationDocument::from_domain(fit)))
                .collect(),
        }
    }
}

impl UnderlyingCalibrationDocument {
    fn to_domain(&self) -> UnderlyingCalibration {
        let samples = |map: &BTreeMap<String, [u32; 2]>| {
            map.iter()
                .map(|(name, [exceedances, observations])| {
                    let sample = Sample { exceedances: *exceedances, observations: *observations };
                    (name.clone(), sample)
                })
                .collect()
        };
        UnderlyingCalibration {
            history: self.history.clone(),
            history_keccak: self.history_keccak.clone(),
            fit: self.fit.clone(),
            test: self.test.clone(),
            stressed: self.stressed.clone(),
            required: self.required,
            price_down: self.price_down,
            price_up: self.price_up,
            vol_scale: self.vol_scale,
            in_sample: samples(&self.in_sample),
            out_of_sample: samples(&self.out_of_sample),
        }
    }

    fn from_domain(u: &UnderlyingCalibration) -> UnderlyingCalibrationDocument {
        let samples = |map: &BTreeMap<String, Sample>| {
            map.iter().map(|(name, s)| (name.clone(), [s.exceedances, s.observations])).collect()
        };
        UnderlyingCalibrationDocument {
            history: u.history.clone(),
            history_keccak: u.history_keccak.clone(),
            fit: u.fit.clone(),
            test: u.test.clone(),
            stressed: u.stressed.clone(),
            required: u.required,
            price_down: u.price_down,
            price_up: u.price_up,
            vol_scale: u.vol_scale,
            in_sample: samples(&u.in_sample),
            out_of_sample: samples(&u.out_of_sample),
        }
    }
}

impl UnderlyingDocument {
    fn to_domain(&self, path: &str) -> Result<UnderlyingParameters, Error> {
        let vol_shock = self
            .vol_shock
            .as_ref()
            .map(|v| v.to_domain(&format!("{path}.vol_shock")))
            .transpose()?;
        let add_ons = self
            .add_ons
            .as_ref()
            .map(|list| {
                (list.iter().enumerate())
                    .map(|(i, a)| a.to_domain(&format!("{path}.add_ons[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(UnderlyingParameters { vol_shock, gain_fraction: self.gain_fraction, add_ons })
    }

    fn from_domain(p: &UnderlyingParameters) -> UnderlyingDocument {
        UnderlyingDocument {
            vol_shock: p.vol_shock.as_ref().map(VolShockDocument::from_domain),
            gain_fraction: p.gain_fraction,
            add_ons: p
                .add_ons
                .as_ref()
                .map(|list| list.iter().map(AddOnDocument::from_domain).collect()),
        }
    }
}

impl ScenariosDocument {
    fn to_domain(&self, path: &str) -> Result<ScenarioSpec, Error> {
        let price_grid = match &self.price_moves {
            None => PriceGrid::default(),
            Some(PriceMovesDocument::List(moves)) => PriceGrid { moves: moves.clone() },
            Some(PriceMovesDocument::Range { down, up, steps_down, steps_up }) => {
                if *steps_down > 1_000 || *steps_up > 1_000 {
                    return Err(Error::invalid(
                        format!("{path}.price_moves"),
                        "at most 1000 steps each way",
                    ));
                }
                PriceGrid::symmetric(*down, *steps_down, *up, *steps_up)
            }
        };
        let moves = |list: &[String], key: &str| -> Result<Vec<VolMove>, Error> {
            list.iter()
                .enumerate()
                .map(|(i, m)| vol_move(m, &format!("{path}.{key}[{i}]")))
                .collect()
        };
        let extreme = match &self.extreme {
            None => None,
            Some(e) => Some(e.to_domain(&format!("{path}.extreme"))?),
        };
        let mut explicit = Vec::with_capacity(self.explicit.len());
        for (i, s) in self.explicit.iter().enumerate() {
            explicit.push(s.to_domain(&format!("{path}.explicit[{i}]"))?);
        }
        Ok(ScenarioSpec {
            price_grid,
            vol_moves: moves(&self.vol_moves, "vol_moves")?,
            edge_vol_moves: self
                .edge_vol_moves
                .as_ref()
                .map(|e| moves(e, "edge_vol_moves"))
                .transpose()?,
            extreme,
            skews: self
                .skews
                .iter()
                .enumerate()
                .map(|(i, s)| skew_kind(s, &format!("{path}.skews[{i}]")))
                .collect::<Result<_, _>>()?,
            explicit,
            auxiliary_moves: self.auxiliary_moves.clone(),
        })
    }

    fn from_domain(s: &ScenarioSpec) -> ScenariosDocument {
        ScenariosDocument {
            price_moves: (!s.price_grid.moves.is_empty())
                .then(|| PriceMovesDocument::List(s.price_grid.moves.clone())),
            vol_moves: s.vol_moves.iter().map(|m| vol_move_text(*m)).collect(),
            edge_vol_moves: s
                .edge_vol_moves
                .as_ref()
                .map(|e| e.iter().map(|m| vol_move_text(*m)).collect()),
            extreme: s.extreme.as_ref().map(ExtremeDocument::from_domain),
            skews: s.skews.iter().map(|k| skew_text(*k)).collect(),
            explicit: s.explicit.iter().map(ScenarioDocument::from_domain).collect(),
            auxiliary_moves: s.auxiliary_moves.clone(),
        }
    }
}

impl ExtremeDocument {
    fn to_domain(&self, path: &str) -> Result<ExtremeMoves, Error> {
        let weighting = match (self.covered_fraction, self.dampening_scale, &self.weights) {
            (Some(f), None, None) => ExtremeWeighting::CoveredFraction(f),
            (None, Some(scale), None) => ExtremeWeighting::Dampened { scale },
            (None, None, Some(w)) => ExtremeWeighting::Explicit(w.clone()),
            _ => {
                return Err(Error::invalid(
                    path,
                    "give exactly one of covered_fraction, dampening_scale, weights",
                ));
            }
        };
        let dampener = match &self.dampener {
            None => None,
            Some(d) => {
                let mut amount_usd_by_currency = BTreeMap::new();
                for (code, amount) in &d.by_currency {
                    let location = format!("{path}.dampener.by_currency.{code}");
                    amount_usd_by_currency.insert(parse_currency(code, &location)?, *amount);
                }
                Some(ExtremeDampener {
                    amount_usd: d.amount_usd,
                    amount_usd_by_currency,
                    convert_at_edge: d.convert_at_edge,
                })
            }
        };
        Ok(ExtremeMoves {
            moves: self.moves.clone(),
            vol: vol_move(&self.vol, &format!("{path}.vol"))?,
            weighting,
            dampener,
        })
    }

    fn from_domain(e: &ExtremeMoves) -> ExtremeDocument {
        let (covered_fraction, dampening_scale, weights) = match &e.weighting {
            ExtremeWeighting::CoveredFraction(f) => (Some(*f), None, None),
            ExtremeWeighting::Dampened { scale } => (None, Some(*scale), None),
            ExtremeWeighting::Explicit(w) => (None, None, Some(w.clone())),
        };
        ExtremeDocument {
            moves: e.moves.clone(),
            vol: vol_move_text(e.vol),
            covered_fraction,
            dampening_scale,
            weights,
            dampener: e.dampener.as_ref().map(|d| DampenerDocument {
                amount_usd: d.amount_usd,
                by_currency: d
                    .amount_usd_by_currency
                    .iter()
                    .map(|(c, a)| (c.to_string(), *a))
                    .collect(),
                convert_at_edge: d.convert_at_edge,
            }),
        }
    }
}

impl ScenarioDocument {
    fn to_domain(&self, path: &str) -> Result<Scenario, Error> {
        let kind = match self.kind.as_str() {
            "regular" => ScenarioKind::Regular,
            "extreme" => ScenarioKind::Extreme,
            "skew-linear" => ScenarioKind::Skew(SkewKind::Linear),
            "skew-linear-inverse" => ScenarioKind::Skew(SkewKind::LinearInverse),
            "skew-abs" => ScenarioKind::Skew(SkewKind::Absolute),
            "auxiliary" => ScenarioKind::Auxiliary,
            other => {
                let why = format!(
                    "unknown kind {other:?}; expected regular, extreme, skew-linear, \
                     skew-linear-inverse, skew-abs or auxiliary"
                );
                return Err(Error::invalid(format!("{path}.kind"), why));
            }
        };
        Ok(Scenario {
            spot_move: self.spot_move,
            vol: vol_move(&self.vol, &format!("{path}.vol"))?,
            kind,
            weight: self.weight,
        })
    }

    fn from_domain(s: &Scenario) -> ScenarioDocument {
        let kind = match s.kind {
            ScenarioKind::Regular => "regular",
            ScenarioKind::Extreme => "extreme",
            ScenarioKind::Skew(SkewKind::Linear) => "skew-linear",
            ScenarioKind::Skew(SkewKind::LinearInverse) => "skew-linear-inverse",
            ScenarioKind::Skew(SkewKind::Absolute) => "skew-abs",
            ScenarioKind::Auxiliary => "auxiliary",
        };
        ScenarioDocument {
            spot_move: s.spot_move,
            vol: vol_move_text(s.vol),
            kind: kind.into(),
            weight: s.weight,
        }
    }
}

impl VolShockDocument {
    fn to_domain(&self, path: &str) -> Result<VolShock, Error> {
        let kind = match self.kind.as_str() {
            "relative" => VolShockKind::Relative,
            "absolute" => VolShockKind::Absolute,
            other => {
                return Err(Error::invalid(
                    format!("{path}.kind"),
                    format!("unknown kind {other:?}; expected relative or absolute"),
                ));
            }
        };
        Ok(VolShock {
            kind,
            up: self.up,
            down: self.down,
            reference_days: self.reference_days,
            short_power: self.short_power,
            long_power: self.long_power,
            power_switch_days: self.power_switch_days,
            floor_days: self.floor_days,
            min_vol_up: self.min_vol_up,
        })
    }

    fn from_domain(v: &VolShock) -> VolShockDocument {
        VolShockDocument {
            kind: match v.kind {
                VolShockKind::Relative => "relative",
                VolShockKind::Absolute => "absolute",
            }
            .into(),
            up: v.up,
            down: v.down,
            reference_days: v.reference_days,
            short_power: v.short_power,
            long_power: v.long_power,
            power_switch_days: v.power_switch_days,
            floor_days: v.floor_days,
            min_vol_up: v.min_vol_up,
        }
    }
}

impl SkewShockDocument {
    fn to_domain(self) -> SkewShock {
        SkewShock {
            linear_base_cap: self.linear_base_cap,
            linear_cbase: self.linear_cbase,
            abs_base_cap: self.abs_base_cap,
            abs_cbase: self.abs_cbase,
            min_k_star: self.min_k_star,
            width_scale: self.width_scale,
            vol_param_static: self.vol_param_static,
            vol_param_scale: self.vol_param_scale,
        }
    }

    fn from_domain(s: &SkewShock) -> SkewShockDocument {
        SkewShockDocument {
            linear_base_cap: s.linear_base_cap,
            linear_cbase: s.linear_cbase,
            abs_base_cap: s.abs_base_cap,
            abs_cbase: s.abs_cbase,
            min_k_star: s.min_k_star,
            width_scale: s.width_scale,
            vol_param_static: s.vol_param_static,
            vol_param_scale: s.vol_param_scale,
        }
    }
}

impl AggregationDocument {
    fn to_domain(self) -> Aggregation {
        Aggregation {
            static_discount: self.static_discount.map(|d| StaticDiscount {
                long_base: d.long_base,
                long_rate_mult: d.long_rate_mult,
                long_rate_add: d.long_rate_add,
                short_base: d.short_base,
                short_rate_mult: d.short_rate_mult,
                short_rate_add: d.short_rate_add,
            }),
            skew_absolute: self.skew_absolute,
            gain_fraction: self.gain_fraction,
        }
    }

    fn from_domain(a: &Aggregation) -> AggregationDocument {
        AggregationDocument {
            gain_fraction: a.gain_fraction,
            skew_absolute: a.skew_absolute,
            static_discount: a.static_discount.map(|d| StaticDiscountDocument {
                long_base: d.long_base,
                long_rate_mult: d.long_rate_mult,
                long_rate_add: d.long_rate_add,
                short_base: d.short_base,
                short_rate_mult: d.short_rate_mult,
                short_rate_add: d.short_rate_add,
            }),
        }
    }
}

impl CollateralDocument {
    fn to_domain(&self, path: &str) -> Result<CollateralRule, Error> {
        let underlying = self
            .underlying
            .as_deref()
            .map(|code| parse_currency(code, &format!("{path}.underlying")))
            .transpose()?;
        Ok(CollateralRule {
            im_haircut: self.im_haircut,
            mm_haircut: self.mm_haircut,
            risk_cancelling: self.risk_cancelling,
            underlying,
        })
    }

    fn from_domain(r: &CollateralRule) -> CollateralDocument {
        CollateralDocument {
            im_haircut: r.im_haircut,
            mm_haircut: r.mm_haircut,
            risk_cancelling: r.risk_cancelling,
            underlying: r.underlying.map(|c| c.to_string()),
        }
    }
}

impl OffsetsDocument {
    fn to_domain(&self) -> Result<Offsets, Error> {
        match self.method.as_str() {
            "none" => Ok(Offsets::None),
            "correlation" => {
                let mut pairs = BTreeMap::new();
                for (key, rho) in &self.pairs {
                    let location = format!("offsets.pairs.{key}");
                    let (a, b) = key
                        .split_once('-')
                        .ok_or_else(|| Error::invalid(&location, "expected a key like BTC-ETH"))?;
                    let (a, b) = (parse_currency(a, &location)?, parse_currency(b, &location)?);
                    pairs.insert(if a < b { (a, b) } else { (b, a) }, *rho);
                }
                Ok(Offsets::Correlation {
                    default_correlation: self.default_correlation,
                    pairs,
                    credit_cap: self.credit_cap,
                })
            }
            other => Err(Error::invalid(
                "offsets.method",
                format!("unknown method {other:?}; expected none or correlation"),
            )),
        }
    }

    fn from_domain(o: &Offsets) -> OffsetsDocument {
        match o {
            Offsets::None => OffsetsDocument::default(),
            Offsets::Correlation { default_correlation, pairs, credit_cap } => OffsetsDocument {
                method: "correlation".into(),
                default_correlation: *default_correlation,
                credit_cap: *credit_cap,
                pairs: pairs.iter().map(|((a, b), rho)| (format!("{a}-{b}"), *rho)).collect(),
            },
        }
    }
}

pub(super) mod add_ons;

/// The volatility dynamics named in `valuation.dynamics`.
fn vol_dynamics(name: &str) -> Result<VolDynamics, Error> {
    match name {
        "sticky-strike" => Ok(VolDynamics::StickyStrike),
        "sticky-moneyness" => Ok(VolDynamics::StickyMoneyness),
        "mark-vol" => Ok(VolDynamics::MarkVol),
        other => Err(Error::invalid(
            "valuation.dynamics",
            format!(
                "unknown dynamics {other:?}; expected sticky-strike, sticky-moneyness or mark-vol"
            ),
        )),
    }
}

/// The coin conversion a methodology file names (`scenario` when absent).
fn coin_conversion(text: Option<&str>) -> Result<CoinConversion, Error> {
    match text {
        None | Some("scenario") => Ok(CoinConversion::ScenarioPrice),
        Some("index") => Ok(CoinConversion::Index),
        Some(other) => Err(Error::invalid(
            "valuation.coin_pnl_at",
            format!("expected \"scenario\" or \"index\", got {other:?}"),
        )),
    }
}
