//! The audit log: append-only and hash-chained. Every change of market, methodology, keys and
//! roles, and every settlement, is one entry with who made it (the key's id), when (Unix
//! seconds), what (the action and its subject) and the SHA3-256 of what was submitted. Each
//! entry's hash covers its contents and the previous entry's hash, so editing, removing or
//! reordering any entry breaks the chain at that entry, which [`verify`] names.
//!
//! The entry is written in the same transaction as the change it records: a change without its
//! entry, or an entry without its change, cannot be committed.

use sha3::{Digest, Sha3_256};

/// The `prev` of the first entry: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a write records about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Who: the id of the key that made the change.
    pub actor: String,
    /// What kind of change: `market`, `methodology`, `key.create`, `key.revoke`, `settlement`.
    pub action: String,
    /// What it changed: a market's sequence and valuation time, a methodology's hash, a key id,
    /// a forced push's reason.
    pub subject: String,
    /// SHA3-256 of the submitted body, hex.
    pub digest: String,
}

impl Note {
    /// The note of a change `action` of `subject` by `actor`, submitted as `body`.
    #[must_use]
    pub fn of(actor: &str, action: &str, subject: String, body: &[u8]) -> Note {
        let digest = crate::auth::hex(&Sha3_256::digest(body));
        Note { actor: actor.to_owned(), action: action.to_owned(), subject, digest }
    }
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the log, from 1 without holes.
    pub seq: i64,
    /// Unix seconds of the change.
    pub at: i64,
    /// The note.
    pub note: Note,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev: String,
    /// SHA3-256 of this entry's contents and `prev`, hex.
    pub hash: String,
}

impl Entry {
    /// The entry after `prev_seq` / `prev_hash`, its hash computed.
    #[must_use]
    pub fn next(prev_seq: i64, prev_hash: &str, at: i64, note: Note) -> Entry {
        let seq = prev_seq + 1;
        let hash = link(seq, at, &note, prev_hash);
        Entry { seq, at, note, prev: prev_hash.to_owned(), hash }
    }
}

/// The hash of an entry: SHA3-256 over its fields, each length-prefixed so that no two
/// different entries write the same bytes.
#[must_use]
pub fn link(seq: i64, at: i64, note: &Note, prev: &str) -> String {
    let mut hasher = Sha3_256::new();
    hasher.update(seq.to_be_bytes());
    hasher.update(at.to_be_bytes());
    for field in [&note.actor, &note.action, &note.subject, &note.digest, &prev.to_owned()] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    crate::auth::hex(&hasher.finalize())
}

/// Where the chain breaks, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The first entry that does not fit.
    pub seq: i64,
    /// Why.
    pub why: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry {}: {}", self.seq, self.why)
    }
}

/// Checks a whole log, oldest first.
///
/// # Errors
/// The first entry whose position, link to the previous entry or own hash does not fit.
pub fn verify(entries: &[Entry]) -> Result<(), Broken> {
    let mut prev = (0_i64, GENESIS.to_owned());
    for entry in entries {
        let broken = |why: &str| Broken { seq: entry.seq, why: why.to_owned() };
        if entry.seq != prev.0 + 1 {
            let why = format!("follows entry {}: an entry is missing or out of order", prev.0);
            return Err(Broken { seq: entry.seq, why });
        }
        if entry.prev != prev.1 {
            return Err(broken("its link does not name the previous entry's hash"));
        }
        if link(entry.seq, entry.at, &entry.note, &entry.prev) != entry.hash {
            return Err(broken("its hash does not match its contents: it was edited"));
        }
        prev = (entry.seq, entry.hash.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(count: i64) -> Vec<Entry> {
        let mut entries: Vec<Entry> = Vec::new();
        for i in 0..count {
            let (seq, hash) =
                entries.last().map_or((0, GENESIS.to_owned()), |e| (e.seq, e.hash.clone()));
            let note = Note {
                actor: "00000000000000ad".into(),
                action: "market".into(),
                subject: format!("seq {i}"),
                digest: "ab".repeat(32),
            };
            entries.push(Entry::next(seq, &hash, 1_800_000_000 + i, note));
        }
        entries
    }

    /// An intact log verifies; an edited field, a removed entry, a swapped pair and a forged
    /// link are each named at the first entry that no longer fits.
    #[test]
    fn the_chain_names_the_first_broken_entry() {
        let entries = log(5);
        assert_eq!(verify(&entries), Ok(()));
        let mut edited = entries.clone();
        edited[2].note.subject = "seq 99".into();
        assert_eq!(verify(&edited).unwrap_err().seq, 3);
        let mut removed = entries.clone();
        removed.remove(1);
        assert_eq!(verify(&removed).unwrap_err().seq, 3);
        let mut swapped = entries.clone();
        swapped.swap(3, 4);
        assert_eq!(verify(&swapped).unwrap_err().seq, 5);
        let mut relinked = entries.clone();
        relinked[3].prev = GENESIS.to_owned();
        assert!(verify(&relinked).unwrap_err().why.contains("link"));
        // Re-hashing an edited entry does not help: the next one no longer links to it.
        let mut rehashed = entries;
        rehashed[1].note.actor = "someone else".into();
        rehashed[1].hash = link(2, rehashed[1].at, &rehashed[1].note, &rehashed[1].prev);
        assert_eq!(verify(&rehashed).unwrap_err().seq, 3);
    }
}
