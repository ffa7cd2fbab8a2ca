//! What the risk oracle attests: one market snapshot, one methodology and a book of accounts
//! become one quantised [`AccountResult`] per account.
//!
//! The definitions here are part of what the oracle attests, so they are fixed and documented in
//! `docs/formats.md`:
//! - account id: keccak-256 of the account's id string (UTF-8), or, for a federation that salts
//!   its leaves, [`oracle::salted_account_id`] of the id and its [`oracle::account_salt`] under
//!   the federation's salting secret (the holder is given its salt; nobody else can tell whose
//!   leaf is whose);
//! - portfolio hash: [`formats::portfolio::portfolio_hash`];
//! - market hash: [`formats::market::market_hash`]; methodology hash: the profile's hash;
//! - amounts in USD 1e-18 units: IM and MM rounded up, mark-to-market (equity) rounded down
//!   ([`margin::report::Quantised`]);
//! - worst scenario: a [`ScenarioSpace`] index, the concatenation in currency order of every
//!   underlying's scenario set, each followed by one slot for its competing contingency (Derive's
//!   forward contingency); [`NO_SCENARIO`] on the wire when the account has no risk.
//!
//! Accounts are computed independently (`PricedMarket::refresh`), so results, leaves and root are
//! the same for any thread count.
//!
//! **API Boundary:** the oracle nodes, the CLI's `attest` and the benchmarks build epochs only
//! through [`compute`] (or [`quantise`] on a refresh they timed themselves); nothing else decides
//! what a leaf holds.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::sync::Arc;

use basics::{Currency, Money};
use margin::report::Quantised;
use margin::{AccountBook, Engine, PricedMarket, Refresh, Worst};
use market::MarketSnapshot;
use methodology::{Methodology, Numeraire};
use oracle::{AccountResult, B256, EpochHeader};
use product::{Instrument, Portfolio};
use rayon::prelude::*;

mod venues;

pub use venues::venue_results;

/// The worst-scenario index of an account without any scenario loss (no positions at risk), as
/// the leaf encodes it.
pub const NO_SCENARIO: u16 = u16::MAX;

