//! The cross-venue requirement of each account and its allocation back to the venues.
//!
//! For an account with legs at several venues, each leg is margined standalone by its venue's
//! methodology (`R_v`, and the add-ons and haircuts `A_v` that are not scan loss) and its P&L
//! is expressed on the standard set (a [`RiskVector`] per leg). The netted requirement is
//!
//! ```text
//! N = min( max( f · L(Σ_v P_v) + Σ_v A_v ,  F ),  Σ_v R_v )
//! ```
//!
//! with `L` the standard set's scan loss of the summed vectors (its own offsets), `f` its loss
//! factor (IM or MM), and `F` the largest requirement of the whole book (every leg merged)
//! under the methodology of each of the account's venues that agrees to that floor. Add-ons do
//! not net: each venue's liquidation cost, concentration and haircuts stay whole. The cap makes
//! netting never raise a requirement; the floor keeps it at or above what an agreeing venue
//! would ask for the book held in one place.
//!
//! **Allocation.** `N` is split over the venues in proportion to `f · max(0, c_v) + A_v`, where
//! `c_v` is the leg's Euler contribution to the scan loss: at each underlying's worst combined
//! scenario, the leg's loss there times that underlying's Euler share per unit of loss. A leg
//! that gains at the worst scenarios (the hedge) is credited only its own add-ons. Where the
//! cap binds, every venue is credited its standalone requirement. The split is in whole
//! micro-dollars by largest remainders, ties to the controller and then by venue id
//! ([`crate::allocate`]), so the parts sum exactly to `N`.
//!
//! **When netting holds.** Only for an account with legs at two or more venues, one
//! controller, and every venue live: a venue that has halted, or whose feed is older than the
//! policy's bound, withdraws the netting of every account that holds a leg there at the next
//! netting, and the account falls back to its standalone requirements. For the policy's grace
//! period after the failure it is not to be liquidated for that fallback alone.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use basics::keccak::keccak256_concatenated;
use basics::{Currency, Money, Rounding};
use margin::{
    CurrencyFigures, Engine, PricedMarket, ResolvedAccount, Scratch, VectorLayout, VectorScan,
};
use market::MarketSnapshot;
use product::{Instrument, Portfolio, Position};
use rayon::prelude::*;

use crate::allocate::{ALLOCATION_UNIT_RAW, allocate, round_up_to_unit, total};
use crate::book::{CrossAccount, CrossBook};
use crate::limits::{HASH_CHUNK_ACCOUNTS, WINDOW_MAX_SECS};
use crate::standard::{RiskVector, StandardSet};
use crate::venue::{Feed, VenueId};
use crate::{Error, ErrorKind};

/// When netting is withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A venue whose feed is older than this, in seconds, is stale.
    pub stale_after_secs: u64,
    /// How long after a venue fails its accounts are not liquidated for falling back to
    /// standalone margin, in seconds.
    pub grace_secs: u64,
}

impl Policy {
    /// Checks both windows.
    ///
    /// # Errors
    /// `OutOfRange` for a zero staleness bound or a window over 30 days.
    pub fn new(stale_after_secs: u64, grace_secs: u64) -> Result<Policy, Error> {
        if stale_after_secs == 0 || stale_after_secs > WINDOW_MAX_SECS {
            return Err(Error::range("policy.stale_after_secs", "1 s to 30 days"));
        }
        if grace_secs > WINDOW_MAX_SECS {
            return Err(Error::range("policy.grace_secs", "at most 30 days"));
        }
        Ok(Policy { stale_after_secs, grace_secs })
    }
}

/// Why an account is margined standalone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// It holds legs at one venue only: its figures are that venue's, unchanged.
    OneVenue,
    /// It has no controller, so no venue may seize its collateral elsewhere: the netted figure
    /// is advisory only.
    NoController,
    /// A venue it holds a leg at has halted.
    Halted(VenueId),
    /// A venue it holds a leg at has not reported within the staleness bound.
    Stale(VenueId),
}

/// Whether an account's requirement is netted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Netted across its venues.
    Netted,
    /// Standalone at every venue.
    Standalone(Fallback),
    /// Standalone after a venue failed, within the grace period: not to be liquidated for the
    /// fallback alone before `until_secs`.
    Grace {
        /// Why the netting was withdrawn.
        reason: Fallback,
        /// Unix seconds at which the grace period ends.
        until_secs: u64,
    },
}

