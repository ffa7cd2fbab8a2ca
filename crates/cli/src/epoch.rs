//! An oracle epoch computed by the margin engine: one market snapshot, one methodology and a book
//! of accounts become one quantised [`AccountResult`] per account.
//!
//! The definitions here are part of what the oracle attests, so they are fixed and documented in
//! `docs/formats.md`:
//! - account id: keccak-256 of the account's id string (UTF-8);
//! - portfolio hash: [`formats::portfolio::portfolio_hash`];
//! - market hash: [`formats::market::market_hash`]; methodology hash: the profile's hash;
//! - amounts in USD 1e-18 units: IM and MM rounded up, mark-to-market (equity) rounded down;
//! - worst scenario: an index into the concatenation, in currency order, of every underlying's
//!   scenario set followed by one slot for a competing contingency (Derive's forward
//!   contingency); [`NO_SCENARIO`] when the account has no risk.
//!
//! Accounts are computed independently (`Engine::refresh_into`), so results, leaves and root are
//! the same for any thread count.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result, anyhow, bail};
use basics::{Currency, Money};
use margin::report::Quantised;
use margin::{AccountBook, Context, Engine, RefreshLine, RiskArrays, Worst};
use market::MarketSnapshot;
use oracle::{AccountResult, B256, EpochHeader};
use product::{Instrument, Portfolio};
use rayon::prelude::*;
use scenario::{Methodology, Numeraire};

/// The worst-scenario index of an account without any scenario loss (no positions at risk).
pub const NO_SCENARIO: u16 = u16::MAX;

/// What identifies one account in the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKey {
    /// The id as the book names it.
    pub id: String,
    /// keccak-256 of the id.
    pub account: B256,
    /// Hash of the canonical portfolio.
    pub portfolio_hash: B256,
}

impl AccountKey {
    /// The key of account `id` holding `portfolio`.
    #[must_use]
    pub fn new(id: &str, portfolio: &Portfolio) -> AccountKey {
        AccountKey {
            id: id.to_owned(),
            account: account_id(id),
            portfolio_hash: B256::from(formats::portfolio::portfolio_hash(portfolio)),
        }
    }
}

/// keccak-256 of an account id string.
#[must_use]
pub fn account_id(id: &str) -> B256 {
    oracle::keccak256(id.as_bytes())
}

/// The inputs every node of a federation must share for their reports to agree.
#[derive(Debug, Clone)]
pub struct EpochSource {
    /// The market snapshot.
    pub market: MarketSnapshot,
    /// The methodology and its canonical hash.
    pub methodology: Methodology,
    /// [`formats::methodology::Profile::hash`] of the methodology.
    pub methodology_hash: B256,
    /// The accounts by id.
    pub accounts: BTreeMap<String, Portfolio>,
}

/// The computed epoch, before the tree is built.
#[derive(Debug, Clone)]
pub struct ComputedEpoch {
    /// Header fields that come from the inputs (epoch number and window are the caller's).
    pub market_data_hash: B256,
    /// Methodology hash.
    pub methodology_hash: B256,
    /// Valuation time of the market, Unix seconds (rounded down).
    pub as_of_secs: u64,
    /// One result per account, in id order.
    pub results: Vec<AccountResult>,
    /// The keys, in the same order.
    pub keys: Vec<AccountKey>,
}

impl ComputedEpoch {
    /// The header of epoch `epoch`, valid for `valid_for_secs` after the valuation time.
    #[must_use]
    pub fn header(&self, epoch: u64, valid_for_secs: u64) -> EpochHeader {
        EpochHeader {
            epoch,
            as_of_secs: self.as_of_secs,
            valid_until_secs: self.as_of_secs.saturating_add(valid_for_secs),
            market_data_hash: self.market_data_hash,
            methodology_hash: self.methodology_hash,
            currency: Currency::USD,
        }
    }
}

