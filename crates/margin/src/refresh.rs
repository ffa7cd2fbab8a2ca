//! The bulk refresh: every account of a book on one priced market, in parallel, one result per
//! account. An account the engine cannot value gets its error and does not stop the others.

use std::collections::BTreeMap;

use basics::Currency;
use methodology::Numeraire;
use rayon::prelude::*;

use crate::Error;
use crate::book::{AccountBook, BOOK_CHUNK_ACCOUNTS};
use crate::figures::CurrencyFigures;
use crate::priced::PricedMarket;
use crate::scratch::Scratch;

/// One line of a bulk refresh: an account's figures in one currency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshLine {
    /// Index of the account in the book.
    pub account: usize,
    /// Its figures in one currency.
    pub figures: CurrencyFigures,
}

/// Every account's figures after a bulk refresh, or why it has none.
#[derive(Debug, Clone, Default)]
pub struct Refresh {
    /// Lines of the valued accounts, in account order (within an account, currency order).
    lines: Vec<RefreshLine>,
    /// `lines[starts[a]..starts[a + 1]]` are account `a`'s; empty while every account has
    /// exactly one line (cross margin without failures), which is the hot path's layout.
    starts: Vec<usize>,
    /// Accounts the engine refused, by index, each error naming its account
    /// ([`Error::account`]).
    failures: BTreeMap<usize, Error>,
    accounts: usize,
}

impl Refresh {
    /// Number of accounts refreshed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.accounts
    }

    /// Whether no account was refreshed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.accounts == 0
    }

    /// Account `a`'s lines (one per currency), or why it could not be valued.
    ///
    /// # Errors
    /// The engine's error for this account.
    ///
    /// # Panics
    /// If `a` is not below [`Refresh::len`].
    pub fn account(&self, a: usize) -> Result<&[RefreshLine], &Error> {
        assert!(a < self.accounts, "Invariant: account {a} of {} refreshed", self.accounts);
        if let Some(e) = self.failures.get(&a) {
            return Err(e);
        }
        Ok(if self.starts.is_empty() {
            &self.lines[a..=a]
        } else {
            &self.lines[self.starts[a]..self.starts[a + 1]]
        })
    }

    /// Every line of every valued account, in account order.
    #[must_use]
    pub fn lines(&self) -> &[RefreshLine] {
        &self.lines
    }

    /// The refused accounts with their errors, by index.
    #[must_use]
    pub fn failures(&self) -> &BTreeMap<usize, Error> {
        &self.failures
    }

    /// Replaces account `a`'s result with `outcome` (figures in currency order, or the reason
    /// it cannot be valued), as re-margining that account alone on the same market gives.
    ///
    /// # Panics
    /// If `a` is not below [`Refresh::len`].
    pub fn replace(&mut self, a: usize, outcome: Result<&[CurrencyFigures], Error>) {
        assert!(a < self.accounts, "Invariant: account {a} of {} refreshed", self.accounts);
        match outcome {
            Ok([figures]) if self.starts.is_empty() => {
                self.failures.remove(&a);
                self.lines[a] = RefreshLine { account: a, figures: *figures };
            }
            outcome => {
                self.index_lines();
                let (from, to) = (self.starts[a], self.starts[a + 1]);
                let figures = match outcome {
                    Ok(figures) => {
                        self.failures.remove(&a);
                        figures
                    }
                    Err(e) => {
                        self.failures.insert(a, e.in_account(a));
                        &[]
                    }
                };
                let new = figures.iter().map(|f| RefreshLine { account: a, figures: *f });
                self.lines.splice(from..to, new);
                for start in &mut self.starts[a + 1..] {
                    *start = *start + figures.len() - (to - from);
                }
            }
        }
    }

    /// Switches from one line per account to explicit starts, dropping the placeholder lines
    /// of refused accounts.
    fn index_lines(&mut self) {
        if !self.starts.is_empty() {
            return;
        }
        let failures = &self.failures;
        self.lines.retain(|line| !failures.contains_key(&line.account));
        self.starts = starts_of(&self.lines, self.accounts);
    }
}