/// What bounded a netted requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Neither bound: the combined scan loss plus the add-ons.
    Combined,
    /// The whole book under an agreeing venue's methodology (the floor).
    Floor,
    /// The sum of the standalone requirements (the cap, and every account that is not netted):
    /// netting releases nothing.
    Cap,
}

/// A requirement pair in USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// Initial margin, rounded up.
    pub im: Money,
    /// Maintenance margin, rounded up.
    pub mm: Money,
}

/// One leg of a netted account.
#[derive(Debug, Clone, PartialEq)]
pub struct LegFigures {
    /// The venue.
    pub venue: VenueId,
    /// Whether it is the account's controller.
    pub controller: bool,
    /// The venue's own requirement for the leg alone.
    pub standalone: Requirement,
    /// The leg's mark-to-market equity at the venue, in USD, rounded down.
    pub equity: Money,
    /// The leg's add-ons and haircuts in the venue's IM and MM, in USD (what does not net).
    pub add_ons: (f64, f64),
    /// The leg's Euler contribution to the combined scan loss, in USD (negative for a hedge).
    pub contribution: f64,
    /// The commitment to the leg's vector on the standard set.
    pub vector_hash: [u8; 32],
    /// The requirement credited to the venue: its part of the netted requirement.
    pub credited: Requirement,
    /// Collateral pledged to this venue by liens, valued in USD, rounded down.
    pub lien_in: Money,
    /// Collateral pledged away from this venue, valued in USD, rounded up.
    pub lien_out: Money,
}

impl LegFigures {
    /// The collateral the venue counts: its equity, less what it pledged away, plus what was
    /// pledged to it.
    #[must_use]
    pub fn credited_collateral(&self) -> Money {
        self.equity - self.lien_out + self.lien_in
    }
}

/// An account netted across its venues.
#[derive(Debug, Clone, PartialEq)]
pub struct NettedAccount {
    /// Its id.
    pub id: String,
    /// Its legs, by venue id.
    pub legs: Vec<LegFigures>,
    /// Netted or not, and why.
    pub status: Status,
    /// The standard set's scan loss of the summed vectors, in USD.
    pub scan: f64,
    /// `f · L + Σ A` before the floor and the cap, IM and MM (shown where netting is advisory).
    pub combined: (f64, f64),
    /// The whole book's requirement under each agreeing venue's methodology, IM and MM, in USD.
    pub whole_book: Vec<(VenueId, f64, f64)>,
    /// Σ of the standalone requirements.
    pub standalone: Requirement,
    /// The requirement in force: netted where the status is [`Status::Netted`], else the
    /// standalone sum.
    pub netted: Requirement,
    /// What bounded the IM.
    pub bound: Bound,
}

impl NettedAccount {
    /// Capital released by netting: the standalone IM less the netted IM.
    #[must_use]
    pub fn released_im(&self) -> Money {
        self.standalone.im - self.netted.im
    }
}

struct PricedVenue {
    id: VenueId,
    priced: PricedMarket,
    feed: Feed,
    floor: bool,
}

/// A market priced for every venue of a book and for the standard set: what netting each
/// account reads.
pub struct Netter {
    standard: PricedMarket,
    quantum_usd: f64,
    hash: [u8; 32],
    layout: VectorLayout,
    venues: BTreeMap<VenueId, PricedVenue>,
    policy: Policy,
    now_secs: u64,
}