/// Computes every account of `source`.
///
/// # Errors
/// A methodology that does not report in USD (an epoch has one currency), an instrument the
/// market cannot value, or any account the engine rejects (named by its id).
pub fn compute(source: &EpochSource) -> Result<ComputedEpoch> {
    if source.methodology.numeraire != Numeraire::Usd {
        bail!(
            "methodology {}: an epoch reports one currency (USD); segregated (per settlement \
             currency) methodologies cannot be attested",
            source.methodology.name
        );
    }
    let instruments: Vec<Instrument> = source
        .accounts
        .values()
        .flat_map(|p| p.positions().iter().map(|position| position.instrument))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let engine = Engine::new(source.methodology.clone())?;
    let arrays = engine.risk_arrays(&source.market, &instruments)?;
    let mut book = AccountBook::default();
    for (id, portfolio) in &source.accounts {
        let resolved =
            engine.resolve(&arrays, portfolio).with_context(|| format!("account {id:?}"))?;
        book.push(&resolved);
    }
    let keys: Vec<AccountKey> =
        source.accounts.par_iter().map(|(id, p)| AccountKey::new(id, p)).collect();
    let lines = refresh(&engine, &arrays, &source.market, &book).map_err(|e| {
        match e.account.and_then(|i| keys.get(i)) {
            Some(key) => anyhow!("account {:?}: {e}", key.id),
            None => anyhow!(e),
        }
    })?;
    let results = quantise(&arrays, &lines, &keys)?;
    Ok(ComputedEpoch {
        market_data_hash: B256::from(formats::market::market_hash(&source.market)),
        methodology_hash: source.methodology_hash,
        as_of_secs: as_of_secs(&source.market)?,
        results,
        keys,
    })
}

/// The market's valuation time in whole Unix seconds.
///
/// # Errors
/// A valuation time before 1970.
pub fn as_of_secs(market: &MarketSnapshot) -> Result<u64> {
    let nanos = market.valuation().0;
    u64::try_from(nanos.div_euclid(1_000_000_000))
        .map_err(|_| anyhow!("valuation time {nanos} ns is before 1970"))
}

/// The bulk refresh of `book`, one USD line per account.
///
/// # Errors
/// As [`Engine::refresh_into`].
pub fn refresh(
    engine: &Engine,
    arrays: &RiskArrays,
    market: &MarketSnapshot,
    book: &AccountBook,
) -> Result<Vec<RefreshLine>, margin::Error> {
    let liquidity = engine.liquidity(market, arrays);
    let ctx = Context::new(engine, arrays, market, &liquidity);
    let mut lines = Vec::with_capacity(book.len());
    engine.refresh_into(&ctx, book, &mut lines)?;
    Ok(lines)
}

/// Quantises refresh lines into account results: requirements up, equity down.
///
/// # Errors
/// A line count that differs from the keys, a non-finite figure, or a worst-scenario index that
/// does not fit the leaf.
pub fn quantise(
    arrays: &RiskArrays,
    lines: &[RefreshLine],
    keys: &[AccountKey],
) -> Result<Vec<AccountResult>> {
    if lines.len() != keys.len() {
        bail!("{} margin lines for {} accounts", lines.len(), keys.len());
    }
    let offsets = scenario_offsets(arrays);
    lines
        .par_iter()
        .zip(keys)
        .map(|(line, key)| {
            let q =
                Quantised::of(&line.figures).with_context(|| format!("account {:?}", key.id))?;
            let worst = worst_index(&offsets, line.figures.worst)
                .with_context(|| format!("account {:?}", key.id))?;
            Ok(AccountResult {
                account: key.account,
                initial_margin: q.initial_margin,
                maintenance_margin: q.maintenance_margin,
                mark_to_market: q.equity,
                worst_scenario: worst,
                portfolio_hash: key.portfolio_hash,
            })
        })
        .collect()
}

/// Where each underlying's scenarios start in the attested index space.
fn scenario_offsets(arrays: &RiskArrays) -> BTreeMap<Currency, usize> {
    let mut next = 0;
    arrays
        .scenario_sets()
        .iter()
        .map(|(currency, set)| {
            let start = next;
            // One extra slot: a competing contingency reports index `len`.
            next += set.len() + 1;
            (*currency, start)
        })
        .collect()
}

fn worst_index(offsets: &BTreeMap<Currency, usize>, worst: Option<Worst>) -> Result<u16> {
    let Some(worst) = worst else { return Ok(NO_SCENARIO) };
    let start = offsets
        .get(&worst.underlying)
        .ok_or_else(|| anyhow!("worst scenario in {} without a scenario set", worst.underlying))?;
    u16::try_from(start + worst.scenario).ok().filter(|index| *index != NO_SCENARIO).ok_or_else(
        || anyhow!("worst scenario index {} does not fit 16 bits", start + worst.scenario),
    )
}

/// The USD amount of a money value, for printing.
#[must_use]
pub fn usd_text(money: Money) -> String {
    basics::format_scaled(money.raw())
}
