//! Live margin: per methodology, the instrument risk arrays of the current market and the bulk
//! refresh of every account, published as one immutable value that readers share.
//!
//! A market push prices the market once (`Engine::price`) and re-aggregates every account
//! (`PricedMarket::refresh` over an `AccountBook`); the book, and so every account's
//! rows, is kept between pushes while the instrument universe and the accounts stay the same.
//! A write to one existing account re-margins that account alone ([`publish_account`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use margin::health::{Health, Status};
use margin::{AccountBook, PricedMarket, Refresh, RefreshLine, ResolvedAccount};
use product::Instrument;

use crate::model::{AccountRecord, MarketEntry, MethodologyEntry, Model};

/// The accounts of one methodology resolved against one instrument universe.
#[derive(Debug, Default)]
pub struct Book {
    /// Account ids in book order (sorted), shared by the books of one set of accounts: an
    /// update of one account's positions or balances keeps them.
    pub ids: Arc<Vec<String>>,
    /// Position of each id in `ids`.
    pub index: Arc<BTreeMap<String, usize>>,
    /// Instruments held by these accounts.
    pub held: BTreeSet<Instrument>,
    /// The rows: the held and quoted instruments the market could value, sorted.
    pub universe: Vec<Instrument>,
    /// Rows and balances in struct-of-arrays form.
    pub accounts: AccountBook,
    /// Accounts holding an instrument without a row (their figures would be partial).
    pub unresolved: BTreeMap<usize, String>,
}

/// A market priced for a group: every held or quoted instrument it can value, and why it cannot
/// value the others (an account holding one of those is refused with that reason; every other
/// account keeps its figures).
pub struct Priced {
    /// The priced market.
    pub market: PricedMarket,
    /// The instruments asked for: held and quoted, sorted.
    pub requested: Vec<Instrument>,
    /// The instruments the market cannot value, with the reason.
    pub refused: BTreeMap<Instrument, String>,
}

impl std::ops::Deref for Priced {
    type Target = PricedMarket;

    fn deref(&self) -> &PricedMarket {
        &self.market
    }
}

/// One methodology's accounts, margined on the current market.
pub struct Group {
    /// The methodology.
    pub entry: Arc<MethodologyEntry>,
    /// The priced market, or why there is none (no market, or the arrays could not be built).
    pub priced: Result<Arc<Priced>, String>,
    /// The accounts.
    pub book: Arc<Book>,
    /// Every account's figures, or the engine's reason for refusing it.
    pub refresh: Refresh,
    /// Health per account, on the rounded money the oracle attests.
    pub health: Vec<Health>,
    /// The sequence number of the market the group is priced on (`None` without one).
    pub market_seq: Option<i64>,
    /// Accounts the current market cannot value that had figures before: their last good
    /// figures, by book index. A reader shows them as stale, beside the reason, never as current.
    pub stale: BTreeMap<usize, Stale>,
}

/// An account's last good figures, kept while the market cannot value it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stale {
    /// Its lines then (their `account` index is the book index of that time).
    pub lines: Arc<[RefreshLine]>,
    /// Its health then.
    pub health: Health,
    /// The market they were computed on.
    pub market_seq: Option<i64>,
}

impl Group {
    /// Account `i`'s figures, or why there are none.
    ///
    /// # Errors
    /// The reason the account could not be valued.
    pub fn figures(&self, i: usize) -> Result<&[RefreshLine], String> {
        if let Err(why) = &self.priced {
            return Err(why.clone());
        }
        if let Some(why) = self.book.unresolved.get(&i) {
            return Err(why.clone());
        }
        self.refresh.account(i).map_err(ToString::to_string)
    }
}

/// Everything readers need, replaced as a whole on every change.
#[derive(Default)]
pub struct LiveState {
    /// Increases with every publication.
    pub generation: u64,
    /// The market's sequence number, when there is one.
    pub market_seq: Option<i64>,
    /// The market's valuation time, when there is one.
    pub valuation: Option<basics::UnixNanos>,
    /// Groups by methodology hash.
    pub groups: BTreeMap<String, Arc<Group>>,
    /// Account id → methodology hash.
    pub accounts: Arc<BTreeMap<String, String>>,
}