impl Netter {
    /// Prices `market` for the standard set and for each venue (a venue that agrees to the floor
    /// on every instrument of the book, any other on the instruments it lists).
    ///
    /// # Errors
    /// `Margin` naming `standard` for a standard set that is not linear or cannot price the
    /// market, or the venue whose methodology cannot.
    pub fn new(
        book: &CrossBook,
        market: &Arc<MarketSnapshot>,
        standard: &StandardSet,
        policy: Policy,
        now_secs: u64,
    ) -> Result<Netter, Error> {
        // The book's instruments, each once, in order: a set per thread, then their union.
        let all: Vec<Instrument> = (book.accounts().par_iter())
            .fold(BTreeSet::new, |mut set, account| {
                for leg in &account.legs {
                    set.extend(leg.portfolio.positions().iter().map(|p| p.instrument));
                }
                set
            })
            .reduce(BTreeSet::new, |mut a, mut b| {
                a.append(&mut b);
                a
            })
            .into_iter()
            .collect();
        let (standard_priced, _) = (standard.engine.price_valuable(market, &all))
            .map_err(|e| Error::margin("standard", e))?;
        standard_priced.check_linear().map_err(|e| Error::margin("standard", e))?;
        let mut venues = BTreeMap::new();
        for (id, venue) in book.venues() {
            let universe: Vec<Instrument> = if venue.floor {
                all.clone()
            } else {
                all.iter().copied().filter(|i| venue.listing.lists(i)).collect()
            };
            let (priced, _) = price(&venue.engine, market, &universe)
                .map_err(|e| Error::margin(format!("venues.{id}.methodology"), e))?;
            let priced_venue =
                PricedVenue { id: id.clone(), priced, feed: venue.feed, floor: venue.floor };
            venues.insert(id.clone(), priced_venue);
        }
        Ok(Netter {
            layout: standard_priced.vector_layout(),
            standard: standard_priced,
            quantum_usd: standard.quantum_usd,
            hash: standard.hash,
            venues,
            policy,
            now_secs,
        })
    }

    /// The layout of every vector.
    #[must_use]
    pub fn layout(&self) -> &VectorLayout {
        &self.layout
    }

    /// Nets every account in parallel, one result per account in the book's order: a refused
    /// account has its error and changes no other. Accounts go in chunks, so each thread reuses
    /// its buffers and hashes the chunk's vectors four at a time.
    #[must_use]
    pub fn run(&self, book: &CrossBook) -> Vec<Result<NettedAccount, Error>> {
        // Each chunk's results are written in place, in parallel, into one vector made (and its
        // pages first touched) in parallel: no list of partial vectors copied into a final one.
        let accounts = book.accounts();
        let mut out: Vec<Option<Result<NettedAccount, Error>>> = Vec::new();
        (0..accounts.len()).into_par_iter().map(|_| None).collect_into_vec(&mut out);
        (out.par_chunks_mut(HASH_CHUNK_ACCOUNTS).zip(accounts.par_chunks(HASH_CHUNK_ACCOUNTS)))
            .for_each_init(Work::default, |work, (slots, chunk)| {
                for (slot, result) in slots.iter_mut().zip(self.chunk(chunk, work)) {
                    *slot = Some(result);
                }
            });
        (out.into_iter())
            .map(|slot| slot.unwrap_or_else(|| unreachable!("Invariant: every account is netted")))
            .collect()
    }

    /// Nets one account.
    ///
    /// # Errors
    /// The first leg a venue or the standard set cannot value (the field names the account and
    /// the venue), or a whole book that cannot be formed for a floor.
    pub fn account(&self, account: &CrossAccount) -> Result<NettedAccount, Error> {
        let mut out = self.chunk(std::slice::from_ref(account), &mut Work::default());
        out.pop().unwrap_or_else(|| unreachable!("Invariant: one result per account"))
    }

    /// Nets `accounts`: every figure but the vectors' hashes per account, then the hashes of
    /// the chunk's vectors, four messages at a time, then the requirement and its allocation.
    fn chunk(
        &self,
        accounts: &[CrossAccount],
        work: &mut Work,
    ) -> Vec<Result<NettedAccount, Error>> {
        work.bytes.clear();
        work.ends.clear();
        let mut pending: Vec<Result<Pending, Error>> =
            accounts.iter().map(|a| self.pending(a, work)).collect();
        let mut digests = keccak256_concatenated(&work.bytes, &work.ends).into_iter();
        for p in pending.iter_mut().flatten() {
            for leg in &mut p.legs {
                leg.vector_hash =
                    digests.next().unwrap_or_else(|| unreachable!("Invariant: a hash per leg"));
            }
        }
        (pending.into_iter().zip(accounts))
            .map(|(p, account)| {
                let p = p?;
                self.finish(account, p.legs, &p.scan, p.whole_book)
            })
            .collect()
    }

