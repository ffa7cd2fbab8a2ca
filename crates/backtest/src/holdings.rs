//! What every account holds on one day: legs struck into contracts, then sized and entered on
//! the day's priced market, then resolved against any priced market as the engine's accounts.

use std::collections::BTreeMap;

use basics::{Currency, UnixNanos};
use margin::{AccountBook, PricedMarket, ResolvedAccount};
use market::MarketSnapshot;
use product::{Instrument, InstrumentKind, Settlement};

use crate::book::{Book, Contract, Leg, expiry_after, round_strike};
use crate::error::{Error, ErrorKind};

/// A row that is not in a priced market.
const NO_ROW: u32 = u32::MAX;

/// Every contract the backtest has struck, each once, numbered in the order struck.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    instruments: Vec<Instrument>,
    ids: BTreeMap<Instrument, u32>,
}

impl Interner {
    fn id(&mut self, instrument: Instrument) -> u32 {
        let next = self.instruments.len() as u32;
        *self.ids.entry(instrument).or_insert_with(|| {
            self.instruments.push(instrument);
            next
        })
    }

    pub(crate) fn instrument(&self, id: u32) -> &Instrument {
        &self.instruments[id as usize]
    }

    /// Each id's row in `priced`, [`NO_ROW`] where it has none.
    pub(crate) fn rows(&self, priced: &PricedMarket, ids: &[u32], out: &mut Vec<u32>) {
        out.clear();
        out.resize(self.instruments.len(), NO_ROW);
        for &id in ids {
            if let Some(row) = priced.arrays().position(self.instrument(id)) {
                out[id as usize] = row as u32;
            }
        }
    }
}

/// A leg's current contract.
#[derive(Debug, Clone, Copy)]
struct Struck {
    id: u32,
    expiry: Option<UnixNanos>,
}

/// Every account's current contracts, leg by leg.
#[derive(Debug)]
pub(crate) struct Holdings {
    struck: Vec<Vec<Option<Struck>>>,
}

/// One account's position on one day.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    pub(crate) id: u32,
    pub(crate) size: f64,
    /// The entry of a future or perpetual: the day's mark.
    pub(crate) entry: Option<f64>,
}

/// Every account's positions and balances on one day, flat.
#[derive(Debug, Default)]
pub(crate) struct DayBook {
    /// The ids held by any account, sorted, each once.
    pub(crate) ids: Vec<u32>,
    held: Vec<Held>,
    held_starts: Vec<usize>,
    balances: Vec<(Currency, f64)>,
    balance_starts: Vec<usize>,
    /// Why an account has no positions today (an instrument the market could not price).
    pub(crate) refused: BTreeMap<usize, String>,
}

impl DayBook {
    pub(crate) fn held(&self, account: usize) -> &[Held] {
        &self.held[self.held_starts[account]..self.held_starts[account + 1]]
    }

    pub(crate) fn accounts(&self) -> usize {
        self.held_starts.len().saturating_sub(1)
    }

    /// Resolves every account against `priced` (whose rows `rows` gives by id) into `out`; an
    /// account holding an instrument without a row gets an empty placeholder and its reason in
    /// `refused`.
    pub(crate) fn resolve(
        &self,
        interner: &Interner,
        rows: &[u32],
        out: &mut AccountBook,
        refused: &mut BTreeMap<usize, String>,
    ) {
        // A book of the same size is overwritten in place: a fresh one per refresh would page in
        // new memory ten thousand accounts at a time, every day, for every horizon.
        let in_place = out.len() == self.accounts();
        if !in_place {
            *out = AccountBook::default();
        }
        refused.clone_from(&self.refused);
        let mut account = ResolvedAccount::default();
        for a in 0..self.accounts() {
            account.positions.clear();
            account.entries.clear();
            account.balances.clear();
            let missing = self.held(a).iter().find(|h| rows[h.id as usize] == NO_ROW);
            if let Some(h) = missing {
                let name = interner.instrument(h.id);
                refused.entry(a).or_insert_with(|| format!("{name}: not priced on this day"));
            } else if !refused.contains_key(&a) {
                for h in self.held(a) {
                    let row = rows[h.id as usize] as usize;
                    account.positions.push((row, h.size));
                    if let Some(entry) = h.entry {
                        account.entries.push((row, entry));
                    }
                }
                account.positions.sort_by_key(|p| p.0);
                account.entries.sort_by_key(|p| p.0);
                let balances = &self.balances[self.balance_starts[a]..self.balance_starts[a + 1]];
                account.balances.extend_from_slice(balances);
            }
            if in_place {
                out.replace(a, &account);
            } else {
                out.push(&account);
            }
        }
    }
}

