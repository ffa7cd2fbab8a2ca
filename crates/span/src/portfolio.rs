//! Portfolios of positions in a SPAN file's contracts, and their JSON shape
//! (`docs/formats.md`, "SPAN portfolio").

use pricing::OptionRight;
use serde::Deserialize;

use crate::error::{Error, ErrorKind};

/// Largest absolute position accepted, in contracts: beyond it an input is a units mistake.
pub const POSITION_QUANTITY_MAX_CONTRACTS: f64 = 1e9;

/// Which contract of a product a position holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ContractKind {
    /// A physical (cash) contract.
    Physical,
    /// A future.
    Future,
    /// An option.
    Option {
        /// Call or put.
        right: OptionRight,
        /// Strike per unit, as the file writes it.
        strike: f64,
    },
}

/// One position: a contract named as the file names it, and a signed size in contracts.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanPosition {
    /// Exchange code (`BIST`).
    pub exchange: String,
    /// Product code (`pfCode`, e.g. `AKBNKE`).
    pub product: String,
    /// Period (`pe`, e.g. `201606S0`; physicals `00000S`).
    pub period: String,
    /// Which contract.
    pub kind: ContractKind,
    /// Contracts, positive long, negative short.
    pub quantity: f64,
}

/// A validated portfolio of SPAN positions.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanPortfolio {
    positions: Vec<SpanPosition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortfolioDocument {
    positions: Vec<PositionDocument>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionDocument {
    exchange: String,
    product: String,
    kind: String,
    period: String,
    #[serde(default)]
    right: Option<String>,
    #[serde(default)]
    strike: Option<f64>,
    quantity: f64,
}

impl SpanPortfolio {
    /// Validates positions: finite, bounded sizes and positive strikes.
    ///
    /// # Errors
    /// `Invalid` naming the position (`positions[2].quantity`).
    pub fn new(positions: Vec<SpanPosition>) -> Result<SpanPortfolio, Error> {
        for (i, p) in positions.iter().enumerate() {
            let at = |field: &str| format!("positions[{i}].{field}");
            if !p.quantity.is_finite() || p.quantity.abs() > POSITION_QUANTITY_MAX_CONTRACTS {
                let why = format!(
                    "must be finite with |quantity| <= {POSITION_QUANTITY_MAX_CONTRACTS}, got {}",
                    p.quantity
                );
                return Err(Error::invalid(at("quantity"), why));
            }
            if let ContractKind::Option { strike, .. } = p.kind
                && (!strike.is_finite() || strike <= 0.0)
            {
                return Err(Error::invalid(at("strike"), format!("must be > 0, got {strike}")));
            }
        }
        Ok(SpanPortfolio { positions })
    }

    /// Reads the JSON shape documented in `docs/formats.md`.
    ///
    /// # Errors
    /// `Syntax` for malformed JSON or unknown fields; `Missing` or `Invalid` naming the field.
    pub fn from_json(text: &str) -> Result<SpanPortfolio, Error> {
        let doc: PortfolioDocument = serde_json::from_str(text)
            .map_err(|e| Error::new("portfolio", ErrorKind::Syntax(e.to_string())))?;
        let mut positions = Vec::with_capacity(doc.positions.len());
        for (i, p) in doc.positions.into_iter().enumerate() {
            let at = |field: &str| format!("positions[{i}].{field}");
            let kind = match p.kind.as_str() {
                "physical" => ContractKind::Physical,
                "future" => ContractKind::Future,
                "option" => {
                    let right = match p.right.as_deref() {
                        Some("C" | "call") => OptionRight::Call,
                        Some("P" | "put") => OptionRight::Put,
                        Some(other) => {
                            let why = format!("{other:?}; use C or P");
                            return Err(Error::invalid(at("right"), why));
                        }
                        None => return Err(Error::new(at("right"), ErrorKind::Missing)),
                    };
                    let strike =
                        p.strike.ok_or_else(|| Error::new(at("strike"), ErrorKind::Missing))?;
                    ContractKind::Option { right, strike }
                }
                other => {
                    let why = format!("{other:?}; use physical, future or option");
                    return Err(Error::invalid(at("kind"), why));
                }
            };
            positions.push(SpanPosition {
                exchange: p.exchange,
                product: p.product,
                period: p.period,
                kind,
                quantity: p.quantity,
            });
        }
        SpanPortfolio::new(positions)
    }

    /// The positions, in the order given.
    #[must_use]
    pub fn positions(&self) -> &[SpanPosition] {
        &self.positions
    }
}
