//! The engine: a validated methodology and the operations built on it.

use std::collections::BTreeMap;
use std::sync::Arc;

use basics::Currency;
use market::MarketSnapshot;
use product::Portfolio;
use rayon::prelude::*;
use scenario::Methodology;

use crate::account::{AccountDetail, Context, CurrencyFigures, Scratch};
use crate::addons::{AddOnInputs, UnderlyingLiquidity, market_liquidity};
use crate::valuation::RiskArrays;
use crate::{Error, ErrorKind};

/// A margin engine for one methodology.
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    methodology: Methodology,
    grouped: bool,
    /// Whether an add-on competes with the scan loss (Derive's forward contingency).
    competing: bool,
    /// Whether an add-on charges feed confidence on collateral.
    confidence: bool,
    /// Vega bucket edges in days of the friction add-on: the methodology's, and those of the
    /// underlyings with add-ons of their own.
    bucket_days: (Vec<f64>, BTreeMap<Currency, Vec<f64>>),
}

/// An account's positions and balances resolved against risk arrays.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedAccount {
    /// (row, size), sorted by row.
    pub positions: Vec<(usize, f64)>,
    /// (currency, amount), sorted by currency.
    pub balances: Vec<(Currency, f64)>,
}

/// Many accounts in struct-of-arrays form, for the bulk refresh: chunks of
/// [`BOOK_CHUNK_ACCOUNTS`] accounts, each chunk shared (`Arc`) between the copies of a book. A
/// copy costs a pointer per chunk, and replacing one account in a copy copies that account's
/// chunk only, so a service can re-margin one account of a million without copying the book.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountBook {
    chunks: Vec<Arc<BookChunk>>,
    len: usize,
}

/// Accounts per chunk of an [`AccountBook`], the refresh's unit of parallel work too.
pub const BOOK_CHUNK_ACCOUNTS: usize = 2_048;

/// Up to [`BOOK_CHUNK_ACCOUNTS`] accounts, flat.
#[derive(Debug, Clone, PartialEq, Default)]
struct BookChunk {
    /// `positions[position_offsets[a]..position_offsets[a + 1]]` are account `a`'s positions
    /// (`a` counted within the chunk).
    position_offsets: Vec<usize>,
    /// (row, size) of every position, each account's sorted by row.
    positions: Vec<(usize, f64)>,
    /// `balances[balance_offsets[a]..balance_offsets[a + 1]]` are account `a`'s balances.
    balance_offsets: Vec<usize>,
    /// (currency, amount) of every balance, each account's sorted by currency.
    balances: Vec<(Currency, f64)>,
}

impl BookChunk {
    fn new() -> BookChunk {
        BookChunk { position_offsets: vec![0], balance_offsets: vec![0], ..BookChunk::default() }
    }

    fn len(&self) -> usize {
        self.position_offsets.len() - 1
    }

    fn account(&self, a: usize) -> AccountSlices<'_> {
        (
            &self.positions[self.position_offsets[a]..self.position_offsets[a + 1]],
            &self.balances[self.balance_offsets[a]..self.balance_offsets[a + 1]],
        )
    }
}

impl AccountBook {
    /// Appends an account.
    pub fn push(&mut self, account: &ResolvedAccount) {
        if self.len.is_multiple_of(BOOK_CHUNK_ACCOUNTS) {
            self.chunks.push(Arc::new(BookChunk::new()));
        }
        // The last chunk is shared only if this book was copied since it was last appended to.
        let Some(last) = self.chunks.last_mut() else { return };
        let chunk = Arc::make_mut(last);
        chunk.positions.extend_from_slice(&account.positions);
        chunk.balances.extend_from_slice(&account.balances);
        chunk.position_offsets.push(chunk.positions.len());
        chunk.balance_offsets.push(chunk.balances.len());
        self.len += 1;
    }

    /// Replaces account `a` (an index below [`AccountBook::len`]) with `account`, shifting the
    /// accounts after it in its chunk when its number of positions or balances changes. Only
    /// that chunk is copied, and only if another book shares it.
    pub fn replace(&mut self, a: usize, account: &ResolvedAccount) {
        let chunk = Arc::make_mut(&mut self.chunks[a / BOOK_CHUNK_ACCOUNTS]);
        let a = a % BOOK_CHUNK_ACCOUNTS;
        let (from, to) = (chunk.position_offsets[a], chunk.position_offsets[a + 1]);
        chunk.positions.splice(from..to, account.positions.iter().copied());
        shift(&mut chunk.position_offsets[a + 1..], to - from, account.positions.len());
        let (from, to) = (chunk.balance_offsets[a], chunk.balance_offsets[a + 1]);
        chunk.balances.splice(from..to, account.balances.iter().copied());
        shift(&mut chunk.balance_offsets[a + 1..], to - from, account.balances.len());
    }

