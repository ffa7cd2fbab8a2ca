//! Contracts for `ballast price` and `ballast iv`.
//!
//! A request is a JSON array of contracts:
//!
//! ```json
//! [ { "model": "black76", "kind": "call", "forward": 100, "strike": 95, "years": 0.5,
//!     "vol": 0.6, "rate": 0.0, "inverse": true },
//!   { "model": "bsm", "kind": "put", "spot": 100, "strike": 95, "years": 1, "vol": 0.3,
//!     "rate": 0.05, "dividend": 0.01, "exercise": "american", "steps": 801 } ]
//! ```
//!
//! `ballast iv` reads the same shape with `price` instead of `vol`.

use pricing::{EuropeanInputs, EuropeanSpec, Exercise, Model, OptionRight, Settlement};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Steps of the binomial tree when a request asks for American exercise without `steps`.
pub const AMERICAN_STEPS_DEFAULT: usize = 801;

/// One contract as written by the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractDocument {
    /// `black76` or `bsm`.
    pub model: String,
    /// `call` or `put`.
    pub kind: String,
    /// Forward (black76).
    #[serde(default)]
    pub forward: Option<f64>,
    /// Spot (bsm).
    #[serde(default)]
    pub spot: Option<f64>,
    /// Strike.
    pub strike: f64,
    /// Years to expiry.
    pub years: f64,
    /// Volatility (for `price`).
    #[serde(default)]
    pub vol: Option<f64>,
    /// Option price (for `iv`), in the settlement currency.
    #[serde(default)]
    pub price: Option<f64>,
    /// Rate (see `pricing::EuropeanSpec::rate`).
    #[serde(default)]
    pub rate: f64,
    /// Dividend or foreign yield (bsm only).
    #[serde(default)]
    pub dividend: f64,
    /// Coin-settled when true.
    #[serde(default)]
    pub inverse: bool,
    /// `european` (default) or `american`.
    #[serde(default)]
    pub exercise: Option<String>,
    /// Binomial steps for American exercise.
    #[serde(default)]
    pub steps: Option<usize>,
}

/// A validated contract: inputs plus exercise style and tree steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contract {
    /// Validated European inputs (the volatility is a placeholder for `iv` requests).
    pub inputs: EuropeanInputs,
    /// Exercise style.
    pub exercise: Exercise,
    /// Tree steps for American exercise.
    pub steps: usize,
}

/// What the contract is used for, which decides whether `vol` or `price` is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Pricing: `vol` is required.
    Price,
    /// Implied volatility: `price` is required.
    ImpliedVol,
}

/// Parses a JSON array of contracts.
///
/// # Errors
/// `Syntax` for malformed JSON, unknown fields or a non-array document.
pub fn parse_contracts(text: &str) -> Result<Vec<ContractDocument>, Error> {
    let contracts: Vec<ContractDocument> = crate::from_json(text)?;
    if contracts.len() > basics::limits::PRICE_REQUESTS_MAX {
        let limit = basics::limits::PRICE_REQUESTS_MAX;
        return Err(Error::invalid("contracts", format!("more than {limit} contracts")));
    }
    Ok(contracts)
}

