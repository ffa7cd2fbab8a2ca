//! Bounds of the oracle layer, named with their unit last.
//!
//! They live here rather than in `basics::limits` because the Solidity verifier repeats some of
//! them (`SIGNERS_MAX`, `PROOF_DEPTH_MAX`) and a test checks that both sides agree.

/// Accounts (leaves) in one epoch's tree. The report's `leafCount` is a `uint32`.
pub const LEAVES_MAX: usize = 1 << 24;
/// Siblings in one Merkle proof: the depth of the deepest leaf of a tree of `LEAVES_MAX` leaves.
pub const PROOF_DEPTH_MAX: usize = 24;
/// Signers in one signer set, and so signatures on one report. The contract's signature loop is
/// bounded by the same number.
pub const SIGNERS_MAX: usize = 32;
/// Leaves in one multiproof; larger batches should be split or use the whole tree.
pub const MULTIPROOF_LEAVES_MAX: usize = 4_096;
/// Bytes of one JSON document read back by [`crate::json`]; a leaves file of `LEAVES_MAX` accounts
/// is about 6 GiB, so very large epochs must be shipped as several files or as proofs.
pub const JSON_BYTES_MAX: usize = 1 << 30;

// A complete binary tree of n leaves has depth ceil(log2(n)); the proof bound must cover it.
const _: () = assert!(1usize << PROOF_DEPTH_MAX >= LEAVES_MAX);
// The report carries the leaf count as a uint32.
const _: () = assert!(LEAVES_MAX <= u32::MAX as usize);
// The threshold is a uint8 on both sides.
const _: () = assert!(SIGNERS_MAX <= u8::MAX as usize);
// A multiproof covers a subset of one tree.
const _: () = assert!(MULTIPROOF_LEAVES_MAX <= LEAVES_MAX);