    /// One account's figures up to its vectors' hashes: each leg standalone at its venue and on
    /// the standard set, the combined scan, the Euler contributions, the liens and the whole
    /// book's floors. Each leg's vector is appended, encoded, to the chunk's bytes; a refused
    /// account leaves them as they were.
    fn pending(&self, account: &CrossAccount, work: &mut Work) -> Result<Pending, Error> {
        let mark = (work.bytes.len(), work.ends.len());
        let pending = self.compute_pending(account, work);
        if pending.is_err() {
            work.bytes.truncate(mark.0);
            work.ends.truncate(mark.1);
        }
        pending
    }

    fn compute_pending(&self, account: &CrossAccount, work: &mut Work) -> Result<Pending, Error> {
        let field = |venue: &VenueId| format!("{}.{venue}", account.id);
        let mut legs = Vec::with_capacity(account.legs.len());
        let mut vectors = Vec::with_capacity(account.legs.len());
        work.combined.cells.clear();
        work.combined.cells.resize(self.layout.len(), 0);
        for (j, leg) in account.legs.iter().enumerate() {
            let venue = &self.venues[&leg.venue];
            let balances = leg.portfolio.balances().iter().map(|(c, m)| (*c, m.to_f64()));
            let positions = leg.portfolio.positions().iter().copied();
            let usd = (work.engine.figures(&venue.priced, positions, balances))
                .map_err(|e| Error::margin(field(&leg.venue), e))?;
            let usd = self.in_usd(usd, &|| field(&leg.venue))?;
            let vector = self
                .vector(&leg.portfolio, work)
                .map_err(|e| Error { field: field(&leg.venue), ..e })?;
            work.combined.add(&vector)?;
            vector.encode_into(&self.hash, &self.layout, &mut work.bytes);
            work.ends.push(work.bytes.len());
            legs.push(LegFigures {
                venue: leg.venue.clone(),
                controller: account.controller == Some(j),
                standalone: Requirement {
                    im: money(usd.im, Rounding::Up, &|| field(&leg.venue))?,
                    mm: money(usd.mm, Rounding::Up, &|| field(&leg.venue))?,
                },
                equity: money(usd.equity, Rounding::Down, &|| field(&leg.venue))?,
                add_ons: (usd.add_im, usd.add_mm),
                contribution: 0.0,
                vector_hash: [0; 32],
                credited: Requirement {
                    im: Money::zero(Currency::USD),
                    mm: Money::zero(Currency::USD),
                },
                lien_in: Money::zero(Currency::USD),
                lien_out: Money::zero(Currency::USD),
            });
            vectors.push(vector);
        }
        work.combined.to_usd_into(self.quantum_usd, &mut work.pnl);
        let scan = (self.standard.vector_scan(&work.pnl))
            .map_err(|e| Error::margin(format!("{}.standard", account.id), e))?;
        self.contributions(&scan, &vectors, &mut legs);
        self.liens(account, &mut legs)?;
        let whole_book = self.whole_book(account, work)?;
        Ok(Pending { legs, scan, whole_book })
    }

    /// A leg's vector on the standard set, quantised.
    fn vector(&self, portfolio: &Portfolio, work: &mut Work) -> Result<RiskVector, Error> {
        let (Evaluation { scratch, resolved, .. }, pnl) = (&mut work.engine, &mut work.pnl);
        let balances = portfolio.balances().iter().map(|(c, m)| (*c, m.to_f64()));
        (self.standard.resolve_into(portfolio.positions().iter().copied(), balances, resolved))
            .map_err(|e| Error::margin("standard", e))?;
        pnl.clear();
        pnl.resize(self.layout.len(), 0.0);
        (self.standard.scenario_vector_into(resolved.slices(), scratch, pnl))
            .map_err(|e| Error::margin("standard", e))?;
        RiskVector::quantise(pnl, self.quantum_usd, "vector")
    }