impl LiveState {
    /// The underlyings of every instrument some account holds.
    #[must_use]
    pub fn held_underlyings(&self) -> BTreeSet<basics::Currency> {
        let groups = self.groups.values();
        groups.flat_map(|g| g.book.held.iter().map(Instrument::underlying)).collect()
    }

    /// The group and book index of account `id`.
    #[must_use]
    pub fn find(&self, id: &str) -> Option<(&Arc<Group>, usize)> {
        let group = self.groups.get(self.accounts.get(id)?)?;
        let i = *group.book.index.get(id)?;
        Some((group, i))
    }
}

/// Why a group without accounts has no priced market.
const NO_ACCOUNTS: &str = "no account uses this methodology";

/// Builds the group of `entry`. `previous` is reused where still valid: its context when the
/// market and universe are the same, its book when moreover `accounts_changed` is false.
#[must_use]
pub fn build_group(
    model: &Model,
    entry: &Arc<MethodologyEntry>,
    previous: Option<&Group>,
    accounts_changed: bool,
    changed: &[&str],
) -> Group {
    let market = model.market.as_ref();
    let held = match previous {
        Some(p) if !accounts_changed => p.book.held.clone(),
        _ => model.held(&entry.hash),
    };
    let mut universe: BTreeSet<Instrument> = held.clone();
    if let Some(m) = market {
        universe.extend(m.snapshot.quotes().keys().copied());
    }
    let universe: Vec<Instrument> = universe.into_iter().collect();
    let same_market = match (previous.map(|p| &p.priced), market) {
        (Some(Ok(p)), Some(m)) => Arc::ptr_eq(p.market(), &m.snapshot),
        _ => false,
    };
    let same_request = match previous.map(|p| &p.priced) {
        Some(Ok(p)) => p.requested == universe,
        _ => false,
    };
    // A methodology no account uses is not priced: every bundled profile is stored, and each
    // would otherwise price the whole market on every push.
    let used = match previous {
        Some(p) if !accounts_changed => !p.book.ids.is_empty(),
        _ => model.accounts.values().any(|a| a.methodology == entry.hash),
    };
    let priced = match (previous, market) {
        _ if !used => Err(NO_ACCOUNTS.to_owned()),
        (Some(p), Some(_)) if same_market && same_request => p.priced.clone(),
        (_, Some(m)) => price(entry, m, universe),
        (_, None) => Err("no market snapshot yet".to_owned()),
    };
    // The book's rows and reasons hold while the market values the same instruments, refusing
    // the same ones for the same reasons.
    let same_rows = match (previous.map(|p| (&p.priced, &p.book)), &priced) {
        (Some((Ok(old), book)), Ok(new)) => {
            book.universe == new.arrays().instruments() && old.refused == new.refused
        }
        _ => false,
    };
    let book = match (previous, &priced) {
        (Some(p), _) if !accounts_changed && same_rows => Arc::clone(&p.book),
        (_, Ok(priced)) => Arc::new(book(model, entry, held, priced)),
        (_, Err(_)) => Arc::new(unpriced_book(model, entry, held)),
    };
    let market_seq = priced.as_ref().ok().and(market.map(|m| m.seq));
    let mut group = Group {
        entry: Arc::clone(entry),
        priced,
        book,
        refresh: Refresh::default(),
        health: Vec::new(),
        market_seq,
        stale: BTreeMap::new(),
    };
    refresh(&mut group);
    if let Some(previous) = previous {
        keep_stale(&mut group, previous, changed);
    }
    group
}

/// Keeps, for every account of `group` that cannot be valued now, the last good figures it
/// had in `previous` (or the stale ones it kept there), unless it is one of the accounts
/// `changed`, whose old figures belong to positions they no longer hold.
fn keep_stale(group: &mut Group, previous: &Group, changed: &[&str]) {
    for (i, id) in group.book.ids.iter().enumerate() {
        if group.health[i].status != Status::Unpriced || changed.contains(&id.as_str()) {
            continue;
        }
        let Some(&j) = previous.book.index.get(id) else { continue };
        let kept = match previous.figures(j) {
            Ok(lines) if previous.health[j].status != Status::Unpriced => Some(Stale {
                lines: lines.into(),
                health: previous.health[j],
                market_seq: previous.market_seq,
            }),
            _ => previous.stale.get(&j).cloned(),
        };
        if let Some(kept) = kept {
            group.stale.insert(i, kept);
        }
    }
}

