//! Accounts resolved against risk arrays, alone ([`ResolvedAccount`]) and many at once in
//! struct-of-arrays form ([`AccountBook`]), the input of a bulk refresh.

use std::sync::Arc;

use basics::Currency;

/// An account's positions and balances resolved against risk arrays.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedAccount {
    /// (row, size), sorted by row.
    pub positions: Vec<(usize, f64)>,
    /// (currency, amount), sorted by currency.
    pub balances: Vec<(Currency, f64)>,
    /// (row, entry price) of each future or perpetual held with an entry price, sorted by row:
    /// its P&L from the entry to the current mark counts in equity.
    pub entries: Vec<(usize, f64)>,
    /// (row, funding index paid up to) of each perpetual held with one, sorted by row: the
    /// funding accrued since, at the market's index, counts in equity.
    pub fundings: Vec<(usize, f64)>,
}

impl ResolvedAccount {
    /// The account as slices.
    #[must_use]
    pub fn slices(&self) -> AccountSlices<'_> {
        AccountSlices {
            positions: &self.positions,
            balances: &self.balances,
            entries: &self.entries,
            fundings: &self.fundings,
        }
    }
}

/// Many accounts in struct-of-arrays form, for the bulk refresh: chunks of
/// [`BOOK_CHUNK_ACCOUNTS`] accounts, each chunk shared (`Arc`) between the copies of a book. A
/// copy costs a pointer per chunk, and replacing one account in a copy copies that account's
/// chunk only, so a service can re-margin one account of a million without copying the book.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountBook {
    pub(crate) chunks: Vec<Arc<BookChunk>>,
    len: usize,
}

/// Accounts per chunk of an [`AccountBook`], the refresh's unit of parallel work too.
pub const BOOK_CHUNK_ACCOUNTS: usize = 2_048;

/// Up to [`BOOK_CHUNK_ACCOUNTS`] accounts, flat.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct BookChunk {
    /// `positions[position_offsets[a]..position_offsets[a + 1]]` are account `a`'s positions
    /// (`a` counted within the chunk).
    position_offsets: Vec<usize>,
    /// (row, size) of every position, each account's sorted by row.
    positions: Vec<(usize, f64)>,
    /// `balances[balance_offsets[a]..balance_offsets[a + 1]]` are account `a`'s balances.
    balance_offsets: Vec<usize>,
    /// (currency, amount) of every balance, each account's sorted by currency.
    balances: Vec<(Currency, f64)>,
    /// `entries[entry_offsets[a]..entry_offsets[a + 1]]` are account `a`'s entry prices.
    entry_offsets: Vec<usize>,
    /// (row, entry price) of every future held with one, each account's sorted by row.
    entries: Vec<(usize, f64)>,
    /// `fundings[funding_offsets[a]..funding_offsets[a + 1]]` are account `a`'s funding indices.
    funding_offsets: Vec<usize>,
    /// (row, funding index paid up to) of every perpetual held with one, sorted by row.
    fundings: Vec<(usize, f64)>,
}

impl BookChunk {
    fn new() -> BookChunk {
        BookChunk {
            position_offsets: vec![0],
            balance_offsets: vec![0],
            entry_offsets: vec![0],
            funding_offsets: vec![0],
            ..BookChunk::default()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.position_offsets.len() - 1
    }

    pub(crate) fn account(&self, a: usize) -> AccountSlices<'_> {
        AccountSlices {
            positions: &self.positions[self.position_offsets[a]..self.position_offsets[a + 1]],
            balances: &self.balances[self.balance_offsets[a]..self.balance_offsets[a + 1]],
            entries: &self.entries[self.entry_offsets[a]..self.entry_offsets[a + 1]],
            fundings: &self.fundings[self.funding_offsets[a]..self.funding_offsets[a + 1]],
        }
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
        chunk.entries.extend_from_slice(&account.entries);
        chunk.fundings.extend_from_slice(&account.fundings);
        chunk.position_offsets.push(chunk.positions.len());
        chunk.balance_offsets.push(chunk.balances.len());
        chunk.entry_offsets.push(chunk.entries.len());
        chunk.funding_offsets.push(chunk.fundings.len());
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
        let (from, to) = (chunk.entry_offsets[a], chunk.entry_offsets[a + 1]);
        chunk.entries.splice(from..to, account.entries.iter().copied());
        shift(&mut chunk.entry_offsets[a + 1..], to - from, account.entries.len());
        let (from, to) = (chunk.funding_offsets[a], chunk.funding_offsets[a + 1]);
        chunk.fundings.splice(from..to, account.fundings.iter().copied());
        shift(&mut chunk.funding_offsets[a + 1..], to - from, account.fundings.len());
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

    /// Account `a`'s positions, balances and entry prices.
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
        let account = self.account(a);
        ResolvedAccount {
            positions: account.positions.to_vec(),
            balances: account.balances.to_vec(),
            entries: account.entries.to_vec(),
            fundings: account.fundings.to_vec(),
        }
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

/// An account as slices of a book or of a [`ResolvedAccount`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccountSlices<'a> {
    /// (row, size), sorted by row.
    pub positions: &'a [(usize, f64)],
    /// (currency, amount), sorted by currency.
    pub balances: &'a [(Currency, f64)],
    /// (row, entry price) of the futures held with one, sorted by row.
    pub entries: &'a [(usize, f64)],
    /// (row, funding index paid up to) of the perpetuals held with one, sorted by row.
    pub fundings: &'a [(usize, f64)],
}
