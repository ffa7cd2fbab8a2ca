//! The oracle federation: independent signing nodes over HTTP, and the aggregator that turns
//! their answers into one report signed by a quorum.
//!
//! This is the oracle's network boundary, so it may use sockets, tasks and timeouts; everything
//! it signs or checks comes from the pure `oracle` crate.
//!
//! - [`node`]: a [`Node`] holds one secp256k1 key and a caller-provided margin computation
//!   ([`ComputeFn`]). [`spawn_node`] serves it on a socket: `POST /v1/epochs` computes, builds the
//!   tree and signs; the read endpoints serve the epoch's leaves and per-account proofs. A node
//!   never signs two different reports for one epoch, nor an epoch older than its last.
//! - [`aggregator`]: an [`Aggregator`] asks every node at once, discards answers that break a
//!   rule (another epoch, a foreign key, a signature that does not recover), groups the rest by
//!   EIP-712 digest, and publishes the single report with at least `threshold` distinct signers,
//!   signatures ascending by address, after checking it with the same verifier the contract
//!   mirrors. It remembers the last published epoch and refuses to go back.
//! - [`wire`]: the JSON bodies; [`fetch`]: reading leaves and proofs back from a node.
//!
//! A Byzantine node (wrong results) or an out-of-date one (other market data, an old epoch)
//! signs a different digest or is discarded, so it cannot help any report reach the threshold.

pub mod aggregator;
mod error;
pub mod fetch;
pub mod node;
pub mod wire;

pub use aggregator::{Aggregator, AggregatorConfig, NodeOutcome, NodeStatus, Published};
pub use error::{Error, ErrorKind};
pub use node::{ComputeFn, EpochInput, Node, NodeConfig, NodeHandle, router, spawn_node};
pub use wire::{EpochRequest, NodeAnswer, NodeIdentity, NodeRefusal};