/// Why an epoch could not be computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// The account at fault, by its id, when one is.
    pub account: Option<String>,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// What went wrong, without the account.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The methodology margins per settlement currency; an epoch reports one currency (USD).
    Segregated {
        /// The methodology's name.
        methodology: String,
    },
    /// The engine refused the market, the methodology or an account.
    Margin(margin::Error),
    /// The market's valuation time is before 1970.
    BeforeEpoch {
        /// The valuation time in nanoseconds.
        nanos: i64,
    },
    /// A worst scenario that the leaf's 16-bit index cannot hold.
    ScenarioIndex(String),
    /// A netted account's leg at a venue the cross-venue book does not hold.
    UnknownVenue(String),
    /// Parts of an epoch that do not make one epoch (see [`assemble`]).
    Parts(String),
    /// Results and keys of different lengths.
    Mismatch {
        /// Results given.
        results: usize,
        /// Accounts keyed.
        keys: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(account) = &self.account {
            write!(f, "account {account:?}: ")?;
        }
        match &self.kind {
            ErrorKind::Segregated { methodology } => write!(
                f,
                "methodology {methodology}: an epoch reports one currency (USD); segregated \
                 (per settlement currency) methodologies cannot be attested"
            ),
            ErrorKind::Margin(e) => write!(f, "{e}"),
            ErrorKind::BeforeEpoch { nanos } => {
                write!(f, "valuation time {nanos} ns is before 1970")
            }
            ErrorKind::ScenarioIndex(why) => write!(f, "worst scenario: {why}"),
            ErrorKind::UnknownVenue(venue) => write!(f, "unknown venue {venue:?}"),
            ErrorKind::Parts(why) => write!(f, "epoch parts: {why}"),
            ErrorKind::Mismatch { results, keys } => {
                write!(f, "{results} margin results for {keys} accounts")
            }
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    fn new(kind: ErrorKind) -> Error {
        Error { account: None, kind }
    }
}

impl From<margin::Error> for Error {
    fn from(e: margin::Error) -> Error {
        Error::new(ErrorKind::Margin(e))
    }
}

/// What identifies one account in the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKey {
    /// The id as the book names it.
    pub id: String,
    /// The leaf's account field: keccak-256 of the id, or of its salt and the id.
    pub account: B256,
    /// The account's salt, when the federation salts its leaves.
    pub salt: Option<B256>,
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
            salt: None,
            portfolio_hash: B256::from(formats::portfolio::portfolio_hash(portfolio)),
        }
    }

    /// The key of account `id` holding `portfolio`, its leaf salted under `secret`.
    #[must_use]
    pub fn salted(id: &str, portfolio: &Portfolio, secret: &[u8]) -> AccountKey {
        let salt = oracle::account_salt(secret, id);
        AccountKey {
            account: oracle::salted_account_id(&salt, id),
            salt: Some(salt),
            ..AccountKey::new(id, portfolio)
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
    pub market: Arc<MarketSnapshot>,
    /// The methodology.
    pub methodology: Methodology,
    /// `formats::methodology::Profile::hash` of the methodology.
    pub methodology_hash: B256,
    /// The accounts by id.
    pub accounts: BTreeMap<String, Portfolio>,
    /// The federation's salting secret, when its leaves are salted (see [`AccountKey::salted`]).
    pub salt_secret: Option<Vec<u8>>,
}

/// The computed epoch, before the tree is built.
#[derive(Debug, Clone)]
pub struct ComputedEpoch {
    /// Hash of the market snapshot.
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
/// market cannot value, or any account the engine rejects (the lowest, named by its id): an
/// epoch attests every account of its book or none.
pub fn compute(source: &EpochSource) -> Result<ComputedEpoch, Error> {
    let inputs = EpochInputs {
        market: Arc::clone(&source.market),
        methodology: source.methodology.clone(),
        methodology_hash: source.methodology_hash,
    };
    let ids: Vec<(&str, &Portfolio)> =
        source.accounts.iter().map(|(id, p)| (id.as_str(), p)).collect();
    let keys = keys(&ids, source.salt_secret.as_deref());
    let book: Vec<(&AccountKey, &Portfolio)> = keys.iter().zip(source.accounts.values()).collect();
    let Some(whole) = compute_parts(&inputs, &[book])?.pop() else {
        panic!("Invariant: one part in, one part out")
    };
    Ok(whole)
}

/// What an epoch shares across its accounts: the market and the methodology.
#[derive(Debug, Clone)]
pub struct EpochInputs {
    /// The market snapshot.
    pub market: Arc<MarketSnapshot>,
    /// The methodology.
    pub methodology: Methodology,
    /// `formats::methodology::Profile::hash` of the methodology.
    pub methodology_hash: B256,
}

/// The keys of `accounts`, salted under `salt_secret` when there is one. A key changes only
/// with its account's portfolio, so a holder of a long-lived book (a bus worker) computes it
/// once per write rather than once per epoch.
#[must_use]
pub fn keys(accounts: &[(&str, &Portfolio)], salt_secret: Option<&[u8]>) -> Vec<AccountKey> {
    (accounts.par_iter())
        .map(|(id, p)| match salt_secret {
            Some(secret) => AccountKey::salted(id, p, secret),
            None => AccountKey::new(id, p),
        })
        .collect()
}

/// Computes each part of a book (accounts with their [`keys`], in id order, each id once) on
/// one pricing of the market for the instruments of all parts. An account's result does not
/// depend on the instruments of other accounts (`Engine::price_for`: figures are the same in
/// any universe that holds them) nor on which part it is in, so [`assemble`] of the parts of a
/// book equals [`compute`] of the book.
///
/// # Errors
/// As [`compute`]; a refused account is the lowest of the first part that refuses one.
pub fn compute_parts(
    inputs: &EpochInputs,
    parts: &[Vec<(&AccountKey, &Portfolio)>],
) -> Result<Vec<ComputedEpoch>, Error> {
    if inputs.methodology.numeraire != Numeraire::Usd {
        let methodology = inputs.methodology.name.clone();
        return Err(Error::new(ErrorKind::Segregated { methodology }));
    }
    let instruments: Vec<Instrument> = (parts.iter().flat_map(|accounts| accounts.iter()))
        .flat_map(|(_, p)| p.positions().iter().map(|position| position.instrument))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let engine = Engine::new(inputs.methodology.clone())?;
    let priced = engine.price(&inputs.market, &instruments)?;
    let market_data_hash = B256::from(formats::market::market_hash(&inputs.market));
    let as_of_secs = as_of_secs(&inputs.market)?;
    let part = |accounts: &Vec<(&AccountKey, &Portfolio)>| -> Result<ComputedEpoch, Error> {
        let mut book = AccountBook::default();
        for (key, portfolio) in accounts {
            let resolved = (priced.resolve(portfolio))
                .map_err(|e| Error { account: Some(key.id.clone()), kind: ErrorKind::Margin(e) })?;
            book.push(&resolved);
        }
        let keys: Vec<AccountKey> = accounts.iter().map(|(key, _)| (*key).clone()).collect();
        let refresh = priced.refresh(&book);
        let results = quantise(&priced, &refresh, &keys)?;
        Ok(ComputedEpoch {
            market_data_hash,
            methodology_hash: inputs.methodology_hash,
            as_of_secs,
            results,
            keys,
        })
    };
    parts.iter().map(part).collect()
}

/// Joins the parts of one epoch, computed apart (by [`compute_parts`], in one process or many),
/// into the epoch of the whole book: results and keys in id order, as [`compute`] gives them.
/// Each part is in id order already, so the parts are merged (a heap over their heads), never
/// sorted again.
///
/// # Errors
/// `Parts` for parts of different markets, methodologies or valuation times, a part not in id
/// order, an account in two parts, or no parts at all; `Mismatch` for a part whose results and
/// keys differ in length.
pub fn assemble(parts: Vec<ComputedEpoch>) -> Result<ComputedEpoch, Error> {
    let Some(first) = parts.first() else {
        return Err(Error::new(ErrorKind::Parts("no parts".to_owned())));
    };
    let (market_data_hash, methodology_hash, as_of_secs) =
        (first.market_data_hash, first.methodology_hash, first.as_of_secs);
    for (index, part) in parts.iter().enumerate() {
        if (part.market_data_hash, part.methodology_hash, part.as_of_secs)
            != (market_data_hash, methodology_hash, as_of_secs)
        {
            let why = "parts of different markets, methodologies or valuation times";
            return Err(Error::new(ErrorKind::Parts(why.to_owned())));
        }
        if part.results.len() != part.keys.len() {
            let (results, keys) = (part.results.len(), part.keys.len());
            return Err(Error::new(ErrorKind::Mismatch { results, keys }));
        }
        if let Some(pair) = part.keys.windows(2).find(|pair| pair[0].id >= pair[1].id) {
            let why = format!("part {index} is not in id order at {:?}", pair[1].id);
            return Err(Error::new(ErrorKind::Parts(why)));
        }
    }
    let order = merge_order(&parts)?;
    let mut keys = Vec::with_capacity(order.len());
    let mut results = Vec::with_capacity(order.len());
    let mut sources: Vec<_> =
        parts.into_iter().map(|p| p.keys.into_iter().zip(p.results)).collect();
    for part in order {
        let Some((key, result)) = sources[part].next() else {
            panic!("Invariant: the merge takes each part's rows once, in order")
        };
        keys.push(key);
        results.push(result);
    }
    Ok(ComputedEpoch { market_data_hash, methodology_hash, as_of_secs, results, keys })
}

/// The part each row of the merged epoch comes from, in id order; an id in two parts is refused.
fn merge_order(parts: &[ComputedEpoch]) -> Result<Vec<usize>, Error> {
    let mut heap = BinaryHeap::with_capacity(parts.len());
    let mut next = vec![0_usize; parts.len()];
    for (part, computed) in parts.iter().enumerate() {
        if let Some(key) = computed.keys.first() {
            heap.push(Reverse((key.id.as_str(), part)));
        }
    }
    let mut order = Vec::with_capacity(parts.iter().map(|p| p.keys.len()).sum());
    let mut last: Option<&str> = None;
    while let Some(Reverse((id, part))) = heap.pop() {
        if last == Some(id) {
            return Err(Error::new(ErrorKind::Parts(format!("account {id:?} is in two parts"))));
        }
        last = Some(id);
        order.push(part);
        next[part] += 1;
        if let Some(key) = parts[part].keys.get(next[part]) {
            heap.push(Reverse((key.id.as_str(), part)));
        }
    }
    Ok(order)
}

/// The market's valuation time in whole Unix seconds.
///
/// # Errors
/// `BeforeEpoch` for a valuation time before 1970.
pub fn as_of_secs(market: &MarketSnapshot) -> Result<u64, Error> {
    let nanos = market.valuation().0;
    u64::try_from(nanos.div_euclid(1_000_000_000))
        .map_err(|_| Error::new(ErrorKind::BeforeEpoch { nanos }))
}

/// Quantises a cross-margin refresh of the accounts `keys` name into account results:
/// requirements up, equity down.
///
/// # Errors
/// A refresh of another length than the keys, the lowest refused account (named), a figure
/// beyond the range of money, or a worst scenario the leaf cannot index.
pub fn quantise(
    priced: &PricedMarket,
    refresh: &Refresh,
    keys: &[AccountKey],
) -> Result<Vec<AccountResult>, Error> {
    if refresh.len() != keys.len() {
        return Err(Error::new(ErrorKind::Mismatch { results: refresh.len(), keys: keys.len() }));
    }
    if let Some((&a, e)) = refresh.failures().iter().next() {
        return Err(Error {
            account: Some(keys[a].id.clone()),
            kind: ErrorKind::Margin(e.clone()),
        });
    }
    let space = ScenarioSpace::new(priced);
    (refresh.lines().par_iter().zip(keys))
        .map(|(line, key)| {
            let named = |kind| Error { account: Some(key.id.clone()), kind };
            assert!(
                line.figures.currency == Currency::USD,
                "Invariant: a cross-margin refresh has one USD line per account"
            );
            let q = Quantised::of(&line.figures).map_err(|e| named(ErrorKind::Margin(e)))?;
            let worst = space.encode(line.figures.worst).map_err(named)?;
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

/// The attested index space of worst scenarios on one priced market: each underlying's
/// scenarios in currency order, each set followed by one slot for its competing contingency.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSpace {
    /// (underlying, first index, scenarios) in currency order.
    sets: Vec<(Currency, usize, usize)>,
}

impl ScenarioSpace {
    /// The space of `priced`'s scenario sets.
    #[must_use]
    pub fn new(priced: &PricedMarket) -> ScenarioSpace {
        let mut next = 0;
        let sets = (priced.arrays().scenario_sets().iter())
            .map(|(currency, set)| {
                let start = next;
                next += set.len() + 1;
                (*currency, start, set.len())
            })
            .collect();
        ScenarioSpace { sets }
    }

    /// The leaf's index of `worst` ([`NO_SCENARIO`] for none).
    ///
    /// # Errors
    /// `ScenarioIndex` for an underlying without a set, or an index past 16 bits.
    pub fn encode(&self, worst: Option<Worst>) -> Result<u16, ErrorKind> {
        let Some(worst) = worst else { return Ok(NO_SCENARIO) };
        let underlying = worst.underlying();
        let Some(&(_, start, len)) = self.sets.iter().find(|s| s.0 == underlying) else {
            return Err(ErrorKind::ScenarioIndex(format!("{underlying} has no scenario set")));
        };
        let index = match worst {
            Worst::Scenario { index, .. } => start + index,
            Worst::Contingency { .. } => start + len,
        };
        u16::try_from(index).ok().filter(|i| *i != NO_SCENARIO).ok_or_else(|| {
            ErrorKind::ScenarioIndex(format!("index {index} does not fit below {NO_SCENARIO}"))
        })
    }

    /// What a leaf's index names: `None` for [`NO_SCENARIO`] or an index outside the space.
    #[must_use]
    pub fn decode(&self, index: u16) -> Option<Worst> {
        let index = usize::from(index);
        let &(underlying, start, len) =
            self.sets.iter().find(|(_, start, len)| (*start..=start + len).contains(&index))?;
        Some(if index == start + len {
            Worst::Contingency { underlying }
        } else {
            Worst::Scenario { underlying, index: index - start }
        })
    }
}

/// The USD amount of a money value, for printing.
#[must_use]
pub fn usd_text(money: Money) -> String {
    basics::format_scaled(money.raw())
}

#[cfg(test)]
mod tests {

    use basics::Currency;
    use margin::{Engine, Worst};

    use super::{NO_SCENARIO, ScenarioSpace};

    /// Every index of the space decodes to what encodes to it, the contingency slot included,
    /// and no scenario is the sentinel.
    #[test]
    fn scenario_indices_round_trip() {
        let engine = Engine::new(testkit::ballast_pm()).unwrap();
        let market = testkit::sample_market();
        let priced = engine.price(&market, &[]).unwrap();
        let space = ScenarioSpace::new(&priced);
        let sets = priced.arrays().scenario_sets();
        let total: usize = sets.values().map(|s| s.len() + 1).sum();
        for index in 0..u16::try_from(total).unwrap() {
            let worst = space.decode(index).unwrap();
            assert_eq!(space.encode(Some(worst)), Ok(index));
        }
        assert_eq!(space.decode(u16::try_from(total).unwrap()), None);
        assert_eq!(space.encode(None), Ok(NO_SCENARIO));
        let btc = sets[&Currency::BTC].len();
        let contingency = Worst::Contingency { underlying: Currency::BTC };
        assert_eq!(space.encode(Some(contingency)), Ok(u16::try_from(btc).unwrap()));
        let missing = Worst::Scenario { underlying: Currency::from_static("SOL"), index: 0 };
        assert!(space.encode(Some(missing)).is_err());
    }
}