    /// Number of accounts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the book is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Account `a`'s (positions, balances): (row, size) sorted by row, (currency, amount)
    /// sorted by currency.
    ///
    /// # Panics
    /// If `a` is not below [`AccountBook::len`].
    #[must_use]
    pub fn account(&self, a: usize) -> AccountSlices<'_> {
        self.chunks[a / BOOK_CHUNK_ACCOUNTS].account(a % BOOK_CHUNK_ACCOUNTS)
    }

    /// Account `a` copied out of the book.
    ///
    /// # Panics
    /// If `a` is not below [`AccountBook::len`].
    #[must_use]
    pub fn resolved(&self, a: usize) -> ResolvedAccount {
        let (positions, balances) = self.account(a);
        ResolvedAccount { positions: positions.to_vec(), balances: balances.to_vec() }
    }

    /// Positions and balances held in all, for memory estimates.
    #[must_use]
    pub fn entries(&self) -> (usize, usize) {
        self.chunks.iter().fold((0, 0), |(p, b), c| (p + c.positions.len(), b + c.balances.len()))
    }
}

/// Moves `offsets` by the change from `before` to `after` entries.
fn shift(offsets: &mut [usize], before: usize, after: usize) {
    if after != before {
        for offset in offsets {
            *offset = *offset + after - before;
        }
    }
}

/// An account's (positions, balances) as slices of a book.
pub type AccountSlices<'a> = (&'a [(usize, f64)], &'a [(Currency, f64)]);

/// One line of a bulk refresh: an account's figures in one currency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshLine {
    /// Index of the account in the book.
    pub account: usize,
    /// Its figures in one currency.
    pub figures: CurrencyFigures,
}

impl Engine {
    /// Validates `methodology` once; the engine then trusts it.
    ///
    /// # Errors
    /// `Methodology` naming the invalid field.
    pub fn new(methodology: Methodology) -> Result<Engine, Error> {
        methodology.validate()?;
        let aggregation = methodology.aggregation;
        let grouped = aggregation.static_discount.is_some() || aggregation.skew_absolute;
        let edges = |add_ons: &[scenario::AddOn]| AddOnInputs::new(add_ons).bucket_days().to_vec();
        let own =
            methodology.by_underlying.iter().filter_map(|(u, p)| Some((*u, p.add_ons.as_deref()?)));
        let bucket_days = (edges(&methodology.add_ons), own.map(|(u, a)| (u, edges(a))).collect());
        let kinds = || methodology.all_add_ons().map(|a| &a.kind);
        let competing = kinds().any(|k| {
            matches!(k, scenario::AddOnKind::BasisContingency { competes_with_scan: true, .. })
        });
        let confidence = kinds().any(|k| matches!(k, scenario::AddOnKind::OracleConfidence { .. }));
        Ok(Engine { methodology, grouped, competing, confidence, bucket_days })
    }

    /// The methodology.
    #[must_use]
    pub fn methodology(&self) -> &Methodology {
        &self.methodology
    }

    /// Whether aggregation needs per-expiry groups (static discount, absolute skew).
    pub(crate) fn grouped(&self) -> bool {
        self.grouped
    }

    /// Whether an add-on competes with the scan loss.
    pub(crate) fn competing(&self) -> bool {
        self.competing
    }

    /// Whether an add-on charges feed confidence on collateral.
    pub(crate) fn confidence(&self) -> bool {
        self.confidence
    }

    /// Risk arrays of `instruments` on `market`.
    ///
    /// # Errors
    /// As [`RiskArrays::build`].
    pub fn risk_arrays(
        &self,
        market: &MarketSnapshot,
        instruments: &[product::Instrument],
    ) -> Result<RiskArrays, Error> {
        RiskArrays::build(&self.methodology, market, instruments)
    }

    /// [`Engine::risk_arrays`] with per-expiry discount rates published in `feeds`.
    ///
    /// # Errors
    /// As [`RiskArrays::build_with_feeds`].
    pub fn risk_arrays_with_feeds(
        &self,
        market: &MarketSnapshot,
        instruments: &[product::Instrument],
        feeds: &crate::FeedData,
    ) -> Result<RiskArrays, Error> {
        RiskArrays::build_with_feeds(&self.methodology, market, instruments, feeds)
    }

    /// Market liquidity per underlying for the friction add-on.
    #[must_use]
    pub fn liquidity(
        &self,
        market: &MarketSnapshot,
        arrays: &RiskArrays,
    ) -> BTreeMap<Currency, UnderlyingLiquidity> {
        let (all, own) = &self.bucket_days;
        market_liquidity(market, arrays, |u| own.get(&u).unwrap_or(all))
    }