impl Holdings {
    pub(crate) fn new(book: &Book) -> Holdings {
        let struck = book.accounts().iter().map(|a| vec![None; a.legs.len()]).collect();
        Holdings { struck }
    }

    /// Strikes every leg without a contract or whose contract expires within `roll_nanos` of
    /// `market`'s valuation, and gives the ids the day needs priced (every struck contract and
    /// the perpetuals of perpetual and hedge legs), sorted and each once.
    pub(crate) fn roll(
        &mut self,
        book: &Book,
        market: &MarketSnapshot,
        roll_nanos: i64,
        interner: &mut Interner,
    ) -> Result<Vec<u32>, Error> {
        let valuation = market.valuation();
        // Ten thousand accounts hold a few hundred contracts: mark each id once rather than sort
        // every leg's.
        let mut held = vec![false; interner.instruments.len()];
        for (account, struck) in book.accounts().iter().zip(&mut self.struck) {
            for (leg, slot) in account.legs.iter().zip(struck.iter_mut()) {
                let stale =
                    slot.is_none_or(|s| s.expiry.is_some_and(|e| e.0 - valuation.0 <= roll_nanos));
                if stale {
                    *slot = strike(leg, market, interner)?;
                }
                if let Some(s) = slot {
                    let id = s.id as usize;
                    if id >= held.len() {
                        held.resize(id + 1, false);
                    }
                    held[id] = true;
                }
            }
        }
        Ok((0..held.len()).filter(|&id| held[id]).map(|id| id as u32).collect())
    }

    /// Every account's positions on the day `priced` values (the day [`Holdings::roll`] was
    /// last called for): sizes in contract units, hedges against the day's deltas, futures and
    /// perpetuals entered at the day's marks.
    pub(crate) fn day_book(
        &self,
        book: &Book,
        priced: &PricedMarket,
        interner: &Interner,
        rows: &[u32],
        ids: Vec<u32>,
        refused: &BTreeMap<Instrument, margin::Error>,
    ) -> DayBook {
        let mut day =
            DayBook { ids, held_starts: vec![0], balance_starts: vec![0], ..DayBook::default() };
        for (a, (account, struck)) in book.accounts().iter().zip(&self.struck).enumerate() {
            let start = day.held.len();
            let mut coins = Coins::default();
            for &(currency, amount) in &account.cash {
                coins.add(currency, amount);
            }
            let mut why = None;
            for (leg, slot) in account.legs.iter().zip(struck) {
                let day_rows = DayRows { priced, rows, interner, refused };
                if let Err(reason) = hold(leg, *slot, &day_rows, &mut day.held, &mut coins) {
                    why.get_or_insert(reason);
                }
            }
            if why.is_none() {
                let legs = account.legs.as_slice();
                why = hedge(legs, struck, priced, rows, &mut day.held[start..], &coins).err();
            }
            if let Some(reason) = why {
                day.refused.insert(a, reason);
            }
            merge(&mut day.held, start);
            day.held_starts.push(day.held.len());
            day.balances.extend(coins.0.iter().copied().filter(|(_, amount)| *amount != 0.0));
            day.balance_starts.push(day.balances.len());
        }
        day
    }
}

/// What a day's positions are read from.
struct DayRows<'a> {
    priced: &'a PricedMarket,
    rows: &'a [u32],
    interner: &'a Interner,
    refused: &'a BTreeMap<Instrument, margin::Error>,
}

/// An account's balances by currency, sorted: a handful, so a vector beats a map.
#[derive(Debug, Default)]
struct Coins(Vec<(Currency, f64)>);

impl Coins {
    fn add(&mut self, currency: Currency, amount: f64) {
        match self.0.binary_search_by_key(&currency, |c| c.0) {
            Ok(i) => self.0[i].1 += amount,
            Err(i) => self.0.insert(i, (currency, amount)),
        }
    }

    fn get(&self, currency: Currency) -> f64 {
        self.0.iter().find(|c| c.0 == currency).map_or(0.0, |c| c.1)
    }
}