    fn finish(
        &self,
        account: &CrossAccount,
        mut legs: Vec<LegFigures>,
        scan: &VectorScan,
        whole_book: Vec<(VenueId, f64, f64)>,
    ) -> Result<NettedAccount, Error> {
        let requirement = self.standard.methodology().requirement;
        let add_im: f64 = legs.iter().map(|l| l.add_ons.0).sum();
        let add_mm: f64 = legs.iter().map(|l| l.add_ons.1).sum();
        let combined = (
            requirement.im_loss_factor * scan.scan + add_im,
            requirement.mm_loss_factor * scan.scan + add_mm,
        );
        let floor_im = whole_book.iter().map(|w| w.1).fold(0.0, f64::max);
        let floor_mm = whole_book.iter().map(|w| w.2).fold(0.0, f64::max);
        let standalone = Requirement {
            im: total(legs.iter().map(|l| l.standalone.im), Currency::USD),
            mm: total(legs.iter().map(|l| l.standalone.mm), Currency::USD),
        };
        let status = self.status(account);
        let field = || format!("{}.netted", account.id);
        let im = round_up_to_unit(money(combined.0.max(floor_im), Rounding::Up, &field)?);
        let mm = round_up_to_unit(money(combined.1.max(floor_mm), Rounding::Up, &field)?);
        let bound = if status != Status::Netted || im >= standalone.im {
            Bound::Cap
        } else if floor_im > combined.0 {
            Bound::Floor
        } else {
            Bound::Combined
        };
        let netted = if status == Status::Netted {
            Requirement { im: lesser(im, standalone.im), mm: lesser(mm, standalone.mm) }
        } else {
            standalone
        };
        Netter::credit(
            &mut legs,
            account.controller,
            netted,
            standalone,
            (requirement.im_loss_factor, requirement.mm_loss_factor),
        );
        if status == Status::Netted {
            follow_liens(account, &mut legs);
        }
        Ok(NettedAccount {
            id: account.id.clone(),
            legs,
            status,
            scan: scan.scan,
            combined,
            whole_book,
            standalone,
            netted,
            bound,
        })
    }

    /// Splits `netted` over the legs: standalone where it equals the standalone sum (the cap,
    /// or no netting), else in proportion to each leg's contribution and add-ons.
    fn credit(
        legs: &mut [LegFigures],
        controller: Option<usize>,
        netted: Requirement,
        standalone: Requirement,
        factors: (f64, f64),
    ) {
        let split = |amount: Money,
                     whole: Money,
                     factor: f64,
                     add: fn(&LegFigures) -> f64,
                     own: fn(&LegFigures) -> Money,
                     legs: &[LegFigures]| {
            if amount == whole {
                return legs.iter().map(own).collect::<Vec<_>>();
            }
            let weights: Vec<f64> =
                legs.iter().map(|l| factor * l.contribution.max(0.0) + add(l)).collect();
            allocate(amount, &weights, controller)
        };
        let im =
            split(netted.im, standalone.im, factors.0, |l| l.add_ons.0, |l| l.standalone.im, legs);
        let mm =
            split(netted.mm, standalone.mm, factors.1, |l| l.add_ons.1, |l| l.standalone.mm, legs);
        for ((leg, im), mm) in legs.iter_mut().zip(im).zip(mm) {
            leg.credited = Requirement { im, mm };
        }
    }

    /// Each leg's Euler contribution to the combined scan loss.
    fn contributions(&self, scan: &VectorScan, vectors: &[RiskVector], legs: &mut [LegFigures]) {
        let mut offset = 0;
        for (unit, (_, count)) in scan.units.iter().zip(&self.layout.units) {
            if unit.loss > 0.0 {
                let per_loss = unit.share / unit.loss;
                for (leg, vector) in legs.iter_mut().zip(vectors) {
                    #[expect(clippy::cast_precision_loss, reason = "exact below 2^53 quanta")]
                    let pnl = vector.cells[offset + unit.worst] as f64 * self.quantum_usd;
                    leg.contribution += per_loss * -pnl;
                }
            }
            offset += count;
        }
    }

    /// Values the account's liens at the market's USD prices: what a venue receives rounded
    /// down, what it gives rounded up.
    fn liens(&self, account: &CrossAccount, legs: &mut [LegFigures]) -> Result<(), Error> {
        for (l, lien) in account.liens.iter().enumerate() {
            let field = || format!("{}.liens[{l}]", account.id);
            let price = (self.standard.market().usd_price(lien.currency()))
                .map_err(|e| Error::range(field(), e.to_string()))?;
            let value = lien.amount.to_f64() * price;
            legs[lien.to].lien_in = legs[lien.to].lien_in + money(value, Rounding::Down, &field)?;
            legs[lien.from].lien_out =
                legs[lien.from].lien_out + money(value, Rounding::Up, &field)?;
        }
        Ok(())
    }