    /// Resolves a portfolio against risk arrays.
    ///
    /// # Errors
    /// `UnknownInstrument` when a position's instrument has no row.
    pub fn resolve(
        &self,
        arrays: &RiskArrays,
        portfolio: &Portfolio,
    ) -> Result<ResolvedAccount, Error> {
        let mut positions = Vec::with_capacity(portfolio.positions().len());
        for p in portfolio.positions() {
            let row = arrays.position(&p.instrument).ok_or_else(|| {
                Error::new(p.instrument.to_string(), ErrorKind::UnknownInstrument)
            })?;
            positions.push((row, p.size));
        }
        positions.sort_by_key(|(row, _)| *row);
        let balances = portfolio.balances().iter().map(|(c, m)| (*c, m.to_f64())).collect();
        Ok(ResolvedAccount { positions, balances })
    }

    /// Figures and details of one resolved account.
    ///
    /// # Errors
    /// As [`Engine::account_into`].
    pub fn account(
        &self,
        ctx: &Context<'_>,
        account: &ResolvedAccount,
    ) -> Result<(Vec<CurrencyFigures>, AccountDetail), Error> {
        let mut figures = Vec::new();
        let mut detail = AccountDetail::default();
        let mut scratch = Scratch::default();
        self.account_into(
            ctx,
            &account.positions,
            &account.balances,
            &mut scratch,
            Some(&mut detail),
            &mut figures,
        )?;
        Ok((figures, detail))
    }

    /// Figures of every account of a book, in account order. Accounts are computed
    /// independently, so the result is the same for any number of threads.
    ///
    /// # Errors
    /// The first failing account (lowest index), named `accounts[i]` and given as
    /// [`Error::account`].
    pub fn refresh(
        &self,
        ctx: &Context<'_>,
        book: &AccountBook,
    ) -> Result<Vec<RefreshLine>, Error> {
        let mut out = Vec::new();
        self.refresh_into(ctx, book, &mut out)?;
        Ok(out)
    }

    /// [`Engine::refresh`] into a buffer the caller keeps between refreshes, so that a service
    /// refreshing on every market update does not reallocate (and page in) its output each time.
    /// In cross margin every account has exactly one line and chunks write their lines in place.
    ///
    /// # Errors
    /// As [`Engine::refresh`]; `out` is then unspecified.
    pub fn refresh_into(
        &self,
        ctx: &Context<'_>,
        book: &AccountBook,
        out: &mut Vec<RefreshLine>,
    ) -> Result<(), Error> {
        let named = |a: usize, e: Error| e.in_account(a);
        if self.methodology.numeraire == scenario::Numeraire::Usd {
            let blank = RefreshLine { account: 0, figures: CurrencyFigures::empty(Currency::USD) };
            out.clear();
            out.resize(book.len(), blank);
            // The book's chunks are the units of work: each writes its accounts' lines in place.
            let failures: Vec<Option<Error>> = out
                .par_chunks_mut(BOOK_CHUNK_ACCOUNTS)
                .zip(book.chunks.par_iter())
                .enumerate()
                .map_init(
                    || (Scratch::default(), Vec::with_capacity(1)),
                    |(scratch, figures), (c, (lines, chunk))| {
                        for (i, line) in lines.iter_mut().enumerate() {
                            let a = c * BOOK_CHUNK_ACCOUNTS + i;
                            let (positions, balances) = chunk.account(i);
                            figures.clear();
                            if let Err(e) =
                                self.account_into(ctx, positions, balances, scratch, None, figures)
                            {
                                return Some(named(a, e));
                            }
                            *line = RefreshLine { account: a, figures: figures[0] };
                        }
                        None
                    },
                )
                .collect();
            return failures.into_iter().flatten().next().map_or(Ok(()), Err);
        }
        let chunks: Vec<Result<Vec<RefreshLine>, Error>> = (book.chunks.par_iter().enumerate())
            .map_init(Scratch::default, |scratch, (c, chunk)| {
                let mut lines = Vec::with_capacity(chunk.len());
                let mut figures = Vec::with_capacity(4);
                for i in 0..chunk.len() {
                    let a = c * BOOK_CHUNK_ACCOUNTS + i;
                    let (positions, balances) = chunk.account(i);
                    figures.clear();
                    self.account_into(ctx, positions, balances, scratch, None, &mut figures)
                        .map_err(|e| named(a, e))?;
                    lines.extend(figures.iter().map(|f| RefreshLine { account: a, figures: *f }));
                }
                Ok(lines)
            })
            .collect();
        out.clear();
        for chunk in chunks {
            out.extend(chunk?);
        }
        Ok(())
    }
}
