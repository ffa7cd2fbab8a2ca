//! Historical-simulation VaR and expected shortfall of accounts and of the whole book.
//!
//! The input is a [`LossMatrix`]: one row per account, one column per historical scenario, losses
//! positive (a gain is negative). The quantile convention is the order statistic, with no
//! interpolation, so that every figure is one of the inputs or a plain mean of them:
//!
//! - VaR at level `α` over `n` scenarios is the `k`-th largest loss, `k = ⌈n · (1 − α)⌉`
//!   (the 10th worst of 1,000 at 99 %, the 3rd worst of 250);
//! - ES at level `α` is the mean of the `k = ⌈n · (1 − α)⌉` largest losses, summed from the
//!   worst down (the 25 worst of 1,000 at 97.5 %), so ES is at least VaR at the same level;
//! - ties between equal losses are broken by scenario index, the lower first, which decides
//!   which scenarios form the book's tail when two have the same book loss.
//!
//! The book's loss in a scenario is the sum of the accounts' losses. Each account's Euler
//! contribution to the book's ES is the mean of its own losses over the book's tail scenarios;
//! the contributions add up to the book's ES (up to the rounding of the sums), which is Euler's
//! theorem for a positively homogeneous measure.
//!
//! Accounts are computed independently, and the book's sum runs over fixed chunks of accounts
//! combined in order, so every figure has the same bits for any thread count.

mod horizon;

#[cfg(test)]
mod tests;

pub use horizon::{RISKMETRICS_LAMBDA, filtered_scenarios, overlapping_sums, square_root_of_time};

use std::cmp::Ordering;

use rayon::prelude::*;

use crate::confidence::Confidence;
use crate::error::{Error, ErrorKind, Location};
use crate::limits::{ACCOUNTS_MAX, HISTORY_SCENARIOS_MAX, MATRIX_CELLS_MAX};

/// Accounts summed by one task of the book's sum: large enough that a task streams megabytes,
/// small enough that a million accounts give hundreds of tasks to balance.
const SUM_CHUNK_ACCOUNTS: usize = 2_048;

/// The two levels a capital figure is quoted at; there is no default, so each caller names them
/// (Basel: VaR at 99 %, FRTB: ES at 97.5 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// The VaR level.
    pub var: Confidence,
    /// The ES level.
    pub es: Confidence,
}

/// VaR and ES of one loss distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TailRisk {
    /// The value at risk: the `⌈n · (1 − α)⌉`-th largest loss.
    pub var: f64,
    /// The expected shortfall: the mean of the `⌈n · (1 − α)⌉` largest losses.
    pub es: f64,
}

/// Scenario losses of a book, borrowed: account `a`'s loss in scenario `s` is
/// `losses[a · scenarios + s]`. Every cell is finite.
#[derive(Debug, Clone, Copy)]
pub struct LossMatrix<'a> {
    losses: &'a [f64],
    accounts: usize,
    scenarios: usize,
}

impl<'a> LossMatrix<'a> {
    /// A matrix of `accounts` rows of `scenarios` losses each, row after row.
    ///
    /// # Errors
    ///
    /// No accounts or no scenarios, more than [`ACCOUNTS_MAX`], [`HISTORY_SCENARIOS_MAX`] or
    /// [`MATRIX_CELLS_MAX`], a slice that is not `accounts × scenarios` long, or a cell that is
    /// not finite (the first, by account and scenario).
    pub fn new(
        losses: &'a [f64],
        accounts: usize,
        scenarios: usize,
    ) -> Result<LossMatrix<'a>, Error> {
        if accounts == 0 || scenarios == 0 {
            return Err(Error::range("losses", "at least one account and one scenario"));
        }
        if accounts > ACCOUNTS_MAX {
            return Err(Error::limit("accounts", "ACCOUNTS_MAX", ACCOUNTS_MAX));
        }
        if scenarios > HISTORY_SCENARIOS_MAX {
            return Err(Error::limit("scenarios", "HISTORY_SCENARIOS_MAX", HISTORY_SCENARIOS_MAX));
        }
        let cells = accounts * scenarios;
        if cells > MATRIX_CELLS_MAX {
            return Err(Error::limit("losses", "MATRIX_CELLS_MAX", MATRIX_CELLS_MAX));
        }
        if losses.len() != cells {
            let rule = format!("{} cells for {accounts} × {scenarios}", losses.len());
            return Err(Error::range("losses", rule));
        }
        // Whole rows are checked without branching (so the scan vectorises), and only a row
        // that fails is searched for its first bad cell.
        let all_finite = |row: &[f64]| row.iter().fold(true, |ok, loss| ok & loss.is_finite());
        let rows = losses.par_chunks_exact(scenarios);
        if let Some(account) = rows.position_first(|row| !all_finite(row)) {
            let row = &losses[account * scenarios..(account + 1) * scenarios];
            let Some(scenario) = row.iter().position(|loss| !loss.is_finite()) else {
                panic!("Invariant: a row that is not all finite has a cell that is not")
            };
            let at = Location::Cell { account, scenario };
            return Err(Error::new("losses", Some(at), ErrorKind::NotFinite));
        }
        Ok(LossMatrix { losses, accounts, scenarios })
    }

    /// The number of accounts (rows).
    #[must_use]
    pub fn accounts(&self) -> usize {
        self.accounts
    }

    /// The number of scenarios (columns).
    #[must_use]
    pub fn scenarios(&self) -> usize {
        self.scenarios
    }

    /// One account's losses, by scenario.
    #[must_use]
    pub fn account(&self, account: usize) -> &'a [f64] {
        &self.losses[account * self.scenarios..(account + 1) * self.scenarios]
    }

    fn rows(&self) -> rayon::slice::ChunksExact<'a, f64> {
        self.losses.par_chunks_exact(self.scenarios)
    }
}

