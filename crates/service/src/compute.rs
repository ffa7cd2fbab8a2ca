//! Live margin: per methodology, the instrument risk arrays of the current market and the bulk
//! refresh of every account, published as one immutable value that readers share.
//!
//! A market push rebuilds the risk arrays once (`RiskArrays::build`) and re-aggregates every
//! account (`Engine::refresh_into` over an `AccountBook`); the book, and so every account's
//! rows, is kept between pushes while the instrument universe and the accounts stay the same.
//! A write to one existing account re-margins that account alone ([`publish_account`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use basics::Currency;
use margin::{
    AccountBook, Context, CurrencyFigures, RefreshLine, ResolvedAccount, RiskArrays, Scratch,
    UnderlyingLiquidity,
};
use market::MarketSnapshot;
use product::Instrument;

use crate::model::{AccountRecord, MarketEntry, MethodologyEntry, Model};

/// What a [`Context`] borrows: the market, the risk arrays and the liquidity tables.
pub struct Inputs {
    /// The market the arrays were built on.
    pub market: Arc<MarketSnapshot>,
    /// The instrument risk arrays.
    pub arrays: RiskArrays,
    /// Market liquidity per underlying.
    pub liquidity: BTreeMap<Currency, UnderlyingLiquidity>,
}

type Ctx<'a> = Context<'a>;

self_cell::self_cell!(
    /// The inputs with the context built on them once, shared by the refresh and every what-if
    /// until the next market.
    pub struct Priced {
        owner: Inputs,
        #[covariant]
        dependent: Ctx,
    }
);

impl Priced {
    /// The inputs.
    #[must_use]
    pub fn inputs(&self) -> &Inputs {
        self.borrow_owner()
    }

    /// The context.
    #[must_use]
    pub fn context(&self) -> &Context<'_> {
        self.borrow_dependent()
    }
}

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
    /// The row universe: held instruments and the market's quoted ones, sorted.
    pub universe: Vec<Instrument>,
    /// Rows and balances in struct-of-arrays form.
    pub accounts: AccountBook,
    /// Accounts holding an instrument without a row (their figures would be partial).
    pub unresolved: BTreeMap<usize, String>,
}

/// Margin state of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Equity covers IM.
    Healthy,
    /// Equity below IM: no new risk.
    ImBreach,
    /// Equity below MM: liquidation.
    MmBreach,
    /// The engine could not value the account.
    Unpriced,
}

impl Status {
    /// The wire name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::ImBreach => "im-breach",
            Status::MmBreach => "mm-breach",
            Status::Unpriced => "unpriced",
        }
    }
}

/// Health of an account: the smallest equity / MM over its currencies (infinite without MM),
/// and its status.
#[must_use]
pub fn health<'a>(figures: impl IntoIterator<Item = &'a CurrencyFigures>) -> (f64, Status) {
    let mut ratio = f64::INFINITY;
    let mut status = Status::Healthy;
    for f in figures {
        if f.maintenance_margin > 0.0 {
            ratio = ratio.min(f.equity / f.maintenance_margin);
        } else if f.equity < 0.0 {
            ratio = ratio.min(0.0);
        }
        let now = if f.equity < f.maintenance_margin {
            Status::MmBreach
        } else if f.equity < f.initial_margin {
            Status::ImBreach
        } else {
            Status::Healthy
        };
        status = status.max(now);
    }
    (ratio, status)
}

/// One methodology's accounts, margined on the current market.
pub struct Group {
    /// The methodology.
    pub entry: Arc<MethodologyEntry>,
    /// The context, or why there is none (no market, or the arrays could not be built).
    pub priced: Result<Arc<Priced>, String>,
    /// The accounts.
    pub book: Arc<Book>,
    /// Refresh lines, account by account.
    pub lines: Vec<RefreshLine>,
    /// `lines[starts[i]..starts[i + 1]]` are account `i`'s.
    pub starts: Vec<usize>,
    /// Accounts the engine refused, with the reason.
    pub errors: BTreeMap<usize, String>,
    /// Health ratio and status per account.
    pub health: Vec<(f64, Status)>,
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
        if let Some(why) = self.errors.get(&i) {
            return Err(why.clone());
        }
        Ok(&self.lines[self.starts[i]..self.starts[i + 1]])
    }
}