impl ContractDocument {
    /// Validates contract number `index`.
    ///
    /// # Errors
    /// `Invalid`/`Missing` located as `contracts[index].field`, with the pricer's reason.
    pub fn validate(&self, index: usize, purpose: Purpose) -> Result<Contract, Error> {
        let at = |field: &str| format!("contracts[{index}].{field}");
        let model = match self.model.as_str() {
            "black76" => Model::Black76,
            "bsm" => Model::BlackScholesMerton,
            other => {
                return Err(Error::invalid(
                    at("model"),
                    format!("unknown model {other:?}; expected black76 or bsm"),
                ));
            }
        };
        let right = match self.kind.as_str() {
            "call" => OptionRight::Call,
            "put" => OptionRight::Put,
            other => {
                return Err(Error::invalid(
                    at("kind"),
                    format!("unknown kind {other:?}; expected call or put"),
                ));
            }
        };
        let (name, underlying, other) = match model {
            Model::Black76 => ("forward", self.forward, ("spot", self.spot)),
            Model::BlackScholesMerton => ("spot", self.spot, ("forward", self.forward)),
        };
        if other.1.is_some() {
            return Err(Error::invalid(
                at(other.0),
                format!("does not apply to the {} model; give {name}", self.model),
            ));
        }
        let underlying = underlying.ok_or_else(|| {
            Error::missing(at(name), format!("{name} (required by {})", self.model))
        })?;
        let vol = match purpose {
            Purpose::Price => self.vol.ok_or_else(|| Error::missing(at("vol"), "vol"))?,
            Purpose::ImpliedVol => {
                self.price.ok_or_else(|| Error::missing(at("price"), "price"))?;
                0.0
            }
        };
        let exercise = match self.exercise.as_deref() {
            None | Some("european") => Exercise::European,
            Some("american") => Exercise::American,
            Some(other) => {
                return Err(Error::invalid(
                    at("exercise"),
                    format!("unknown exercise {other:?}; expected european or american"),
                ));
            }
        };
        let spec = EuropeanSpec {
            model,
            underlying,
            strike: self.strike,
            years: self.years,
            vol,
            rate: self.rate,
            dividend: self.dividend,
            right,
            settlement: if self.inverse { Settlement::Inverse } else { Settlement::Linear },
        };
        let inputs = EuropeanInputs::new(spec)
            .map_err(|e| Error::invalid(at(e.field), e.kind.to_string()))?;
        Ok(Contract { inputs, exercise, steps: self.steps.unwrap_or(AMERICAN_STEPS_DEFAULT) })
    }
}

/// Price and Greeks of one contract, as printed by `ballast price --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceResult {
    /// Present value.
    pub price: f64,
    /// ∂V/∂underlying.
    pub delta: f64,
    /// ∂²V/∂underlying².
    pub gamma: f64,
    /// ∂V/∂σ (per unit of volatility).
    pub vega: f64,
    /// −∂V/∂T per year.
    pub theta: f64,
    /// ∂V/∂rate.
    pub rho: f64,
    /// ∂²V/∂underlying∂σ (European only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vanna: Option<f64>,
    /// ∂²V/∂σ² (European only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volga: Option<f64>,
    /// The forward used.
    pub forward: f64,
    /// Binomial steps used (American only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str, purpose: Purpose) -> Result<Contract, Error> {
        parse_contracts(&format!("[{json}]"))?[0].validate(0, purpose)
    }

    const OK: &str =
        r#"{"model":"black76","kind":"call","forward":100,"strike":95,"years":0.5,"vol":0.6}"#;

    #[test]
    fn validates_and_names_fields() {
        assert!(one(OK, Purpose::Price).is_ok());
        let cases = [
            (OK.replace("\"call\"", "\"straddle\""), "contracts[0].kind"),
            (OK.replace("0.5", "-0.5"), "contracts[0].years"),
            (OK.replace("0.6", "-0.6"), "contracts[0].vol"),
            (OK.replace("\"forward\"", "\"spot\""), "contracts[0].spot"),
            (OK.replace("black76", "bsm").replace("\"forward\":100,", ""), "contracts[0].spot"),
            (OK.replace("black76", "sabr"), "contracts[0].model"),
            (OK.replace(",\"vol\":0.6", ""), "contracts[0].vol"),
        ];
        for (json, location) in cases {
            assert_eq!(one(&json, Purpose::Price).unwrap_err().location, location, "{json}");
        }
        let iv = OK.replace(",\"vol\":0.6", "");
        assert_eq!(one(&iv, Purpose::ImpliedVol).unwrap_err().location, "contracts[0].price");
        // JSON has no NaN; a quoted "NaN" is a type error located by line and column.
        let nan = OK.replace("0.6", "\"NaN\"");
        let err = one(&nan, Purpose::Price).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