/// Where each account's lines start in `lines` (sorted by account), with the end last.
fn starts_of(lines: &[RefreshLine], accounts: usize) -> Vec<usize> {
    let mut starts = Vec::with_capacity(accounts + 1);
    let mut line = 0;
    for a in 0..=accounts {
        while line < lines.len() && lines[line].account < a {
            line += 1;
        }
        starts.push(line);
    }
    starts
}

impl PricedMarket {
    /// Figures of every account of `book`. Accounts are computed independently, so the result
    /// is the same for any number of threads, and a refused account does not stop the others.
    #[must_use]
    pub fn refresh(&self, book: &AccountBook) -> Refresh {
        let mut out = Refresh::default();
        self.refresh_into(book, &mut out);
        out
    }

    /// [`PricedMarket::refresh`] into a result the caller keeps between refreshes, so that a
    /// service refreshing on every market update does not reallocate (and page in) its output
    /// each time. In cross margin every account has exactly one line and chunks write their
    /// lines in place.
    pub fn refresh_into(&self, book: &AccountBook, out: &mut Refresh) {
        out.accounts = book.len();
        out.failures.clear();
        out.starts.clear();
        let failures: Vec<(usize, Error)> = if self.methodology().numeraire == Numeraire::Usd {
            self.refresh_in_place(book, &mut out.lines)
        } else {
            let (lines, failures) = self.refresh_by_chunk(book);
            out.lines = lines;
            out.starts = starts_of(&out.lines, out.accounts);
            failures
        };
        if failures.is_empty() {
            return;
        }
        out.failures = failures.into_iter().collect();
        if out.starts.is_empty() {
            out.index_lines();
        }
    }

    /// Cross margin: one line per account, each chunk writing its accounts' lines in place.
    fn refresh_in_place(
        &self,
        book: &AccountBook,
        lines: &mut Vec<RefreshLine>,
    ) -> Vec<(usize, Error)> {
        let blank = RefreshLine { account: 0, figures: CurrencyFigures::empty(Currency::USD) };
        lines.clear();
        lines.resize(book.len(), blank);
        let chunks = lines.par_chunks_mut(BOOK_CHUNK_ACCOUNTS).zip(book.chunks.par_iter());
        let failures: Vec<Vec<(usize, Error)>> = chunks
            .enumerate()
            .map_init(
                || (Scratch::default(), Vec::with_capacity(1)),
                |(scratch, figures), (c, (lines, chunk))| {
                    let mut failed = Vec::new();
                    for (i, line) in lines.iter_mut().enumerate() {
                        let a = c * BOOK_CHUNK_ACCOUNTS + i;
                        figures.clear();
                        match self.account_into(chunk.account(i), scratch, None, figures) {
                            Ok(()) => *line = RefreshLine { account: a, figures: figures[0] },
                            Err(e) => {
                                *line = RefreshLine { account: a, ..blank };
                                failed.push((a, e.in_account(a)));
                            }
                        }
                    }
                    failed
                },
            )
            .collect();
        failures.into_iter().flatten().collect()
    }

    /// Segregated margin: a line per account and currency, gathered chunk by chunk.
    fn refresh_by_chunk(&self, book: &AccountBook) -> (Vec<RefreshLine>, Vec<(usize, Error)>) {
        type Chunk = (Vec<RefreshLine>, Vec<(usize, Error)>);
        let chunks: Vec<Chunk> = (book.chunks.par_iter().enumerate())
            .map_init(Scratch::default, |scratch, (c, chunk)| {
                let mut lines = Vec::with_capacity(chunk.len());
                let mut failed = Vec::new();
                let mut figures = Vec::with_capacity(4);
                for i in 0..chunk.len() {
                    let a = c * BOOK_CHUNK_ACCOUNTS + i;
                    figures.clear();
                    match self.account_into(chunk.account(i), scratch, None, &mut figures) {
                        Ok(()) => lines.extend(
                            figures.iter().map(|f| RefreshLine { account: a, figures: *f }),
                        ),
                        Err(e) => failed.push((a, e.in_account(a))),
                    }
                }
                (lines, failed)
            })
            .collect();
        let mut lines = Vec::with_capacity(book.len());
        let mut failures = Vec::new();
        for (chunk_lines, chunk_failures) in chunks {
            lines.extend(chunk_lines);
            failures.extend(chunk_failures);
        }
        (lines, failures)
    }
}