/// Everything readers need, replaced as a whole on every change.
#[derive(Default)]
pub struct Published {
    /// Increases with every publication.
    pub generation: u64,
    /// The market's sequence number, when there is one.
    pub market_seq: Option<i64>,
    /// Groups by methodology hash.
    pub groups: BTreeMap<String, Arc<Group>>,
    /// Account id → methodology hash.
    pub accounts: Arc<BTreeMap<String, String>>,
}

impl Published {
    /// The group and book index of account `id`.
    #[must_use]
    pub fn find(&self, id: &str) -> Option<(&Arc<Group>, usize)> {
        let group = self.groups.get(self.accounts.get(id)?)?;
        let i = *group.book.index.get(id)?;
        Some((group, i))
    }
}

/// Builds the group of `entry`. `previous` is reused where still valid: its context when the
/// market and universe are the same, its book when moreover `accounts_changed` is false.
#[must_use]
pub fn build_group(
    model: &Model,
    entry: &Arc<MethodologyEntry>,
    previous: Option<&Group>,
    accounts_changed: bool,
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
        (Some(Ok(p)), Some(m)) => Arc::ptr_eq(&p.inputs().market, &m.snapshot),
        _ => false,
    };
    let same_universe = previous.is_some_and(|p| p.book.universe == universe);
    let priced = match (previous, market) {
        (Some(p), Some(_)) if same_market && same_universe => p.priced.clone(),
        (_, Some(m)) => price(entry, m, &universe, &held),
        (_, None) => Err("no market snapshot yet".to_owned()),
    };
    let book = match (previous, &priced) {
        (Some(p), _) if !accounts_changed && same_universe => Arc::clone(&p.book),
        (_, Ok(priced)) => Arc::new(book(model, entry, held, &priced.inputs().arrays)),
        (_, Err(_)) => Arc::new(unpriced_book(model, entry, held)),
    };
    let mut group = Group {
        entry: Arc::clone(entry),
        priced,
        book,
        lines: Vec::new(),
        starts: Vec::new(),
        errors: BTreeMap::new(),
        health: Vec::new(),
    };
    refresh(&mut group);
    group
}

/// The context on `market` for `universe`, falling back to the held instruments alone when a
/// quoted instrument cannot be valued (a held one that cannot is the accounts' error).
fn price(
    entry: &MethodologyEntry,
    market: &MarketEntry,
    universe: &[Instrument],
    held: &BTreeSet<Instrument>,
) -> Result<Arc<Priced>, String> {
    let engine = &entry.engine;
    let snapshot = Arc::clone(&market.snapshot);
    let arrays = engine.risk_arrays(&snapshot, universe).or_else(|_| {
        let held: Vec<Instrument> = held.iter().copied().collect();
        engine.risk_arrays(&snapshot, &held)
    });
    let arrays = arrays.map_err(|e| format!("cannot value {}: {}", e.field, e.kind))?;
    let liquidity = engine.liquidity(&snapshot, &arrays);
    let inputs = Inputs { market: snapshot, arrays, liquidity };
    Ok(Arc::new(Priced::new(inputs, |i| Context::new(engine, &i.arrays, &i.market, &i.liquidity))))
}

fn book(
    model: &Model,
    entry: &MethodologyEntry,
    held: BTreeSet<Instrument>,
    arrays: &RiskArrays,
) -> Book {
    let mut out = Book { held, universe: arrays.instruments().to_vec(), ..Book::default() };
    let (mut ids, mut index) = (Vec::new(), BTreeMap::new());
    let mut resolved = ResolvedAccount::default();
    for (id, record) in model.accounts.iter().filter(|(_, a)| a.methodology == entry.hash) {
        // Every held instrument is in the universe; an account with one that is not would be
        // valued partially, so it is reported as unpriced instead.
        if let Some(missing) = resolve(record, arrays, &mut resolved) {
            out.unresolved.insert(ids.len(), format!("{missing}: no market data"));
        }
        index.insert(id.clone(), ids.len());
        ids.push(id.clone());
        out.accounts.push(&resolved);
    }
    Book { ids: Arc::new(ids), index: Arc::new(index), ..out }
}

