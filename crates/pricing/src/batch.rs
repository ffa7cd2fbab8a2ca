//! Struct-of-arrays batch valuation: the kernels behind risk arrays.
//!
//! Two entry points share the lane-generic kernel of `kernel.rs`:
//!
//! - [`black76_prices`]: general Black-76 prices from forwards, strikes, times, vols, discount
//!   factors and call/put signs (one `ln`, one `sqrt`, one `exp` per option).
//! - [`black_over_strike`]: the normalised value `B/K` from precomputed log-moneyness, `F/K` and
//!   total volatility. Risk arrays revalue one instrument under many scenarios, and a price shock
//!   `m` only adds `ln(1 + m)` to the log-moneyness, so the margin engine prepares these inputs
//!   once per (instrument, scenario) row and calls this kernel.
//!
//! [`Execution`] picks the scalar instantiation, the 4-lane SIMD instantiation on one thread, or
//! SIMD across rayon's pool in fixed chunks. Each option is computed independently of its
//! neighbours, and the scalar and SIMD kernels agree bit for bit, so every mode and every thread
//! count gives the same bits; `tests::results_are_identical_in_every_mode` checks it.

// `black76_lane` must inline into both instantiations' loops (see kernel.rs).
#![allow(clippy::inline_always)]

use rayon::prelude::*;
use wide::f64x4 as f64x8;

use crate::kernel::{self, Lane, ln_positive};
use crate::{Error, ErrorKind};

/// Options per SIMD step: two AVX2 registers, so that two independent dependency chains overlap.
const LANES: usize = 4;

/// The `LANES` values at `start`, as one vector load (the slice-to-array conversion lets the
/// compiler drop per-element bounds checks and inserts).
fn lanes_at(values: &[f64], start: usize) -> f64x8 {
    let chunk: &[f64; LANES] = values[start..start + LANES].try_into().unwrap_or(&[0.0; LANES]);
    f64x8::new(*chunk)
}

/// Options per parallel work item: big enough to amortise scheduling, small enough to balance.
const CHUNK_OPTIONS: usize = 4_096;

/// How to run a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// One option at a time on the calling thread (the reference instantiation).
    Scalar,
    /// Four options per instruction on the calling thread.
    Simd,
    /// Four options per instruction, chunks spread over rayon's current thread pool.
    SimdParallel,
}

/// Inputs of a batch of Black-76 valuations, one slice per field, all the same length.
#[derive(Debug, Clone, Copy)]
pub struct Black76Batch<'a> {
    /// Forwards (> 0).
    pub forward: &'a [f64],
    /// Strikes (> 0).
    pub strike: &'a [f64],
    /// Times to expiry in years (>= 0).
    pub years: &'a [f64],
    /// Volatilities (>= 0).
    pub vol: &'a [f64],
    /// Discount factors applied to the undiscounted value (> 0).
    pub discount: &'a [f64],
    /// +1 for calls, −1 for puts.
    pub omega: &'a [f64],
}

/// A field's name, its values and the domain test each value must pass.
type FieldCheck<'a> = (&'static str, &'a [f64], fn(f64) -> bool);

impl Black76Batch<'_> {
    /// Number of options.
    #[must_use]
    pub fn len(&self) -> usize {
        self.forward.len()
    }

    /// Whether the batch is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.forward.is_empty()
    }

    /// Checks lengths and domains, naming the first offending field and index.
    ///
    /// # Errors
    /// `OutOfRange` for a length mismatch or an out-of-domain value (NaN included).
    pub fn validate(&self) -> Result<(), Error> {
        let n = self.len();
        let fields: [FieldCheck<'_>; 6] = [
            ("forward", self.forward, |v| v > 0.0 && v < f64::INFINITY),
            ("strike", self.strike, |v| v > 0.0 && v < f64::INFINITY),
            ("years", self.years, |v| (0.0..=basics::limits::EXPIRY_YEARS_MAX).contains(&v)),
            ("vol", self.vol, |v| (0.0..=basics::limits::VOLATILITY_MAX).contains(&v)),
            ("discount", self.discount, |v| v > 0.0 && v < f64::INFINITY),
            ("omega", self.omega, |v| v == 1.0 || v == -1.0),
        ];
        for (name, values, _) in &fields {
            if values.len() != n {
                let rule = format!("has {} entries, forward has {n}", values.len());
                return Err(Error::range(name, rule));
            }
        }
        // One branch-free pass decides; only a failing batch pays for locating the culprit.
        if self.all_in_domain() {
            return Ok(());
        }
        for (name, values, ok) in fields {
            if let Some(i) = values.iter().position(|&v| !ok(v)) {
                let rule = format!("entry {i} is {}", values[i]);
                return Err(Error::new(name, ErrorKind::OutOfRange(rule)));
            }
        }
        Ok(())
    }

    // Bitwise `&` on purpose: the loop must stay branch-free to vectorise.
    #[allow(clippy::needless_bitwise_bool)]
    fn all_in_domain(&self) -> bool {
        let years_max = basics::limits::EXPIRY_YEARS_MAX;
        let vol_max = basics::limits::VOLATILITY_MAX;
        let mut ok = true;
        for i in 0..self.len() {
            // Comparisons with NaN are false, so NaN fails every test below.
            let (f, k, d) = (self.forward[i], self.strike[i], self.discount[i]);
            let positive = (f > 0.0) & (f < f64::INFINITY) & (k > 0.0) & (k < f64::INFINITY);
            let t = (self.years[i] >= 0.0) & (self.years[i] <= years_max);
            let v = (self.vol[i] >= 0.0) & (self.vol[i] <= vol_max);
            let w = (d > 0.0) & (d < f64::INFINITY) & (self.omega[i].abs() == 1.0);
            ok &= positive & t & v & w;
        }
        ok
    }
}

