//! One shard's accounts, rebuilt from the book stream: a deterministic state machine whose state
//! at a cut depends only on the set of writes received, not on their order of arrival or on
//! how often each arrived.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use epoch::AccountKey;
use product::Portfolio;
use rayon::prelude::*;

use crate::wire::Write;

/// A portfolio as written, with its epoch key once computed: the key (two hashes, one of the
/// canonical portfolio) changes only with a write, so it is computed once per write.
#[derive(Debug, Clone)]
struct Held {
    portfolio: Portfolio,
    key: OnceLock<AccountKey>,
}

/// What applying a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// The write is new.
    Applied,
    /// The write's sequence was already applied (a duplicate delivery): nothing changed.
    Duplicate,
    /// The write is older than a later write of the same account at or below the compaction
    /// floor: it can never be the account's state at any future cut, so it is dropped.
    Superseded,
}

/// The writes of one shard's accounts by stream sequence. Each account keeps its writes above
/// the compaction floor and the last one at or below it, so the book at any cut at or above the
/// floor is exact.
#[derive(Debug, Clone, Default)]
pub struct ShardBook {
    accounts: BTreeMap<String, Vec<(u64, Option<Held>)>>,
    /// The highest sequence received.
    received: u64,
    /// Cuts below this are no longer answerable.
    floor: u64,
}

impl ShardBook {
    /// Applies the write stored at `seq`.
    pub fn apply(&mut self, seq: u64, write: Write) -> Apply {
        self.received = self.received.max(seq);
        // Most accounts keep one write between compactions: room for one, not Vec's first four.
        let writes = self.accounts.entry(write.id).or_insert_with(|| Vec::with_capacity(1));
        let at = writes.partition_point(|(s, _)| *s < seq);
        if writes.get(at).is_some_and(|(s, _)| *s == seq) {
            return Apply::Duplicate;
        }
        if seq <= self.floor && writes.get(at).is_some_and(|(s, _)| *s <= self.floor) {
            return Apply::Superseded;
        }
        let held = write.portfolio.map(|portfolio| Held { portfolio, key: OnceLock::new() });
        writes.insert(at, (seq, held));
        Apply::Applied
    }

    /// Records that the message at `seq` was received and could not be used, so that the book
    /// still counts as caught up past it.
    pub fn note(&mut self, seq: u64) {
        self.received = self.received.max(seq);
    }

    /// The highest sequence received so far.
    #[must_use]
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The lowest cut [`ShardBook::at`] still answers.
    #[must_use]
    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// The accounts at cut `cut` in id order, each with its (unsalted) epoch key: each
    /// account's last write at or below the cut, removed accounts left out. `None` for a cut
    /// below the compaction floor. Keys not yet computed are computed here, in parallel.
    #[must_use]
    pub fn at(&self, cut: u64) -> Option<Vec<(&AccountKey, &Portfolio)>> {
        if cut < self.floor {
            return None;
        }
        let held: Vec<(&str, &Held)> = (self.accounts.iter())
            .filter_map(|(id, writes)| {
                let below = writes.partition_point(|(s, _)| *s <= cut);
                let last = below.checked_sub(1).and_then(|i| writes[i].1.as_ref());
                last.map(|held| (id.as_str(), held))
            })
            .collect();
        Some(
            (held.par_iter())
                .map(|(id, held)| {
                    let key = held.key.get_or_init(|| AccountKey::new(id, &held.portfolio));
                    (key, &held.portfolio)
                })
                .collect(),
        )
    }

    /// Forgets what no cut at or above `floor` can need: for each account every write before
    /// its last one at or below the floor, and accounts whose state there is a removal with no
    /// later write. Cuts only grow, so a worker compacts at each epoch's cut.
    pub fn compact(&mut self, floor: u64) {
        if floor <= self.floor {
            return;
        }
        self.floor = floor;
        self.accounts.retain(|_, writes| {
            let below = writes.partition_point(|(s, _)| *s <= floor);
            if below > 1 {
                writes.drain(..below - 1);
            }
            !(writes.len() == 1 && writes[0].0 <= floor && writes[0].1.is_none())
        });
    }

    /// Accounts with at least one write kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether no account has a write kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use basics::{Currency, Money};
    use product::Portfolio;

    use super::{Apply, ShardBook};
    use crate::wire::Write;

    fn cash(usd: i128) -> Portfolio {
        Portfolio::new(Vec::new(), &[Money::from_raw(usd, Currency::USDC)]).unwrap()
    }

    fn put(id: &str, usd: i128) -> Write {
        Write { id: id.to_owned(), portfolio: Some(cash(usd)) }
    }

    fn view(book: &ShardBook, cut: u64) -> Vec<(String, Portfolio)> {
        let at = book.at(cut).unwrap();
        for (key, p) in &at {
            assert_eq!(
                **key,
                epoch::AccountKey::new(&key.id, p),
                "the cached key is the account's"
            );
        }
        at.into_iter().map(|(key, p)| (key.id.clone(), p.clone())).collect()
    }

    /// The same writes in any order, each delivered once or twice, give the same book at every
    /// cut: the last write at or below the cut per account, removals dropped.
    #[test]
    fn order_and_repeats_do_not_matter() {
        let writes = [
            (3, put("a", 1)),
            (5, put("b", 2)),
            (7, put("a", 3)),
            (9, Write { id: "b".to_owned(), portfolio: None }),
            (11, put("c", 4)),
        ];
        let mut forward = ShardBook::default();
        for (seq, write) in writes.clone() {
            assert_eq!(forward.apply(seq, write), Apply::Applied);
        }
        let mut shuffled = ShardBook::default();
        for i in [4, 1, 3, 0, 2, 1, 4, 0] {
            let (seq, write) = writes[i].clone();
            shuffled.apply(seq, write);
        }
        assert_eq!(shuffled.apply(7, put("a", 3)), Apply::Duplicate);
        for cut in 0..13 {
            assert_eq!(view(&forward, cut), view(&shuffled, cut), "cut {cut}");
        }
        assert!(view(&forward, 2).is_empty());
        assert_eq!(view(&forward, 6), vec![("a".into(), cash(1)), ("b".into(), cash(2))]);
        assert_eq!(view(&forward, 10), vec![("a".into(), cash(3))]);
        assert_eq!(forward.received(), 11);
    }

    /// Compaction keeps every answer at or above its floor, refuses cuts below it, forgets
    /// removed accounts, and drops a late write that a kept write supersedes.
    #[test]
    fn compaction_keeps_every_later_cut() {
        let mut book = ShardBook::default();
        for (seq, write) in [
            (1, put("a", 1)),
            (2, put("b", 2)),
            (4, put("a", 5)),
            (6, Write { id: "b".to_owned(), portfolio: None }),
            (8, put("a", 9)),
        ] {
            book.apply(seq, write);
        }
        let before: Vec<_> = (6..10).map(|cut| view(&book, cut)).collect();
        book.compact(6);
        assert_eq!(book.len(), 1, "b was removed at or below the floor");
        let after: Vec<_> = (6..10).map(|cut| view(&book, cut)).collect();
        assert_eq!(before, after);
        assert!(book.at(5).is_none());
        assert_eq!(book.apply(3, put("a", 7)), Apply::Superseded);
        assert_eq!(book.apply(7, put("a", 7)), Apply::Applied);
        assert_eq!(view(&book, 7), vec![("a".into(), cash(7))]);
    }
}