/// `record`'s rows and balances against `arrays`, into `out`; the first instrument without a
/// row, if any (its position is left out).
fn resolve(
    record: &AccountRecord,
    arrays: &RiskArrays,
    out: &mut ResolvedAccount,
) -> Option<Instrument> {
    out.positions.clear();
    out.balances.clear();
    let mut missing = None;
    for (instrument, size) in &record.positions {
        match arrays.position(instrument) {
            Some(row) => out.positions.push((row, *size)),
            None => _ = missing.get_or_insert(*instrument),
        }
    }
    out.positions.sort_by_key(|(row, _)| *row);
    out.balances.extend(record.balances.iter().map(|(c, m)| (*c, m.to_f64())));
    missing
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

/// Re-aggregates every account of the group: the bulk refresh, or account by account when it
/// fails, so that one refused account does not hide the others.
fn refresh(group: &mut Group) {
    let accounts = group.book.ids.len();
    let Ok(priced) = &group.priced else {
        group.starts = vec![0; accounts + 1];
        group.health = vec![(f64::NAN, Status::Unpriced); accounts];
        return;
    };
    let engine = &group.entry.engine;
    let ctx = priced.context();
    if engine.refresh_into(ctx, &group.book.accounts, &mut group.lines).is_err() {
        group.lines.clear();
        let mut scratch = Scratch::default();
        let mut figures: Vec<CurrencyFigures> = Vec::new();
        for a in 0..accounts {
            let account = group.book.accounts.resolved(a);
            figures.clear();
            match engine.account_into(
                ctx,
                &account.positions,
                &account.balances,
                &mut scratch,
                None,
                &mut figures,
            ) {
                Ok(()) => group
                    .lines
                    .extend(figures.iter().map(|f| RefreshLine { account: a, figures: *f })),
                Err(e) => _ = group.errors.insert(a, e.to_string()),
            }
        }
    }
    group.starts = Vec::with_capacity(accounts + 1);
    let mut line = 0;
    for a in 0..=accounts {
        while line < group.lines.len() && group.lines[line].account < a {
            line += 1;
        }
        group.starts.push(line);
    }
    group.health = (0..accounts)
        .map(|a| match group.figures(a) {
            Ok(lines) => health(lines.iter().map(|l| &l.figures)),
            Err(_) => (f64::NAN, Status::Unpriced),
        })
        .collect();
    for (a, why) in &group.book.unresolved {
        group.errors.insert(*a, why.clone());
        group.health[*a] = (f64::NAN, Status::Unpriced);
    }
}

/// Rebuilds every group: after a market push (`accounts_changed` false) or at startup.
#[must_use]
pub fn publish_all(
    model: &Model,
    previous: &Published,
    accounts_changed: bool,
    generation: u64,
) -> Published {
    let groups = model
        .methodologies
        .values()
        .map(|entry| {
            let old = previous.groups.get(&entry.hash).map(AsRef::as_ref);
            (entry.hash.clone(), Arc::new(build_group(model, entry, old, accounts_changed)))
        })
        .collect();
    Published {
        generation,
        market_seq: model.market.as_ref().map(|m| m.seq),
        groups,
        accounts: if accounts_changed {
            Arc::new(account_map(model))
        } else {
            Arc::clone(&previous.accounts)
        },
    }
}

/// Rebuilds the group of methodology `hash` after a change of its accounts.
#[must_use]
pub fn publish_one(model: &Model, previous: &Published, hash: &str, generation: u64) -> Published {
    let mut groups = previous.groups.clone();
    if let Some(entry) = model.methodologies.get(hash) {
        let old = previous.groups.get(hash).map(AsRef::as_ref);
        groups.insert(hash.to_owned(), Arc::new(build_group(model, entry, old, true)));
    }
    Published {
        generation,
        market_seq: model.market.as_ref().map(|m| m.seq),
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
    previous: &Published,
    hash: &str,
    id: &str,
    generation: u64,
) -> Published {
    let updated = previous.groups.get(hash).and_then(|group| update_account(model, group, id));
    let Some(group) = updated else { return publish_one(model, previous, hash, generation) };
    let mut groups = previous.groups.clone();
    groups.insert(hash.to_owned(), Arc::new(group));
    Published {
        generation,
        market_seq: previous.market_seq,
        groups,
        accounts: Arc::clone(&previous.accounts),
    }
}

/// `group` with account `id` re-margined, or `None` when the group must be rebuilt.
fn update_account(model: &Model, group: &Group, id: &str) -> Option<Group> {
    let a = *group.book.index.get(id)?;
    let record = model.accounts.get(id)?;
    // On the group's own market, even when a newer one is waiting for the recompute: every
    // figure of a publication is on the same market, and the recompute brings all of them
    // (this account's new positions included) to the newest one.
    let priced = group.priced.as_ref().ok()?;
    if record.methodology != group.entry.hash
        || group.book.unresolved.contains_key(&a)
        || !record.positions.keys().all(|i| group.book.held.contains(i))
    {
        return None;
    }
    let mut account = ResolvedAccount::default();
    if resolve(record, &priced.inputs().arrays, &mut account).is_some() {
        return None;
    }
    let mut accounts = group.book.accounts.clone();
    accounts.replace(a, &account);
    let old = &group.book;
    let book = Book {
        ids: Arc::clone(&old.ids),
        index: Arc::clone(&old.index),
        held: old.held.clone(),
        universe: old.universe.clone(),
        accounts,
        unresolved: old.unresolved.clone(),
    };
    let mut figures = Vec::new();
    let outcome = group.entry.engine.account_into(
        priced.context(),
        &account.positions,
        &account.balances,
        &mut Scratch::default(),
        None,
        &mut figures,
    );
    let mut errors = group.errors.clone();
    errors.remove(&a);
    if let Err(e) = outcome {
        figures.clear();
        errors.insert(a, e.to_string());
    }
    let (from, to) = (group.starts[a], group.starts[a + 1]);
    let mut lines = group.lines.clone();
    lines.splice(from..to, figures.iter().map(|f| RefreshLine { account: a, figures: *f }));
    let mut starts = group.starts.clone();
    for start in &mut starts[a + 1..] {
        *start = *start + figures.len() - (to - from);
    }
    let mut healths = group.health.clone();
    healths[a] = match errors.get(&a) {
        Some(_) => (f64::NAN, Status::Unpriced),
        None => health(&figures),
    };
    Some(Group {
        entry: Arc::clone(&group.entry),
        priced: Ok(Arc::clone(priced)),
        book: Arc::new(book),
        lines,
        starts,
        errors,
        health: healths,
    })
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

/// Status changes from `before` to `after`, in account order.
#[must_use]
pub fn alerts(before: &Published, after: &Published) -> Vec<Alert> {
    let mut out = Vec::new();
    for (hash, group) in &after.groups {
        let old = before.groups.get(hash);
        let aligned = old.is_some_and(|o| Arc::ptr_eq(&o.book.ids, &group.book.ids));
        for (i, id) in group.book.ids.iter().enumerate() {
            let previous = match old {
                Some(o) if aligned => o.health.get(i).map(|h| h.1),
                Some(o) => o.book.index.get(id).and_then(|&j| o.health.get(j)).map(|h| h.1),
                None => None,
            };
            let (ratio, now) = group.health[i];
            let from = previous.unwrap_or(Status::Healthy);
            if from != now {
                out.push(Alert { account: id.clone(), from, to: now, health: ratio });
            }
        }
    }
    out
}