/// `market` priced for every instrument of `universe` it can value; the others are refused
/// with their reason, and only the accounts holding them go unpriced.
fn price(
    entry: &MethodologyEntry,
    market: &MarketEntry,
    universe: Vec<Instrument>,
) -> Result<Arc<Priced>, String> {
    let priced = entry.engine.price_valuable(&market.snapshot, &universe);
    let (priced, refused) = priced.map_err(|e| format!("cannot value {}: {}", e.field, e.kind))?;
    let refused = refused.into_iter().map(|(i, e)| (i, e.kind.to_string())).collect();
    Ok(Arc::new(Priced { market: priced, requested: universe, refused }))
}

fn book(
    model: &Model,
    entry: &MethodologyEntry,
    held: BTreeSet<Instrument>,
    priced: &Priced,
) -> Book {
    let universe = priced.arrays().instruments().to_vec();
    let mut out = Book { held, universe, ..Book::default() };
    let (mut ids, mut index) = (Vec::new(), BTreeMap::new());
    let mut resolved = ResolvedAccount::default();
    for (id, record) in model.accounts.iter().filter(|(_, a)| a.methodology == entry.hash) {
        // Every held instrument is in the universe; an account with one that is not would be
        // valued partially, so it is reported as unpriced instead.
        if let Err(e) = resolve(record, priced, &mut resolved) {
            // The account's own position, and why the market cannot value it.
            let why = (record.positions.keys())
                .find_map(|i| priced.refused.get(i).map(|why| format!("positions.{i}: {why}")))
                .unwrap_or_else(|| format!("positions.{}: no market data", e.field));
            out.unresolved.insert(ids.len(), why);
        }
        index.insert(id.clone(), ids.len());
        ids.push(id.clone());
        out.accounts.push(&resolved);
    }
    Book { ids: Arc::new(ids), index: Arc::new(index), ..out }
}

/// `record`'s rows and balances on `priced`, into `out` (empty when an instrument has no row).
///
/// # Errors
/// `UnknownInstrument` naming the first instrument without a row.
fn resolve(
    record: &AccountRecord,
    priced: &PricedMarket,
    out: &mut ResolvedAccount,
) -> Result<(), margin::Error> {
    let balances = record.balances.iter().map(|(c, m)| (*c, m.to_f64()));
    priced.resolve_into(record.positions.values().copied(), balances, out)
}

fn unpriced_book(model: &Model, entry: &MethodologyEntry, held: BTreeSet<Instrument>) -> Book {
    let mut out = Book { held, ..Book::default() };
    let (mut ids, mut index) = (Vec::new(), BTreeMap::new());
    for id in model.accounts.iter().filter(|(_, a)| a.methodology == entry.hash).map(|a| a.0) {
        index.insert(id.clone(), ids.len());
        ids.push(id.clone());
        out.accounts.push(&ResolvedAccount::default());
    }
    Book { ids: Arc::new(ids), index: Arc::new(index), ..out }
}

/// Re-aggregates every account of the group in one bulk refresh (a refused account gets its
/// reason and does not stop the others), then each account's health on rounded money.
fn refresh(group: &mut Group) {
    let accounts = group.book.ids.len();
    let Ok(priced) = &group.priced else {
        group.health = vec![Health::UNPRICED; accounts];
        return;
    };
    group.refresh = priced.refresh(&group.book.accounts);
    let health: Vec<Health> = (0..accounts).map(|a| account_health(group, a)).collect();
    group.health = health;
}

/// Account `a`'s health, after moving an account whose figures are beyond the range of money
/// to the refused ones (so that its reason is shown, not a partial health).
fn account_health(group: &mut Group, a: usize) -> Health {
    let health = match group.figures(a) {
        Ok(lines) => Health::of(lines.iter().map(|l| &l.figures)),
        Err(_) => return Health::UNPRICED,
    };
    health.unwrap_or_else(|e| {
        group.refresh.replace(a, Err(e));
        Health::UNPRICED
    })
}