    /// The whole book (every leg merged) under each of the account's venues that agrees to the
    /// floor, in USD; none for an account at one venue.
    fn whole_book(
        &self,
        account: &CrossAccount,
        work: &mut Work,
    ) -> Result<Vec<(VenueId, f64, f64)>, Error> {
        let agreeing = || (account.legs.iter()).map(|l| &self.venues[&l.venue]).filter(|v| v.floor);
        if account.legs.len() < 2 || agreeing().next().is_none() {
            return Ok(Vec::new());
        }
        let Work { engine, positions, balances, .. } = work;
        merge_into(account, positions, balances)?;
        let mut out = Vec::with_capacity(2);
        for venue in agreeing() {
            let field = || format!("{}.whole_book.{}", account.id, venue.id);
            let cash = balances.iter().map(|(c, raw)| (*c, Money::from_raw(*raw, *c).to_f64()));
            let figures = (engine.figures(&venue.priced, positions.iter().copied(), cash))
                .map_err(|e| Error::margin(field(), e))?;
            let usd = self.in_usd(figures, &field)?;
            out.push((venue.id.clone(), usd.im, usd.mm));
        }
        Ok(out)
    }

    fn status(&self, account: &CrossAccount) -> Status {
        let mut failed: Option<(u64, Fallback)> = None;
        for leg in &account.legs {
            let feed = self.venues[&leg.venue].feed;
            let halted = feed.halted_at_secs.filter(|h| *h <= self.now_secs);
            let stale_since = feed.as_of_secs.saturating_add(self.policy.stale_after_secs);
            let failure = match halted {
                Some(at) => Some((at, Fallback::Halted(leg.venue.clone()))),
                None if self.now_secs > stale_since => {
                    Some((stale_since, Fallback::Stale(leg.venue.clone())))
                }
                None => None,
            };
            if let Some(f) = failure
                && failed.as_ref().is_none_or(|g| f.0 < g.0)
            {
                failed = Some(f);
            }
        }
        if let Some((since, reason)) = failed {
            let until_secs = since.saturating_add(self.policy.grace_secs);
            return if self.now_secs < until_secs {
                Status::Grace { reason, until_secs }
            } else {
                Status::Standalone(reason)
            };
        }
        if account.legs.len() < 2 {
            Status::Standalone(Fallback::OneVenue)
        } else if account.controller.is_none() {
            Status::Standalone(Fallback::NoController)
        } else {
            Status::Netted
        }
    }

