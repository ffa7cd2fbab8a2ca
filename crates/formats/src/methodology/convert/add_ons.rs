//! `[[add_ons]]` entries: one flat table per add-on, checked per kind so that a misspelt or
//! misplaced parameter is an error, never silently ignored.

// A conversion module is an extension of its parent's types, so it imports all of them.
#[allow(clippy::wildcard_imports)]
use super::super::*;

impl AddOnDocument {
    /// Names of the optional parameters present in the entry.
    fn present(&self) -> Vec<&'static str> {
        let fields: [(&'static str, bool); 21] = [
            ("half_spread_fraction", self.half_spread_fraction.is_some()),
            ("half_spread_vol", self.half_spread_vol.is_some()),
            ("impact_coefficient", self.impact_coefficient.is_some()),
            ("volume_floor", self.volume_floor.is_some()),
            ("vega_bucket_days", self.vega_bucket_days.is_some()),
            ("open_interest_fraction", self.open_interest_fraction.is_some()),
            ("rate", self.rate.is_some()),
            ("annualised_move", self.annualised_move.is_some()),
            ("min_move", self.min_move.is_some()),
            ("add_factor", self.add_factor.is_some()),
            ("mult_factor", self.mult_factor.is_some()),
            ("competes_with_scan", self.competes_with_scan.is_some()),
            ("fraction_of_index", self.fraction_of_index.is_some()),
            ("fraction", self.fraction.is_some()),
            ("threshold_usd", self.threshold_usd.is_some()),
            ("slope_per_coin", self.slope_per_coin.is_some()),
            ("max_fraction", self.max_fraction.is_some()),
            ("currency", self.currency.is_some()),
            ("threshold", self.threshold.is_some()),
            ("factor", self.factor.is_some()),
            ("usd_per_unit", self.usd_per_unit.is_some()),
        ];
        fields.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect()
    }

    pub(super) fn to_domain(&self, path: &str) -> Result<AddOn, Error> {
        let allowed: &[&str] = match self.kind.as_str() {
            "liquidation-friction" => &[
                "half_spread_fraction",
                "half_spread_vol",
                "impact_coefficient",
                "volume_floor",
                "vega_bucket_days",
            ],
            "concentration" => &["open_interest_fraction", "rate"],
            "roll" => &["annualised_move", "min_move"],
            "basis-contingency" => &["add_factor", "mult_factor", "competes_with_scan"],
            "contract-minimum" => &["fraction_of_index"],
            "naked-short-option" | "perpetual-notional" => &["fraction"],
            "delta-shock" => &["threshold_usd", "slope_per_coin", "max_fraction"],
            "contract-floor" => &["usd_per_unit"],
            "depeg" => &["currency", "threshold", "factor"],
            "oracle-confidence" => &["threshold", "factor"],
            other => {
                return Err(Error::invalid(
                    format!("{path}.kind"),
                    format!("unknown add-on kind {other:?}"),
                ));
            }
        };
        if let Some(foreign) = self.present().into_iter().find(|f| !allowed.contains(f)) {
            return Err(Error::invalid(
                format!("{path}.{foreign}"),
                format!("not a parameter of a {} add-on", self.kind),
            ));
        }
        let need = |value: Option<f64>, name: &str| {
            value.ok_or_else(|| {
                Error::missing(
                    format!("{path}.{name}"),
                    format!("{name} (required by {})", self.kind),
                )
            })
        };
        let kind = match self.kind.as_str() {
            "liquidation-friction" => AddOnKind::LiquidationFriction {
                half_spread_fraction: need(self.half_spread_fraction, "half_spread_fraction")?,
                half_spread_vol: need(self.half_spread_vol, "half_spread_vol")?,
                impact_coefficient: need(self.impact_coefficient, "impact_coefficient")?,
                volume_floor: need(self.volume_floor, "volume_floor")?,
                vega_bucket_days: self.vega_bucket_days.clone().unwrap_or_default(),
            },
            "concentration" => AddOnKind::Concentration {
                open_interest_fraction: need(
                    self.open_interest_fraction,
                    "open_interest_fraction",
                )?,
                rate: need(self.rate, "rate")?,
            },
            "roll" => AddOnKind::Roll {
                annualised_move: need(self.annualised_move, "annualised_move")?,
                min_move: need(self.min_move, "min_move")?,
            },
            "basis-contingency" => AddOnKind::BasisContingency {
                add_factor: need(self.add_factor, "add_factor")?,
                mult_factor: need(self.mult_factor, "mult_factor")?,
                competes_with_scan: self.competes_with_scan.unwrap_or(false),
            },
            "contract-minimum" => AddOnKind::ContractMinimum {
                fraction_of_index: need(self.fraction_of_index, "fraction_of_index")?,
            },
            "naked-short-option" => {
                AddOnKind::NakedShortOption { fraction: need(self.fraction, "fraction")? }
            }
            "perpetual-notional" => {
                AddOnKind::PerpetualNotional { fraction: need(self.fraction, "fraction")? }
            }
            "delta-shock" => AddOnKind::DeltaShock {
                threshold_usd: need(self.threshold_usd, "threshold_usd")?,
                slope_per_coin: need(self.slope_per_coin, "slope_per_coin")?,
                max_fraction: need(self.max_fraction, "max_fraction")?,
            },
            "contract-floor" => {
                AddOnKind::ContractFloor { usd_per_unit: need(self.usd_per_unit, "usd_per_unit")? }
            }
            _ => self.threshold_kind(path)?,
        };
        Ok(AddOn { kind, im_weight: self.im_weight, mm_weight: self.mm_weight })
    }