/// Rebuilds every group: after a market push (`accounts_changed` false) or at startup.
#[must_use]
pub fn publish_all(
    model: &Model,
    previous: &LiveState,
    accounts_changed: bool,
    generation: u64,
) -> LiveState {
    let groups = model
        .methodologies
        .values()
        .map(|entry| {
            let old = previous.groups.get(&entry.hash).map(AsRef::as_ref);
            let group = build_group(model, entry, old, accounts_changed, &[]);
            (entry.hash.clone(), Arc::new(group))
        })
        .collect();
    LiveState {
        generation,
        market_seq: model.market.as_ref().map(|m| m.seq),
        valuation: model.market.as_ref().map(|m| m.snapshot.valuation()),
        groups,
        accounts: if accounts_changed {
            Arc::new(account_map(model))
        } else {
            Arc::clone(&previous.accounts)
        },
    }
}

/// Rebuilds the group of methodology `hash` after a change of its accounts `changed`.
#[must_use]
pub fn publish_one(
    model: &Model,
    previous: &LiveState,
    hash: &str,
    changed: &[&str],
    generation: u64,
) -> LiveState {
    let mut groups = previous.groups.clone();
    if let Some(entry) = model.methodologies.get(hash) {
        let old = previous.groups.get(hash).map(AsRef::as_ref);
        let group = build_group(model, entry, old, true, changed);
        groups.insert(hash.to_owned(), Arc::new(group));
    }
    LiveState {
        generation,
        market_seq: model.market.as_ref().map(|m| m.seq),
        valuation: model.market.as_ref().map(|m| m.snapshot.valuation()),
        groups,
        accounts: Arc::new(account_map(model)),
    }
}

/// Publishes a change of account `id` of methodology `hash`. An existing account whose every
/// instrument is already held in its group (so has a row) is re-margined alone: the group's
/// flat arrays are copied with its entries replaced, and its ids, universe and context are
/// shared, and it stays on the market the group was priced on. Anything else (a new account, a
/// newly held instrument, no market) rebuilds the group with [`publish_one`]. Either way the
/// figures are the ones a full rebuild on that market gives, bit for bit, since both run the
/// same `Engine::account_into` on the same rows.
#[must_use]
pub fn publish_account(
    model: &Model,
    previous: &LiveState,
    hash: &str,
    id: &str,
    generation: u64,
) -> LiveState {
    publish_alone(model, previous, hash, id, generation)
        .unwrap_or_else(|| publish_one(model, previous, hash, &[id], generation))
}

/// [`publish_account`] when account `id` can be re-margined alone (an existing account whose
/// every instrument has a row in its group); `None` when its group must be rebuilt.
#[must_use]
pub fn publish_alone(
    model: &Model,
    previous: &LiveState,
    hash: &str,
    id: &str,
    generation: u64,
) -> Option<LiveState> {
    let group = update_accounts(model, previous.groups.get(hash)?, &[id])?;
    let mut next = carried(previous, generation);
    next.groups.insert(hash.to_owned(), Arc::new(group));
    Some(next)
}

/// `previous` as the start of the next publication: the same market, groups and accounts.
fn carried(previous: &LiveState, generation: u64) -> LiveState {
    LiveState {
        generation,
        market_seq: previous.market_seq,
        valuation: previous.valuation,
        groups: previous.groups.clone(),
        accounts: Arc::clone(&previous.accounts),
    }
}