/// A fresh contract for `leg` on `market`: `None` for coins held.
fn strike(
    leg: &Leg,
    market: &MarketSnapshot,
    interner: &mut Interner,
) -> Result<Option<Struck>, Error> {
    let valuation = market.valuation();
    let spot = market
        .underlying(leg.underlying)
        .map_err(|e| Error::new("market", None, ErrorKind::Market(e.to_string())))?
        .index();
    let quote = match leg.settlement {
        Settlement::Inverse => Currency::USD,
        Settlement::Linear => Currency::USDC,
    };
    let (kind, expiry) = match leg.contract {
        Contract::Spot => return Ok(None),
        Contract::Perpetual | Contract::DeltaHedge => (InstrumentKind::Perpetual, None),
        Contract::Future { tenor_days } => {
            let expiry = expiry_after(valuation, tenor_days);
            (InstrumentKind::Future { expiry }, Some(expiry))
        }
        Contract::Option { right, moneyness, tenor_days } => {
            let expiry = expiry_after(valuation, tenor_days);
            let strike = round_strike(moneyness * spot, spot);
            (InstrumentKind::Option { expiry, strike, right }, Some(expiry))
        }
    };
    let instrument = Instrument::new(leg.underlying, quote, leg.settlement, kind)
        .map_err(|e| Error::new("legs", None, ErrorKind::OutOfRange(e.to_string())))?;
    Ok(Some(Struck { id: interner.id(instrument), expiry }))
}

/// Appends `leg`'s position of the day to `held` (or its coins to `coins`).
fn hold(
    leg: &Leg,
    slot: Option<Struck>,
    day: &DayRows<'_>,
    held: &mut Vec<Held>,
    coins: &mut Coins,
) -> Result<(), String> {
    let Some(struck) = slot else {
        coins.add(leg.underlying, leg.size);
        return Ok(());
    };
    let row = day.rows[struck.id as usize];
    if row == NO_ROW {
        let instrument = day.interner.instrument(struck.id);
        return Err(match day.refused.get(instrument) {
            Some(e) => e.to_string(),
            None => format!("{instrument}: not priced on this day"),
        });
    }
    let info = day.priced.arrays().info(row as usize);
    let inverse = leg.settlement == Settlement::Inverse;
    let (size, entry) = match leg.contract {
        Contract::Option { .. } => (leg.size, None),
        // Delta-one legs are rebalanced every day to their size in coins, as a trader keeps a
        // hedge ratio: an inverse contract of `n` USD at mark `F` is `n / F` coins, so it holds
        // `size · F` USD. Entered at the day's mark, yesterday's variation margin is settled.
        Contract::Future { .. } | Contract::Perpetual => {
            (if inverse { leg.size * info.mark } else { leg.size }, Some(info.mark))
        }
        Contract::DeltaHedge => (0.0, Some(info.mark)),
        Contract::Spot => return Err("Invariant: coins are not struck".to_owned()),
    };
    held.push(Held { id: struck.id, size, entry });
    Ok(())
}

/// Sizes the hedge legs (held with size 0 by [`hold`]) against the delta of everything else.
fn hedge(
    legs: &[Leg],
    struck: &[Option<Struck>],
    priced: &PricedMarket,
    rows: &[u32],
    held: &mut [Held],
    coins: &Coins,
) -> Result<(), String> {
    for (leg, slot) in legs.iter().zip(struck) {
        let (Contract::DeltaHedge, Some(perp)) = (leg.contract, slot) else { continue };
        let delta_of = |h: &Held| {
            let row = rows[h.id as usize] as usize;
            let info = priced.arrays().info(row);
            if info.underlying == leg.underlying { h.size * info.delta_coins } else { 0.0 }
        };
        let delta = held.iter().map(delta_of).sum::<f64>() + coins.get(leg.underlying);
        let row = rows[perp.id as usize];
        if row == NO_ROW {
            return Ok(());
        }
        let per_unit = priced.arrays().info(row as usize).delta_coins;
        if !(per_unit.is_finite() && per_unit != 0.0) {
            return Err(format!("{}: no delta to hedge with", leg.underlying));
        }
        if let Some(h) = held.iter_mut().find(|h| h.id == perp.id && h.size == 0.0) {
            h.size = -delta / per_unit;
        }
    }
    Ok(())
}

/// Sums the positions from `start` on that hold the same contract (their entries are the same
/// mark), and drops those of size zero.
fn merge(held: &mut Vec<Held>, start: usize) {
    held[start..].sort_by_key(|h| h.id);
    let mut write = start;
    for read in start..held.len() {
        if write > start && held[write - 1].id == held[read].id {
            held[write - 1].size += held[read].size;
        } else {
            held[write] = held[read];
            write += 1;
        }
    }
    held.truncate(write);
    let mut keep = start;
    for read in start..held.len() {
        if held[read].size != 0.0 {
            held[keep] = held[read];
            keep += 1;
        }
    }
    held.truncate(keep);
}