    /// The kinds with a threshold and a factor: `depeg` (with its currency) and
    /// `oracle-confidence`.
    fn threshold_kind(&self, path: &str) -> Result<AddOnKind, Error> {
        let need = |value: Option<f64>, name: &str| {
            value.ok_or_else(|| {
                let what = format!("{name} (required by {})", self.kind);
                Error::missing(format!("{path}.{name}"), what)
            })
        };
        let (threshold, factor) =
            (need(self.threshold, "threshold")?, need(self.factor, "factor")?);
        if self.kind == "oracle-confidence" {
            return Ok(AddOnKind::OracleConfidence { threshold, factor });
        }
        let code = self.currency.as_deref().ok_or_else(|| {
            Error::missing(format!("{path}.currency"), "currency (required by depeg)")
        })?;
        let currency = parse_currency(code, &format!("{path}.currency"))?;
        Ok(AddOnKind::Depeg { currency, threshold, factor })
    }

    pub(super) fn from_domain(a: &AddOn) -> AddOnDocument {
        let base = AddOnDocument {
            im_weight: a.im_weight,
            mm_weight: a.mm_weight,
            ..AddOnDocument::default()
        };
        match &a.kind {
            AddOnKind::LiquidationFriction {
                half_spread_fraction,
                half_spread_vol,
                impact_coefficient,
                volume_floor,
                vega_bucket_days,
            } => AddOnDocument {
                kind: "liquidation-friction".into(),
                half_spread_fraction: Some(*half_spread_fraction),
                half_spread_vol: Some(*half_spread_vol),
                impact_coefficient: Some(*impact_coefficient),
                volume_floor: Some(*volume_floor),
                vega_bucket_days: Some(vega_bucket_days.clone()),
                ..base
            },
            AddOnKind::Concentration { open_interest_fraction, rate } => AddOnDocument {
                kind: "concentration".into(),
                open_interest_fraction: Some(*open_interest_fraction),
                rate: Some(*rate),
                ..base
            },
            AddOnKind::Roll { annualised_move, min_move } => AddOnDocument {
                kind: "roll".into(),
                annualised_move: Some(*annualised_move),
                min_move: Some(*min_move),
                ..base
            },
            AddOnKind::BasisContingency { add_factor, mult_factor, competes_with_scan } => {
                AddOnDocument {
                    kind: "basis-contingency".into(),
                    add_factor: Some(*add_factor),
                    mult_factor: Some(*mult_factor),
                    competes_with_scan: Some(*competes_with_scan),
                    ..base
                }
            }
            AddOnKind::ContractMinimum { fraction_of_index } => AddOnDocument {
                kind: "contract-minimum".into(),
                fraction_of_index: Some(*fraction_of_index),
                ..base
            },
            AddOnKind::NakedShortOption { fraction } => AddOnDocument {
                kind: "naked-short-option".into(),
                fraction: Some(*fraction),
                ..base
            },
            AddOnKind::PerpetualNotional { fraction } => AddOnDocument {
                kind: "perpetual-notional".into(),
                fraction: Some(*fraction),
                ..base
            },
            AddOnKind::DeltaShock { threshold_usd, slope_per_coin, max_fraction } => {
                AddOnDocument {
                    kind: "delta-shock".into(),
                    threshold_usd: Some(*threshold_usd),
                    slope_per_coin: Some(*slope_per_coin),
                    max_fraction: Some(*max_fraction),
                    ..base
                }
            }
            AddOnKind::ContractFloor { usd_per_unit } => {
                let kind = "contract-floor".into();
                AddOnDocument { kind, usd_per_unit: Some(*usd_per_unit), ..base }
            }
            AddOnKind::Depeg { .. } | AddOnKind::OracleConfidence { .. } => {
                threshold_document(&a.kind, base)
            }
        }
    }
}

