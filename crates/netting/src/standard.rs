//! The standard risk vector: a published, versioned, hashed scenario set on which every venue
//! expresses its accounts' P&L, and the quantised vector a venue commits per account.

use margin::{Engine, VectorLayout};
use sha3::{Digest, Keccak256};

use crate::limits::QUANTUM_MAX_USD;
use crate::{Error, ErrorKind};

/// The standard scenario set: a linear methodology (`margin::PricedMarket::check_linear`)
/// whose scenarios (price × volatility × skew per underlying, coin collateral moving with its
/// underlying) and offsets every venue and every netting party use, identified by the
/// canonical hash of its methodology file.
#[derive(Debug, Clone)]
pub struct StandardSet {
    /// The methodology whose scenarios, offsets and loss factors define the set.
    pub engine: Engine,
    /// Its name and version, as published.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The canonical hash of its methodology file.
    pub hash: [u8; 32],
    /// The size of one cell of a committed vector, in USD (1e-6 USD by default).
    pub quantum_usd: f64,
}

/// The default quantum of a committed cell: one micro-dollar.
pub const QUANTUM_DEFAULT_USD: f64 = 1e-6;

impl StandardSet {
    /// Checks the quantum.
    ///
    /// # Errors
    /// `OutOfRange` for a quantum that is not positive, finite and at most
    /// [`QUANTUM_MAX_USD`].
    pub fn new(
        engine: Engine,
        name: &str,
        version: &str,
        hash: [u8; 32],
        quantum_usd: f64,
    ) -> Result<StandardSet, Error> {
        if !(quantum_usd > 0.0 && quantum_usd <= QUANTUM_MAX_USD) {
            return Err(Error::range("standard.quantum_usd", format!("in (0, {QUANTUM_MAX_USD}]")));
        }
        Ok(StandardSet { engine, name: name.into(), version: version.into(), hash, quantum_usd })
    }
}

/// An account's P&L at one venue on the standard set, in whole quanta: every cell rounded down
/// (towards the loss), so a sum of committed vectors never understates a combined loss.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RiskVector {
    /// Cells in the layout's order.
    pub cells: Vec<i64>,
}

/// Largest cell magnitude, in quanta: sums of up to 64 venues' cells stay inside `i64`.
const CELL_MAX_QUANTA: f64 = 1.4e17;

impl RiskVector {
    /// Quantises `pnl` (USD) to `quantum_usd`, rounding every cell down.
    ///
    /// # Errors
    /// `OutOfRange` for a cell beyond ±1.4e17 quanta.
    pub fn quantise(pnl: &[f64], quantum_usd: f64, field: &str) -> Result<RiskVector, Error> {
        let mut cells = Vec::with_capacity(pnl.len());
        for (s, p) in pnl.iter().enumerate() {
            let q = (p / quantum_usd).floor();
            if q.is_nan() || q.abs() > CELL_MAX_QUANTA {
                return Err(Error::range(format!("{field}[{s}]"), "P&L beyond ±1.4e17 quanta"));
            }
            #[expect(clippy::cast_possible_truncation, reason = "whole, and inside the range")]
            cells.push(q as i64);
        }
        Ok(RiskVector { cells })
    }

    /// The commitment to this vector: keccak-256 of [`RiskVector::encode_into`]'s bytes, so a
    /// vector cannot be read against another set or layout. (A netter hashes many at once with
    /// `basics::keccak`, the same digest.)
    #[must_use]
    pub fn hash(&self, standard: &[u8; 32], layout: &VectorLayout) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(32 + 16 * layout.units.len() + 8 * self.cells.len());
        self.encode_into(standard, layout, &mut bytes);
        Keccak256::digest(&bytes).into()
    }

    /// Appends the committed bytes to `out`: the standard set's hash, the layout (each
    /// underlying's code, a zero byte and its scenario count, big-endian u32) and the cells
    /// (big-endian i64).
    pub fn encode_into(&self, standard: &[u8; 32], layout: &VectorLayout, out: &mut Vec<u8>) {
        out.extend_from_slice(standard);
        for (underlying, count) in &layout.units {
            out.extend_from_slice(underlying.as_str().as_bytes());
            out.push(0);
            out.extend_from_slice(&u32::try_from(*count).unwrap_or(u32::MAX).to_be_bytes());
        }
        for c in &self.cells {
            out.extend_from_slice(&c.to_be_bytes());
        }
    }

    /// Adds `other` cell by cell.
    ///
    /// # Errors
    /// `OutOfRange` when a sum leaves `i64` or the lengths differ.
    pub fn add(&mut self, other: &RiskVector) -> Result<(), Error> {
        if self.cells.len() != other.cells.len() {
            return Err(Error::range("vector", "vectors of different layouts"));
        }
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            *a = a.checked_add(*b).ok_or_else(|| {
                Error::new("vector", ErrorKind::OutOfRange("sum overflows".into()))
            })?;
        }
        Ok(())
    }

    /// The cells in USD, into `out` (cleared first): a buffer the caller reuses.
    pub fn to_usd_into(&self, quantum_usd: f64, out: &mut Vec<f64>) {
        out.clear();
        #[expect(clippy::cast_precision_loss, reason = "exact below 2^53 quanta, rounded past")]
        out.extend(self.cells.iter().map(|c| *c as f64 * quantum_usd));
    }
}