/// The book's figures: its loss per scenario, its VaR and ES, the scenarios of its ES tail and
/// each account's Euler contribution to that ES.
#[derive(Debug, Clone, PartialEq)]
pub struct BookRisk {
    /// The book's loss in each scenario: the sum of every account's.
    pub losses: Vec<f64>,
    /// The book's VaR and ES.
    pub risk: TailRisk,
    /// The scenarios averaged by the ES, worst first (ties: lower index first).
    pub tail: Vec<usize>,
    /// Each account's mean loss over `tail`; they sum to `risk.es` up to rounding.
    pub contributions: Vec<f64>,
}

/// VaR and ES of one series of scenario losses.
///
/// # Errors
///
/// As [`LossMatrix::new`] for a single account.
pub fn tail_risk(losses: &[f64], levels: Levels) -> Result<TailRisk, Error> {
    let matrix = LossMatrix::new(losses, 1, losses.len())?;
    let mut scratch = Vec::new();
    Ok(account_tail(&mut scratch, matrix.account(0), levels))
}

/// VaR and ES of every account, in account order, in parallel (one scratch row per task, no
/// allocation per account).
#[must_use]
pub fn account_risks(matrix: &LossMatrix<'_>, levels: Levels) -> Vec<TailRisk> {
    matrix
        .rows()
        .map_init(
            || Vec::with_capacity(matrix.scenarios),
            |scratch, row| account_tail(scratch, row, levels),
        )
        .collect()
}

/// The book's loss per scenario, VaR, ES, ES tail and Euler contributions.
#[must_use]
pub fn book_risk(matrix: &LossMatrix<'_>, levels: Levels) -> BookRisk {
    let losses = book_losses(matrix);
    let counts = TailCounts::new(matrix.scenarios, levels);
    let mut order = Vec::with_capacity(matrix.scenarios);
    let worst = worst_scenarios(&losses, counts.deepest(), &mut order);
    let worst_losses: Vec<f64> = worst.iter().map(|&s| losses[s]).collect();
    let risk = counts.measure(&worst_losses);
    let tail = worst[..counts.es].to_vec();
    let contributions = matrix
        .rows()
        .map(|row| tail.iter().map(|&s| row[s]).sum::<f64>() / counts.es as f64)
        .collect();
    BookRisk { losses, risk, tail, contributions }
}

/// The sum of every account's row: fixed chunks of accounts summed in parallel, then the
/// chunks' sums added in chunk order, so the bits do not depend on the thread count.
fn book_losses(matrix: &LossMatrix<'_>) -> Vec<f64> {
    let scenarios = matrix.scenarios;
    let partials: Vec<Vec<f64>> = matrix
        .losses
        .par_chunks(SUM_CHUNK_ACCOUNTS * scenarios)
        .map(|chunk| {
            let mut sum = vec![0.0; scenarios];
            for row in chunk.chunks_exact(scenarios) {
                sum.iter_mut().zip(row).for_each(|(total, loss)| *total += loss);
            }
            sum
        })
        .collect();
    let mut book = vec![0.0; scenarios];
    for partial in &partials {
        book.iter_mut().zip(partial).for_each(|(total, loss)| *total += loss);
    }
    book
}

/// How many of the worst scenarios the VaR and the ES look at.
#[derive(Debug, Clone, Copy)]
struct TailCounts {
    var: usize,
    es: usize,
}

impl TailCounts {
    fn new(scenarios: usize, levels: Levels) -> TailCounts {
        let counts = TailCounts {
            var: levels.var.tail_count(scenarios),
            es: levels.es.tail_count(scenarios),
        };
        assert!(counts.var >= 1 && counts.es >= 1, "Invariant: a tail holds a scenario");
        counts
    }

    fn deepest(self) -> usize {
        self.var.max(self.es)
    }

    /// VaR and ES from the deepest tail's losses, worst first.
    fn measure(self, worst_first: &[f64]) -> TailRisk {
        assert!(worst_first.len() == self.deepest(), "Invariant: the whole tail is given");
        let var = worst_first[self.var - 1];
        let es = worst_first[..self.es].iter().sum::<f64>() / self.es as f64;
        TailRisk { var, es }
    }
}

/// The worst first, equal losses in any order (they are interchangeable in every figure).
#[expect(clippy::trivially_copy_pass_by_ref, reason = "the signature `sort_by` takes")]
fn worst_first(a: &f64, b: &f64) -> Ordering {
    b.total_cmp(a)
}

fn account_tail(scratch: &mut Vec<f64>, row: &[f64], levels: Levels) -> TailRisk {
    let counts = TailCounts::new(row.len(), levels);
    let deepest = counts.deepest();
    scratch.clear();
    scratch.extend_from_slice(row);
    if deepest < scratch.len() {
        scratch.select_nth_unstable_by(deepest - 1, worst_first);
    }
    let tail = &mut scratch[..deepest];
    tail.sort_unstable_by(worst_first);
    counts.measure(tail)
}

/// The indices of the `count` largest losses, worst first, ties by lower index.
fn worst_scenarios<'o>(losses: &[f64], count: usize, order: &'o mut Vec<usize>) -> &'o [usize] {
    let by_loss = |a: &usize, b: &usize| losses[*b].total_cmp(&losses[*a]).then(a.cmp(b));
    order.clear();
    order.extend(0..losses.len());
    if count < order.len() {
        order.select_nth_unstable_by(count - 1, by_loss);
    }
    let worst = &mut order[..count];
    worst.sort_unstable_by(by_loss);
    worst
}