    fn in_usd(
        &self,
        figures: &[CurrencyFigures],
        field: &dyn Fn() -> String,
    ) -> Result<Usd, Error> {
        let mut usd = Usd::default();
        for f in figures {
            let price = (self.standard.market().usd_price(f.currency))
                .map_err(|e| Error::range(field(), e.to_string()))?;
            usd.im += f.initial_margin * price;
            usd.mm += f.maintenance_margin * price;
            usd.equity += f.equity * price;
            usd.add_im += (f.add_ons_im + f.haircut_im) * price;
            usd.add_mm += (f.add_ons_mm + f.haircut_mm) * price;
        }
        Ok(usd)
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Usd {
    im: f64,
    mm: f64,
    equity: f64,
    add_im: f64,
    add_mm: f64,
}

/// Moves credited requirement along the account's liens, in order: a venue credited more than
/// the collateral it still holds passes the excess, up to the lien's value in whole allocation
/// units, to the venue its collateral is pledged to, so the requirement sits where the coins
/// that cover it are counted. Each move takes from one part and adds to another, so the sum
/// stays exact.
fn follow_liens(account: &CrossAccount, legs: &mut [LegFigures]) {
    for lien in &account.liens {
        for which in [true, false] {
            let held = legs[lien.from].credited_collateral().raw().max(0);
            let credited = part(&mut legs[lien.from].credited, which).raw();
            let value = legs[lien.from].lien_out.raw();
            let excess = (credited - held).max(0).min(value);
            let moved = excess - excess % ALLOCATION_UNIT_RAW;
            if moved > 0 {
                let from = part(&mut legs[lien.from].credited, which);
                *from = Money::from_raw(from.raw() - moved, Currency::USD);
                let to = part(&mut legs[lien.to].credited, which);
                *to = Money::from_raw(to.raw() + moved, Currency::USD);
            }
        }
    }
}

fn part(requirement: &mut Requirement, im: bool) -> &mut Money {
    if im { &mut requirement.im } else { &mut requirement.mm }
}

fn price(
    engine: &Engine,
    market: &Arc<MarketSnapshot>,
    universe: &[Instrument],
) -> Result<(PricedMarket, Vec<(Instrument, margin::Error)>), margin::Error> {
    let (priced, refused) = engine.price_valuable(market, universe)?;
    Ok((priced, refused.into_iter().collect()))
}

/// The smaller of two USD amounts (`Money` is only partially ordered across currencies).
fn lesser(a: Money, b: Money) -> Money {
    if a <= b { a } else { b }
}

/// `value` USD as money; `field` names it only when it is refused.
fn money(value: f64, rounding: Rounding, field: &dyn Fn() -> String) -> Result<Money, Error> {
    Money::from_f64(value, Currency::USD, rounding)
        .map_err(|e| Error::range(field(), e.to_string()))
}

/// Every leg of `account` in one book, into `positions` (sorted by instrument, zero sizes
/// dropped) and `balances` (raw amounts by currency, zeros dropped): sizes of one instrument
/// add up, balances add up. An instrument held at two venues with different entry prices or
/// funding indices is refused: its P&L cannot be carried by one entry.
///
/// # Errors
/// `Unmergeable` naming the instrument.
fn merge_into(
    account: &CrossAccount,
    positions: &mut Vec<Position>,
    balances: &mut Vec<(Currency, i128)>,
) -> Result<(), Error> {
    positions.clear();
    balances.clear();
    for leg in &account.legs {
        positions.extend_from_slice(leg.portfolio.positions());
        balances.extend(leg.portfolio.balances().iter().map(|(c, m)| (*c, m.raw())));
    }
    positions.sort_by_key(|p| p.instrument);
    let mut refused = None;
    positions.dedup_by(|later, kept| {
        if later.instrument != kept.instrument {
            return false;
        }
        if later.entry != kept.entry || later.funding != kept.funding {
            refused.get_or_insert(later.instrument);
        }
        kept.size += later.size;
        true
    });
    if let Some(instrument) = refused {
        return Err(Error::new(
            format!("{}.whole_book", account.id),
            ErrorKind::Unmergeable(format!(
                "{instrument} held at two venues with different entries"
            )),
        ));
    }
    positions.retain(|p| p.size != 0.0);
    balances.sort_by_key(|b| b.0);
    balances.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    balances.retain(|b| b.1 != 0);
    Ok(())
}

/// Buffers one thread reuses from account to account: the engine's, a vector's cells, the
/// combined vector, the merged whole book and the chunk's encoded vectors, so netting allocates
/// little beyond what it returns.
#[derive(Default)]
struct Work {
    engine: Evaluation,
    pnl: Vec<f64>,
    positions: Vec<Position>,
    balances: Vec<(Currency, i128)>,
    combined: RiskVector,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

/// What one engine evaluation writes into: its scratch, the resolved account and the figures.
#[derive(Default)]
struct Evaluation {
    scratch: Scratch,
    resolved: ResolvedAccount,
    figures: Vec<CurrencyFigures>,
}

impl Evaluation {
    /// The figures of `positions` and `balances` (sorted by currency) at `priced`.
    fn figures(
        &mut self,
        priced: &PricedMarket,
        positions: impl IntoIterator<Item = Position>,
        balances: impl IntoIterator<Item = (Currency, f64)>,
    ) -> Result<&[CurrencyFigures], margin::Error> {
        priced.resolve_into(positions, balances, &mut self.resolved)?;
        self.figures.clear();
        priced.account_into(self.resolved.slices(), &mut self.scratch, None, &mut self.figures)?;
        Ok(&self.figures)
    }
}

/// An account netted up to its vectors' hashes.
struct Pending {
    legs: Vec<LegFigures>,
    scan: VectorScan,
    whole_book: Vec<(VenueId, f64, f64)>,
}