/// `group` with accounts `ids` re-margined (one copy of its arrays for all of them), or `None`
/// when the group must be rebuilt.
fn update_accounts(model: &Model, group: &Group, ids: &[&str]) -> Option<Group> {
    // On the group's own market, even when a newer one is waiting for the recompute: every
    // figure of a publication is on the same market, and the recompute brings all of them
    // (these accounts' new positions included) to the newest one.
    let priced = group.priced.as_ref().ok()?;
    let mut resolved = Vec::with_capacity(ids.len());
    for id in ids {
        let a = *group.book.index.get(*id)?;
        let record = model.accounts.get(*id)?;
        if record.methodology != group.entry.hash
            || group.book.unresolved.contains_key(&a)
            || !record.positions.keys().all(|i| group.book.held.contains(i))
        {
            return None;
        }
        let mut account = ResolvedAccount::default();
        resolve(record, priced, &mut account).ok()?;
        resolved.push((a, account));
    }
    let mut accounts = group.book.accounts.clone();
    let mut refresh = group.refresh.clone();
    let mut stale = group.stale.clone();
    for (a, account) in &resolved {
        accounts.replace(*a, account);
        refresh.replace(*a, priced.figures(account).as_deref().map_err(Clone::clone));
        stale.remove(a);
    }
    let old = &group.book;
    let book = Book {
        ids: Arc::clone(&old.ids),
        index: Arc::clone(&old.index),
        held: old.held.clone(),
        universe: old.universe.clone(),
        accounts,
        unresolved: old.unresolved.clone(),
    };
    let mut updated = Group {
        entry: Arc::clone(&group.entry),
        priced: Ok(Arc::clone(priced)),
        book: Arc::new(book),
        refresh,
        health: group.health.clone(),
        market_seq: group.market_seq,
        stale,
    };
    for (a, _) in &resolved {
        updated.health[*a] = account_health(&mut updated, *a);
    }
    Some(updated)
}

/// `previous` with the accounts of `changed` ((methodology hash, account id)) re-margined: each
/// group copied once with all of its changed accounts, or rebuilt when one of them needs it
/// (as [`publish_account`] decides for one account).
#[must_use]
pub fn publish_accounts(
    model: &Model,
    previous: &LiveState,
    changed: &BTreeSet<(String, String)>,
    generation: u64,
) -> LiveState {
    let mut by_group: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (hash, id) in changed {
        by_group.entry(hash.as_str()).or_default().push(id.as_str());
    }
    let mut next = carried(previous, generation);
    for (hash, ids) in by_group {
        let updated = next.groups.get(hash).and_then(|g| update_accounts(model, g, &ids));
        match updated {
            Some(group) => {
                next.groups.insert(hash.to_owned(), Arc::new(group));
            }
            None => next = publish_one(model, &next, hash, &ids, generation),
        }
    }
    next
}

fn account_map(model: &Model) -> BTreeMap<String, String> {
    model.accounts.iter().map(|(id, a)| (id.clone(), a.methodology.clone())).collect()
}

/// An account whose status changed between two publications.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Account id.
    pub account: String,
    /// Status before.
    pub from: Status,
    /// Status now.
    pub to: Status,
    /// Health ratio now.
    pub health: f64,
}

/// The status change of account `id` alone from `before` to `after` (a write to one account
/// changes no other's figures), as [`alerts`] would report it.
#[must_use]
pub fn account_alerts(before: &LiveState, after: &LiveState, id: &str) -> Vec<Alert> {
    let Some((group, i)) = after.find(id) else { return Vec::new() };
    let from = before.find(id).map_or(Status::Healthy, |(g, j)| g.health[j].status);
    let Health { ratio, status: to } = group.health[i];
    if from == to {
        return Vec::new();
    }
    vec![Alert { account: id.to_owned(), from, to, health: ratio }]
}

/// Status changes from `before` to `after`, in account order.
#[must_use]
pub fn alerts(before: &LiveState, after: &LiveState) -> Vec<Alert> {
    let mut out = Vec::new();
    for (hash, group) in &after.groups {
        let old = before.groups.get(hash);
        let aligned = old.is_some_and(|o| Arc::ptr_eq(&o.book.ids, &group.book.ids));
        for (i, id) in group.book.ids.iter().enumerate() {
            let previous = match old {
                Some(o) if aligned => o.health.get(i).map(|h| h.status),
                Some(o) => o.book.index.get(id).and_then(|&j| o.health.get(j)).map(|h| h.status),
                None => None,
            };
            let Health { ratio, status: now } = group.health[i];
            let from = previous.unwrap_or(Status::Healthy);
            if from != now {
                out.push(Alert { account: id.clone(), from, to: now, health: ratio });
            }
        }
    }
    out
}
