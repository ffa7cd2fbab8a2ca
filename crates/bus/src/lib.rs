//! Scale-out on NATS JetStream: a book of accounts sharded over worker processes, each epoch
//! computed shard by shard and assembled into the same root as one process gives.
//!
//! The layout on the server (every name here is part of the protocol; `docs/bus.md` lists them):
//! - stream `BALLAST_BOOK`, subjects `ballast.book.<shard>`: account writes (a whole portfolio
//!   put, or a delete), file storage, deduplicated by the writer's `Nats-Msg-Id`;
//! - stream `BALLAST_MARKET`, subject `ballast.market`: market snapshots (Ballast JSON);
//! - stream `BALLAST_EPOCHS`, subject `ballast.epoch.request`: epoch requests, each naming the
//!   market by its sequence and the book by a cut (the book stream's last sequence when the
//!   request was made);
//! - stream `BALLAST_RESULTS`, subjects `ballast.results.<epoch>.<shard>.<chunk>` and
//!   `….<shard>.done`: a shard's results in chunks, then its commit; the message id is the
//!   subject, so a second worker computing the same shard (a takeover) stores nothing new;
//! - KV bucket `ballast_config`: the shard count, fixed when the bus is first set up;
//! - KV bucket `ballast_leases`: `shard.<n>` (which worker owns shard n) and `worker.<id>`
//!   (heartbeats), both expiring after the lease time unless renewed.
//!
//! Determinism: the book at a cut is a function of the stream alone (the last write of each
//! account at or below the cut), each shard's results a function of that book, the market and
//! the methodology ([`epoch::compute_parts`]), and [`epoch::assemble`] orders the parts by id,
//! so the root does not depend on the number of workers, which worker computed which shard, or
//! how many times.
//!
//! **API Boundary:** this crate is the only one that speaks NATS; everything it computes goes
//! through `epoch`.

use std::fmt;

mod book;
mod coordinator;
mod names;
mod setup;
pub mod wire;
mod worker;
mod writer;

pub use book::{Apply, ShardBook};
pub use coordinator::{EpochOrder, Progress, run_epoch};
pub use names::{book_subject, shard_of};
pub use setup::{Bus, BusConfig};
pub use worker::{Worker, WorkerConfig, WorkerEvent};
pub use writer::Writer;

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused or did not answer an operation.
    #[error("NATS: {operation}: {reason}")]
    Nats {
        /// What was being done.
        operation: String,
        /// The server's or the client's reason.
        reason: String,
    },
    /// A message on the bus that does not decode.
    #[error("message {subject}: {field}: {reason}")]
    Wire {
        /// The subject it came on.
        subject: String,
        /// The field at fault.
        field: String,
        /// Why.
        reason: String,
    },
    /// The bus is set up for another shard count, or a request names another one.
    #[error("shards: {0}")]
    Shards(String),
    /// The epoch could not be computed or assembled.
    #[error("epoch: {0}")]
    Epoch(#[from] epoch::Error),
    /// A shard's worker refused its part of the epoch.
    #[error("epoch {epoch} shard {shard}: {reason}")]
    Shard {
        /// The epoch.
        epoch: u64,
        /// The shard.
        shard: u32,
        /// The worker's reason.
        reason: String,
    },
    /// Shards that gave no complete result in time, each with the worker holding its lease
    /// (none when no worker holds it).
    #[error("epoch {epoch}: no result after {waited_ms} ms from {}", Missing(.missing))]
    Slow {
        /// The epoch.
        epoch: u64,
        /// How long the coordinator waited.
        waited_ms: u64,
        /// (shard, lease holder) of each incomplete shard.
        missing: Vec<(u32, Option<String>)>,
    },
}

/// The incomplete shards of [`Error::Slow`], as text.
struct Missing<'a>(&'a [(u32, Option<String>)]);

impl fmt::Display for Missing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (shard, holder)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            match holder {
                Some(worker) => write!(f, "{sep}shard {shard} (worker {worker})")?,
                None => write!(f, "{sep}shard {shard} (no worker)")?,
            }
        }
        Ok(())
    }
}

/// The value of a result that cannot be an error, or a panic naming the invariant broken.
pub(crate) fn invariant<T, E: fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("Invariant: {what}: {e}"),
    }
}

impl Error {
    /// A NATS failure of `operation`.
    pub(crate) fn nats(operation: impl Into<String>, reason: impl fmt::Display) -> Error {
        Error::Nats { operation: operation.into(), reason: reason.to_string() }
    }
}