#[inline(always)]
fn black76_lane<L: Lane>(f: L, k: L, t: L, vol: L, discount: L, omega: L) -> L {
    let fk = f / k;
    let x = ln_positive(fk);
    let v = vol * t.sqrt();
    discount * k * kernel::black_over_strike(x, fk, v, omega)
}

/// Black-76 prices of a batch, written to `out`.
///
/// # Errors
/// As [`Black76Batch::validate`], and `OutOfRange` when `out` has the wrong length. Nothing is
/// written unless the whole batch is valid.
pub fn black76_prices(
    batch: &Black76Batch<'_>,
    out: &mut [f64],
    execution: Execution,
) -> Result<(), Error> {
    batch.validate()?;
    if out.len() != batch.len() {
        return Err(Error::range(
            "out",
            format!("has {} entries for {} options", out.len(), batch.len()),
        ));
    }
    let run = |start: usize, out: &mut [f64], simd: bool| {
        let end = start + out.len();
        let b = Black76Batch {
            forward: &batch.forward[start..end],
            strike: &batch.strike[start..end],
            years: &batch.years[start..end],
            vol: &batch.vol[start..end],
            discount: &batch.discount[start..end],
            omega: &batch.omega[start..end],
        };
        let lanes = if simd { out.len() / LANES * LANES } else { 0 };
        for i in (0..lanes).step_by(LANES) {
            let load = |s: &[f64]| lanes_at(s, i);
            let value = black76_lane(
                load(b.forward),
                load(b.strike),
                load(b.years),
                load(b.vol),
                load(b.discount),
                load(b.omega),
            );
            out[i..i + LANES].copy_from_slice(&value.to_array());
        }
        for (i, slot) in out.iter_mut().enumerate().skip(lanes) {
            *slot = black76_lane(
                b.forward[i],
                b.strike[i],
                b.years[i],
                b.vol[i],
                b.discount[i],
                b.omega[i],
            );
        }
    };
    dispatch(out, execution, run);
    Ok(())
}

/// Normalised Black values `B/K` from log-moneyness `x = ln(F/K)`, `fk = F/K`, total
/// volatility `v = σ√T` and `omega` (+1 call, −1 put), written to `out`.
///
/// This is the hot loop of risk arrays; inputs are prepared by the margin engine, which has
/// already validated the market data, so only lengths are checked here.
///
/// # Errors
/// `OutOfRange` when the slices differ in length.
pub fn black_over_strike(
    x: &[f64],
    fk: &[f64],
    v: &[f64],
    omega: &[f64],
    out: &mut [f64],
    execution: Execution,
) -> Result<(), Error> {
    let n = out.len();
    for (name, len) in [("x", x.len()), ("fk", fk.len()), ("v", v.len()), ("omega", omega.len())] {
        if len != n {
            return Err(Error::range(name, format!("has {len} entries, out has {n}")));
        }
    }
    let run = |start: usize, out: &mut [f64], simd: bool| {
        let end = start + out.len();
        let (x, fk, v, omega) =
            (&x[start..end], &fk[start..end], &v[start..end], &omega[start..end]);
        let lanes = if simd { out.len() / LANES * LANES } else { 0 };
        for i in (0..lanes).step_by(LANES) {
            let load = |s: &[f64]| lanes_at(s, i);
            let value = kernel::black_over_strike(load(x), load(fk), load(v), load(omega));
            out[i..i + LANES].copy_from_slice(&value.to_array());
        }
        for (i, slot) in out.iter_mut().enumerate().skip(lanes) {
            *slot = kernel::black_over_strike(x[i], fk[i], v[i], omega[i]);
        }
    };
    dispatch(out, execution, run);
    Ok(())
}

/// Runs `run(start, chunk, simd)` over `out` in the requested mode.
fn dispatch(out: &mut [f64], execution: Execution, run: impl Fn(usize, &mut [f64], bool) + Sync) {
    match execution {
        Execution::Scalar => run(0, out, false),
        Execution::Simd => run(0, out, true),
        Execution::SimdParallel => out
            .par_chunks_mut(CHUNK_OPTIONS)
            .enumerate()
            .for_each(|(chunk, values)| run(chunk * CHUNK_OPTIONS, values, true)),
    }
}

#[cfg(test)]
mod tests;