/// The document of a `depeg` or `oracle-confidence` add-on (`base` for any other kind).
fn threshold_document(kind: &AddOnKind, base: AddOnDocument) -> AddOnDocument {
    match kind {
        AddOnKind::Depeg { currency, threshold, factor } => AddOnDocument {
            kind: "depeg".into(),
            currency: Some(currency.to_string()),
            threshold: Some(*threshold),
            factor: Some(*factor),
            ..base
        },
        AddOnKind::OracleConfidence { threshold, factor } => AddOnDocument {
            kind: "oracle-confidence".into(),
            threshold: Some(*threshold),
            factor: Some(*factor),
            ..base
        },
        _ => base,
    }
}

/// A per-position (standard margin) document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardDocument {
    /// `per-position`.
    pub kind: String,
    /// Short name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Sources.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Rates for underlyings not listed.
    pub default: StandardRatesDocument,
    /// Rates by underlying.
    #[serde(default)]
    pub underlyings: BTreeMap<String, StandardRatesDocument>,
}

/// Standard-margin rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardRatesDocument {
    /// Short-option IM base.
    pub option_im_base: f64,
    /// Short-option IM floor.
    pub option_im_floor: f64,
    /// Short-option MM.
    pub option_mm: f64,
    /// Futures IM rate.
    pub future_im: f64,
    /// Futures MM rate.
    pub future_mm: f64,
    /// Rate increase per coin of size.
    pub future_size_increase: f64,
}

impl StandardRatesDocument {
    fn to_domain(self, path: &str) -> Result<StandardRates, Error> {
        let values = [
            ("option_im_base", self.option_im_base),
            ("option_im_floor", self.option_im_floor),
            ("option_mm", self.option_mm),
            ("future_im", self.future_im),
            ("future_mm", self.future_mm),
            ("future_size_increase", self.future_size_increase),
        ];
        for (name, value) in values {
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::invalid(
                    format!("{path}.{name}"),
                    format!("must be in [0, 1], got {value}"),
                ));
            }
        }
        Ok(StandardRates {
            option_im_base: self.option_im_base,
            option_im_floor: self.option_im_floor,
            option_mm: self.option_mm,
            future_im: self.future_im,
            future_mm: self.future_mm,
            future_size_increase: self.future_size_increase,
        })
    }

    fn from_domain(r: &StandardRates) -> StandardRatesDocument {
        StandardRatesDocument {
            option_im_base: r.option_im_base,
            option_im_floor: r.option_im_floor,
            option_mm: r.option_mm,
            future_im: r.future_im,
            future_mm: r.future_mm,
            future_size_increase: r.future_size_increase,
        }
    }
}

impl StandardDocument {
    pub(crate) fn to_domain(&self) -> Result<StandardMargin, Error> {
        let mut rates = BTreeMap::new();
        for (code, r) in &self.underlyings {
            let path = format!("underlyings.{code}");
            rates.insert(parse_currency(code, &path)?, r.to_domain(&path)?);
        }
        if self.name.is_empty() || self.version.is_empty() {
            return Err(Error::invalid("name", "name and version must not be empty"));
        }
        Ok(StandardMargin {
            name: self.name.clone(),
            version: self.version.clone(),
            description: self.description.clone(),
            sources: self.sources.clone(),
            rates,
            default_rates: self.default.to_domain("default")?,
        })
    }

    pub(crate) fn from_domain(s: &StandardMargin) -> StandardDocument {
        StandardDocument {
            kind: "per-position".into(),
            name: s.name.clone(),
            version: s.version.clone(),
            description: s.description.clone(),
            sources: s.sources.clone(),
            default: StandardRatesDocument::from_domain(&s.default_rates),
            underlyings: s
                .rates
                .iter()
                .map(|(c, r)| (c.to_string(), StandardRatesDocument::from_domain(r)))
                .collect(),
        }
    }
}
